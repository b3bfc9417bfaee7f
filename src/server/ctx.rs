//! Everything the loop and the app threads share (`Ctx`): the options and the app, the
//! hand-offs between the loop thread and the app threads (waitress's `ThreadedTaskDispatcher`:
//! one job queue of channels with runnable requests, and one queue of channels the loop must
//! look at again, with a single coalesced `mio::Waker` wake), the request pool, the access
//! log's pending lines, the retire hook and `request_timeout`'s records. The app threads
//! themselves are in `dispatch`.
//!
//! Both directions are batched: the loop pushes every channel that became runnable in one poll
//! iteration under one lock and wakes one idle thread unless one is already on its way to the
//! app (that one wakes the next once it runs: `running`); an app thread takes the next job
//! without sleeping while the queue is non-empty; the loop is woken at most once until it has
//! drained its queue (`wake_pending`).
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::access_log::PendingLines;
use super::calls::Calls;
use super::lock::lock;
use super::outbuf::SpillFailed;
use super::shared::{Job, Shared};
use super::{RetireHook, RetireReason, ServerOptions};
use crate::http::app::App;
use crate::http::{OverflowableBuffer, Request};

/// Most recycled `Request`s kept (more would only be idle memory).
const POOL_MAX: usize = 256;
/// Pooled jobs that keep their body's temp file for the next upload (each at most
/// `http::buffer::SPARE_MAX_BYTES`): at most 64 MiB of deleted temp files per worker.
const SPARE_FILES_MAX: usize = 16;

mod queue;

use queue::{JobQueue, QueueLen};

struct Jobs {
    q: JobQueue,
    idle: usize,
    /// App threads that took a job and are not yet running the app (waiting for the GIL):
    /// while one is, another woken thread could only queue behind it (see `submit`).
    on_deck: usize,
    /// Threads notified but not yet back from their wait.
    waking: usize,
    /// Threads that found the queue empty and give the CPU to the loop once before they
    /// sleep (`take`): each takes the next job, so `submit` wakes no other for it.
    yielding: usize,
    /// Busy threads waiting for a slow client to read their output (`stalled`): they run no
    /// Python until the loop has sent it, so the loop has nothing to yield to them.
    stalled: usize,
    stop: bool,
    last_depth_warning: Option<Instant>,
}

impl Jobs {
    /// Threads on their way to take a job: woken, or yielding before they sleep.
    fn coming(&self) -> usize {
        self.waking + self.yielding
    }

    /// No busy thread of the `threads` runs Python: each is idle or waits for a slow client
    /// to read (`stalled`), so only the loop's sends let them go on.
    fn none_runs_python(&self, threads: usize) -> bool {
        threads <= self.idle + self.stalled
    }
}

/// Everything the loop and the app threads share.
pub(crate) struct Ctx {
    pub(crate) opts: ServerOptions,
    pub(crate) app: Arc<dyn App>,
    waker: Arc<mio::Waker>,
    wake_pending: AtomicBool,
    /// The loop thread is in (or about to enter) its poll, and its last poll returned one
    /// event or none: one client at a time (`loop_sparse`).
    loop_sparse: AtomicBool,
    jobs: Mutex<Jobs>,
    jobs_cv: Condvar,
    /// `jobs.q.len()`, stored by `JobQueue` (under the `jobs` lock) and read without the lock
    /// by `loop_policy`'s fast path.
    queue_len: QueueLen,
    /// The loop thread is SCHED_BATCH (`loop_policy`): written by the loop under the `jobs`
    /// lock, read under it by the app threads (`take`, `stalled`: the lock orders their look
    /// with the loop's switch) and without it by the loop itself.
    loop_batch: AtomicBool,
    done: Mutex<Vec<Arc<Shared>>>,
    /// Channels with gathered output the loop must send within `GATHER_DELAY`.
    gathered: Mutex<Vec<Arc<Shared>>>,
    /// Set during a graceful stop: responses close their connection.
    draining: AtomicBool,
    /// Clients wait at `connection_limit` and no connection could be evicted: app threads
    /// tell the loop when they finish, since the connection becomes an idle keep-alive one
    /// that can make room (see `accept::evict_one`).
    clients_waiting: AtomicBool,
    // Boxed on purpose: jobs move between pool, channel and queue as one pointer.
    #[allow(clippy::vec_box)]
    pool: Mutex<Vec<Box<Job>>>,
    /// Formatted access-log lines waiting for the loop to write them (None: logging off).
    access: Option<PendingLines>,
    /// Requests finished (for `max_requests`).
    served: AtomicU64,
    retire_hook: OnceLock<RetireHook>,
    /// Each app thread's current call, for `request_timeout`.
    pub(crate) calls: Calls,
}

impl Ctx {
    pub(crate) fn new(opts: ServerOptions, app: Arc<dyn App>, waker: Arc<mio::Waker>) -> Ctx {
        let access = opts.access_log.as_ref().map(|_| PendingLines::default());
        Ctx {
            calls: Calls::new(opts.request_timeout, opts.threads),
            opts,
            app,
            waker,
            wake_pending: AtomicBool::new(false),
            loop_sparse: AtomicBool::new(false),
            jobs: Mutex::new(Jobs {
                q: JobQueue::default(),
                idle: 0,
                on_deck: 0,
                waking: 0,
                yielding: 0,
                stalled: 0,
                stop: false,
                last_depth_warning: None,
            }),
            jobs_cv: Condvar::new(),
            queue_len: QueueLen::default(),
            loop_batch: AtomicBool::new(false),
            done: Mutex::new(Vec::new()),
            gathered: Mutex::new(Vec::new()),
            draining: AtomicBool::new(false),
            clients_waiting: AtomicBool::new(false),
            pool: Mutex::new(Vec::new()),
            access,
            served: AtomicU64::new(0),
            retire_hook: OnceLock::new(),
        }
    }

    /// The access log's pending lines (None: logging off).
    pub(crate) fn access_log(&self) -> Option<&PendingLines> {
        self.access.as_ref()
    }

    /// A graceful stop began (the loop): from now on responses close their connection.
    pub(crate) fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// A graceful stop is under way.
    pub(crate) fn draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// The loop found clients waiting at `connection_limit` with no connection to evict (true),
    /// or room for them again (false).
    pub(crate) fn set_clients_waiting(&self, waiting: bool) {
        self.clients_waiting.store(waiting, Ordering::Relaxed);
    }

    /// Clients wait at `connection_limit` (see the field).
    pub(crate) fn clients_waiting(&self) -> bool {
        self.clients_waiting.load(Ordering::Relaxed)
    }

    pub(crate) fn set_retire_hook(&self, hook: RetireHook) {
        let _ = self.retire_hook.set(hook);
    }

    /// Asks the supervisor to replace this worker (no-op without a hook).
    pub(crate) fn ask_retire(&self, why: RetireReason) {
        if let Some(h) = self.retire_hook.get() {
            h(why);
        }
    }

    /// Counts a finished request; the `max_requests`-th asks for retirement (once).
    pub(crate) fn request_done(&self) {
        let n = self.served.fetch_add(1, Ordering::Relaxed) + 1;
        if n == self.opts.max_requests {
            log::info!(target: "waitress", "served {n} requests (max_requests): asking to be replaced");
            self.ask_retire(RetireReason::MaxRequests);
        }
    }

    /// Queues every channel in `batch` (emptied) and wakes one idle thread unless one is
    /// already on its way to the app. With the GIL, one thread runs Python at a time: waking
    /// one per job only had the others queue at the GIL (a context switch each, 1.15 per
    /// 64 KiB request). The woken thread wakes the next once it runs the app (`running`), so
    /// an app that blocks (I/O, sleep) still gets every thread, one wake-up apart.
    pub(crate) fn submit(&self, batch: &mut Vec<Arc<Shared>>) {
        if batch.is_empty() {
            return;
        }
        let n = batch.len();
        if let Some(m) = self.opts.metrics {
            m.queued(n, true);
        }
        let mut jobs = lock(&self.jobs);
        let depth = jobs.q.append(batch, &self.queue_len);
        let wake = if jobs.on_deck + jobs.coming() == 0 {
            n.min(jobs.idle).min(1)
        } else {
            0
        };
        jobs.waking += wake;
        if depth > jobs.idle {
            // waitress warns on every queued task; once a second is enough to be seen.
            let now = Instant::now();
            if jobs
                .last_depth_warning
                .is_none_or(|t| now - t >= Duration::from_secs(1))
            {
                jobs.last_depth_warning = Some(now);
                log::warn!(target: "waitress.queue", "Task queue depth is {}", depth - jobs.idle);
            }
        }
        drop(jobs);
        for _ in 0..wake {
            self.jobs_cv.notify_one();
        }
    }

    /// The loop thread's scheduling policy to switch to before it polls, if it changes
    /// (`sched::loop_thread`): backlogged = more jobs wait in the queue than the threads
    /// already woken take at once (and at least two: the one job of a single client is taken
    /// by the thread woken for it or coming back for work), and no idle thread will be woken
    /// for the rest before a busy one comes back (none is idle, or one is already on its way
    /// to the app: `submit` wakes no other then), and at least one busy thread is not
    /// waiting for a slow reader (the loop must send before such a thread runs again: a
    /// SCHED_BATCH loop would only wait longer for the CPU).
    ///
    /// Called before every poll (once per request at C=1), so the usual answer, a SCHED_OTHER
    /// loop with fewer than two jobs queued (never backlogged), is given without the lock.
    /// That answer is exact, not a guess: only the loop adds to the queue (`submit`, on this
    /// thread), so the count it reads is never below the queue's length (app threads only
    /// lower it), and a SCHED_BATCH loop always decides under the lock, so this path can never
    /// leave it SCHED_BATCH with nothing queued.
    pub(crate) fn loop_policy(&self) -> Option<bool> {
        if !self.loop_batch.load(Ordering::Relaxed) && self.queue_len.get() < 2 {
            return None;
        }
        let jobs = lock(&self.jobs);
        let coming = jobs.coming();
        let backlogged = jobs.q.len() > coming.max(1)
            && (jobs.idle == 0 || jobs.on_deck + coming > 0)
            && !jobs.none_runs_python(self.opts.threads);
        (backlogged != self.loop_batch.load(Ordering::Relaxed)).then(|| {
            self.loop_batch.store(backlogged, Ordering::Relaxed);
            backlogged
        })
    }

    /// An app thread starts (`true`) or stops (`false`) waiting for its client to read
    /// (back-pressure at `outbuf_high_watermark`). The last busy thread to start waiting wakes
    /// a SCHED_BATCH loop, which then polls as SCHED_OTHER (`loop_policy`): it is the one that
    /// sends what these threads wait on.
    pub(crate) fn stalled(&self, on: bool) {
        let mut jobs = lock(&self.jobs);
        if on {
            jobs.stalled += 1;
            if self.loop_batch.load(Ordering::Relaxed) && jobs.none_runs_python(self.opts.threads) {
                self.wake_loop();
            }
        } else {
            jobs.stalled = jobs.stalled.saturating_sub(1);
        }
    }

    /// Next channel to serve; None once stopping and the queue is empty.
    pub(crate) fn take(&self) -> Option<Arc<Shared>> {
        let mut jobs = lock(&self.jobs);
        let mut yielded = false;
        loop {
            if let Some(c) = jobs.q.pop(&self.queue_len) {
                if let Some(m) = self.opts.metrics {
                    m.queued(1, false);
                }
                jobs.on_deck += 1;
                return Some(c);
            }
            if jobs.stop {
                return None;
            }
            if !yielded
                && (jobs.idle == 0 || jobs.idle + 1 == self.opts.threads)
                && !self.loop_sparse.load(Ordering::Relaxed)
            {
                // Before sleeping, let a runnable loop thread on this CPU go first: it usually
                // has the next batch ready, which we then take without a futex wait + wake
                // (pinned hello world: futex 0.15 -> 0.002/request, for 0.05 sched_yield).
                // Only when this thread is the only one serving (all others idle) or none is
                // idle (no other the loop could wake instead): while another serves and one
                // is idle, the CPU could go to the busy one rather than the loop. Counted in
                // `yielding`, so the loop wakes no idle thread for the batch this one takes.
                yielded = true;
                jobs.yielding += 1;
                drop(jobs);
                // SAFETY: sched_yield takes no arguments and only gives up the CPU.
                unsafe { libc::sched_yield() };
                jobs = lock(&self.jobs);
                jobs.yielding -= 1;
                continue;
            }
            if self.loop_batch.load(Ordering::Relaxed) {
                // The backlog is gone: the loop goes back to SCHED_OTHER before it sleeps.
                self.wake_loop();
            }
            jobs.idle += 1;
            jobs = self.jobs_cv.wait(jobs).unwrap_or_else(|e| e.into_inner());
            jobs.idle -= 1;
            jobs.waking = jobs.waking.saturating_sub(1);
        }
    }

    /// The app thread that took a job is running the app now (the WSGI layer holds the GIL),
    /// or its job ended without reaching it: the next idle thread may go on deck. `on_deck`:
    /// the thread's `Scratch::on_deck` (cleared here; nothing to do if it was not set).
    pub(crate) fn running(&self, on_deck: &mut bool) {
        if !std::mem::take(on_deck) {
            return;
        }
        let mut jobs = lock(&self.jobs);
        jobs.on_deck = jobs.on_deck.saturating_sub(1);
        if jobs.on_deck + jobs.coming() == 0 && !jobs.q.is_empty() && jobs.idle > 0 {
            jobs.waking += 1;
            drop(jobs);
            self.jobs_cv.notify_one();
        }
    }

    /// App threads return once the queue is empty.
    pub(crate) fn stop_threads(&self) {
        lock(&self.jobs).stop = true;
        self.jobs_cv.notify_all();
    }

    /// `stop_threads` was called.
    pub(crate) fn threads_stopping(&self) -> bool {
        lock(&self.jobs).stop
    }

    /// Jobs queued but not started (cancelled at an immediate stop).
    pub(crate) fn cancel_queued(&self) -> usize {
        let mut jobs = lock(&self.jobs);
        let n = jobs.q.len();
        if let Some(m) = self.opts.metrics {
            m.queued(n, false);
        }
        for ch in jobs.q.drain(&self.queue_len) {
            ch.lock().cancel_queued();
        }
        n
    }

    /// Asks the loop to look at `ch` again (request done, close pending, ...).
    pub(crate) fn notify_loop(&self, ch: Arc<Shared>) {
        lock(&self.done).push(ch);
        self.wake_loop();
    }

    /// The loop thread enters its poll after a poll that returned one event or none
    /// (`true`), or leaves it (`false`): app threads then skip their yield (`take`).
    pub(crate) fn loop_sparse(&self, sparse: bool) {
        self.loop_sparse.store(sparse, Ordering::Relaxed);
    }

    /// Wakes the loop unless a wake is already pending.
    pub(crate) fn wake_loop(&self) {
        if !self.wake_pending.swap(true, Ordering::AcqRel) {
            if let Err(e) = self.waker.wake() {
                log::error!(target: "waitress", "cannot wake the event loop: {e}");
            }
        }
    }

    /// Asks the loop to send `ch`'s gathered output within `GATHER_DELAY`.
    pub(crate) fn flush_soon(&self, ch: Arc<Shared>) {
        lock(&self.gathered).push(ch);
        self.wake_loop();
    }

    /// Loop side: takes every pending notification (call after a waker event): channels the
    /// app threads are done with, and channels whose gathered output must go out soon.
    pub(crate) fn take_done(&self, into: &mut Vec<Arc<Shared>>, gathered: &mut Vec<Arc<Shared>>) {
        self.wake_pending.store(false, Ordering::Release);
        into.append(&mut lock(&self.done));
        gathered.append(&mut lock(&self.gathered));
    }

    /// An empty request and body to parse into (recycled when possible).
    pub(crate) fn fresh_job(&self) -> Box<Job> {
        lock(&self.pool).pop().unwrap_or_else(|| {
            Box::new(Job {
                req: Request::new(),
                body: OverflowableBuffer::new(self.opts.inbuf_overflow),
                send_continue: false,
                received: Instant::now(),
            })
        })
    }

    /// Gives a served request back for reuse.
    pub(crate) fn recycle(&self, mut job: Box<Job>) {
        // Do not keep what a single odd request grew to.
        if job.req.buf.capacity() > 16 * 1024 || job.req.fields.capacity() > 128 {
            return;
        }
        job.req.clear();
        job.body.clear();
        job.send_continue = false;
        let mut pool = lock(&self.pool);
        if job.body.has_spare()
            && pool.iter().filter(|j| j.body.has_spare()).count() >= SPARE_FILES_MAX
        {
            job.body.drop_spare();
        }
        if pool.len() < POOL_MAX {
            pool.push(job);
        }
    }
}

/// Logs a socket error per `log_socket_errors` (waitress logs them at ERROR as `Socket error`).
/// A spill file that failed is the server's own fault, always logged, with its fix.
pub(crate) fn socket_error(ctx: &Ctx, what: &str, e: io::Error) {
    if let Some(spill) = e.get_ref().and_then(|r| r.downcast_ref::<SpillFailed>()) {
        log::error!(target: "waitress", "{spill}");
    } else if matches!(
        e.kind(),
        io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
    ) {
        log::debug!(target: "waitress", "client disconnected during {what}: {e}");
    } else if ctx.opts.log_socket_errors {
        log::error!(target: "waitress", "Socket error during {what}: {e}");
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::OwnedFd;
    use std::os::unix::net::UnixStream;

    use super::super::outbuf::OutBuf;
    use super::super::shared::ChanState;
    use super::*;
    use crate::http::app::{AppFailure, Exchange};

    struct NoApp;

    impl App for NoApp {
        fn call(&self, _: &mut dyn Exchange) -> Result<(), AppFailure> {
            Ok(())
        }
    }

    /// A `Ctx` with `opts` and no threads started (the poll is kept alive beside it).
    fn ctx(opts: ServerOptions) -> (Ctx, mio::Poll) {
        let poll = mio::Poll::new().unwrap();
        let waker = Arc::new(mio::Waker::new(poll.registry(), mio::Token(0)).unwrap());
        (Ctx::new(opts, Arc::new(NoApp), waker), poll)
    }

    /// A connection over one end of a socket pair (the other end is closed).
    fn channel(st: ChanState) -> Arc<Shared> {
        let (a, _) = UnixStream::pair().unwrap();
        Arc::new(Shared::new(OwnedFd::from(a), 0, st, Default::default()))
    }

    /// With one app thread, the loop turns SCHED_BATCH once two jobs wait and back once fewer
    /// do, whether it decides without the lock (SCHED_OTHER, fewer than two queued) or under it;
    /// a queue behind a thread that waits for a slow reader never turns it.
    #[test]
    fn the_loop_turns_sched_batch_only_while_two_jobs_wait_behind_a_running_thread() {
        #[derive(Debug)]
        enum Step {
            Submit(usize),
            Take,
            Stalled(bool),
        }
        use Step::*;
        // (step, what `loop_policy` answers after it)
        let table: &[(Step, Option<bool>)] = &[
            (Submit(0), None),
            (Submit(1), None),
            (Submit(1), Some(true)),
            (Submit(1), None),
            (Take, None),
            (Take, Some(false)),
            (Take, None),
            (Submit(3), Some(true)),
            (Stalled(true), Some(false)),
            (Submit(1), None),
            (Stalled(false), Some(true)),
            (Take, None),
            (Take, None),
            (Take, Some(false)),
            (Take, None),
        ];
        let opts = ServerOptions {
            threads: 1,
            ..ServerOptions::default()
        };
        let (ctx, _poll) = ctx(opts);
        assert_eq!(ctx.loop_policy(), None, "at start");
        for (i, (step, want)) in table.iter().enumerate() {
            match step {
                Submit(n) => {
                    let now = Instant::now();
                    let mut batch = (0..*n)
                        .map(|_| channel(ChanState::new(OutBuf::new(0), now)))
                        .collect();
                    ctx.submit(&mut batch);
                }
                Take => assert!(ctx.take().is_some(), "step {i}: nothing to take"),
                Stalled(on) => ctx.stalled(*on),
            }
            assert_eq!(ctx.loop_policy(), *want, "step {i}: {step:?}");
        }
    }
}

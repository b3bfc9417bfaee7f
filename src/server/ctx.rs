//! Everything the loop and the app threads share (`Ctx`): the options and the app, the
//! hand-offs between the loop thread and the app threads (waitress's `ThreadedTaskDispatcher`:
//! one job queue of channels with runnable requests, and one queue of channels the loop must
//! look at again, with a single coalesced `mio::Waker` wake), the request pool, the access
//! log's pending lines, the retire hook and `request_timeout`'s records. The app threads
//! themselves are in `dispatch`; the job side of the hand-off (submit, take, the loop thread's
//! scheduling policy) is in `ctx/handoff`, the queue in `ctx/queue`.
//!
//! Both directions are batched: the loop pushes every channel that became runnable in one poll
//! iteration under one lock and wakes one idle thread unless one is already on its way to the
//! app (that one wakes the next once it runs: `running`); an app thread takes the next job
//! without sleeping while the queue is non-empty; the loop is woken at most once until it has
//! drained its queue (`wake_pending`).
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Instant;

use super::access_log::PendingLines;
use super::calls::Calls;
use super::lock::lock;
use super::outbuf::SpillFailed;
use super::shared::{Job, Shared};
use super::throttle::Throttle;
use super::{RetireHook, RetireReason, ServerOptions};
use crate::http::app::App;
use crate::http::{OverflowableBuffer, Request};

/// Most recycled `Request`s kept (more would only be idle memory).
const POOL_MAX: usize = 256;

mod handoff;
mod queue;

use handoff::Jobs;
use queue::QueueLen;

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
    /// Reports of connections the PROXY protocol refused (`proxy_header::refused`).
    proxy_refusals: Mutex<Throttle>,
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
            jobs: Mutex::new(Jobs::new()),
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
            proxy_refusals: Mutex::new(Throttle::default()),
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

    /// When a refused PROXY connection is next reported (only the loop thread asks).
    pub(crate) fn proxy_refusals(&self) -> std::sync::MutexGuard<'_, Throttle> {
        lock(&self.proxy_refusals)
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

//! The app-thread hand-off (waitress's `ThreadedTaskDispatcher` accounting): what the app
//! threads are doing (`Jobs`: idle, on deck, waking, yielding, stalled) and `Ctx`'s methods that
//! queue jobs and take them (`submit`, `take`, `running`), stop the threads (`stop_threads`,
//! `cancel_queued`) and choose the loop thread's scheduling policy (`loop_policy`, `stalled`).
//! The queue itself is `ctx/queue`.
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::queue::JobQueue;
use super::{lock, Ctx, Shared};

pub(super) struct Jobs {
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
    /// App threads that have come to `take` at least once (a thread started again after a
    /// panic counts again: only the difference to `threads` while it is positive matters).
    /// Until then a thread is starting, not busy: a job queued meanwhile (connections that
    /// waited in the backlog while the worker booted) waits for no one.
    started: usize,
    stop: bool,
    last_depth_warning: Option<Instant>,
}

impl Jobs {
    /// Nothing queued, no thread counted yet (what `Ctx::new` starts with).
    pub(super) fn new() -> Jobs {
        Jobs {
            q: JobQueue::default(),
            idle: 0,
            on_deck: 0,
            waking: 0,
            yielding: 0,
            stalled: 0,
            started: 0,
            stop: false,
            last_depth_warning: None,
        }
    }

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

impl Ctx {
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
        // Threads free to take a job at once: idle ones, ones about to look again (`yielding`)
        // and ones still starting (waitress starts its threads before it accepts, so a task
        // queued at start is never "behind" busy threads there).
        let free =
            jobs.idle + jobs.yielding + self.opts.threads.max(1).saturating_sub(jobs.started);
        if depth > free {
            // waitress warns on every queued task; once a second is enough to be seen.
            let now = Instant::now();
            if jobs
                .last_depth_warning
                .is_none_or(|t| now - t >= Duration::from_secs(1))
            {
                jobs.last_depth_warning = Some(now);
                log::warn!(target: "waitress.queue", "Task queue depth is {}", depth - free);
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

    /// Next channel to serve; None once stopping and the queue is empty. `first`: the calling
    /// thread's first call (it is no longer starting, see `Jobs::started`).
    pub(crate) fn take(&self, first: bool) -> Option<Arc<Shared>> {
        let mut jobs = lock(&self.jobs);
        jobs.started += usize::from(first);
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
}

#[cfg(test)]
mod tests {
    use std::os::fd::OwnedFd;
    use std::os::unix::net::UnixStream;

    use super::*;
    use crate::http::app::{App, AppFailure, Exchange};
    use crate::server::outbuf::OutBuf;
    use crate::server::shared::ChanState;
    use crate::server::ServerOptions;

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
                Take => assert!(ctx.take(i == 4).is_some(), "step {i}: nothing to take"),
                Stalled(on) => ctx.stalled(*on),
            }
            assert_eq!(ctx.loop_policy(), *want, "step {i}: {step:?}");
        }
    }
}

//! The worker's event loop (waitress's `wasyncore.loop` + `BaseWSGIServer`): one mio poll over
//! the listeners, every client channel and a waker; accepting under `connection_limit` (with
//! eviction of idle connections), readiness dispatch, app-thread notifications, and timers.
//! What it does with one channel (read, send, take back from the app, finish, close) is in
//! `event_loop/chan_events`.
//!
//! Every socket is registered once, readable + writable, edge-triggered: no epoll_ctl per
//! request. A channel that is not read when readable remembers it (`read_deferred`).
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Events, Poll, Token, Waker};

use super::access_file::AccessLog;
use super::channel::{head_recv, Channel, BODY_RECV};
use super::ctx::Ctx;
use super::dispatch;
use super::listener::{self, Listening, LISTENER0};
use super::sched;
use super::shared::{Shared, GATHER_DELAY};
use super::splice::BodyPipe;
use super::watchdog;
use super::{Control, ServerError, ServerOptions, GRACEFUL, IMMEDIATE, RUNNING};
use crate::http::app::App;
use crate::net::Listener;
use slab::Slab;

const WAKER: Token = Token(0);
/// Channel slot `i` has token `CHANNEL0 + i` (listeners have theirs from `LISTENER0`).
pub(super) const CHANNEL0: usize = 1 << 16;
/// Timer resolution for the whole-head deadline and lingering closes.
const TICK: Duration = Duration::from_secs(1);
/// How long `run` waits for app threads still inside the app: waitress waits 5 s on a normal
/// stop; an immediate stop only gives them a moment (their output is discarded anyway). The
/// wait starts again each time a thread ends: threads that only leave (each takes the GIL once
/// to drop its Python state, one after another) are all waited for, however many there are.
const JOIN_WAIT: Duration = Duration::from_secs(5);
const JOIN_WAIT_IMMEDIATE: Duration = Duration::from_secs(1);
/// On a graceful stop the threads are also waited for, progress or not, until half of
/// `graceful_timeout` has passed since the stop began (the other half is Python's exit, see
/// supervisor/pyexit.rs), and at most this long: on a loaded machine, threads queued for the
/// GIL behind app threads that hold it in C code can go more than `JOIN_WAIT` without one
/// leaving.
const JOIN_BUDGET_MAX: Duration = Duration::from_secs(60);
/// Graceful stop: how long an idle keep-alive connection is kept open for one more request
/// (answered with `Connection: close`). Closing it at once races with a client that is just
/// sending its next request on it: a failed request in every load test across a reload.
const DRAIN_IDLE_GRACE: Duration = Duration::from_secs(1);

mod chan_events;

/// The loop's state. Its methods are split by job over `event_loop` (here, with a channel's
/// events in `event_loop/chan_events`), `accept` and `timers`; what those two files use is
/// `pub(super)` (`pub(in crate::server)` in `chan_events`): the poll and the listeners (accept
/// registers and re-arms them), the context (read-only), the channels (a `Slab`: the
/// key is the slot, `CHANNEL0 + key` the token) and admission's own two fields, which only `accept` reads and writes (they live
/// here because this file cannot import one of `accept`'s types: `accept` imports it).
pub(crate) struct EventLoop {
    pub(super) poll: Poll,
    pub(super) ctx: Arc<Ctx>,
    ctl: Arc<Control>,
    pub(super) listeners: Vec<Listening>,
    /// The open connections by slot (token `CHANNEL0 + key`); `len()` counts them.
    pub(super) chans: Slab<Channel>,
    /// `accept`'s: the "connection limit reached" warning was logged (logged once per time
    /// the limit is reached).
    pub(super) at_limit_logged: bool,
    /// `accept`'s: next look at the backlog while clients wait at the limit (see
    /// `accept_deadline`).
    pub(super) waiting_retry: Instant,
    scratch: Vec<u8>,
    /// Channels that stopped reading for fairness and must be read again.
    again: Vec<usize>,
    access: Option<AccessLog>,
    /// A graceful stop is under way (`start_drain`).
    draining: bool,
    /// While draining: idle connections are closed from this instant on (`drain_grace_over`).
    drain_idle_until: Option<Instant>,
    /// When pending access-log lines go to the writer at the latest (`flush_access_log`).
    log_due: Option<Instant>,
    /// This thread switches its own scheduling policy (it started under the default one).
    own_sched: bool,
    /// Channels whose gathered output must be sent by the given instant (in deadline order;
    /// sent by `flush_gathered`).
    gathered: VecDeque<(Instant, Arc<Shared>)>,
    /// The pipe large bodies are spliced through into their temp files.
    body_pipe: BodyPipe,
}

impl EventLoop {
    pub(crate) fn new(
        opts: ServerOptions,
        listeners: Vec<Listener>,
        app: Arc<dyn App>,
    ) -> Result<(EventLoop, Arc<Control>), ServerError> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let access = match &opts.access_log {
            Some(p) => Some(AccessLog::open(p).map_err(|source| ServerError::AccessLog {
                path: p.clone(),
                source,
            })?),
            None => None,
        };
        let ls = listener::register(&poll, listeners)?;
        let scratch = vec![0u8; head_recv(opts.recv_bytes).max(BODY_RECV)];
        let ctl = Arc::new(Control {
            stop: AtomicU8::new(RUNNING),
            reopen: AtomicBool::new(false),
            waker: waker.clone(),
        });
        let ctx = Arc::new(Ctx::new(opts, app, waker));
        let el = EventLoop {
            poll,
            ctx,
            ctl: ctl.clone(),
            listeners: ls,
            chans: Slab::new(),
            at_limit_logged: false,
            waiting_retry: Instant::now(),
            scratch,
            again: Vec::new(),
            access,
            draining: false,
            drain_idle_until: None,
            log_due: None,
            own_sched: sched::is_default(),
            gathered: VecDeque::new(),
            body_pipe: BodyPipe::default(),
        };
        Ok((el, ctl))
    }

    /// Ok(the number of app threads still running, inside the app, when it gave up on them).
    pub(crate) fn run(mut self) -> Result<usize, ServerError> {
        let threads = dispatch::spawn_threads(&self.ctx)?;
        let watchdog_stop = Arc::new(AtomicBool::new(false));
        let watchdog = watchdog::spawn(&self.ctx, &watchdog_stop);
        let result = self.serve();
        watchdog_stop.store(true, Ordering::Relaxed);
        if let Some(w) = watchdog {
            let _ = w.join();
        }
        // Stop: cancel what never started, let the threads finish what they run.
        let all: Vec<usize> = self.chans.iter().map(|(i, _)| i).collect();
        for i in all {
            self.close(i);
        }
        let cancelled = self.ctx.cancel_queued();
        if cancelled > 0 {
            log::warn!(target: "waitress", "Canceling {cancelled} pending task(s)");
        }
        self.ctx.stop_threads();
        let (wait, budget_end) = match self.ctl.stop.load(Ordering::SeqCst) {
            IMMEDIATE => (JOIN_WAIT_IMMEDIATE, None),
            _ => (JOIN_WAIT, self.join_budget_end()),
        };
        let left = || threads.iter().filter(|t| !t.is_finished()).count();
        let mut running = left();
        let mut deadline = Instant::now() + wait;
        while running > 0 && budget_end.map_or(deadline, |b| b.max(deadline)) > Instant::now() {
            std::thread::sleep(Duration::from_millis(5));
            let now_running = left();
            if now_running < running {
                deadline = Instant::now() + wait;
            }
            running = now_running;
        }
        if running > 0 {
            log::warn!(target: "waitress", "{running} thread(s) still running");
        } else {
            for t in threads {
                let _ = t.join();
            }
        }
        self.flush_access_log(Instant::now(), true);
        result.map(|()| running)
    }

    fn serve(&mut self) -> Result<(), ServerError> {
        let mut events = Events::with_capacity(1024);
        // The last poll returned one event or none (`Ctx::loop_sparse`).
        let mut sparse = true;
        let mut batch: Vec<Arc<Shared>> = Vec::new();
        let mut done: Vec<Arc<Shared>> = Vec::new();
        let mut gathered: Vec<Arc<Shared>> = Vec::new();
        let mut next_tick = Instant::now() + TICK;
        let cleanup = Duration::from_secs(self.ctx.opts.cleanup_interval.max(1));
        // Saturating: `cleanup_interval` accepts up to 2^64-1 seconds.
        let mut next_sweep = crate::time::later(Instant::now(), cleanup);
        // One clock read per iteration: the timeout is computed from the previous iteration's
        // reading (at most one iteration's work late, far below the 1 s timer resolution).
        let mut now = Instant::now();
        loop {
            let timeout = if self.again.is_empty() {
                let mut next = self.accept_deadline(now, next_tick.min(next_sweep));
                if let Some((due, _)) = self.gathered.front() {
                    next = next.min(*due);
                }
                if let Some(due) = self.log_due {
                    next = next.min(due);
                }
                next.saturating_duration_since(now)
            } else {
                Duration::ZERO
            };
            if self.own_sched {
                if let Some(backlogged) = self.ctx.loop_policy() {
                    sched::loop_thread(backlogged);
                }
            }
            self.ctx.loop_sparse(sparse);
            let r = self.poll.poll(&mut events, Some(timeout));
            self.ctx.loop_sparse(false);
            sparse = events.iter().nth(1).is_none();
            if let Err(e) = r {
                if e.kind() != std::io::ErrorKind::Interrupted {
                    return Err(e.into());
                }
            }
            now = Instant::now();
            let mut woke = false;
            for ev in events.iter() {
                match ev.token() {
                    WAKER => woke = true,
                    Token(t) if t >= CHANNEL0 => {
                        let i = t - CHANNEL0;
                        if ev.is_writable() {
                            self.on_writable(i, now);
                        }
                        if ev.is_read_closed() {
                            if let Some(ch) = self.chan(i) {
                                ch.on_read_closed();
                            }
                        }
                        if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                            self.read(i, &mut batch, now);
                        }
                    }
                    Token(t) => {
                        if let Some(l) = self.listeners.get_mut(t - LISTENER0) {
                            l.accept_pending = true;
                        }
                    }
                }
            }
            for i in std::mem::take(&mut self.again) {
                self.read(i, &mut batch, now);
            }
            if woke {
                match self.ctl.stop.load(Ordering::SeqCst) {
                    IMMEDIATE => return Ok(()),
                    GRACEFUL if !self.draining => self.start_drain(),
                    _ => {}
                }
                if self.ctl.reopen.swap(false, Ordering::SeqCst) {
                    // Lines logged before the signal go to the file being rotated away.
                    self.flush_access_log(now, true);
                    if let Some(a) = &mut self.access {
                        a.reopen();
                    }
                }
                self.ctx.take_done(&mut done, &mut gathered);
                for sh in done.drain(..) {
                    self.after_app(&sh, &mut batch, now);
                }
                let due = now + GATHER_DELAY;
                self.gathered.extend(gathered.drain(..).map(|sh| (due, sh)));
            }
            self.flush_gathered(now);
            if !self.draining {
                self.accept(now);
            }
            self.ctx.submit(&mut batch);
            if now >= next_tick {
                next_tick = now + TICK;
                self.tick(now);
            }
            if now >= next_sweep {
                next_sweep = crate::time::later(now, cleanup);
                self.sweep(now);
            }
            self.close_idle_after_grace(now);
            self.flush_access_log(now, false);
            if self.draining && self.chans.is_empty() {
                return Ok(());
            }
        }
    }

    /// Graceful stop: stop accepting (the backlog is accepted first, then the listeners
    /// close), tell every busy channel's app thread to report when it is done, and give idle
    /// connections `DRAIN_IDLE_GRACE` before they are closed.
    fn start_drain(&mut self) {
        self.draining = true;
        self.ctx.start_draining();
        self.drain_backlog(Instant::now());
        for l in self.listeners.drain(..) {
            l.deregister(self.poll.registry());
        }
        self.drain_idle_until = Some(Instant::now() + DRAIN_IDLE_GRACE);
        for (_, ch) in self.chans.iter().filter(|(_, ch)| !ch.is_idle()) {
            ch.shared.lock().notify_when_done();
        }
    }

    /// Until when a graceful stop waits for app threads still leaving, progress or not (see
    /// `JOIN_BUDGET_MAX`); None if no graceful stop began.
    fn join_budget_end(&self) -> Option<Instant> {
        let began = self.drain_idle_until? - DRAIN_IDLE_GRACE;
        let half = Duration::from_secs(self.ctx.opts.graceful_timeout / 2);
        Some(began + half.min(JOIN_BUDGET_MAX))
    }

    /// Draining, and the idle connections' grace is over at `now`: they are closed.
    pub(super) fn drain_grace_over(&self, now: Instant) -> bool {
        self.draining && self.drain_idle_until.is_some_and(|t| now >= t)
    }

    /// The next channel whose gathered output is due at `now` (taken off the list), if any.
    pub(super) fn take_due_gathered(&mut self, now: Instant) -> Option<Arc<Shared>> {
        if self.gathered.front().is_some_and(|(due, _)| *due <= now) {
            self.gathered.pop_front().map(|(_, sh)| sh)
        } else {
            None
        }
    }

    pub(super) fn chan(&mut self, i: usize) -> Option<&mut Channel> {
        self.chans.get_mut(i)
    }

    /// Hands the app threads' access-log lines to the writer thread once `LOG_BATCH` bytes are
    /// pending or `LOG_DELAY` after the loop first saw them (`force`: now, at a stop), so a
    /// busy worker pays one hand-off, one writer wake-up and one write(2) per batch, not per
    /// loop iteration (one per request at C=1); app threads never wait on the file.
    fn flush_access_log(&mut self, now: Instant, force: bool) {
        let (Some(a), Some(pending)) = (&mut self.access, self.ctx.access_log()) else {
            return;
        };
        if let Some(batch) = pending.take_batch(now, &mut self.log_due, force) {
            a.write(batch);
        }
    }
}

//! `request_timeout`'s records: one per app thread, of the app call it is running (`Calls`),
//! kept by the app threads (`begin`, `end`) and looked at by the watchdog thread (`look`,
//! watchdog.rs). Only kept when `request_timeout` is on.
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::lock::lock;
use super::shared::Shared;
use crate::http::{Request, Version};

/// How long an interrupted call may take to return before the worker is retired.
pub(crate) const STUCK_GRACE: Duration = Duration::from_secs(5);

/// The call one app thread is running.
#[derive(Default)]
struct Slot {
    /// `pthread_self` of the app thread (Python's `threading.get_ident()`).
    thread: u64,
    running: Option<Running>,
    /// Reused for every call's `METHOD path` (no allocation per request once warm).
    what: String,
}

struct Running {
    started: Instant,
    ch: Arc<Shared>,
    version: Version,
    /// Set once timed out: when it was interrupted, and whether retirement was asked for.
    interrupted: Option<(Instant, bool)>,
}

/// A call the watchdog must act on (`Calls::look`).
pub(crate) enum Overdue {
    /// It just outlived the limit (its client was answered for): interrupt it. `call` =
    /// (slot, when the call started, its thread), `what` = `METHOD path`.
    Timeout {
        call: (usize, Instant, u64),
        what: String,
        elapsed: Duration,
    },
    /// Still running `STUCK_GRACE` after it was interrupted: ask for the worker's retirement.
    Stuck { what: String },
}

/// Every app thread's current call (only kept when `request_timeout` is on).
pub(crate) struct Calls {
    limit: Option<Duration>,
    slots: Vec<Mutex<Slot>>,
}

impl Calls {
    pub(crate) fn new(request_timeout: u64, threads: usize) -> Calls {
        let on = request_timeout > 0;
        Calls {
            limit: on.then(|| Duration::from_secs(request_timeout)),
            slots: (0..if on { threads.max(1) } else { 0 })
                .map(|_| Mutex::new(Slot::default()))
                .collect(),
        }
    }

    pub(crate) fn enabled(&self) -> bool {
        self.limit.is_some()
    }

    /// `request_timeout` (None: off).
    pub(crate) fn limit(&self) -> Option<Duration> {
        self.limit
    }

    /// App thread `slot` starts calling the app for `req` on `ch`.
    pub(crate) fn begin(&self, slot: usize, ch: &Arc<Shared>, req: &Request, version: Version) {
        let Some(m) = self.slots.get(slot) else {
            return;
        };
        let mut s = lock(m);
        // SAFETY: pthread_self has no preconditions and always succeeds.
        s.thread = unsafe { libc::pthread_self() } as u64;
        s.what.clear();
        s.what.push_str(&String::from_utf8_lossy(req.method()));
        s.what.push(' ');
        s.what.push_str(&String::from_utf8_lossy(req.path()));
        s.running = Some(Running {
            started: Instant::now(),
            ch: ch.clone(),
            version,
            interrupted: None,
        });
    }

    /// App thread `slot`'s call returned.
    pub(crate) fn end(&self, slot: usize) {
        if let Some(m) = self.slots.get(slot) {
            lock(m).running = None;
        }
    }

    /// The call app thread `slot` started at `started` has not returned yet.
    pub(crate) fn still_running(&self, slot: usize, started: Instant) -> bool {
        lock(&self.slots[slot])
            .running
            .as_ref()
            .is_some_and(|r| r.started == started)
    }

    /// The watchdog's look at every call at `now`: a call past `limit` is marked interrupted
    /// and `answer` runs for its connection, then `act` for it; a call still running
    /// `STUCK_GRACE` after that is marked and goes to `act` once more.
    pub(crate) fn look(
        &self,
        now: Instant,
        limit: Duration,
        mut answer: impl FnMut(&Arc<Shared>, Version),
        mut act: impl FnMut(Overdue),
    ) {
        for (i, m) in self.slots.iter().enumerate() {
            let mut s = lock(m);
            let thread = s.thread;
            let Some(run) = s.running.as_mut() else {
                continue;
            };
            let (started, elapsed) = (run.started, now.saturating_duration_since(run.started));
            match run.interrupted {
                None if elapsed >= limit => {
                    run.interrupted = Some((now, false));
                    // Under the slot lock, so the call cannot end and the thread start the next
                    // request on this connection in between (lock order: slot, then channel; app
                    // threads never hold a channel lock while taking their slot).
                    answer(&run.ch, run.version);
                    let what = s.what.clone();
                    drop(s);
                    act(Overdue::Timeout {
                        call: (i, started, thread),
                        what,
                        elapsed,
                    });
                }
                Some((at, false)) if now.saturating_duration_since(at) >= STUCK_GRACE => {
                    run.interrupted = Some((at, true));
                    let what = s.what.clone();
                    drop(s);
                    act(Overdue::Stuck { what });
                }
                _ => {}
            }
        }
    }
}

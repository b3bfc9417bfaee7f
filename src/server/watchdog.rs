//! `request_timeout`: one record per app thread of the call it is running, and a watchdog
//! thread that looks at them four times a second. A call past the limit is logged at ERROR
//! (method, path, elapsed time, the Python stack of its thread), answered for the client
//! (`504 Gateway Timeout` if no response head went out, else the connection is cut), and
//! interrupted (`App::interrupt`: an exception raised in the thread). A call that still has
//! not returned `STUCK_GRACE` later asks the supervisor for this worker's retirement: a thread
//! blocked in C code cannot be interrupted, only abandoned with its process.
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::dispatch::{lock, Ctx};
use super::shared::{unix_now, Shared};
use super::RetireReason;
use crate::http::{Request, Version};

/// How long an interrupted call may take to return before the worker is retired.
pub(crate) const STUCK_GRACE: Duration = Duration::from_secs(5);
/// How often the watchdog looks.
const PERIOD: Duration = Duration::from_millis(250);

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
}

/// Starts the watchdog (None when `request_timeout` is off); it ends when `stop` is set.
pub(crate) fn spawn(ctx: &Arc<Ctx>, stop: &Arc<AtomicBool>) -> Option<JoinHandle<()>> {
    let limit = ctx.calls.limit?;
    let (ctx, stop) = (ctx.clone(), stop.clone());
    std::thread::Builder::new()
        .name("watchdog".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(PERIOD);
                look(&ctx, limit);
            }
        })
        .ok()
}

fn look(ctx: &Arc<Ctx>, limit: Duration) {
    let now = Instant::now();
    for (i, m) in ctx.calls.slots.iter().enumerate() {
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
                answer_for_the_client(ctx, &run.ch, run.version);
                let what = s.what.clone();
                drop(s);
                interrupt(ctx, (i, started, thread), what, elapsed, limit);
            }
            Some((at, false)) if now.saturating_duration_since(at) >= STUCK_GRACE => {
                run.interrupted = Some((at, true));
                let what = s.what.clone();
                drop(s);
                log::error!(target: "waitress",
                    "request_timeout: {what} still running {:.1} s after it was interrupted; \
                     asking for this worker's replacement", STUCK_GRACE.as_secs_f64());
                ctx.ask_retire(RetireReason::StuckRequest);
            }
            _ => {}
        }
    }
}

/// 504 if nothing of the response went out yet, else the connection is cut; either way the
/// app thread's later writes fail as if the client had gone.
fn answer_for_the_client(ctx: &Ctx, ch: &Arc<Shared>, version: Version) {
    let mut st = lock(&ch.st);
    if st.closed {
        return;
    }
    st.timed_out = true;
    st.close_when_flushed = true;
    st.queue.clear();
    let cut = if st.head_out {
        true
    } else {
        let date = crate::http::date::http_date(unix_now());
        let resp = crate::http::gateway_timeout_response(version, ctx.opts.ident.as_deref(), &date);
        match st.out.send(ch.fd(), &[&resp]) {
            Ok(_) if st.out.is_empty() => false,
            Ok(_) => {
                // Rare (a full socket buffer): the loop sends the rest.
                let tell = ch.note_output(&st);
                drop(st);
                if tell {
                    ctx.notify_loop(ch.clone());
                }
                return;
            }
            Err(_) => true,
        }
    };
    drop(st);
    ch.disconnected.store(true, Ordering::Release);
    // The response is complete (FIN after it) or there is none to give (cut); the socket is
    // torn down by the loop once the app thread lets go of it.
    let how = if cut {
        nix::sys::socket::Shutdown::Both
    } else {
        nix::sys::socket::Shutdown::Write
    };
    let _ = nix::sys::socket::shutdown(ch.fd.as_raw_fd(), how);
}

/// Logs the stuck call with its Python stack and raises an exception in its thread, from a
/// short-lived thread: a thread that holds the GIL in C code would block the watchdog itself.
/// `call` = (slot, when the call started, its thread): the interrupt only lands if that same
/// call is still running when it is raised.
fn interrupt(
    ctx: &Arc<Ctx>,
    call: (usize, Instant, u64),
    what: String,
    elapsed: Duration,
    limit: Duration,
) {
    let ctx = ctx.clone();
    let (slot, started, thread) = call;
    let _ = std::thread::Builder::new()
        .name("interrupt".into())
        .spawn(move || {
            let still_stuck = || {
                lock(&ctx.calls.slots[slot])
                    .running
                    .as_ref()
                    .is_some_and(|r| r.started == started)
            };
            let stack = ctx.app.interrupt(thread, &still_stuck);
            log::error!(target: "waitress",
                "request_timeout: {what} has run {:.1} s (limit {} s): answered 504 (or cut if \
                 the response had started) and interrupted with TimeoutError; its stack:\n{}",
                elapsed.as_secs_f64(), limit.as_secs(),
                stack.as_deref().unwrap_or("(not available)").trim_end());
        });
}

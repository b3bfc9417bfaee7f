//! `request_timeout`: a watchdog thread that looks at the app threads' calls (`calls`) four
//! times a second. A call past the limit is logged at ERROR (method, path, elapsed time, the
//! Python stack of its thread), answered for the client (`504 Gateway Timeout` if no response
//! head went out, else the connection is cut), and interrupted (`App::interrupt`: an exception
//! raised in the thread). A call that still has not returned `STUCK_GRACE` later asks the
//! supervisor for this worker's retirement: a thread blocked in C code cannot be interrupted,
//! only abandoned with its process.
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::calls::{Overdue, STUCK_GRACE};
use super::ctx::Ctx;
use super::shared::{unix_now, Shared};
use super::sock;
use super::RetireReason;
use crate::http::Version;

/// How often the watchdog looks.
const PERIOD: Duration = Duration::from_millis(250);

/// Starts the watchdog (None when `request_timeout` is off); it ends when `stop` is set.
pub(crate) fn spawn(ctx: &Arc<Ctx>, stop: &Arc<AtomicBool>) -> Option<JoinHandle<()>> {
    let limit = ctx.calls.limit()?;
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
    ctx.calls.look(
        Instant::now(),
        limit,
        |ch, version| answer_for_the_client(ctx, ch, version),
        |overdue| match overdue {
            Overdue::Timeout {
                call,
                what,
                elapsed,
            } => interrupt(ctx, call, what, elapsed, limit),
            Overdue::Stuck { what } => {
                log::error!(target: "waitress",
                    "request_timeout: {what} still running {:.1} s after it was interrupted; \
                     asking for this worker's replacement", STUCK_GRACE.as_secs_f64());
                ctx.ask_retire(RetireReason::StuckRequest);
            }
        },
    );
}

/// 504 if nothing of the response went out yet, else the connection is cut; either way the
/// app thread's later writes fail as if the client had gone.
fn answer_for_the_client(ctx: &Ctx, ch: &Arc<Shared>, version: Version) {
    let mut st = ch.lock();
    if st.is_closed() {
        return;
    }
    st.time_out();
    let cut = if st.head_out() {
        true
    } else {
        let date = crate::http::date::http_date(unix_now());
        let resp = crate::http::gateway_timeout_response(version, ctx.opts.ident.as_deref(), &date);
        match st.out_mut().send(ch.fd(), &[&resp]) {
            Ok(_) => {
                // The flag follows the output either way: this send may also have drained an
                // earlier response's tail (then the loop's writable events skip the lock again).
                let tell = ch.note_output(&st);
                if st.out().is_empty() {
                    false
                } else {
                    // Rare (a full socket buffer): the loop sends the rest.
                    drop(st);
                    if tell {
                        ctx.notify_loop(ch.clone());
                    }
                    return;
                }
            }
            Err(_) => true,
        }
    };
    // A close-delimited body cut here must not end in a FIN (it would look complete).
    let reset = cut && st.resets_on_close();
    drop(st);
    ch.mark_disconnected();
    if reset {
        return sock::reset_now(ch.fd());
    }
    // The response is complete (FIN after it) or there is none to give (cut); the socket is
    // torn down by the loop once the app thread lets go of it.
    let how = if cut {
        nix::sys::socket::Shutdown::Both
    } else {
        nix::sys::socket::Shutdown::Write
    };
    let _ = nix::sys::socket::shutdown(ch.fd().as_raw_fd(), how);
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
            let still_stuck = || ctx.calls.still_running(slot, started);
            let stack = ctx.app.interrupt(thread, &still_stuck);
            log::error!(target: "waitress",
                "request_timeout: {what} has run {:.1} s (limit {} s): answered 504 (or cut if \
                 the response had started) and interrupted with TimeoutError; its stack:\n{}",
                elapsed.as_secs_f64(), limit.as_secs(),
                stack.as_deref().unwrap_or("(not available)").trim_end());
        });
}

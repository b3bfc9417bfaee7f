//! Python's exit, bounded: `Py_FinalizeEx` first waits for the app's non-daemon threads,
//! forever. Used by a stopping worker and by a `preload_app` master.
use std::sync::mpsc;
use std::time::Duration;

use super::log_warn;

/// Longest an exit waits for the app's own non-daemon threads (at most half of
/// `graceful_timeout`, so a worker ends before the master's SIGKILL).
const LINGER_MAX: Duration = Duration::from_secs(5);

/// Finalises Python (atexit handlers run) and returns; if the app left a non-daemon thread
/// running (a scheduler, a metrics pusher…) that has not ended within half of
/// `graceful_timeout` (seconds; 5 s at most), names those threads and the fix and ends the
/// process with `code` instead.
/// Before, a worker lingered until the master killed it at `graceful_timeout`, logged as
/// "killed by a signal", its atexit handlers unrun, on every stop, reload and `max_requests`
/// replacement; a `preload_app` master never exited.
pub(super) fn finalize(code: i32, graceful_timeout: u64) {
    let half = Duration::from_secs(graceful_timeout) / 2;
    let _watch = watch(code, half.min(LINGER_MAX));
    crate::wsgi::shutdown();
}

/// Nothing is watched when no such thread runs; the watch ends when the returned sender is
/// dropped (Python finished).
fn watch(code: i32, wait: Duration) -> Option<mpsc::Sender<()>> {
    let threads = crate::wsgi::lingering_threads();
    if threads.is_empty() {
        return None;
    }
    let (done, finished) = mpsc::channel::<()>();
    std::thread::Builder::new()
        .name("exit-watch".into())
        .spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = finished.recv_timeout(wait) {
                log_warn(&format!(
                    "python's exit still waits after {:.1} s for the app's threads: {}; not \
                     waited for (atexit handlers do not run): make them daemon threads \
                     (daemon=True) or stop them in an atexit handler, they delay every stop, \
                     reload and max_requests replacement",
                    wait.as_secs_f64(),
                    threads.join(", ")
                ));
                // SAFETY: _exit(2) ends the process at once and runs nothing more in it; the
                // main thread is inside Py_FinalizeEx, which must not be re-entered.
                unsafe { libc::_exit(code) }
            }
        })
        .ok()?;
    Some(done)
}

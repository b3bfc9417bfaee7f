//! What waitressd's logger (`crate::logging`) hands elsewhere: the instance's `proc_name` for
//! every line's prefix, and the records of waitress's own loggers. When the app's Python
//! logging is configured (an INI `[loggers]` section or
//!   `--log-config`), the records waitress sends through its own Python loggers (`waitress`,
//!   `waitress.queue`) go to a sink the WSGI layer installs, which hands them to Python logging
//!   under the same names, levels and texts, so an INI's `[logger_waitress]` decides, as under
//!   pserve.
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

/// Receives (logger name, level, message) for waitress's loggers; must not block.
pub type Sink = Box<dyn Fn(&str, log::Level, String) + Send + Sync>;

static SINK: OnceLock<Sink> = OnceLock::new();
static ON: AtomicBool = AtomicBool::new(false);
static PROC_NAME: OnceLock<String> = OnceLock::new();

/// Writes `line` and a newline to stderr in one write(2), ignoring a failure: never
/// `eprintln!`, which panics when stderr cannot be written (an `error_log` on a full disk),
/// and one write, so other processes' output on the same stream cannot split the line.
pub fn stderr_line(line: &str) {
    use std::io::Write;
    let _ = std::io::stderr().write_all(format!("{line}\n").as_bytes());
}

/// The loggers waitress itself logs on.
pub fn is_waitress_logger(target: &str) -> bool {
    target == "waitress" || target == "waitress.queue"
}

/// From now on, waitress's records go to `sink` (once per process; later calls are ignored).
pub fn set_sink(sink: Sink) {
    if SINK.set(sink).is_ok() {
        ON.store(true, Ordering::Release);
    }
}

/// Back to stderr for good (before Python is finalised).
pub fn stop_forwarding() {
    ON.store(false, Ordering::Release);
}

/// Whether waitress's records go to Python logging in this process.
pub fn forwarding() -> bool {
    ON.load(Ordering::Acquire)
}

/// Names this instance in every later log line (once per process).
pub fn set_proc_name(name: &str) {
    if !name.is_empty() {
        let _ = PROC_NAME.set(name.to_string());
    }
}

/// This instance's `proc_name`, once set.
pub fn proc_name() -> Option<&'static str> {
    PROC_NAME.get().map(String::as_str)
}

/// Hands a record to the sink when it belongs to waitress's loggers and forwarding is on.
/// Returns false when the caller must log it itself.
pub fn forward(r: &log::Record) -> bool {
    if !(forwarding() && is_waitress_logger(r.target())) {
        return false;
    }
    match SINK.get() {
        Some(sink) => {
            sink(r.target(), r.level(), r.args().to_string());
            true
        }
        None => false,
    }
}

//! waitressd's `log` logger: env_logger on stderr (`RUST_LOG`), with two additions.
//! - The instance's `proc_name` in every line's prefix, once the configuration is loaded.
//! - When the app's Python logging is configured (an INI `[loggers]` section or
//!   `--log-config`), the records waitress sends through its own Python loggers (`waitress`,
//!   `waitress.queue`) go to a sink the WSGI layer installs, which hands them to Python logging
//!   under the same names, levels and texts, so an INI's `[logger_waitress]` decides, as under
//!   pserve.
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

/// Receives (logger name, level, message) for waitress's loggers; must not block.
pub type Sink = Box<dyn Fn(&str, log::Level, String) + Send + Sync>;

static SINK: OnceLock<Sink> = OnceLock::new();
static ON: AtomicBool = AtomicBool::new(false);
static PROC_NAME: OnceLock<String> = OnceLock::new();

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

struct Bridge {
    inner: env_logger::Logger,
}

impl log::Log for Bridge {
    fn enabled(&self, m: &log::Metadata) -> bool {
        (forwarding() && is_waitress_logger(m.target())) || self.inner.enabled(m)
    }

    fn log(&self, r: &log::Record) {
        if is_waitress_logger(r.target()) && forwarding() {
            if let Some(sink) = SINK.get() {
                sink(r.target(), r.level(), r.args().to_string());
                return;
            }
        }
        self.inner.log(r);
    }

    fn flush(&self) {
        self.inner.flush();
    }
}

/// Installs the logger (level info unless `RUST_LOG` says otherwise). Safe to call more than
/// once.
pub fn init() {
    let env = env_logger::Env::default().default_filter_or("info");
    let inner = env_logger::Builder::from_env(env)
        .format(|buf, r| {
            let ts = buf.timestamp_millis();
            match PROC_NAME.get() {
                Some(name) => writeln!(
                    buf,
                    "[{ts} {:<5} {} {name}] {}",
                    r.level(),
                    r.target(),
                    r.args()
                ),
                None => writeln!(buf, "[{ts} {:<5} {}] {}", r.level(), r.target(), r.args()),
            }
        })
        .build();
    // Python logging filters forwarded records itself; INFO (`Serving on`) must reach it.
    let max = inner.filter().max(log::LevelFilter::Info);
    if log::set_boxed_logger(Box::new(Bridge { inner })).is_ok() {
        log::set_max_level(max);
    }
}

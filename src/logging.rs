//! waitressd's own log: the logger (env_logger lines on stderr, `proc_name` in the prefix,
//! waitress's own loggers forwarded to Python logging when the app configures it; see
//! `logbridge`), `log_level`, syslog priority prefixes for the journal, and pointing the
//! process's standard error at `error_log` (so Python tracebacks and `print(...,
//! file=sys.stderr)` land in the same file as waitressd's lines).
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// `log_level` values (Python's logging names) and the `log` filter each maps to.
pub const LEVELS: &[(&str, log::LevelFilter)] = &[
    ("debug", log::LevelFilter::Debug),
    ("info", log::LevelFilter::Info),
    ("warning", log::LevelFilter::Warn),
    ("error", log::LevelFilter::Error),
    ("critical", log::LevelFilter::Error),
];

/// True while standard error is the journal's stream (`JOURNAL_STREAM` names it): every line
/// then starts with its syslog priority (`<3>` error … `<7>` debug), as sd-daemon(3) describes.
static JOURNAL: AtomicBool = AtomicBool::new(false);

/// Set when `RUST_LOG` chose the filter: `log_level` then changes nothing.
static FROM_ENV: AtomicBool = AtomicBool::new(false);

/// `log_level` as a `log::LevelFilter` number (records above it are dropped here; the global
/// `log::max_level` stays at least info so waitress's records can reach Python logging).
static LEVEL: AtomicUsize = AtomicUsize::new(log::LevelFilter::Info as usize);

struct Logger {
    inner: env_logger::Logger,
}

impl log::Log for Logger {
    fn enabled(&self, m: &log::Metadata) -> bool {
        (crate::logbridge::forwarding() && crate::logbridge::is_waitress_logger(m.target()))
            || (self.passes(m.level()) && self.inner.enabled(m))
    }

    fn log(&self, r: &log::Record) {
        if !crate::logbridge::forward(r) && self.passes(r.level()) {
            self.inner.log(r);
        }
    }

    fn flush(&self) {
        self.inner.flush();
    }
}

impl Logger {
    fn passes(&self, level: log::Level) -> bool {
        FROM_ENV.load(Ordering::Relaxed) || level as usize <= LEVEL.load(Ordering::Relaxed)
    }
}

/// The filter for a `log_level` value (`None`: not a level).
pub fn level(name: &str) -> Option<log::LevelFilter> {
    LEVELS
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name.trim()))
        .map(|&(_, l)| l)
}

/// The syslog priority of a log level (RFC 5424 §6.2.1).
pub fn priority(level: log::Level) -> u8 {
    match level {
        log::Level::Error => 3,
        log::Level::Warn => 4,
        log::Level::Info => 6,
        log::Level::Debug | log::Level::Trace => 7,
    }
}

/// What starts a line of standard error at priority error: `<3>` when standard error is the
/// journal (a fatal boot error then shows under `journalctl -p err`), else nothing.
pub fn error_prefix() -> &'static str {
    if JOURNAL.load(Ordering::Relaxed) {
        "<3>"
    } else {
        ""
    }
}

/// Installs the logger on standard error: level info until `apply_level`, unless `RUST_LOG`
/// says otherwise. Safe to call more than once (later calls change nothing).
pub fn init() {
    let from_env = std::env::var_os("RUST_LOG").is_some_and(|v| !v.is_empty());
    FROM_ENV.store(from_env, Ordering::SeqCst);
    recheck_journal();
    let mut b = env_logger::Builder::new();
    if from_env {
        b.parse_env(env_logger::Env::default());
    } else {
        // Everything passes the logger's own filter; `log::set_max_level` decides.
        b.filter_level(log::LevelFilter::Trace);
    }
    b.format(|buf, rec| {
        let name = crate::logbridge::proc_name();
        let (sep, name) = (if name.is_some() { " " } else { "" }, name.unwrap_or(""));
        if JOURNAL.load(Ordering::Relaxed) {
            // The journal stamps each line itself.
            writeln!(
                buf,
                "<{}>{} {}{sep}{name}: {}",
                priority(rec.level()),
                rec.level(),
                rec.target(),
                rec.args()
            )
        } else {
            writeln!(
                buf,
                "[{} {:<5} {}{sep}{name}] {}",
                buf.timestamp_millis(),
                rec.level(),
                rec.target(),
                rec.args()
            )
        }
    });
    let inner = b.build();
    // Python logging filters forwarded records itself; INFO (`Serving on`) must reach it.
    let max = if from_env {
        inner.filter()
    } else {
        log::LevelFilter::Info
    };
    if log::set_boxed_logger(Box::new(Logger { inner })).is_ok() {
        log::set_max_level(max.max(log::LevelFilter::Info));
    }
}

/// Applies `log_level` (unless `RUST_LOG` is set, which wins).
pub fn apply_level(name: &str) {
    if FROM_ENV.load(Ordering::SeqCst) || log::max_level() == log::LevelFilter::Off {
        return;
    }
    if let Some(l) = level(name) {
        LEVEL.store(l as usize, Ordering::Relaxed);
        log::set_max_level(l.max(log::LevelFilter::Info));
    }
}

/// Whether standard error is the stream `JOURNAL_STREAM=DEV:INODE` names (systemd.exec(5)).
fn recheck_journal() {
    let on = std::env::var("JOURNAL_STREAM")
        .ok()
        .and_then(|v| {
            let (dev, ino) = v.split_once(':')?;
            Some((dev.parse::<u64>().ok()?, ino.parse::<u64>().ok()?))
        })
        .is_some_and(|(dev, ino)| {
            nix::sys::stat::fstat(std::io::stderr())
                .is_ok_and(|st| st.st_dev == dev && st.st_ino == ino)
        });
    JOURNAL.store(on, Ordering::Relaxed);
}

/// Opens `path` for appending (created 0640 if missing).
pub fn open_append(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .open(path)
}

/// Points standard error (fd 2) at `path`, opened for appending: waitressd's log, Python's
/// `sys.stderr` and anything a C extension writes all go there. `-` keeps standard error.
pub fn redirect_stderr(path: &Path) -> std::io::Result<()> {
    if path == Path::new("-") {
        restore_stderr();
        return Ok(());
    }
    let f = open_append(path)?;
    let _ = std::io::stderr().flush();
    // The standard error the process started with, for `restore_stderr`.
    ORIGINAL_STDERR.get_or_init(|| {
        // SAFETY: F_DUPFD_CLOEXEC only duplicates descriptor 2 into a new one, owned below.
        let fd = unsafe { libc::fcntl(2, libc::F_DUPFD_CLOEXEC, 3) };
        // SAFETY: `fd`, when valid, is a fresh descriptor nothing else owns.
        (fd >= 0).then(|| unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
    });
    // SAFETY: dup2 atomically replaces descriptor 2 with a copy of a descriptor we own; no Rust
    // object owns fd 2, and `f` is closed on drop while the copy stays.
    if unsafe { libc::dup2(f.as_raw_fd(), 2) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    recheck_journal();
    Ok(())
}

static ORIGINAL_STDERR: std::sync::OnceLock<Option<std::os::fd::OwnedFd>> =
    std::sync::OnceLock::new();

/// Points standard error back at the one the process started with (a reload that unsets
/// `error_log`, or an abandoned one that had set it); nothing if it was never redirected.
pub fn restore_stderr() {
    if let Some(Some(fd)) = ORIGINAL_STDERR.get() {
        let _ = std::io::stderr().flush();
        // SAFETY: dup2 replaces descriptor 2 with a copy of one this process keeps open.
        if unsafe { libc::dup2(fd.as_raw_fd(), 2) } >= 0 {
            recheck_journal();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_names_and_priorities() {
        let table = [
            ("debug", Some(log::LevelFilter::Debug)),
            ("INFO", Some(log::LevelFilter::Info)),
            ("warning", Some(log::LevelFilter::Warn)),
            ("error", Some(log::LevelFilter::Error)),
            ("critical", Some(log::LevelFilter::Error)),
            ("warn", None),
            ("", None),
        ];
        for (name, want) in table {
            assert_eq!(level(name), want, "{name}");
        }
        assert_eq!(priority(log::Level::Error), 3);
        assert_eq!(priority(log::Level::Warn), 4);
        assert_eq!(priority(log::Level::Info), 6);
        assert_eq!(priority(log::Level::Debug), 7);
    }
}

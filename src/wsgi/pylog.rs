//! waitress's log records through Python logging, as waitress sends them (loggers `waitress`
//! and `waitress.queue`), when the app's logging is configured from a file (an INI
//! `[loggers]` section or `--log-config`). Records from the event loop (which never runs
//! Python) go over a channel to one `waitress-log` thread that keeps a Python thread state.
//! Also the list of imported module files that `--reload` watches.
use std::sync::mpsc;

use pyo3::prelude::*;

use super::loader::helper;

fn py_level(level: log::Level) -> u8 {
    match level {
        log::Level::Error => 40,
        log::Level::Warn => 30,
        log::Level::Info => 20,
        log::Level::Debug | log::Level::Trace => 10,
    }
}

/// Whether the app's logging was configured from a file in this process.
pub fn configured() -> bool {
    Python::attach(|py| {
        helper(py)
            .and_then(|h| h.getattr("logging_configured"))
            .and_then(|v| v.extract::<bool>())
            .unwrap_or(false)
    })
}

/// The Python files of every module imported so far, outside the standard library.
pub fn module_files() -> Vec<std::path::PathBuf> {
    super::interpreter::with_live(|| {
        Python::attach(|py| {
            helper(py)
                .and_then(|h| h.call_method0("module_files"))
                .and_then(|v| v.extract::<Vec<std::path::PathBuf>>())
                .unwrap_or_default()
        })
    })
    .unwrap_or_default()
}

/// Logs one record on Python logger `name` now, from this (non-event-loop) thread.
pub fn log_now(name: &str, level: log::Level, msg: &str) {
    Python::attach(|py| {
        let r = py
            .import("logging")
            .and_then(|l| l.call_method1("getLogger", (name,)))
            .and_then(|lg| lg.call_method1("log", (py_level(level), "%s", msg)));
        if let Err(e) = r {
            eprintln!("waitressd: python logging failed ({e}): {msg}");
        }
    })
}

/// In a worker, after the app is loaded: when its logging is configured, sends waitress's
/// records to Python logging from now on. Returns whether it does.
pub fn forward_waitress_logs() -> bool {
    if !configured() {
        return false;
    }
    let (tx, rx) = mpsc::channel::<(String, log::Level, String)>();
    let started = std::thread::Builder::new()
        .name("waitress-log".into())
        .spawn(move || {
            // Attached only per record (under `with_live`), so Python can be finalised while
            // this thread waits.
            while let Ok((name, level, msg)) = rx.recv() {
                let logged = crate::logbridge::forwarding()
                    && super::interpreter::with_live(|| log_now(&name, level, &msg)).is_some();
                if !logged {
                    eprintln!("{name}: {msg}");
                }
            }
        });
    if started.is_err() {
        return false;
    }
    let tx = std::sync::Mutex::new(tx);
    crate::logbridge::set_sink(Box::new(move |name, level, msg| {
        let _ = tx.lock().map(|t| t.send((name.to_string(), level, msg)));
    }));
    true
}

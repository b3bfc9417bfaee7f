//! waitress's log records through Python logging, as waitress sends them (loggers `waitress`
//! and `waitress.queue`), when the app's logging is configured from a file (an INI
//! `[loggers]` section or `--log-config`). Records from the event loop (which never runs
//! Python) go over a channel to one `waitress-log` thread, which attaches once per batch of
//! queued records and never while it waits.
//! Also the list of imported module files that `--reload` watches.
use std::sync::mpsc;

use pyo3::prelude::*;

use super::helper::helper;

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

/// The app's threads Python's exit will wait for (alive, not daemon): "NAME at FILE:LINE in
/// FUNCTION" each.
pub fn lingering_threads() -> Vec<String> {
    super::interpreter::with_live(|| {
        Python::attach(|py| {
            helper(py)
                .and_then(|h| h.call_method0("lingering_threads"))
                .and_then(|v| v.extract::<Vec<String>>())
                .unwrap_or_default()
        })
    })
    .unwrap_or_default()
}

/// Logs one record on Python logger `name` now, from this (non-event-loop) thread.
pub fn log_now(name: &str, level: log::Level, msg: &str) {
    log_all([(name, level, msg, None)]);
}

/// Python's name for the thread a record came from: waitress logs on its app threads
/// (`waitress-N`, as ours are named) and its main thread (the event loop's).
fn python_thread_name(rust_name: Option<&str>) -> String {
    match rust_name {
        Some("main") => "MainThread",
        Some(n) => n,
        None => "waitress-log",
    }
    .to_string()
}

/// Logs `records`, in order, on their Python loggers under one attach. A record with the
/// name of the thread it came from is logged under that name (`%(threadName)s`), not the
/// forwarding thread's (`Dummy-N` to Python).
fn log_all<'a>(records: impl IntoIterator<Item = (&'a str, log::Level, &'a str, Option<&'a str>)>) {
    Python::attach(|py| {
        let logging = py.import("logging");
        let this = py
            .import("threading")
            .and_then(|t| t.call_method0("current_thread"));
        for (name, level, msg, thread) in records {
            if let (Some(t), Ok(this)) = (thread, &this) {
                let _ = this.setattr("name", t);
            }
            let r = match &logging {
                Ok(l) => l
                    .call_method1("getLogger", (name,))
                    .and_then(|lg| lg.call_method1("log", (py_level(level), "%s", msg))),
                Err(e) => Err(e.clone_ref(py)),
            };
            if let Err(e) = r {
                crate::logbridge::stderr_line(&format!(
                    "waitressd: python logging failed ({e}): {msg}"
                ));
            }
        }
    })
}

/// One of waitress's records on its way to Python logging: (logger name, level, message,
/// Python's name for the thread that logged it).
type Record = (String, log::Level, String, String);

/// At most this many records are logged under one attach, so a flood neither holds Python
/// (and a worker's `shutdown`, which waits in `with_live`) for long nor grows one batch.
const BATCH: usize = 32;

/// Hands `handle` every record of `rx` in order, in batches: one waited for (`recv`, which
/// blocks with nothing attached), then those already queued behind it, up to `BATCH`.
/// Returns when every sender is gone.
fn each_batch<T>(rx: &mpsc::Receiver<T>, mut handle: impl FnMut(&[T])) {
    let mut batch = Vec::with_capacity(BATCH);
    while let Ok(first) = rx.recv() {
        batch.push(first);
        batch.extend(rx.try_iter().take(BATCH - 1));
        handle(&batch);
        batch.clear();
    }
}

/// The `waitress-log` thread's work for one batch: to Python logging while forwarding is on
/// and the interpreter runs, else to stderr as `logger: message` lines.
fn forward_batch(batch: &[Record]) {
    let logged = crate::logbridge::forwarding()
        && super::interpreter::with_live(|| {
            log_all(
                batch
                    .iter()
                    .map(|(n, l, m, t)| (n.as_str(), *l, m.as_str(), Some(t.as_str()))),
            )
        })
        .is_some();
    if !logged {
        for (name, _, msg, _) in batch {
            crate::logbridge::stderr_line(&format!("{name}: {msg}"));
        }
    }
}

/// In a worker, after the app is loaded: when its logging is configured, sends waitress's
/// records to Python logging from now on. Returns whether it does.
pub fn forward_waitress_logs() -> bool {
    if !configured() {
        return false;
    }
    let (tx, rx) = mpsc::channel::<Record>();
    let started = std::thread::Builder::new()
        .name("waitress-log".into())
        // Attached only per batch (under `with_live`), never while waiting for the next
        // record, so Python can be finalised while this thread waits.
        .spawn(move || each_batch(&rx, forward_batch));
    if started.is_err() {
        return false;
    }
    let tx = std::sync::Mutex::new(tx);
    crate::logbridge::set_sink(Box::new(move |name, level, msg| {
        let thread = python_thread_name(std::thread::current().name());
        let _ = tx
            .lock()
            .map(|t| t.send((name.to_string(), level, msg, thread)));
    }));
    true
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    /// Whatever is queued goes in one batch, at most `BATCH` records, in order; a batch is
    /// handed over without waiting for more.
    #[test]
    fn batches_take_what_is_queued_in_order_bounded() {
        // Two whole batches and a part of one queued up front.
        let queued = 2 * super::BATCH + 7;
        let last = queued as i32;
        let (tx, rx) = mpsc::channel();
        for i in 0..last {
            tx.send(i).unwrap();
        }
        let (late_tx, late_rx) = mpsc::channel();
        let waiter = std::thread::spawn(move || {
            let mut got: Vec<Vec<i32>> = Vec::new();
            super::each_batch(&rx, |b| {
                got.push(b.to_vec());
                let _ = late_tx.send(got.len());
            });
            got
        });
        // The three queued batches are handed over while the sender still lives.
        for n in 1..=3 {
            assert_eq!(late_rx.recv().unwrap(), n);
        }
        tx.send(last).unwrap();
        assert_eq!(late_rx.recv().unwrap(), 4);
        drop(tx);
        let got = waiter.join().unwrap();
        let sizes: Vec<usize> = got.iter().map(Vec::len).collect();
        assert_eq!(sizes, [super::BATCH, super::BATCH, 7, 1]);
        assert_eq!(got.concat(), (0..=last).collect::<Vec<_>>());
    }
}

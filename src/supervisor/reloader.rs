//! `--reload` (pserve's and gunicorn's development loop): worker 1 watches the Python files the
//! app imported, the INI file and every `--reload-extra-file` (inotify through `notify`), and
//! on a change asks the master for a reload with SIGHUP, after a short quiet period (editors
//! write a file in several steps). The master's reload imports the new code in new workers and
//! retires the old ones only once the new ones are ready: a syntax error fails the new worker
//! (its traceback printed once) and the old ones keep serving.
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use notify::{EventKind, RecursiveMode, Watcher};

use super::{log_info, log_warn};

/// Events closer together than this are one change.
const QUIET: Duration = Duration::from_millis(250);

/// Starts the watcher thread for `files`; SIGHUP to `master` on a change.
pub fn start(files: Vec<PathBuf>, master: Pid) {
    let files: BTreeSet<PathBuf> = files.into_iter().collect();
    let dirs: BTreeSet<PathBuf> = files
        .iter()
        .filter_map(|f| f.parent().map(PathBuf::from))
        .collect();
    let spawned = std::thread::Builder::new()
        .name("reloader".into())
        .spawn(move || {
            let (tx, rx) = mpsc::channel();
            let mut watcher = match notify::recommended_watcher(tx) {
                Ok(w) => w,
                Err(e) => {
                    log_warn(&format!("--reload: cannot watch files: {e}"));
                    return;
                }
            };
            // Directories, not files: an editor's save-by-rename replaces the watched inode.
            for d in &dirs {
                if let Err(e) = watcher.watch(d, RecursiveMode::NonRecursive) {
                    log_warn(&format!("--reload: cannot watch {}: {e}", d.display()));
                }
            }
            log_info(&format!(
                "--reload: watching {} files in {} directories",
                files.len(),
                dirs.len()
            ));
            let changed = |ev: &notify::Result<notify::Event>| -> Option<PathBuf> {
                let ev = ev.as_ref().ok()?;
                if matches!(ev.kind, EventKind::Access(_)) {
                    return None;
                }
                ev.paths.iter().find(|p| files.contains(*p)).cloned()
            };
            while let Ok(ev) = rx.recv() {
                let Some(path) = changed(&ev) else { continue };
                // Let the writes settle.
                while rx.recv_timeout(QUIET).is_ok() {}
                log_info(&format!("--reload: {} changed, reloading", path.display()));
                if kill(master, Signal::SIGHUP).is_err() {
                    return;
                }
            }
        });
    if let Err(e) = spawned {
        log_warn(&format!("--reload: cannot start the watcher: {e}"));
    }
}

//! `--reload` (pserve's and gunicorn's development loop): worker 1 watches the Python files the
//! app imported (read again every second, as gunicorn does), the INI file and every
//! `--reload-extra-file` (inotify through `notify`), and
//! on a change asks the master for a reload with SIGHUP, after a short quiet period (editors
//! write a file in several steps). The master's reload imports the new code in new workers and
//! retires the old ones only once the new ones are ready: a syntax error fails the new worker
//! (its traceback printed once) and the old ones keep serving.
use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, SystemTime};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use notify::{EventKind, RecursiveMode, Watcher};

use super::{log_info, log_warn};

/// Events closer together than this are one change.
const QUIET: Duration = Duration::from_millis(250);

/// How often the list of imported modules is read again (apps import more on first requests,
/// e.g. Django's views).
const RESCAN: Duration = Duration::from_secs(1);

/// The files to watch now: the app's imported modules plus the fixed ones.
pub type Rescan = Box<dyn Fn() -> Vec<PathBuf> + Send>;

/// Starts the watcher thread; SIGHUP to `master` when a watched file changes. `rescan` is
/// called at start and every second.
/// `loading_since`: when this worker began to import the app; a file changed after that (before
/// the watch began) may not be in the code it runs, so it reloads at once.
pub fn start(rescan: Rescan, master: Pid, loading_since: SystemTime) {
    let spawned = std::thread::Builder::new()
        .name("reloader".into())
        .spawn(move || watch(rescan, master, loading_since));
    if let Err(e) = spawned {
        log_warn(&format!("--reload: cannot start the watcher: {e}"));
    }
}

fn watch(rescan: Rescan, master: Pid, loading_since: SystemTime) {
    let (tx, rx) = mpsc::channel();
    let mut watcher = match notify::recommended_watcher(tx) {
        Ok(w) => w,
        Err(e) => {
            log_warn(&format!("--reload: cannot watch files: {e}"));
            return;
        }
    };
    let mut files: BTreeSet<PathBuf> = BTreeSet::new();
    let mut dirs: BTreeSet<PathBuf> = BTreeSet::new();
    let mut add = |found: Vec<PathBuf>, files: &mut BTreeSet<PathBuf>| {
        for f in found {
            // Directories, not files: an editor's save-by-rename replaces the watched inode.
            if let Some(d) = f.parent().map(PathBuf::from) {
                if !dirs.contains(&d) {
                    if let Err(e) = watcher.watch(&d, RecursiveMode::NonRecursive) {
                        log_warn(&format!("--reload: cannot watch {}: {e}", d.display()));
                    }
                    dirs.insert(d);
                }
            }
            files.insert(f);
        }
    };
    add(rescan(), &mut files);
    log_info(&format!(
        "--reload: watching {} files in {} directories",
        files.len(),
        dirs_len(&files)
    ));
    // The version of each file a reload was asked for: one save reported twice (by the check
    // below and by inotify, or by two events) reloads once.
    let mut acted: HashMap<PathBuf, Stamp> = HashMap::new();
    // Saved while this worker was importing, before the watch began: not seen by inotify.
    let stale: Vec<PathBuf> = files
        .iter()
        .filter(|f| stamp(f).is_some_and(|(t, _)| t > loading_since))
        .cloned()
        .collect();
    if let Some(path) = stale.first() {
        log_info(&format!(
            "--reload: {} changed while the app was loading, reloading",
            path.display()
        ));
        for f in &stale {
            if let Some(st) = stamp(f) {
                acted.insert(f.clone(), st);
            }
        }
        let _ = kill(master, Signal::SIGHUP);
    }
    loop {
        let ev = match rx.recv_timeout(RESCAN) {
            Ok(ev) => ev,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                add(rescan(), &mut files);
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        };
        let Some(path) = changed(&ev, &files) else {
            continue;
        };
        // Let the writes settle.
        while rx.recv_timeout(QUIET).is_ok() {}
        let now = stamp(&path);
        if now.is_some() && acted.get(&path) == now.as_ref() {
            continue; // this version already asked for a reload
        }
        if let Some(st) = now {
            acted.insert(path.clone(), st);
        }
        log_info(&format!("--reload: {} changed, reloading", path.display()));
        if kill(master, Signal::SIGHUP).is_err() {
            return;
        }
    }
}

/// What identifies one saved version of a file: (modification time, size).
type Stamp = (SystemTime, u64);

fn stamp(path: &std::path::Path) -> Option<Stamp> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

fn dirs_len(files: &BTreeSet<PathBuf>) -> usize {
    files
        .iter()
        .filter_map(|f| f.parent())
        .collect::<BTreeSet<_>>()
        .len()
}

/// The watched file an event is about, if any (reads are not changes).
fn changed(ev: &notify::Result<notify::Event>, files: &BTreeSet<PathBuf>) -> Option<PathBuf> {
    let ev = ev.as_ref().ok()?;
    if matches!(ev.kind, EventKind::Access(_)) {
        return None;
    }
    ev.paths.iter().find(|p| files.contains(*p)).cloned()
}

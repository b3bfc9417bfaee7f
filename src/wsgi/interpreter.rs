//! The embedded interpreter: PEP 587 start-up on the right Python, fork hooks, finalisation.
//!
//! Why PEP 587 and not pyo3's `auto-initialize`: the default start-up derives `sys.prefix` from
//! `python3` on PATH and ignores `$VIRTUAL_ENV`, so under a bare PATH (systemd, `env -i`) the
//! linked libpython runs on another Python's stdlib. Setting `PyConfig.executable` to the venv's
//! (or the build's base) interpreter makes CPython find its prefix and the venv (pyvenv.cfg) the
//! normal way. See shared/notes/embedding-cpython.md.
use std::ffi::{CStr, CString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use pyo3::ffi;

use super::WsgiError;

/// The interpreter baked in by build.rs (the base interpreter, never a venv's).
pub const BASE_PYTHON: &str = env!("WAITRESSD_BASE_PYTHON");
/// `major.minor` of the libpython this binary links.
pub const PYTHON_VERSION: &str = env!("WAITRESSD_PYTHON_VERSION");

static STARTED: AtomicBool = AtomicBool::new(false);
static START_LOCK: Mutex<()> = Mutex::new(());

/// Signals Python may take over on `import signal` (it installs its SIGINT handler when the
/// C-level handler was SIG_DFL at start-up); the daemon owns them, so they are put back.
const GUARDED_SIGNALS: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGQUIT];
static SAVED_SIGACTIONS: Mutex<Vec<(libc::c_int, libc::sigaction)>> = Mutex::new(Vec::new());

/// Runs `f` (which may attach to Python) only while the interpreter is running, and keeps
/// `shutdown` from finalising it meanwhile: for helper threads (log forwarding, `--reload`'s
/// rescans) that may still be awake when the worker stops. None when not running.
pub fn with_live<R>(f: impl FnOnce() -> R) -> Option<R> {
    let _lock = START_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    STARTED.load(Ordering::Acquire).then(f)
}

/// True once `start` has succeeded in this process.
pub fn started() -> bool {
    STARTED.load(Ordering::Acquire)
}

/// Which interpreter `PyConfig.executable` names: the `virtualenv` setting, else `$VIRTUAL_ENV`,
/// else the build's base interpreter. A venv made by another Python version is refused: it would
/// start silently without its packages.
pub fn choose_executable(
    setting: Option<&Path>,
    env_venv: Option<&Path>,
) -> Result<PathBuf, WsgiError> {
    let Some(venv) = setting.or(env_venv).filter(|p| !p.as_os_str().is_empty()) else {
        return Ok(PathBuf::from(BASE_PYTHON));
    };
    let bad = |reason: String| WsgiError::Virtualenv {
        path: venv.to_path_buf(),
        reason,
    };
    let cfg = std::fs::read_to_string(venv.join("pyvenv.cfg")).map_err(|e| {
        bad(format!(
            "no readable pyvenv.cfg ({e}); is it a virtualenv? Point --virtualenv, \
                 virtualenv = or VIRTUAL_ENV at one (made with {BASE_PYTHON} -m venv DIR)"
        ))
    })?;
    if let Some(version) = pyvenv_version(&cfg) {
        if !same_minor(&version, PYTHON_VERSION) {
            return Err(bad(format!(
                "it was made by python {version}, waitressd embeds python {PYTHON_VERSION}; \
                 recreate it with {BASE_PYTHON} -m venv"
            )));
        }
    }
    // The first reason a bin/python that is there cannot be used: a link to a Python since
    // removed (a pyenv or distro upgrade), or one `user` cannot reach (under /root).
    let mut why = None;
    for name in ["bin/python", "bin/python3"] {
        let exe = venv.join(name);
        match std::fs::metadata(&exe) {
            Ok(_) => return Ok(exe),
            Err(_) if std::fs::symlink_metadata(&exe).is_err() => {}
            Err(e) => {
                why.get_or_insert_with(|| {
                    let to = std::fs::read_link(&exe)
                        .map(|t| format!(" (a link to {})", t.display()))
                        .unwrap_or_default();
                    let fix = if e.kind() == std::io::ErrorKind::PermissionDenied {
                        "make the Python it links to readable".to_string()
                    } else {
                        format!("recreate the virtualenv with {BASE_PYTHON} -m venv")
                    };
                    format!("{name}{to} cannot be used: {e}; {fix}")
                });
            }
        }
    }
    Err(bad(why.unwrap_or_else(|| "no bin/python in it".to_string())))
}

/// The `version` (venv) or `version_info` (virtualenv) value of a pyvenv.cfg.
fn pyvenv_version(cfg: &str) -> Option<String> {
    cfg.lines().find_map(|line| {
        let (k, v) = line.split_once('=')?;
        matches!(k.trim(), "version" | "version_info").then(|| v.trim().to_string())
    })
}

/// `3.11.7` (or `3.11.7.final.0`) against `3.11`.
fn same_minor(version: &str, major_minor: &str) -> bool {
    let mut parts = version.split('.');
    let mm: String = [parts.next(), parts.next()]
        .iter()
        .flatten()
        .copied()
        .collect::<Vec<_>>()
        .join(".");
    mm == major_minor
}

/// Starts CPython in this process with `executable`, then releases the GIL. Idempotent.
pub fn start(executable: &Path) -> Result<(), WsgiError> {
    let _lock = START_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    if started() {
        return Ok(());
    }
    save_signals();
    let fail = |reason: String| WsgiError::Interpreter {
        executable: executable.to_path_buf(),
        reason,
    };
    let exe = CString::new(executable.as_os_str().as_bytes())
        .map_err(|_| fail("path contains NUL".into()))?;
    let argv0 = CString::new("waitressd").expect("static string");
    // SAFETY: PEP 587 sequence on a zeroed PyConfig that PyConfig_InitPythonConfig fills before
    // any other use; every string passed outlives the call that copies it; PyConfig_Clear frees
    // what the config allocated. Runs once per process (START_LOCK + STARTED).
    unsafe {
        let mut config: ffi::PyConfig = std::mem::zeroed();
        ffi::PyConfig_InitPythonConfig(&mut config);
        // The daemon owns its signals (SIGPIPE, SIGXFSZ and SIGINT stay as Rust set them).
        config.install_signal_handlers = 0;
        // argv is ours, not Python's command line.
        config.parse_argv = 0;
        let status =
            ffi::PyConfig_SetBytesString(&mut config, &mut config.executable, exe.as_ptr());
        if let Some(msg) = status_error(&status) {
            ffi::PyConfig_Clear(&mut config);
            return Err(fail(msg));
        }
        let mut argv = [argv0.as_ptr()];
        let status = ffi::PyConfig_SetBytesArgv(&mut config, 1, argv.as_mut_ptr());
        if let Some(msg) = status_error(&status) {
            ffi::PyConfig_Clear(&mut config);
            return Err(fail(msg));
        }
        let status = ffi::Py_InitializeFromConfig(&config);
        ffi::PyConfig_Clear(&mut config);
        if let Some(msg) = status_error(&status) {
            return Err(fail(msg));
        }
        // Release the GIL: app threads attach on their own; this thread's state is kept (it
        // is the interpreter's main thread) and re-attached by Python::attach here later.
        ffi::PyEval_SaveThread();
    }
    STARTED.store(true, Ordering::Release);
    Ok(())
}

/// The message of a failed PyStatus, if it failed.
///
/// # Safety
/// `status` must come from a CPython initialisation call (its `err_msg` is NULL or a static C
/// string).
unsafe fn status_error(status: &ffi::PyStatus) -> Option<String> {
    // SAFETY: PyStatus_Exception only reads the struct; err_msg is a static C string or NULL.
    unsafe {
        if ffi::PyStatus_Exception(std::ptr::read(status)) == 0 {
            return None;
        }
        let msg = if status.err_msg.is_null() {
            format!("initialisation failed (exit code {})", status.exitcode)
        } else {
            CStr::from_ptr(status.err_msg)
                .to_string_lossy()
                .into_owned()
        };
        Some(msg)
    }
}

fn save_signals() {
    let mut saved = SAVED_SIGACTIONS.lock().unwrap_or_else(|e| e.into_inner());
    saved.clear();
    for sig in GUARDED_SIGNALS {
        // SAFETY: sigaction with a NULL new action only reads the current one into `old`.
        unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(sig, std::ptr::null(), &mut old) == 0 {
                saved.push((sig, old));
            }
        }
    }
}

/// Puts back the signal dispositions found before Python started (called after the app is
/// imported: `import signal` re-installs Python's SIGINT handler).
pub fn restore_signals() {
    let saved = SAVED_SIGACTIONS.lock().unwrap_or_else(|e| e.into_inner());
    for (sig, old) in saved.iter() {
        // SAFETY: re-installs a sigaction struct the kernel gave us for the same signal.
        unsafe {
            libc::sigaction(*sig, old, std::ptr::null_mut());
        }
    }
}

/// The GIL state held across fork (PyOS_BeforeFork → PyOS_AfterFork_*).
static FORK_GIL: Mutex<Option<ffi::PyGILState_STATE>> = Mutex::new(None);

/// Before fork, in the forking thread with no app thread attached: takes the GIL, freezes the
/// loaded objects out of the GC (copy-on-write friendly) and prepares CPython's locks.
pub fn before_fork() {
    if !started() {
        return;
    }
    // SAFETY: the interpreter is running; the GIL is taken here and held until after_fork_*,
    // which this same thread calls right after fork(2), as PyOS_BeforeFork requires.
    unsafe {
        let gstate = ffi::PyGILState_Ensure();
        let gc = ffi::PyImport_ImportModule(c"gc".as_ptr());
        if gc.is_null() {
            ffi::PyErr_Clear();
        } else {
            let r = ffi::PyObject_CallMethod(gc, c"freeze".as_ptr(), std::ptr::null());
            if r.is_null() {
                ffi::PyErr_Clear();
            } else {
                ffi::Py_DECREF(r);
            }
            ffi::Py_DECREF(gc);
        }
        ffi::PyOS_BeforeFork();
        *FORK_GIL.lock().unwrap_or_else(|e| e.into_inner()) = Some(gstate);
    }
}

/// In the parent after fork(2): releases CPython's fork locks and the GIL.
pub fn after_fork_parent() {
    let Some(gstate) = FORK_GIL.lock().unwrap_or_else(|e| e.into_inner()).take() else {
        return;
    };
    // SAFETY: paired with before_fork in this thread, GIL still held.
    unsafe {
        ffi::PyOS_AfterFork_Parent();
        ffi::PyGILState_Release(gstate);
    }
}

/// In the child after fork(2): resets CPython's runtime state for the new process (this thread
/// becomes the main thread, random seeds are renewed) and releases the GIL.
pub fn after_fork_child() {
    let Some(gstate) = FORK_GIL.lock().unwrap_or_else(|e| e.into_inner()).take() else {
        return;
    };
    // SAFETY: paired with before_fork in the thread that forked (the only thread of the child).
    unsafe {
        ffi::PyOS_AfterFork_Child();
        ffi::PyGILState_Release(gstate);
    }
}

/// Finalises the interpreter (atexit handlers run). Call after every app thread has been
/// joined, from the thread that called `init`. Never call into Python afterwards.
pub fn shutdown() {
    let _lock = START_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    if !STARTED.swap(false, Ordering::AcqRel) {
        return;
    }
    crate::logbridge::stop_forwarding();
    // SAFETY: the interpreter is running and no app thread is attached (caller's contract);
    // Py_FinalizeEx needs the GIL, taken here and never released (the interpreter is gone).
    unsafe {
        ffi::PyGILState_Ensure();
        if ffi::Py_FinalizeEx() != 0 {
            log::warn!("python finalisation reported an error (flushing stdout/stderr failed)");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pyvenv_version_reads_both_spellings() {
        let cases = [
            ("home = /x\nversion = 3.11.7\n", Some("3.11.7")),
            ("version_info = 3.12.1.final.0\n", Some("3.12.1.final.0")),
            ("home = /x\n", None),
        ];
        for (cfg, want) in cases {
            assert_eq!(pyvenv_version(cfg).as_deref(), want, "{cfg:?}");
        }
    }

    #[test]
    fn same_minor_table() {
        let cases = [
            ("3.11.7", "3.11", true),
            ("3.11.2", "3.11", true),
            ("3.12.1.final.0", "3.11", false),
            ("3.1", "3.11", false),
            ("3", "3.11", false),
        ];
        for (v, mm, want) in cases {
            assert_eq!(same_minor(v, mm), want, "{v} vs {mm}");
        }
    }

    #[test]
    fn venv_of_another_version_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("pyvenv.cfg"),
            "home = /usr/bin\nversion = 2.7.18\n",
        )
        .unwrap();
        let err = choose_executable(Some(dir.path()), None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("2.7.18") && err.contains(PYTHON_VERSION),
            "{err}"
        );
    }

    #[test]
    fn not_a_venv_is_refused_and_no_venv_means_base() {
        let dir = tempfile::tempdir().unwrap();
        let err = choose_executable(None, Some(dir.path()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("pyvenv.cfg"), "{err}");
        assert_eq!(
            choose_executable(None, None).unwrap(),
            PathBuf::from(BASE_PYTHON)
        );
    }

    /// A virtualenv whose Python was removed since (its bin/python a dangling link) is named
    /// as such, with the link's target and the fix, not as "no bin/python".
    #[test]
    fn a_venv_whose_python_is_gone_names_the_link() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = format!("home = /x\nversion = {PYTHON_VERSION}.0\n");
        std::fs::write(dir.path().join("pyvenv.cfg"), cfg).unwrap();
        std::fs::create_dir(dir.path().join("bin")).unwrap();
        std::os::unix::fs::symlink("/nonexistent/python3.11", dir.path().join("bin/python"))
            .unwrap();
        let err = choose_executable(Some(dir.path()), None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(
                "bin/python (a link to /nonexistent/python3.11) cannot be used: No such file"
            ) && err.contains("-m venv"),
            "{err}"
        );
        // Nothing there at all: said so.
        std::fs::remove_file(dir.path().join("bin/python")).unwrap();
        let err = choose_executable(Some(dir.path()), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no bin/python in it"), "{err}");
    }

    #[test]
    fn setting_wins_over_environment() {
        let good = tempfile::tempdir().unwrap();
        let cfg = format!("home = /x\nversion = {PYTHON_VERSION}.0\n");
        std::fs::write(good.path().join("pyvenv.cfg"), cfg).unwrap();
        std::fs::create_dir(good.path().join("bin")).unwrap();
        std::fs::write(good.path().join("bin/python"), "").unwrap();
        let other = tempfile::tempdir().unwrap();
        let exe = choose_executable(Some(good.path()), Some(other.path())).unwrap();
        assert_eq!(exe, good.path().join("bin/python"));
    }
}

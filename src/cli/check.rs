//! `--check-config`: everything a start checks, short of binding (like `nginx -t`): the
//! configuration (already loaded and its listen addresses resolved by the caller), the TLS
//! certificate and key files (read and matched as at start), the log files (opened as at
//! start; one the check created is removed), then, in a
//! throw-away child exactly as a worker does it, the switch to `user`/`group`, the interpreter
//! and virtualenv, and the app import, and (as a warning) whether that user can make the
//! temporary files large bodies spill to. Exit code and message are the ones a start would give.
use crate::config::Settings;
use crate::exit;
use crate::supervisor::{logfiles, options, spawn};

/// Runs the checks; the process exit code.
pub fn run(settings: &Settings) -> i32 {
    let identity = match options::identity(settings) {
        Ok(id) => id,
        Err(e) => {
            eprintln!("waitressd: {e}");
            return exit::BOOT;
        }
    };
    // The certificate and key files, read and matched as the master reads them at start.
    if let Err(e) = crate::supervisor::tls::load_for(settings) {
        eprintln!("waitressd: {e}");
        return exit::CONFIG;
    }
    if let Some(p) = &settings.pidfile {
        if let Some(dir) = p
            .parent()
            .filter(|d| !d.as_os_str().is_empty() && !d.is_dir())
        {
            eprintln!(
                "waitressd: pidfile {}: directory {} does not exist (create it or change pidfile =)",
                p.display(),
                dir.display()
            );
            return exit::BOOT;
        }
    }
    // The log files, opened as the master opens them at start (and removed if the check made them).
    if let Err(e) = logfiles::check(settings) {
        eprintln!("waitressd: {e}");
        return exit::BOOT;
    }
    let wo = options::wsgi_options(settings);
    let preload = settings.preload_app;
    let overflows = (settings.inbuf_overflow, settings.outbuf_overflow);
    // The child does what a worker does, in a worker's order, then is thrown away (its Python
    // and its app never touch this process).
    let child = spawn::fork_child(move || {
        let step = |r: Result<(), (i32, String)>| -> Result<(), i32> {
            r.map_err(|(code, msg)| {
                eprintln!("waitressd: {msg}");
                code
            })
        };
        let assume = || match &identity {
            Some(id) => id.assume().map_err(|e| (exit::BOOT, e.to_string())),
            None => Ok(()),
        };
        let dropped = identity.is_some() && !preload;
        let load = || {
            crate::wsgi::init(&wo)
                .and_then(|()| crate::wsgi::load(&wo))
                .map(drop)
                .map_err(|e| {
                    let hint = match &e {
                        crate::wsgi::WsgiError::AppLoad { .. } => "",
                        _ if dropped => {
                            " (workers start Python after dropping privileges: the Python \
                             installation and the virtualenv must be readable by `user`, or \
                             set preload_app = true to load the app before the drop)"
                        }
                        _ => "",
                    };
                    (e.exit_code(), format!("{e}{hint}"))
                })
        };
        // preload_app loads in the master (still root), lazy mode after the drop.
        let result = if preload {
            step(load()).and_then(|()| step(assume()))
        } else {
            step(assume()).and_then(|()| step(load()))
        };
        if let Some(problem) = result
            .is_ok()
            .then(|| crate::supervisor::worker::temp_dir_problem(overflows.0, overflows.1))
            .flatten()
        {
            // Not fatal (nothing may ever spill), but a start would warn too.
            crate::logbridge::stderr_line(&format!("waitressd: warning: {problem}"));
        }
        match result {
            Ok(()) => exit::OK,
            Err(code) => code,
        }
    });
    let pid = match child {
        Ok(pid) => pid,
        Err(e) => {
            eprintln!("waitressd: cannot fork the checking child: {e}");
            return exit::BOOT;
        }
    };
    use nix::sys::wait::{waitpid, WaitStatus};
    let code = loop {
        match waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, code)) => break code,
            Ok(WaitStatus::Signaled(_, sig, _)) => {
                eprintln!("waitressd: the app import was killed by {sig:?}");
                break exit::APP_LOAD;
            }
            Ok(_) | Err(nix::Error::EINTR) => continue,
            Err(e) => {
                eprintln!("waitressd: waiting for the checking child: {e}");
                break exit::BOOT;
            }
        }
    };
    if code == exit::OK {
        let listen: Vec<String> = match &settings.unix_socket {
            Some(p) => vec![format!("unix:{}", p.display())],
            None => settings.listen.iter().map(|a| a.to_string()).collect(),
        };
        super::out(&format!(
            "configuration ok: app {} loads; would listen on {}\n",
            describe(settings),
            listen.join(" ")
        ));
    }
    code
}

fn describe(s: &Settings) -> String {
    match &s.app {
        crate::wsgi::AppSpec::Ini { path, app_name, .. } => {
            format!("config:{}#{app_name}", path.display())
        }
        crate::wsgi::AppSpec::Module { target, call } => {
            format!("{target}{}", if *call { "()" } else { "" })
        }
    }
}

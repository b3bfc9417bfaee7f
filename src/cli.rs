//! The command line: `main`, the program's glue (parse → load → act → exit code), and argv
//! parsing into `CliArgs` (INI mode and `--app` mode, waitress-serve flags, the actions) in
//! `parse`.
//!
//! CONTRACT (owned by the config work): `parse(argv) -> Result<CliArgs, CliError>`.
use crate::config;

mod check;
mod parse;
#[cfg(test)]
mod tests;

pub use crate::config::args::{Action, CliArgs};
pub use parse::{parse, CliError};

/// The version line of `--version`.
pub const VERSION: &str = concat!(
    "waitressd ",
    env!("CARGO_PKG_VERSION"),
    " (waitress 3.0.2 compatible)"
);

/// Sets up waitressd's own logging on stderr: level info unless `RUST_LOG` says otherwise
/// (`log_level` applies once the configuration is read). Safe to call more than once.
pub fn init_logging() {
    crate::logging::init();
}

/// Writes to stdout, ignoring a closed pipe (`waitressd --help | head` is not an error).
fn out(text: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let _ = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush());
}

/// `waitressd: LINE` on stderr, never a panic (`logbridge::stderr_line`): `error_log` may be
/// on a full disk by the time the master exits. Each is an error that ends the program: under
/// systemd it carries the error priority (`journalctl -p warning` shows why a start failed).
fn say(line: &str) {
    crate::logbridge::stderr_line(&format!(
        "{}waitressd: {line}",
        crate::logging::error_prefix()
    ));
}

/// `--chdir`, `--env`, `--pythonpath`: the process environment the config and the app see.
/// Runs while the process is single-threaded (before any worker or Python exists).
fn prepare_process(args: &CliArgs) -> Result<(), String> {
    if let Some(dir) = &args.chdir {
        std::env::set_current_dir(dir).map_err(|e| {
            format!(
                "--chdir {}: {e} (give a directory that exists)",
                dir.display()
            )
        })?;
    }
    for (k, v) in &args.env {
        std::env::set_var(k, v);
    }
    if !args.pythonpath.is_empty() {
        let cwd = std::env::current_dir().unwrap_or_default();
        let mut dirs: Vec<String> = args
            .pythonpath
            .iter()
            .map(|d| cwd.join(d).to_string_lossy().into_owned())
            .collect();
        // CPython reads PYTHONPATH at start-up (PEP 587's python config): these directories
        // come before the stdlib and the virtualenv, as gunicorn's --pythonpath.
        if let Some(old) = std::env::var_os("PYTHONPATH").filter(|v| !v.is_empty()) {
            dirs.push(old.to_string_lossy().into_owned());
        }
        std::env::set_var("PYTHONPATH", dirs.join(":"));
    }
    Ok(())
}

/// Whole program: returns the process exit code (see `crate::exit`). Errors are one line on
/// stderr, never a panic or a backtrace.
pub fn main(argv: &[String]) -> i32 {
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        say(&format!("internal error: {msg}{at}"));
    }));
    init_logging();
    if argv.first().map(String::as_str) == Some("reload") {
        // `waitressd reload`: HUP the master and wait for the outcome (ExecReload=).
        return crate::supervisor::control::main(&argv[1..]);
    }
    let args = match parse(argv) {
        Ok(a) => a,
        Err(e) => {
            say(&format!("{e} (see waitressd --help)"));
            return crate::exit::CONFIG;
        }
    };
    match args.action {
        Action::Help => {
            out(&config::render::help());
            return crate::exit::OK;
        }
        Action::Version => {
            out(&format!("{VERSION}\n"));
            return crate::exit::OK;
        }
        _ => {}
    }
    for why in &args.ignored {
        log::warn!("{why}");
    }
    if let Err(msg) = prepare_process(&args) {
        say(&msg);
        return crate::exit::CONFIG;
    }
    let settings = match config::load(&args) {
        Ok(s) => s,
        Err(e) => {
            say(&e.to_string());
            return crate::exit::CONFIG;
        }
    };
    crate::logging::apply_level(&settings.log_level);
    crate::logbridge::set_proc_name(settings.proc_name.as_deref().unwrap_or(""));
    match args.action {
        Action::CheckConfig => check::run(&settings),
        Action::PrintConfig => {
            let json = if args.verbose {
                match config::collect(&args, &config::env_settings()) {
                    Ok((raws, _)) => config::to_json_verbose(&settings, &raws),
                    Err(e) => {
                        say(&e.to_string());
                        return crate::exit::CONFIG;
                    }
                }
            } else {
                config::to_json(&settings)
            };
            out(&format!(
                "{}\n",
                serde_json::to_string_pretty(&json).unwrap_or_default()
            ));
            crate::exit::OK
        }
        _ => {
            // SIGHUP re-reads the configuration from the same command line.
            let reload_args = args.clone();
            let opts = crate::supervisor::RunOptions {
                daemon: args.daemon,
                reload: Some(Box::new(move || {
                    config::load(&reload_args).map_err(|e| e.to_string())
                })),
            };
            match crate::supervisor::run_with(settings, opts) {
                Ok(()) => crate::exit::OK,
                Err(e) => {
                    say(&e.to_string());
                    e.exit_code()
                }
            }
        }
    }
}

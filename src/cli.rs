//! The command line: `main`, the program's glue (parse → load → act → exit code), and argv
//! parsing into `CliArgs` (INI mode and `--app` mode, waitress-serve flags, the actions) in
//! `parse`.
//!
//! CONTRACT (owned by the config work): `parse(argv) -> Result<CliArgs, CliError>`.
use crate::config;

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
        eprintln!("waitressd: internal error: {msg}{at}");
    }));
    init_logging();
    if argv.first().map(String::as_str) == Some("reload") {
        // `waitressd reload`: HUP the master and wait for the outcome (ExecReload=).
        return crate::supervisor::control::main(&argv[1..]);
    }
    let args = match parse(argv) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("waitressd: {e} (see waitressd --help)");
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
    let settings = match config::load(&args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("waitressd: {e}");
            return crate::exit::CONFIG;
        }
    };
    crate::logging::apply_level(&settings.log_level);
    match args.action {
        Action::CheckConfig => {
            out("configuration ok\n");
            crate::exit::OK
        }
        Action::PrintConfig => {
            let json = config::to_json(&settings);
            println!(
                "{}",
                serde_json::to_string_pretty(&json).unwrap_or_default()
            );
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
                    eprintln!("waitressd: {e}");
                    e.exit_code()
                }
            }
        }
    }
}

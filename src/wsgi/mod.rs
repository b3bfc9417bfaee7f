//! The only pyo3 user: embedded CPython, app loading as pserve does it, and PEP 3333 calls.
//!
//! CONTRACT (supervisor/worker calls this, after fork): `wsgi::init(&WsgiOptions)` once per
//! process, then `wsgi::load(&WsgiOptions)` → `Arc<dyn App>`, served by `server`.
//!
//! Signals: install the daemon's signal handling (or block signals) *before* `init`; Python then
//! leaves them alone, and `load` puts back any handler `import signal` replaced.
//!
//! Preload (`preload_app = true`): in the master, `init` + `load`, then around each fork(2)
//! `before_fork()` → fork → `after_fork_parent()` / `after_fork_child()`, from the forking
//! thread with no app thread running. At exit: join the app threads, then `shutdown()`.
use std::path::PathBuf;
use std::sync::Arc;

use crate::http::app::App;

mod checks;
mod ctx;
mod environ;
mod helper;
mod input;
pub mod interpreter;
mod interrupt;
mod loader;
mod pylog;
mod response;
mod task;
#[cfg(test)]
mod testing;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_io;
mod turns;

pub use interpreter::{after_fork_child, after_fork_parent, before_fork, shutdown};
pub use pylog::{forward_waitress_logs, lingering_threads, log_now, module_files};

/// What the WSGI bridge needs from `Settings`.
#[derive(Debug, Clone)]
pub struct WsgiOptions {
    pub app: AppSpec,
    pub expose_tracebacks: bool,
    pub ident: Option<String>,
    pub url_prefix: String,
    /// The `virtualenv` setting (else `$VIRTUAL_ENV`, else the build's base interpreter).
    pub virtualenv: Option<PathBuf>,
    /// `wsgi.multiprocess`: true when more than one worker process serves the app.
    pub multiprocess: bool,
    /// `--log-config FILE`: Python logging from this file (else from the INI's `[loggers]`).
    pub log_config: Option<PathBuf>,
}

/// Where the application comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppSpec {
    /// PasteDeploy: `loadapp("config:<path>", name=app_name, global_conf=vars)`.
    Ini {
        /// Absolute path of the INI file.
        path: PathBuf,
        app_name: String,
        /// `NAME=VALUE` words from the command line.
        vars: Vec<(String, String)>,
    },
    /// `--app module:callable` (`call` = `--call`: call it to get the app).
    Module { target: String, call: bool },
}

/// Why Python could not start, or the app could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum WsgiError {
    /// The app failed to import or build; its traceback was printed to stderr (exit code 4).
    #[error("cannot load the application {what}: {message}")]
    AppLoad { what: String, message: String },
    /// PasteDeploy is missing from the interpreter's packages (exit code 4).
    #[error("{0}")]
    MissingPasteDeploy(String),
    /// The chosen virtualenv cannot be used (exit code 2: configuration).
    #[error("virtualenv {path}: {reason}")]
    Virtualenv { path: PathBuf, reason: String },
    /// CPython failed to start (exit code 3: boot).
    #[error("cannot start python as {executable}: {reason}")]
    Interpreter { executable: PathBuf, reason: String },
}

impl WsgiError {
    /// The process exit code for this error (see `crate::exit`).
    pub fn exit_code(&self) -> i32 {
        match self {
            WsgiError::AppLoad { .. } | WsgiError::MissingPasteDeploy(_) => crate::exit::APP_LOAD,
            WsgiError::Virtualenv { .. } => crate::exit::CONFIG,
            WsgiError::Interpreter { .. } => crate::exit::BOOT,
        }
    }
}

/// Starts the interpreter in this process (PEP 587 init, GIL released afterwards). Idempotent.
pub fn init(opts: &WsgiOptions) -> Result<(), WsgiError> {
    let env_venv = std::env::var_os("VIRTUAL_ENV").map(PathBuf::from);
    let exe = interpreter::choose_executable(opts.virtualenv.as_deref(), env_venv.as_deref())?;
    interpreter::start(&exe)
}

/// Loads the application (logging config first, then PasteDeploy or module:callable).
pub fn load(opts: &WsgiOptions) -> Result<Arc<dyn App>, WsgiError> {
    let app = loader::load(opts)?;
    interpreter::restore_signals();
    Ok(Arc::new(app))
}

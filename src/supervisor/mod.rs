//! The master: binds listeners, drops privileges, pre-forks workers, owns signals.
//!
//! CONTRACT (main calls this): `supervisor::run(settings) -> Result<(), SupervisorError>`, or
//! `run_with(settings, RunOptions)` to pass `--daemon` and the reload hook (SIGHUP re-runs it:
//! cli passes a closure over `config::load` with the original `CliArgs`).
//! `SupervisorError::exit_code()` maps to the exit-code protocol in `crate::exit`.
use crate::config::Settings;

mod boot;
mod children;
pub mod control;
pub mod daemon;
mod fdlimit;
pub mod lifecycle;
pub mod listeners;
pub mod logfiles;
mod master;
pub mod options;
mod pending;
pub mod pidfile;
mod prometheus;
mod pyexit;
mod reload;
pub mod reloader;
mod retire;
pub mod signals;
pub mod spawn;
mod state;
mod status;
pub mod systemd;
mod table;
pub mod title;
pub mod tls;
mod tls_pem;
mod upgrade;
pub mod worker;

#[cfg(test)]
mod testkit;
#[cfg(test)]
mod tests;

pub use state::WorkerBody;
pub use worker::WorkerStart;

#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    /// A worker found the configuration unusable (exit code 2).
    #[error("{0}")]
    Config(String),
    #[error("{0}")]
    Boot(String),
    #[error("{0}")]
    AppLoad(String),
}

impl SupervisorError {
    pub fn exit_code(&self) -> i32 {
        match self {
            SupervisorError::Config(_) => crate::exit::CONFIG,
            SupervisorError::Boot(_) => crate::exit::BOOT,
            SupervisorError::AppLoad(_) => crate::exit::APP_LOAD,
        }
    }
}

/// Re-reads the configuration for a reload (SIGHUP); the error is logged and the old
/// configuration kept.
pub type ReloadFn = Box<dyn Fn() -> Result<Settings, String>>;

/// How the daemon runs, beyond `Settings`.
#[derive(Default)]
pub struct RunOptions {
    /// `--daemon` (also honoured from `Settings::daemon`): detach; the foreground process exits 0 once workers are ready (or with the
    /// boot error's exit code).
    pub daemon: bool,
    /// SIGHUP re-runs this; without it, SIGHUP restarts the workers with the same settings.
    pub reload: Option<ReloadFn>,
}

/// Runs the daemon until it is stopped.
pub fn run(settings: Settings) -> Result<(), SupervisorError> {
    run_with(settings, RunOptions::default())
}

/// Runs the daemon until it is stopped, with `--daemon` and the reload hook.
pub fn run_with(settings: Settings, opts: RunOptions) -> Result<(), SupervisorError> {
    boot::run(settings, opts, worker::serve)
}

/// Logs at `level`, or straight to stderr when no logger is installed and the message
/// matters (warnings and errors must never vanish).
pub(crate) fn log_at(level: log::Level, msg: &str) {
    if log::max_level() == log::LevelFilter::Off {
        if level <= log::Level::Warn {
            crate::logbridge::stderr_line(&format!("waitressd: {msg}"));
        }
    } else {
        log::log!(target: "waitressd", level, "{msg}");
    }
}

pub(crate) fn log_info(msg: &str) {
    log_at(log::Level::Info, msg)
}
pub(crate) fn log_warn(msg: &str) {
    log_at(log::Level::Warn, msg)
}
pub(crate) fn log_error(msg: &str) {
    log_at(log::Level::Error, msg)
}

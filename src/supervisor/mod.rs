//! The master: binds listeners, drops privileges, pre-forks workers, owns signals.
//!
//! CONTRACT (main calls this): `supervisor::run(settings) -> Result<(), SupervisorError>`;
//! `SupervisorError::exit_code()` maps to the exit-code protocol in `crate::exit`.
use crate::config::Settings;

#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    #[error("{0}")]
    Boot(String),
    #[error("{0}")]
    AppLoad(String),
}

impl SupervisorError {
    pub fn exit_code(&self) -> i32 {
        match self {
            SupervisorError::Boot(_) => crate::exit::BOOT,
            SupervisorError::AppLoad(_) => crate::exit::APP_LOAD,
        }
    }
}

/// Runs the daemon until it is stopped.
pub fn run(_settings: Settings) -> Result<(), SupervisorError> {
    todo!("supervisor")
}

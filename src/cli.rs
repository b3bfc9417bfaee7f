//! Command line → `CliArgs`: INI mode and `--app` mode, waitress-serve flags, and the actions.
//!
//! CONTRACT (owned by the config work): `parse(argv) -> Result<CliArgs, CliError>`.

/// What the user asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Serve,
    CheckConfig,
    PrintConfig,
    Help,
    Version,
}

/// Parsed command line; `config::load` turns it into `Settings`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliArgs {
    pub action: Action,
    /// INI file (`--config FILE` or the first positional).
    pub config: Option<std::path::PathBuf>,
    /// `-s/--server-name`, default `main`.
    pub server_name: String,
    /// `-n/--app-name`, default `main`.
    pub app_name: String,
    /// `NAME=VALUE` words after the INI file.
    pub vars: Vec<(String, String)>,
    /// `--app MODULE:CALLABLE`.
    pub app: Option<String>,
    /// `--call`.
    pub call: bool,
    /// waitress-serve style flags as (setting name, raw string value), in order; they win over
    /// the INI.
    pub overrides: Vec<(String, String)>,
}

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Usage(String),
}

pub fn parse(_argv: &[String]) -> Result<CliArgs, CliError> {
    todo!("cli")
}

/// Whole program: returns the process exit code (see `crate::exit`). Errors are one line on
/// stderr, never a panic or a backtrace.
pub fn main(argv: &[String]) -> i32 {
    let args = match parse(argv) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("waitressd: {e}");
            return crate::exit::CONFIG;
        }
    };
    let _ = args;
    todo!("cli → config → supervisor")
}

//! The `waitressd` executable: parse the command line, load the config, run the supervisor.
use std::process::ExitCode;

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    ExitCode::from(waitressd::cli::main(&argv) as u8)
}

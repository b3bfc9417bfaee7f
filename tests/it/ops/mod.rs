//! Integration tests: operations — the daemon's own log (`error_log`, `log_level`, journal
//! priorities, USR1 reopen), the access log for every response in each `access_log_format`,
//! and the honest dependency table. Fixture app: tests/apps/ops/opsapp.py. The Debian package
//! and systemd tests are shell scripts (tools/deb-test.sh, tools/systemd-test.sh).
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{bin, eventually, root, Daemon};

mod access;
mod logs;
mod reload;

fn apps() -> PathBuf {
    root().join("tests/apps/ops")
}

/// `waitressd --app opsapp:app ARGS` in the fixture directory.
fn command(args: &[&str]) -> Command {
    let mut c = Command::new(bin());
    c.args(["--app", "opsapp:app", "--threads", "2"])
        .args(args)
        .current_dir(apps());
    c
}

fn start(args: &[&str], listeners: usize) -> Daemon {
    Daemon::start_with(&mut command(args), listeners)
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

/// The README's dependency table names exactly the crates of `Cargo.toml` (dev ones marked).
#[test]
fn readme_dependency_table_matches_cargo_toml() {
    let toml = read(&root().join("Cargo.toml"));
    let mut deps: Vec<String> = Vec::new();
    let mut section = "";
    for line in toml.lines() {
        if line.starts_with('[') {
            section = line.trim();
        } else if matches!(
            section,
            "[dependencies]" | "[build-dependencies]" | "[dev-dependencies]"
        ) {
            if let Some((name, _)) = line.split_once('=') {
                deps.push(name.trim().to_string());
            }
        }
    }
    let readme = read(&root().join("README.md"));
    let table = readme
        .split("## Dependencies")
        .nth(1)
        .expect("README has a Dependencies section");
    let mut named: Vec<String> = Vec::new();
    for row in table
        .lines()
        .skip_while(|l| !l.starts_with("| crate"))
        .skip(2)
    {
        if !row.starts_with('|') {
            break;
        }
        let cell = row.split('|').nth(1).unwrap_or_default();
        if cell.contains("fuzz/ only") {
            continue; // fuzz/Cargo.toml's own
        }
        let cell = cell.replace("*(dev)*", "");
        // "pyo3 (+ pyo3-build-config)" and "log, env_logger" name several crates.
        named.extend(
            cell.split([',', '(', ')', '+'])
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from),
        );
    }
    deps.sort();
    named.sort();
    assert_eq!(named, deps, "README dependency table vs Cargo.toml");
}

/// The generated man pages pass `mandoc -Tlint` with no message at all (style included).
#[test]
fn man_pages_are_mandoc_lint_clean() {
    for page in ["man/waitressd.8", "man/waitressd.ini.5"] {
        let out = Command::new("mandoc")
            .args(["-Tlint", "-Wstyle"])
            .arg(root().join(page))
            .output()
            .expect("mandoc (tools/test.sh installs it)");
        let msgs = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(msgs.trim().is_empty(), "{page}:\n{msgs}");
    }
    let help = Command::new(bin()).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout).into_owned();
    let man8 = read(&root().join("man/waitressd.8"));
    let man5 = read(&root().join("man/waitressd.ini.5"));
    for d in waitressd::config::defs::DEFS {
        let flag = waitressd::config::render::flag_usage(d);
        assert!(help.contains(&flag), "--help lacks {flag}");
        assert!(
            man8.contains(&flag.replace('-', "\\-")),
            "waitressd.8 lacks {flag}"
        );
        assert!(
            man5.contains(&format!(".B {}", d.name.replace('-', "\\-"))),
            "waitressd.ini.5 lacks {}",
            d.name
        );
    }
    for section in ["SIGNALS", "FILES", "ENVIRONMENT", "EXIT STATUS", "EXAMPLES"] {
        assert!(
            man8.contains(&format!(".SH {section}")),
            "waitressd.8 lacks {section}"
        );
    }
}

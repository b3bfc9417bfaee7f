//! Integration tests: supervisor — the real binary as master of pre-forked workers: privilege
//! drop on a privileged port, worker crash and respawn, graceful stop, reload under load, boot
//! failures, pidfile, systemd notify and socket activation. Fixture apps: tests/apps/supervisor.
//! This file holds the shared helpers; the tests are grouped in `lifecycle`, `reload`, `boot`
//! and `systemd`.
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::util::{bin, eventually, root, split_response, Daemon};

mod boot;
mod failures;
mod lifecycle;
mod proxy_refused;
mod recycle;
mod reload;
mod reload_keys;
mod status;
mod status_edges;
mod systemd;
mod timeout;
mod upgrade;

fn apps() -> PathBuf {
    root().join("tests/apps/supervisor")
}

/// An INI for the fixture app: `[app:main]` with `name`, `[server:main]` with `server`.
fn write_ini(dir: &Path, app: &str, name: &str, server: &str) -> PathBuf {
    let path = dir.join("sup.ini");
    let text = format!(
        "[app:main]\nuse = call:{app}\nname = {name}\n\n[server:main]\nuse = egg:waitress#main\n{server}\n"
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn command(ini: &Path) -> Command {
    let mut c = Command::new(bin());
    c.arg("--config")
        .arg(ini)
        .env("VIRTUAL_ENV", crate::util::venv())
        .env("PYTHONPATH", apps())
        .current_dir(ini.parent().unwrap());
    c
}

fn start(ini: &Path, listeners: usize) -> Daemon {
    Daemon::start_with(&mut command(ini), listeners)
}

/// The fixture's answer: (pid, name, "ruid,euid,suid"), or None on any failure.
/// (Never panics: a refused connection is a failed request, counted by the callers.)
fn ask(addr: &str, path: &str) -> Option<(i32, String, String)> {
    ask_within(addr, path, 60)
}

/// `ask` with a read timeout of `secs`.
fn ask_within(addr: &str, path: &str, secs: u64) -> Option<(i32, String, String)> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(secs))).ok()?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let (status, _, body) = split_response(&raw);
    if status != 200 {
        return None;
    }
    let body = String::from_utf8(body).ok()?;
    let mut w = body.split(' ');
    Some((
        w.next()?.parse().ok()?,
        w.next()?.to_string(),
        w.next()?.to_string(),
    ))
}

use crate::util::children;

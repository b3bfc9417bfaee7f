//! `--daemon` under `$(...)`: returns as soon as every worker is ready (the daemon never keeps
//! the caller's streams), or with the boot error's code and message.
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::apps;
use crate::util::{bin, get, venv};

/// Runs `sh -c 'out=$(waitressd ARGS 2>&1); echo "rc=$?"; printf %s "$out"'`, bounded in time:
/// (shell output, seconds it took).
fn substituted(args: &str) -> (String, f64) {
    let script = format!(
        "out=$('{}' {args} 2>&1); echo \"rc=$?\"; printf %s \"$out\"",
        bin().display()
    );
    let started = Instant::now();
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(apps())
        .env("VIRTUAL_ENV", venv())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = started + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the caller of --daemon did not return within 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        started.elapsed().as_secs_f64(),
    )
}

/// Stops the daemon named by a pidfile (by its PID) when dropped.
struct PidGuard(std::path::PathBuf);

impl Drop for PidGuard {
    fn drop(&mut self) {
        if let Some(pid) = std::fs::read_to_string(&self.0)
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
        {
            // SAFETY: kill(2) on the daemon this test started (its pidfile names it).
            unsafe { libc::kill(pid, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(20);
            while self.0.exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

#[test]
fn daemon_under_command_substitution_returns_once_every_worker_is_ready() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("d.pid");
    let guard = PidGuard(pidfile.clone());
    let (out, secs) = substituted(&format!(
        "--daemon slowimport:app --workers 2 --listen 127.0.0.1:0 --pidfile '{}'",
        pidfile.display()
    ));
    assert!(out.starts_with("rc=0\n"), "{out}");
    // Both workers loaded the app before the caller got control back.
    assert_eq!(out.matches("SLOWIMPORT done").count(), 2, "{out}");
    assert!(out.contains("2 worker(s) ready"), "{out}");
    assert!(
        out.contains("logs: /dev/null (--daemon without error_log; set error_log = PATH"),
        "{out}"
    );
    assert!(secs < 30.0, "took {secs} s");
    let url = out
        .lines()
        .find_map(|l| l.strip_prefix("Serving on http://"))
        .expect("Serving on in the caller's output");
    assert!(url.starts_with("127.0.0.1:"), "a whole line: {url:?}");
    let (status, _, body) = get(url, "/");
    assert_eq!((status, body.as_slice()), (200, b"ok".as_slice()));
    // The daemon's standard streams are not the caller's: none is a pipe any more.
    let pid = std::fs::read_to_string(&pidfile).unwrap();
    for fd in 0..3 {
        let target = std::fs::read_link(format!("/proc/{}/fd/{fd}", pid.trim())).unwrap();
        assert_eq!(target, std::path::Path::new("/dev/null"), "fd {fd}");
    }
    drop(guard);
    assert!(!pidfile.exists(), "the daemon stopped on TERM");
}

#[test]
fn daemon_boot_error_reaches_the_caller_with_its_code() {
    let (out, _) = substituted("--daemon broken:app --listen 127.0.0.1:0");
    assert!(out.starts_with("rc=4\n"), "{out}");
    assert!(out.contains("RuntimeError: broken at import"), "{out}");
    assert!(!out.contains("Serving on"), "{out}");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let (out, _) = substituted(&format!("--daemon envapp:app --listen 127.0.0.1:{port}"));
    assert!(out.starts_with("rc=3\n"), "{out}");
    assert!(out.contains("Address already in use"), "{out}");
}

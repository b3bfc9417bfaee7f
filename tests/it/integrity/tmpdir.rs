//! A `$TMPDIR` the workers cannot write: named at boot with its fix; a body or a response that
//! would spill there fails visibly (500, a cut stream, a reset) and is logged as what it is,
//! naming the directory and the setting to change; the worker goes on serving the rest.
use std::io::Write;
use std::process::Command;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use super::client::{Broken, Conn};
use super::{apps_dir, download, MIB};
use crate::util::{self, Daemon};

/// stderr lines until one contains every part of `want` (bounded); the lines seen.
fn log_line(rx: &Receiver<String>, want: &[&str]) -> Result<String, Vec<String>> {
    let end = Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    while let Ok(l) = rx.recv_timeout(end.saturating_duration_since(Instant::now())) {
        if want.iter().all(|w| l.contains(w)) {
            return Ok(l);
        }
        seen.push(l);
    }
    Err(seen)
}

fn expect_line(rx: &Receiver<String>, want: &[&str]) -> String {
    log_line(rx, want)
        .unwrap_or_else(|seen| panic!("no stderr line with {want:?}; stderr:\n{}", seen.join("\n")))
}

#[test]
fn an_unwritable_tmpdir_is_named_at_boot_and_spills_there_fail_visibly() {
    let _rss = super::rss_lock();
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-dir");
    let missing_s = missing.to_str().unwrap();
    let d = Daemon::start_with(
        Command::new(util::bin())
            .args([
                "--app",
                "integrity:app",
                "--listen",
                "127.0.0.1:0",
                "--outbuf-overflow",
                "65536",
            ])
            .current_dir(apps_dir())
            .env("TMPDIR", &missing),
        1,
    );
    let boot = expect_line(&d.stderr, &["cannot create temporary files in", missing_s]);
    assert!(boot.contains("WARN") && boot.contains("TMPDIR"), "{boot}");
    let addr = d.addr();

    // An upload over inbuf_overflow (512 KiB): a 500 in the request's HTTP version.
    let mut c = Conn::open(&addr, MIB as usize, Duration::ZERO);
    c.send(b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 2097152\r\n\r\n");
    // The server may answer and close before it has read the whole body.
    let _ = c.r.get_mut().sock.write_all(&vec![b'u'; 2 << 20]);
    let seen = c.response("POST").expect("a 500 response");
    assert!(seen.head.starts_with("HTTP/1.1 500"), "{}", seen.head);
    let line = expect_line(&d.stderr, &["request body over inbuf_overflow", missing_s]);
    assert!(line.contains("ERROR") && line.contains("TMPDIR"), "{line}");

    // Responses over outbuf_overflow (64 KiB) to a client that does not read yet: the spill
    // fails, and each response ends visibly (a chunked stream cut before its last chunk; an
    // HTTP/1.0 body without a length reset), never as a clean but short body.
    for version in ["HTTP/1.1", "HTTP/1.0"] {
        let mut c = Conn::open(&addr, MIB as usize, Duration::ZERO);
        let n = 8 * MIB;
        c.send(format!("GET /stream?seed=5&n={n} {version}\r\nHost: t\r\n\r\n").as_bytes());
        std::thread::sleep(Duration::from_millis(500));
        match c.response("GET") {
            Err(Broken::Cut { why, .. }) if version == "HTTP/1.1" || why.contains("reset") => {}
            other => panic!("{version}: a spill that failed must end visibly, got {other:?}"),
        }
        let line = expect_line(
            &d.stderr,
            &["cannot spill a response over outbuf_overflow", missing_s],
        );
        assert!(line.contains("ERROR") && line.contains("TMPDIR"), "{line}");
        assert!(!line.contains("Socket error"), "{line}");
    }

    // What fits in memory is still served, whole.
    download(&addr, "/cl", 9, 20_000, "HTTP/1.1").unwrap();
}

/// `--check-config` (the deploy gate) warns about it too, without failing: nothing may ever
/// spill.
#[test]
fn check_config_warns_about_an_unwritable_tmpdir() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-dir");
    let out = Command::new(util::bin())
        .args(["--app", "integrity:app", "--check-config"])
        .current_dir(apps_dir())
        .env("VIRTUAL_ENV", util::venv())
        .env("TMPDIR", &missing)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("warning: cannot create temporary files in")
            && err.contains(missing.to_str().unwrap()),
        "{err}"
    );
}

//! A `$TMPDIR` the workers cannot write: named at boot with its fix; a body or a response that
//! would spill there fails visibly (500, a cut stream, a reset) and is logged as what it is,
//! naming the directory and the setting to change; the worker goes on serving the rest.
use std::io::Write;
use std::process::Command;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use super::client::{sha256_hex, Broken, Conn};
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

/// Runs `waitressd ARGS` with `$TMPDIR` on a tmpfs of `size` of its own (a private mount
/// namespace: the mount goes away with the daemon); `None` when this machine cannot (not
/// root, no `unshare`).
fn daemon_on_tmpfs(size: &str, args: &[&str]) -> Option<(Daemon, tempfile::TempDir)> {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let can = root
        && Command::new("unshare")
            .args(["-m", "true"])
            .status()
            .is_ok_and(|s| s.success());
    if !can {
        eprintln!("skipped: needs root and unshare(1) to mount a tmpfs");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().to_str().unwrap().to_string();
    let d = Daemon::start_with(
        Command::new("unshare")
            .args([
                "-m",
                "sh",
                "-c",
                r#"mount -t tmpfs -o "size=$0" tmpfs "$1" && shift && exec "$@""#,
            ])
            .args([size, &tmp])
            .arg(util::bin())
            .args(args)
            .current_dir(apps_dir())
            .env("TMPDIR", &tmp),
        1,
    );
    Some((d, dir))
}

/// A finished upload's temp file is kept for the next one, and keeps its blocks: four uploads
/// of 3.9 MiB at once left 15.6 MiB of a 16 MiB `$TMPDIR` held by deleted files (invisible to
/// `ls` and `du`), so a response spill then failed with "No space left on device" in an empty
/// directory. A full disk now drops the kept files first: the response arrives whole and
/// nothing is logged.
#[test]
fn kept_upload_files_give_way_when_tmpdir_is_full() {
    let _rss = super::rss_lock();
    let Some((d, _dir)) = daemon_on_tmpfs(
        "16m",
        &[
            "--app",
            "integrity:app",
            "--listen",
            "127.0.0.1:0",
            "--threads",
            "4",
            "--outbuf-overflow",
            "65536",
        ],
    ) else {
        return;
    };
    let addr = d.addr();
    // Four uploads in flight together (each its own temp file), then finished.
    let n = 3900 * 1024;
    let data = vec![b'u'; n];
    let want = format!("{n} {}", sha256_hex(&data));
    let half = std::sync::Barrier::new(4);
    std::thread::scope(|s| {
        for i in 0..4 {
            let (addr, data, want, half) = (&addr, &data, &want, &half);
            s.spawn(move || {
                let mut c = Conn::open(addr, 65536, Duration::ZERO);
                c.send(
                    format!("POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: {n}\r\n\r\n")
                        .as_bytes(),
                );
                c.send(&data[..n / 2]);
                half.wait();
                c.send(&data[n / 2..]);
                let seen = c
                    .response("POST")
                    .unwrap_or_else(|e| panic!("upload {i}: {e:?}"));
                assert_eq!(seen.status, 200, "upload {i}: {}", seen.head);
                assert_eq!(seen.sha, sha256_hex(want.as_bytes()), "upload {i}");
            });
        }
    });
    // A 12 MiB response to a client that reads only after the app is done: most of it spills.
    let len = 12 * MIB;
    let sha = super::digest(&addr, 11, len, None);
    let mut c = Conn::open(&addr, MIB as usize, Duration::ZERO);
    c.send(format!("GET /stream?seed=11&n={len} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
    std::thread::sleep(Duration::from_millis(1500));
    super::check(c.response("GET"), &sha, len, "12 MiB after the uploads").unwrap();
    let logged: Vec<String> = d
        .stderr
        .try_iter()
        .filter(|l| l.contains("ERROR"))
        .collect();
    assert!(logged.is_empty(), "{logged:?}");
}

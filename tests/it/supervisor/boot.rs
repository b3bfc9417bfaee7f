//! Boot: exit codes of the protocol (4 for an app that fails to import, without a respawn
//! loop; 3 for a bind error), the pidfile, and unix socket permissions and removal.
use std::io::{Read, Write};
use std::time::{Duration, Instant};

use super::{command, eventually, start, write_ini};

#[test]
fn app_that_fails_to_import_exits_4_without_respawn_loop() {
    let dir = tempfile::tempdir().unwrap();
    let ini = write_ini(
        dir.path(),
        "supbroken:app",
        "one",
        "listen = 127.0.0.1:0\nworkers = 2",
    );
    let start = Instant::now();
    let out = command(&ini).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(start.elapsed() < Duration::from_secs(30));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no_such_module_for_waitressd_tests"),
        "the app's own failure:\n{stderr}"
    );
    assert!(
        stderr.matches("started").count() <= 2,
        "no respawn storm:\n{stderr}"
    );
}

/// An import that crashes the worker (a C extension's SIGSEGV) crashes it again on every
/// respawn: at first start that is a boot failure like an ImportError (exit 4, no endless
/// respawn loop), and the log names the signal and where the import crashed.
#[test]
fn an_import_that_segfaults_exits_4_naming_the_signal_and_the_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("segvimport.py"),
        "import ctypes\n\ndef crash():\n    ctypes.string_at(0)\n\ncrash()\n",
    )
    .unwrap();
    let ini = write_ini(
        dir.path(),
        "segvimport:app",
        "one",
        "listen = 127.0.0.1:0\nworkers = 2",
    );
    let mut child = command(&ini)
        .env("PYTHONPATH", dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let mut code = None;
    if eventually(30, || {
        code = child.try_wait().unwrap().map(|s| s.code());
        code.is_some()
    }) {
    } else {
        let _ = child.kill();
        let _ = child.wait();
    }
    let stderr = reader.join().unwrap();
    assert_eq!(code, Some(Some(4)), "exit 4 by itself:\n{stderr}");
    assert!(stderr.contains("killed by SIGSEGV"), "{stderr}");
    assert!(
        stderr.contains("Segmentation fault") && stderr.contains("segvimport.py\", line 4"),
        "the Python stack of the crash:\n{stderr}"
    );
}

#[test]
fn bind_error_exits_3_with_one_clear_line() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let ini = write_ini(
        dir.path(),
        "supapp:make_app",
        "one",
        &format!("listen = 127.0.0.1:{port}"),
    );
    let out = command(&ini).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("127.0.0.1:{port}")), "{stderr}");
}

#[test]
fn pidfile_written_stale_replaced_and_removed_at_exit() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("w.pid");
    std::fs::write(&pidfile, "999999999\n").unwrap(); // stale
    let ini = write_ini(
        dir.path(),
        "supapp:make_app",
        "one",
        &format!("listen = 127.0.0.1:0\npidfile = {}", pidfile.display()),
    );
    let mut d = start(&ini, 1);
    assert!(eventually(10, || std::fs::read_to_string(&pidfile)
        .is_ok_and(|t| t.trim() == d.pid().to_string())));
    // A second daemon with the same pidfile refuses to start.
    let out = command(&ini).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    d.signal(libc::SIGTERM);
    assert_eq!(d.wait(30), Some(0));
    assert!(!pidfile.exists());
}

/// A pidfile that cannot be written names the pidfile and its directory with the fix, never
/// the temporary file it is written through (`.waitressd-pidLeHJuB`).
#[test]
fn a_pidfile_in_a_missing_directory_is_named_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("no-such-dir/w.pid");
    let ini = write_ini(
        dir.path(),
        "supapp:make_app",
        "one",
        &format!("listen = 127.0.0.1:0\npidfile = {}", pidfile.display()),
    );
    let out = command(&ini).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    let want = format!(
        "cannot write pidfile {}: No such file or directory (os error 2) (its directory {} does \
         not exist: create it, or set another pidfile)",
        pidfile.display(),
        pidfile.parent().unwrap().display()
    );
    assert!(stderr.contains(&want), "{want:?} not in {stderr}");
    assert!(!stderr.contains(".waitressd-pid"), "{stderr}");
}

#[test]
fn unix_socket_gets_perms_and_is_removed_at_exit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.sock");
    let ini = write_ini(
        dir.path(),
        "supapp:make_app",
        "one",
        &format!("unix_socket = {}\nunix_socket_perms = 660", path.display()),
    );
    let mut d = start(&ini, 1);
    assert_eq!(d.urls[0], format!("http://unix:{}", path.display()));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o660
    );
    let mut s = std::os::unix::net::UnixStream::connect(&path).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    assert!(out.starts_with("HTTP/1.0 200"), "{out}");
    d.signal(libc::SIGTERM);
    assert_eq!(d.wait(30), Some(0));
    assert!(!path.exists(), "the master removes its unix socket file");
}

/// A unix socket in a directory that does not exist (a /run subdirectory systemd did not
/// make): exit 3, and the message names the directory and the fix.
#[test]
fn a_unix_socket_in_a_missing_directory_names_the_directory_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("missing/app.sock");
    let (code, _, err) = crate::util::run(
        &[
            "--app",
            "supapp:app",
            "--unix-socket",
            sock.to_str().unwrap(),
        ],
        &super::apps(),
    );
    assert_eq!(code, 3, "{err}");
    let parent = dir.path().join("missing");
    assert!(
        err.contains(&format!(
            "its directory {} does not exist",
            parent.display()
        )) && err.contains("RuntimeDirectory="),
        "{err}"
    );
}

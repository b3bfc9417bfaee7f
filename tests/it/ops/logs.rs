//! `error_log`, `log_level`, journal priorities and USR1 reopening.
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use super::{eventually, read, start};
use crate::util::get;

/// Master, worker and the app's own `print(file=sys.stderr)` all land in `error_log`; after
/// a rename and USR1 (logrotate without copytruncate) new lines go to the new files and none
/// is lost.
#[test]
fn error_log_holds_master_worker_and_python_stderr_and_usr1_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let (err, acc) = (dir.path().join("error.log"), dir.path().join("access.log"));
    let mut d = start(
        &[
            "--listen",
            "127.0.0.1:0",
            "--error-log",
            err.to_str().unwrap(),
            "--access-log",
            acc.to_str().unwrap(),
        ],
        1,
    );
    assert_eq!(get(&d.addr(), "/stderr?first-line").0, 200);
    assert!(
        eventually(10, || {
            let t = read(&err);
            t.contains("first-line") && t.contains("worker 1") && t.contains("serving")
        }),
        "error_log: {}",
        read(&err)
    );
    assert!(eventually(10, || read(&acc).contains("/stderr?first-line")));
    std::fs::rename(&err, dir.path().join("error.log.1")).unwrap();
    std::fs::rename(&acc, dir.path().join("access.log.1")).unwrap();
    d.signal(libc::SIGUSR1);
    assert!(
        eventually(10, || read(&err).contains("log files reopened")),
        "no new error_log after USR1"
    );
    // The workers reopen after the master: retry until the new files get the request.
    assert!(eventually(10, || {
        get(&d.addr(), "/stderr?second-line");
        read(&err).contains("second-line") && read(&acc).contains("/stderr?second-line")
    }));
    let old_err = read(&dir.path().join("error.log.1"));
    let old_acc = read(&dir.path().join("access.log.1"));
    assert!(old_err.contains("first-line") && old_acc.contains("/stderr?first-line"));
    d.signal(libc::SIGTERM);
    assert_eq!(d.wait(30), Some(0));
    assert!(read(&err).contains("exiting with code 0"), "{}", read(&err));
}

/// Under systemd (`JOURNAL_STREAM` names our stderr) each line starts with its syslog
/// priority; `log_level = warning` hides info lines.
/// `waitressd INI` with its stderr on `stderr` and `JOURNAL_STREAM` naming it, as systemd
/// starts a unit whose output goes to the journal.
fn journal_command(ini: &std::path::Path, stderr: std::os::fd::OwnedFd) -> std::process::Command {
    let st = nix::sys::stat::fstat(&stderr).unwrap();
    let mut cmd = std::process::Command::new(crate::util::bin());
    cmd.arg(ini)
        .current_dir(super::apps())
        .env("VIRTUAL_ENV", crate::util::venv())
        .env("PYTHONPATH", super::apps())
        .env("JOURNAL_STREAM", format!("{}:{}", st.st_dev, st.st_ino))
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(stderr));
    cmd
}

#[test]
fn journal_stream_lines_carry_priorities_and_log_level_filters() {
    let dir = tempfile::tempdir().unwrap();
    let ini = dir.path().join("ops.ini");
    let good = "[app:main]\nuse = call:opsapp:app\n\n[server:main]\nuse = egg:waitress#main\nlisten = 127.0.0.1:0\nlog_level = warning\n";
    // `call:` needs a factory: PasteDeploy calls opsapp.app(global_conf), so use a factory.
    let good = good.replace("call:opsapp:app", "call:opsapp:factory");
    std::fs::write(&ini, &good).unwrap();
    let (r, w) = nix::unistd::pipe().unwrap();
    let mut cmd = journal_command(&ini, w);
    let mut child = cmd.spawn().unwrap();
    drop(cmd); // our copy of the pipe's write end
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(std::fs::File::from(r)).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    let next = |lines: &mut Vec<String>| {
        let l = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("a log line");
        lines.push(l.clone());
        l
    };
    let url = loop {
        let l = next(&mut lines);
        if let Some(i) = l.find("Serving on ") {
            break l[i + 11..].trim().trim_start_matches("http://").to_string();
        }
    };
    assert!(eventually(30, || get(&url, "/").0 == 200));
    std::fs::write(
        &ini,
        good.replace("log_level = warning", "log_level = loud"),
    )
    .unwrap();
    // SAFETY: kill(2) on the PID of our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGHUP) };
    let err = loop {
        let l = next(&mut lines);
        if l.contains("reload failed") {
            break l;
        }
    };
    assert!(err.starts_with("<3>ERROR"), "{err}");
    assert!(err.contains("not a log level"), "{err}");
    // SAFETY: as above.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let st = child.wait().unwrap();
    assert_eq!(st.code(), Some(0));
    while let Ok(l) = rx.recv_timeout(Duration::from_secs(5)) {
        lines.push(l);
    }
    let info: Vec<&String> = lines.iter().filter(|l| l.contains("INFO")).collect();
    assert!(info.is_empty(), "log_level = warning let through {info:?}");
}

/// `--daemon` with `error_log`: the foreground returns once serving, and the detached master's
/// and workers' log lines land in the file; without `error_log` it says where the log goes.
#[test]
fn daemon_writes_its_log_to_error_log_and_says_so_without_it() {
    let dir = tempfile::tempdir().unwrap();
    let (err, pid) = (dir.path().join("error.log"), dir.path().join("d.pid"));
    // Files, not pipes: the detached daemon keeps its inherited stdout and stderr.
    let fg = dir.path().join("fg.txt");
    let to_fg = || Stdio::from(std::fs::File::create(&fg).unwrap());
    let out = super::command(&[
        "--daemon",
        "--listen",
        "127.0.0.1:0",
        "--error-log",
        err.to_str().unwrap(),
        "--pidfile",
        pid.to_str().unwrap(),
    ])
    .env("VIRTUAL_ENV", crate::util::venv())
    .stdin(Stdio::null())
    .stdout(to_fg())
    .stderr(to_fg())
    .status()
    .unwrap();
    assert_eq!(out.code(), Some(0), "{}", read(&fg));
    assert!(!read(&fg).contains("without error_log"), "{}", read(&fg));
    assert!(
        read(&fg).contains(&format!("logs: {}", err.display())),
        "{}",
        read(&fg)
    );
    let master: i32 = read(&pid).trim().parse().expect("pidfile");
    assert!(
        eventually(10, || read(&err).contains("worker 1")
            && read(&err).contains("ready")),
        "{}",
        read(&err)
    );
    // SAFETY: kill(2) on the daemon this test started (its PID from its pidfile).
    unsafe { libc::kill(master, libc::SIGTERM) };
    assert!(eventually(30, || read(&err).contains("exiting with code 0")));

    let out = super::command(&[
        "--daemon",
        "--listen",
        "127.0.0.1:0",
        "--pidfile",
        pid.to_str().unwrap(),
    ])
    .env("VIRTUAL_ENV", crate::util::venv())
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(to_fg())
    .status()
    .unwrap();
    assert_eq!(out.code(), Some(0), "{}", read(&fg));
    assert!(
        read(&fg).contains("--daemon without error_log"),
        "{}",
        read(&fg)
    );
    let master: i32 = read(&pid).trim().parse().expect("pidfile");
    // SAFETY: as above.
    unsafe { libc::kill(master, libc::SIGTERM) };
    assert!(eventually(30, || !pid.exists()));
}

/// `--daemon` started from a script or a terminal: stdin reads nothing (never the log file,
/// open for writing only), and interrupting the caller while the app still loads (Ctrl-C,
/// `timeout`'s TERM) calls the start off: the caller exits 128 + the signal after saying so,
/// and the daemon stops instead of coming up unseen later.
#[test]
fn an_interrupted_daemon_start_is_called_off_and_stdin_reads_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (err, pid) = (dir.path().join("error.log"), dir.path().join("d.pid"));
    let stdin_seen = dir.path().join("stdin.txt");
    std::fs::write(
        dir.path().join("slowboot.py"),
        format!(
            "import sys, time\ntry:\n    seen = repr(sys.stdin.read())\nexcept OSError as e:\n    \
             seen = repr(e)\nopen({:?}, 'w').write(seen)\ntime.sleep(60)\n\n\
             def app(environ, start_response):\n    start_response('200 OK', [])\n    return [b'']\n",
            stdin_seen.to_str().unwrap()
        ),
    )
    .unwrap();
    let fg = dir.path().join("fg.txt");
    let mut caller = std::process::Command::new(crate::util::bin())
        .args([
            "--app",
            "slowboot:app",
            "--daemon",
            "--listen",
            "127.0.0.1:0",
        ])
        .arg("--error-log")
        .arg(&err)
        .arg("--pidfile")
        .arg(&pid)
        .env("VIRTUAL_ENV", crate::util::venv())
        .env("PYTHONPATH", dir.path())
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(&fg).unwrap()))
        .spawn()
        .unwrap();
    let loaded = eventually(30, || !read(&stdin_seen).is_empty() && pid.exists());
    let master: i32 = read(&pid).trim().parse().unwrap_or(0);
    // SAFETY: kill(2) on the foreground process this test spawned.
    unsafe { libc::kill(caller.id() as i32, libc::SIGINT) };
    let mut code = None;
    eventually(10, || {
        code = caller.try_wait().unwrap().map(|s| s.code());
        code.is_some()
    });
    if code.is_none() {
        let _ = caller.kill();
        let _ = caller.wait();
    }
    let stopped = eventually(30, || !pid.exists());
    if !stopped && master > 0 {
        // SAFETY: kill(2) on the daemon this test started (its PID from its pidfile); its
        // worker follows its master.
        unsafe { libc::kill(master, libc::SIGTERM) };
    }
    assert!(loaded, "the app loads: {}", read(&fg));
    assert_eq!(read(&stdin_seen), "''", "stdin is /dev/null");
    assert_eq!(
        code,
        Some(Some(130)),
        "the caller ends on SIGINT: {}",
        read(&fg)
    );
    assert!(
        read(&fg).contains("SIGINT while the daemon"),
        "{}",
        read(&fg)
    );
    assert!(stopped, "the daemon was stopped: {}", read(&err));
}

/// An `error_log` on a full disk (`/dev/full` behind a symlink) never turns into a crash: the
/// daemon serves, a reload that adds a listener (the master prints its `Serving on` line)
/// serves it, and a boot failure still exits with its own code (4), not an abort (134: std's
/// `eprintln!` panics when stderr cannot be written).
#[test]
fn an_error_log_on_a_full_disk_costs_no_request_reload_or_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let err = dir.path().join("error.log");
    std::os::unix::fs::symlink("/dev/full", &err).unwrap();
    let (code, _, _) = crate::util::run(
        &[
            "--app",
            "no_such_module:app",
            "--listen",
            "127.0.0.1:0",
            "--error-log",
            err.to_str().unwrap(),
        ],
        &super::apps(),
    );
    assert_eq!(code, 4, "a boot failure must keep its exit code");

    let ini = dir.path().join("full.ini");
    let listen = |ports: &str| {
        format!(
            "[app:main]\nuse = call:opsapp:make\n\n[server:main]\nuse = egg:waitress#main\n\
             listen = {ports}\nerror_log = {}\n",
            err.display()
        )
    };
    let free = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let (a, b) = (free(), free());
    std::fs::write(&ini, listen(&format!("127.0.0.1:{a}"))).unwrap();
    let mut d = crate::util::Daemon::start_with(
        std::process::Command::new(crate::util::bin())
            .arg(&ini)
            .args(["--pythonpath", super::apps().to_str().unwrap()])
            .current_dir(dir.path()),
        1,
    );
    assert!(eventually(10, || get(&format!("127.0.0.1:{a}"), "/app").0 == 200));
    std::fs::write(&ini, listen(&format!("127.0.0.1:{a} 127.0.0.1:{b}"))).unwrap();
    d.signal(libc::SIGHUP);
    assert!(
        eventually(20, || std::net::TcpStream::connect(("127.0.0.1", b))
            .is_ok()
            && get(&format!("127.0.0.1:{b}"), "/app").0 == 200),
        "the reload's new listener does not serve"
    );
    assert_eq!(get(&format!("127.0.0.1:{a}"), "/app").0, 200);
    d.signal(libc::SIGTERM);
    assert_eq!(d.wait(30), Some(0));
}

/// The app's own `print(..., file=sys.stderr)` goes to `error_log`; on a full disk the line is
/// lost and the request still answers 200 (CPython's stderr raised `OSError: [Errno 28]`, a 500).
#[test]
fn an_apps_stderr_on_a_full_disk_loses_the_line_not_the_request() {
    let dir = tempfile::tempdir().unwrap();
    let err = dir.path().join("error.log");
    std::os::unix::fs::symlink("/dev/full", &err).unwrap();
    let mut d = start(
        &[
            "--listen",
            "127.0.0.1:0",
            "--expose-tracebacks",
            "--error-log",
            err.to_str().unwrap(),
        ],
        1,
    );
    for _ in 0..3 {
        let (status, _, body) = get(&d.addr(), "/stderr?a-line-for-a-full-disk");
        assert_eq!(
            (status, String::from_utf8_lossy(&body).into_owned()),
            (200, "ok".to_string()),
            "an app's stderr write on a full disk failed the request"
        );
    }
    d.signal(libc::SIGTERM);
    assert_eq!(d.wait(30), Some(0));
}

/// Under systemd a start that fails says why in one line at priority error: `journalctl -u
/// waitressd@NAME -p warning` (the README's way to see the daemon's warnings and errors) and
/// `-p err` show it. It was written without a priority (the journal's default, info), so those
/// showed only systemd's "Failed to start".
#[test]
fn journal_stream_fatal_boot_errors_carry_the_error_priority() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let cases = [
        (
            "workers = banana\n",
            2,
            ":7: [server:main] workers = 'banana'",
        ),
        (
            &*format!("listen = {}\n", taken.local_addr().unwrap()),
            3,
            "Address already in use",
        ),
    ];
    for (i, (setting, code, says)) in cases.into_iter().enumerate() {
        let ini = dir.path().join(format!("bad{i}.ini"));
        std::fs::write(
            &ini,
            format!(
                "[app:main]\nuse = call:opsapp:factory\n\n[server:main]\nuse = egg:waitress#main\n\
                 log_level = warning\n{setting}"
            ),
        )
        .unwrap();
        let log = dir.path().join(format!("stderr{i}"));
        let f = std::fs::File::create(&log).unwrap();
        let out = journal_command(&ini, f.into()).status().unwrap();
        assert_eq!(out.code(), Some(code), "{}", read(&log));
        let text = read(&log);
        let line = text.lines().find(|l| l.contains(says));
        assert!(
            line.is_some_and(|l| l.starts_with("<3>waitressd: ")),
            "want the line naming `{says}` at <3>: {text}"
        );
    }
}

/// A 501 (a transfer coding other than chunked) and a 505 (HTTP/2 prior knowledge, HTTP/3.0)
/// answer what a client sent: nothing at ERROR in the error log (scanners and probes filled
/// it with "http version not supported" and "not implemented" ERROR lines; waitress logs
/// none of them).
#[test]
fn refused_transfer_codings_and_http_versions_log_no_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = dir.path().join("error.log");
    let d = start(
        &[
            "--listen",
            "127.0.0.1:0",
            "--error-log",
            err.to_str().unwrap(),
        ],
        1,
    );
    let refused: [(&[u8], u16); 4] = [
        (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505),
        (b"GET / HTTP/3.0\r\nHost: t\r\n\r\n", 505),
        (
            b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n",
            501,
        ),
        (b"GET /\x01 HTTP/1.1\r\nHost: t\r\n\r\n", 400),
    ];
    for (raw, want) in refused {
        let got = crate::util::split_response(&crate::util::exchange(&d.addr(), raw, 10)).0;
        assert_eq!(got, want, "{}", String::from_utf8_lossy(raw));
    }
    // The worker's lines come before this request's.
    assert_eq!(get(&d.addr(), "/stderr?after-the-refusals").0, 200);
    assert!(eventually(10, || read(&err).contains("after-the-refusals")));
    let log = read(&err);
    assert!(!log.contains("ERROR"), "{log}");
}

//! waitress's messages through Python logging when the app's INI (or `--log-config`)
//! configures it; `Serving on` only once the app is loaded; app threads named `waitress-N`;
//! `proc_name` in the process titles.
use std::time::{Duration, Instant};

use super::{apps, get_json};
use crate::util::{run, Daemon};

/// stderr lines that arrive within `secs` (stops early at a line containing `until`).
fn lines(d: &Daemon, secs: u64, until: &str) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        if let Ok(l) = d.stderr.recv_timeout(Duration::from_millis(50)) {
            let done = !until.is_empty() && l.contains(until);
            seen.push(l);
            if done {
                break;
            }
        }
    }
    seen
}

#[test]
fn logger_waitress_in_the_ini_decides_about_serving_on() {
    let dir = apps();
    let pp = dir.to_str().unwrap();
    // level = INFO: waitress's line in the INI's format, from logger `waitress`.
    let d = Daemon::start(&["logging_info.ini", "--pythonpath", pp], &dir, 1);
    let url = d.urls[0].clone();
    let seen = lines(&d, 20, "Serving on");
    let want = format!("PYLOG INFO [waitress] [MainThread] Serving on {url}");
    assert!(seen.contains(&want), "{want:?} not in {seen:?}");
    // App threads are waitress-N to Python too.
    let name = get_json(&d.addr(), "/")["thread"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(name == "waitress-0" || name == "waitress-1", "{name}");
    // A runtime message from the event loop: `Task queue depth` on logger waitress.queue.
    let addr = d.addr();
    let clients: Vec<_> = (0..6)
        .map(|_| {
            let a = addr.clone();
            std::thread::spawn(move || crate::util::get(&a, "/?sleep").0)
        })
        .collect();
    for c in clients {
        assert_eq!(c.join().unwrap(), 200);
    }
    let seen = lines(&d, 10, "Task queue depth");
    // From the event loop, which waitress runs on its main thread.
    assert!(
        seen.iter().any(
            |l| l.starts_with("PYLOG WARNING [waitress.queue] [MainThread] ")
                && l.contains("Task queue depth is")
        ),
        "{seen:?}"
    );
    // A message of the app thread's response under that thread's name, as waitress logs it
    // (Pyramid's INI format has %(threadName)s); it was `Dummy-N`, the forwarding thread.
    let mut c = std::net::TcpStream::connect(&addr).unwrap();
    std::io::Write::write_all(&mut c, b"GET /?short HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
    let seen = lines(&d, 10, "too few bytes");
    assert!(
        seen.iter().any(|l| (l.starts_with("PYLOG WARNING [waitress] [waitress-0] ")
            || l.starts_with("PYLOG WARNING [waitress] [waitress-1] "))
            && l.ends_with("application returned too few bytes (3) for specified Content-Length (10) via app_iter")),
        "{seen:?}"
    );
    drop(c);
    drop(d);
    // level = ERROR: no Serving on at all, and the app still serves.
    let d = Daemon::start(&["logging_error.ini", "--pythonpath", pp], &dir, 1);
    assert_eq!(get_json(&d.addr(), "/")["version"], 1);
    let seen = lines(&d, 2, "");
    assert!(!seen.iter().any(|l| l.contains("Serving on")), "{seen:?}");
}

/// Logging sections that cannot be applied (a FileHandler in a directory that does not exist;
/// a [formatters] section left out) stop the start with one line naming the file, what
/// failed and the fix, not a bare FileNotFoundError or KeyError read as the app's failure.
#[test]
fn a_logging_section_that_cannot_be_applied_is_named_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let base = std::fs::read_to_string(apps().join("logging_info.ini")).unwrap();
    let pp = apps();
    let cases = [
        (
            "[handler_console]\nclass = FileHandler\nargs = ('/nonexistent/dir/app.log', 'a')\n",
            "FileNotFoundError",
            "a log file's directory must exist and be writable",
        ),
        (
            "",
            "KeyError",
            "check the [loggers], [handlers] and [formatters] sections",
        ),
    ];
    for (i, (handler, exc, fix)) in cases.iter().enumerate() {
        let text = if handler.is_empty() {
            base.replace("[formatters]", "[no_formatters]")
        } else {
            // The INI's own console handler replaced by the file one.
            let start = base.find("[handler_console]").unwrap();
            let end = base[start..].find("\n\n").map_or(base.len(), |e| start + e);
            format!("{}{handler}{}", &base[..start], &base[end..])
        };
        let ini = dir.path().join(format!("bad{i}.ini"));
        std::fs::write(&ini, text).unwrap();
        let (code, _, err) = run(
            &[ini.to_str().unwrap(), "--pythonpath", pp.to_str().unwrap()],
            dir.path(),
        );
        assert_eq!(code, 4, "{err}");
        let line = err
            .lines()
            .find(|l| l.contains("cannot configure logging from"))
            .unwrap_or_else(|| panic!("{err}"));
        assert!(
            line.contains(ini.to_str().unwrap()) && line.contains(exc) && line.contains(fix),
            "{line}"
        );
    }
}

#[test]
fn log_config_flag_configures_python_logging() {
    let d = Daemon::start(
        &[
            "envapp:app",
            "--listen",
            "127.0.0.1:0",
            "--log-config",
            "log_config.ini",
        ],
        &apps(),
        1,
    );
    let url = d.urls[0].clone();
    let seen = lines(&d, 20, "Serving on");
    let want = format!("LOGCFG INFO [waitress] Serving on {url}");
    assert!(seen.contains(&want), "{want:?} not in {seen:?}");
}

/// A `--log-config` that cannot be read is a config error (exit 2, one line naming the flag,
/// the file and the fix) before anything binds; `--check-config` says the same.
#[test]
fn a_missing_log_config_is_a_config_error_before_binding() {
    for check in [false, true] {
        let mut args = vec![
            "envapp:app",
            "--listen",
            "127.0.0.1:0",
            "--log-config",
            "no_such_log.ini",
        ];
        if check {
            args.push("--check-config");
        }
        let (code, _, err) = run(&args, &apps());
        assert_eq!(code, 2, "check_config={check}: {err}");
        let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "check_config={check}: not one line: {err}");
        for want in [
            "--log-config 'no_such_log.ini'",
            "no_such_log.ini: No such file",
        ] {
            assert!(lines[0].contains(want), "{want:?} not in {err}");
        }
        assert!(
            !err.contains("Traceback") && !err.contains("Serving"),
            "{err}"
        );
    }
}

#[test]
fn serving_on_comes_only_after_the_app_loaded() {
    let d = Daemon::start(&["slowimport:app", "--listen", "127.0.0.1:0"], &apps(), 1);
    let seen = lines(&d, 20, "Serving on");
    let imported = seen.iter().position(|l| l.contains("SLOWIMPORT done"));
    let serving = seen
        .iter()
        .position(|l| l.starts_with("Serving on http://127.0.0.1:"));
    assert!(
        matches!((imported, serving), (Some(i), Some(s)) if i < s),
        "{seen:?}"
    );
    // An app that cannot load: exit 4, and never a Serving on line.
    let (code, _, err) = run(&["broken:app", "--listen", "127.0.0.1:0"], &apps());
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("broken at import"), "{err}");
    assert!(!err.contains("Serving on"), "{err}");
}

/// Clients that connected while the worker imported the app (they wait in the listen backlog)
/// are not tasks queued behind busy threads: no `Task queue depth` WARNING at start (it came
/// on every start, reload and respawn under traffic, since the loop accepted them before the
/// app threads had started; waitress starts its threads before it accepts).
#[test]
fn clients_waiting_while_the_worker_boots_give_no_task_queue_depth_warning() {
    let d = Daemon::start(
        &[
            "slowimport:app",
            "--listen",
            "127.0.0.1:0",
            "--threads",
            "4",
        ],
        &apps(),
        1,
    );
    // The master has bound (`listening on`); the worker is still importing (0.5 s).
    let addr = d.addr();
    let clients: Vec<_> = (0..3)
        .map(|_| {
            let a = addr.clone();
            std::thread::spawn(move || crate::util::get(&a, "/").0)
        })
        .collect();
    for c in clients {
        assert_eq!(c.join().unwrap(), 200);
    }
    let seen = lines(&d, 2, "");
    assert!(
        seen.iter().any(|l| l.contains("SLOWIMPORT done")),
        "the clients did not connect before the import ended: {seen:?}"
    );
    assert!(
        !seen.iter().any(|l| l.contains("Task queue depth")),
        "{seen:?}"
    );
}

fn cmdline(pid: i32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            String::from_utf8_lossy(&b)
                .trim_end_matches('\0')
                .to_string()
        })
        .unwrap_or_default()
}

/// The title once it is set (the master sets it just after binding).
fn title_eventually(pid: i32, want: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut got = cmdline(pid);
    while got != want && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        got = cmdline(pid);
    }
    got
}

use crate::util::children;

#[test]
fn proc_name_is_in_the_process_titles() {
    let dir = apps();
    let d = Daemon::start(
        &[
            "envapp:app",
            "--listen",
            "127.0.0.1:0",
            "--proc-name",
            "shop",
            "--workers",
            "2",
        ],
        &dir,
        1,
    );
    assert_eq!(
        title_eventually(d.pid(), "waitressd: master [shop]"),
        "waitressd: master [shop]"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut titles = Vec::new();
    while Instant::now() < deadline {
        titles = children(d.pid()).into_iter().map(cmdline).collect();
        titles.sort();
        if titles == ["waitressd: worker 1 [shop]", "waitressd: worker 2 [shop]"] {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        titles,
        ["waitressd: worker 1 [shop]", "waitressd: worker 2 [shop]"]
    );
    drop(d);
    // Default: the INI file's name.
    let d = Daemon::start(
        &[
            "switch.ini",
            "--pythonpath",
            dir.to_str().unwrap(),
            "--port",
            "0",
        ],
        &dir,
        1,
    );
    assert_eq!(
        title_eventually(d.pid(), "waitressd: master [switch]"),
        "waitressd: master [switch]"
    );
}

#[test]
fn proc_name_is_in_log_lines_and_systemd_status() {
    let dir = tempfile::tempdir().unwrap();
    let sock_path = dir.path().join("notify");
    let sock = std::os::unix::net::UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut cmd = std::process::Command::new(crate::util::bin());
    cmd.args([
        "envapp:app",
        "--listen",
        "127.0.0.1:0",
        "--proc-name",
        "shop",
    ])
    .current_dir(apps())
    .env("NOTIFY_SOCKET", &sock_path);
    let d = Daemon::start_with(&mut cmd, 1);
    let mut buf = [0u8; 1024];
    let n = sock.recv(&mut buf).expect("READY notification");
    let ready = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(
        ready.contains("STATUS=shop: serving with 1 worker(s)"),
        "{ready}"
    );
    let seen = lines(&d, 5, "worker(s) ready");
    assert!(
        seen.iter()
            .any(|l| l.contains(" waitressd shop] ") && l.contains("worker(s) ready")),
        "{seen:?}"
    );
}

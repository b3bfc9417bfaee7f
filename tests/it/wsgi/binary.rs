//! The real `waitressd` binary: INI files (pserve order), `--app`/`--call`, the example, load
//! failures, and the venv under a bare environment.
use std::time::Duration;

use super::request;
use crate::util;

fn apps_dir() -> std::path::PathBuf {
    util::root().join("tests/apps/wsgi")
}

/// Collects the daemon's stderr lines that arrive within `secs` until one contains `needle`.
fn stderr_until(d: &util::Daemon, needle: &str, secs: u64) -> Vec<String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    let mut seen = Vec::new();
    while std::time::Instant::now() < deadline {
        if let Ok(line) = d.stderr.recv_timeout(Duration::from_millis(100)) {
            let hit = line.contains(needle);
            seen.push(line);
            if hit {
                break;
            }
        }
    }
    seen
}

/// A cookiecutter-style production.ini: [loggers] configures Python logging before the app
/// loads (pserve order), `%(here)s` and [DEFAULT] interpolate, the [pipeline:main] filter
/// (an `egg:` filter) wraps the Pyramid app.
#[test]
fn pyramid_app_from_its_production_ini() {
    let ini = apps_dir().join("pyrapp/production.ini");
    let d = util::Daemon::start(&[ini.to_str().unwrap()], &apps_dir(), 1);
    let r = request(&d.addr(), b"GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    assert_eq!(
        r.header("x-stamp"),
        Some("from-ini"),
        "pipeline filter applied"
    );
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["here_dir"], apps_dir().join("pyrapp").to_str().unwrap());
    assert_eq!(v["greeting"], "hello");
    // The app logs through the INI's [formatter_generic].
    let lines = stderr_until(&d, "pyrapp home view called", 10);
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("PYRLOG WARNING [pyrapp] pyrapp home view called")),
        "{lines:?}"
    );
    let r = request(
        &d.addr(),
        b"POST /form HTTP/1.1\r\nHost: h\r\nContent-Type: application/x-www-form-urlencoded\r\n\
          Content-Length: 11\r\n\r\nname=abc%21",
    );
    assert_eq!(r.body, b"name=abc!");
    // An exception in a view: waitress's 500, logged with the path on logger `waitress`
    // through the INI's handler.
    let r = request(&d.addr(), b"GET /boom HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(r.status, 500);
    let lines = stderr_until(&d, "RuntimeError: pyrapp boom", 10);
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("PYRLOG ERROR [waitress] Exception while serving /boom")),
        "{lines:?}"
    );
}

/// Without [loggers], logging.basicConfig() is set up (pserve): app exceptions are logged in
/// its format on logger `waitress`.
#[test]
fn ini_without_loggers_uses_basic_config() {
    let ini = apps_dir().join("pyrapp/plain.ini");
    let d = util::Daemon::start(&[ini.to_str().unwrap()], &apps_dir(), 1);
    let r = request(&d.addr(), b"GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(r.status, 200);
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["greeting"], "plain");
    let r = request(&d.addr(), b"GET /boom HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(r.status, 500);
    let lines = stderr_until(&d, "Exception while serving /boom", 10);
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("ERROR:waitress:Exception while serving /boom")),
        "{lines:?}"
    );
}

/// `NAME=VALUE` words after the INI file are PasteDeploy defaults (pserve's config vars).
#[test]
fn ini_command_line_vars_reach_the_app() {
    let ini = apps_dir().join("pyrapp/production.ini");
    let d = util::Daemon::start(&[ini.to_str().unwrap(), "stamp=cli"], &apps_dir(), 1);
    let r = request(&d.addr(), b"GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    // [DEFAULT] wins over a caller default for interpolation (PasteDeploy, spec §5.1).
    assert_eq!(r.header("x-stamp"), Some("from-ini"));
}

#[test]
fn flask_app_with_app_and_call() {
    for args in [
        &["--app", "flaskapp:app"][..],
        &["--app", "flaskapp:create_app", "--call"][..],
    ] {
        let mut all = args.to_vec();
        all.extend(["--listen", "127.0.0.1:0"]);
        let d = util::Daemon::start(&all, &apps_dir(), 1);
        let r = request(&d.addr(), b"GET / HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(
            (r.status, r.body.as_slice()),
            (200, &b"hello from flask"[..]),
            "{args:?}"
        );
    }
}

/// The README's run command serves the bundled example (installed into the venv by
/// tools/venv.sh) from example/production.ini; here on port 0 via a flag override.
#[test]
fn example_app_from_its_ini() {
    let ini = util::root().join("example/production.ini");
    let d = util::Daemon::start(
        &[ini.to_str().unwrap(), "--listen", "127.0.0.1:0"],
        &util::root(),
        1,
    );
    let r = request(&d.addr(), b"GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(r.status, 200);
    assert!(
        String::from_utf8_lossy(&r.body).starts_with("Hello from waitressd"),
        "{r:?}"
    );
}

/// What the venv's own python says about itself: (sys.prefix, sys.base_prefix, version).
fn venv_facts(venv: &std::path::Path) -> (String, String, String) {
    let out = std::process::Command::new(venv.join("bin/python"))
        .args([
            "-c",
            "import sys; print(sys.prefix); print(sys.base_prefix); print(sys.version.split()[0])",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let mut l = text.lines().map(str::to_string);
    (l.next().unwrap(), l.next().unwrap(), l.next().unwrap())
}

/// Under `env -i PATH=/usr/bin:/bin` (systemd, init scripts) the venv — from `$VIRTUAL_ENV`
/// or the `virtualenv` setting — still gives the right interpreter, stdlib and packages
/// (Flask is only in the venv).
#[test]
fn venv_loads_under_a_bare_environment() {
    let venv = util::venv();
    let (prefix, base_prefix, version) = venv_facts(&venv);
    let by_env = ["--app", "probe:app", "--listen", "127.0.0.1:0"];
    let venv_flag = format!("--virtualenv={}", venv.display());
    let by_setting = [
        "--app",
        "probe:app",
        "--listen",
        "127.0.0.1:0",
        venv_flag.as_str(),
    ];
    for (args, env_venv) in [(&by_env[..], true), (&by_setting[..], false)] {
        let mut cmd = std::process::Command::new(util::bin());
        cmd.env_clear()
            .env("PATH", "/usr/bin:/bin")
            .current_dir(apps_dir())
            .args(args);
        if env_venv {
            cmd.env("VIRTUAL_ENV", &venv);
        } else {
            // Daemon::start_with sets VIRTUAL_ENV when absent; an empty one means "unset".
            cmd.env("VIRTUAL_ENV", "");
        }
        let d = util::Daemon::start_with(&mut cmd, 1);
        let r = request(&d.addr(), b"GET / HTTP/1.1\r\nHost: h\r\n\r\n");
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["prefix"], prefix.as_str(), "{args:?}");
        assert_eq!(v["base_prefix"], base_prefix.as_str(), "{args:?}");
        assert_eq!(v["version"], version.as_str(), "{args:?}");
        assert_eq!(v["flask"], true, "{args:?}");
        assert_eq!(v["math"], true, "{args:?}");
    }
}

/// Load failures: the traceback on stderr and exit code 4 (no respawn loop); a venv of
/// another Python version is refused with a clear message.
#[test]
fn load_failures_exit_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("broken.py"), "import no_such_module_xyz\n").unwrap();
    std::fs::write(dir.path().join("notapp.py"), "app = 42\n").unwrap();
    let cases: &[(&[&str], &str)] = &[
        (
            &["--app", "broken:app"],
            "ModuleNotFoundError: No module named 'no_such_module_xyz'",
        ),
        (&["--app", "notapp:app"], "is not callable"),
        (&["--app", "nosuchmod:app"], "No module named 'nosuchmod'"),
    ];
    for (args, text) in cases {
        let mut all = args.to_vec();
        all.extend(["--listen", "127.0.0.1:0"]);
        let (code, _out, err) = util::run(&all, dir.path());
        assert_eq!(code, 4, "{args:?}: {err}");
        assert!(err.contains(text), "{args:?}: {err}");
    }
    let (code, _, err) = util::run(
        &["--app", "broken:app", "--listen", "127.0.0.1:0"],
        dir.path(),
    );
    assert!(
        err.contains("Traceback (most recent call last)"),
        "{code} {err}"
    );

    let old = dir.path().join("oldvenv");
    std::fs::create_dir_all(old.join("bin")).unwrap();
    std::fs::write(
        old.join("pyvenv.cfg"),
        "home = /usr/bin\nversion = 2.7.18\n",
    )
    .unwrap();
    let flag = format!("--virtualenv={}", old.display());
    let (code, _, err) = util::run(
        &["--app", "x:app", "--listen", "127.0.0.1:0", &flag],
        dir.path(),
    );
    assert_ne!(code, 0);
    assert!(
        err.contains("2.7.18") && err.contains("recreate it"),
        "{err}"
    );
}

/// Without PasteDeploy in the interpreter's packages, one line says how to install it.
#[test]
fn missing_pastedeploy_is_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let bare = dir.path().join("bare");
    let py = venv_facts(&util::venv()).1 + "/bin/python3";
    let ok = std::process::Command::new(py)
        .args(["-m", "venv", "--without-pip"])
        .arg(&bare)
        .status()
        .unwrap();
    assert!(ok.success());
    let ini = apps_dir().join("pyrapp/production.ini");
    let flag = format!("--virtualenv={}", bare.display());
    let (code, _, err) = util::run(&[ini.to_str().unwrap(), &flag], dir.path());
    assert_eq!(code, 4, "{err}");
    assert!(
        err.contains("PasteDeploy is not installed") && err.contains("pip install PasteDeploy"),
        "{err}"
    );
    assert!(!err.contains("Traceback"), "{err}");
}

/// preload_app: the app is imported once in the master, then every worker gets CPython's fork
/// hooks (PyOS_BeforeFork / AfterFork_Child): each child reseeds `random`, so two workers do
/// not draw the same values.
#[test]
fn preload_app_forks_with_cpython_hooks() {
    let d = util::Daemon::start(
        &[
            "--app",
            "forked:app",
            "--listen",
            "127.0.0.1:0",
            "--workers",
            "2",
            "--preload-app",
        ],
        &apps_dir(),
        1,
    );
    let mut seen: std::collections::HashMap<String, (String, String)> = Default::default();
    // Bounded: fresh connections until both workers have answered.
    for _ in 0..400 {
        let r = request(
            &d.addr(),
            b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
        );
        let text = String::from_utf8(r.body).unwrap();
        let mut f = text.split(' ').map(str::to_string);
        let (pid, imported_in, first) = (f.next().unwrap(), f.next().unwrap(), f.next().unwrap());
        seen.insert(pid, (imported_in, first));
        if seen.len() == 2 {
            break;
        }
    }
    assert_eq!(seen.len(), 2, "both workers answered: {seen:?}");
    let v: Vec<_> = seen.values().collect();
    assert_eq!(v[0].0, v[1].0, "imported once, in the master");
    assert!(
        !seen.contains_key(&v[0].0),
        "the master imported it, not a worker"
    );
    assert_ne!(v[0].1, v[1].1, "random reseeded in each child");
}

/// Small streamed chunks are gathered and sent together (one send instead of one per chunk),
/// but never held for an app that pauses: the chunks yielded before the pause reach the client
/// while the app is still waiting, since it only goes on once the client has seen them and
/// asks for /release on a second connection.
#[test]
fn gathered_chunks_reach_the_client_while_the_app_pauses() {
    // A generator that pauses between chunks (twice on one server: the flush timer re-arms),
    // and an app that pauses between write() calls.
    for (app, rounds) in [("paused:app", 2), ("paused:writer", 1)] {
        chunks_arrive_during_the_pause(app, rounds);
    }
}

fn chunks_arrive_during_the_pause(app: &str, rounds: usize) {
    let d = util::Daemon::start(
        &["--app", app, "--listen", "127.0.0.1:0", "--threads", "2"],
        &apps_dir(),
        1,
    );
    let addr = d.addr();
    for round in 0..rounds {
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        std::io::Write::write_all(&mut s, b"GET /stream HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&seen).contains("third;") {
            match std::io::Read::read(&mut s, &mut buf) {
                Ok(0) => panic!("closed early: {:?}", String::from_utf8_lossy(&seen)),
                Ok(n) => seen.extend_from_slice(&buf[..n]),
                Err(e) => panic!(
                    "{app} round {round}: chunks held while the app waits ({e}); got {:?}",
                    String::from_utf8_lossy(&seen)
                ),
            }
        }
        let r = request(&addr, b"GET /release HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(r.body, b"released");
        while !seen.ends_with(b"0\r\n\r\n") {
            let n = std::io::Read::read(&mut s, &mut buf).unwrap();
            assert!(n > 0, "closed before the end");
            seen.extend_from_slice(&buf[..n]);
        }
        let text = String::from_utf8_lossy(&seen);
        let body = text.split("\r\n\r\n").nth(1).unwrap();
        assert_eq!(
            body, "6\r\nfirst;\r\n7\r\nsecond;\r\n6\r\nthird;\r\n7\r\nwaited;\r\n0",
            "{app} round {round}"
        );
    }
}

/// Reads a response until its body ends with `answer` (asserted; `what` names the case in
/// the failure) or with the fixtures' "timed out".
fn expect_answer(s: &mut std::net::TcpStream, answer: &[u8], what: &str) {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !got.ends_with(answer) && !got.ends_with(b"timed out") {
        let n = std::io::Read::read(s, &mut buf).unwrap();
        assert!(
            n > 0,
            "{what}: closed early: {:?}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
    }
    assert!(
        got.ends_with(answer),
        "{what}: {:?}",
        String::from_utf8_lossy(&got)
    );
}

/// App threads are woken one at a time (a second only once the first runs the app, since with
/// the GIL a thread woken earlier could only queue behind it), yet an app that blocks still
/// gets every thread: four requests that can only finish together, sent at once and then one
/// by one, all finish.
#[test]
fn every_app_thread_serves_when_the_app_blocks() {
    let d = util::Daemon::start(
        &[
            "--app",
            "crowd:app",
            "--listen",
            "127.0.0.1:0",
            "--threads",
            "4",
        ],
        &apps_dir(),
        1,
    );
    let addr = d.addr();
    for spaced in [false, true] {
        let mut socks = Vec::new();
        for _ in 0..4 {
            let mut s = std::net::TcpStream::connect(&addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            std::io::Write::write_all(&mut s, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
            if spaced {
                std::thread::sleep(Duration::from_millis(50));
            }
            socks.push(s);
        }
        for mut s in socks {
            expect_answer(&mut s, b"released", &format!("spaced {spaced}"));
        }
    }
}

/// waitressd serving tests/apps/wsgi/flood.py with `threads` app threads and a 64 KiB
/// `outbuf_high_watermark`.
fn flood_daemon(threads: &str) -> util::Daemon {
    let args = [
        "--app",
        "flood:app",
        "--listen",
        "127.0.0.1:0",
        "--threads",
        threads,
    ];
    util::Daemon::start(
        &[&args[..], &["--outbuf-high-watermark", "65536"]].concat(),
        &apps_dir(),
        1,
    )
}

/// A client that sends `requests`, waits for the first byte of the answer (the app is
/// running), and from then on reads nothing.
fn never_reads(addr: &str, requests: &[u8]) -> std::net::TcpStream {
    let mut stuck = std::net::TcpStream::connect(addr).unwrap();
    stuck
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    std::io::Write::write_all(&mut stuck, requests).unwrap();
    let mut first = [0u8; 1];
    std::io::Read::read_exact(&mut stuck, &mut first).unwrap();
    stuck
}

/// A thread waiting for a client that never reads takes no more jobs; the next requests go
/// to another thread: with `threads = 2`, one response stuck on back-pressure, and three
/// clients after it, one at a time, are answered.
#[test]
fn a_thread_stuck_on_a_client_that_never_reads_leaves_the_queue_to_the_others() {
    let d = flood_daemon("2");
    let addr = d.addr();
    let stuck = never_reads(&addr, b"GET /flood HTTP/1.1\r\nHost: h\r\n\r\n");
    for i in 0..3 {
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        std::io::Write::write_all(&mut s, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
        expect_answer(
            &mut s,
            b"small",
            &format!("client {i} behind the stuck one"),
        );
    }
    drop(stuck);
}

/// The scheduling policy (field 41 of /proc/PID/task/TID/stat: 0 SCHED_OTHER, 3 SCHED_BATCH,
/// 5 SCHED_IDLE) of `worker`'s first thread whose name starts with `name` (`waitressd-w`: the
/// loop thread, `waitress-`: an app thread).
fn policy(worker: i32, name: &str) -> Option<u32> {
    task_stat(worker, name, 41)?.parse().ok()
}

/// Field `field` (numbered as in proc(5)) of /proc/PID/task/TID/stat for `worker`'s first
/// thread whose name starts with `name`.
fn task_stat(worker: i32, name: &str, field: usize) -> Option<String> {
    for t in std::fs::read_dir(format!("/proc/{worker}/task"))
        .ok()?
        .flatten()
    {
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        if comm.starts_with(name) {
            let stat = std::fs::read_to_string(t.path().join("stat")).ok()?;
            // Fields after the command name, which is in parentheses: field 3 is the first.
            let rest = &stat[stat.rfind(')')? + 2..];
            return rest.split(' ').nth(field - 3).map(str::to_string);
        }
    }
    None
}

/// `gate:app` with one app thread, started by `cmd` (the binary, or chrt running it), once a
/// request went through: the daemon, its worker's pid and the gates' directory.
fn gated(mut cmd: std::process::Command) -> (util::Daemon, i32, tempfile::TempDir) {
    cmd.args([
        "--app",
        "gate:app",
        "--listen",
        "127.0.0.1:0",
        "--threads",
        "1",
    ])
    .current_dir(apps_dir());
    let d = util::Daemon::start_with(&mut cmd, 1);
    let gate = tempfile::tempdir().unwrap();
    let head = format!(
        "GET /?{} HTTP/1.1\r\nHost: h\r\n\r\n",
        gate.path().display()
    );
    assert_eq!(request(&d.addr(), head.as_bytes()).body, b"through");
    let worker = util::children(d.pid())[0];
    (d, worker, gate)
}

/// Four requests for the one app thread, held at gate `round` until `queued` (called while
/// three of them wait behind the first) returns; then every one must be answered.
fn backlog(d: &util::Daemon, gate: &std::path::Path, round: usize, queued: impl FnOnce()) {
    let open = gate.join(format!("open-{round}"));
    let mut socks = Vec::new();
    for _ in 0..4 {
        let mut s = std::net::TcpStream::connect(d.addr()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let req = format!("GET /?{} HTTP/1.1\r\nHost: h\r\n\r\n", open.display());
        std::io::Write::write_all(&mut s, req.as_bytes()).unwrap();
        socks.push(s);
    }
    queued();
    std::fs::write(&open, b"").unwrap();
    for mut s in socks {
        expect_answer(&mut s, b"through", &format!("round {round}"));
    }
}

/// While requests queue behind busy app threads the loop thread is SCHED_BATCH (its wake-ups
/// do not preempt the app thread it would only queue more work for), and once they are
/// served it is SCHED_OTHER again before it waits for the next client (a SCHED_BATCH loop
/// would wait out another process's time slice on a shared CPU). App threads are SCHED_BATCH.
#[test]
fn the_loop_yields_to_app_threads_only_while_requests_queue_behind_them() {
    let (d, worker, gate) = gated(std::process::Command::new(util::bin()));
    assert_eq!(policy(worker, "waitress-"), Some(3));
    for round in 0..2 {
        assert_eq!(
            policy(worker, "waitressd-w"),
            Some(0),
            "round {round}: idle loop"
        );
        backlog(&d, gate.path(), round, || {
            assert!(
                util::eventually(20, || policy(worker, "waitressd-w") == Some(3)),
                "round {round}: three requests queue behind the one app thread, yet the loop \
                 stayed {:?}",
                policy(worker, "waitressd-w")
            );
        });
        assert!(
            util::eventually(20, || policy(worker, "waitressd-w") == Some(0)),
            "round {round}: the queue is empty, yet the loop sleeps as {:?}",
            policy(worker, "waitressd-w")
        );
    }
}

/// A queue behind app threads that wait for a client to read gives the loop nothing to yield
/// to: it is the loop that must send before they run again. With `threads = 1` stuck on a
/// client that never reads (while the app runs, and after it returned with a pipelined
/// request behind), three requests queue, and the loop stays SCHED_OTHER; once that client
/// goes, the three are answered.
#[test]
fn the_loop_does_not_yield_to_app_threads_that_wait_for_a_slow_reader() {
    stuck_on_a_slow_reader(b"GET /flood HTTP/1.1\r\nHost: h\r\n\r\n");
    stuck_on_a_slow_reader(
        b"GET /big HTTP/1.1\r\nHost: h\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",
    );
}

fn stuck_on_a_slow_reader(stuck_requests: &[u8]) {
    let d = flood_daemon("1");
    let addr = d.addr();
    let stuck = never_reads(&addr, stuck_requests);
    let worker = util::children(d.pid())[0];
    // The socket buffers fill within milliseconds; then the app thread sleeps on back-pressure.
    assert!(
        util::eventually(20, || {
            let asleep = || task_stat(worker, "waitress-", 3).as_deref() == Some("S");
            asleep() && {
                std::thread::sleep(Duration::from_millis(100));
                asleep()
            }
        }),
        "the app thread never waited for the client"
    );
    let mut socks = Vec::new();
    for _ in 0..3 {
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        std::io::Write::write_all(&mut s, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
        socks.push(s);
    }
    // Half a second of samples while the three wait (the test above sees the loop turn
    // SCHED_BATCH well within this when the queued requests wait for an app thread that runs).
    std::thread::sleep(Duration::from_millis(100));
    for i in 0..20 {
        assert_eq!(
            policy(worker, "waitressd-w"),
            Some(0),
            "sample {i}: the loop turned SCHED_BATCH behind a thread waiting for its client"
        );
        std::thread::sleep(Duration::from_millis(25));
    }
    drop(stuck);
    for (i, mut s) in socks.into_iter().enumerate() {
        expect_answer(
            &mut s,
            b"small",
            &format!("client {i} queued behind the stuck one"),
        );
    }
}

/// A worker started under a policy the operator chose (here SCHED_IDLE, `chrt --idle 0`, which
/// needs no privilege) keeps it in every thread, through a backlog and after it.
#[test]
fn a_scheduling_policy_the_operator_chose_is_kept() {
    let mut chrt = std::process::Command::new("chrt");
    chrt.args(["--idle", "0"]).arg(util::bin());
    let (d, worker, gate) = gated(chrt);
    for round in 0..2 {
        backlog(&d, gate.path(), round, || {
            // A second of samples while the three queue (the test above sees the loop turn
            // SCHED_BATCH within this when the policy is its own to change).
            for _ in 0..40 {
                let p = policy(worker, "waitressd-w");
                assert_eq!(p, Some(5), "round {round}: loop");
                std::thread::sleep(Duration::from_millis(25));
            }
        });
        assert_eq!(
            policy(worker, "waitressd-w"),
            Some(5),
            "round {round}: loop after"
        );
        assert_eq!(
            policy(worker, "waitress-"),
            Some(5),
            "round {round}: app thread"
        );
    }
}

/// Reads `s` to its end: `Ok(bytes)` after a clean close (FIN), `Err(kind)` after a reset.
fn read_to_close(s: &mut std::net::TcpStream) -> Result<Vec<u8>, std::io::ErrorKind> {
    let (got, end) = util::read_until_close(s);
    end.map(|()| got)
}

/// An HTTP/1.0 response without a length ends where the connection closes, so a clean close
/// after a body the app cut would pass a truncated body off as the whole one. The app fails
/// after its first bytes: the client sees a reset, not a clean end.
#[test]
fn a_close_delimited_body_the_app_cuts_ends_in_a_reset() {
    let d = util::Daemon::start(
        &["--app", "error:app", "--listen", "127.0.0.1:0"],
        &apps_dir(),
        1,
    );
    for _ in 0..3 {
        let mut s = std::net::TcpStream::connect(d.addr()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        std::io::Write::write_all(&mut s, b"GET /in_generator_after_bytes HTTP/1.0\r\n\r\n")
            .unwrap();
        let end = read_to_close(&mut s).map(|b| String::from_utf8_lossy(&b).into_owned());
        assert_eq!(
            end,
            Err(std::io::ErrorKind::ConnectionReset),
            "a cut close-delimited body must end in a reset"
        );
    }
}

/// The same when `request_timeout` cuts a close-delimited body the app stopped producing: the
/// watchdog resets the connection instead of shutting it down (a FIN would look like the end).
#[test]
fn a_close_delimited_body_cut_by_request_timeout_ends_in_a_reset() {
    let d = util::Daemon::start(
        &[
            "--app",
            "paused:app",
            "--listen",
            "127.0.0.1:0",
            "--request-timeout",
            "1",
        ],
        &apps_dir(),
        1,
    );
    let mut s = std::net::TcpStream::connect(d.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    std::io::Write::write_all(&mut s, b"GET /stream HTTP/1.0\r\n\r\n").unwrap();
    assert_eq!(
        read_to_close(&mut s).map(|b| String::from_utf8_lossy(&b).into_owned()),
        Err(std::io::ErrorKind::ConnectionReset),
        "a close-delimited body cut by request_timeout must end in a reset"
    );
}

/// A client mid-way through a close-delimited body: `paused:app`'s `/stream` over HTTP/1.0
/// (no length) has sent its first three chunks and waits (up to 20 s) for a `/release` that
/// never comes. The daemon stops gracefully within a second (`graceful_timeout = 1`).
fn mid_close_delimited_body() -> (util::Daemon, std::net::TcpStream) {
    let d = util::Daemon::start(
        &[
            "--app",
            "paused:app",
            "--listen",
            "127.0.0.1:0",
            "--graceful-timeout",
            "1",
        ],
        &apps_dir(),
        1,
    );
    let mut s = std::net::TcpStream::connect(d.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    std::io::Write::write_all(&mut s, b"GET /stream HTTP/1.0\r\n\r\n").unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.ends_with(b"first;second;third;") {
        let n = std::io::Read::read(&mut s, &mut buf).expect("the chunks before the pause");
        assert!(
            n > 0,
            "closed before the pause: {:?}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
    }
    assert!(
        got.starts_with(b"HTTP/1.0 200 OK"),
        "{:?}",
        String::from_utf8_lossy(&got)
    );
    assert!(
        !got.windows(15)
            .any(|w| w.eq_ignore_ascii_case(b"content-length:")),
        "a close-delimited body"
    );
    (d, s)
}

/// Stops the daemon with `sig` while a close-delimited body is mid-way: the client must see a
/// reset, not a clean close that would pass the first chunks off as the whole body.
fn a_stop_mid_close_delimited_body_resets(sig: i32, what: &str) {
    let (mut d, mut s) = mid_close_delimited_body();
    d.signal(sig);
    assert_eq!(
        read_to_close(&mut s).map(|b| String::from_utf8_lossy(&b).into_owned()),
        Err(std::io::ErrorKind::ConnectionReset),
        "a close-delimited body cut by {what} must end in a reset"
    );
    assert!(d.wait(30).is_some(), "the master exits after {what}");
}

/// An immediate stop (QUIT to the master): the worker's loop tears the connection down with
/// the body cut and resets it itself (a shutdown there would send a FIN before SO_LINGER 0
/// could act).
#[test]
fn a_close_delimited_body_cut_by_an_immediate_stop_ends_in_a_reset() {
    a_stop_mid_close_delimited_body_resets(libc::SIGQUIT, "an immediate stop (QUIT)");
}

/// A graceful stop (TERM) whose `graceful_timeout` expires: the master kills the worker, no
/// server code runs, and the reset comes from the socket's SO_LINGER 0 alone (set before the
/// first body byte).
#[test]
fn a_close_delimited_body_cut_when_graceful_timeout_expires_ends_in_a_reset() {
    a_stop_mid_close_delimited_body_resets(libc::SIGTERM, "an expired graceful_timeout (TERM)");
}

/// The same when the worker is killed mid-body (SIGKILL: the server runs no code, the kernel
/// closes the socket): the client sees a reset. A complete close-delimited body, 32 MiB still
/// in the socket buffers when the server closes, ends cleanly with every byte.
#[test]
fn a_close_delimited_body_ends_cleanly_only_when_complete() {
    let d = flood_daemon("2");
    let addr = d.addr();
    let mut whole = std::net::TcpStream::connect(&addr).unwrap();
    whole
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    std::io::Write::write_all(&mut whole, b"GET /big HTTP/1.0\r\n\r\n").unwrap();
    // Not read until the server has handed the whole body to the kernel and closed.
    std::thread::sleep(Duration::from_millis(500));
    let got = read_to_close(&mut whole).expect("a complete body ends in a clean close");
    let at = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert!(got.starts_with(b"HTTP/1.0 200 OK"));
    assert_eq!(got.len() - at, 32 << 20, "body length");
    assert!(got[at..].iter().all(|&b| b == b'y'), "body bytes");

    let mut cut = never_reads(&addr, b"GET /flood HTTP/1.0\r\n\r\n");
    let worker = util::children(d.pid())[0];
    // SAFETY: kill(2) on the worker of the daemon this test started (read from /proc).
    unsafe { libc::kill(worker, libc::SIGKILL) };
    assert_eq!(
        read_to_close(&mut cut).map(|b| b.len()),
        Err(std::io::ErrorKind::ConnectionReset),
        "a body cut by a killed worker must end in a reset"
    );
}

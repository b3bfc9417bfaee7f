//! Failure paths of the worker lifecycle on the real binary: a bad deploy discovered by a
//! respawn, a HUP during a reload.
use std::path::Path;
use std::time::{Duration, Instant};

use crate::util::Daemon;

use super::{ask, ask_within, children, command, eventually, write_ini};

/// Waits (bounded) for a stderr line containing `needle`.
pub(super) fn line_with(d: &Daemon, needle: &str, secs: u64) -> Option<String> {
    let end = Instant::now() + Duration::from_secs(secs);
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        match d.stderr.recv_timeout(left) {
            Ok(line) if line.contains(needle) => return Some(line),
            Ok(_) => {}
            Err(_) => return None,
        }
    }
    None
}

/// The daemon for an app module `deployed` that lives in `dir` (so the test can break it).
pub(super) fn start_deployed(dir: &Path, server: &str) -> Daemon {
    let ini = write_ini(dir, "deployed:make_app", "one", server);
    let mut c = command(&ini);
    c.env("PYTHONPATH", dir).env("PYTHONDONTWRITEBYTECODE", "1");
    Daemon::start_with(&mut c, 1)
}

#[test]
fn respawn_with_broken_app_on_disk_keeps_the_sibling_serving_then_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let module = dir.path().join("deployed.py");
    let good = std::fs::read_to_string(super::apps().join("supapp.py")).unwrap();
    std::fs::write(&module, &good).unwrap();
    let mut d = start_deployed(dir.path(), "listen = 127.0.0.1:0\nworkers = 2");
    let addr = d.addr();
    let mut pids = std::collections::HashSet::new();
    assert!(
        eventually(30, || {
            if let Some((pid, _, _)) = ask(&addr, "/") {
                pids.insert(pid);
            }
            pids.len() == 2
        }),
        "both workers serve"
    );
    // Mid-deploy: broken code on disk, and a worker dies. Its respawn cannot import the app.
    std::fs::write(&module, "raise ImportError('deploy in progress')\n").unwrap();
    let victim = *pids.iter().next().unwrap();
    // SAFETY: kill(2) on a worker of the daemon this test started.
    unsafe { libc::kill(victim, libc::SIGKILL) };
    let line = line_with(&d, "failed to boot", 30).expect("the boot failure is logged");
    assert!(line.contains("retrying"), "{line}");
    // A second failed attempt (backoff) while the sibling serves every request.
    assert!(line_with(&d, "failed to boot", 30).is_some());
    let mut failures = 0;
    for _ in 0..50 {
        if ask(&addr, "/").is_none() {
            failures += 1;
        }
    }
    assert_eq!(failures, 0, "the healthy sibling served throughout");
    assert!(d.child.try_wait().unwrap().is_none(), "the master is up");
    // The deploy completes: the slot recovers by itself.
    std::fs::write(&module, &good).unwrap();
    let mut fresh = None;
    assert!(
        eventually(60, || {
            match ask(&addr, "/") {
                Some((pid, _, _)) if !pids.contains(&pid) => fresh = Some(pid),
                Some(_) => {}
                None => failures += 1,
            }
            fresh.is_some()
        }),
        "a new worker serves once the code is fixed"
    );
    assert_eq!(failures, 0);
    assert_eq!(children(d.pid()).len(), 2);
    d.signal(libc::SIGTERM);
    assert_eq!(d.wait(30), Some(0));
}

#[test]
fn hup_during_a_reload_is_queued_and_applied_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = "listen = 127.0.0.1:0";
    let ini = write_ini(dir.path(), "supapp:make_app", "one", server);
    let mut d = super::start(&ini, 1);
    let addr = d.addr();
    assert!(eventually(30, || ask(&addr, "/").is_some()));
    // Generation "two" takes 3 s to load its app: the second HUP lands during that reload.
    write_ini(dir.path(), "supapp:make_app", "two\nboot_delay = 3", server);
    d.signal(libc::SIGHUP);
    std::thread::sleep(Duration::from_secs(1));
    write_ini(dir.path(), "supapp:make_app", "three", server);
    d.signal(libc::SIGHUP);
    assert!(
        eventually(60, || ask(&addr, "/").is_some_and(|r| r.1 == "three")),
        "the queued reload was applied"
    );
    d.signal(libc::SIGTERM);
    assert_eq!(d.wait(30), Some(0));
}

/// Every duration and size that passes validation is safe: with every numeric key at its
/// largest accepted value (request_timeout, max_requests, max_worker_memory too), the daemon
/// starts, serves, reloads and stops. Not `workers` (4096 Python processes is a capacity
/// question, not arithmetic) nor `port` (`listen` names the port).
#[test]
fn every_key_at_its_largest_accepted_value_starts_serves_reloads_and_stops() {
    use waitressd::config::defs::{Conv, DEFS};
    let mut server = String::from("listen = 127.0.0.1:0\ntrusted_proxy = 127.0.0.1\n");
    for d in DEFS
        .iter()
        .filter(|d| !["port", "workers"].contains(&d.name))
    {
        let max = d.range.1;
        match d.conv {
            Conv::Int | Conv::Size => server += &format!("{} = {max}\n", d.name),
            Conv::Octal => server += &format!("{} = {max:o}\n", d.name),
            _ => {}
        }
    }
    assert!(server.contains("cleanup_interval = 18446744073709551615"));
    assert!(server.contains("graceful_timeout = 18446744073709551615"));
    let dir = tempfile::tempdir().unwrap();
    let ini = write_ini(dir.path(), "supapp:make_app", "one", &server);
    let mut d = super::start(&ini, 1);
    let addr = d.addr();
    // Short read timeouts: a worker that panics in a respawn loop never answers.
    let (first, _, _) = (0..6)
        .find_map(|_| ask_within(&addr, "/", 5))
        .expect("serves");
    for _ in 0..20 {
        assert!(ask_within(&addr, "/", 5).is_some());
    }
    d.signal(libc::SIGHUP);
    assert!(
        eventually(60, || ask_within(&addr, "/", 5)
            .is_some_and(|r| r.0 != first)),
        "the reload's worker serves"
    );
    assert!(d.child.try_wait().unwrap().is_none());
    d.signal(libc::SIGTERM);
    // A hang guard, not a timing: 4,096 app threads end and are joined at the stop, which
    // on a loaded 2-core machine took over 30 s.
    assert_eq!(d.wait(180), Some(0));
}

/// A unix-socket request to the fixture app; its body's PID.
fn ask_unix(path: &Path) -> Option<i32> {
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(path).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let body = out.split("\r\n\r\n").nth(1)?;
    body.split(' ').next()?.parse().ok()
}

/// A second waitressd started by mistake with the same pidfile, or only the same unix socket,
/// exits 3 naming the conflict, and the running instance stays reachable on its socket file.
#[test]
fn second_instance_never_touches_a_live_instances_socket_or_pidfile() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("app.sock");
    let pidfile = dir.path().join("app.pid");
    let server = format!(
        "unix_socket = {}\npidfile = {}",
        sock.display(),
        pidfile.display()
    );
    let ini = write_ini(dir.path(), "supapp:make_app", "one", &server);
    let mut first = super::start(&ini, 1);
    assert!(eventually(30, || ask_unix(&sock).is_some()));
    let pid_text = std::fs::read_to_string(&pidfile).unwrap();

    // Same INI: the live pidfile is refused before anything is bound.
    let out = command(&ini).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("names running process"), "{err}");
    assert!(sock.exists(), "the socket file is still there");
    assert!(
        ask_unix(&sock).is_some(),
        "the first instance still answers"
    );
    assert_eq!(std::fs::read_to_string(&pidfile).unwrap(), pid_text);

    // Same unix socket, no pidfile: the live socket is refused, not replaced.
    let other = dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    let ini2 = write_ini(
        &other,
        "supapp:make_app",
        "two",
        &format!("unix_socket = {}", sock.display()),
    );
    let out = command(&ini2).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("a running process answers on it"), "{err}");
    assert!(
        ask_unix(&sock).is_some(),
        "the first instance still answers"
    );

    first.signal(libc::SIGTERM);
    assert_eq!(first.wait(30), Some(0));
    assert!(!sock.exists() && !pidfile.exists());
}

/// A pidfile left by a master that died without removing it (SIGKILL, OOM, power loss), whose
/// PID another program has since been given, does not keep the next start from serving: it is
/// replaced with a warning naming that program (before, the start exited 3 "names running
/// process" until someone deleted the file by hand).
#[test]
fn a_stale_pidfile_whose_pid_was_reused_is_replaced_not_obeyed() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("app.pid");
    let mut other = crate::util::spawn_sleep();
    std::fs::write(&pidfile, format!("{}\n", other.id())).unwrap();
    let server = format!("listen = 127.0.0.1:0\npidfile = {}", pidfile.display());
    let ini = write_ini(dir.path(), "supapp:make_app", "one", &server);
    let mut d = super::start(&ini, 1);
    let warned = line_with(&d, "replacing stale pidfile", 30);
    let addr = d.addr();
    assert!(eventually(30, || ask(&addr, "/").is_some()));
    assert_eq!(
        std::fs::read_to_string(&pidfile).unwrap().trim(),
        d.pid().to_string()
    );
    let warned = warned.expect("a warning about the stale pidfile");
    assert!(
        warned.contains(&format!("process {} is now \"sleep\"", other.id())),
        "{warned}"
    );
    let _ = other.kill();
    let _ = other.wait();
    d.signal(libc::SIGTERM);
    assert_eq!(d.wait(30), Some(0));
    assert!(!pidfile.exists());
}

/// Graceful stop with clients waiting in the listen backlog (the worker is at its
/// `connection_limit`): every one of them is accepted and answered with `Connection: close`
/// before the listener closes, none is reset.
#[test]
fn term_answers_connections_waiting_in_the_backlog_with_zero_resets() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let ini = write_ini(
        dir.path(),
        "supapp:make_app",
        "one",
        "listen = 127.0.0.1:0\nconnection_limit = 1\nthreads = 1",
    );
    let mut d = super::start(&ini, 1);
    let addr = d.addr();
    assert!(eventually(30, || ask(&addr, "/").is_some()));
    let a = addr.clone();
    let slow = std::thread::spawn(move || ask(&a, "/sleep?2"));
    std::thread::sleep(Duration::from_millis(500));
    let waiting: Vec<std::net::TcpStream> = (0..10)
        .map(|_| {
            let mut s = std::net::TcpStream::connect(&addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    d.signal(libc::SIGTERM);
    let mut failures = Vec::new();
    for mut s in waiting {
        let mut out = Vec::new();
        match s.read_to_end(&mut out) {
            Ok(_) => {
                let text = String::from_utf8_lossy(&out);
                if !(text.starts_with("HTTP/1.1 200") && text.contains("Connection: close")) {
                    failures.push(text.into_owned());
                }
            }
            Err(e) => failures.push(e.to_string()),
        }
    }
    assert_eq!(
        failures,
        Vec::<String>::new(),
        "every queued client was answered"
    );
    assert!(
        slow.join().unwrap().is_some(),
        "the in-flight request completed"
    );
    assert_eq!(d.wait(30), Some(0));
}

/// TTIN adds workers up to a ceiling (4 per CPU: the daemon is confined to one CPU, so 4,
/// whatever the machine), and a reload that does not change `workers` keeps the count TTIN set.
#[test]
fn ttin_stops_at_a_ceiling_and_a_reload_keeps_the_changed_count() {
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    let ini = write_ini(dir.path(), "supapp:make_app", "one", "listen = 127.0.0.1:0");
    let mut c = command(&ini);
    // SAFETY: between fork and exec the closure only calls sched_setaffinity(2) on a cpu_set_t
    // on its stack (async-signal-safe; no allocation, no lock).
    unsafe {
        c.pre_exec(|| {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(0, &mut set);
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
            Ok(())
        })
    };
    let mut d = Daemon::start_with(&mut c, 1);
    let addr = d.addr();
    assert!(eventually(30, || ask(&addr, "/").is_some()));
    // One at a time: two signals sent together may be delivered as one.
    for n in [2, 3] {
        d.signal(libc::SIGTTIN);
        assert!(eventually(30, || children(d.pid()).len() == n));
    }
    let before = children(d.pid());
    write_ini(dir.path(), "supapp:make_app", "two", "listen = 127.0.0.1:0");
    d.signal(libc::SIGHUP);
    assert!(
        eventually(60, || {
            let now = children(d.pid());
            now.len() == 3 && now.iter().all(|p| !before.contains(p))
        }),
        "three new workers after the reload: {:?}",
        children(d.pid())
    );
    assert_eq!(ask(&addr, "/").map(|r| r.1).as_deref(), Some("two"));
    let ceiling = 4;
    for _ in 0..ceiling + 3 {
        d.signal(libc::SIGTTIN);
        std::thread::sleep(Duration::from_millis(150));
    }
    assert!(eventually(60, || children(d.pid()).len() == ceiling));
    assert!(line_with(&d, "TTIN ignored", 10).is_some());
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        children(d.pid()).len(),
        ceiling,
        "no worker past the ceiling"
    );
    d.signal(libc::SIGTERM);
    assert_eq!(d.wait(60), Some(0));
}

/// A reload whose new workers cannot boot is abandoned, and the master goes back to the old
/// configuration's `error_log` (it points its standard error, which new workers inherit, at
/// the new file while the reload is under way).
#[test]
fn an_abandoned_reload_puts_the_old_error_log_back() {
    let dir = tempfile::tempdir().unwrap();
    let module = dir.path().join("deployed.py");
    std::fs::write(
        &module,
        std::fs::read_to_string(super::apps().join("supapp.py")).unwrap(),
    )
    .unwrap();
    let (old_log, new_log) = (dir.path().join("old.log"), dir.path().join("new.log"));
    let mut d = start_deployed(
        dir.path(),
        &format!("listen = 127.0.0.1:0\nerror_log = {}", old_log.display()),
    );
    let addr = d.addr();
    assert!(eventually(30, || ask(&addr, "/").is_some()));
    let stderr_of_master = || std::fs::read_link(format!("/proc/{}/fd/2", d.pid())).ok();
    assert_eq!(stderr_of_master(), Some(old_log.clone()));
    std::fs::write(&module, "raise ImportError('broken deploy')\n").unwrap();
    write_ini(
        dir.path(),
        "deployed:make_app",
        "one",
        &format!("listen = 127.0.0.1:0\nerror_log = {}", new_log.display()),
    );
    d.signal(libc::SIGHUP);
    assert!(
        eventually(60, || std::fs::read_to_string(&new_log)
            .is_ok_and(|s| s.contains("reload aborted"))),
        "the reload is abandoned"
    );
    assert!(eventually(10, || stderr_of_master() == Some(old_log.clone())));
    assert!(ask(&addr, "/").is_some(), "the old workers still serve");
    d.signal(libc::SIGTERM);
    assert_eq!(d.wait(30), Some(0));
}

/// An import that keeps running Python for longer than the slow-load report (12 s of deep
/// recursion here: frames pushed and popped all the time) gets its stack written and then
/// serves, in each of four workers. The report read the frames from faulthandler's thread,
/// without the GIL, while they changed: a worker died of a SIGSEGV in one such start of three
/// (and in every one under valgrind), a crash loop caused by the diagnostic itself.
#[test]
fn a_slow_busy_import_is_reported_and_the_report_never_kills_the_worker() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read_to_string(super::apps().join("supapp.py")).unwrap();
    let busy = "import time\n\n\ndef _spin(n):\n    return n if n == 0 else _spin(n - 1)\n\n\n\
                _end = time.monotonic() + 12\nwhile time.monotonic() < _end:\n    _spin(900)\n";
    std::fs::write(dir.path().join("deployed.py"), format!("{busy}{good}")).unwrap();
    let mut d = start_deployed(dir.path(), "listen = 127.0.0.1:0\nworkers = 4");
    let (mut stacks, mut ready, mut died) = (0, 0, Vec::new());
    let end = Instant::now() + Duration::from_secs(60);
    while ready < 4 && died.is_empty() {
        let left = end.saturating_duration_since(Instant::now());
        let line = d
            .stderr
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("after 60 s: {stacks} stacks, {ready} workers ready"));
        if line.contains("Python stack of the app load at 10 s") {
            stacks += 1;
        } else if line.contains("): ready") {
            ready += 1;
        } else if line.contains("died unexpectedly") {
            died.push(line);
        }
    }
    assert!(died.is_empty(), "{died:?}");
    assert_eq!(stacks, 4, "every worker's stack was written");
    assert!(ask(&d.addr(), "/").is_some());
    d.signal(libc::SIGTERM);
    assert_eq!(d.wait(30), Some(0));
}

/// Every stderr line of `d` until its stderr closes, or `secs` pass.
fn lines_until_stderr_closes(d: &Daemon, secs: u64) -> Vec<String> {
    let mut seen = Vec::new();
    let end = Instant::now() + Duration::from_secs(secs);
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        match d.stderr.recv_timeout(left) {
            Ok(l) => seen.push(l),
            Err(_) => break,
        }
    }
    seen
}

/// The app module of `exit_waits_for_app_threads_only_so_long`: a non-daemon thread that runs
/// forever when `forever` (a scheduler, a metrics pusher), one that ends 1 s after a request
/// to /late starts it, and an atexit handler that says it ran.
const THREADS_APP: &str = r#"
import atexit, sys, threading, time

def _forever():
    while True:
        time.sleep(0.2)

atexit.register(lambda: print("ATEXIT ran", file=sys.stderr, flush=True))

def make_app(global_conf, forever="no", **kw):
    if forever == "yes":
        threading.Thread(target=_forever, name="pusher").start()
    def app(environ, start_response):
        if environ["PATH_INFO"] == "/late":
            threading.Thread(target=time.sleep, args=(1,), name="flusher").start()
        start_response("200 OK", [("Content-Length", "2")])
        return [b"ok"]
    return app
"#;

/// Python's exit waits for the app's non-daemon threads: one that ends soon is waited for
/// (atexit handlers run, exit code 0); one that runs forever is waited for only so long, then
/// named with the fix, and the worker exits 0 on its own, as does a `preload_app` master whose
/// app started one. Before, such a worker lingered until the master's SIGKILL at
/// `graceful_timeout` (30 s by default) on every stop and reload, "killed by a signal", its
/// atexit handlers never run; the master never exited.
#[test]
fn exit_waits_for_app_threads_only_so_long() {
    for (forever, preload) in [("no", false), ("yes", false), ("yes", true)] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("deployed.py"), THREADS_APP).unwrap();
        let server = format!("listen = 127.0.0.1:0\npreload_app = {preload}");
        let ini = write_ini(dir.path(), "deployed:make_app", "one", &server);
        let ini_text = std::fs::read_to_string(&ini).unwrap().replace(
            "[server:main]",
            &format!("forever = {forever}\n\n[server:main]"),
        );
        std::fs::write(&ini, ini_text).unwrap();
        let mut c = command(&ini);
        c.env("PYTHONPATH", dir.path());
        let mut d = Daemon::start_with(&mut c, 1);
        assert!(eventually(30, || crate::util::get(&d.addr(), "/late").0 == 200));
        d.signal(libc::SIGTERM);
        // A stuck master: 60 s, then the panic below.
        let seen = lines_until_stderr_closes(&d, 60);
        let log = seen.join("\n");
        let case = format!("forever = {forever}, preload_app = {preload}");
        assert_eq!(d.wait(30), Some(0), "{case}:\n{log}");
        assert!(log.contains("exited (exit code 0)"), "{case}:\n{log}");
        assert!(!log.contains("killed by SIG"), "{case}:\n{log}");
        if forever == "no" {
            assert!(log.contains("ATEXIT ran"), "{log}");
            assert!(!log.contains("still waits"), "{log}");
        } else {
            let warned = seen
                .iter()
                .find(|l| l.contains("python's exit still waits"))
                .unwrap_or_else(|| panic!("{case}: no warning:\n{log}"));
            assert!(
                warned.contains("pusher at ")
                    && warned.contains("deployed.py")
                    && warned.contains("in _forever")
                    && warned.contains("daemon=True")
                    && warned.contains("WARN"),
                "{warned}"
            );
        }
    }
}

/// An app whose import hangs (here: it sleeps an hour) is reported while it hangs: its Python
/// stack (where it is stuck) and a WARNING naming the worker and what clients see, instead of
/// a log that stops at "started" while clients wait. A stop still ends it at once (it never
/// served, so nothing to drain).
#[test]
fn a_worker_whose_app_import_hangs_is_reported_and_a_stop_ends_it() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read_to_string(super::apps().join("supapp.py")).unwrap();
    std::fs::write(
        dir.path().join("deployed.py"),
        format!("import time\ntime.sleep(3600)\n{good}"),
    )
    .unwrap();
    let mut d = start_deployed(dir.path(), "listen = 127.0.0.1:0");
    // The master's warning, and where it hangs: the worker's Python stack, from the line of
    // the module that sleeps (in either order).
    let (mut warned, mut stack) = (None, None);
    let end = Instant::now() + Duration::from_secs(30);
    while warned.is_none() || stack.is_none() {
        let left = end.saturating_duration_since(Instant::now());
        let line = d
            .stderr
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("after 30 s: warning {warned:?}, Python stack {stack:?}"));
        if line.contains("not ready 10 s after it started") {
            warned = Some(line);
        } else if line.contains("deployed.py\", line 2") {
            stack = Some(line);
        }
    }
    let (warned, stack) = (warned.unwrap(), stack.unwrap());
    assert!(stack.contains("<module>"), "{stack}");
    assert!(
        warned.contains("WARN") && warned.contains("listen backlog"),
        "{warned}"
    );
    d.signal(libc::SIGTERM);
    assert_eq!(d.wait(15), Some(0));
}

/// The app module of `app_threads_slow_to_leave_are_all_waited_for_before_python_ends`: four
/// daemon threads (started by a request to /hog) that hold the GIL most of a second at a time
/// inside C code (a sort does not let go of it), so each app thread leaving at the stop (it
/// takes the GIL once to drop its Python state) waits its turn behind them.
const GIL_HOG_APP: &str = r#"
import atexit, random, sys, threading

_data = list(range(2_000_000))
random.Random(1).shuffle(_data)

def _hog():
    while True:
        sorted(_data)

atexit.register(lambda: print("ATEXIT ran", file=sys.stderr, flush=True))

def make_app(global_conf, **kw):
    def app(environ, start_response):
        if environ["PATH_INFO"] == "/hog":
            for i in range(4):
                threading.Thread(target=_hog, name="hog%d" % i, daemon=True).start()
        start_response("200 OK", [("Content-Length", "2")])
        return [b"ok"]
    return app
"#;

/// App threads that take long to leave at a stop (here: 64 of them, each waiting for the GIL
/// behind threads that hold it in C code) are all waited for, as long as they keep leaving:
/// Python is finalised only once none runs (atexit handlers run, exit code 0). Before, the
/// worker gave up on them after 5 s ("32 thread(s) still running") and finalised Python under
/// them; one that wanted the GIL afterwards could abort the worker (SIGABRT, "Fatal Python
/// error: Aborted", seen with `threads = 4096` on a loaded machine).
#[test]
fn app_threads_slow_to_leave_are_all_waited_for_before_python_ends() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hog.py"), GIL_HOG_APP).unwrap();
    let ini = write_ini(
        dir.path(),
        "hog:make_app",
        "one",
        "listen = 127.0.0.1:0\nthreads = 64\ngraceful_timeout = 300",
    );
    let mut c = command(&ini);
    c.env("PYTHONPATH", dir.path());
    let mut d = Daemon::start_with(&mut c, 1);
    assert!(eventually(120, || crate::util::get(&d.addr(), "/").0 == 200));
    // The hogs start before the response is written: on a loaded machine it waits for the
    // GIL behind them for longer than `get` waits.
    let hog = b"GET /hog HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    let answer = crate::util::exchange(&d.addr(), hog, 120);
    assert_eq!(crate::util::split_response(&answer).0, 200);
    d.signal(libc::SIGTERM);
    let log = lines_until_stderr_closes(&d, 240).join("\n");
    assert_eq!(d.wait(30), Some(0), "{log}");
    assert!(!log.contains("killed by SIG"), "{log}");
    assert!(!log.contains("Fatal Python error"), "{log}");
    assert!(!log.contains("thread(s) still running"), "{log}");
    assert!(log.contains("exited (exit code 0)"), "{log}");
    assert!(log.contains("ATEXIT ran"), "{log}");
}

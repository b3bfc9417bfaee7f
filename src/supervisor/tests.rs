//! The master loop driven for real: a master forked from the test process runs small fake
//! workers (plain Rust HTTP/1.0 responders, no Python), and the tests talk to it over loopback
//! and signal it by PID.
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::{master, spawn, RunOptions, WorkerStart};
use crate::config::{AppSpec, Settings};
use crate::http::app::{App, AppFailure, Exchange};
use crate::net::Listener;

pub fn settings(listen: Vec<SocketAddr>) -> Settings {
    Settings {
        listen,
        ipv4: true,
        ipv6: true,
        threads: 4,
        trusted_proxy: None,
        trusted_proxy_count: 1,
        trusted_proxy_headers: Default::default(),
        log_untrusted_proxy_headers: false,
        clear_untrusted_proxy_headers: true,
        url_scheme: "http".into(),
        url_prefix: String::new(),
        backlog: 1024,
        recv_bytes: 8192,
        send_bytes: 18000,
        outbuf_overflow: 1048576,
        outbuf_high_watermark: 16777216,
        inbuf_overflow: 524288,
        connection_limit: 100,
        cleanup_interval: 30,
        channel_timeout: 120,
        log_socket_errors: true,
        max_request_header_size: 262144,
        max_request_body_size: 1073741824,
        expose_tracebacks: false,
        ident: Some("one".into()),
        asyncore_loop_timeout: 1,
        asyncore_use_poll: false,
        unix_socket: None,
        unix_socket_perms: 0o600,
        channel_request_lookahead: 0,
        server_name: "waitress.invalid".into(),
        app: AppSpec::Module {
            target: "none:app".into(),
            call: false,
        },
        workers: 1,
        preload_app: false,
        user: None,
        group: None,
        umask: None,
        pidfile: None,
        graceful_timeout: 10,
        virtualenv: None,
        access_log: None,
    }
}

/// A worker with no Python: answers every connection with
/// `HTTP/1.0 200 OK` and a body `PID GENERATION IDENT RUID,EUID,SUID`; `/sleep` takes 2 s.
/// `ident = fail3|fail4` exits with that boot error before ready. TERM/INT: stop accepting,
/// finish the connection in hand, exit 0; QUIT: exit 0 now.
fn fake_worker(mut start: WorkerStart) -> i32 {
    if let Err(c) = start.enter() {
        return c;
    }
    match start.settings.ident.as_deref() {
        Some("fail3") => return 3,
        Some("fail4") => return 4,
        _ => {}
    }
    let Some(Listener::Tcp(l)) = start.listeners.drain(..).next() else {
        return 3;
    };
    let stop = Arc::new(AtomicBool::new(false));
    let body_prefix = format!(
        "{} {} {}",
        std::process::id(),
        start.generation,
        start.settings.ident.clone().unwrap_or_default()
    );
    let flag = stop.clone();
    let acceptor = std::thread::spawn(move || {
        while !flag.load(Ordering::SeqCst) {
            let (mut s, _) = match l.accept() {
                Ok(c) => c,
                Err(_) => {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                }
            };
            let _ = s.set_nonblocking(false);
            let mut req = Vec::new();
            let mut b = [0u8; 1024];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut b) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&b[..n]),
                }
            }
            if req.starts_with(b"GET /sleep") {
                std::thread::sleep(Duration::from_secs(2));
            }
            let ids = nix::unistd::getresuid().unwrap();
            let body = format!("{body_prefix} {},{},{}", ids.real, ids.effective, ids.saved);
            let _ = s.write_all(
                format!(
                    "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            );
        }
    });
    start.signal_ready();
    let mut set = SigSet::empty();
    for s in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGQUIT] {
        set.add(s);
    }
    match set.wait() {
        Ok(Signal::SIGQUIT) => return 0,
        _ => stop.store(true, Ordering::SeqCst),
    }
    let _ = acceptor.join();
    0
}

/// The same answers from the real server core (event loop, channels, app threads) with a Rust
/// app: proves the drain and reload paths end to end without Python.
struct PidApp {
    tag: String,
}

impl App for PidApp {
    fn call(&self, ex: &mut dyn Exchange) -> Result<(), AppFailure> {
        if ex.request().path() == b"/sleep" {
            std::thread::sleep(Duration::from_secs(2));
        }
        let ids = nix::unistd::getresuid().unwrap();
        let body = format!(
            "{} {} {},{},{}",
            std::process::id(),
            self.tag,
            ids.real,
            ids.effective,
            ids.saved
        );
        ex.start_response(
            "200 OK",
            vec![("Content-Length".into(), body.len().to_string())],
        );
        ex.write(body.as_bytes()).map_err(|_| AppFailure {
            traceback: String::new(),
        })
    }
}

fn server_worker(start: WorkerStart) -> i32 {
    if let Err(c) = start.enter() {
        return c;
    }
    let tag = format!(
        "{} {}",
        start.generation,
        start.settings.ident.clone().unwrap_or_default()
    );
    super::worker::serve_app(start, Arc::new(PidApp { tag }))
}

fn free_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

struct TestMaster {
    pid: Pid,
    addr: SocketAddr,
    code: Option<i32>,
}

impl TestMaster {
    fn start(s: Settings, reload: Option<super::ReloadFn>) -> TestMaster {
        Self::start_env(s, reload, Vec::new(), fake_worker)
    }

    fn start_env(
        s: Settings,
        reload: Option<super::ReloadFn>,
        env: Vec<(String, String)>,
        body: super::WorkerBody,
    ) -> TestMaster {
        let addr = s.listen[0];
        let pid = spawn::fork_child(move || {
            for (k, v) in env {
                std::env::set_var(k, v);
            }
            match master::run(
                s,
                RunOptions {
                    daemon: false,
                    reload,
                },
                body,
            ) {
                Ok(()) => 0,
                Err(e) => e.exit_code(),
            }
        })
        .unwrap();
        TestMaster {
            pid,
            addr,
            code: None,
        }
    }

    fn signal(&self, s: Signal) {
        kill(self.pid, s).unwrap();
    }

    /// Exit code within `secs`, or None.
    fn wait(&mut self, secs: u64) -> Option<i32> {
        let end = Instant::now() + Duration::from_secs(secs);
        while self.code.is_none() && Instant::now() < end {
            match waitpid(self.pid, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(_, c)) => self.code = Some(c),
                Ok(WaitStatus::Signaled(_, s, _)) => self.code = Some(128 + s as i32),
                _ => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        self.code
    }
}

impl Drop for TestMaster {
    fn drop(&mut self) {
        if self.code.is_none() {
            let _ = kill(self.pid, Signal::SIGQUIT);
            if self.wait(5).is_none() {
                let _ = kill(self.pid, Signal::SIGKILL);
                let _ = waitpid(self.pid, None);
            }
        }
    }
}

/// One request; the fake worker's body split in words, or None on any failure.
fn ask(addr: SocketAddr, path: &str) -> Option<Vec<String>> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes())
        .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let body = out.split("\r\n\r\n").nth(1)?;
    out.starts_with("HTTP/1.0 200")
        .then(|| body.split(' ').map(String::from).collect())
}

/// Polls (bounded) until `f` holds.
fn eventually(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn two_workers_serve_and_a_killed_worker_is_replaced() {
    two_workers_serve_and_a_killed_worker_is_replaced_with(fake_worker)
}

#[test]
fn two_workers_serve_and_a_killed_worker_is_replaced_real_server() {
    two_workers_serve_and_a_killed_worker_is_replaced_with(server_worker)
}

fn two_workers_serve_and_a_killed_worker_is_replaced_with(body: super::WorkerBody) {
    let mut s = settings(vec![free_port()]);
    s.workers = 2;
    let mut m = TestMaster::start_env(s, None, Vec::new(), body);
    let mut pids = std::collections::HashSet::new();
    assert!(
        eventually(20, || {
            if let Some(b) = ask(m.addr, "/") {
                pids.insert(b[0].clone());
            }
            pids.len() == 2
        }),
        "both workers answer"
    );
    let victim: i32 = pids.iter().next().unwrap().parse().unwrap();
    kill(Pid::from_raw(victim), Signal::SIGKILL).unwrap();
    let mut failures = 0;
    let mut seen_new = false;
    assert!(
        eventually(20, || {
            match ask(m.addr, "/") {
                Some(b) => seen_new |= !pids.contains(&b[0]),
                None => failures += 1,
            }
            seen_new
        }),
        "a replacement worker answers"
    );
    assert_eq!(failures, 0);
    m.signal(Signal::SIGTERM);
    assert_eq!(m.wait(20), Some(0));
    assert!(
        TcpStream::connect(m.addr).is_err(),
        "nothing listens after exit"
    );
}

#[test]
fn worker_failing_at_boot_stops_master_with_its_code() {
    for (ident, code) in [("fail4", 4), ("fail3", 3)] {
        let mut s = settings(vec![free_port()]);
        s.ident = Some(ident.into());
        s.workers = 2;
        let mut m = TestMaster::start(s, None);
        assert_eq!(m.wait(10), Some(code), "{ident}");
    }
}

#[test]
fn term_finishes_in_flight_request_then_exits_0() {
    term_finishes_in_flight_request_then_exits_0_with(fake_worker)
}

#[test]
fn term_finishes_in_flight_request_then_exits_0_real_server() {
    term_finishes_in_flight_request_then_exits_0_with(server_worker)
}

fn term_finishes_in_flight_request_then_exits_0_with(body: super::WorkerBody) {
    let mut m = TestMaster::start_env(settings(vec![free_port()]), None, Vec::new(), body);
    assert!(eventually(20, || ask(m.addr, "/").is_some()));
    let addr = m.addr;
    let slow = std::thread::spawn(move || ask(addr, "/sleep"));
    std::thread::sleep(Duration::from_millis(300));
    m.signal(Signal::SIGTERM);
    assert!(
        slow.join().unwrap().is_some(),
        "in-flight request completes"
    );
    assert_eq!(m.wait(20), Some(0));
    assert!(TcpStream::connect(addr).is_err());
}

#[test]
fn second_int_stops_at_once() {
    second_int_stops_at_once_with(fake_worker)
}

#[test]
fn second_int_stops_at_once_real_server() {
    second_int_stops_at_once_with(server_worker)
}

fn second_int_stops_at_once_with(body: super::WorkerBody) {
    let mut s = settings(vec![free_port()]);
    s.graceful_timeout = 60;
    let mut m = TestMaster::start_env(s, None, Vec::new(), body);
    assert!(eventually(20, || ask(m.addr, "/").is_some()));
    let addr = m.addr;
    // A request that keeps the fake worker busy long after the master must be gone.
    let _slow = std::thread::spawn(move || ask(addr, "/sleep"));
    std::thread::sleep(Duration::from_millis(200));
    m.signal(Signal::SIGINT);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(m.code, None);
    m.signal(Signal::SIGINT);
    assert_eq!(m.wait(5), Some(0));
}

#[test]
fn reload_under_load_loses_nothing_and_applies_new_settings() {
    reload_under_load_loses_nothing_and_applies_new_settings_with(fake_worker)
}

#[test]
fn reload_under_load_loses_nothing_and_applies_new_settings_real_server() {
    reload_under_load_loses_nothing_and_applies_new_settings_with(server_worker)
}

fn reload_under_load_loses_nothing_and_applies_new_settings_with(body: super::WorkerBody) {
    let dir = tempfile::tempdir().unwrap();
    let ident_file = dir.path().join("ident");
    std::fs::write(&ident_file, "one").unwrap();
    let mut s = settings(vec![free_port()]);
    s.workers = 2;
    let base = s.clone();
    let f = ident_file.clone();
    let reload: super::ReloadFn = Box::new(move || {
        let ident = std::fs::read_to_string(&f).map_err(|e| e.to_string())?;
        if ident == "broken" {
            return Err("line 3: bad value".into());
        }
        let mut s = base.clone();
        s.ident = Some(ident);
        Ok(s)
    });
    let mut m = TestMaster::start_env(s, Some(reload), Vec::new(), body);
    let addr = m.addr;
    assert!(eventually(20, || ask(addr, "/").is_some()));

    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let loaders: Vec<_> = (0..4)
        .map(|_| {
            let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
            std::thread::spawn(move || {
                let end = Instant::now() + Duration::from_secs(60);
                while !stop.load(Ordering::SeqCst) && Instant::now() < end {
                    match ask(addr, "/") {
                        Some(_) => ok.fetch_add(1, Ordering::SeqCst),
                        None => failed.fetch_add(1, Ordering::SeqCst),
                    };
                }
            })
        })
        .collect();

    // A broken config: logged, old workers keep serving.
    std::fs::write(&ident_file, "broken").unwrap();
    m.signal(Signal::SIGHUP);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(ask(addr, "/").unwrap()[2], "one");

    std::fs::write(&ident_file, "two").unwrap();
    m.signal(Signal::SIGHUP);
    assert!(eventually(30, || ask(addr, "/").is_some_and(|b| b[2] == "two")));
    // Every answer after the switch comes from the new generation.
    assert!(eventually(30, || (0..10)
        .all(|_| ask(addr, "/").is_some_and(|b| b[1] == "2"))));
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::SeqCst);
    for l in loaders {
        l.join().unwrap();
    }
    assert!(ok.load(Ordering::SeqCst) > 100, "load actually ran");
    assert_eq!(
        failed.load(Ordering::SeqCst),
        0,
        "no request failed during reloads"
    );
    m.signal(Signal::SIGTERM);
    assert_eq!(m.wait(20), Some(0));
}

#[test]
fn ttin_and_ttou_change_the_worker_count() {
    let m = TestMaster::start(settings(vec![free_port()]), None);
    assert!(eventually(20, || ask(m.addr, "/").is_some()));
    m.signal(Signal::SIGTTIN);
    let mut pids = std::collections::HashSet::new();
    assert!(eventually(20, || {
        if let Some(b) = ask(m.addr, "/") {
            pids.insert(b[0].clone());
        }
        pids.len() == 2
    }));
    m.signal(Signal::SIGTTOU);
    // Eventually only one PID answers, many times in a row.
    assert!(eventually(20, || {
        let got: std::collections::HashSet<_> = (0..20)
            .filter_map(|_| ask(m.addr, "/"))
            .map(|b| b[0].clone())
            .collect();
        got.len() == 1
    }));
}

#[test]
fn workers_run_as_nobody_seen_from_proc() {
    if !nix::unistd::geteuid().is_root() {
        return; // the privilege drop needs root; CI runs as root
    }
    let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
    let mut s = settings(vec![free_port()]);
    s.user = Some("nobody".into());
    let m = TestMaster::start(s, None);
    let mut body = None;
    assert!(eventually(20, || {
        body = ask(m.addr, "/");
        body.is_some()
    }));
    let body = body.unwrap();
    let uid = nobody.uid.as_raw();
    assert_eq!(body[3], format!("{uid},{uid},{uid}"));
    let status = std::fs::read_to_string(format!("/proc/{}/status", body[0])).unwrap();
    let uids = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    let ids: Vec<u32> = uids
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().unwrap())
        .collect();
    assert_eq!(ids, vec![uid; 4], "real, effective, saved, fs uid");
    let comm = std::fs::read_to_string(format!("/proc/{}/comm", body[0])).unwrap();
    assert_eq!(comm.trim(), "waitressd-w1");
    let comm = std::fs::read_to_string(format!("/proc/{}/comm", m.pid)).unwrap();
    assert_eq!(comm.trim(), "waitressd-m");
}

#[test]
fn pidfile_and_notify_lifecycle() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("run.pid");
    let sock_path = dir.path().join("notify");
    let sock = std::os::unix::net::UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut s = settings(vec![free_port()]);
    s.pidfile = Some(pidfile.clone());
    let env = vec![("NOTIFY_SOCKET".to_string(), sock_path.display().to_string())];
    let mut m = TestMaster::start_env(s, None, env, fake_worker);
    let mut buf = [0u8; 512];
    let n = sock.recv(&mut buf).unwrap();
    let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(msg.contains("READY=1"), "{msg}");
    assert!(msg.contains(&format!("MAINPID={}", m.pid)), "{msg}");
    assert_eq!(
        std::fs::read_to_string(&pidfile).unwrap().trim(),
        m.pid.to_string()
    );
    m.signal(Signal::SIGHUP);
    let n = sock.recv(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).contains("RELOADING=1"));
    let n = sock.recv(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).contains("READY=1"));
    m.signal(Signal::SIGTERM);
    let n = sock.recv(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).contains("STOPPING=1"));
    assert_eq!(m.wait(20), Some(0));
    assert!(!pidfile.exists(), "pidfile removed at exit");
}

#[test]
fn a_live_pidfile_is_a_boot_error() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("run.pid");
    std::fs::write(&pidfile, format!("{}\n", std::process::id())).unwrap();
    let mut s = settings(vec![free_port()]);
    s.pidfile = Some(pidfile.clone());
    let mut m = TestMaster::start(s, None);
    assert_eq!(m.wait(10), Some(3));
    assert_eq!(
        std::fs::read_to_string(&pidfile).unwrap().trim(),
        std::process::id().to_string()
    );
}

#[test]
fn daemon_mode_detaches_once_ready_and_stops_on_term() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("d.pid");
    let mut s = settings(vec![free_port()]);
    s.pidfile = Some(pidfile.clone());
    let addr = s.listen[0];
    let foreground = spawn::fork_child(move || {
        let opts = RunOptions {
            daemon: true,
            reload: None,
        };
        match master::run(s, opts, fake_worker) {
            Ok(()) => 0,
            Err(e) => e.exit_code(),
        }
    })
    .unwrap();
    // The foreground process exits 0 only once the workers are ready.
    assert_eq!(
        waitpid(foreground, None).unwrap(),
        WaitStatus::Exited(foreground, 0)
    );
    assert!(
        ask(addr, "/").is_some(),
        "serving as soon as the foreground exits"
    );
    let daemon: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_ne!(daemon, foreground.as_raw());
    let sid = nix::unistd::getsid(Some(Pid::from_raw(daemon))).unwrap();
    assert_eq!(sid.as_raw(), daemon, "the daemon leads its own session");
    kill(Pid::from_raw(daemon), Signal::SIGTERM).unwrap();
    assert!(eventually(20, || !pidfile.exists()));
}

#[test]
fn unknown_user_and_port_in_use_are_boot_errors() {
    let mut s = settings(vec![free_port()]);
    s.user = Some("no-such-user-for-waitressd".into());
    assert_eq!(TestMaster::start(s, None).wait(10), Some(3));
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let s = settings(vec![taken.local_addr().unwrap()]);
    assert_eq!(TestMaster::start(s, None).wait(10), Some(3));
}

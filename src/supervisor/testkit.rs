//! Test kit for the master loop: a master forked from the test process runs small fake
//! workers (plain Rust HTTP/1.0 responders, no Python), and the tests talk to it over loopback
//! and signal it by PID.
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::config::{AppSpec, Settings};
use crate::http::app::{App, AppFailure, Exchange};
use crate::net::Listener;
use crate::supervisor::{boot as master, spawn, RunOptions, WorkerStart};

pub(super) fn settings(listen: Vec<SocketAddr>) -> Settings {
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
        request_timeout: 0,
        max_requests: 0,
        max_requests_jitter: 0,
        max_worker_memory: 0,
        edge: Default::default(),
        access_log_format: crate::http::log_format::Format::combined(),
        error_log: None,
        log_level: "info".to_string(),
        daemon: false,
        proc_name: None,
        log_config: None,
        reload: false,
        reload_files: Vec::new(),
        given: Default::default(),
    }
}

/// A worker with no Python: answers every connection with
/// `HTTP/1.0 200 OK` and a body `PID GENERATION IDENT RUID,EUID,SUID`; `/sleep` takes 2 s.
/// `ident = fail3|fail4` exits with that boot error before ready. TERM/INT: stop accepting,
/// finish the connection in hand, exit 0; QUIT: exit 0 now.
pub(super) fn fake_worker(mut start: WorkerStart) -> i32 {
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
            Some(body.len() as u64),
        );
        ex.write(body.as_bytes()).map_err(|_| AppFailure {
            traceback: String::new(),
        })
    }
}

pub(super) fn server_worker(start: WorkerStart) -> i32 {
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

pub(super) fn free_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

pub(super) struct TestMaster {
    pub(super) pid: Pid,
    pub(super) addr: SocketAddr,
    pub(super) code: Option<i32>,
}

impl TestMaster {
    pub(super) fn start(s: Settings, reload: Option<super::ReloadFn>) -> TestMaster {
        Self::start_env(s, reload, Vec::new(), fake_worker)
    }

    pub(super) fn start_env(
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

    pub(super) fn signal(&self, s: Signal) {
        kill(self.pid, s).unwrap();
    }

    /// Exit code within `secs`, or None.
    pub(super) fn wait(&mut self, secs: u64) -> Option<i32> {
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
pub(super) fn ask(addr: SocketAddr, path: &str) -> Option<Vec<String>> {
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
pub(super) fn eventually(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

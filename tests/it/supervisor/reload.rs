//! SIGHUP under load: a new generation of workers with nothing lost, and a broken config that
//! keeps the old workers serving.
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::util::Daemon;

use super::{ask, children, eventually, start, write_ini};

/// Waits (bounded) for a stderr line containing `needle`.
fn stderr_has(d: &Daemon, needle: &str, secs: u64) -> bool {
    let end = Instant::now() + Duration::from_secs(secs);
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        match d.stderr.recv_timeout(left) {
            Ok(line) if line.contains(needle) => return true,
            Ok(_) => {}
            Err(_) => return false,
        }
    }
    false
}

/// A keep-alive HTTP/1.1 client. Strict: a reused connection closed under a request is a
/// failed request (real clients retry it, RFC 9112 §9.3.1, but the server drains idle
/// keep-alive connections with a grace period so that even clients that do not retry lose
/// nothing across a reload).
const RETRY_IDLE_CLOSE: bool = false;

pub(super) struct Client {
    pub(super) addr: String,
    pub(super) conn: Option<BufReader<TcpStream>>,
}

impl Client {
    pub(super) fn get(&mut self, path: &str) -> Result<String, String> {
        for _ in 0..2 {
            let reused = self.conn.is_some();
            if self.conn.is_none() {
                let s = TcpStream::connect(&self.addr).map_err(|e| format!("connect: {e}"))?;
                s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                self.conn = Some(BufReader::new(s));
            }
            match self.once(path) {
                Ok(body) => return Ok(body),
                Err((false, _)) if reused && RETRY_IDLE_CLOSE => self.conn = None,
                Err((_, e)) => {
                    self.conn = None;
                    return Err(e);
                }
            }
        }
        Err("retry failed".into())
    }

    /// Err((got_any_byte, why)).
    fn once(&mut self, path: &str) -> Result<String, (bool, String)> {
        let c = self.conn.as_mut().unwrap();
        let req = format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n");
        c.get_mut()
            .write_all(req.as_bytes())
            .map_err(|e| (false, e.to_string()))?;
        let mut status = String::new();
        match c.read_line(&mut status) {
            Ok(0) => return Err((false, "closed".into())),
            Err(e) => return Err((false, e.to_string())),
            Ok(_) => {}
        }
        if !status.starts_with("HTTP/1.1 200") {
            return Err((true, status));
        }
        let (mut len, mut close) = (0usize, false);
        loop {
            let mut line = String::new();
            c.read_line(&mut line).map_err(|e| (true, e.to_string()))?;
            let l = line.trim_end().to_ascii_lowercase();
            if l.is_empty() {
                break;
            }
            if let Some(v) = l.strip_prefix("content-length:") {
                len = v.trim().parse().unwrap_or(0);
            }
            close |= l == "connection: close";
        }
        let mut body = vec![0u8; len];
        c.read_exact(&mut body).map_err(|e| (true, e.to_string()))?;
        if close {
            self.conn = None;
        }
        Ok(String::from_utf8_lossy(&body).into_owned())
    }
}

#[test]
fn hup_under_load_loses_nothing_then_broken_config_keeps_old_workers() {
    let dir = tempfile::tempdir().unwrap();
    let server = "listen = 127.0.0.1:0\nworkers = 2";
    let ini = write_ini(dir.path(), "supapp:make_app", "one", server);
    let mut d = start(&ini, 1);
    let addr = d.addr();
    assert!(eventually(30, || ask(&addr, "/").is_some()));

    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let load: Vec<_> = (0..4)
        .map(|i| {
            let (stop, ok, failures, addr) =
                (stop.clone(), ok.clone(), failures.clone(), addr.clone());
            std::thread::spawn(move || {
                let mut c = Client {
                    addr: addr.clone(),
                    conn: None,
                };
                let end = Instant::now() + Duration::from_secs(90);
                while !stop.load(Ordering::SeqCst) && Instant::now() < end {
                    // Threads 0, 1: keep-alive; 2, 3: a new connection per request.
                    let r = if i < 2 {
                        c.get("/")
                    } else {
                        ask(&addr, "/")
                            .map(|_| String::new())
                            .ok_or_else(|| "new connection failed".into())
                    };
                    match r {
                        Ok(_) => ok.fetch_add(1, Ordering::SeqCst),
                        Err(e) => {
                            failures.lock().unwrap().push(e);
                            0
                        }
                    };
                }
            })
        })
        .collect();
    assert!(eventually(30, || ok.load(Ordering::SeqCst) > 200));
    // A slow request in flight on an old worker across the reload completes too.
    let a = addr.clone();
    let slow = std::thread::spawn(move || ask(&a, "/sleep?1"));
    std::thread::sleep(Duration::from_millis(200));
    write_ini(dir.path(), "supapp:make_app", "two", server);
    d.signal(libc::SIGHUP);
    assert!(
        eventually(60, || ask(&addr, "/").is_some_and(|r| r.1 == "two")),
        "new config served"
    );
    assert!(eventually(60, || (0..10)
        .all(|_| ask(&addr, "/").is_some_and(|r| r.1 == "two"))));
    assert_eq!(
        slow.join().unwrap().map(|r| r.1).as_deref(),
        Some("one"),
        "slow request on an old worker"
    );
    let before = ok.load(Ordering::SeqCst);
    assert!(eventually(60, || ok.load(Ordering::SeqCst) > (before + 200).max(3000)));
    stop.store(true, Ordering::SeqCst);
    for t in load {
        t.join().unwrap();
    }
    assert_eq!(
        *failures.lock().unwrap(),
        Vec::<String>::new(),
        "no request failed during the reload"
    );
    assert!(
        ok.load(Ordering::SeqCst) > 1000,
        "a few thousand requests ran"
    );

    // A broken config: an error is logged and the old workers keep serving.
    std::fs::write(&ini, "[server:main]\nworkers = many\n").unwrap();
    // The retired workers finish draining first (idle keep-alive grace), then exit.
    assert!(eventually(60, || children(d.pid()).len() == 2));
    let pids_before = children(d.pid());
    d.signal(libc::SIGHUP);
    assert!(
        stderr_has(&d, "reload failed", 30),
        "the reload error is logged"
    );
    assert_eq!(ask(&addr, "/").map(|r| r.1).as_deref(), Some("two"));
    assert_eq!(children(d.pid()), pids_before, "old workers kept");
    d.signal(libc::SIGTERM);
    assert_eq!(d.wait(30), Some(0));
}

//! Integration tests: server. The real event loop runs in-process on 127.0.0.1:0 (or a unix
//! socket) with the Rust test app in `fixture`; clients write raw bytes so framing, pipelining
//! and keep-alive are explicit. Every wait is bounded. This file holds the harness
//! (`TestServer`, `read_response`) and the benchmark server; the tests are grouped by behaviour
//! in `framing`, `limits`, `buffers`, `app` and `lifecycle`.
use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use waitressd::net::Listener;
use waitressd::server::{Server, ServerError, ServerOptions, StopHandle};

mod app;
mod buffers;
mod fixture;
mod framing;
mod lifecycle;
mod limits;
mod proxy;
mod tls;

use fixture::TestApp;

struct TestServer {
    addr: SocketAddr,
    stop: StopHandle,
    join: Option<JoinHandle<Result<usize, ServerError>>>,
    app: Arc<TestApp>,
}

impl TestServer {
    fn start(opts: ServerOptions) -> TestServer {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        Self::start_with(opts, vec![Listener::Tcp(l)], addr)
    }

    fn start_with(opts: ServerOptions, ls: Vec<Listener>, addr: SocketAddr) -> TestServer {
        let app = Arc::new(TestApp {
            calls: AtomicU64::new(0),
            saw_disconnect: Default::default(),
        });
        let (server, stop) = Server::new(opts, ls, app.clone()).expect("server");
        let join = Some(std::thread::spawn(move || server.run()));
        TestServer {
            addr,
            stop,
            join,
            app,
        }
    }

    fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s
    }

    /// Waits (bounded) for `run` to return.
    fn wait(&mut self, secs: u64) -> bool {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < deadline {
            let Some(j) = &self.join else { return true };
            if j.is_finished() {
                let r = self.join.take().unwrap().join().unwrap();
                assert!(r.is_ok(), "run failed: {r:?}");
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.immediate();
        self.wait(10);
    }
}

fn opts() -> ServerOptions {
    ServerOptions {
        threads: 2,
        ..Default::default()
    }
}

/// One response read off a stream: (status, head, body). Knows Content-Length and chunked
/// framing; reads to EOF otherwise.
fn read_response(r: &mut impl Read) -> Option<(u16, String, Vec<u8>)> {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match r.read(&mut b) {
            Ok(1) => head.push(b[0]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            _ => return None,
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let status: u16 = head.split(' ').nth(1)?.parse().ok()?;
    let lower = head.to_ascii_lowercase();
    let mut body = Vec::new();
    if status == 100 || status == 204 || status == 304 {
        return Some((status, head, body));
    }
    if let Some(cl) = lower
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
    {
        body.resize(cl.trim().parse().ok()?, 0);
        r.read_exact(&mut body).ok()?;
    } else if lower.contains("transfer-encoding: chunked") {
        loop {
            let mut line = Vec::new();
            while !line.ends_with(b"\r\n") {
                r.read_exact(&mut b).ok()?;
                line.push(b[0]);
            }
            let n = usize::from_str_radix(std::str::from_utf8(&line).ok()?.trim(), 16).ok()?;
            let mut chunk = vec![0u8; n + 2];
            r.read_exact(&mut chunk).ok()?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    } else {
        r.read_to_end(&mut body).ok()?;
    }
    Some((status, head, body))
}

/// True if the peer closes (EOF or reset) within `secs` without sending anything more.
fn closed_within(s: &mut TcpStream, secs: u64) -> bool {
    s.set_read_timeout(Some(Duration::from_secs(secs))).unwrap();
    let mut b = [0u8; 64];
    // A signal may interrupt a read (Python, started in-process by the wsgi tests, installs
    // handlers without SA_RESTART): read again.
    let mut read = || loop {
        match s.read(&mut b) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            r => return r,
        }
    };
    matches!(read(), Ok(0))
        || matches!(read(), Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset)
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n")
}

/// Not a test: serves `/hello` for `WAITRESSD_BENCH_SECS` seconds (default 20) so `wrk` can be
/// pointed at it; prints the address, then the process CPU time per request served.
/// `taskset -c 0 cargo test --release --test it server::bench_hello -- --ignored --nocapture`
#[test]
#[ignore]
fn bench_hello() {
    let secs = std::env::var("WAITRESSD_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let threads = std::env::var("WAITRESSD_BENCH_THREADS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4);
    let srv = TestServer::start(ServerOptions {
        threads,
        connection_limit: 1000,
        ..Default::default()
    });
    println!("listening on {}", srv.addr);
    let cpu = || {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
        let f: Vec<&str> = stat
            .rsplit(')')
            .next()
            .unwrap()
            .split_whitespace()
            .collect();
        // utime and stime are fields 14 and 15 (1-based); after ')' they are at 11 and 12.
        let tick = 100.0;
        (f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap()) / tick
    };
    let (c0, n0) = (cpu(), srv.app.calls.load(Ordering::SeqCst));
    std::thread::sleep(Duration::from_secs(secs));
    let (c1, n1) = (cpu(), srv.app.calls.load(Ordering::SeqCst));
    let n = (n1 - n0).max(1);
    println!(
        "requests {n}, cpu {:.2}s, {:.2} us/request",
        c1 - c0,
        (c1 - c0) * 1e6 / n as f64
    );
}

//! Integration tests: server. The real event loop runs in-process on 127.0.0.1:0 (or a unix
//! socket) with Rust test apps; clients write raw bytes so framing, pipelining and keep-alive
//! are explicit. Every wait is bounded.
use std::io::{BufRead, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use waitressd::http::app::{App, AppFailure, Exchange};
use waitressd::net::Listener;
use waitressd::server::{Server, ServerError, ServerOptions, StopHandle};

/// Tests that measure the process's RSS run one at a time.
static RSS_LOCK: Mutex<()> = Mutex::new(());

struct TestApp {
    calls: AtomicU64,
    saw_disconnect: std::sync::atomic::AtomicBool,
}

fn respond(ex: &mut dyn Exchange, status: &str, body: &[u8]) -> Result<(), AppFailure> {
    let headers = vec![
        ("Content-Type".to_string(), "text/plain".to_string()),
        ("Content-Length".to_string(), body.len().to_string()),
    ];
    ex.start_response(status, headers);
    ex.write(body).map_err(|_| AppFailure {
        traceback: "client gone".into(),
    })
}

fn query_num(ex: &dyn Exchange) -> u64 {
    std::str::from_utf8(ex.request().query())
        .ok()
        .and_then(|q| q.parse().ok())
        .unwrap_or(0)
}

impl App for TestApp {
    fn call(&self, ex: &mut dyn Exchange) -> Result<(), AppFailure> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let path = ex.request().path().to_vec();
        let gone = |_| AppFailure {
            traceback: "client gone".into(),
        };
        match &path[..] {
            b"/hello" => respond(ex, "200 OK", b"hello"),
            b"/query" => {
                let q = ex.request().query().to_vec();
                respond(ex, "200 OK", &q)
            }
            b"/echo" => {
                let mut body = Vec::new();
                ex.body().read_to_end(&mut body).map_err(|e| AppFailure {
                    traceback: e.to_string(),
                })?;
                respond(ex, "200 OK", &body)
            }
            b"/count" => {
                let mut n = 0u64;
                loop {
                    let buf = ex.body().fill_buf().map_err(|e| AppFailure {
                        traceback: e.to_string(),
                    })?;
                    if buf.is_empty() {
                        break;
                    }
                    let len = buf.len();
                    n += len as u64;
                    ex.body().consume(len);
                }
                respond(ex, "200 OK", n.to_string().as_bytes())
            }
            b"/chunked" => {
                ex.start_response("200 OK", vec![("Content-Type".into(), "text/plain".into())]);
                ex.write(b"ab").map_err(gone)?;
                ex.write(b"cd").map_err(gone)
            }
            b"/origin" => {
                let o = &ex.request().origin;
                let s = format!("{}|{}|{}", o.remote_addr, o.remote_port, o.server_port);
                respond(ex, "200 OK", s.as_bytes())
            }
            b"/slow" => {
                std::thread::sleep(Duration::from_millis(query_num(ex)));
                respond(ex, "200 OK", b"slept")
            }
            b"/big" => {
                let n = query_num(ex);
                ex.start_response("200 OK", vec![("Content-Length".into(), n.to_string())]);
                let chunk = vec![b'x'; 256 * 1024];
                let mut left = n;
                while left > 0 {
                    let k = left.min(chunk.len() as u64) as usize;
                    ex.write(&chunk[..k]).map_err(gone)?;
                    left -= k as u64;
                }
                Ok(())
            }
            b"/pattern" => {
                // n bytes of (i % 251), in writes of varying size, no Content-Length.
                let n = query_num(ex);
                ex.start_response("200 OK", vec![]);
                let (mut i, mut size) = (0u64, 1usize);
                while i < n {
                    let k = (size as u64).min(n - i);
                    let chunk: Vec<u8> = (i..i + k).map(|j| (j % 251) as u8).collect();
                    ex.write(&chunk).map_err(gone)?;
                    i += k;
                    size = size * 7 % 100_003 + 1;
                }
                Ok(())
            }
            b"/file" => {
                let mut f = tempfile::tempfile().unwrap();
                f.write_all(b"0123456789").unwrap();
                ex.start_response("200 OK", vec![("Content-Length".into(), "6".into())]);
                ex.send_file(f, 2, 6).map_err(gone)
            }
            b"/wait-disconnect" => {
                // Polls the client-disconnected flag (channel_request_lookahead > 0).
                let flag = ex.disconnected();
                let deadline = Instant::now() + Duration::from_secs(10);
                while !flag.load(Ordering::SeqCst) && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(10));
                }
                self.saw_disconnect
                    .store(flag.load(Ordering::SeqCst), Ordering::SeqCst);
                respond(ex, "200 OK", b"done")
            }
            b"/panic" => panic!("boom in the app"),
            b"/fail" => Err(AppFailure {
                traceback: "Traceback: ValueError: boom".into(),
            }),
            b"/fail-after-head" => {
                ex.start_response("200 OK", vec![]);
                ex.write(b"partial").map_err(gone)?;
                Err(AppFailure {
                    traceback: "late".into(),
                })
            }
            _ => respond(ex, "404 Not Found", b"not found"),
        }
    }
}

struct TestServer {
    addr: SocketAddr,
    stop: StopHandle,
    join: Option<JoinHandle<Result<(), ServerError>>>,
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

#[test]
fn pipelined_requests_are_answered_in_order() {
    let srv = TestServer::start(opts());
    let mut s = srv.connect();
    let all: String = (0..25).map(|i| get(&format!("/query?{i}"))).collect();
    s.write_all(all.as_bytes()).unwrap();
    for i in 0..25 {
        let (status, _, body) = read_response(&mut s).expect("response");
        assert_eq!(status, 200);
        assert_eq!(body, i.to_string().as_bytes());
    }
}

#[test]
fn http10_without_keep_alive_closes_after_response() {
    let srv = TestServer::start(opts());
    let mut s = srv.connect();
    s.write_all(b"GET /hello HTTP/1.0\r\n\r\n").unwrap();
    let (status, head, body) = read_response(&mut s).unwrap();
    assert_eq!((status, &body[..]), (200, &b"hello"[..]));
    assert!(head.contains("Connection: close"), "{head}");
    assert!(closed_within(&mut s, 5));
}

#[test]
fn http10_keep_alive_with_length_stays_open() {
    let srv = TestServer::start(opts());
    let mut s = srv.connect();
    for _ in 0..2 {
        s.write_all(b"GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            .unwrap();
        let (status, head, body) = read_response(&mut s).unwrap();
        assert_eq!((status, &body[..]), (200, &b"hello"[..]));
        assert!(head.contains("Connection: Keep-Alive"), "{head}");
    }
}

#[test]
fn http11_connection_close_closes() {
    let srv = TestServer::start(opts());
    let mut s = srv.connect();
    s.write_all(b"GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let (status, head, _) = read_response(&mut s).unwrap();
    assert_eq!(status, 200);
    assert!(head.contains("Connection: close"), "{head}");
    assert!(closed_within(&mut s, 5));
}

#[test]
fn http11_stays_alive_after_chunked_response() {
    let srv = TestServer::start(opts());
    let mut s = srv.connect();
    for _ in 0..2 {
        s.write_all(get("/chunked").as_bytes()).unwrap();
        let (status, head, body) = read_response(&mut s).unwrap();
        assert_eq!((status, &body[..]), (200, &b"abcd"[..]));
        assert!(head.contains("Transfer-Encoding: chunked"), "{head}");
        assert!(!head.contains("Connection: close"), "{head}");
    }
}

#[test]
fn expect_100_continue_with_body_gets_interim_response_first() {
    let srv = TestServer::start(opts());
    let mut s = srv.connect();
    s.write_all(
        b"POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
    )
    .unwrap();
    let (status, head, _) = read_response(&mut s).unwrap();
    assert_eq!(status, 100, "{head}");
    assert_eq!(head, "HTTP/1.1 100 Continue\r\n\r\n");
    s.write_all(b"abcde").unwrap();
    let (status, _, body) = read_response(&mut s).unwrap();
    assert_eq!((status, &body[..]), (200, &b"abcde"[..]));
}

#[test]
fn expect_100_continue_without_body_is_served() {
    let srv = TestServer::start(opts());
    let mut s = srv.connect();
    s.write_all(b"GET /hello HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n\r\n")
        .unwrap();
    let (status, _, _) = read_response(&mut s).unwrap();
    assert_eq!(status, 100);
    let (status, _, body) = read_response(&mut s).unwrap();
    assert_eq!((status, &body[..]), (200, &b"hello"[..]));
    // The connection is still in sync: the next request is answered normally.
    s.write_all(get("/query?next").as_bytes()).unwrap();
    let (_, _, body) = read_response(&mut s).unwrap();
    assert_eq!(body, b"next");
}

#[test]
fn expect_100_continue_behind_a_busy_request_comes_after_its_response() {
    let srv = TestServer::start(opts());
    let mut s = srv.connect();
    let reqs = format!(
        "{}POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n",
        get("/slow?300")
    );
    s.write_all(reqs.as_bytes()).unwrap();
    let (status, _, body) = read_response(&mut s).unwrap();
    assert_eq!((status, &body[..]), (200, &b"slept"[..]));
    assert_eq!(read_response(&mut s).unwrap().0, 100);
    s.write_all(b"xyz").unwrap();
    let (status, _, body) = read_response(&mut s).unwrap();
    assert_eq!((status, &body[..]), (200, &b"xyz"[..]));
}

#[test]
fn bad_request_behind_a_busy_request_is_answered_in_order_then_closed() {
    let srv = TestServer::start(opts());
    let mut s = srv.connect();
    let reqs = format!(
        "{}GET / HTTP/1.1\r\nBad Header\r\n\r\n{}",
        get("/slow?300"),
        get("/hello")
    );
    s.write_all(reqs.as_bytes()).unwrap();
    let (status, _, body) = read_response(&mut s).unwrap();
    assert_eq!((status, &body[..]), (200, &b"slept"[..]));
    let (status, head, _) = read_response(&mut s).unwrap();
    assert_eq!(status, 400, "{head}");
    assert!(closed_within(&mut s, 5));
    assert_eq!(srv.app.calls.load(Ordering::SeqCst), 1);
}

#[test]
fn trusted_proxy_headers_reach_the_app_and_malformed_ones_get_400() {
    let srv = TestServer::start(ServerOptions {
        trusted_proxy: Some("127.0.0.1".into()),
        trusted_proxy_headers: [
            "x-forwarded-for".to_string(),
            "x-forwarded-proto".to_string(),
        ]
        .into(),
        ..opts()
    });
    let mut s = srv.connect();
    s.write_all(b"GET /origin HTTP/1.1\r\nHost: t\r\nX-Forwarded-For: 10.1.2.3\r\n\r\n")
        .unwrap();
    let body = String::from_utf8(read_response(&mut s).unwrap().2).unwrap();
    assert!(body.starts_with("10.1.2.3|"), "{body}");
    s.write_all(b"GET /hello HTTP/1.1\r\nHost: t\r\nX-Forwarded-Proto: ftp\r\n\r\n")
        .unwrap();
    let (status, _, body) = read_response(&mut s).unwrap();
    assert_eq!(status, 400);
    assert_eq!(
        body,
        b"Bad Request\r\n\r\nHeader \"X-Forwarded-Proto\" malformed.\r\n\r\n(generated by server)"
    );
    assert_eq!(
        srv.app.calls.load(Ordering::SeqCst),
        1,
        "the app ran for a malformed proxy header"
    );
}

#[test]
fn head_response_has_no_body() {
    let srv = TestServer::start(opts());
    let mut s = srv.connect();
    s.write_all(b"HEAD /hello HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut b).unwrap();
        head.push(b[0]);
    }
    assert!(String::from_utf8_lossy(&head).contains("Content-Length: 5"));
    // No body bytes: the next response starts right after the head.
    s.write_all(get("/query?after").as_bytes()).unwrap();
    let (status, _, body) = read_response(&mut s).unwrap();
    assert_eq!((status, &body[..]), (200, &b"after"[..]));
}

#[test]
fn oversized_head_gets_431_response() {
    let mut o = opts();
    o.limits.max_request_header_size = 1024;
    let srv = TestServer::start(o);
    let mut s = srv.connect();
    let req = format!(
        "GET /hello HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n",
        "a".repeat(8192)
    );
    let _ = s.write_all(req.as_bytes());
    let (status, head, body) = read_response(&mut s).expect("a 431 response, not a reset");
    assert_eq!(status, 431, "{head}");
    assert!(String::from_utf8_lossy(&body).contains("exceeds max_header of 1024"));
    assert!(closed_within(&mut s, 5));
}

#[test]
fn oversized_body_gets_413_response_while_client_is_still_sending() {
    let mut o = opts();
    o.limits.max_request_body_size = 1000;
    let srv = TestServer::start(o);
    let mut s = srv.connect();
    s.write_all(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n")
        .unwrap();
    // The client goes on sending part of its body before it reads.
    let _ = s.write_all(&[b'z'; 64 * 1024]);
    let (status, _, body) = read_response(&mut s).expect("a 413 response, not a reset");
    assert_eq!(status, 413);
    assert!(String::from_utf8_lossy(&body).contains("exceeds max_body of 1000"));
}

#[test]
fn idle_connection_is_closed_after_channel_timeout() {
    let srv = TestServer::start(ServerOptions {
        channel_timeout: 1,
        cleanup_interval: 1,
        ..opts()
    });
    let mut s = srv.connect();
    s.write_all(get("/hello").as_bytes()).unwrap();
    assert_eq!(read_response(&mut s).unwrap().0, 200);
    assert!(
        closed_within(&mut s, 10),
        "idle keep-alive connection not closed"
    );
    let mut half = srv.connect();
    half.write_all(b"GET /hello HTT").unwrap();
    assert!(closed_within(&mut half, 10), "half-sent request not closed");
}

#[test]
fn fresh_client_is_served_at_connection_limit() {
    let srv = TestServer::start(ServerOptions {
        connection_limit: 3,
        ..opts()
    });
    let mut idle = Vec::new();
    for _ in 0..2 {
        let mut s = srv.connect();
        s.write_all(get("/hello").as_bytes()).unwrap();
        assert_eq!(read_response(&mut s).unwrap().0, 200);
        idle.push(s);
    }
    let mut half = srv.connect();
    half.write_all(b"GET /hel").unwrap();
    idle.push(half);
    std::thread::sleep(Duration::from_millis(100));
    for i in 0..3 {
        let mut fresh = srv.connect();
        fresh
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        fresh.write_all(get("/hello").as_bytes()).unwrap();
        let r = read_response(&mut fresh);
        assert_eq!(
            r.map(|r| r.0),
            Some(200),
            "fresh client {i} not served at the limit"
        );
        idle.push(fresh);
    }
}

#[test]
fn eviction_at_the_limit_takes_the_least_recently_active_connection() {
    let srv = TestServer::start(ServerOptions {
        connection_limit: 2,
        ..opts()
    });
    let mut old = srv.connect();
    old.write_all(get("/hello").as_bytes()).unwrap();
    read_response(&mut old).unwrap();
    let mut recent = srv.connect();
    recent.write_all(get("/hello").as_bytes()).unwrap();
    read_response(&mut recent).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    recent.write_all(get("/hello").as_bytes()).unwrap();
    read_response(&mut recent).unwrap();
    let mut fresh = srv.connect();
    fresh.write_all(get("/hello").as_bytes()).unwrap();
    assert_eq!(read_response(&mut fresh).map(|r| r.0), Some(200));
    assert!(
        closed_within(&mut old, 5),
        "the oldest idle connection was not evicted"
    );
    recent.write_all(get("/query?still").as_bytes()).unwrap();
    assert_eq!(
        read_response(&mut recent).map(|r| r.2),
        Some(b"still".to_vec())
    );
}

#[test]
fn busy_keep_alive_clients_are_not_evicted_at_the_limit() {
    let srv = TestServer::start(ServerOptions {
        connection_limit: 2,
        ..opts()
    });
    let addr = srv.addr;
    let busy: Vec<_> = (0..2)
        .map(|_| {
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(addr).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                for _ in 0..30 {
                    s.write_all(get("/hello").as_bytes()).unwrap();
                    assert_eq!(
                        read_response(&mut s).map(|r| r.0),
                        Some(200),
                        "busy client cut"
                    );
                    std::thread::sleep(Duration::from_millis(50));
                }
                s
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    // A third client waits in the backlog while the two are busy, then gets served once
    // they have been idle a moment.
    let mut third = srv.connect();
    third.write_all(get("/query?third").as_bytes()).unwrap();
    let _keep: Vec<TcpStream> = busy.into_iter().map(|h| h.join().unwrap()).collect();
    third
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    assert_eq!(
        read_response(&mut third).map(|r| r.2),
        Some(b"third".to_vec())
    );
}

#[test]
fn slow_header_client_is_cut_by_the_header_deadline() {
    // channel_timeout 2 s → whole-head deadline 2 s; the client is never idle that long.
    let srv = TestServer::start(ServerOptions {
        channel_timeout: 2,
        cleanup_interval: 1,
        ..opts()
    });
    let mut s = srv.connect();
    let req = b"GET /hello HTTP/1.1\r\nHost: t\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    let start = Instant::now();
    for &b in req.iter() {
        if s.write_all(&[b]).is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
        if start.elapsed() > Duration::from_secs(8) {
            break;
        }
    }
    let cut = start.elapsed() < Duration::from_secs(8);
    assert!(
        cut && closed_within(&mut s, 2),
        "trickling client was not cut"
    );
}

#[test]
fn client_trickling_empty_lines_is_cut_by_the_header_deadline() {
    // Empty lines before a request line are tolerated (RFC 9112 §2.2) but start the whole-head
    // deadline, so a CRLF every 250 ms cannot hold the connection open.
    let srv = TestServer::start(ServerOptions {
        channel_timeout: 2,
        cleanup_interval: 1,
        ..opts()
    });
    let mut s = srv.connect();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(8) {
        if s.write_all(b"\r\n").is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    // Cut while still sending: a write after the server closed fails (EPIPE/ECONNRESET).
    assert!(
        start.elapsed() < Duration::from_secs(8),
        "a client sending only empty lines was not cut"
    );
}

fn vm_rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Samples VmRSS every 20 ms until dropped; `max()` is the peak.
struct RssWatch {
    peak: Arc<AtomicU64>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl RssWatch {
    fn start() -> RssWatch {
        let peak = Arc::new(AtomicU64::new(vm_rss_kib()));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (p, st) = (peak.clone(), stop.clone());
        std::thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                p.fetch_max(vm_rss_kib(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        RssWatch { peak, stop }
    }
    fn peak(&self) -> u64 {
        self.peak.load(Ordering::Relaxed)
    }
}

impl Drop for RssWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

const GIB: u64 = 1 << 30;

#[test]
fn upload_of_1gib_keeps_memory_bounded() {
    let _g = RSS_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let mut o = opts();
    o.limits.max_request_body_size = 2 * GIB;
    let srv = TestServer::start(o);
    let before = vm_rss_kib();
    let watch = RssWatch::start();
    let mut s = srv.connect();
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    write!(
        s,
        "POST /count HTTP/1.1\r\nHost: t\r\nContent-Length: {GIB}\r\n\r\n"
    )
    .unwrap();
    let block = vec![b'u'; 1 << 20];
    let start = Instant::now();
    for _ in 0..1024 {
        s.write_all(&block).unwrap();
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "upload too slow"
        );
    }
    let (status, _, body) = read_response(&mut s).unwrap();
    assert_eq!((status, body), (200, GIB.to_string().into_bytes()));
    let grew = watch.peak().saturating_sub(before);
    eprintln!("1 GiB upload: peak RSS grew by {grew} KiB");
    assert!(
        grew < 64 * 1024,
        "RSS grew by {grew} KiB during a 1 GiB upload"
    );
}

#[test]
fn download_of_1gib_goes_through_backpressure() {
    let _g = RSS_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let srv = TestServer::start(opts());
    let before = vm_rss_kib();
    let watch = RssWatch::start();
    let mut s = srv.connect();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s.write_all(get(&format!("/big?{GIB}")).as_bytes()).unwrap();
    let mut r = std::io::BufReader::with_capacity(1 << 20, s);
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        r.read_exact(&mut b).unwrap();
        head.push(b[0]);
    }
    let mut got = 0u64;
    let start = Instant::now();
    while got < GIB {
        let n = r.fill_buf().unwrap().len();
        assert!(n > 0, "connection closed after {got} bytes");
        r.consume(n);
        got += n as u64;
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "download too slow"
        );
    }
    assert_eq!(got, GIB);
    let grew = watch.peak().saturating_sub(before);
    eprintln!("1 GiB download: peak RSS grew by {grew} KiB");
    assert!(
        grew < 64 * 1024,
        "RSS grew by {grew} KiB during a 1 GiB download"
    );
}

#[test]
fn client_disconnect_mid_response_leaves_server_serving() {
    let srv = TestServer::start(opts());
    {
        let mut s = srv.connect();
        s.write_all(get(&format!("/big?{}", 200 << 20)).as_bytes())
            .unwrap();
        let mut buf = [0u8; 4096];
        s.read_exact(&mut buf).unwrap();
    }
    for _ in 0..3 {
        let mut s = srv.connect();
        s.write_all(get("/hello").as_bytes()).unwrap();
        assert_eq!(read_response(&mut s).unwrap().2, b"hello");
    }
}

#[test]
fn half_closed_client_gets_its_whole_response() {
    let srv = TestServer::start(opts());
    let mut s = srv.connect();
    let n = 8 << 20;
    // HTTP/1.0 without keep-alive: the response is the connection's last.
    s.write_all(format!("GET /big?{n} HTTP/1.0\r\n\r\n").as_bytes())
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut r = std::io::BufReader::new(s);
    let (status, _, body) = read_response(&mut r).expect("whole response after half-close");
    assert_eq!((status, body.len()), (200, n));
}

#[test]
fn app_panic_gives_500_and_server_keeps_serving() {
    let srv = TestServer::start(opts());
    for _ in 0..3 {
        let mut s = srv.connect();
        s.write_all(get("/panic").as_bytes()).unwrap();
        let (status, head, body) = read_response(&mut s).unwrap();
        assert_eq!(status, 500);
        assert!(head.contains("Connection: close"));
        let body = String::from_utf8_lossy(&body).into_owned();
        assert!(
            body.contains("The server encountered an unexpected internal server error"),
            "{body}"
        );
        assert!(
            !body.contains("boom"),
            "traceback exposed without expose_tracebacks"
        );
    }
    let mut s = srv.connect();
    s.write_all(get("/hello").as_bytes()).unwrap();
    assert_eq!(read_response(&mut s).unwrap().2, b"hello");
}

#[test]
fn app_failure_exposes_traceback_only_when_asked() {
    let srv = TestServer::start(ServerOptions {
        expose_tracebacks: true,
        ..opts()
    });
    let mut s = srv.connect();
    s.write_all(get("/fail").as_bytes()).unwrap();
    let (status, _, body) = read_response(&mut s).unwrap();
    assert_eq!(status, 500);
    assert!(String::from_utf8_lossy(&body).contains("Traceback: ValueError: boom"));
}

#[test]
fn app_failure_after_head_cuts_the_connection() {
    let srv = TestServer::start(opts());
    let mut s = srv.connect();
    s.write_all(get("/fail-after-head").as_bytes()).unwrap();
    let mut all = Vec::new();
    let _ = s.read_to_end(&mut all);
    let text = String::from_utf8_lossy(&all);
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    assert!(text.contains("partial"));
    assert!(
        !text.ends_with("0\r\n\r\n"),
        "chunked terminator sent after a failure: {text}"
    );
}

#[test]
fn send_file_sends_the_file_range() {
    let srv = TestServer::start(opts());
    let mut s = srv.connect();
    s.write_all(get("/file").as_bytes()).unwrap();
    let (status, _, body) = read_response(&mut s).unwrap();
    assert_eq!((status, &body[..]), (200, &b"234567"[..]));
    s.write_all(get("/hello").as_bytes()).unwrap();
    assert_eq!(read_response(&mut s).unwrap().2, b"hello");
}

#[test]
fn graceful_stop_completes_in_flight_request() {
    let mut srv = TestServer::start(opts());
    let mut idle = srv.connect();
    idle.write_all(get("/hello").as_bytes()).unwrap();
    assert_eq!(read_response(&mut idle).unwrap().0, 200);
    let mut s = srv.connect();
    s.write_all(get("/slow?700").as_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    srv.stop.graceful();
    let (status, _, body) = read_response(&mut s).expect("in-flight response");
    assert_eq!((status, &body[..]), (200, &b"slept"[..]));
    assert!(
        closed_within(&mut idle, 5),
        "idle keep-alive connection not closed"
    );
    assert!(srv.wait(10), "run did not return after a graceful stop");
    assert!(
        TcpStream::connect(srv.addr).is_err(),
        "still accepting after stop"
    );
}

#[test]
fn immediate_stop_returns_promptly_and_cuts_connections() {
    let mut srv = TestServer::start(opts());
    let mut s = srv.connect();
    s.write_all(get("/slow?4000").as_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let t = Instant::now();
    srv.stop.immediate();
    assert!(
        srv.wait(3),
        "run did not return promptly after an immediate stop"
    );
    assert!(t.elapsed() < Duration::from_secs(3));
    assert!(
        read_response(&mut s).is_none(),
        "a response after an immediate stop"
    );
}

#[test]
fn two_servers_sharing_a_listener_both_serve() {
    // As pre-forked workers do: one listening socket, several event loops (EPOLLEXCLUSIVE).
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let l2 = l.try_clone().unwrap();
    let a = TestServer::start_with(opts(), vec![Listener::Tcp(l)], addr);
    let b = TestServer::start_with(opts(), vec![Listener::Tcp(l2)], addr);
    for _ in 0..40 {
        let mut s = a.connect();
        s.write_all(b"GET /hello HTTP/1.0\r\n\r\n").unwrap();
        assert_eq!(read_response(&mut s).map(|r| r.2), Some(b"hello".to_vec()));
    }
    let (na, nb) = (
        a.app.calls.load(Ordering::SeqCst),
        b.app.calls.load(Ordering::SeqCst),
    );
    assert_eq!(na + nb, 40);
}

#[test]
fn unix_and_tcp_listeners_are_served_together() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.sock");
    let u = UnixListener::bind(&path).unwrap();
    let t = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = t.local_addr().unwrap();
    let ls = vec![Listener::Unix(u, path.clone()), Listener::Tcp(t)];
    let srv = TestServer::start_with(opts(), ls, addr);
    let mut s = UnixStream::connect(&path).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(get("/origin").as_bytes()).unwrap();
    let (status, _, body) = read_response(&mut s).unwrap();
    assert_eq!(status, 200);
    assert_eq!(
        String::from_utf8_lossy(&body),
        format!("localhost|None|{}", path.display())
    );
    let mut s = srv.connect();
    s.write_all(get("/origin").as_bytes()).unwrap();
    let body = String::from_utf8(read_response(&mut s).unwrap().2).unwrap();
    let local = s.local_addr().unwrap();
    assert_eq!(body, format!("127.0.0.1|{}|{}", local.port(), addr.port()));
}

#[test]
fn access_log_has_one_combined_line_per_request() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    let mut srv = TestServer::start(ServerOptions {
        access_log: Some(log.clone()),
        ..opts()
    });
    let mut s = srv.connect();
    s.write_all(
        b"GET /hello?x=1 HTTP/1.1\r\nHost: t\r\nReferer: http://r/\r\nUser-Agent: t\"ua\r\n\r\n",
    )
    .unwrap();
    assert_eq!(read_response(&mut s).unwrap().0, 200);
    s.write_all(get("/nothing").as_bytes()).unwrap();
    assert_eq!(read_response(&mut s).unwrap().0, 404);
    srv.stop.graceful();
    drop(s);
    assert!(srv.wait(10));
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].starts_with("127.0.0.1 - - ["), "{}", lines[0]);
    assert!(
        lines[0].ends_with("\"GET /hello?x=1 HTTP/1.1\" 200 5 \"http://r/\" \"t\\\"ua\""),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].ends_with("\"GET /nothing HTTP/1.1\" 404 9 \"-\" \"-\""),
        "{}",
        lines[1]
    );
    assert_eq!(srv.app.calls.load(Ordering::SeqCst), 2);
}

#[test]
fn nothing_is_read_after_connection_close() {
    // With lookahead the second request is read while the first runs; it must still not run
    // (CVE-2024-49768).
    for lookahead in [0, 2] {
        let srv = TestServer::start(ServerOptions {
            channel_request_lookahead: lookahead,
            ..opts()
        });
        let mut s = srv.connect();
        let two = format!(
            "GET /slow?100 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n{}{}",
            get("/query?2"),
            get("/query?3")
        );
        s.write_all(two.as_bytes()).unwrap();
        let mut all = Vec::new();
        let _ = s.read_to_end(&mut all);
        let (status, _, body) = read_response(&mut &all[..]).unwrap();
        assert_eq!((status, &body[..]), (200, &b"slept"[..]));
        assert_eq!(
            srv.app.calls.load(Ordering::SeqCst),
            1,
            "a request after close ran"
        );
        assert_eq!(all.windows(5).filter(|w| w == b"HTTP/").count(), 1);
    }
}

#[test]
fn app_sees_client_disconnect_with_lookahead() {
    let srv = TestServer::start(ServerOptions {
        channel_request_lookahead: 1,
        ..opts()
    });
    let mut s = srv.connect();
    s.write_all(get("/wait-disconnect").as_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    drop(s);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !srv.app.saw_disconnect.load(Ordering::SeqCst) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        srv.app.saw_disconnect.load(Ordering::SeqCst),
        "disconnect flag never set"
    );
}

#[test]
fn access_log_is_reopened_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    let rotated = dir.path().join("access.log.1");
    let mut srv = TestServer::start(ServerOptions {
        access_log: Some(log.clone()),
        ..opts()
    });
    let mut s = srv.connect();
    s.write_all(get("/hello").as_bytes()).unwrap();
    assert_eq!(read_response(&mut s).unwrap().0, 200);
    // Let the loop write the first line, then rotate.
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0) == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::fs::rename(&log, &rotated).unwrap();
    srv.stop.reopen_logs();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !log.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    s.write_all(get("/query?after-rotation").as_bytes())
        .unwrap();
    assert_eq!(read_response(&mut s).unwrap().0, 200);
    srv.stop.graceful();
    drop(s);
    assert!(srv.wait(10));
    let old = std::fs::read_to_string(&rotated).unwrap();
    let new = std::fs::read_to_string(&log).unwrap();
    assert!(
        old.contains("GET /hello ") && !old.contains("after-rotation"),
        "{old}"
    );
    assert!(new.contains("GET /query?after-rotation "), "{new}");
}

#[test]
fn idle_keep_alive_connections_cost_little_memory() {
    let _g = RSS_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let srv = TestServer::start(ServerOptions {
        connection_limit: 2000,
        ..opts()
    });
    let mut warm = srv.connect();
    for _ in 0..20 {
        warm.write_all(get("/hello").as_bytes()).unwrap();
        read_response(&mut warm).unwrap();
    }
    const N: u64 = 500;
    let before = vm_rss_kib();
    let mut conns = Vec::new();
    for _ in 0..N {
        let mut s = srv.connect();
        s.write_all(get("/hello").as_bytes()).unwrap();
        assert_eq!(read_response(&mut s).unwrap().0, 200);
        conns.push(s);
    }
    let per_conn = vm_rss_kib().saturating_sub(before) * 1024 / N;
    eprintln!("idle keep-alive connection: {per_conn} bytes of RSS");
    assert!(
        per_conn <= 2048,
        "an idle keep-alive connection costs {per_conn} bytes"
    );
}

#[test]
fn garbage_input_never_takes_the_server_down() {
    let srv = TestServer::start(opts());
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let pieces: [&[u8]; 12] = [
        b"GET / HTTP/1.1\r\n",
        b"Host: a\r\n",
        b"\r\n",
        b"\n",
        b"\r",
        b"Content-Length: 5\r\n",
        b"Transfer-Encoding: chunked\r\n",
        b"0\r\n\r\n",
        b"\x00\xff",
        b"POST /echo HTTP/1.0\r\n",
        b"Expect: 100-continue\r\n",
        b"HEAD /hello HTTP/1.1\r\n",
    ];
    let mut handles = Vec::new();
    for _ in 0..8 {
        let mut conns = Vec::new();
        for _ in 0..20 {
            let mut msg = Vec::new();
            for _ in 0..(next() % 12) {
                if next() % 4 == 0 {
                    msg.extend((0..next() % 40).map(|_| next() as u8));
                } else {
                    msg.extend_from_slice(pieces[(next() % 12) as usize]);
                }
            }
            conns.push((msg, next() % 3));
        }
        let addr = srv.addr;
        handles.push(std::thread::spawn(move || {
            for (msg, how) in conns {
                let Ok(mut s) = TcpStream::connect(addr) else {
                    continue;
                };
                s.set_read_timeout(Some(Duration::from_millis(300)))
                    .unwrap();
                let _ = s.write_all(&msg);
                match how {
                    0 => drop(s),
                    1 => {
                        let _ = s.shutdown(std::net::Shutdown::Write);
                        let _ = s.read_to_end(&mut Vec::new());
                    }
                    _ => {
                        let _ = s.read(&mut [0u8; 1024]);
                    }
                }
            }
        }));
    }
    for h in handles {
        h.join().unwrap();
    }
    let mut s = srv.connect();
    s.write_all(get("/hello").as_bytes()).unwrap();
    assert_eq!(read_response(&mut s).unwrap().2, b"hello");
}

#[test]
fn slow_reader_gets_spilled_output_in_order() {
    let srv = TestServer::start(ServerOptions {
        outbuf_overflow: 64 * 1024,
        outbuf_high_watermark: 1 << 20,
        ..opts()
    });
    let mut s = srv.connect();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let n: u64 = 24 << 20;
    s.write_all(get(&format!("/pattern?{n}")).as_bytes())
        .unwrap();
    // Let the app run into back-pressure with output spilled to the temp file.
    std::thread::sleep(Duration::from_millis(500));
    let mut r = std::io::BufReader::new(s);
    let (status, head, body) = read_response(&mut r).unwrap();
    assert_eq!(status, 200, "{head}");
    assert_eq!(body.len() as u64, n);
    assert!(
        body.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8),
        "output reordered"
    );
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

//! Lifecycle: graceful and immediate stop, listeners shared by two loops or mixed unix and
//! TCP, and the access log (one combined line per request, reopened on request).
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use waitressd::net::Listener;
use waitressd::server::ServerOptions;

use super::{closed_within, get, opts, read_response, TestServer};

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

/// An app whose every thread dies (panics in `run_thread`) the first time it starts.
struct DiesOnce {
    died: std::sync::Mutex<std::collections::HashSet<std::thread::ThreadId>>,
}

impl waitressd::http::app::App for DiesOnce {
    fn run_thread(&self, serve: &mut dyn FnMut()) {
        if self
            .died
            .lock()
            .unwrap()
            .insert(std::thread::current().id())
        {
            panic!("app thread dies");
        }
        serve()
    }
    fn call(
        &self,
        ex: &mut dyn waitressd::http::app::Exchange,
    ) -> Result<(), waitressd::http::app::AppFailure> {
        ex.start_response(
            "200 OK",
            vec![("Content-Length".into(), "2".into())],
            Some(2),
        );
        ex.write(b"ok")
            .map_err(|_| waitressd::http::app::AppFailure {
                traceback: String::new(),
            })
    }
}

#[test]
fn a_dead_app_thread_is_started_again_and_serves() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let app = std::sync::Arc::new(DiesOnce {
        died: Default::default(),
    });
    let (server, stop) =
        waitressd::server::Server::new(opts(), vec![Listener::Tcp(l)], app).unwrap();
    let join = std::thread::spawn(move || server.run());
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(get("/").as_bytes()).unwrap();
    let r = read_response(&mut s);
    stop.immediate();
    assert!(join.join().unwrap().is_ok());
    assert_eq!(r.map(|r| (r.0, r.2)), Some((200, b"ok".to_vec())));
}

/// A panic payload that panics again when dropped: the request machinery itself panics after
/// the app call's own guard has caught the first one.
struct Bomb;

impl Drop for Bomb {
    fn drop(&mut self) {
        panic!("the payload's drop panics too");
    }
}

struct PanicsTwice;

impl waitressd::http::app::App for PanicsTwice {
    fn call(
        &self,
        ex: &mut dyn waitressd::http::app::Exchange,
    ) -> Result<(), waitressd::http::app::AppFailure> {
        if ex.request().path() == b"/bomb" {
            std::panic::panic_any(Bomb);
        }
        ex.start_response(
            "200 OK",
            vec![("Content-Length".into(), "2".into())],
            Some(2),
        );
        ex.write(b"ok")
            .map_err(|_| waitressd::http::app::AppFailure {
                traceback: String::new(),
            })
    }
}

#[test]
fn a_panic_outside_the_app_guard_closes_that_connection_and_the_thread_serves_on() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let opts = ServerOptions {
        threads: 1,
        ..opts()
    };
    let (server, stop) = waitressd::server::Server::new(
        opts,
        vec![Listener::Tcp(l)],
        std::sync::Arc::new(PanicsTwice),
    )
    .unwrap();
    let join = std::thread::spawn(move || server.run());
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(get("/bomb").as_bytes()).unwrap();
    // Answered (the 500 went out before the second panic) and closed, or just closed: never
    // left hanging.
    let mut out = Vec::new();
    let closed = loop {
        let mut b = [0u8; 4096];
        match s.read(&mut b) {
            Ok(0) => break true,
            Ok(n) => out.extend_from_slice(&b[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => break e.kind() == std::io::ErrorKind::ConnectionReset,
        }
    };
    assert!(
        out.is_empty() || out.starts_with(b"HTTP/1.1 500"),
        "{out:?}"
    );
    let mut t = TcpStream::connect(addr).unwrap();
    t.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    t.write_all(get("/").as_bytes()).unwrap();
    let r = read_response(&mut t);
    stop.immediate();
    assert!(join.join().unwrap().is_ok());
    assert!(closed, "the connection is closed, not left hanging");
    assert_eq!(r.map(|r| r.0), Some(200), "the app thread serves on");
}

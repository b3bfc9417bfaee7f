//! Limits: header and body sizes (431, 413), `connection_limit` and eviction of idle
//! keep-alive connections and the least recently active ones, `channel_timeout` and the whole-head deadline.
use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use waitressd::server::ServerOptions;

use super::{closed_within, get, opts, read_response, TestServer};

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

/// Busy keep-alive clients are closed between their requests when a client waits at the limit
/// (idle keep-alive connections make room at once, issue 11); each retries on a new
/// connection, as HTTP allows, and none of their requests is lost. The waiting client is
/// served while they are still busy.
#[test]
fn keep_alive_clients_between_requests_make_room_at_the_limit_and_lose_nothing() {
    let srv = TestServer::start(ServerOptions {
        connection_limit: 2,
        ..opts()
    });
    let addr = srv.addr;
    let busy: Vec<_> = (0..2)
        .map(|_| {
            std::thread::spawn(move || {
                let connect = || {
                    let s = TcpStream::connect(addr).unwrap();
                    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                    s
                };
                let mut s = connect();
                let mut retries = 0;
                for _ in 0..30 {
                    let sent = s.write_all(get("/hello").as_bytes()).is_ok();
                    let r = if sent { read_response(&mut s) } else { None };
                    let r = r.or_else(|| {
                        retries += 1;
                        s = connect();
                        s.write_all(get("/hello").as_bytes()).unwrap();
                        read_response(&mut s)
                    });
                    assert_eq!(r.map(|r| r.0), Some(200), "busy client's request lost");
                    std::thread::sleep(Duration::from_millis(50));
                }
                retries
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let mut third = srv.connect();
    third.write_all(get("/query?third").as_bytes()).unwrap();
    third
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    assert_eq!(
        read_response(&mut third).map(|r| r.2),
        Some(b"third".to_vec())
    );
    let t = Instant::now();
    let retries: usize = busy.into_iter().map(|h| h.join().unwrap()).sum();
    assert!(
        t.elapsed() > Duration::from_millis(200),
        "the third client was served only after the busy ones finished"
    );
    assert!(retries >= 1, "no busy connection made room");
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

//! Framing and keep-alive: pipelining in order, HTTP/1.0 and 1.1 connection persistence,
//! `Expect: 100-continue`, HEAD, errors behind a busy request, nothing read after
//! `Connection: close` (CVE-2024-49768), and garbage input never taking the server down.
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::Ordering;
use std::time::Duration;

use waitressd::server::ServerOptions;

use super::{closed_within, get, opts, read_response, TestServer};

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

//! TLS on the real event loop, in-process: a slow handshake runs into the head deadline, a
//! garbage one is closed without reaching the app, a PROXY header comes before the handshake,
//! and a large response spilled to a file goes out encrypted and exact under back-pressure.
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use waitressd::config::edge::{CertReqs, TlsFiles};
use waitressd::http::Peers;
use waitressd::server::ServerOptions;

use super::{opts, TestServer};
use crate::tls::{certs, get};

fn tls_opts(dir: &std::path::Path) -> ServerOptions {
    let (cert, key) = certs::issue(dir, "srv", "ecdsa", false);
    let cfg = waitressd::supervisor::tls::load(&TlsFiles {
        certfile: cert,
        keyfile: key,
        ca_certs: None,
        cert_reqs: CertReqs::None,
        tls13_only: false,
        given: Default::default(),
    })
    .unwrap();
    ServerOptions {
        tls: Some(cfg),
        ..opts()
    }
}

/// True if the server closes the connection within `secs` (EOF or reset).
fn closed_within(s: &mut TcpStream, secs: u64) -> bool {
    s.set_read_timeout(Some(Duration::from_secs(secs))).unwrap();
    let mut b = [0u8; 4096];
    loop {
        match s.read(&mut b) {
            Ok(0) => return true,
            Ok(_) => continue, // an alert
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return e.kind() == std::io::ErrorKind::ConnectionReset,
        }
    }
}

#[test]
fn a_slow_handshake_runs_into_the_head_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let srv = TestServer::start(ServerOptions {
        channel_timeout: 2, // head deadline: 2 s
        ..tls_opts(dir.path())
    });
    let mut s = srv.connect();
    // The first bytes of a ClientHello record, then nothing.
    s.write_all(&[0x16, 0x03, 0x01, 0x00, 0xf0, 0x01]).unwrap();
    let t = Instant::now();
    assert!(
        closed_within(&mut s, 10),
        "a stalled handshake was never closed"
    );
    assert!(t.elapsed() >= Duration::from_secs(1));
}

#[test]
fn a_garbage_handshake_is_closed_without_reaching_the_app() {
    let dir = tempfile::tempdir().unwrap();
    let srv = TestServer::start(tls_opts(dir.path()));
    let mut s = srv.connect();
    s.write_all(b"GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    assert!(closed_within(&mut s, 5));
    assert_eq!(srv.app.calls.load(Ordering::SeqCst), 0);
}

#[test]
fn proxy_header_then_tls() {
    let dir = tempfile::tempdir().unwrap();
    let ca = certs::ca(dir.path());
    let srv = TestServer::start(ServerOptions {
        proxy_protocol: Some(Peers::parse_ips("127.0.0.1").unwrap()),
        ..tls_opts(dir.path())
    });
    let mut tcp = srv.connect();
    tcp.write_all(b"PROXY TCP4 192.0.2.9 198.51.100.7 40000 443\r\n")
        .unwrap();
    let conn = rustls::ClientConnection::new(
        certs::client(&ca, 13, None),
        "localhost".try_into().unwrap(),
    )
    .unwrap();
    let mut s = rustls::StreamOwned::new(conn, tcp);
    let (status, _, body) = get(&mut s, "/origin").unwrap();
    assert_eq!(status, 200);
    assert!(
        body.starts_with(b"192.0.2.9|40000|"),
        "{}",
        String::from_utf8_lossy(&body)
    );
}

/// A connection that opens without its PROXY header on a TLS port is closed as on a plain
/// PROXY port: no byte (it got a TLS close_notify alert, `15 03 03 00 02 01 00`, before any
/// TLS session existed), and the app never called.
#[test]
fn a_missing_proxy_header_on_a_tls_port_is_closed_without_a_tls_alert() {
    let dir = tempfile::tempdir().unwrap();
    let srv = TestServer::start(ServerOptions {
        proxy_protocol: Some(Peers::parse_ips("127.0.0.1").unwrap()),
        ..tls_opts(dir.path())
    });
    let mut s = srv.connect();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut got = Vec::new();
    let r = s.read_to_end(&mut got);
    assert!(
        got.is_empty(),
        "answered {got:02x?} ({r:?}) before any TLS session"
    );
    assert!(r.is_ok() || r.is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset));
    assert_eq!(srv.app.calls.load(Ordering::SeqCst), 0);
}

#[test]
fn a_large_spilled_response_is_exact_over_tls_under_back_pressure() {
    let dir = tempfile::tempdir().unwrap();
    let ca = certs::ca(dir.path());
    let srv = TestServer::start(ServerOptions {
        outbuf_overflow: 64 * 1024, // spills to a file: copied out with pread
        outbuf_high_watermark: 256 * 1024, // the app thread waits for the client
        ..tls_opts(dir.path())
    });
    let mut s = crate::tls::connect(&srv.addr.to_string(), certs::client(&ca, 12, None)).unwrap();
    s.write_all(b"GET /big?8000000 HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(300)); // let the output back up
    let mut got = Vec::new();
    let mut b = vec![0u8; 65536];
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = s.read(&mut b).unwrap();
        got.extend_from_slice(&b[..n]);
    }
    let end = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let mut body = got.split_off(end);
    while body.len() < 8_000_000 {
        let n = s.read(&mut b).unwrap();
        assert!(n > 0, "cut after {} bytes", body.len());
        body.extend_from_slice(&b[..n]);
    }
    assert_eq!(body.len(), 8_000_000);
    assert!(body.iter().all(|&c| c == b'x'));
    // Still usable: the next request on the same connection.
    let (status, _, body) = get(&mut s, "/hello").unwrap();
    assert_eq!((status, &body[..]), (200, &b"hello"[..]));
}

//! The PROXY protocol on the real event loop: v1 and v2 headers (whole, split byte by byte,
//! pipelined with requests), `LOCAL`, and every way a header can be refused — each refused
//! connection is closed with nothing sent and never reaches the app.
use std::io::Write;
use std::sync::atomic::Ordering;
use std::time::Duration;

use waitressd::http::Peers;
use waitressd::server::ServerOptions;

use super::{get, opts, read_response, TestServer};

/// True if the server closes the connection (EOF or reset) within `secs`, sending nothing.
fn closed_within(s: &mut std::net::TcpStream, secs: u64) -> bool {
    use std::io::Read;
    s.set_read_timeout(Some(Duration::from_secs(secs))).unwrap();
    let mut b = [0u8; 64];
    loop {
        match s.read(&mut b) {
            Ok(0) => return true,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return e.kind() == std::io::ErrorKind::ConnectionReset,
            Ok(_) => return false,
        }
    }
}

fn proxy_opts(allow: &str) -> ServerOptions {
    ServerOptions {
        proxy_protocol: Some(Peers::parse_ips(allow).unwrap()),
        ..opts()
    }
}

const V1: &[u8] = b"PROXY TCP4 192.0.2.1 198.51.100.7 51234 443\r\n";

fn v2(cmd: u8, fam: u8, addrs: &[u8]) -> Vec<u8> {
    let mut b = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    b.push(0x20 | cmd);
    b.push(fam);
    b.extend_from_slice(&(addrs.len() as u16).to_be_bytes());
    b.extend_from_slice(addrs);
    b
}

fn v2_tcp6() -> Vec<u8> {
    let mut a = Vec::new();
    a.extend_from_slice(
        &"2001:db8::7"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets(),
    );
    a.extend_from_slice(&"::1".parse::<std::net::Ipv6Addr>().unwrap().octets());
    a.extend_from_slice(&4242u16.to_be_bytes());
    a.extend_from_slice(&80u16.to_be_bytes());
    v2(1, 0x21, &a)
}

/// `/origin` answers `REMOTE_ADDR|REMOTE_PORT|SERVER_PORT`.
fn origin_after(srv: &TestServer, header: &[u8], split: bool) -> String {
    let mut s = srv.connect();
    let mut data = header.to_vec();
    data.extend_from_slice(get("/origin").as_bytes());
    if split {
        for b in &data {
            s.write_all(std::slice::from_ref(b)).unwrap();
            std::thread::sleep(Duration::from_millis(1));
        }
    } else {
        s.write_all(&data).unwrap();
    }
    let (status, _, body) = read_response(&mut s).expect("a response");
    assert_eq!(status, 200);
    String::from_utf8(body).unwrap()
}

#[test]
fn proxy_v1_and_v2_headers_set_remote_addr_whole_and_split() {
    let srv = TestServer::start(proxy_opts("127.0.0.1"));
    let port = srv.addr.port();
    for split in [false, true] {
        assert_eq!(
            origin_after(&srv, V1, split),
            format!("192.0.2.1|51234|{port}")
        );
        assert_eq!(
            origin_after(&srv, &v2_tcp6(), split),
            format!("2001:db8::7|4242|{port}")
        );
    }
}

#[test]
fn proxy_local_and_unknown_are_served_with_the_socket_addresses() {
    let srv = TestServer::start(proxy_opts("127.0.0.1"));
    for header in [v2(0, 0x00, &[]), b"PROXY UNKNOWN\r\n".to_vec()] {
        let got = origin_after(&srv, &header, false);
        let parts: Vec<&str> = got.split('|').collect();
        assert_eq!(parts[0], "127.0.0.1", "{got}");
        assert_ne!(parts[1], "51234");
    }
}

#[test]
fn proxy_header_applies_to_every_request_on_the_connection() {
    let srv = TestServer::start(proxy_opts("127.0.0.1"));
    let mut s = srv.connect();
    let mut data = V1.to_vec();
    data.extend_from_slice(get("/origin").as_bytes());
    data.extend_from_slice(get("/origin").as_bytes());
    s.write_all(&data).unwrap();
    for _ in 0..2 {
        let (status, _, body) = read_response(&mut s).unwrap();
        assert_eq!(status, 200);
        assert!(body.starts_with(b"192.0.2.1|51234|"));
    }
    // A second PROXY header later is just a bad request line.
    s.write_all(V1).unwrap();
    s.write_all(b"\r\n").unwrap();
    let (status, _, _) = read_response(&mut s).unwrap();
    assert_eq!(status, 400);
}

#[test]
fn refused_proxy_headers_close_without_reaching_the_app() {
    let srv = TestServer::start(proxy_opts("127.0.0.1"));
    let mut oversized = b"\r\n\r\n\0\r\nQUIT\n\x21\x11".to_vec();
    oversized.extend_from_slice(&60000u16.to_be_bytes());
    oversized.extend_from_slice(&[0u8; 100]);
    let cases: [(&str, Vec<u8>); 5] = [
        ("missing", get("/hello").into_bytes()),
        (
            "malformed v1",
            b"PROXY TCP4 192.0.2.1 nope 1 2\r\nGET / HTTP/1.1\r\n\r\n".to_vec(),
        ),
        (
            "v1 without CRLF",
            [b"PROXY ".as_slice(), &[b'1'; 200]].concat(),
        ),
        ("oversized v2", oversized),
        ("UDP v2", v2(1, 0x12, &[0u8; 12])),
    ];
    for (what, bytes) in cases {
        let mut s = srv.connect();
        let _ = s.write_all(&bytes);
        assert!(closed_within(&mut s, 5), "{what}: not closed");
    }
    // Truncated: the client gives up half-way.
    let mut s = srv.connect();
    s.write_all(&V1[..20]).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    assert!(closed_within(&mut s, 5), "truncated: not closed");
    assert_eq!(srv.app.calls.load(Ordering::SeqCst), 0);
}

#[test]
fn proxy_header_from_a_peer_not_allowed_is_closed() {
    let srv = TestServer::start(proxy_opts("10.0.0.0/8 ::1"));
    let mut s = srv.connect();
    let mut data = V1.to_vec();
    data.extend_from_slice(get("/hello").as_bytes());
    let _ = s.write_all(&data);
    assert!(closed_within(&mut s, 5));
    assert_eq!(srv.app.calls.load(Ordering::SeqCst), 0);
}

#[test]
fn access_log_uses_the_proxy_address() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    let mut srv = TestServer::start(ServerOptions {
        access_log: Some(log.clone()),
        ..proxy_opts("127.0.0.1")
    });
    assert!(origin_after(&srv, V1, false).starts_with("192.0.2.1|"));
    srv.stop.graceful();
    assert!(srv.wait(10));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.starts_with("192.0.2.1 - - ["), "{text}");
}

//! TLS on the real binary: handshakes with each key type over TLS 1.2 and 1.3 (rustls, and
//! Python's `ssl` as a second client), client-certificate modes and the environ they give,
//! a bad certificate at a reload (old one kept), and a SIGHUP that swaps the certificate while
//! a keep-alive TLS connection is served to its end. Bad files at start: `startup`; ALPN, the
//! client's DN and close_notify: `wire`.
pub mod certs;
mod startup;
mod wire;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::util::{bin, read_until_close, root, split_response, Daemon};

pub type TlsStream = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// Connects and completes the handshake (Err: the handshake failed).
pub fn connect(addr: &str, cfg: Arc<rustls::ClientConfig>) -> std::io::Result<TlsStream> {
    let tcp = TcpStream::connect(addr)?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    let conn = rustls::ClientConnection::new(cfg, "localhost".try_into().unwrap())
        .map_err(std::io::Error::other)?;
    let mut s = rustls::StreamOwned::new(conn, tcp);
    while s.conn.is_handshaking() {
        s.conn.complete_io(&mut s.sock)?;
    }
    Ok(s)
}

/// One keep-alive GET; (status, head, body) framed by Content-Length.
pub fn get(s: &mut impl ReadWrite, path: &str) -> std::io::Result<(u16, String, Vec<u8>)> {
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes())?;
    let mut buf = Vec::new();
    let mut b = [0u8; 4096];
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut b)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&b[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let len: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length: ")
                .map(|v| v.trim().parse().unwrap())
        })
        .unwrap_or(0);
    let mut body = buf[end..].to_vec();
    while body.len() < len {
        let n = s.read(&mut b)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        body.extend_from_slice(&b[..n]);
    }
    Ok((status, head, body))
}

pub trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

fn json(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body).unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(body)))
}

fn command(args: &[&str]) -> Command {
    command_app("tlsenv:app", args)
}

fn command_app(app: &str, args: &[&str]) -> Command {
    let mut c = Command::new(bin());
    c.args(["--app", app, "--listen", "127.0.0.1:0", "--threads", "2"])
        .args(args)
        .current_dir(root().join("tests/apps/wsgi"));
    c
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// A CA in `dir`, a server certificate of `kind` it issued, and the app served over TLS with
/// them and `extra` flags: the daemon and the CA's path.
fn serve_tls(dir: &Path, kind: &str, extra: &[&str]) -> (Daemon, std::path::PathBuf) {
    let ca = certs::ca(dir);
    let (cert, key) = certs::issue(dir, "srv", kind, false);
    let mut c = command(&["--certfile", p(&cert), "--keyfile", p(&key)]);
    c.args(extra);
    (Daemon::start_with(&mut c, 1), ca)
}

#[test]
fn tls_12_and_13_handshakes_with_each_key_type() {
    let dir = tempfile::tempdir().unwrap();
    let ca = certs::ca(dir.path());
    for kind in certs::KINDS {
        let (cert, key) = certs::issue(dir.path(), kind, kind, false);
        let d = Daemon::start_with(
            &mut command(&["--certfile", p(&cert), "--keyfile", p(&key)]),
            1,
        );
        // The listener's URL says what clients must speak (master and worker lines alike).
        assert!(
            d.urls.iter().all(|u| u.starts_with("https://")),
            "{:?}",
            d.urls
        );
        let addr = d.addr();
        for version in [12u8, 13] {
            let mut s = connect(&addr, certs::client(&ca, version, None))
                .unwrap_or_else(|e| panic!("{kind} TLS 1.{}: {e}", version % 10));
            let want = if version == 12 {
                rustls::ProtocolVersion::TLSv1_2
            } else {
                rustls::ProtocolVersion::TLSv1_3
            };
            assert_eq!(s.conn.protocol_version(), Some(want));
            assert_eq!(s.conn.alpn_protocol(), Some(&b"http/1.1"[..]));
            // Two requests on one connection (keep-alive).
            for _ in 0..2 {
                let (status, _, body) = get(&mut s, "/x").unwrap();
                assert_eq!(status, 200, "{kind}");
                let env = json(&body);
                assert_eq!(env["wsgi.url_scheme"], "https");
                assert_eq!(env["HTTPS"], "on");
                assert_eq!(env["SSL_CLIENT_VERIFY"], "NONE");
                assert_eq!(env["REMOTE_ADDR"], "127.0.0.1");
            }
        }
        // Python's ssl module, a second TLS stack.
        let port = addr.rsplit(':').next().unwrap();
        let script = format!(
            "import ssl, urllib.request as u\n\
             c = ssl.create_default_context(cafile={ca:?})\n\
             r = u.urlopen('https://localhost:{port}/py', context=c, timeout=10)\n\
             print(r.status, r.read().decode())",
            ca = p(&ca)
        );
        let out = Command::new(crate::util::venv().join("bin/python"))
            .args(["-c", &script])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.starts_with("200 ") && text.contains("\"HTTPS\": \"on\""),
            "{kind}: python ssl: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn client_certificate_modes() {
    let dir = tempfile::tempdir().unwrap();
    let ca = certs::ca(dir.path());
    let (cert, key) = certs::issue(dir.path(), "srv", "ecdsa", false);
    let (ccert, ckey) = certs::issue(dir.path(), "client", "ecdsa", true);
    let base = [
        "--certfile",
        p(&cert),
        "--keyfile",
        p(&key),
        "--ca-certs",
        p(&ca),
    ];
    // optional: without a certificate served as NONE, with one as SUCCESS and its subject.
    let d = Daemon::start_with(
        &mut command(&[&base[..], &["--cert-reqs", "optional"]].concat()),
        1,
    );
    let mut s = connect(&d.addr(), certs::client(&ca, 13, None)).unwrap();
    assert_eq!(
        json(&get(&mut s, "/").unwrap().2)["SSL_CLIENT_VERIFY"],
        "NONE"
    );
    let mut s = connect(&d.addr(), certs::client(&ca, 12, Some((&ccert, &ckey)))).unwrap();
    let env = json(&get(&mut s, "/").unwrap().2);
    assert_eq!(env["SSL_CLIENT_VERIFY"], "SUCCESS");
    let dn = env["SSL_CLIENT_S_DN"].as_str().unwrap();
    assert!(
        dn.contains("CN=client") && dn.contains("O=waitressd tests"),
        "{dn}"
    );
    drop(d);
    // required: no certificate, no request.
    let d = Daemon::start_with(
        &mut command(&[&base[..], &["--cert-reqs", "required"]].concat()),
        1,
    );
    let refused =
        connect(&d.addr(), certs::client(&ca, 13, None)).and_then(|mut s| get(&mut s, "/"));
    assert!(
        refused.is_err(),
        "served without a client certificate: {refused:?}"
    );
    let mut s = connect(&d.addr(), certs::client(&ca, 13, Some((&ccert, &ckey)))).unwrap();
    assert_eq!(get(&mut s, "/").unwrap().0, 200);
}

/// The CN of the certificate a new connection is served.
fn served_cn(addr: &str, ca: &Path) -> String {
    let s = connect(addr, certs::client(ca, 13, None)).unwrap();
    let der = s.conn.peer_certificates().unwrap()[0].clone();
    let (_, c) = x509_parser::parse_x509_certificate(der.as_ref()).unwrap();
    c.subject().to_string()
}

#[test]
fn hup_swaps_the_certificate_and_a_bad_one_keeps_the_old() {
    let dir = tempfile::tempdir().unwrap();
    let ca = certs::ca(dir.path());
    let (c1, k1) = certs::issue(dir.path(), "one", "rsa", false);
    let live_cert = dir.path().join("live.pem");
    let live_key = dir.path().join("live.key");
    std::fs::copy(&c1, &live_cert).unwrap();
    std::fs::copy(&k1, &live_key).unwrap();
    let mut d = Daemon::start_with(
        &mut command(&["--certfile", p(&live_cert), "--keyfile", p(&live_key)]),
        1,
    );
    let addr = d.addr();
    let serial = |addr: &str| {
        let s = connect(addr, certs::client(&ca, 13, None)).unwrap();
        s.conn.peer_certificates().unwrap()[0].as_ref().to_vec()
    };
    let first = serial(&addr);
    assert!(served_cn(&addr, &ca).contains("localhost"));
    let mut kept = connect(&addr, certs::client(&ca, 12, None)).unwrap();
    assert_eq!(get(&mut kept, "/").unwrap().0, 200);
    // Renewed certificate (new key, ECDSA) in place, then HUP.
    let (c2, k2) = certs::issue(dir.path(), "two", "ecdsa", false);
    std::fs::copy(&c2, &live_cert).unwrap();
    std::fs::copy(&k2, &live_key).unwrap();
    d.signal(libc::SIGHUP);
    // The connection opened before the reload is still served (by the old worker, draining).
    let (status, _, _) =
        get(&mut kept, "/").expect("keep-alive TLS connection dropped by the reload");
    assert_eq!(status, 200);
    let end = Instant::now() + Duration::from_secs(30);
    while serial(&addr) == first {
        assert!(Instant::now() < end, "new certificate never served");
        std::thread::sleep(Duration::from_millis(100));
    }
    let second = serial(&addr);
    // A bad renewal: the reload fails, says why, and the last good certificate stays.
    std::fs::write(&live_cert, "garbage\n").unwrap();
    d.signal(libc::SIGHUP);
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        let line = d
            .stderr
            .recv_timeout(end - Instant::now())
            .expect("no reload failure logged");
        if line.contains("reload failed") {
            assert!(
                line.contains("live.pem") && line.contains("no PEM CERTIFICATE"),
                "{line}"
            );
            break;
        }
    }
    assert_eq!(serial(&addr), second);
    d.signal(libc::SIGTERM);
    assert_eq!(d.wait(30), Some(0));
}

#[test]
fn file_wrapper_responses_are_exact_over_tls() {
    // Files go out through a bounded pread copy into the TLS session (no sendfile under TLS).
    let dir = tempfile::tempdir().unwrap();
    let ca = certs::ca(dir.path());
    let (cert, key) = certs::issue(dir.path(), "srv", "rsa", false);
    let d = Daemon::start_with(
        &mut command_app(
            "filewrapper:app",
            &["--certfile", p(&cert), "--keyfile", p(&key)],
        ),
        1,
    );
    let data: Vec<u8> = (0..300).flat_map(|_| 0..=255u8).collect();
    let mut s = connect(&d.addr(), certs::client(&ca, 13, None)).unwrap();
    // (path, expected body), all on one keep-alive connection
    let cases: [(&str, &[u8]); 3] = [
        ("/file/exact", &data),
        ("/file_at_100/exact", &data[100..]),
        ("/bytesio/exact", &data),
    ];
    for (path, want) in cases {
        let (status, head, body) = get(&mut s, path).unwrap();
        assert_eq!(status, 200, "{path}: {head}");
        assert!(
            body == want,
            "{path}: {} bytes, not the file's {}",
            body.len(),
            want.len()
        );
    }
}

/// Plain HTTP sent to a TLS port (a proxy or a client given `http://` by mistake) gets a plain
/// 400 saying so, as nginx does, instead of a TLS alert it cannot read; bytes that are neither
/// a TLS record nor a request line are just closed; TLS clients are served all along.
#[test]
fn plain_http_on_a_tls_port_gets_a_400_saying_so() {
    let dir = tempfile::tempdir().unwrap();
    let ca = certs::ca(dir.path());
    let (cert, key) = certs::issue(dir.path(), "srv", "ecdsa", false);
    let log = dir.path().join("access.log");
    let d = Daemon::start_with(
        &mut command(&[
            "--certfile",
            p(&cert),
            "--keyfile",
            p(&key),
            "--access-log",
            p(&log),
        ]),
        1,
    );
    let addr = d.addr();
    for method in ["GET", "POST", "OPTIONS"] {
        let mut s = TcpStream::connect(&addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            s,
            "{method} /x HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n"
        )
        .unwrap();
        // The whole answer, then a clean close.
        let (raw, end) = read_until_close(&mut s);
        assert_eq!(end, Ok(()), "{method}");
        let (status, head, body) = split_response(&raw);
        assert_eq!(status, 400, "{method}: {head}");
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .and_then(|v| v.parse().ok())
            .unwrap();
        assert_eq!(len, body.len(), "{method}: nothing after the answer");
        let body = String::from_utf8_lossy(&body);
        assert!(
            body.contains("plain HTTP request was sent to an HTTPS port"),
            "{body}"
        );
    }
    // A slow client: the record header fails on "DELET", before the method's space.
    let mut s = TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(5))).unwrap();
    for b in b"DELETE /x HTTP/1.1\r\nHost: t\r\n\r\n" {
        // Stop writing once answered: bytes sent after the close would reset it.
        if matches!(s.peek(&mut [0u8; 1]), Ok(n) if n > 0) || s.write_all(&[*b]).is_err() {
            break;
        }
    }
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    assert_eq!(split_response(&read_until_close(&mut s).0).0, 400);
    let mut s = TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"\x01\x02garbage\r\n\r\n").unwrap();
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    assert!(
        !got.starts_with(b"HTTP/"),
        "{:?}",
        String::from_utf8_lossy(&got)
    );
    let mut t = connect(&addr, certs::client(&ca, 13, None)).unwrap();
    assert_eq!(get(&mut t, "/x").unwrap().0, 200);
    // Each 400 is in the access log like the loop's other error responses (4 of them), and
    // the TLS request after them.
    let read = || std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        crate::util::eventually(10, || read().lines().count() >= 5),
        "{}",
        read()
    );
    let text = read();
    let answered: Vec<&str> = text.lines().filter(|l| l.contains("\" 400 ")).collect();
    assert_eq!(answered.len(), 4, "{text}");
    assert!(
        answered.iter().all(|l| l.starts_with("127.0.0.1 ")),
        "{text}"
    );
    assert!(text.contains("\"GET /x HTTP/1.1\" 200 "), "{text}");
}

//! TLS on the wire, on the real binary: ALPN for an HTTP/1.0-only client, the client
//! certificate's subject in RFC 4514 form (as `openssl -nameopt RFC2253` prints it), the
//! close_notify after the event loop's own error responses, and the warning for an X.509 v1
//! client certificate.
use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;

use super::{certs, command, connect, json, p, serve_tls, TlsStream};
use crate::util::{split_response, Daemon};

/// Reads to the end of the TLS stream: what came, and how it ended (`Ok` after the server's
/// close_notify; `UnexpectedEof` for a TCP EOF without one, a truncation to a strict client).
fn read_to_close(s: &mut TlsStream) -> (Vec<u8>, Result<(), std::io::ErrorKind>) {
    let mut out = Vec::new();
    let mut b = [0u8; 16384];
    loop {
        match s.read(&mut b) {
            Ok(0) => return (out, Ok(())),
            Ok(n) => out.extend_from_slice(&b[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return (out, Err(e.kind())),
        }
    }
}

/// nginx offers `http/1.1, http/1.0`: a client offering only `http/1.0` (curl --http1.0) gets
/// its response, not a `no_application_protocol` alert.
#[test]
fn a_client_offering_only_http_1_0_by_alpn_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let (d, ca) = serve_tls(dir.path(), "ecdsa", &[]);
    for version in [12u8, 13] {
        let mut cfg = (*certs::client(&ca, version, None)).clone();
        cfg.alpn_protocols = vec![b"http/1.0".to_vec()];
        let mut s = connect(&d.addr(), Arc::new(cfg))
            .unwrap_or_else(|e| panic!("TLS 1.{}: handshake refused: {e}", version % 10));
        assert_eq!(s.conn.alpn_protocol(), Some(&b"http/1.0"[..]));
        s.write_all(b"GET /x HTTP/1.0\r\nHost: localhost\r\n\r\n")
            .unwrap();
        let (raw, end) = read_to_close(&mut s);
        assert_eq!(end, Ok(()));
        let (status, head, body) = split_response(&raw);
        assert_eq!(status, 200, "{head}");
        assert_eq!(json(&body)["HTTPS"], "on");
    }
    // Both offered: http/1.1 is chosen.
    let s = connect(&d.addr(), certs::client(&ca, 13, None)).unwrap();
    assert_eq!(s.conn.alpn_protocol(), Some(&b"http/1.1"[..]));
}

/// The subject as openssl prints it with `-nameopt RFC2253` (the form mod_ssl and nginx give).
fn openssl_rfc2253(cert: &Path) -> String {
    let out = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-subject", "-nameopt", "RFC2253", "-in"])
        .arg(cert)
        .output()
        .unwrap();
    let line = String::from_utf8(out.stdout).unwrap();
    let line = line.strip_suffix('\n').unwrap_or(&line);
    line.strip_prefix("subject=").unwrap().to_string()
}

/// `SSL_CLIENT_S_DN` is RFC 4514 text: a comma inside a value is escaped, so an app splitting
/// on unescaped commas finds `CN=alice`, never the `CN=admin` a client wrote into its O.
#[test]
fn client_subject_is_rfc_4514_text_as_openssl_prints_it() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    let (d, _) = serve_tls(
        dir.path(),
        "ecdsa",
        &["--ca-certs", p(&ca), "--cert-reqs", "required"],
    );
    let dn_of = |name: &str, subj: &str| {
        let (c, k) = certs::issue_as(dir.path(), name, "ecdsa", subj, true);
        let mut s = connect(&d.addr(), certs::client(&ca, 13, Some((&c, &k)))).unwrap();
        let env = json(&super::get(&mut s, "/").unwrap().2);
        assert_eq!(env["SSL_CLIENT_VERIFY"], "SUCCESS");
        (env["SSL_CLIENT_S_DN"].as_str().unwrap().to_string(), c)
    };
    // (subject as `openssl req -subj` takes it, what the app must see)
    let cases = [
        ("/O=Evil, CN=admin/CN=alice", r"CN=alice,O=Evil\, CN=admin"),
        // A multi-valued RDN (its parts in DER order, as openssl prints them).
        (
            "/DC=org/DC=example/CN=alice+UID=42",
            "UID=42+CN=alice,DC=example,DC=org",
        ),
        // A plus sign inside a value is not a multi-valued RDN.
        ("/CN=alice\\+UID=42", r"CN=alice\+UID=42"),
        (
            r#"/C=US/ST=CA/L=SF/OU=ops/CN= #lead;semi<x>"q"\\back trail /emailAddress=a@b.c"#,
            r#"emailAddress=a@b.c,CN=\ #lead\;semi\<x\>\"q\"\\back trail\ ,OU=ops,L=SF,ST=CA,C=US"#,
        ),
    ];
    for (i, (subj, want)) in cases.iter().enumerate() {
        let (dn, c) = dn_of(&format!("c{i}"), subj);
        assert_eq!(dn, *want, "{subj}");
        assert_eq!(
            dn,
            openssl_rfc2253(&c),
            "{subj}: openssl prints it otherwise"
        );
    }
    // RFC 4514's STREET (openssl says `street`); a type without an RFC 4514 short name as its
    // OID and the hex of its DER value (UTF8String "Boss").
    let (dn, _) = dn_of("c9", "/street=1 Main/title=Boss/CN=bob");
    assert_eq!(dn, "CN=bob,2.5.4.12=#0C04426F7373,STREET=1 Main");
}

/// The 400 (and 413) the event loop writes itself end with a TLS close_notify before the FIN,
/// like every other response: a client that treats a bare TCP EOF as a truncation (rustls,
/// Python's ssl with suppress_ragged_eofs=False) reads the whole answer and a clean end.
#[test]
fn the_loops_own_error_responses_end_with_close_notify() {
    let dir = tempfile::tempdir().unwrap();
    let (d, ca) = serve_tls(dir.path(), "rsa", &["--max-request-body-size", "10"]);
    let cases: [(&[u8], u16); 2] = [
        (b"BAD\r\n\r\n", 400),
        (
            b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n0123456789",
            413,
        ),
    ];
    for (req, want) in cases {
        let mut s = connect(&d.addr(), certs::client(&ca, 13, None)).unwrap();
        s.write_all(req).unwrap();
        let (raw, end) = read_to_close(&mut s);
        let (status, head, body) = split_response(&raw);
        assert_eq!(status, want, "{head}");
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .and_then(|v| v.parse().ok())
            .unwrap();
        assert_eq!(body.len(), len, "{head}");
        assert_eq!(end, Ok(()), "{want}: the stream ended without close_notify");
    }
    // Python's ssl, strict about the end of the stream.
    let port = d.addr().rsplit(':').next().unwrap().to_string();
    let script = format!(
        "import socket, ssl\n\
         c = ssl.create_default_context(cafile={ca:?})\n\
         s = c.wrap_socket(socket.create_connection(('127.0.0.1', {port}), timeout=10),\n\
         \x20   server_hostname='localhost', suppress_ragged_eofs=False)\n\
         s.sendall(b'BAD\\r\\n\\r\\n')\n\
         got = b''\n\
         while True:\n\
         \x20   b = s.recv(4096)\n\
         \x20   if not b: break\n\
         \x20   got += b\n\
         print(got.split(b' ')[1].decode(), 'clean')",
        ca = p(&ca)
    );
    let out = std::process::Command::new(crate::util::venv().join("bin/python"))
        .args(["-c", &script])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "400 clean",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A client certificate rustls refuses for being X.509 v1 is reported at WARNING with the
/// reason (the owner must reissue it), not only at DEBUG; the handshake fails.
#[test]
fn an_x509_v1_client_certificate_is_refused_with_a_warning_saying_why() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = certs::ca(d);
    let (cert, key) = certs::issue(d, "srv", "ecdsa", false);
    // Signed by the trusted CA, but without -extfile: a version 1 certificate.
    certs::genkey(d, "ecdsa", "v1c.key");
    certs::openssl(
        d,
        &[
            "req", "-new", "-key", "v1c.key", "-subj", "/CN=old", "-out", "v1c.csr",
        ],
    );
    certs::openssl(
        d,
        &[
            "x509", "-req", "-in", "v1c.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-days", "2",
            "-out", "v1c.pem",
        ],
    );
    let daemon = Daemon::start_with(
        &mut command(&[
            "--certfile",
            p(&cert),
            "--keyfile",
            p(&key),
            "--ca-certs",
            p(&ca),
            "--cert-reqs",
            "optional",
        ]),
        1,
    );
    // Python's ssl (OpenSSL) sends a v1 certificate; a rustls client would not load it.
    let port = daemon.addr().rsplit(':').next().unwrap().to_string();
    let script = format!(
        "import ssl, urllib.request as u\n\
         c = ssl.create_default_context(cafile={ca:?})\n\
         c.load_cert_chain({cert:?}, {key:?})\n\
         try:\n\
         \x20   u.urlopen('https://localhost:{port}/', context=c, timeout=10).read()\n\
         \x20   print('served')\n\
         except Exception as e:\n\
         \x20   print('refused', e)",
        ca = p(&ca),
        cert = p(&d.join("v1c.pem")),
        key = p(&d.join("v1c.key")),
    );
    let out = std::process::Command::new(crate::util::venv().join("bin/python"))
        .args(["-c", &script])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.starts_with("refused"), "{said}");
    let end = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let line = daemon
            .stderr
            .recv_timeout(end.saturating_duration_since(std::time::Instant::now()))
            .expect("no warning about the v1 client certificate");
        if line.contains("X.509 v1") {
            assert!(
                line.contains(" WARN ") && line.contains("127.0.0.1") && line.contains("v3"),
                "{line}"
            );
            break;
        }
    }
}

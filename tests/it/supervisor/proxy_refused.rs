//! The PROXY protocol's refusals on the real binary, as the operator sees them: a connection
//! without the header (the proxy in front lacks `send-proxy`) or from a peer not in
//! `proxy_allow_ips` is closed, and the first is logged at WARNING with the fix, the rest of
//! the minute only counted; an empty `proxy_allow_ips` with `proxy_protocol` on is a config
//! error (it would close every connection).
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use super::{apps, command, start, write_ini};
use crate::util::{run, Daemon};

/// Sends a plain HTTP request; true if the server closed the connection sending nothing.
fn refused(addr: &str) -> bool {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let _ = s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    got.is_empty()
}

/// stderr lines containing `needle` that arrive within `secs`.
fn lines_with(d: &Daemon, needle: &str, secs: u64) -> Vec<String> {
    let end = Instant::now() + Duration::from_secs(secs);
    let mut found = Vec::new();
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        match d.stderr.recv_timeout(left) {
            Ok(l) if l.contains(needle) => found.push(l),
            Ok(_) => {}
            Err(_) => break,
        }
    }
    found
}

/// One worker (its reports are rate-limited per worker), with `proxy_protocol = true` and
/// `extra`; 5 plain requests are refused; (daemon, its WARNING lines about the PROXY protocol).
fn refusals(extra: &str) -> (tempfile::TempDir, Daemon, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let server = format!("listen = 127.0.0.1:0\nworkers = 1\nproxy_protocol = true\n{extra}");
    let ini = write_ini(dir.path(), "supapp:make_app", "one", &server);
    let _ = apps();
    let d = start(&ini, 1);
    for i in 0..5 {
        assert!(refused(&d.addr()), "request {i} reached the app");
    }
    let warned = lines_with(&d, "PROXY protocol: closed a connection", 3);
    (dir, d, warned)
}

/// The classic mistake, HAProxy without `send-proxy` (here: a client sending plain HTTP): the
/// first refusal is a WARNING naming the reason and the fix, the next ones in the same minute
/// are not logged (before: every refusal was logged at debug only, nothing at the default
/// level).
#[test]
fn a_missing_proxy_header_is_logged_once_at_warning_with_the_fix() {
    let (_dir, _d, warned) = refusals("");
    assert_eq!(warned.len(), 1, "{warned:#?}");
    let w = &warned[0];
    assert!(w.contains(" WARN "), "{w}");
    assert!(w.contains("no PROXY protocol header"), "{w}");
    assert!(
        w.contains("add send-proxy (or send-proxy-v2) to its server line")
            && w.contains("set proxy_protocol = false"),
        "{w}"
    );
}

/// A peer not in `proxy_allow_ips` (loopback, with only 10.0.0.0/8 allowed): the WARNING names
/// the list and how to add the proxy.
#[test]
fn a_peer_not_allowed_is_logged_once_at_warning_with_the_fix() {
    let (_dir, _d, warned) = refusals("proxy_allow_ips = 10.0.0.0/8\n");
    assert_eq!(warned.len(), 1, "{warned:#?}");
    let w = &warned[0];
    assert!(w.contains(" WARN ") && w.contains("127.0.0.1"), "{w}");
    assert!(
        w.contains("not in proxy_allow_ips")
            && w.contains("add the proxy's address to proxy_allow_ips (now \"10.0.0.0/8\")"),
        "{w}"
    );
}

/// An empty allow-list with `proxy_protocol` on would reset every connection: it is refused
/// at the start and by `--check-config`, in one line naming where, the key, the value and the
/// fix, exit 2 (before: it started and closed every connection silently).
#[test]
fn an_empty_proxy_allow_ips_with_proxy_protocol_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let server = "listen = 127.0.0.1:0\nproxy_protocol = true\nproxy_allow_ips =\n";
    let ini = write_ini(dir.path(), "supapp:make_app", "one", server);
    for check in [false, true] {
        let mut c = command(&ini);
        if check {
            c.arg("--check-config");
        }
        let out = c.output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "check={check}: {err}");
        let line = err.trim_end();
        assert!(!line.contains('\n'), "one line: {err}");
        assert!(
            line.contains("sup.ini:9: [server:main]")
                && line.contains("proxy_allow_ips = ''")
                && line.contains("set proxy_protocol = false"),
            "check={check}: {err}"
        );
    }
    // The same from the command line.
    let (code, _, err) = run(
        &[
            "--app",
            "supapp:make_app",
            "--listen",
            "127.0.0.1:0",
            "--proxy-protocol",
            "--proxy-allow-ips",
            "",
            "--check-config",
        ],
        &apps(),
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--proxy-allow-ips '': is empty while proxy_protocol is on"),
        "{err}"
    );
}

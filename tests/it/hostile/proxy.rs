//! Hostile proxy headers end to end (spec §1.7, §2.11 PR #452): untrusted `X-Forwarded-*` and
//! `Forwarded` never reach the app; trusted lists are cut to the last `trusted_proxy_count`
//! hops and the app sees only those; a malformed trusted header is a 400 with
//! `Connection: close` that never reaches the app.
use super::{start_recorder, text, Conn};
use serde_json::Value;

const HOSTILE: &str = "X-Forwarded-For: 10.6.6.6, 192.0.2.1,198.51.100.7\r\n\
    X-Forwarded-Host: evil.example, pub.example\r\n\
    X-Forwarded-Proto: https\r\nX-Forwarded-Port: 8443\r\nX-Forwarded-By: 10.0.0.9\r\n\
    Forwarded: for=10.6.6.6;host=evil.example\r\n";

/// GETs `path` with `headers` and `Connection: close`; (status, head, body).
fn get(addr: &str, path: &str, headers: &str) -> Result<(u16, String, String), String> {
    let mut conn = Conn::connect(addr)?;
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: orig.example:8080\r\n{headers}Connection: close\r\n\r\n"
    );
    conn.send(req.as_bytes());
    let r = conn.response(false)?;
    conn.expect_closed()?;
    Ok((r.status, r.head, text(&r.body)))
}

fn env(addr: &str, path: &str, headers: &str) -> Value {
    let (status, head, body) = get(addr, path, headers).unwrap();
    assert_eq!(status, 200, "{head}{body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

#[test]
fn untrusted_proxy_headers_never_reach_the_app() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = start_recorder(&dir.path().join("recorder.log"), &[]);
    let e = env(&daemon.addr(), "/px0/env", HOSTILE);
    for k in ["FOR", "HOST", "PROTO", "PORT", "BY"] {
        assert_eq!(e.get(format!("HTTP_X_FORWARDED_{k}")), None, "{e}");
    }
    assert_eq!(e.get("HTTP_FORWARDED"), None, "{e}");
    assert_eq!(e["REMOTE_ADDR"], "127.0.0.1");
    assert_eq!(e["wsgi.url_scheme"], "http");
    assert_eq!(e["HTTP_HOST"], "orig.example:8080");
}

#[test]
fn trusted_proxy_lists_are_cut_to_the_trusted_hops() {
    let dir = tempfile::tempdir().unwrap();
    let trust = |count: &'static str| {
        [
            "--trusted-proxy",
            "127.0.0.1",
            "--trusted-proxy-count",
            count,
            "--trusted-proxy-headers",
            "x-forwarded-for x-forwarded-host x-forwarded-proto x-forwarded-port",
        ]
    };
    let daemon = start_recorder(&dir.path().join("one.log"), &trust("1"));
    let e = env(&daemon.addr(), "/px1/env", HOSTILE);
    assert_eq!(e["REMOTE_ADDR"], "198.51.100.7", "{e}");
    assert_eq!(e["HTTP_X_FORWARDED_FOR"], "198.51.100.7", "{e}");
    assert_eq!(e["HTTP_X_FORWARDED_HOST"], "pub.example", "{e}");
    assert_eq!(e["SERVER_NAME"], "pub.example", "{e}");
    assert_eq!(e["SERVER_PORT"], "8443", "{e}");
    assert_eq!(e["HTTP_HOST"], "pub.example:8443", "{e}");
    assert_eq!(e["wsgi.url_scheme"], "https", "{e}");
    assert_eq!(
        e.get("HTTP_FORWARDED"),
        None,
        "untrusted Forwarded is removed: {e}"
    );
    assert_eq!(
        e.get("HTTP_X_FORWARDED_BY"),
        None,
        "untrusted X-Forwarded-By: {e}"
    );
    drop(daemon);

    // waitress joins the kept raw hops with "," (their own spacing kept).
    let daemon = start_recorder(&dir.path().join("two.log"), &trust("2"));
    let e = env(&daemon.addr(), "/px2/env", HOSTILE);
    assert_eq!(e["REMOTE_ADDR"], "192.0.2.1", "{e}");
    assert_eq!(e["HTTP_X_FORWARDED_FOR"], "192.0.2.1,198.51.100.7", "{e}");
    assert_eq!(
        e["HTTP_X_FORWARDED_HOST"], "evil.example, pub.example",
        "{e}"
    );
}

#[test]
fn a_malformed_trusted_proxy_header_is_400_and_never_reaches_the_app() {
    let dir = tempfile::tempdir().unwrap();
    // X-Forwarded-* and Forwarded cannot be trusted together: one daemon each.
    for (trusted, cases) in [
        (
            "x-forwarded-proto",
            &[
                (
                    "two protos",
                    "X-Forwarded-Proto: http, https\r\n",
                    "X-Forwarded-Proto",
                ),
                (
                    "an unknown proto",
                    "X-Forwarded-Proto: gopher\r\n",
                    "X-Forwarded-Proto",
                ),
            ][..],
        ),
        (
            "forwarded",
            &[
                ("Forwarded without =", "Forwarded: for\r\n", "Forwarded"),
                (
                    "Forwarded with spaces",
                    "Forwarded: for = 1.2.3.4\r\n",
                    "Forwarded",
                ),
                (
                    // waitress names the parameter in this one.
                    "Forwarded with an unknown proto",
                    "Forwarded: proto=gopher\r\n",
                    "Forwarded Proto=",
                ),
            ][..],
        ),
    ] {
        let log = dir.path().join(format!("{trusted}.log"));
        let args = ["--trusted-proxy", "*", "--trusted-proxy-headers", trusted];
        let daemon = start_recorder(&log, &args);
        for (what, headers, name) in cases {
            let (status, head, body) = get(&daemon.addr(), "/px3/env", headers).unwrap();
            assert_eq!(status, 400, "{what}: {head}{body}");
            assert!(head.contains("Connection: close"), "{what}: {head}");
            // waitress's middleware answers with its own error's Content-Type.
            assert!(
                head.lines()
                    .any(|l| l.trim_end() == "Content-Type: text/plain; charset=utf-8"),
                "{what}: {head}"
            );
            assert_eq!(
                body,
                format!(
                    "Bad Request\r\n\r\nHeader \"{name}\" malformed.\r\n\r\n(generated by server)"
                ),
                "{what}"
            );
        }
        drop(daemon);
        let recorded = std::fs::read_to_string(&log).unwrap_or_default();
        assert!(
            recorded.is_empty(),
            "a malformed request reached the app:\n{recorded}"
        );
    }
}

//! Trusted proxy examples from the waitress reference (§1.7) and waitress's own test shapes.
use super::*;
use crate::http::{Origin, RequestParser};

fn request(headers: &[(&str, &str)]) -> Request {
    let mut raw = b"GET / HTTP/1.1\r\nHost: orig.example:8080\r\n".to_vec();
    for (n, v) in headers {
        raw.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
    }
    raw.extend_from_slice(b"\r\n");
    let (mut req, _, _) = RequestParser::parse_complete(&raw).unwrap();
    req.origin = Origin {
        peer_ip: Some("127.0.0.1".parse().unwrap()),
        remote_addr: "127.0.0.1".into(),
        remote_port: "50000".into(),
        server_name: "waitress.invalid".into(),
        server_port: "8080".into(),
        url_scheme: "http".into(),
        tls: None,
    };
    req
}

fn example() -> Request {
    request(&[
        ("X-Forwarded-For", "192.0.2.1, 198.51.100.7"),
        ("X-Forwarded-Host", "pub.example"),
        ("X-Forwarded-Proto", "https"),
        ("X-Forwarded-Port", "8443"),
    ])
}

fn settings(proxy: Option<&str>, count: usize, headers: &[&str]) -> ProxySettings {
    ProxySettings {
        trusted_proxy: proxy.map(|p| crate::http::Peers::parse(p).unwrap()),
        trusted_proxy_count: count,
        trusted_proxy_headers: headers.iter().map(|h| h.to_string()).collect(),
        log_untrusted_proxy_headers: false,
        clear_untrusted_proxy_headers: true,
    }
}

fn header(req: &Request, name: &str) -> Option<String> {
    req.header(name.as_bytes())
        .map(|v| v.iter().map(|&c| c as char).collect())
}

#[test]
fn spec_example_default_config_removes_all_proxy_headers_and_changes_nothing() {
    let mut req = example();
    let before = req.origin.clone();
    let out = apply(&mut req, &settings(None, 1, &[])).unwrap();
    assert_eq!(req.origin, before);
    assert_eq!(req.headers().count(), 1, "only Host is left");
    assert_eq!(header(&req, "host").as_deref(), Some("orig.example:8080"));
    assert!(
        out.warnings.is_empty(),
        "log_untrusted_proxy_headers is off"
    );
}

#[test]
fn spec_example_trusted_proxy_alone_honours_only_x_forwarded_proto() {
    let mut req = example();
    apply(&mut req, &settings(Some("127.0.0.1"), 1, &[])).unwrap();
    assert_eq!(req.origin.url_scheme, "https");
    assert_eq!(req.origin.server_port, "443");
    assert_eq!(req.origin.remote_addr, "127.0.0.1");
    assert_eq!(req.origin.server_name, "waitress.invalid");
    assert_eq!(header(&req, "x-forwarded-proto").as_deref(), Some("https"));
    assert_eq!(header(&req, "x-forwarded-for"), None);
}

#[test]
fn spec_example_trusting_for_host_proto_port_count_1() {
    let mut req = example();
    let s = settings(
        Some("127.0.0.1"),
        1,
        &[
            "x-forwarded-for",
            "x-forwarded-host",
            "x-forwarded-proto",
            "x-forwarded-port",
        ],
    );
    apply(&mut req, &s).unwrap();
    assert_eq!(req.origin.remote_addr, "198.51.100.7");
    assert_eq!(req.origin.server_name, "pub.example");
    assert_eq!(req.origin.server_port, "8443");
    assert_eq!(req.origin.url_scheme, "https");
    assert_eq!(header(&req, "host").as_deref(), Some("pub.example:8443"));
    // PR #452 (3.0.2): the app sees only the trusted hops.
    assert_eq!(
        header(&req, "x-forwarded-for").as_deref(),
        Some("198.51.100.7")
    );
}

#[test]
fn spec_example_count_2_takes_the_older_hop() {
    let mut req = example();
    let s = settings(
        Some("*"),
        2,
        &[
            "x-forwarded-for",
            "x-forwarded-host",
            "x-forwarded-proto",
            "x-forwarded-port",
        ],
    );
    apply(&mut req, &s).unwrap();
    assert_eq!(req.origin.remote_addr, "192.0.2.1");
    assert_eq!(
        header(&req, "x-forwarded-for").as_deref(),
        Some("192.0.2.1, 198.51.100.7")
    );
}

#[test]
fn pr_452_trusted_headers_are_rewritten_to_the_trusted_hops() {
    let mut req = request(&[
        ("X-Forwarded-For", "10.0.0.1, 192.0.2.1, 198.51.100.7"),
        (
            "X-Forwarded-Host",
            "evil.example, pub.example, inner.example",
        ),
        (
            "Forwarded",
            "for=1.1.1.1, for=2.2.2.2;host=a.example, for=3.3.3.3",
        ),
    ]);
    let s = settings(
        Some("127.0.0.1"),
        2,
        &["x-forwarded-for", "x-forwarded-host"],
    );
    apply(&mut req, &s).unwrap();
    assert_eq!(
        header(&req, "x-forwarded-for").as_deref(),
        Some("192.0.2.1, 198.51.100.7")
    );
    assert_eq!(
        header(&req, "x-forwarded-host").as_deref(),
        Some("pub.example, inner.example")
    );
    assert_eq!(
        header(&req, "forwarded"),
        None,
        "untrusted Forwarded is cleared"
    );
    let mut req = request(&[(
        "Forwarded",
        "for=1.1.1.1, for=2.2.2.2;host=a.example, for=3.3.3.3",
    )]);
    apply(&mut req, &settings(Some("127.0.0.1"), 2, &["forwarded"])).unwrap();
    assert_eq!(
        header(&req, "forwarded").as_deref(),
        Some("for=2.2.2.2;host=a.example, for=3.3.3.3")
    );
    assert_eq!(
        req.origin.remote_addr, "2.2.2.2",
        "oldest trusted element wins"
    );
    assert_eq!(req.origin.server_name, "a.example");
    assert_eq!(header(&req, "host").as_deref(), Some("a.example"));
}

#[test]
fn forwarded_takes_priority_and_untrusts_x_forwarded() {
    let mut req = request(&[
        ("X-Forwarded-Proto", "http"),
        ("X-Forwarded-Port", "9000"),
        (
            "Forwarded",
            "for=\"[2001:db8::1]:4711\";host=\"example.com:8443\";proto=https;x=y",
        ),
    ]);
    let s = settings(
        Some("127.0.0.1"),
        1,
        &["forwarded", "x-forwarded-proto", "x-forwarded-port"],
    );
    let out = apply(&mut req, &s).unwrap();
    assert_eq!(out.warnings, vec!["Unknown Forwarded token: x".to_string()]);
    assert_eq!(req.origin.url_scheme, "https");
    assert_eq!(req.origin.server_name, "example.com");
    assert_eq!(req.origin.server_port, "8443");
    assert_eq!(req.origin.remote_addr, "2001:db8::1");
    assert_eq!(req.origin.remote_port, "4711");
    assert_eq!(header(&req, "host").as_deref(), Some("example.com:8443"));
    assert_eq!(header(&req, "x-forwarded-proto"), None);
    assert_eq!(header(&req, "x-forwarded-port"), None);
}

#[test]
fn ipv6_x_forwarded_for_with_port_keeps_waitress_quirk() {
    let mut req = request(&[("X-Forwarded-For", "\"[2001:db8::1]:4711\"")]);
    apply(
        &mut req,
        &settings(Some("127.0.0.1"), 1, &["x-forwarded-for"]),
    )
    .unwrap();
    assert_eq!(req.origin.remote_addr, "[2001:db8::1]:4711");
    let mut req = request(&[("X-Forwarded-For", "2001:db8::2")]);
    apply(
        &mut req,
        &settings(Some("127.0.0.1"), 1, &["x-forwarded-for"]),
    )
    .unwrap();
    assert_eq!(req.origin.remote_addr, "2001:db8::2");
    let mut req = request(&[("X-Forwarded-For", "192.0.2.9:1234")]);
    apply(
        &mut req,
        &settings(Some("127.0.0.1"), 1, &["x-forwarded-for"]),
    )
    .unwrap();
    assert_eq!(
        (
            req.origin.remote_addr.as_str(),
            req.origin.remote_port.as_str()
        ),
        ("192.0.2.9", "1234")
    );
}

#[test]
fn host_port_rules() {
    for (xfh, proto, port, want_host, want_name, want_port) in [
        (
            "pub.example",
            "https",
            "443",
            "pub.example",
            "pub.example",
            "443",
        ),
        (
            "pub.example",
            "http",
            "443",
            "pub.example:443",
            "pub.example",
            "443",
        ),
        (
            "pub.example",
            "https",
            "80",
            "pub.example:80",
            "pub.example",
            "80",
        ),
        (
            "pub.example:9000",
            "https",
            "8443",
            "pub.example:9000",
            "pub.example",
            "9000",
        ),
        ("[::1]", "http", "", "[::1]", "[::1]", "80"),
    ] {
        let mut headers = vec![("X-Forwarded-Host", xfh), ("X-Forwarded-Proto", proto)];
        if !port.is_empty() {
            headers.push(("X-Forwarded-Port", port));
        }
        let mut req = request(&headers);
        let s = settings(
            Some("127.0.0.1"),
            1,
            &["x-forwarded-host", "x-forwarded-proto", "x-forwarded-port"],
        );
        apply(&mut req, &s).unwrap();
        assert_eq!(
            header(&req, "host").as_deref(),
            Some(want_host),
            "{xfh} {proto} {port}"
        );
        assert_eq!(req.origin.server_name, want_name);
        assert_eq!(req.origin.server_port, want_port);
    }
}

#[test]
fn malformed_headers_give_the_400_body_and_log_line() {
    for (headers, trusted, name, reason, value) in [
        (
            vec![("X-Forwarded-Proto", "https,http")],
            "x-forwarded-proto",
            "X-Forwarded-Proto",
            "Unspecified behavior for multiple values found in header",
            "https,http",
        ),
        (
            vec![("X-Forwarded-Proto", "ftp")],
            "x-forwarded-proto",
            "X-Forwarded-Proto",
            "unsupported proto value",
            "ftp",
        ),
        (
            vec![("X-Forwarded-Port", "1, 2")],
            "x-forwarded-port",
            "X-Forwarded-Port",
            "Unspecified behavior for multiple values found in header",
            "1, 2",
        ),
        (
            vec![("X-Forwarded-For", "\"1.2.3.4")],
            "x-forwarded-for",
            "X-Forwarded-For",
            "Invalid quoting in value",
            "\"1.2.3.4",
        ),
        (
            vec![("Forwarded", "for")],
            "forwarded",
            "Forwarded",
            "Invalid forwarded-pair missing \"=\"",
            "for",
        ),
        (
            vec![("Forwarded", "for =1.2.3.4")],
            "forwarded",
            "Forwarded",
            "Token may not be surrounded by whitespace",
            "for =1.2.3.4",
        ),
        (
            vec![("Forwarded", "for= 1.2.3.4")],
            "forwarded",
            "Forwarded",
            "Value may not be surrounded by whitespace",
            "for= 1.2.3.4",
        ),
        (
            vec![("Forwarded", "proto=FTP")],
            "forwarded",
            "Forwarded Proto=",
            "unsupported proto value",
            "ftp",
        ),
    ] {
        let mut req = request(&headers);
        let e = apply(&mut req, &settings(Some("127.0.0.1"), 1, &[trusted])).unwrap_err();
        assert_eq!(
            (e.header.as_str(), e.reason.as_str(), e.value.as_str()),
            (name, reason, value)
        );
        assert_eq!(
            e.log_line(),
            format!(
                "Malformed proxy header \"{name}\" from \"127.0.0.1\": {reason} value: {value}"
            )
        );
        assert_eq!(
            e.body(),
            format!("Bad Request\r\n\r\nHeader \"{name}\" malformed.\r\n\r\n(generated by server)")
                .into_bytes()
        );
    }
}

#[test]
fn untrusted_peer_headers_are_cleared_with_warning_when_asked() {
    let mut req = example();
    req.origin.peer_ip = Some("10.9.9.9".parse().unwrap());
    req.origin.remote_addr = "10.9.9.9".into();
    let mut s = settings(Some("127.0.0.1"), 1, &["x-forwarded-for"]);
    s.log_untrusted_proxy_headers = true;
    let out = apply(&mut req, &s).unwrap();
    assert_eq!(
        out.warnings,
        vec!["Removed untrusted headers (X-Forwarded-For, X-Forwarded-Host, X-Forwarded-Proto, X-Forwarded-Port). Waitress recommends these be removed upstream.".to_string()]
    );
    assert_eq!(req.origin.remote_addr, "10.9.9.9");
    // Clearing off: untrusted headers stay.
    let mut req = example();
    let mut s = settings(None, 1, &[]);
    s.clear_untrusted_proxy_headers = false;
    apply(&mut req, &s).unwrap();
    assert_eq!(req.headers().count(), 5);
    assert!(!s.active());
}

#[test]
fn never_panics_on_arbitrary_proxy_values() {
    let alphabet = b"\"\\,;=: []\t.abf0189forhostprotoby\x85\xa0httpsHTTP";
    let all = [
        "x-forwarded-for",
        "x-forwarded-host",
        "x-forwarded-proto",
        "x-forwarded-port",
        "x-forwarded-by",
        "forwarded",
    ];
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for round in 0..2000 {
        let mut values = Vec::new();
        for _ in 0..6 {
            let len = (next() % 24) as usize;
            let v: String = (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize] as char)
                .collect();
            values.push(v.trim_matches([' ', '\t']).to_string());
        }
        let names = [
            "X-Forwarded-For",
            "X-Forwarded-Host",
            "X-Forwarded-Proto",
            "X-Forwarded-Port",
            "X-Forwarded-By",
            "Forwarded",
        ];
        let mut raw = b"GET / HTTP/1.1\r\nHost: h\r\n".to_vec();
        for (n, v) in names.iter().zip(&values) {
            raw.extend_from_slice(n.as_bytes());
            raw.extend_from_slice(b": ");
            raw.extend(v.chars().map(|c| c as u32 as u8));
            raw.extend_from_slice(b"\r\n");
        }
        raw.extend_from_slice(b"\r\n");
        let Ok((mut req, _, _)) = RequestParser::parse_complete(&raw) else {
            continue;
        };
        req.origin.peer_ip = Some("127.0.0.1".parse().unwrap());
        req.origin.remote_addr = "127.0.0.1".into();
        let s = settings(Some("*"), round % 3, &all);
        let _ = apply(&mut req, &s);
    }
}

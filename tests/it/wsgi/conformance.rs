//! waitress's functional-test behaviours, in-process: the real event loop and WSGI bridge over
//! loopback sockets, one fixture app per server.
// Test tables are tuples of expectations.
#![allow(clippy::type_complexity)]

use super::{closed, connect, json, read_response, request, send, serve};
use crate::util;

#[test]
fn echo_environ_of_a_get() {
    let s = serve("echo:app", |_| {});
    let r = request(
        &s.addr,
        b"GET /a/%62c?x=1&y=%20 HTTP/1.1\r\nHost: example.com\r\nX-Custom: v\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 200);
    let m = json(&r.body);
    let port = s.addr.rsplit(':').next().unwrap();
    let cases: &[(&str, serde_json::Value)] = &[
        ("method", "GET".into()),
        ("path_info", "/a/bc".into()),
        ("script_name", "".into()),
        ("query_string", "x=1&y=%20".into()),
        ("request_uri", "/a/%62c?x=1&y=%20".into()),
        ("content_length", serde_json::Value::Null),
        ("scheme", "http".into()),
        ("remote_addr", "127.0.0.1".into()),
        ("remote_host", "127.0.0.1".into()),
        ("server_port", port.into()),
        ("server_name", "waitress.invalid".into()),
        ("server_protocol", "HTTP/1.1".into()),
        ("server_software", "waitress".into()),
        ("input_terminated", true.into()),
        ("multithread", true.into()),
        ("multiprocess", false.into()),
        ("run_once", false.into()),
        ("version", serde_json::json!([1, 0])),
        ("client_disconnected", false.into()),
        ("str_keys", true.into()),
    ];
    for (k, want) in cases {
        assert_eq!(&m[k], want, "{k}");
    }
    assert_eq!(m["headers"]["HOST"], "example.com");
    assert_eq!(m["headers"]["X_CUSTOM"], "v");
    assert!(m["remote_port"].as_str().unwrap().parse::<u16>().is_ok());
}

/// (request, CONTENT_LENGTH seen, body echoed) — by length, chunked, and empty.
#[test]
fn echo_request_bodies_table() {
    let s = serve("echo:app", |_| {});
    let cases: &[(&[u8], &str, &[u8])] = &[
        (
            b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello",
            "5",
            b"hello",
        ),
        (
            b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n",
            "7",
            b"abcdefg",
        ),
        (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n", "0", b""),
    ];
    for &(raw, cl, body) in cases {
        let r = request(&s.addr, raw);
        assert_eq!(r.status, 200);
        let m = json(&r.body);
        assert_eq!(m["content_length"], cl, "{}", String::from_utf8_lossy(raw));
        assert!(r.body.ends_with(body));
        assert_eq!(m["body_length"], body.len());
    }
}

/// A body larger than `inbuf_overflow` is spilled to a file by the server; wsgi.input reads
/// it the same (read, readline, iteration).
#[test]
fn spilled_bodies_read_like_small_ones() {
    let s = serve("echo:lines", |o| o.inbuf_overflow = 1000);
    let mut body = Vec::new();
    for i in 0..2000 {
        body.extend_from_slice(format!("line {i:05}\n").as_bytes());
    }
    let mut raw = format!(
        "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    raw.extend_from_slice(&body);
    let r = request(&s.addr, &raw);
    assert_eq!(r.status, 200);
    assert_eq!(
        String::from_utf8_lossy(&r.body),
        format!("11 1999 {}", body.len() - 11)
    );

    let s = serve("echo:app", |o| o.inbuf_overflow = 1000);
    let r = request(&s.addr, &raw);
    assert_eq!(json(&r.body)["body_length"], body.len());
    assert!(r.body.ends_with(&body));
}

#[test]
fn keep_alive_serves_several_requests_with_bodies() {
    let s = serve("echo:app", |_| {});
    let mut c = connect(&s.addr);
    for body in ["one", "second", ""] {
        let raw = format!(
            "POST /k HTTP/1.1\r\nHost: h\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        send(&mut c, raw.as_bytes());
        let r = read_response(&mut c).expect("response on the kept-alive connection");
        assert_eq!(r.status, 200);
        assert!(r.body.ends_with(body.as_bytes()));
        assert_eq!(r.header("connection"), None);
    }
}

/// waitress NoContentLengthTests / BadContentLengthTests / WriteCallbackTests:
/// (request line path, HTTP version, body sent, Content-Length, chunked, closed after).
/// Chunked HTTP/1.1 responses keep the connection (a deliberate waitressd difference).
#[test]
fn content_length_rules_table() {
    let s = serve("responses:app", |_| {});
    let body = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let cases: &[(&str, &str, &[u8], Option<&str>, bool, bool)] = &[
        ("/nocl/list", "1.1", body, Some("36"), false, false),
        ("/nocl/list_lentwo", "1.1", body, None, true, false),
        ("/nocl/gen", "1.1", body, None, true, false),
        ("/nocl/gen", "1.0", body, None, false, true),
        ("/nocl/list", "1.0", body, Some("36"), false, true),
        (
            "/cl/underscore",
            "1.1",
            b"abcdefghij",
            Some("10"),
            false,
            false,
        ),
        ("/cl/twice", "1.1", b"abcdefghij", Some("10"), false, false),
        (
            "/badcl/short_body",
            "1.1",
            b"abcdefghi",
            Some("10"),
            false,
            true,
        ),
        (
            "/badcl/long_body",
            "1.1",
            b"abcdefgh",
            Some("8"),
            false,
            false,
        ),
        (
            "/writecb/short_body",
            "1.1",
            b"abcdefgh",
            Some("9"),
            false,
            true,
        ),
        (
            "/writecb/long_body",
            "1.1",
            b"abcdefghi",
            Some("9"),
            false,
            false,
        ),
        (
            "/writecb/equal_body",
            "1.1",
            b"abcdefghi",
            Some("9"),
            false,
            false,
        ),
        (
            "/writecb/no_content_length",
            "1.1",
            b"abcdefghi",
            None,
            true,
            false,
        ),
    ];
    for &(path, version, want, cl, chunked, close) in cases {
        let mut c = connect(&s.addr);
        let raw = format!(
            "POST {path} HTTP/{version}\r\nHost: h\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        send(&mut c, raw.as_bytes());
        send(&mut c, body);
        let r = read_response(&mut c).unwrap_or_else(|| panic!("{path} {version}"));
        assert_eq!(r.status, 200, "{path} {version}");
        assert_eq!(r.body, want, "{path} {version}");
        assert_eq!(r.header("content-length"), cl, "{path} {version}");
        assert_eq!(
            r.header("transfer-encoding") == Some("chunked"),
            chunked,
            "{path} {version}"
        );
        if close {
            assert!(closed(&mut c), "{path} {version}: connection closed");
        } else {
            send(&mut c, b"GET /badcl/equal HTTP/1.1\r\nHost: h\r\n\r\n");
            let again = read_response(&mut c);
            assert_eq!(
                again.map(|r| r.body),
                Some(b"abcdefghi".to_vec()),
                "{path}: kept alive"
            );
        }
    }
}

#[test]
fn app_exception_before_the_head_is_a_500() {
    for expose in [false, true] {
        let s = serve("error:app", |o| o.expose_tracebacks = expose);
        for version in ["1.0", "1.1"] {
            for path in ["/before_start_response", "/after_start_response"] {
                let mut c = connect(&s.addr);
                send(
                    &mut c,
                    format!("GET {path} HTTP/{version}\r\nHost: h\r\n\r\n").as_bytes(),
                );
                let r = read_response(&mut c).unwrap();
                assert_eq!(r.status, 500, "{path}");
                assert_eq!(r.version, format!("HTTP/{version}"));
                assert_eq!(r.header("connection"), Some("close"));
                let body = String::from_utf8(r.body.clone()).unwrap();
                assert!(body.starts_with("Internal Server Error"), "{body}");
                assert_eq!(
                    body.contains("Traceback (most recent call last)"),
                    expose,
                    "{body}"
                );
                if expose && path == "/before_start_response" {
                    assert!(body.contains("ValueError: wrong \u{20ac}"), "{body}");
                }
                assert!(closed(&mut c));
            }
        }
    }
}

/// waitress InternalServerErrorTests: after the head went out the connection is cut (a
/// chunked body without its terminator).
#[test]
fn app_exception_after_the_head_cuts_the_connection() {
    let s = serve("error:app", |_| {});
    for path in ["/after_write_cb", "/in_generator"] {
        let mut c = connect(&s.addr);
        send(
            &mut c,
            format!("GET {path} HTTP/1.1\r\nHost: h\r\n\r\n").as_bytes(),
        );
        let r = read_response(&mut c).unwrap_or_else(|| panic!("{path}: a head"));
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.body, b"", "{path}");
        assert!(closed(&mut c), "{path}");
    }
    let raw = util::exchange(
        &s.addr,
        b"GET /in_generator_after_bytes HTTP/1.1\r\nHost: h\r\n\r\n",
        30,
    );
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    assert!(text.contains("partial"), "{text}");
    assert!(
        !text.ends_with("0\r\n\r\n"),
        "no chunked terminator: {text}"
    );
}

/// waitress FileWrapperTests: (path, Content-Length, body length) for HTTP/1.1 and 1.0.
#[test]
fn file_wrapper_table() {
    let s = serve("filewrapper:app", |_| {});
    let n = 76800usize;
    let data: Vec<u8> = (0..300).flat_map(|_| 0..=255u8).collect();
    let long = (n + 10).to_string();
    let cases: &[(&str, Option<&str>, usize)] = &[
        ("/file/exact", Some("76800"), n),
        ("/file/nocl", Some("76800"), n),
        ("/file/short", Some("1"), 1),
        ("/file/long", Some("76800"), n),
        ("/kinda/exact", Some("76800"), n),
        ("/iobase/exact", Some("76800"), n),
        ("/kinda/nocl", None, n),
        ("/kinda/short", Some("1"), 1),
        ("/kinda/long", Some(&long), n),
    ];
    for version in ["1.1", "1.0"] {
        for &(path, cl, len) in cases {
            let mut c = connect(&s.addr);
            send(
                &mut c,
                format!("GET {path} HTTP/{version}\r\nHost: h\r\n\r\n").as_bytes(),
            );
            let r = read_response(&mut c).unwrap_or_else(|| panic!("{path}"));
            assert_eq!(r.status, 200, "{path} {version}");
            assert_eq!(r.header("content-length"), cl, "{path} {version}");
            assert_eq!(r.body, &data[..len], "{path} {version}");
        }
    }
}

/// waitress SleepyThreadTests without timing: two requests must be inside the app at the same
/// time to pass its barrier, which needs a second app thread while the first one waits.
#[test]
fn a_waiting_request_does_not_block_others() {
    let s = serve("sleepy:app", |o| o.threads = 2);
    let addr = s.addr.clone();
    let waiter =
        std::thread::spawn(move || request(&addr, b"GET /wait HTTP/1.1\r\nHost: h\r\n\r\n"));
    let r = request(&s.addr, b"GET /release HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(r.body, b"released the waiter");
    let w = waiter.join().unwrap();
    assert_eq!(w.body, b"released");
}

#[test]
fn wsgiref_validator_passes_over_the_wire() {
    let s = serve("validated:app", |_| {});
    let r = request(&s.addr, b"GET /v HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!((r.status, r.body.as_slice()), (200, &b"ok:"[..]));
    let r = request(
        &s.addr,
        b"POST /v HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nContent-Type: text/plain\r\n\r\ndata",
    );
    assert_eq!((r.status, r.body.as_slice()), (200, &b"ok:data"[..]));
}

#[test]
fn flask_app_in_process() {
    let s = serve("flaskapp:app", |_| {});
    let r = request(&s.addr, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(
        (r.status, r.body.as_slice()),
        (200, &b"hello from flask"[..])
    );
    let r = request(
        &s.addr,
        b"POST /echo HTTP/1.1\r\nHost: h\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 7\r\n\r\na=1&b=2",
    );
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["form"], serde_json::json!({"a": "1", "b": "2"}));
}

#[test]
fn url_prefix_sets_script_name() {
    let s = serve("echo:app", |o| o.url_prefix = "/pre".into());
    let cases = [
        ("/pre/x", "/pre", "/x"),
        ("/pre", "/pre", ""),
        ("/prefix", "/pre", "/prefix"),
    ];
    for (path, script, info) in cases {
        let r = request(
            &s.addr,
            format!("GET {path} HTTP/1.1\r\nHost: h\r\n\r\n").as_bytes(),
        );
        let m = json(&r.body);
        assert_eq!(
            (m["script_name"].as_str(), m["path_info"].as_str()),
            (Some(script), Some(info)),
            "{path}"
        );
    }
}

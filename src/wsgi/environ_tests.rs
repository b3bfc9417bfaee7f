//! Tests of the environ builder (waitress §3.8 keys and values).
use super::*;
use crate::http::RequestParser;
use crate::wsgi::testing::{python, request};

fn template(py: Python<'_>, prefix: &str) -> Template {
    Template::new(
        py,
        Constants {
            url_prefix: prefix,
            ident: Some("waitress"),
            multiprocess: false,
            errors: py.None().into_bound(py),
            file_wrapper: py.None().into_bound(py),
        },
    )
    .unwrap()
}

fn item(env: &Bound<'_, PyDict>, k: &str) -> Option<String> {
    env.get_item(k).unwrap().map(|v| v.to_string())
}

#[test]
fn url_prefix_table() {
    python(|py| {
        // (prefix, request path, SCRIPT_NAME, PATH_INFO) — waitress task.py, verified cases.
        let cases = [
            ("", "/a//b", "", "/a//b"),
            ("/foo", "/foo", "/foo", ""),
            ("/foo", "/foo/bar", "/foo", "/bar"),
            ("/foo", "/foobar", "/foo", "/foobar"),
            ("/foo", "/FOO/bar", "/foo", "/FOO/bar"),
            ("/foo", "/", "/foo", "/"),
        ];
        for (prefix, path, script, info) in cases {
            let t = template(py, prefix);
            let env = t
                .build(py, &request("GET", path, &[]), &mut ThreadMemo::default())
                .unwrap();
            assert_eq!(
                item(&env, "SCRIPT_NAME").as_deref(),
                Some(script),
                "{prefix} {path}"
            );
            assert_eq!(
                item(&env, "PATH_INFO").as_deref(),
                Some(info),
                "{prefix} {path}"
            );
        }
    });
}

#[test]
fn headers_become_http_keys_and_content_keys() {
    python(|py| {
        let t = template(py, "");
        let (mut req, _, _) = RequestParser::parse_complete(
            b"POST /p HTTP/1.1\r\nHost: h\r\nUser-Agent: x\r\ncontent-type: text/plain\r\n\
              Transfer-Encoding: chunked\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        )
        .unwrap();
        req.origin = request("GET", "/", &[]).origin;
        let mut memo = ThreadMemo::default();
        let env = t.build(py, &req, &mut memo).unwrap();
        let cases = [
            ("HTTP_USER_AGENT", Some("x")),
            ("HTTP_HOST", Some("h")),
            ("HTTP_TRANSFER_ENCODING", None),
            ("CONTENT_TYPE", Some("text/plain")),
            ("CONTENT_LENGTH", Some("5")),
            ("HTTP_CONTENT_LENGTH", None),
            ("HTTP_CONTENT_TYPE", None),
            ("HTTP_X_FORWARDED_FOR", Some("1.2.3.4")),
            ("REQUEST_METHOD", Some("POST")),
            ("SERVER_PROTOCOL", Some("HTTP/1.1")),
            ("SERVER_NAME", Some("waitress.invalid")),
            ("SERVER_PORT", Some("8080")),
            ("REMOTE_ADDR", Some("127.0.0.1")),
            ("REMOTE_HOST", Some("127.0.0.1")),
            ("REMOTE_PORT", Some("5555")),
            ("wsgi.url_scheme", Some("http")),
            ("SERVER_SOFTWARE", Some("waitress")),
            ("wsgi.multithread", Some("True")),
            ("wsgi.multiprocess", Some("False")),
            ("wsgi.run_once", Some("False")),
            ("wsgi.input_terminated", Some("True")),
            ("wsgi.version", Some("(1, 0)")),
        ];
        for (k, want) in cases {
            assert_eq!(item(&env, k).as_deref(), want, "{k}");
        }
        // A second request reuses the cached key objects.
        let env2 = t.build(py, &req, &mut memo).unwrap();
        assert_eq!(item(&env2, "HTTP_USER_AGENT").as_deref(), Some("x"));
    });
}

#[test]
fn values_are_latin1_native_strings() {
    python(|py| {
        let t = template(py, "");
        let (mut req, _, _) =
            RequestParser::parse_complete(b"GET /caf%E9?q=%FF HTTP/1.0\r\nX-Name: caf\xe9\r\n\r\n")
                .unwrap();
        req.origin = request("GET", "/", &[]).origin;
        let env = t.build(py, &req, &mut ThreadMemo::default()).unwrap();
        let cases = [
            ("PATH_INFO", "/caf\u{e9}"),
            ("QUERY_STRING", "q=%FF"),
            ("REQUEST_URI", "/caf%E9?q=%FF"),
            ("SERVER_PROTOCOL", "HTTP/1.0"),
            ("HTTP_X_NAME", "caf\u{e9}"),
        ];
        for (k, want) in cases {
            assert_eq!(item(&env, k).as_deref(), Some(want), "{k}");
        }
        assert!(item(&env, "CONTENT_LENGTH").is_none());
        assert!(item(&env, "CONTENT_TYPE").is_none());
    });
}

fn as_map(env: &Bound<'_, PyDict>) -> Vec<(String, String)> {
    env.iter()
        .map(|(k, v)| (k.to_string(), v.repr().unwrap().to_string()))
        .collect()
}

#[test]
fn cached_bases_and_values_agree_with_a_cold_build() {
    python(|py| {
        let t = template(py, "/app");
        let other = template(py, "");
        let tls = std::sync::Arc::new(crate::http::TlsInfo {
            client_s_dn: Some("CN=c".into()),
            client_verify: "SUCCESS",
        });
        let long = "v".repeat(LAST_STR_MAX + 1);
        let reqs: Vec<Request> = [
            ("GET", "/app/x", vec![("X-A", "1")]),
            ("GET", "/app/x", vec![("X-A", "1")]),
            (
                "POST",
                "/app/x?q",
                vec![("X-A", "2"), ("Content-Type", "t")],
            ),
            ("GET", "/app", vec![("x-a", "1"), ("X-Long", long.as_str())]),
            ("GET", "/other", vec![("X-Long", long.as_str())]),
            ("GET", "/other", vec![]),
        ]
        .into_iter()
        .enumerate()
        .flat_map(|(i, (m, p, h))| {
            let base = request(m, p, &h);
            // The same request from other connections: each origin field changed once.
            let mut variants = vec![base.clone()];
            let mut r = base.clone();
            r.origin.remote_port = format!("{}", 6000 + i);
            variants.push(r);
            let mut r = base.clone();
            r.origin.remote_addr = "10.0.0.1".into();
            variants.push(r);
            let mut r = base.clone();
            r.origin.server_name = "other.invalid".into();
            r.origin.server_port = "81".into();
            variants.push(r);
            let mut r = base.clone();
            r.origin.url_scheme = "https".into();
            r.origin.tls = Some(tls.clone());
            variants.push(r);
            let mut r = base;
            r.version = Version::Http10;
            variants.push(r);
            variants
        })
        .collect();
        let mut warm = ThreadMemo::default();
        for round in 0..2 {
            for (i, req) in reqs.iter().enumerate() {
                for t in [&t, &other] {
                    let hot = t.build(py, req, &mut warm).unwrap();
                    let cold = t.build(py, req, &mut ThreadMemo::default()).unwrap();
                    assert_eq!(as_map(&hot), as_map(&cold), "round {round} request {i}");
                }
            }
        }
    });
}

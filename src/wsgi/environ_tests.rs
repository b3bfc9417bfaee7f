//! Tests of the environ builder (waitress §3.8 keys and values).
use super::*;
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
        let (mut req, _, _) = Request::parse_complete(
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
            Request::parse_complete(b"GET /caf%E9?q=%FF HTTP/1.0\r\nX-Name: caf\xe9\r\n\r\n")
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

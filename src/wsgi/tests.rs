//! Bridge tests: fixture apps (waitress's functional fixtures' behaviours) driven in-process
//! through an in-memory `Exchange`, asserting what reaches the server.
// Test tables are tuples of expectations.
#![allow(clippy::type_complexity)]

use super::testing::{app_from, call, global, options, request, Mock};

/// Fixture apps shared by the tables below, selected by PATH_INFO.
const APPS: &str = r#"
import io, sys, tempfile
closed = []

class Closing:
    def __init__(self, items, fail=False):
        self.items, self.fail = items, fail
    def __iter__(self):
        for i in self.items:
            yield i
        if self.fail:
            raise ValueError("in iterable")
    def close(self):
        closed.append(True)

def gen(chunks):
    for c in chunks:
        yield c

def app(environ, start_response):
    p = environ["PATH_INFO"]
    if p == "/hello":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"hello"]
    if p == "/gen":
        start_response("200 OK", [])
        return gen([b"a", b"", b"bc"])
    if p == "/lentwo":
        start_response("200 OK", [])
        return [b"a", b"bc"]
    if p == "/tuple":
        start_response("200 OK", [])
        return (b"xyz",)
    if p == "/empty":
        start_response("204 No Content", [])
        return []
    if p == "/writecb":
        w = start_response("200 OK", [("Content-Length", "9")])
        w(b"abcdefghi")
        return []
    if p == "/writecb_then_iter":
        w = start_response("200 OK", [])
        w(b"ab")
        return [b"cd"]
    if p == "/before_start_response":
        raise ValueError("wrong")
    if p == "/after_start_response":
        start_response("200 OK", [("Content-Length", "0")])
        raise ValueError("wrong")
    if p == "/after_write_cb":
        w = start_response("200 OK", [("Content-Length", "0")])
        w("abc")
        raise ValueError("wrong")
    if p == "/in_generator":
        start_response("200 OK", [("Content-Length", "0")])
        def foo():
            yield "abc"
            raise ValueError
        return foo()
    if p == "/gen_error_after_chunk":
        start_response("200 OK", [])
        return Closing([b"part"], fail=True)
    if p == "/closing":
        start_response("200 OK", [])
        return Closing([b"x", b"y"])
    if p == "/twice":
        start_response("200 OK", [])
        start_response("200 OK", [])
        return [b""]
    if p == "/exc_info_before_head":
        start_response("200 OK", [("X-Old", "1")])
        try:
            raise KeyError("k")
        except KeyError:
            start_response("500 Oops", [("X-New", "2")], sys.exc_info())
        return [b"oops"]
    if p == "/exc_info_after_head":
        w = start_response("200 OK", [])
        w(b"sent")
        try:
            raise KeyError("late")
        except KeyError:
            start_response("500 Oops", [], sys.exc_info())
        return [b"never"]
    if p == "/lazy_start":
        def lazy():
            start_response("201 Created", [("X-Lazy", "1")])
            yield b"late head"
        return lazy()
    if p == "/no_start_response":
        return []
    if p == "/write_before_start":
        return [b"x"]
    if p == "/tuple_headers":
        start_response("200 OK", (("X-A", "1"), ("Content-Length", " 1 ")))
        return [b"x"]
    if p == "/iter_headers":
        class Headers(list):
            def __iter__(self):
                return iter([("X-B", "2")])
        start_response("200 OK", Headers([("X-A", "1")]))
        return [b"x"]
    if p == "/verbatim_status":
        start_response("999 WHATEVER", [("Trailer", "x")])
        return [b""]
    if p.startswith("/bad/"):
        case = p[5:]
        headers = {
            "hop": [("Connection", "close")],
            "hop_lower": [("connection", "close")],
            "keep_alive": [("Keep-Alive", "x")],
            "te": [("Transfer-Encoding", "chunked")],
            "crlf_value": [("X-A", "a\r\nb")],
            "crlf_name": [("X-A\n", "a")],
            "bytes_name": [(b"X-A", "a")],
            "bytes_value": [("X-A", b"a")],
            "cl": [("Content-Length", "ten")],
            "cl_negative": [("Content-Length", "-1")],
            "latin1": [("X-A", "\u20ac")],
            "latin1_name": [("X-\u20ac", "a")],
            "latin1_before_crlf": [("X-A\n", "\u20ac")],
            "value_crlf_before_name_crlf": [("X-A\n", "a\r")],
            "latin1_ok": [("X-\xe9", "caf\xe9"), ("X-B", "b")],
        }.get(case, [])
        status = {
            "bytes_status": b"200 OK",
            "crlf_status": "200 OK\r\n",
            "latin1_crlf_status": "200 \u20ac\r\n",
            "latin1_ok": "200 \xc9t\xe9",
        }.get(case, "200 OK")
        start_response(status, headers)
        return [b"x"]
    raise LookupError(p)
"#;

/// (path, expected status handed over, expected body sent, Content-Length header, writes)
#[test]
fn responses_table() {
    let (app, _m) = app_from(APPS, &options());
    let cases: &[(&str, &str, &[u8], Option<&str>, usize)] = &[
        ("/hello", "200 OK", b"hello", Some("5"), 1),
        ("/tuple", "200 OK", b"xyz", Some("3"), 1),
        ("/gen", "200 OK", b"abc", None, 2),
        ("/lentwo", "200 OK", b"abc", None, 2),
        ("/empty", "204 No Content", b"", None, 0),
        ("/writecb", "200 OK", b"abcdefghi", Some("9"), 1),
        ("/writecb_then_iter", "200 OK", b"abcd", None, 2),
        ("/verbatim_status", "999 WHATEVER", b"", Some("0"), 0),
        // PEP 3333: start_response may be called during the first iteration.
        ("/lazy_start", "201 Created", b"late head", None, 1),
    ];
    for &(path, status, body, cl, writes) in cases {
        let mut m = Mock::new(request("GET", path, &[]), b"");
        call(&app, &mut m).unwrap_or_else(|e| panic!("{path}: {}", e.traceback));
        assert_eq!(m.starts.len(), 1, "{path}: one hand-over");
        assert_eq!(m.head().0, status, "{path}");
        assert_eq!(m.sent(), body, "{path}");
        assert_eq!(m.header("content-length"), cl, "{path}");
        assert_eq!(m.writes.len(), writes, "{path}: write calls");
    }
}

/// (path, head already sent when the failure is reported, text in the traceback)
#[test]
fn failures_table() {
    let (app, _m) = app_from(APPS, &options());
    let cases: &[(&str, bool, &str)] = &[
        ("/before_start_response", false, "ValueError: wrong"),
        ("/after_start_response", false, "ValueError: wrong"),
        ("/after_write_cb", true, "TypeError"),
        ("/in_generator", true, "TypeError"),
        ("/gen_error_after_chunk", true, "ValueError: in iterable"),
        ("/twice", false, "start_response called a second time"),
        ("/exc_info_after_head", true, "KeyError: 'late'"),
        ("/no_start_response", false, "start_response was not called"),
        (
            "/write_before_start",
            false,
            "start_response was not called",
        ),
        ("/bad/hop", false, "Connection is a \"hop-by-hop\" header"),
        // The name as the app wrote it.
        ("/bad/hop_lower", false, "AssertionError: connection is a \"hop-by-hop\" header"),
        (
            "/bad/keep_alive",
            false,
            "AssertionError: Keep-Alive is a \"hop-by-hop\" header; it cannot be used by a WSGI application (see PEP 3333)",
        ),
        ("/bad/te", false, "hop-by-hop"),
        (
            "/bad/crlf_value",
            false,
            "ValueError: carriage return/line feed character present in header value",
        ),
        (
            "/bad/crlf_name",
            false,
            "ValueError: carriage return/line feed character present in header name",
        ),
        (
            "/bad/bytes_name",
            false,
            "AssertionError: Header name b'X-A' is not a string",
        ),
        (
            "/bad/bytes_value",
            false,
            "AssertionError: Header value b'a' is not a string",
        ),
        (
            "/bad/bytes_status",
            false,
            "AssertionError: status b'200 OK' is not a string",
        ),
        (
            "/bad/crlf_status",
            false,
            "ValueError: carriage return/line feed character present in status",
        ),
        ("/bad/cl", false, "invalid literal for int()"),
        // A length that cannot frame a body is refused with int()'s message.
        (
            "/bad/cl_negative",
            false,
            "ValueError: invalid literal for int() with base 10: '-1'",
        ),
        ("/bad/latin1", false, "UnicodeEncodeError"),
        ("/bad/latin1_name", false, "UnicodeEncodeError"),
        // waitress's order: latin-1 before CR/LF, the value's CR/LF before the name's.
        ("/bad/latin1_before_crlf", false, "UnicodeEncodeError"),
        ("/bad/latin1_crlf_status", false, "UnicodeEncodeError"),
        (
            "/bad/value_crlf_before_name_crlf",
            false,
            "present in header value",
        ),
        ("/nowhere", false, "LookupError"),
    ];
    for &(path, head_sent, text) in cases {
        let mut m = Mock::new(request("GET", path, &[]), b"");
        let err = call(&app, &mut m).expect_err(path);
        assert_eq!(m.head_sent, head_sent, "{path}");
        assert!(err.traceback.contains(text), "{path}: {}", err.traceback);
        if path == "/before_start_response" {
            assert!(
                err.traceback
                    .starts_with("Traceback (most recent call last)"),
                "{}",
                err.traceback
            );
        }
    }
}

/// Recycled headers (an earlier response's strings, more or fewer than needed) are written over:
/// every response hands over exactly the headers of a fresh run.
#[test]
fn recycled_headers_leave_nothing_behind() {
    let (app, _m) = app_from(APPS, &options());
    let junk = |n: usize| -> Vec<(String, String)> {
        (0..n)
            .map(|i| ("X-Old-Name-".repeat(i + 1), "old value ".repeat(i + 3)))
            .collect()
    };
    for path in [
        "/hello",
        "/tuple",
        "/gen",
        "/writecb",
        "/verbatim_status",
        "/bad/latin1_ok",
    ] {
        let mut fresh = Mock::new(request("GET", path, &[]), b"");
        call(&app, &mut fresh).unwrap_or_else(|e| panic!("{path}: {}", e.traceback));
        for n in [0, 1, 5] {
            let mut m = Mock::new(request("GET", path, &[]), b"");
            m.recycled = junk(n);
            call(&app, &mut m).unwrap_or_else(|e| panic!("{path}: {}", e.traceback));
            assert_eq!(m.starts, fresh.starts, "{path} over {n} recycled");
        }
    }
    for path in ["/bad/crlf_value", "/bad/latin1", "/bad/cl"] {
        let mut m = Mock::new(request("GET", path, &[]), b"");
        m.recycled = junk(3);
        assert!(call(&app, &mut m).is_err(), "{path}");
        assert!(m.starts.is_empty(), "{path}: nothing handed over");
    }
}

/// Headers as a tuple are read like a list; a list subclass is iterated through its own
/// `__iter__`, as waitress's `for k, v in headers` does.
#[test]
fn header_sequences_are_read_as_python_iterates_them() {
    let (app, _m) = app_from(APPS, &options());
    let mut m = Mock::new(request("GET", "/tuple_headers", &[]), b"");
    call(&app, &mut m).unwrap_or_else(|e| panic!("{}", e.traceback));
    assert_eq!(m.header("x-a"), Some("1"));
    assert_eq!(m.header("content-length"), Some(" 1 "));
    let mut m = Mock::new(request("GET", "/iter_headers", &[]), b"");
    call(&app, &mut m).unwrap_or_else(|e| panic!("{}", e.traceback));
    assert_eq!(m.header("x-b"), Some("2"));
    assert_eq!(m.header("x-a"), None);
}

#[test]
fn non_ascii_latin1_status_and_headers_pass_the_checks() {
    let (app, _m) = app_from(APPS, &options());
    let mut m = Mock::new(request("GET", "/bad/latin1_ok", &[]), b"");
    call(&app, &mut m).unwrap_or_else(|e| panic!("{}", e.traceback));
    assert_eq!(m.head().0, "200 \u{c9}t\u{e9}");
    assert_eq!(m.header("x-\u{e9}"), Some("caf\u{e9}"));
    assert_eq!(m.header("x-b"), Some("b"));
}

#[test]
fn exc_info_replaces_status_and_headers_before_the_head() {
    let (app, _m) = app_from(APPS, &options());
    let mut m = Mock::new(request("GET", "/exc_info_before_head", &[]), b"");
    call(&app, &mut m).unwrap();
    assert_eq!(m.head().0, "500 Oops");
    assert_eq!(m.header("x-new"), Some("2"));
    assert_eq!(m.header("x-old"), None);
    assert_eq!(m.sent(), b"oops");
}

#[test]
fn close_is_called_after_success_and_after_errors() {
    let (app, module) = app_from(APPS, &options());
    let mut m = Mock::new(request("GET", "/closing", &[]), b"");
    call(&app, &mut m).unwrap();
    assert_eq!(m.sent(), b"xy");
    let mut m = Mock::new(request("GET", "/gen_error_after_chunk", &[]), b"");
    call(&app, &mut m).unwrap_err();
    assert_eq!(global(&module, "closed"), "[True, True]");
}

#[test]
fn tracebacks_are_hidden_unless_exposed() {
    let mut opts = options();
    opts.expose_tracebacks = false;
    let (app, _m) = app_from(APPS, &opts);
    let mut m = Mock::new(request("GET", "/before_start_response", &[]), b"");
    let err = call(&app, &mut m).unwrap_err();
    assert_eq!(
        err.traceback,
        "The server encountered an unexpected internal server error"
    );
}

#[test]
fn a_panic_below_the_bridge_is_a_500_and_the_thread_goes_on() {
    let (app, _m) = app_from(APPS, &options());
    // From the driver (iteration), and from inside a pymethod (the write callable), where pyo3
    // turns the panic into PanicException, which unwinds again when the driver fetches it.
    for path in ["/gen", "/writecb"] {
        let mut m = Mock::new(request("GET", path, &[]), b"");
        m.panic_on_write = true;
        let err = call(&app, &mut m).unwrap_err();
        assert_eq!(
            err.traceback, "The server encountered an unexpected internal server error",
            "{path}"
        );
    }
    let mut m = Mock::new(request("GET", "/hello", &[]), b"");
    call(&app, &mut m).unwrap();
    assert_eq!(m.sent(), b"hello");
}

#[test]
fn writes_under_back_pressure_release_the_gil_and_still_arrive() {
    let (app, _m) = app_from(APPS, &options());
    let mut m = Mock::new(request("GET", "/gen", &[]), b"");
    m.would_block = true;
    call(&app, &mut m).unwrap();
    assert_eq!(m.sent(), b"abc");
}

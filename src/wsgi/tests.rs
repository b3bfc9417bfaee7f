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
    if p == "/verbatim_status":
        start_response("999 WHATEVER", [("Trailer", "x")])
        return [b""]
    if p.startswith("/bad/"):
        case = p[5:]
        headers = {
            "hop": [("Connection", "close")],
            "te": [("Transfer-Encoding", "chunked")],
            "crlf_value": [("X-A", "a\r\nb")],
            "crlf_name": [("X-A\n", "a")],
            "bytes_name": [(b"X-A", "a")],
            "bytes_value": [("X-A", b"a")],
            "cl": [("Content-Length", "ten")],
            "latin1": [("X-A", "\u20ac")],
        }.get(case, [])
        status = b"200 OK" if case == "bytes_status" else ("200 OK\r\n" if case == "crlf_status" else "200 OK")
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
        ("/bad/te", false, "hop-by-hop"),
        (
            "/bad/crlf_value",
            false,
            "ValueError: carriage return/line feed character present in header value",
        ),
        ("/bad/crlf_name", false, "present in header name"),
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
        ("/bad/crlf_status", false, "present in status"),
        ("/bad/cl", false, "invalid literal for int()"),
        ("/bad/latin1", false, "UnicodeEncodeError"),
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

const INPUT_APP: &str = r#"
kept = []
def app(environ, start_response):
    inp = environ["wsgi.input"]
    p = environ["PATH_INFO"]
    if p == "/read":
        out = [inp.read()]
    elif p == "/read_n":
        out = [inp.read(3), inp.read(0), inp.read(100), inp.read(5), inp.read()]
    elif p == "/readline":
        out = [inp.readline(), inp.readline(2), inp.readline(), inp.readline(-1), inp.readline()]
    elif p == "/readlines":
        out = inp.readlines()
    elif p == "/readlines_hint":
        out = inp.readlines(1)
    elif p == "/iter":
        out = list(inp)
    elif p == "/keep":
        kept.append(inp)
        kept.append(start_response)
        out = []
    elif p == "/late":
        try:
            kept[0].read()
            out = [b"no error"]
        except ValueError as e:
            out = [str(e).encode()]
    start_response("200 OK", [])
    return [repr(out).encode()]
"#;

/// (path, body, repr of what the app read)
#[test]
fn wsgi_input_table() {
    let (app, _m) = app_from(INPUT_APP, &options());
    let cases: &[(&str, &[u8], &str)] = &[
        ("/read", b"hello", "[b'hello']"),
        ("/read", b"", "[b'']"),
        ("/read_n", b"abcdefgh", "[b'abc', b'', b'defgh', b'', b'']"),
        (
            "/readline",
            b"ab\ncd\nef",
            "[b'ab\\n', b'cd', b'\\n', b'ef', b'']",
        ),
        ("/readlines", b"a\nb\nc", "[b'a\\n', b'b\\n', b'c']"),
        ("/readlines_hint", b"a\nb\nc", "[b'a\\n']"),
        ("/iter", b"x\ny\n", "[b'x\\n', b'y\\n']"),
    ];
    for &(path, body, want) in cases {
        let mut m = Mock::new(request("POST", path, &[]), body);
        call(&app, &mut m).unwrap_or_else(|e| panic!("{path}: {}", e.traceback));
        assert_eq!(String::from_utf8_lossy(&m.sent()), want, "{path}");
    }
}

#[test]
fn request_objects_are_inert_after_the_request() {
    let (app, _m) = app_from(INPUT_APP, &options());
    let mut m = Mock::new(request("POST", "/keep", &[]), b"body");
    call(&app, &mut m).unwrap();
    let mut m = Mock::new(request("POST", "/late", &[]), b"other");
    call(&app, &mut m).unwrap();
    assert!(String::from_utf8_lossy(&m.sent()).contains("has ended"));
}

const FILE_APP: &str = r#"
import io, os, tempfile
DATA = bytes(range(256)) * 40  # 10240 bytes
fd, fn = tempfile.mkstemp()
os.write(fd, DATA)
os.close(fd)

class KindaFilelike:
    def __init__(self, b):
        self.b = b
    def read(self, n):
        r, self.b = self.b[:n], self.b[n:]
        return r

class UnseekableIOBase(io.RawIOBase):
    def __init__(self, b):
        self.buf = io.BytesIO(b)
    def readable(self):
        return True
    def seekable(self):
        return False
    def read(self, n):
        return self.buf.read(n)

def app(environ, start_response):
    kind, _, cl = environ["PATH_INFO"][1:].partition("/")
    if kind == "file":
        f = open(fn, "rb")
    elif kind == "file_at_100":
        f = open(fn, "rb")
        f.seek(100)
    elif kind == "bytesio":
        f = io.BytesIO(DATA)
    elif kind == "kinda":
        f = KindaFilelike(DATA)
    else:
        f = UnseekableIOBase(DATA)
    headers = [("Content-Type", "application/octet-stream")]
    if cl == "exact":
        headers.append(("Content-Length", str(len(DATA))))
    elif cl == "short":
        headers.append(("Content-Length", "1"))
    elif cl == "long":
        headers.append(("Content-Length", str(len(DATA) + 10)))
    start_response("200 OK", headers)
    return environ["wsgi.file_wrapper"](f, 8192)
"#;

/// (path, sent with sendfile, Content-Length handed over, bytes sent) — waitress
/// FileWrapperTests: seekable files get their real length, others are iterated.
#[test]
fn file_wrapper_table() {
    let (app, _m) = app_from(FILE_APP, &options());
    let n = 10240usize;
    let long = (n + 10).to_string();
    let cases: &[(&str, bool, Option<&str>, usize)] = &[
        ("/file/exact", true, Some("10240"), n),
        ("/file/nocl", true, Some("10240"), n),
        ("/file/short", true, Some("1"), 1),
        ("/file/long", true, Some("10240"), n),
        ("/file_at_100/nocl", true, Some("10140"), n - 100),
        ("/bytesio/nocl", false, Some("10240"), n),
        ("/bytesio/long", false, Some("10240"), n),
        ("/kinda/exact", false, Some("10240"), n),
        ("/kinda/nocl", false, None, n),
        ("/kinda/long", false, Some(&long), n),
        ("/kinda/short", false, Some("1"), n),
        ("/iobase/exact", false, Some("10240"), n),
        ("/iobase/nocl", false, None, n),
    ];
    let data: Vec<u8> = (0..40).flat_map(|_| 0..=255u8).collect();
    for &(path, zero_copy, cl, len) in cases {
        let mut m = Mock::new(request("GET", path, &[]), b"");
        call(&app, &mut m).unwrap_or_else(|e| panic!("{path}: {}", e.traceback));
        assert_eq!(!m.files.is_empty(), zero_copy, "{path}: sendfile used");
        assert_eq!(m.header("content-length"), cl, "{path}");
        let sent = m.sent();
        assert_eq!(sent.len(), len, "{path}");
        let start = n - len.min(n);
        if path.starts_with("/file_at_100") || len == n {
            assert_eq!(sent, &data[start..], "{path}: content");
        }
    }
}

#[test]
fn file_wrapper_exposes_seek_and_tell_of_seekable_files() {
    let code = r#"
import io
def app(environ, start_response):
    w = environ["wsgi.file_wrapper"](io.BytesIO(b"0123456789"))
    w.seek(4)
    start_response("200 OK", [("X-Tell", str(w.tell())), ("X-Seekable", str(w.seekable()))])
    return w
"#;
    let (app, _m) = app_from(code, &options());
    let mut m = Mock::new(request("GET", "/", &[]), b"");
    call(&app, &mut m).unwrap();
    assert_eq!(m.header("x-tell"), Some("4"));
    assert_eq!(m.header("x-seekable"), Some("True"));
    assert_eq!(m.sent(), b"456789");
    assert_eq!(m.header("content-length"), Some("6"));
}

#[test]
fn wsgiref_validator_accepts_the_environ_and_objects() {
    let code = r#"
from wsgiref.validate import validator
def inner(environ, start_response):
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    environ["wsgi.errors"].write("a line for the log\n")
    environ["wsgi.errors"].writelines(["x", "y\n"])
    environ["wsgi.errors"].flush()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body) + 2))])
    return [b"ok", body]
app = validator(inner)
"#;
    let (app, _m) = app_from(code, &options());
    for (method, body) in [("GET", &b""[..]), ("POST", &b"payload"[..])] {
        let mut m = Mock::new(
            request(method, "/v?x=1", &[("Content-Type", "text/plain")]),
            body,
        );
        call(&app, &mut m).unwrap_or_else(|e| panic!("{method}: {}", e.traceback));
        assert_eq!(m.sent(), [&b"ok"[..], body].concat(), "{method}");
    }
}

#[test]
fn client_disconnect_stops_the_app_and_closes_the_iterable() {
    let code = r#"
closed = []
events = []
class It:
    def __iter__(self):
        yield b"a"
        events.append("resumed")
        yield b"b"
    def close(self):
        closed.append(True)
def app(environ, start_response):
    if environ["PATH_INFO"] == "/flag":
        start_response("200 OK", [])
        return [repr(environ["waitress.client_disconnected"]()).encode()]
    start_response("200 OK", [])
    return It()
"#;
    let (app, module) = app_from(code, &options());
    let mut m = Mock::new(request("GET", "/", &[]), b"");
    m.disconnected = true;
    assert!(
        call(&app, &mut m).is_ok(),
        "a gone client is not an app error"
    );
    assert_eq!(global(&module, "closed"), "[True]");
    assert_eq!(global(&module, "events"), "[]");
    let mut m = Mock::new(request("GET", "/flag", &[]), b"");
    m.gone.store(true, std::sync::atomic::Ordering::Relaxed);
    call(&app, &mut m).unwrap();
    assert_eq!(m.sent(), b"True");
}

#[test]
fn a_panic_below_the_bridge_is_a_500_and_the_thread_goes_on() {
    let (app, _m) = app_from(APPS, &options());
    let mut m = Mock::new(request("GET", "/gen", &[]), b"");
    m.panic_on_write = true;
    let err = call(&app, &mut m).unwrap_err();
    assert_eq!(
        err.traceback,
        "The server encountered an unexpected internal server error"
    );
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

/// Two app threads (each in `run_thread`, as the server runs them) must be inside the app at
/// the same time: the app waits on a 2-party barrier, which only opens if the GIL is released
/// while one of them waits. The barrier's timeout bounds the test.
#[test]
fn app_threads_run_concurrently() {
    use crate::http::app::App;
    use std::sync::Arc;
    let code = r#"
import threading
barrier = threading.Barrier(2, timeout=20)
def app(environ, start_response):
    barrier.wait()
    start_response("200 OK", [])
    return [b"met"]
"#;
    let (app, _m) = app_from(code, &options());
    let app = Arc::new(app);
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let app = app.clone();
            std::thread::spawn(move || {
                let mut out = None;
                app.run_thread(&mut || {
                    let mut m = Mock::new(request("GET", "/", &[]), b"");
                    let r = app.call(&mut m);
                    out = Some((r.is_ok(), m.sent()));
                });
                out.unwrap()
            })
        })
        .collect();
    for t in threads {
        let (ok, sent) = t.join().unwrap();
        assert!(ok && sent == b"met", "both requests met at the barrier");
    }
}

/// Bridge cost per hello-world call with an in-memory exchange (run in release:
/// `cargo test --release --lib wsgi::tests::bridge_cost -- --ignored --nocapture`).
#[test]
#[ignore]
fn bridge_cost() {
    let code = r#"
BODY = b"Hello, World!"
HEADERS = [("Content-Type", "text/plain"), ("Content-Length", str(len(BODY)))]
def app(environ, start_response):
    start_response("200 OK", HEADERS)
    return [BODY]
"#;
    let (app, _m) = app_from(code, &options());
    let req = request(
        "GET",
        "/hello?x=1",
        &[("User-Agent", "bench"), ("Accept", "*/*")],
    );
    let n = 200_000;
    // Thread CPU time, not wall time: other processes on the machine do not count.
    let cpu = || {
        let mut t = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes the timespec we own.
        unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
        t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9
    };
    let mut out = 0.0;
    crate::http::app::App::run_thread(&app, &mut || {
        let t = cpu();
        for _ in 0..n {
            let mut m = Mock::new(req.clone(), b"");
            crate::http::app::App::call(&app, &mut m).unwrap();
        }
        out = cpu() - t;
    });
    eprintln!("bridge: {:.2} us CPU/call", out * 1e6 / n as f64);
}

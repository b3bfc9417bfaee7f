//! Bridge tests of the request body, wsgi.file_wrapper, PEP 3333 validation, disconnects and
//! app-thread concurrency, through the in-memory `Exchange`.
// Test tables are tuples of expectations.
#![allow(clippy::type_complexity)]

use super::testing::{app_from, call, global, options, request, Mock};

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

const KEEP_APP: &str = r#"
kept = {}
def app(environ, start_response):
    p = environ["PATH_INFO"]
    objs = {"input": environ["wsgi.input"], "gone": environ["waitress.client_disconnected"],
            "start_response": start_response}
    if p == "/late":
        out = []
        for name, old in sorted(kept.items()):
            out.append(name + (" same" if objs.get(name) is old else " new"))
        for call in (lambda: kept["input"].read(), lambda: kept["start_response"]("200 OK", []),
                     lambda: kept["write"](b"x")):
            try:
                call()
                out.append("no error")
            except ValueError as e:
                out.append(str(e))
        out.append("gone " + str(kept["gone"]()))
    write = start_response("200 OK", [])
    objs["write"] = write
    if p == "/keep":
        kept.update(objs)
    if p != "/late":
        out = [str(environ["wsgi.input"].read(), "latin-1"), str(environ["waitress.client_disconnected"]())]
    write(", ".join(out).encode())
    return []
"#;

/// The request objects of a thread are reused only while the app holds none of them: ones it
/// kept stay inert and distinct from the next request's, which work as usual.
#[test]
fn reused_request_objects_work_and_kept_ones_stay_inert() {
    let (app, _m) = app_from(KEEP_APP, &options());
    let cases: &[(&str, &[u8], &str)] = &[
        ("/plain", b"one", "one, False"),
        ("/plain", b"two", "two, False"),
        ("/keep", b"three", "three, False"),
        ("/plain", b"four", "four, False"),
        (
            "/late",
            b"",
            "gone new, input new, start_response new, write new, \
             the WSGI request this object belongs to has ended, \
             the WSGI request this object belongs to has ended, \
             the WSGI request this object belongs to has ended, gone False",
        ),
        ("/plain", b"five", "five, False"),
    ];
    for &(path, body, want) in cases {
        let mut m = Mock::new(request("POST", path, &[]), body);
        call(&app, &mut m).unwrap_or_else(|e| panic!("{path}: {}", e.traceback));
        assert!(
            String::from_utf8_lossy(&m.sent()).ends_with(want),
            "{path}: {}",
            String::from_utf8_lossy(&m.sent())
        );
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

/// The file-wrapper fixture app, shared with the integration tests.
const FILE_APP: &str = include_str!("../../tests/apps/wsgi/filewrapper.py");

/// (path, sent with sendfile, Content-Length handed over, bytes sent) — waitress
/// FileWrapperTests: seekable files get their real length, others are iterated.
#[test]
fn file_wrapper_table() {
    let (app, _m) = app_from(FILE_APP, &options());
    let n = 76800usize;
    let (full, at_100) = (n.to_string(), (n - 100).to_string());
    let long = (n + 10).to_string();
    let cases: &[(&str, bool, Option<&str>, usize)] = &[
        ("/file/exact", true, Some(&full), n),
        ("/file/nocl", true, Some(&full), n),
        ("/file/short", true, Some("1"), 1),
        ("/file/long", true, Some(&full), n),
        ("/file_at_100/nocl", true, Some(&at_100), n - 100),
        ("/bytesio/nocl", false, Some(&full), n),
        ("/bytesio/long", false, Some(&full), n),
        ("/kinda/exact", false, Some(&full), n),
        ("/kinda/nocl", false, None, n),
        ("/kinda/long", false, Some(&long), n),
        ("/kinda/short", false, Some("1"), n),
        ("/iobase/exact", false, Some(&full), n),
        ("/iobase/nocl", false, None, n),
    ];
    let data: Vec<u8> = (0..300).flat_map(|_| 0..=255u8).collect();
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
/// `cargo test --release --lib wsgi::tests_io::bridge_cost -- --ignored --nocapture`).
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

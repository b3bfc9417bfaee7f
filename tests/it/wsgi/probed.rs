//! What the differential probe against waitress 3.0.2 found an app could depend on, through
//! the real `waitressd` binary: a body handed over in pieces reaches the client whole on a
//! kept-alive connection; headers given as two-item lists and memoryview bodies are accepted.
use std::io::{BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

use super::read_response;
use crate::util;

/// A Content-Length body in several pieces that the app hands over without pausing (a list,
/// `write()` then a list, `wsgi.file_wrapper` over a non-file) is sent whole on a kept-alive
/// connection (HTTP/1.1, and HTTP/1.0 with `Connection: keep-alive`), and the next request on
/// that connection is answered. The tail once stayed queued (never sent) until the connection
/// closed, so the client waited for the rest of the body (waitress sends it at once).
#[test]
fn a_content_length_body_in_pieces_is_sent_whole_on_a_kept_alive_connection() {
    let d = util::Daemon::start(
        &["--app", "responses:app", "--listen", "127.0.0.1:0"],
        &util::root().join("tests/apps/wsgi"),
        1,
    );
    for path in ["/pieces/list", "/pieces/write", "/pieces/wrapper"] {
        for (version, extra) in [
            ("1.1", "Host: h\r\n"),
            ("1.0", "Connection: keep-alive\r\n"),
        ] {
            let s = TcpStream::connect(d.addr()).unwrap();
            // Generous: the missing tail never came at all.
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut c = BufReader::new(s);
            let req = format!("GET {path} HTTP/{version}\r\n{extra}\r\n");
            for round in 0..2 {
                c.get_mut().write_all(req.as_bytes()).unwrap();
                let r = read_response(&mut c)
                    .unwrap_or_else(|| panic!("{path} HTTP/{version} round {round}: no response"));
                assert_eq!(r.status, 200, "{path} HTTP/{version}");
                assert_eq!(r.header("content-length"), Some("10"), "{path}");
                assert_eq!(
                    String::from_utf8_lossy(&r.body),
                    "helloworld",
                    "{path} HTTP/{version} round {round}: the body's tail was held"
                );
            }
        }
    }
}

/// waitress unpacks each header with `for k, v in headers`, so a header given as a two-item
/// list (`[["X-Pair", "v"]]`, e.g. read back from JSON) is served as a tuple is; waitressd
/// answered 500 (`'list' object is not an instance of 'tuple'`).
#[test]
fn headers_given_as_two_item_lists_are_served() {
    let d = util::Daemon::start(
        &["--app", "responses:app", "--listen", "127.0.0.1:0"],
        &util::root().join("tests/apps/wsgi"),
        1,
    );
    let r = super::request(
        &d.addr(),
        b"GET /pairs/lists HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("x-pair"), Some("v"));
    assert_eq!(r.header("content-type"), Some("text/plain"));
    assert_eq!(r.body, b"ok");
    // A list of any other length is refused as a tuple of that length is (a 500).
    let r = super::request(
        &d.addr(),
        b"GET /pairs/triple HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 500);
}

/// waitress writes a memoryview as it writes bytes (its buffers take any bytes-like object),
/// so an app that returns `[buf.getbuffer()]` or passes a memoryview to `write()` is served;
/// waitressd cut the response after its head (`must be bytes, not memoryview`).
#[test]
fn memoryview_body_items_and_writes_are_served() {
    let d = util::Daemon::start(
        &["--app", "responses:app", "--listen", "127.0.0.1:0"],
        &util::root().join("tests/apps/wsgi"),
        1,
    );
    for (path, version) in [
        ("/views/list", "1.1"),
        ("/views/list", "1.0"),
        ("/views/write", "1.1"),
    ] {
        let req = format!("GET {path} HTTP/{version}\r\nHost: h\r\nConnection: close\r\n\r\n");
        let r = super::request(&d.addr(), req.as_bytes());
        assert_eq!(r.status, 200, "{path} HTTP/{version}");
        assert_eq!(
            r.header("content-length"),
            Some("10"),
            "{path} HTTP/{version}"
        );
        assert_eq!(
            String::from_utf8_lossy(&r.body),
            "helloworld",
            "{path} HTTP/{version}"
        );
    }
}

/// An app that returns bytes instead of a list of bytes (iterating it gives ints) gets a 500,
/// as under waitress, which takes the first item's len() before the head goes out; waitressd
/// sent a 200 head and then cut the connection (a reset for HTTP/1.0).
#[test]
fn a_body_of_items_without_a_length_is_a_500() {
    let d = util::Daemon::start(
        &["--app", "responses:app", "--listen", "127.0.0.1:0"],
        &util::root().join("tests/apps/wsgi"),
        1,
    );
    // Also when that first item is falsy: bytes of one NUL (int 0), a list starting with None
    // (before: skipped, a 200 with what followed or an empty body).
    for (path, version) in [
        ("/bare", "1.1"),
        ("/bare", "1.0"),
        ("/bare/nul", "1.1"),
        ("/bare/none", "1.1"),
    ] {
        let req = format!("GET {path} HTTP/{version}\r\nHost: h\r\n\r\n");
        let mut c = super::connect(&d.addr());
        super::send(&mut c, req.as_bytes());
        let r = read_response(&mut c).expect("a response");
        assert_eq!(r.status, 500, "{path} HTTP/{version}: {r:?}");
        assert!(
            String::from_utf8_lossy(&r.body).starts_with("Internal Server Error"),
            "HTTP/{version}: {r:?}"
        );
        assert!(
            super::closed(&mut c),
            "HTTP/{version}: kept open after a 500"
        );
    }
}

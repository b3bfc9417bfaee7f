//! The app's status and headers as a client reads them, through the real `waitressd` binary: a
//! 1xx status (interim to every client and proxy), a status that cannot start a status line and
//! a header that is not a valid field line are each a 500.
use std::io::{BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

use super::read_response;
use crate::util;

/// An app that answers with a 1xx status (`start_response("100 …")`) gets a 500, and the
/// request pipelined behind it is answered normally. A client reads a 1xx as interim and waits
/// for the final response: the head used to go out and the connection stayed open, so the
/// response to the next request was read as this request's final answer. Closing after it is
/// not enough: nginx passes an upstream 1xx on as a final response, keeping its client's
/// connection, so that client still took the next response for this one's.
#[test]
fn an_app_1xx_status_is_a_500_so_no_other_response_answers_it() {
    let d = util::Daemon::start(
        &["--app", "responses:app", "--listen", "127.0.0.1:0"],
        &util::root().join("tests/apps/wsgi"),
        1,
    );
    for code in ["100", "101", "103", "199"] {
        for method in ["GET", "HEAD"] {
            let s = TcpStream::connect(d.addr()).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut c = BufReader::new(s);
            let req = format!(
                "{method} /status/{code} HTTP/1.1\r\nHost: h\r\n\r\n\
                 GET /status/200 HTTP/1.1\r\nHost: h\r\n\r\n"
            );
            c.get_mut().write_all(req.as_bytes()).unwrap();
            // A 1xx has no length: the helper would read on until the close (or its timeout).
            let r = read_response(&mut c).expect("a response");
            assert_eq!(r.status, 500, "{method} {code}: {:?}", r.body);
            if r.header("connection") == Some("close") {
                continue;
            }
            let r = read_response(&mut c).expect("the pipelined request's response");
            assert_eq!(
                (r.status, &r.body[..]),
                (200, &b"hello"[..]),
                "{method} {code}"
            );
        }
    }
}

/// An app status that cannot start an HTTP/1.1 status line (not a three-digit code from 100,
/// or no space after it) is refused by `start_response` (ValueError), so the client gets a 500
/// and the next request on the connection is answered normally. It used to be sent verbatim
/// (`HTTP/1.1 2000 From The App`, as waitress does): nginx then read the reply as HTTP/0.9 and
/// sent its client nothing for a HEAD, so that client took the next response for the HEAD's.
#[test]
fn an_app_status_without_a_three_digit_code_is_a_500() {
    let d = util::Daemon::start(
        &["--app", "responses:app", "--listen", "127.0.0.1:0"],
        &util::root().join("tests/apps/wsgi"),
        1,
    );
    let s = TcpStream::connect(d.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut c = BufReader::new(s);
    for code in ["2000", "20", "099", "OK", "2x0"] {
        for method in ["GET", "HEAD"] {
            let req = format!("{method} /status/{code} HTTP/1.1\r\nHost: h\r\n\r\n");
            c.get_mut().write_all(req.as_bytes()).unwrap();
            let r = read_response(&mut c).expect("a response");
            assert_eq!(r.status, 500, "{method} {code}");
            assert_eq!(r.version, "HTTP/1.1", "{method} {code}");
            if r.header("connection") == Some("close") {
                c = BufReader::new(TcpStream::connect(d.addr()).unwrap());
            }
        }
    }
    c.get_mut()
        .write_all(b"GET /status/200 HTTP/1.1\r\nHost: h\r\n\r\n")
        .unwrap();
    let r = read_response(&mut c).expect("a response");
    assert_eq!((r.status, &r.body[..]), (200, &b"hello"[..]));
}

/// An app header whose name is not a token or whose value holds a control byte is refused by
/// `start_response` (ValueError naming the header): the client gets a 500. It used to be sent
/// verbatim: `("Transfer-Encoding ", "chunked")` went out as `Transfer-Encoding : chunked`
/// beside the server's own `Content-Length`, which a proxy that strips the space (as RFC 9112
/// §5.1 asks) frames as chunked while the client frames it by the length; nginx and HAProxy
/// answered 502, and NUL in a value reached HAProxy's clients.
#[test]
fn an_app_header_that_is_not_a_valid_field_is_a_500() {
    let d = util::Daemon::start(
        &["--app", "responses:app", "--listen", "127.0.0.1:0"],
        &util::root().join("tests/apps/wsgi"),
        1,
    );
    let mut c = BufReader::new(TcpStream::connect(d.addr()).unwrap());
    c.get_mut()
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    for case in [
        "te-space",
        "cl-tab",
        "space-name",
        "empty-name",
        "colon-name",
        "nul-value",
        "del-value",
    ] {
        let req = format!("GET /header/{case} HTTP/1.1\r\nHost: h\r\n\r\n");
        c.get_mut().write_all(req.as_bytes()).unwrap();
        let r = read_response(&mut c).expect("a response");
        assert_eq!(r.status, 500, "{case}: {:?}", r.headers);
        if r.header("connection") == Some("close") {
            c = BufReader::new(TcpStream::connect(d.addr()).unwrap());
        }
    }
    c.get_mut()
        .write_all(b"GET /header/ok HTTP/1.1\r\nHost: h\r\n\r\n")
        .unwrap();
    let r = read_response(&mut c).expect("a response");
    assert_eq!((r.status, &r.body[..]), (200, &b"0123456789"[..]));
    assert_eq!(r.header("x-a"), Some("a\tb c"));
}

//! What the differential probe of the WSGI API against waitress 3.0.2 found apps can depend
//! on, through the real `waitressd` binary (app `tests/apps/wsgi/wsgiapi.py`): falsy `write()`
//! arguments and body items, a seekable `wsgi.input`, `wsgi.errors` as a text stream, and a
//! `wsgi.file_wrapper` over a file positioned past its end.
use super::{closed, connect, read_response, request, send};
use crate::util;

fn daemon() -> util::Daemon {
    util::Daemon::start(
        &["--app", "wsgiapi:app", "--listen", "127.0.0.1:0"],
        &util::root().join("tests/apps/wsgi"),
        1,
    )
}

/// waitress's `write()` sends nothing for a falsy argument (`""`, `None`, `0`, `False`, `[]`)
/// and the body goes on; waitressd raised TypeError, so the response was cut after `a` (an
/// unterminated chunked body).
#[test]
fn falsy_write_arguments_send_nothing_and_the_body_goes_on() {
    let d = daemon();
    let r = request(
        &d.addr(),
        b"GET /falsy-write HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert_eq!(String::from_utf8_lossy(&r.body), "abc");
}

/// waitress takes `len()` of the first body item: a one-item `[""]` is an empty body of
/// Content-Length 0 (so an HTTP/1.0 keep-alive connection stays open; waitressd closed it,
/// having no length), and a first item without a length (`[None]`) is a 500 before the head
/// (waitressd sent an empty 200).
#[test]
fn falsy_first_body_items_are_sized_as_waitress_sizes_them() {
    let d = daemon();
    let mut c = connect(&d.addr());
    for round in 0..2 {
        send(
            &mut c,
            b"GET /falsy-item/empty-str HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        );
        let r = read_response(&mut c).unwrap_or_else(|| panic!("round {round}: no response"));
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-length"), Some("0"), "round {round}");
        assert_eq!(r.header("connection"), Some("Keep-Alive"), "round {round}");
        assert!(r.body.is_empty());
    }
    let mut c = connect(&d.addr());
    send(&mut c, b"GET /falsy-item/none HTTP/1.1\r\nHost: h\r\n\r\n");
    let r = read_response(&mut c).expect("a response");
    assert_eq!(r.status, 500, "{r:?}");
    assert!(closed(&mut c), "kept open after a 500");
    // A falsy item that is not first is skipped, as before.
    let r = request(
        &d.addr(),
        b"GET /falsy-item/empty-then HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"x");
}

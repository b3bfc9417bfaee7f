//! Response framing found by the differential probe against waitress 3.0.2, through the real
//! `waitressd` binary: what an app hands over must reach the client whole on a kept-alive
//! connection.
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

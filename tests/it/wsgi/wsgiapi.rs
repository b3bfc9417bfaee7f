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

/// The results of the `|`-separated expressions `ops` on `wsgi.input` for a request of `body`.
fn input_ops(addr: &str, ops: &str, body: &[u8]) -> Vec<String> {
    let mut req = format!(
        "POST /input?{ops} HTTP/1.1\r\nHost: h\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    let r = request(addr, &req);
    assert_eq!(
        r.status,
        200,
        "{ops}: {:?}",
        String::from_utf8_lossy(&r.body)
    );
    serde_json::from_slice(&r.body).unwrap()
}

/// waitress's `wsgi.input` is a BytesIO (a temporary file once spilled), and apps use more of
/// it than PEP 3333's read/readline: middleware that reads the body to check a signature or
/// log it and then `seek(0)`s for the app, `tell()`, `readinto()` (Werkzeug's LimitedStream
/// prefers it), `with`/`close()`. waitressd's input had read/readline/readlines only: such an
/// app got AttributeError, a 500. In memory and spilled past `inbuf_overflow` alike.
#[test]
fn wsgi_input_seeks_tells_and_reads_again_as_waitress_bytesio_does() {
    let d = daemon();
    let got = input_ops(
        &d.addr(),
        "inp.read(5)|inp.tell()|inp.seek(0)|inp.read()|inp.seek(-5,2)|inp.readinto(bytearray(3))\
         |inp.tell()|inp.seek(-2,1)|inp.read1()|inp.seekable()|inp.readable()|inp.seek(-1)\
         |inp.closed|inp.close()|inp.closed|inp.read()",
        b"hello\nworld",
    );
    let want = [
        "b'hello'",
        "5",
        "0",
        "b'hello\\nworld'",
        "6",
        "3",
        "9",
        "7",
        "b'orld'",
        "True",
        "True",
        "ValueError: negative seek value -1",
        "False",
        "None",
        "True",
        "ValueError: I/O operation on closed file.",
    ];
    assert_eq!(got, want);
    // A body past inbuf_overflow (512 KiB) lives in a temporary file: read again all the same.
    let body: Vec<u8> = (0..600_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let got = input_ops(
        &d.addr(),
        "len(inp.read())|inp.seek(599995)|inp.read()|inp.seek(0)|inp.read(3)|len(inp.read())\
         |inp.seek(0,2)|inp.tell()",
        &body,
    );
    let tail = String::from_utf8_lossy(&body[599_995..]).to_string();
    assert_eq!(
        got,
        [
            "600000".to_string(),
            "599995".to_string(),
            format!("b'{tail}'"),
            "0".to_string(),
            "b'abc'".to_string(),
            "599997".to_string(),
            "600000".to_string(),
            "600000".to_string(),
        ]
    );
}

/// waitress's `wsgi.errors` is `sys.stderr`, a text stream: apps read its `encoding`,
/// `closed`, `writable()` and `fileno()` (handlers and wrappers that check the stream first).
/// waitressd's stream had only write/writelines/flush: AttributeError, a 500.
#[test]
fn wsgi_errors_is_a_text_stream_with_its_attributes() {
    let d = daemon();
    let r = request(
        &d.addr(),
        b"GET /errors HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 200);
    let got: Vec<String> = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        got,
        ["'utf-8'", "False", "True", "True", "True", "None", "None"]
    );
}

/// A `wsgi.file_wrapper` over a file positioned past its end (a range middleware's bad
/// arithmetic) has nothing to send: an empty 200. waitress sends `Content-Length: -N` and
/// hangs; waitressd answered 500 (`can't convert negative int to unsigned`).
#[test]
fn a_file_wrapper_positioned_past_the_end_sends_an_empty_body() {
    for (round, r) in twice_with_a_file("/past-end").iter().enumerate() {
        assert_eq!(r.status, 200, "round {round}: {r:?}");
        assert!(r.body.is_empty(), "round {round}: {r:?}");
    }
}

/// Two requests for `route` on one keep-alive connection, naming (`X-File`) a file that holds
/// `0123456789` for the app to send; both responses (the second shows the connection served on).
fn twice_with_a_file(route: &str) -> Vec<super::Resp> {
    let d = daemon();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ten.bin");
    std::fs::write(&path, b"0123456789").unwrap();
    let req = format!(
        "GET {route} HTTP/1.1\r\nHost: h\r\nX-File: {}\r\n\r\n",
        path.display()
    );
    let mut c = connect(&d.addr());
    (0..2)
        .map(|round| {
            send(&mut c, req.as_bytes());
            read_response(&mut c).unwrap_or_else(|| panic!("round {round}: no response"))
        })
        .collect()
}

/// `readinto` a read-only buffer (bytes) is the app's mistake, and BytesIO says so before it
/// reads: TypeError, the position unmoved. waitressd read first and then failed to store:
/// the TypeError came with the bytes gone (tell() 4, the next read missed them).
#[test]
fn readinto_a_read_only_buffer_fails_before_reading() {
    let d = daemon();
    let got = input_ops(
        &d.addr(),
        "inp.readinto(b'xxxx')|inp.tell()|inp.read()",
        b"hello",
    );
    assert!(got[0].starts_with("TypeError: "), "{got:?}");
    assert_eq!(got[1..], ["0", "b'hello'"], "{got:?}");
}

/// Django's `FileResponse(gzip.open(path))` hands a decompressing file to
/// `wsgi.file_wrapper`: its `fileno()` is the compressed file's, its reads are decompressed.
/// waitress reads it (the decompressed bytes); waitressd sent the compressed file with
/// sendfile(2) under the decompressed Content-Length: wrong bytes, the body short, the
/// connection closed. Plain files and a proxy of one (Django's `File`) are still sent whole.
#[test]
fn a_file_wrapper_over_a_decompressing_file_sends_the_decompressed_bytes() {
    let d = daemon();
    let plain: String = (0..3000)
        .map(|i| format!("line {i:05} of the decompressed body\n"))
        .collect();
    let mut c = connect(&d.addr());
    for codec in ["gzip", "bz2", "lzma", "plain", "proxy", "named"] {
        let req = format!("GET /decompressed/{codec} HTTP/1.1\r\nHost: h\r\n\r\n");
        send(&mut c, req.as_bytes());
        let r = read_response(&mut c).unwrap_or_else(|| panic!("{codec}: no response"));
        assert_eq!(r.status, 200, "{codec}: {r:?}");
        let len = plain.len().to_string();
        assert_eq!(r.header("content-length"), Some(len.as_str()), "{codec}");
        assert!(
            r.body == plain.as_bytes(),
            "{codec}: {} body bytes, starting {:?}",
            r.body.len(),
            String::from_utf8_lossy(&r.body[..r.body.len().min(40)])
        );
    }
}

/// A client that cancels a download once it has the head (a browser's cancelled download, a
/// media player probing a file) leaves while the file is being sent. waitress hands the
/// `wsgi.file_wrapper` to its channel, so nothing is logged; waitressd logged `Client
/// disconnected while serving /file` for nearly every such client (INFO, one line each).
#[test]
fn a_download_cancelled_after_the_head_is_not_logged_as_a_disconnect() {
    let d = daemon();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.bin");
    std::fs::File::create(&path)
        .unwrap()
        .set_len(32 << 20)
        .unwrap();
    let req = format!(
        "GET /file HTTP/1.1\r\nHost: h\r\nX-File: {}\r\n\r\n",
        path.display()
    );
    for _ in 0..10 {
        let mut c = std::net::TcpStream::connect(d.addr()).unwrap();
        std::io::Write::write_all(&mut c, req.as_bytes()).unwrap();
        let mut head = [0u8; 16];
        std::io::Read::read_exact(&mut c, &mut head).unwrap();
        assert!(head.starts_with(b"HTTP/1.1 200 OK"), "{head:?}");
        // Closed with most of the body unread: the kernel resets the connection.
    }
    // Still serving, then whatever the cancelled downloads logged.
    let r = request(
        &d.addr(),
        b"GET /decompressed/plain HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 200);
    let mut seen = Vec::new();
    while let Ok(l) = d.stderr.recv_timeout(std::time::Duration::from_secs(1)) {
        seen.push(l);
    }
    assert!(
        !seen.iter().any(|l| l.contains("Client disconnected")),
        "{seen:?}"
    );
}

/// A `wsgi.file_wrapper` returned after the app wrote through `write()` goes into the
/// chunked body the write started, as one more chunk (waitress sends the file's bytes
/// unframed there: the client reads them as a bad chunk size); the connection then serves
/// the next request.
#[test]
fn a_file_wrapper_after_write_is_a_chunk_of_the_chunked_body() {
    for (round, r) in twice_with_a_file("/write-then-file").iter().enumerate() {
        assert_eq!(r.status, 200, "round {round}: {r:?}");
        assert_eq!(r.header("transfer-encoding"), Some("chunked"), "{r:?}");
        assert_eq!(r.body, b"prefix;0123456789", "round {round}");
    }
}

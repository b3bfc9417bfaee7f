//! Parser tables: valid requests fed split at every byte, malformed requests with their status
//! (and prompt failure), waitress advisories, chunked edge cases, size limits, and header edits
//! on a parsed request.
use super::*;
use crate::http::request::Version;

const BIG: Limits = Limits {
    max_request_header_size: 262_144,
    max_request_body_size: 1 << 30,
};

/// A snapshot of one parsed request.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Parsed {
    method: String,
    target: String,
    path: String,
    query: String,
    version: Version,
    headers: Vec<(String, String)>,
    content_length: Option<u64>,
    body: Vec<u8>,
    expect_continue: bool,
    keep_alive: bool,
    head_done_seen: bool,
}

fn s(b: &[u8]) -> String {
    b.iter().map(|&c| c as char).collect()
}

/// Feeds `chunks` in order the way the server does (keep unconsumed bytes, feed again while
/// progress is made); returns every request parsed, ending with the error if any.
fn run(chunks: &[&[u8]], limits: Limits) -> Vec<Result<Parsed, HttpError>> {
    let mut parser = RequestParser::new(limits);
    let mut req = Request::new();
    let mut body = OverflowableBuffer::new(1 << 16);
    let mut pending: Vec<u8> = Vec::new();
    let mut out = Vec::new();
    let mut head_done = false;
    for chunk in chunks {
        pending.extend_from_slice(chunk);
        loop {
            match parser.feed(&pending, &mut req, &mut body) {
                Err(e) => {
                    out.push(Err(e));
                    return out;
                }
                Ok(p) => {
                    assert!(p.consumed <= pending.len());
                    pending.drain(..p.consumed);
                    match p.status {
                        Status::NeedMore => {
                            assert!(pending.is_empty(), "NeedMore must consume everything");
                            break;
                        }
                        Status::HeadDone { .. } => {
                            assert!(!head_done, "HeadDone reported twice");
                            head_done = true;
                        }
                        Status::Complete => {
                            let mut b = Vec::new();
                            body.read_all_into(&mut b).unwrap();
                            out.push(Ok(Parsed {
                                method: s(req.method()),
                                target: s(req.target()),
                                path: s(req.path()),
                                query: s(req.query()),
                                version: req.version(),
                                headers: req.headers().map(|(n, v)| (s(n), s(v))).collect(),
                                content_length: req.content_length(),
                                body: b,
                                expect_continue: req.expect_continue(),
                                keep_alive: req.meta().keep_alive,
                                head_done_seen: head_done,
                            }));
                            head_done = false;
                            parser.reset();
                            req.clear();
                            body.clear();
                        }
                    }
                }
            }
        }
    }
    out
}

fn one(input: &[u8]) -> Result<Parsed, HttpError> {
    let mut r = run(&[input], BIG);
    assert_eq!(
        r.len(),
        1,
        "expected exactly one outcome for {:?}",
        s(input)
    );
    r.pop().unwrap()
}

fn err(input: &[u8]) -> HttpError {
    match one(input) {
        Err(e) => e,
        Ok(p) => panic!("{:?} parsed: {p:?}", s(input)),
    }
}

const VALID: &[&[u8]] = &[
    b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"\r\n\r\nGET /x/%7Ey?q=1&r=%20#frag HTTP/1.0\r\nUser-Agent: t\r\n\r\n",
    b"POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhelloGET /next HTTP/1.1\r\nHost: h\r\n\r\n",
    b"POST /u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b;c=\"q\\\"x y\"\r\nhello\r\n0A\r\n0123456789\r\n0;last\r\nX-T: 1\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nX-Foo: a\r\n  b\r\n\tc\r\nX-Bar: z\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\nX_B: dropped\r\nx-a: 2\r\nCookie: a=1\r\nCookie: b=2\r\n\r\n",
    b"PUT /e HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\nabc",
    b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET http://h.example:8080/p?q HTTP/1.1\r\nHost: orig\r\nConnection: close\r\n\r\n",
    b"GET //a//b HTTP/1.0\r\nConnection: Keep-Alive\r\nX-L: caf\xe9 \xa0\r\nX-E:\r\n\r\n",
    b"FOO-BAR /m HTTP/1.1\r\nHost: [::1]:80\r\nExpect: 100-continue\r\n\r\n",
];

#[test]
fn valid_requests_parse_identically_at_every_split_point() {
    for input in VALID {
        let whole = run(&[input], BIG);
        assert!(whole.iter().all(|r| r.is_ok()), "{:?}: {whole:?}", s(input));
        for k in 0..=input.len() {
            let split = run(&[&input[..k], &input[k..]], BIG);
            assert_eq!(split, whole, "split at {k} of {:?}", s(input));
        }
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(run(&bytes, BIG), whole, "byte by byte {:?}", s(input));
    }
}

#[test]
fn valid_request_contents() {
    let p = one(VALID[1]).unwrap();
    assert_eq!(
        (
            p.method.as_str(),
            p.target.as_str(),
            p.path.as_str(),
            p.query.as_str()
        ),
        ("GET", "/x/%7Ey?q=1&r=%20#frag", "/x/~y", "q=1&r=%20")
    );
    assert_eq!(p.version, Version::Http10);
    assert!(!p.keep_alive);
    assert_eq!(p.content_length, None);

    let r = run(&[VALID[2]], BIG);
    assert_eq!(r.len(), 2, "pipelined request follows the body");
    let p = r[0].clone().unwrap();
    assert_eq!(p.body, b"hello");
    assert_eq!(p.content_length, Some(5));
    assert!(p.head_done_seen);
    assert_eq!(r[1].clone().unwrap().path, "/next");

    let p = one(VALID[3]).unwrap();
    assert_eq!(p.body, b"hello0123456789");
    assert_eq!(p.content_length, Some(15));
    assert!(p
        .headers
        .iter()
        .all(|(n, _)| !n.eq_ignore_ascii_case("transfer-encoding")));
    assert!(p.headers.contains(&("Content-Length".into(), "15".into())));
    assert!(
        p.headers.iter().all(|(n, _)| n != "X-T"),
        "trailers are discarded"
    );

    let p = one(VALID[4]).unwrap();
    assert_eq!(
        p.headers,
        vec![
            ("Host".into(), "a".into()),
            ("X-Foo".into(), "a  b\tc".into()),
            ("X-Bar".into(), "z".into())
        ]
    );

    let p = one(VALID[5]).unwrap();
    assert_eq!(
        p.headers,
        vec![
            ("Host".into(), "a".into()),
            ("X-A".into(), "1, 2".into()),
            ("Cookie".into(), "a=1, b=2".into())
        ]
    );

    let p = one(VALID[6]).unwrap();
    assert!(p.expect_continue && p.head_done_seen);
    assert_eq!(p.body, b"abc");

    assert_eq!(one(VALID[7]).unwrap().path, "*");
    let p = one(VALID[8]).unwrap();
    assert_eq!((p.path.as_str(), p.query.as_str()), ("/p", "q"));
    assert!(!p.keep_alive);

    let p = one(VALID[9]).unwrap();
    assert_eq!(p.path, "/a//b");
    assert!(p.keep_alive, "HTTP/1.0 Connection: keep-alive, any case");
    assert_eq!(p.headers[1], ("X-L".into(), "caf\u{e9} \u{a0}".into()));
    assert_eq!(p.headers[2], ("X-E".into(), "".into()));

    let p = one(VALID[10]).unwrap();
    assert!(
        p.expect_continue,
        "bodiless Expect requests are still served"
    );
    assert!(!p.head_done_seen, "no body: straight to Complete");
}

const TARGET_FORM: &str = "Bad URI: the request-target must be an absolute path (/...), an absolute URI, * with OPTIONS, or host:port with CONNECT";

/// (input, status, detail, prompt prefix: the error must happen after only these bytes).
type Malformed = (&'static [u8], u16, &'static str, Option<&'static [u8]>);
const MALFORMED: &[Malformed] = &[
    (b"GET / HTTP/1.1\nHost: a\r\n\r\n", 400, "Bare CR or LF found in HTTP message", Some(b"GET / HTTP/1.1\n")),
    (b"\nGET / HTTP/1.1\r\n\r\n", 400, "Bare CR or LF found in HTTP message", Some(b"\n")),
    (b"\r\rGET / HTTP/1.1\r\n\r\n", 400, "Bare CR or LF found in HTTP message", Some(b"\r\r")),
    (b"GET / HTTP/1.1\rHost: a\r\n\r\n", 400, "Bare CR or LF found in HTTP message", Some(b"GET / HTTP/1.1\rH")),
    (b"GET / HTTP/1.1\r\nHost: a\nX: y\r\n\r\n", 400, "Bare CR or LF found in header line \"Host: a\"", Some(b"GET / HTTP/1.1\r\nHost: a\n")),
    (b"GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", 400, "Bare CR or LF found in header line \"X: a\"", Some(b"GET / HTTP/1.1\r\nHost: a\r\nX: a\rb")),
    (b"GET / HTTP/1.1\r\nHost: a\r\n\n", 400, "Bare CR or LF found in header line \"\"", None),
    (b"GET /\x01 HTTP/1.1\r\nHost: a\r\n\r\n", 400, "Bad URI", Some(b"GET /\x01 HTTP/1.1\r\n")),
    (b"GET /\x00 HTTP/1.1\r\nHost: a\r\n\r\n", 400, "Bad URI", None),
    (b"GET /\x7f HTTP/1.1\r\nHost: a\r\n\r\n", 400, "Bad URI", None),
    (b"GET /a\tb HTTP/1.1\r\nHost: a\r\n\r\n", 400, "Bad URI", None),
    (b"GET /\xff HTTP/1.1\r\nHost: a\r\n\r\n", 400, "Bad URI", None),
    (b"GET http://[::1/ HTTP/1.1\r\nHost: a\r\n\r\n", 400, TARGET_FORM, None),
    (b"GET foo HTTP/1.1\r\nHost: a\r\n\r\n", 400, TARGET_FORM, Some(b"GET foo HTTP/1.1\r\n")),
    (b"GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400, TARGET_FORM, None),
    (b"GET 127.0.0.1:80 HTTP/1.1\r\nHost: a\r\n\r\n", 400, TARGET_FORM, None),
    (b"CONNECT / HTTP/1.1\r\nHost: a\r\n\r\n", 400, TARGET_FORM, None),
    (b"GET / HTTP/1.1\r\n\r\n", 400, "Missing Host header", None),
    (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "Duplicate header: Host", None),
    (b"GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n", 400, "Duplicate header: Host", None),
    (b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400, "Invalid Host header", None),
    (b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400, "Invalid Host header", None),
    (b"GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n", 400, "Duplicate header: Host", None),
    (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505, "HTTP/2.0 is not supported", Some(b"GET / HTTP/2.0\r\n")),
    (b"GET / HTTP/1.2\r\nHost: a\r\n\r\n", 505, "HTTP/1.2 is not supported", None),
    (b"GET / HTTP/0.9\r\n\r\n", 505, "HTTP/0.9 is not supported", None),
    (b"GET / HTTP/11\r\n\r\n", 400, "Start line is invalid", None),
    (b"GET /\r\n\r\n", 400, "Start line is invalid", None),
    (b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "Start line is invalid", None),
    (b"GET /  HTTP/1.1\r\nHost: a\r\n\r\n", 400, "Start line is invalid", None),
    (b"GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400, "Start line is invalid", None),
    (b" GET / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "Start line is invalid", None),
    (b"GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", 400, "Start line is invalid", None),
    (b"GET / http/1.1\r\nHost: a\r\n\r\n", 400, "Start line is invalid", None),
    (b"G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "Start line is invalid", None),
    (b"get / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "Malformed HTTP method \"get\"", None),
    (b"GET / HTTP/1.1\r\nHost: a\r\nX Y: z\r\n\r\n", 400, "Invalid header", None),
    (b"GET / HTTP/1.1\r\nHost: a\r\nX : z\r\n\r\n", 400, "Invalid header", None),
    (b"GET / HTTP/1.1\r\nHost: a\r\n: z\r\n\r\n", 400, "Invalid header", None),
    (b"GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n", 400, "Invalid header", None),
    (b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x01b\r\n\r\n", 400, "Invalid header", None),
    (b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n", 400, "Invalid header", None),
    (b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x7fb\r\n\r\n", 400, "Invalid header", None),
    (b"GET / HTTP/1.1\r\nHost: a\r\nX\x01: b\r\n\r\n", 400, "Invalid header", None),
    (b"GET / HTTP/1.1\r\n Host: a\r\n\r\n", 400, "Malformed header line \" Host: a\"", None),
    (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx", 400, "Duplicate header: Content-Length", None),
    (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Type: a\r\ncontent-type: b\r\n\r\n", 400, "Duplicate header: Content-Type", None),
    (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +1\r\n\r\nx", 400, "Content-Length is invalid", None),
    (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\nx", 400, "Content-Length is invalid", None),
    (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n\r\nx", 400, "Content-Length is invalid", None),
    (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\nx", 400, "Content-Length is invalid", None),
    (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 1\r\n\r\nx", 400, "Content-Length is invalid", None),
    (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 501, "Transfer-Encoding requested is not supported.", None),
    (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n", 501, "Transfer-Encoding requested is not supported.", None),
    (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 501, "Transfer-Encoding requested is not supported.", None),
    (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501, "Transfer-Encoding requested is not supported.", None),
    (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n", 501, "Transfer-Encoding requested is not supported.", None),
    (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 400, "Transfer-Encoding is invalid. Multiple chunked encodings requested.", None),
    (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "Transfer-Encoding is invalid. Multiple chunked encodings requested.", None),
    (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ,\r\n\r\n", 400, "Transfer-Encoding is invalid", None),
    (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", 400, "Content-Length and Transfer-Encoding are both present", None),
    (b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "Transfer-Encoding is not allowed in HTTP/1.0 requests", None),
];

#[test]
fn malformed_requests_get_their_status_promptly() {
    for (input, status, detail, prompt) in MALFORMED {
        let e = err(input);
        assert_eq!(
            (e.status(), e.detail().as_ref()),
            (*status, *detail),
            "{:?}",
            s(input)
        );
        // The same error whatever the split (and byte by byte).
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(
            run(&bytes, BIG).pop(),
            Some(Err(e.clone())),
            "{:?}",
            s(input)
        );
        if let Some(prefix) = prompt {
            let r = run(&[prefix], BIG);
            assert_eq!(r, vec![Err(e)], "not prompt: {:?}", s(prefix));
        }
    }
}

#[test]
fn error_versions_follow_waitress() {
    // Request line / header line problems: HTTP/1.0; later checks: the request's version.
    assert_eq!(err(MALFORMED[0].0).version(), Version::Http10);
    assert_eq!(
        err(b"GET / HTTP/1.1\r\nHost: a\r\nX Y: z\r\n\r\n").version(),
        Version::Http10
    );
    assert_eq!(
        err(b"GET /\xff HTTP/1.1\r\nHost: a\r\n\r\n").version(),
        Version::Http11
    );
    assert_eq!(
        err(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n").version(),
        Version::Http11
    );
    assert_eq!(err(b"GET / HTTP/1.1\r\n\r\n").version(), Version::Http11);
}

#[test]
fn a_failed_parser_stays_failed() {
    let mut p = RequestParser::new(BIG);
    let mut req = Request::new();
    let mut body = OverflowableBuffer::new(1024);
    assert!(p.feed(b"GET / HTTP/1.1\n", &mut req, &mut body).is_err());
    let again = p.feed(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", &mut req, &mut body);
    assert!(
        again.is_err(),
        "data after an error is never parsed as a request"
    );
}

#[test]
fn head_in_progress_tracks_partial_heads_only() {
    let mut p = RequestParser::new(BIG);
    let mut req = Request::new();
    let mut body = OverflowableBuffer::new(1024);
    assert!(!p.head_in_progress(), "nothing received yet");
    p.feed(b"\r\n", &mut req, &mut body).unwrap();
    assert!(
        p.head_in_progress(),
        "leading empty lines start the head deadline"
    );
    p.feed(b"GE", &mut req, &mut body).unwrap();
    assert!(p.head_in_progress());
    p.feed(b"T / HTTP/1.0\r\n\r\n", &mut req, &mut body)
        .unwrap();
    assert!(!p.head_in_progress() && p.head_complete());
}

#[path = "parse_tests_limits.rs"]
mod limits;

/// Found by the differential check against hyper (tests/it/props/differential.rs): where a
/// front-end would end the connection or frame the body differently, waitressd does too.
#[test]
fn connection_close_options_connect_and_empty_codings_match_a_strict_front_end() {
    for (raw, keep_alive) in [
        (
            &b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close, close\r\n\r\n"[..],
            false,
        ),
        (
            b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\nConnection: te\r\n\r\n",
            false,
        ),
        (
            b"GET / HTTP/1.1\r\nHost: a\r\nConnection: te , CLOSE\r\n\r\n",
            false,
        ),
        (
            b"GET / HTTP/1.1\r\nHost: a\r\nConnection: closed\r\n\r\n",
            true,
        ),
        (b"CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n", false),
        (
            b"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n",
            false,
        ),
    ] {
        assert_eq!(one(raw).unwrap().keep_alive, keep_alive, "{:?}", s(raw));
    }
    for raw in [
        &b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: , chunked\r\n\r\n0\r\n\r\n"[..],
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked,\r\n\r\n0\r\n\r\n",
        b"GET http:/a/b HTTP/1.1\r\nHost: a\r\n\r\n",
    ] {
        assert_eq!(err(raw).status(), 400, "{:?}", s(raw));
    }
}

#[test]
fn header_edits_keep_the_arena_consistent() {
    let (mut r, body, used) = RequestParser::parse_complete(
        b"POST /a%20b?x HTTP/1.1\r\nHost: h\r\nX-A: 1\r\nContent-Length: 2\r\n\r\nhiNEXT",
    )
    .unwrap();
    assert_eq!((body.as_slice(), used), (&b"hi"[..], 64));
    assert_eq!(
        (r.method(), r.path(), r.query()),
        (&b"POST"[..], &b"/a b"[..], &b"x"[..])
    );
    r.set_header(b"x-a", b"2");
    r.set_header(b"X-New", b"n");
    assert!(r.remove_header(b"HOST"));
    assert!(!r.remove_header(b"host"));
    let all: Vec<_> = r.headers().collect();
    assert_eq!(
        all,
        vec![
            (&b"X-A"[..], &b"2"[..]),
            (&b"Content-Length"[..], &b"2"[..]),
            (&b"X-New"[..], &b"n"[..])
        ]
    );
    assert_eq!(r.content_length(), Some(2));
    r.clear();
    assert_eq!((r.method(), r.headers().count()), (&b""[..], 0));
}

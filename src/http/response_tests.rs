//! Response head tables: start_response checks, re-casing, sorting, Server/Via, Date, lengths,
//! and the framing/keep-alive matrix.
use super::*;
use crate::http::encode::Framing;

const DATE: &[u8] = b"Sat, 21 Nov 2026 04:19:33 GMT";

fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

fn meta(version: Version, keep_alive: bool, is_head: bool) -> RequestMeta {
    RequestMeta {
        version,
        keep_alive,
        is_head,
    }
}

fn head(
    req: RequestMeta,
    status: &str,
    headers: &[(String, String)],
    cl: Option<u64>,
    ident: Option<&str>,
) -> (String, BodyEncoder) {
    let mut out = b"previous".to_vec();
    let enc = ResponseHead {
        request: req,
        status,
        headers,
        content_length: cl,
        ident,
        date: DATE,
    }
    .encode(&mut out)
    .unwrap();
    assert!(out.starts_with(b"previous"), "appends");
    (out[8..].iter().map(|&c| c as char).collect(), enc)
}

#[test]
fn start_response_checks_use_waitress_messages() {
    assert_eq!(check_start_response("200 OK", &h(&[("X", "1")])), Ok(None));
    assert_eq!(
        check_start_response("200 OK", &h(&[("Content-Length", " +1_0 ")])),
        Ok(Some(10))
    );
    for (status, headers, want) in [
        ("200 OK\r\n", h(&[]), "carriage return/line feed character present in status"),
        ("200 OK", h(&[("X", "a\nb")]), "carriage return/line feed character present in header value"),
        ("200 OK", h(&[("X\r", "a")]), "carriage return/line feed character present in header name"),
        ("200 OK", h(&[("connection", "close")]), "connection is a \"hop-by-hop\" header; it cannot be used by a WSGI application (see PEP 3333)"),
        ("200 OK", h(&[("Keep-Alive", "x")]), "Keep-Alive is a \"hop-by-hop\" header; it cannot be used by a WSGI application (see PEP 3333)"),
        ("200 OK", h(&[("Transfer-Encoding", "chunked")]), "Transfer-Encoding is a \"hop-by-hop\" header; it cannot be used by a WSGI application (see PEP 3333)"),
        ("200 OK", h(&[("Content-Length", "abc")]), "invalid literal for int() with base 10: 'abc'"),
        ("200 OK", h(&[("Content-Length", "-1")]), "invalid literal for int() with base 10: '-1'"),
    ] {
        assert_eq!(check_start_response(status, &headers).unwrap_err().to_string(), want);
    }
    for name in [
        "TE",
        "Trailers",
        "Upgrade",
        "Proxy-Authenticate",
        "Proxy-Authorization",
    ] {
        assert!(
            check_start_response("200 OK", &h(&[(name, "x")])).is_err(),
            "{name}"
        );
    }
    assert_eq!(
        check_start_response("200 OK", &h(&[("Trailer", "x")])),
        Ok(None),
        "3.0.2 allows Trailer"
    );
}

#[test]
fn header_names_are_recased_and_sorted_stably() {
    let headers = h(&[
        ("x-custom-HEADER", "1"),
        ("Set-Cookie", "b=2"),
        ("WWW-Authenticate", "Basic"),
        ("set-cookie", "a=1"),
        ("ETag", "\"e\""),
        ("content-md5", "m"),
    ]);
    let (s, _) = head(
        meta(Version::Http11, true, false),
        "200 OK",
        &headers,
        Some(0),
        Some("waitress"),
    );
    assert_eq!(
        s,
        "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nContent-Md5: m\r\nDate: Sat, 21 Nov 2026 04:19:33 GMT\r\n\
         Etag: \"e\"\r\nServer: waitress\r\nSet-Cookie: b=2\r\nSet-Cookie: a=1\r\n\
         Www-Authenticate: Basic\r\nX-Custom-Header: 1\r\n\r\n"
    );
}

#[test]
fn server_via_and_date() {
    let m = meta(Version::Http11, true, false);
    let (s, _) = head(m, "200 OK", &h(&[]), Some(0), None);
    assert!(
        !s.contains("Server:") && !s.contains("Via:"),
        "no ident, no Server"
    );
    let (s, _) = head(
        m,
        "200 OK",
        &h(&[("Server", "app/1")]),
        Some(0),
        Some("waitress"),
    );
    assert!(s.contains("Server: app/1\r\n") && s.contains("Via: waitress\r\n"));
    let (s, _) = head(m, "200 OK", &h(&[("server", "app/1")]), Some(0), None);
    assert!(
        s.contains("Via: waitress\r\n"),
        "Via falls back to waitress"
    );
    let (s, _) = head(m, "200 OK", &h(&[("Server", "a")]), Some(0), Some("mine"));
    assert!(s.contains("Via: mine\r\n"));
    let (s, _) = head(m, "200 OK", &h(&[("date", "yesterday")]), Some(0), None);
    assert!(s.contains("Date: yesterday\r\n") && !s.contains(std::str::from_utf8(DATE).unwrap()));
}

#[test]
fn status_is_verbatim_and_latin1_is_enforced() {
    let m = meta(Version::Http11, true, false);
    let (s, _) = head(m, "999 WHATEVER", &h(&[]), Some(0), None);
    assert!(s.starts_with("HTTP/1.1 999 WHATEVER\r\n"));
    let (s, _) = head(m, "200", &h(&[("X", "caf\u{e9}")]), Some(0), None);
    assert!(s.starts_with("HTTP/1.1 200\r\n"));
    let mut out = Vec::new();
    let r = ResponseHead {
        request: m,
        status: "200 OK",
        headers: &h(&[("X", "caf\u{e9}")]),
        content_length: Some(0),
        ident: None,
        date: DATE,
    }
    .encode(&mut out);
    assert!(r.is_ok());
    assert!(out.windows(5).any(|w| w == b"caf\xe9\r"), "latin-1 byte");
    let mut out = b"keep".to_vec();
    let e = ResponseHead {
        request: m,
        status: "200 OK",
        headers: &h(&[("X", "\u{20ac}")]),
        content_length: Some(0),
        ident: None,
        date: DATE,
    }
    .encode(&mut out)
    .unwrap_err();
    assert!(matches!(e, ResponseError::NotLatin1 { .. }));
    assert_eq!(out, b"keep", "nothing written on error");
}

#[test]
fn content_length_comes_from_the_app_or_inference_and_is_dropped_without_body() {
    let m = meta(Version::Http11, true, false);
    let (s, e) = head(m, "200 OK", &h(&[("content-length", "5")]), Some(5), None);
    assert!(s.contains("Content-Length: 5\r\n") && !s.contains("content-length"));
    assert_eq!(e.framing(), Framing::Length(5));
    let (s, _) = head(m, "200 OK", &h(&[]), Some(12), None);
    assert!(
        s.contains("Content-Length: 12\r\n"),
        "inferred length is sent"
    );
    for status in [
        "204 No Content",
        "304 Not Modified",
        "101 Switching",
        "100 Continue",
    ] {
        let (s, e) = head(m, status, &h(&[("Content-Length", "5")]), Some(5), None);
        assert!(!s.contains("Content-Length"), "{status}");
        assert!(!s.contains("Transfer-Encoding"), "{status}");
        assert_eq!(e.framing(), Framing::None);
        assert!(e.keep_alive(), "{status} keeps HTTP/1.1 alive");
    }
}

/// (version, client keep-alive, HEAD, status, length) → (framing, keep_alive, Connection header,
/// Transfer-Encoding header, Content-Length header).
#[test]
fn framing_and_keep_alive_matrix() {
    use Version::*;
    type Row = (
        Version,
        bool,
        bool,
        &'static str,
        Option<u64>,
        Framing,
        bool,
        Option<&'static str>,
        bool,
        Option<u64>,
    );
    let rows: &[Row] = &[
        // HTTP/1.0: keep-alive only when asked and the length is known (or nothing is sent).
        (
            Http10,
            false,
            false,
            "200 OK",
            Some(3),
            Framing::Length(3),
            false,
            Some("close"),
            false,
            Some(3),
        ),
        (
            Http10,
            true,
            false,
            "200 OK",
            Some(3),
            Framing::Length(3),
            true,
            Some("Keep-Alive"),
            false,
            Some(3),
        ),
        (
            Http10,
            true,
            false,
            "200 OK",
            None,
            Framing::CloseDelimited,
            false,
            Some("close"),
            false,
            None,
        ),
        (
            Http10,
            false,
            false,
            "200 OK",
            None,
            Framing::CloseDelimited,
            false,
            Some("close"),
            false,
            None,
        ),
        (
            Http10,
            true,
            true,
            "200 OK",
            None,
            Framing::None,
            true,
            Some("Keep-Alive"),
            false,
            None,
        ),
        (
            Http10,
            true,
            true,
            "200 OK",
            Some(9),
            Framing::None,
            true,
            Some("Keep-Alive"),
            false,
            Some(9),
        ),
        (
            Http10,
            false,
            true,
            "200 OK",
            Some(9),
            Framing::None,
            false,
            Some("close"),
            false,
            Some(9),
        ),
        (
            Http10,
            true,
            false,
            "204 No Content",
            None,
            Framing::None,
            true,
            Some("Keep-Alive"),
            false,
            None,
        ),
        (
            Http10,
            false,
            false,
            "304 Not Modified",
            Some(4),
            Framing::None,
            false,
            Some("close"),
            false,
            None,
        ),
        // HTTP/1.1: alive unless `Connection: close`; chunked when the length is unknown.
        (
            Http11,
            true,
            false,
            "200 OK",
            Some(3),
            Framing::Length(3),
            true,
            None,
            false,
            Some(3),
        ),
        (
            Http11,
            false,
            false,
            "200 OK",
            Some(3),
            Framing::Length(3),
            false,
            Some("close"),
            false,
            Some(3),
        ),
        (
            Http11,
            true,
            false,
            "200 OK",
            None,
            Framing::Chunked,
            true,
            None,
            true,
            None,
        ),
        (
            Http11,
            false,
            false,
            "200 OK",
            None,
            Framing::Chunked,
            false,
            Some("close"),
            true,
            None,
        ),
        (
            Http11,
            true,
            true,
            "200 OK",
            None,
            Framing::None,
            true,
            None,
            false,
            None,
        ),
        (
            Http11,
            true,
            true,
            "200 OK",
            Some(7),
            Framing::None,
            true,
            None,
            false,
            Some(7),
        ),
        (
            Http11,
            false,
            true,
            "200 OK",
            None,
            Framing::None,
            false,
            Some("close"),
            false,
            None,
        ),
        (
            Http11,
            true,
            false,
            "204 No Content",
            None,
            Framing::None,
            true,
            None,
            false,
            None,
        ),
        (
            Http11,
            true,
            false,
            "304 Not Modified",
            Some(4),
            Framing::None,
            true,
            None,
            false,
            None,
        ),
        (
            Http11,
            false,
            false,
            "204 No Content",
            None,
            Framing::None,
            false,
            Some("close"),
            false,
            None,
        ),
        (
            Http11,
            true,
            true,
            "204 No Content",
            None,
            Framing::None,
            true,
            None,
            false,
            None,
        ),
    ];
    for &(v, ka, is_head, status, cl, framing, keep, conn, te, cl_hdr) in rows {
        let row = format!("{v:?} ka={ka} head={is_head} {status} cl={cl:?}");
        let (s, e) = head(meta(v, ka, is_head), status, &[], cl, Some("w"));
        assert_eq!(e.framing(), framing, "{row}");
        assert_eq!(e.keep_alive(), keep, "{row}");
        let conn_line = s
            .lines()
            .find(|l| l.starts_with("Connection: "))
            .map(|l| &l[12..]);
        assert_eq!(conn_line, conn, "{row}");
        assert_eq!(s.contains("Transfer-Encoding: chunked\r\n"), te, "{row}");
        let cl_line = s
            .lines()
            .find(|l| l.starts_with("Content-Length: "))
            .map(|l| l[16..].parse::<u64>().unwrap());
        assert_eq!(cl_line, cl_hdr, "{row}");
        assert!(s.starts_with(v.as_str()), "{row}");
        let d = decide(meta(v, ka, is_head), status_has_body(status), cl);
        assert_eq!(
            (d.framing, d.keep_alive),
            (framing, keep),
            "decide() is the head's decision"
        );
    }
}

#[test]
fn head_responses_send_no_body_and_stay_alive_on_short_length() {
    let (_, mut e) = head(
        meta(Version::Http11, true, true),
        "200 OK",
        &[],
        Some(100),
        None,
    );
    assert!(e.encode(b"ignored").0.is_empty());
    let f = e.finish("200 OK");
    assert!(
        !f.close && f.warning.is_none(),
        "HEAD with CL and no body stays alive (waitress 3.0)"
    );
}

#[test]
fn chunked_response_end_to_end_bytes() {
    let (s, mut e) = head(
        meta(Version::Http11, true, false),
        "200 OK",
        &[],
        None,
        None,
    );
    let mut wire = s.into_bytes();
    for piece in [&b"hello"[..], b"", b" world"] {
        let (c, _) = e.encode(piece);
        for part in c.slices() {
            wire.extend_from_slice(part);
        }
    }
    let f = e.finish("200 OK");
    wire.extend_from_slice(f.trailer);
    let text = String::from_utf8(wire).unwrap();
    assert!(
        text.ends_with("\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"),
        "{text:?}"
    );
    assert!(!f.close, "HTTP/1.1 stays alive after a chunked response");
}

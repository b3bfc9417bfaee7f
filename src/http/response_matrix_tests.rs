//! The framing/keep-alive matrix and end-to-end body framing of responses.
use super::*;

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
        // An app's 1xx status is interim to every client and proxy: they wait on for the final
        // response, so the connection closes after it (a kept-alive one would have the next
        // request's response read as this one's).
        (
            Http11,
            true,
            false,
            "100 Continue",
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
            "103 Early Hints",
            Some(5),
            Framing::None,
            false,
            Some("close"),
            false,
            None,
        ),
        (
            Http10,
            true,
            false,
            "101 Switching Protocols",
            Some(5),
            Framing::None,
            false,
            Some("close"),
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
        let d = decide(meta(v, ka, is_head), status, cl);
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

//! Line endings and control bytes. Only CRLF ends a line (RFC 9112 §2.2, CVE-2019-16785): a
//! bare LF or CR in the request line, a header line or the chunk framing is a prompt 400 — the
//! raw bytes often stop right after the offending byte, so a server that waits for more (as
//! waitress does) fails on the read timeout. CTLs, NUL, TAB and DEL in the request-target are
//! 400 (RFC 9112 §3.2, a waitressd difference); in field values only HTAB is allowed (RFC 9110
//! §5.5).
use super::{refused, served, smuggle, Case, End};

pub const LINES_AND_BYTES: &[Case] = &[
    refused(
        "bare LF after the request line, nothing more sent: prompt 400",
        400,
        b"GET {P} HTTP/1.1\n",
    ),
    refused(
        "a request with LF-only line endings is 400",
        400,
        smuggle!("GET {P} HTTP/1.1\nHost: x\n\n"),
    ),
    refused(
        "bare CR inside the request line is 400",
        400,
        smuggle!("GET {P}\r HTTP/1.1\r\nHost: x\r\n\r\n"),
    ),
    refused(
        "bare CR ending the request line is 400",
        400,
        smuggle!("GET {P} HTTP/1.1\rHost: x\r\n\r\n"),
    ),
    refused(
        "CR CR LF ending the request line is 400",
        400,
        smuggle!("GET {P} HTTP/1.1\r\r\nHost: x\r\n\r\n"),
    ),
    refused(
        "bare LF ending a header line is 400",
        400,
        smuggle!("GET {P} HTTP/1.1\r\nHost: x\nX-Case: {P}\r\n\r\n"),
    ),
    refused(
        "bare LF ending a header line, nothing more sent: prompt 400",
        400,
        b"GET {P} HTTP/1.1\r\nHost: x\n",
    ),
    refused(
        "bare CR inside a header value is 400",
        400,
        smuggle!("GET {P} HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n"),
    ),
    refused(
        "head ended by CRLF LF, nothing more sent: prompt 400",
        400,
        b"GET {P} HTTP/1.1\r\nHost: x\r\n\n",
    ),
    refused(
        "a bare LF before the request line is 400",
        400,
        smuggle!("\nGET {P} HTTP/1.1\r\nHost: x\r\n\r\n"),
    ),
    refused(
        "bare CRs before the request line are 400",
        400,
        smuggle!("\r\rGET {P} HTTP/1.1\r\nHost: x\r\n\r\n"),
    ),
    refused(
        "bare LF ending a chunk-size line is 400",
        400,
        smuggle!(
            "POST {P} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
            "5\nhello\r\n0\r\n\r\n"
        ),
    ),
    refused(
        "bare LF after chunk data is 400",
        400,
        smuggle!(
            "POST {P} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
            "5\r\nhello\n0\r\n\r\n"
        ),
    ),
    refused(
        "bare CR ending a chunk-size line is 400",
        400,
        smuggle!(
            "POST {P} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
            "5\rhello\r\n0\r\n\r\n"
        ),
    ),
    refused(
        "LF-only chunk framing is 400",
        400,
        smuggle!(
            "POST {P} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
            "5\nhello\n0\n\n"
        ),
    ),
    refused(
        "bare LF in the trailer section is 400",
        400,
        smuggle!(
            "POST {P} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
            "0\r\nX-T: a\nX-U: b\r\n\r\n"
        ),
    ),
    refused(
        "last chunk followed by a bare LF, nothing more sent: prompt 400",
        400,
        b"POST {P} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\n",
    ),
    refused(
        "NUL in the request-target is 400",
        400,
        smuggle!("GET {P}/\x00 HTTP/1.1\r\nHost: x\r\n\r\n"),
    ),
    refused(
        "\\x01 in the request-target is 400",
        400,
        smuggle!("GET {P}/\x01 HTTP/1.1\r\nHost: x\r\n\r\n"),
    ),
    refused(
        "ESC in the request-target is 400",
        400,
        smuggle!("GET {P}/\x1b HTTP/1.1\r\nHost: x\r\n\r\n"),
    ),
    refused(
        "TAB in the request-target is 400",
        400,
        smuggle!("GET {P}/a\tb HTTP/1.1\r\nHost: x\r\n\r\n"),
    ),
    refused(
        "DEL in the request-target is 400",
        400,
        smuggle!("GET {P}/\x7f HTTP/1.1\r\nHost: x\r\n\r\n"),
    ),
    refused(
        "a raw \\xff byte in the request-target is 400 (Bad URI)",
        400,
        b"GET {P}/\xff HTTP/1.1\r\nHost: x\r\n\r\nGET {P}/smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
    ),
    refused(
        "NUL in a header value is 400",
        400,
        smuggle!("GET {P} HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n"),
    ),
    refused(
        "\\x01 in a header value is 400",
        400,
        smuggle!("GET {P} HTTP/1.1\r\nHost: x\r\nX-A: a\x01b\r\n\r\n"),
    ),
    refused(
        "vertical tab in a header value is 400",
        400,
        smuggle!("GET {P} HTTP/1.1\r\nHost: x\r\nX-A: a\x0bb\r\n\r\n"),
    ),
    refused(
        "ESC in a header value is 400",
        400,
        smuggle!("GET {P} HTTP/1.1\r\nHost: x\r\nX-A: a\x1bb\r\n\r\n"),
    ),
    refused(
        "DEL in a header value is 400",
        400,
        smuggle!("GET {P} HTTP/1.1\r\nHost: x\r\nX-A: a\x7fb\r\n\r\n"),
    ),
    refused(
        "NUL in a header name is 400",
        400,
        smuggle!("GET {P} HTTP/1.1\r\nHost: x\r\nX-\x00A: b\r\n\r\n"),
    ),
    refused(
        "NUL in the method is 400",
        400,
        smuggle!("G\x00T {P} HTTP/1.1\r\nHost: x\r\n\r\n"),
    ),
    refused(
        "a header line without a colon is 400",
        400,
        smuggle!("GET {P} HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n"),
    ),
    refused(
        "a header line with an empty name is 400",
        400,
        smuggle!("GET {P} HTTP/1.1\r\nHost: x\r\n: value\r\n\r\n"),
    ),
    served(
        "TAB inside a header value is allowed (RFC 9110 field-content)",
        b"GET {P} HTTP/1.1\r\nHost: x\r\nX-A: a\tb\r\n\r\n",
        &[200],
        End::Open,
        &["GET {P} 0 -"],
    ),
    served(
        "TAB as OWS around a header value is stripped",
        b"GET / HTTP/1.1\r\nHost: x\r\nX-Case:\t{P}\t\r\n\r\n",
        &[200],
        End::Open,
        &["GET / 0 {P}"],
    ),
    served(
        "obs-text (\\xe9) in a header value is allowed",
        b"GET {P} HTTP/1.1\r\nHost: x\r\nX-A: caf\xe9\r\n\r\n",
        &[200],
        End::Open,
        &["GET {P} 0 -"],
    ),
    served(
        "empty lines (CRLF) before the request line are ignored (RFC 9112 §2.2)",
        b"\r\n\r\nGET {P} HTTP/1.1\r\nHost: x\r\n\r\n",
        &[200],
        End::Open,
        &["GET {P} 0 -"],
    ),
];

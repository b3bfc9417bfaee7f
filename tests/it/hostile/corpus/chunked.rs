//! Chunked request bodies (RFC 9112 §7.1; waitress §2.8, CVE-2022-24761): the size is hex
//! digits only, extensions follow the `;name[=token|quoted-string]` grammar with no whitespace,
//! data ends in exactly CRLF, trailers are field lines (validated by waitressd, discarded).
//! Every error is a 400 that closes the connection, and what follows never reaches the app.
use super::{refused, served, smuggle, Case, End};

/// The head every case here starts with.
macro_rules! chunked {
    ($body:literal) => {
        smuggle!(
            "POST {P} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
            $body
        )
    };
}

pub const CHUNKED: &[Case] = &[
    refused("chunk size 0x10 is 400", 400, chunked!("0x10\r\n0123456789abcdef\r\n0\r\n\r\n")),
    refused("chunk size +1 is 400", 400, chunked!("+1\r\nx\r\n0\r\n\r\n")),
    refused("chunk size -1 is 400", 400, chunked!("-1\r\nx\r\n0\r\n\r\n")),
    refused("chunk size with a leading space is 400", 400, chunked!(" 1\r\nx\r\n0\r\n\r\n")),
    refused("chunk size with a trailing space is 400", 400, chunked!("1 \r\nx\r\n0\r\n\r\n")),
    refused("chunk size with a trailing tab is 400", 400, chunked!("1\t\r\nx\r\n0\r\n\r\n")),
    refused(
        "chunk size overflowing 64 bits is 400",
        400,
        chunked!("ffffffffffffffffff\r\nx\r\n0\r\n\r\n"),
    ),
    refused("chunk size g (not hex) is 400", 400, chunked!("g\r\nx\r\n0\r\n\r\n")),
    refused(
        "an empty chunk-size line is 400 (RFC 9112 has no empty size)",
        400,
        chunked!("\r\n1\r\nx\r\n0\r\n\r\n"),
    ),
    refused("last chunk written 0x0 is 400", 400, chunked!("0x0\r\n\r\n")),
    refused(
        "whitespace before a chunk extension is 400",
        400,
        chunked!("1 ;a=b\r\nx\r\n0\r\n\r\n"),
    ),
    refused(
        "whitespace after the ; of a chunk extension is 400",
        400,
        chunked!("1; a=b\r\nx\r\n0\r\n\r\n"),
    ),
    refused(
        "whitespace around = in a chunk extension is 400",
        400,
        chunked!("1;a = b\r\nx\r\n0\r\n\r\n"),
    ),
    refused("a bare ; as chunk extension is 400", 400, chunked!("1;\r\nx\r\n0\r\n\r\n")),
    refused(
        "a chunk extension with an empty value is 400",
        400,
        chunked!("1;a=\r\nx\r\n0\r\n\r\n"),
    ),
    refused(
        "a chunk extension value with a space is 400",
        400,
        chunked!("1;a=b c\r\nx\r\n0\r\n\r\n"),
    ),
    refused(
        "an unterminated quoted chunk extension is 400",
        400,
        chunked!("1;a=\"b\r\nx\r\n0\r\n\r\n"),
    ),
    refused(
        "NUL in a chunk extension is 400",
        400,
        chunked!("1;a\x00\r\nx\r\n0\r\n\r\n"),
    ),
    refused(
        "chunk data longer than its size is 400",
        400,
        chunked!("1\r\nxy\r\n0\r\n\r\n"),
    ),
    refused(
        "chunk data not followed by CRLF is 400",
        400,
        chunked!("5\r\nhello0\r\n\r\n"),
    ),
    refused(
        "chunk data followed by CR CR is 400",
        400,
        chunked!("5\r\nhello\r\r\n0\r\n\r\n"),
    ),
    refused(
        "a trailer name with a space is 400",
        400,
        chunked!("0\r\nBad Name: x\r\n\r\n"),
    ),
    refused(
        "whitespace before a trailer's colon is 400",
        400,
        chunked!("0\r\nX-T : x\r\n\r\n"),
    ),
    refused(
        "an obs-folded trailer line is 400",
        400,
        chunked!("0\r\nX-T: a\r\n folded\r\n\r\n"),
    ),
    refused(
        "a control byte in a trailer value is 400",
        400,
        chunked!("0\r\nX-T: a\x01b\r\n\r\n"),
    ),
    refused(
        "a trailer line without a colon is 400",
        400,
        chunked!("0\r\nNoColon\r\n\r\n"),
    ),
    refused(
        "a request line in place of the trailer section is 400",
        400,
        chunked!("0\r\nGET {P}/smuggled HTTP/1.1\r\n\r\n"),
    ),
    Case {
        then: b"5\r\nhel\r\n0\r\n\r\n",
        statuses: &[100, 400],
        ..refused(
            "Expect: 100-continue, then a bad chunk: 100, then 400",
            400,
            b"POST {P} HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n",
        )
    },
    served(
        "valid chunk extensions are accepted and discarded",
        b"POST {P} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
          5;name=value;flag;q=\"a \\\"b\\\" c\"\r\nhello\r\n0;last=1\r\n\r\n",
        &[200],
        End::Open,
        &["POST {P} 5 -"],
    ),
    served(
        "valid trailers are accepted and discarded",
        b"POST {P} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
          5\r\nhello\r\n0\r\nX-Trailer: one\r\nX-Other: two words\r\n\r\n",
        &[200],
        End::Open,
        &["POST {P} 5 -"],
    ),
    served(
        "upper-case hex and leading zeros in chunk sizes are fine",
        b"POST {P} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
          000A\r\n0123456789\r\n0b\r\n0123456789a\r\n000\r\n\r\n",
        &[200],
        End::Open,
        &["POST {P} 21 -"],
    ),
    served(
        "Content-Length and Transfer-Encoding trailers do not reframe anything",
        b"POST {P}/1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
          2\r\nab\r\n0\r\nContent-Length: 40\r\nTransfer-Encoding: chunked\r\n\r\n\
          GET {P}/2 HTTP/1.1\r\nHost: x\r\n\r\n",
        &[200, 200],
        End::Open,
        &["POST {P}/1 2 -", "GET {P}/2 0 -"],
    ),
    served(
        "an empty chunked body is served with length 0",
        b"POST {P} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        &[200],
        End::Open,
        &["POST {P} 0 -"],
    ),
    served(
        "Transfer-Encoding: ChUnKeD (any case) is chunked",
        b"POST {P} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: ChUnKeD\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        &[200],
        End::Open,
        &["POST {P} 3 -"],
    ),
];

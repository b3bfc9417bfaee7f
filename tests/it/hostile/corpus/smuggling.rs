//! Request smuggling shapes (CL.TE, TE.CL, TE.TE obfuscations, bad or repeated
//! Content-Length, TE on HTTP/1.0, pipelining behind an error): each carries a second request
//! for `{P}/smuggled` that must never reach the app. waitressd refuses TE with CL, repeated
//! CL/Host/Content-Type, `chunked` twice and TE on HTTP/1.0 (TEAM.md); any other coding is 501
//! (waitress, CVE-2019-16786); bad syntax is 400 (CVE-2019-16789, CVE-2022-24761).
use super::{refused, served, smuggle, Case, End};

pub const SMUGGLING: &[Case] = &[
    refused(
        "CL.TE: Content-Length then Transfer-Encoding is 400",
        400,
        smuggle!(
            "POST {P} HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n",
            "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        ),
    ),
    refused(
        "TE.CL: Transfer-Encoding then Content-Length is 400",
        400,
        smuggle!(
            "POST {P} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n",
            "Content-Length: 3\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n"
        ),
    ),
    refused(
        "TE with Content-Length: 0 is 400",
        400,
        smuggle!(
            "POST {P} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n",
            "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        ),
    ),
    refused(
        "TE and CL in odd letter case are still both present: 400",
        400,
        smuggle!(
            "POST {P} HTTP/1.1\r\nHost: x\r\ncontent-length: 5\r\n",
            "TRANSFER-ENCODING: CHUNKED\r\n\r\n0\r\n\r\n"
        ),
    ),
    refused(
        "Transfer-Encoding: xchunked is 501",
        501,
        smuggle!("POST {P} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n"),
    ),
    refused(
        "Transfer-Encoding: xchunked with Content-Length is refused",
        501,
        smuggle!(
            "POST {P} HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n",
            "Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n"
        ),
    ),
    refused(
        "Transfer-Encoding: chunked, identity is 501",
        501,
        smuggle!(
            "POST {P} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
            "0\r\n\r\n"
        ),
    ),
    refused(
        "Transfer-Encoding: identity, chunked is 501 (identity is not a coding)",
        501,
        smuggle!(
            "POST {P} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity, chunked\r\n\r\n",
            "0\r\n\r\n"
        ),
    ),
    refused(
        "Transfer-Encoding: gzip, chunked is 501",
        501,
        smuggle!(
            "POST {P} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            "0\r\n\r\n"
        ),
    ),
    refused(
        "Transfer-Encoding: \"chunked\" (quoted) is 501",
        501,
        smuggle!("POST {P} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: \"chunked\"\r\n\r\n0\r\n\r\n"),
    ),
    refused(
        "Transfer-Encoding with \\x85 (obs-text, not whitespace) before chunked is 501",
        501,
        b"POST {P} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: \x85chunked\r\n\r\n0\r\n\r\n\
          GET {P}/smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
    ),
    served(
        "SP/HTAB around chunked are OWS: still chunked, the next request is pipelined",
        b"POST {P}/1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: \t chunked\t \r\n\r\n\
          0\r\n\r\nGET {P}/2 HTTP/1.1\r\nHost: x\r\n\r\n",
        &[200, 200],
        End::Open,
        &["POST {P}/1 0 -", "GET {P}/2 0 -"],
    ),
    refused(
        "Transfer-Encoding with a vertical tab before chunked is 400",
        400,
        smuggle!("POST {P} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\x0bchunked\r\n\r\n0\r\n\r\n"),
    ),
    refused(
        "Transfer-Encoding with a form feed after chunked is 400",
        400,
        smuggle!("POST {P} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\x0c\r\n\r\n0\r\n\r\n"),
    ),
    refused(
        "space before the colon of Transfer-Encoding is 400",
        400,
        smuggle!(
            "POST {P} HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n",
            "Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n"
        ),
    ),
    refused(
        "tab before the colon of Transfer-Encoding is 400",
        400,
        smuggle!("POST {P} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding\t: chunked\r\n\r\n0\r\n\r\n"),
    ),
    refused(
        "NUL in the Transfer-Encoding name is 400",
        400,
        smuggle!("POST {P} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding\x00: chunked\r\n\r\n0\r\n\r\n"),
    ),
    refused(
        "space inside the Transfer-Encoding name is 400",
        400,
        smuggle!("POST {P} HTTP/1.1\r\nHost: x\r\nTransfer Encoding: chunked\r\n\r\n0\r\n\r\n"),
    ),
    refused(
        "two Transfer-Encoding: chunked lines are 400",
        400,
        smuggle!(
            "POST {P} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n",
            "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        ),
    ),
    refused(
        "Transfer-Encoding: chunked, chunked is 400",
        400,
        smuggle!(
            "POST {P} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
            "0\r\n\r\n"
        ),
    ),
    refused(
        "Transfer-Encoding: chunked then Transfer-Encoding: identity is 501",
        501,
        smuggle!(
            "POST {P} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n",
            "Transfer-Encoding: identity\r\n\r\n0\r\n\r\n"
        ),
    ),
    refused(
        "obs-fold inside Transfer-Encoding (gzip SP chunked) is 501",
        501,
        smuggle!(
            "POST {P} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n chunked\r\n\r\n0\r\n\r\n"
        ),
    ),
    refused(
        "obs-folded Transfer-Encoding: chunked together with Content-Length is 400",
        400,
        smuggle!(
            "POST {P} HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n",
            "Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n"
        ),
    ),
    refused(
        "a Transfer-Encoding line folded into Host makes an invalid Host: 400",
        400,
        smuggle!(
            "POST {P} HTTP/1.1\r\nHost: x\r\n Transfer-Encoding: chunked\r\n",
            "Content-Length: 5\r\n\r\n0\r\n\r\n"
        ),
    ),
    refused(
        "a continuation line as the first header line is 400",
        400,
        smuggle!(
            "POST {P} HTTP/1.1\r\n Transfer-Encoding: chunked\r\nHost: x\r\n\r\n",
            "0\r\n\r\n"
        ),
    ),
    refused(
        "Transfer-Encoding on HTTP/1.0 is 400",
        400,
        smuggle!("POST {P} HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    ),
    refused(
        "Transfer-Encoding with Content-Length on HTTP/1.0 is 400",
        400,
        smuggle!(
            "POST {P} HTTP/1.0\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
            "0\r\n\r\n"
        ),
    ),
    refused(
        "an empty Transfer-Encoding is 400",
        400,
        smuggle!("POST {P} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n\r\n0\r\n\r\n"),
    ),
    refused(
        "a Transfer-Encoding of only commas is 400",
        400,
        smuggle!("POST {P} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: , ,\r\n\r\n0\r\n\r\n"),
    ),
    refused(
        "empty list elements around chunked are 400 (a front-end that does not read `, chunked,` as chunked would frame the body as the next request; hyper refuses it too)",
        400,
        smuggle!("POST {P} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: , chunked,\r\n\r\n1\r\nq\r\n0\r\n\r\n"),
    ),
    refused(
        "an empty Content-Length is 400",
        400,
        smuggle!("POST {P} HTTP/1.1\r\nHost: x\r\nContent-Length:\r\n\r\n"),
    ),
    served(
        "OWS around a Content-Length value is stripped",
        b"POST {P} HTTP/1.1\r\nHost: x\r\nContent-Length: \t5\t \r\n\r\nhello",
        &[200],
        End::Open,
        &["POST {P} 5 -"],
    ),
    refused(
        "Content-Length: +5 is 400",
        400,
        smuggle!("POST {P} HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello"),
    ),
    refused(
        "Content-Length: 0x5 is 400",
        400,
        smuggle!("POST {P} HTTP/1.1\r\nHost: x\r\nContent-Length: 0x5\r\n\r\nhello"),
    ),
    refused(
        "Content-Length: -5 is 400",
        400,
        smuggle!("POST {P} HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\nhello"),
    ),
    refused(
        "Content-Length: 5 5 (obs-folded digits) is 400",
        400,
        smuggle!("POST {P} HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n 5\r\n\r\nhello"),
    ),
    refused(
        "two equal Content-Length headers are 400",
        400,
        smuggle!(
            "POST {P} HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
            "hello"
        ),
    ),
    refused(
        "two different Content-Length headers are 400",
        400,
        smuggle!(
            "POST {P} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 5\r\n\r\n",
            "hello"
        ),
    ),
    refused(
        "Content-Length: 5, 5 (a list) is 400",
        400,
        smuggle!("POST {P} HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\nhello"),
    ),
    refused(
        "space before the colon of Content-Length is 400",
        400,
        smuggle!("POST {P} HTTP/1.1\r\nHost: x\r\nContent-Length : 5\r\n\r\nhello"),
    ),
    refused(
        "two Content-Type headers are 400",
        400,
        smuggle!("POST {P} HTTP/1.1\r\nHost: x\r\nContent-Type: a/b\r\nContent-Type: c/d\r\n\r\n"),
    ),
    refused(
        "the body of a 413 request is never parsed as a request",
        413,
        smuggle!("POST {P} HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n"),
    ),
    refused(
        "a request pipelined behind a 400 never reaches the app (CVE-2024-49768)",
        400,
        smuggle!("GET {P} HTTP/1.1\r\nHost: x\r\nX-Bad: a\x01b\r\n\r\n"),
    ),
    served(
        "after a good request, an error stops the pipeline (no smuggled request runs)",
        smuggle!(
            "GET {P}/ok HTTP/1.1\r\nHost: x\r\n\r\n",
            "POST {P} HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nx"
        ),
        &[200, 400],
        End::Closed,
        &["GET {P}/ok 0 -"],
    ),
    refused(
        "Expect: 100-continue on a CL.TE request: 400, no 100",
        400,
        smuggle!(
            "POST {P} HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n",
            "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        ),
    ),
    served(
        "an error pipelined behind a busy request: that one is answered, nothing after runs",
        smuggle!(
            "GET {P}/slow HTTP/1.1\r\nHost: x\r\n\r\n",
            "GET {P} HTTP/1.1\r\nHost: x\r\nX-Bad: a\x7fb\r\n\r\n"
        ),
        &[200, 400],
        End::Closed,
        &["GET {P}/slow 0 -"],
    ),
    served(
        "an error pipelined behind a streamed response: the stream completes, then 400",
        smuggle!(
            "GET {P}/stream HTTP/1.1\r\nHost: x\r\n\r\n",
            "GET {P} HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n"
        ),
        &[200, 400],
        End::Closed,
        &["GET {P}/stream 0 -"],
    ),
    served(
        "an error pipelined behind a 100-continue exchange: 100, 200, then 400",
        smuggle!(
            "POST {P}/1 HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi",
            "GET {P} HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n"
        ),
        &[100, 200, 400],
        End::Closed,
        &["POST {P}/1 2 -"],
    ),
    served(
        "a 413 pipelined behind a busy request: its body is never parsed as a request",
        smuggle!(
            "GET {P}/slow HTTP/1.1\r\nHost: x\r\n\r\n",
            "POST {P} HTTP/1.1\r\nHost: x\r\nContent-Length: 4000\r\n\r\n"
        ),
        &[200, 413],
        End::Closed,
        &["GET {P}/slow 0 -"],
    ),
    served(
        "Connection: close pipelined behind a busy request: nothing after it runs",
        smuggle!(
            "GET {P}/slow HTTP/1.1\r\nHost: x\r\n\r\n",
            "GET {P}/last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        ),
        &[200, 200],
        End::Closed,
        &["GET {P}/slow 0 -", "GET {P}/last 0 -"],
    ),
    served(
        "nothing pipelined after Connection: close runs",
        smuggle!("GET {P} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
        &[200],
        End::Closed,
        &["GET {P} 0 -"],
    ),
    served(
        "nothing pipelined after an HTTP/1.0 request without keep-alive runs",
        smuggle!("GET {P} HTTP/1.0\r\n\r\n"),
        &[200],
        End::Closed,
        &["GET {P} 0 -"],
    ),
    served(
        "Transfer_Encoding (underscore) is dropped: Content-Length frames the body",
        b"POST {P} HTTP/1.1\r\nHost: x\r\nTransfer_Encoding: chunked\r\nContent-Length: 35\r\n\r\n\
          GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
        &[200],
        End::Open,
        &["POST {P} 35 -"],
    ),
    served(
        "a request inside a Content-Length body is body",
        b"POST {P} HTTP/1.1\r\nHost: x\r\nContent-Length: 35\r\n\r\n\
          GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
        &[200],
        End::Open,
        &["POST {P} 35 -"],
    ),
    served(
        "a request inside chunk data is body",
        b"POST {P} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
          23\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n\r\n0\r\n\r\n",
        &[200],
        End::Open,
        &["POST {P} 35 -"],
    ),
];

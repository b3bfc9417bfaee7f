//! Size limits, with the harness's `max_request_header_size = 4096` and
//! `max_request_body_size = 1000`. waitress §2.2/§2.3: a head of >= 4096 bytes (leading empty
//! lines and the final CRLFCRLF included) is 431 with an HTTP/1.0 status line, checked as bytes
//! arrive so an endless head is cut off; Content-Length >= 1000 is 413 right after the head,
//! before any body byte; a chunked body is 413 once its raw bytes (sizes, CRLFs, trailers
//! included) reach 1000.
use super::{build, refused, served, smuggle, Case, End, P_GROWTH};

/// A head of exactly 4096 bytes once `{P}` is filled in.
const HEAD_AT_LIMIT: [u8; 4096 - P_GROWTH] =
    build(b"GET {P} HTTP/1.1\r\nHost: x\r\nX-Pad: ", b"a", b"\r\n\r\n");
/// One byte less.
const HEAD_BELOW_LIMIT: [u8; 4095 - P_GROWTH] =
    build(b"GET {P} HTTP/1.1\r\nHost: x\r\nX-Pad: ", b"a", b"\r\n\r\n");
/// 5000 bytes of one header line that never ends.
const ENDLESS_HEAD: [u8; 5000] = build(b"GET {P} HTTP/1.1\r\nHost: x\r\nX-Pad: ", b"a", b"");
/// 250 header lines of 18 bytes after the request line: 4527 bytes of head.
const MANY_LINES: [u8; 27 + 250 * 18 + 2] = build(
    b"GET {P} HTTP/1.1\r\nHost: x\r\n",
    b"X-Ab: 0123456789\r\n",
    b"\r\n",
);
const SHORT_GET: &[u8] = b"GET {P} HTTP/1.1\r\nHost: x\r\n\r\n";
/// 2100 empty lines (4200 bytes) before a request line.
const LEADING_EMPTY_LINES: [u8; 4200 + SHORT_GET.len()] = build(b"", b"\r\n", SHORT_GET);

const CL_999_HEAD: &[u8] = b"POST {P} HTTP/1.1\r\nHost: x\r\nContent-Length: 999\r\n\r\n";
/// A 999-byte body: the largest allowed.
const CL_999: [u8; CL_999_HEAD.len() + 999] = build(CL_999_HEAD, b"b", b"");

const CHUNKED_HEAD: &[u8] = b"POST {P} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
const CHUNK_1000_HEAD: &[u8] =
    b"POST {P} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
    3e8\r\n";
const LAST_CHUNK: &[u8] = b"\r\n0\r\n\r\n";
/// One 1000-byte chunk: the raw count reaches 1000 inside its data.
const CHUNK_1000: [u8; CHUNK_1000_HEAD.len() + 1000 + LAST_CHUNK.len()] =
    build(CHUNK_1000_HEAD, b"c", LAST_CHUNK);
const CHUNK_976_HEAD: &[u8] = b"POST {P} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
    3d0\r\n";
/// One 976-byte chunk: 988 raw body bytes, just under the limit.
const CHUNK_976: [u8; CHUNK_976_HEAD.len() + 976 + LAST_CHUNK.len()] =
    build(CHUNK_976_HEAD, b"c", LAST_CHUNK);
/// 200 one-byte chunks (1200 raw bytes for 200 decoded ones).
const SMALL_CHUNKS: [u8; CHUNKED_HEAD.len() + 1200] = build(CHUNKED_HEAD, b"1\r\nd\r\n", b"");
const HUGE_CHUNK_HEAD: &[u8] =
    b"POST {P} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
    fffffff\r\n";
/// A chunk announcing 256 MiB, then 1500 bytes of it.
const HUGE_CHUNK: [u8; HUGE_CHUNK_HEAD.len() + 1500] = build(HUGE_CHUNK_HEAD, b"e", b"");
const LONG_EXT_HEAD: &[u8] = b"POST {P} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
    1;ext=";
/// A chunk extension that never ends (each byte counts toward the body limit).
const LONG_EXT: [u8; LONG_EXT_HEAD.len() + 1500] = build(LONG_EXT_HEAD, b"f", b"");
const LONG_TRAILER_HEAD: &[u8] =
    b"POST {P} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
    1\r\nx\r\n0\r\n";
/// A trailer section of 1500 bytes of valid field lines.
const LONG_TRAILER: [u8; LONG_TRAILER_HEAD.len() + 100 * 15 + 2] =
    build(LONG_TRAILER_HEAD, b"X-T: 012345678\r\n", b"\r\n");
const SECOND_HEAD_HEAD: &[u8] = b"GET {P}/1 HTTP/1.1\r\nHost: x\r\n\r\n\
    GET {P}/2 HTTP/1.1\r\nHost: x\r\nX-Pad: ";
/// A good request, then a pipelined one whose head never ends.
const SECOND_HEAD: [u8; SECOND_HEAD_HEAD.len() + 5000] = build(SECOND_HEAD_HEAD, b"g", b"");
const CL_5000_HEAD: &[u8] = b"POST {P} HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n";
/// An oversize body sent along with its head, as a client that does not wait would.
const CL_5000: [u8; CL_5000_HEAD.len() + 5000] = build(CL_5000_HEAD, b"h", b"");
/// 64 KiB of head in one write.
static HEAD_FLOOD: [u8; 65536] = build(
    b"GET {P} HTTP/1.1\r\nHost: x\r\n",
    b"X-Flood: yyyy\r\n",
    b"",
);

pub const LIMITS: &[Case] = &[
    refused(
        "a head of exactly max_request_header_size is 431",
        431,
        &HEAD_AT_LIMIT,
    ),
    served(
        "a head one byte under max_request_header_size is served",
        &HEAD_BELOW_LIMIT,
        &[200],
        End::Open,
        &["GET {P} 0 -"],
    ),
    refused(
        "an endless header line is cut off with 431 (no end of head needed)",
        431,
        &ENDLESS_HEAD,
    ),
    refused(
        "many small header lines adding up to the limit are 431",
        431,
        &MANY_LINES,
    ),
    refused(
        "empty lines before the request line count toward the limit: 431",
        431,
        &LEADING_EMPTY_LINES,
    ),
    served(
        "a pipelined request's oversize head is 431 after the good one is answered",
        &SECOND_HEAD,
        &[200, 431],
        End::Closed,
        &["GET {P}/1 0 -"],
    ),
    refused(
        "Content-Length equal to max_request_body_size is 413 before the body is sent",
        413,
        b"POST {P} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n",
    ),
    refused(
        "Content-Length over the limit is 413 before the body is sent",
        413,
        b"PUT {P} HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n",
    ),
    refused(
        "Content-Length beyond 64 bits is 413",
        413,
        smuggle!("POST {P} HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n"),
    ),
    refused(
        "Content-Length over the limit on HTTP/1.0 is 413",
        413,
        smuggle!("POST {P} HTTP/1.0\r\nContent-Length: 1001\r\n\r\n"),
    ),
    refused(
        "Expect: 100-continue with an oversize Content-Length: 413, no 100",
        413,
        b"POST {P} HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 1000\r\n\r\n",
    ),
    refused(
        "an oversize body sent along with its head still gets its 413 (lingering close)",
        413,
        &CL_5000,
    ),
    refused(
        "a 64 KiB head flood gets its 431 (lingering close)",
        431,
        &HEAD_FLOOD,
    ),
    served(
        "a 999-byte Content-Length body is served",
        &CL_999,
        &[200],
        End::Open,
        &["POST {P} 999 -"],
    ),
    served(
        "Content-Length: 0 is served",
        b"POST {P} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
        &[200],
        End::Open,
        &["POST {P} 0 -"],
    ),
    refused(
        "a chunked body reaching the limit in one chunk is 413",
        413,
        &CHUNK_1000,
    ),
    served(
        "a chunked body of 988 raw bytes is served",
        &CHUNK_976,
        &[200],
        End::Open,
        &["POST {P} 976 -"],
    ),
    refused(
        "many small chunks reaching the limit in raw bytes are 413",
        413,
        &SMALL_CHUNKS,
    ),
    refused(
        "a huge announced chunk is 413 once the limit is reached",
        413,
        &HUGE_CHUNK,
    ),
    refused(
        "an endless chunk extension is cut off with 413",
        413,
        &LONG_EXT,
    ),
    refused(
        "an endless trailer section is cut off with 413",
        413,
        &LONG_TRAILER,
    ),
];

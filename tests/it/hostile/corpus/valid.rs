//! Good requests around the edges the hostile groups probe: keep-alive (HTTP/1.1 default,
//! HTTP/1.0 `Connection: keep-alive`), pipelining answered in order, HEAD without a body,
//! chunked request bodies decoded, chunked responses kept alive (TEAM.md), and
//! `Expect: 100-continue` (waitress §4.4): a `100 Continue` once the head of a request with a
//! body is in, also when the body came along; a bodiless one is served (TEAM.md) after a 100,
//! exactly once; never on HTTP/1.0.
use super::{served, Case, End};

pub const VALID: &[Case] = &[
    served(
        "a plain HTTP/1.1 GET is served and kept alive",
        b"GET {P} HTTP/1.1\r\nHost: x\r\n\r\n",
        &[200],
        End::Open,
        &["GET {P} 0 -"],
    ),
    Case {
        head: true,
        ..served(
            "HEAD is answered without a body and kept alive",
            b"HEAD {P} HTTP/1.1\r\nHost: x\r\n\r\n",
            &[200],
            End::Open,
            &["HEAD {P} 0 -"],
        )
    },
    Case {
        head: true,
        ..served(
            "HEAD pipelined before a GET: no body between the two responses",
            b"HEAD {P}/1 HTTP/1.1\r\nHost: x\r\n\r\nGET {P}/2 HTTP/1.1\r\nHost: x\r\n\r\n",
            &[200, 200],
            End::Open,
            &["HEAD {P}/1 0 -", "GET {P}/2 0 -"],
        )
    },
    Case {
        head: true,
        ..served(
            "HEAD of a streamed response: no chunked body, kept alive",
            b"HEAD {P}/stream HTTP/1.1\r\nHost: x\r\n\r\n",
            &[200],
            End::Open,
            &["HEAD {P}/stream 0 -"],
        )
    },
    served(
        "empty lines alone are ignored: no response, the connection stays open",
        b"\r\n\r\n\r\n",
        &[],
        End::Open,
        &[],
    ),
    served(
        "three pipelined GETs in one write are answered in order",
        b"GET {P}/1 HTTP/1.1\r\nHost: x\r\n\r\nGET {P}/2 HTTP/1.1\r\nHost: x\r\n\r\n\
          GET {P}/3 HTTP/1.1\r\nHost: x\r\n\r\n",
        &[200, 200, 200],
        End::Open,
        &["GET {P}/1 0 -", "GET {P}/2 0 -", "GET {P}/3 0 -"],
    ),
    served(
        "a POST body followed by a pipelined GET",
        b"POST {P}/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello\
          GET {P}/2 HTTP/1.1\r\nHost: x\r\n\r\n",
        &[200, 200],
        End::Open,
        &["POST {P}/1 5 -", "GET {P}/2 0 -"],
    ),
    served(
        "an empty line between pipelined requests is ignored",
        b"GET {P}/1 HTTP/1.1\r\nHost: x\r\n\r\n\r\nGET {P}/2 HTTP/1.1\r\nHost: x\r\n\r\n",
        &[200, 200],
        End::Open,
        &["GET {P}/1 0 -", "GET {P}/2 0 -"],
    ),
    served(
        "pipelined requests up to Connection: close, then closed",
        b"GET {P}/1 HTTP/1.1\r\nHost: x\r\n\r\nGET {P}/2 HTTP/1.1\r\nHost: x\r\n\r\n\
          GET {P}/3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        &[200, 200, 200],
        End::Closed,
        &["GET {P}/1 0 -", "GET {P}/2 0 -", "GET {P}/3 0 -"],
    ),
    served(
        "HTTP/1.1 Connection: close is served, then closed",
        b"GET {P} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        &[200],
        End::Closed,
        &["GET {P} 0 -"],
    ),
    served(
        "HTTP/1.0 with Connection: keep-alive is kept alive",
        b"GET {P} HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        &[200],
        End::Open,
        &["GET {P} 0 -"],
    ),
    served(
        "HTTP/1.0 keep-alive, twice on one connection",
        b"GET {P}/1 HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n\
          POST {P}/2 HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nhi",
        &[200, 200],
        End::Open,
        &["GET {P}/1 0 -", "POST {P}/2 2 -"],
    ),
    served(
        "HTTP/1.0 without keep-alive is closed after the response",
        b"GET {P} HTTP/1.0\r\n\r\n",
        &[200],
        End::Closed,
        &["GET {P} 0 -"],
    ),
    served(
        "a streamed (chunked) response keeps HTTP/1.1 alive",
        b"GET {P}/stream HTTP/1.1\r\nHost: x\r\n\r\n",
        &[200],
        End::Open,
        &["GET {P}/stream 0 -"],
    ),
    served(
        "a streamed response to HTTP/1.0 keep-alive is close-delimited",
        b"GET {P}/stream HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        &[200],
        End::Closed,
        &["GET {P}/stream 0 -"],
    ),
    served(
        "a chunked request body is decoded",
        b"POST {P} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
          5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
        &[200],
        End::Open,
        &["POST {P} 11 -"],
    ),
    served(
        "a chunked request body followed by a pipelined GET",
        b"POST {P}/1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
          3\r\nabc\r\n0\r\n\r\nGET {P}/2 HTTP/1.1\r\nHost: x\r\n\r\n",
        &[200, 200],
        End::Open,
        &["POST {P}/1 3 -", "GET {P}/2 0 -"],
    ),
    served(
        "an obs-folded header line is accepted",
        b"GET {P} HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n  b\r\n\r\n",
        &[200],
        End::Open,
        &["GET {P} 0 -"],
    ),
    served(
        "Content-Length with leading zeros is a number",
        b"POST {P} HTTP/1.1\r\nHost: x\r\nContent-Length: 005\r\n\r\nhello",
        &[200],
        End::Open,
        &["POST {P} 5 -"],
    ),
    Case {
        then: b"hello",
        ..served(
            "Expect: 100-continue: 100 after the head, the body, then 200",
            b"POST {P} HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
            &[100, 200],
            End::Open,
            &["POST {P} 5 -"],
        )
    },
    Case {
        then: b"hello",
        ..served(
            "Expect: 100-Continue (any case) gets the 100",
            b"PUT {P} HTTP/1.1\r\nHost: x\r\nExpect: 100-Continue\r\nContent-Length: 5\r\n\r\n",
            &[100, 200],
            End::Open,
            &["PUT {P} 5 -"],
        )
    },
    Case {
        then: b"5\r\nhello\r\n0\r\n\r\n",
        ..served(
            "Expect: 100-continue with a chunked body: 100, then 200",
            b"POST {P} HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\
              Transfer-Encoding: chunked\r\n\r\n",
            &[100, 200],
            End::Open,
            &["POST {P} 5 -"],
        )
    },
    Case {
        then: b"hello",
        ..served(
            "Expect: 100-continue behind a busy request: the 100 comes after its response",
            b"GET {P}/slow HTTP/1.1\r\nHost: x\r\n\r\n\
              POST {P}/2 HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
            &[200, 100, 200],
            End::Open,
            &["GET {P}/slow 0 -", "POST {P}/2 5 -"],
        )
    },
    served(
        "Expect: 100-continue behind a busy request, body sent along: 100 after its response",
        b"GET {P}/slow HTTP/1.1\r\nHost: x\r\n\r\n\
          POST {P}/2 HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello",
        &[200, 100, 200],
        End::Open,
        &["GET {P}/slow 0 -", "POST {P}/2 5 -"],
    ),
    served(
        "requests pipelined behind a busy one are answered in order",
        b"GET {P}/slow HTTP/1.1\r\nHost: x\r\n\r\nGET {P}/2 HTTP/1.1\r\nHost: x\r\n\r\n\
          POST {P}/3 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nz\r\n0\r\n\r\n",
        &[200, 200, 200],
        End::Open,
        &["GET {P}/slow 0 -", "GET {P}/2 0 -", "POST {P}/3 1 -"],
    ),
    served(
        "Expect: 100-continue with the body already sent: 100, then 200",
        b"POST {P} HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello",
        &[100, 200],
        End::Open,
        &["POST {P} 5 -"],
    ),
    served(
        "a bodiless Expect: 100-continue request is served once (100, then 200)",
        b"GET {P} HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n",
        &[100, 200],
        End::Open,
        &["GET {P} 0 -"],
    ),
    served(
        "a bodiless Expect request then a pipelined GET: both served, in order",
        b"GET {P}/1 HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n\
          GET {P}/2 HTTP/1.1\r\nHost: x\r\n\r\n",
        &[100, 200, 200],
        End::Open,
        &["GET {P}/1 0 -", "GET {P}/2 0 -"],
    ),
    served(
        "Expect: 100-continue on HTTP/1.0 gets no 100",
        b"POST {P} HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello",
        &[200],
        End::Closed,
        &["POST {P} 5 -"],
    ),
    served(
        "an Expect other than 100-continue is ignored: no 100",
        b"POST {P} HTTP/1.1\r\nHost: x\r\nExpect: something-else\r\nContent-Length: 5\r\n\r\nhello",
        &[200],
        End::Open,
        &["POST {P} 5 -"],
    ),
];

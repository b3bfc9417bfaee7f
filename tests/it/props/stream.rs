//! A sans-IO channel for property tests, the differential check and the fuzz targets (which
//! include this file by path): a byte stream, delivered in pieces, goes through waitressd's
//! request parser as the server feeds it; each complete request gets a response framed by
//! `ResponseHead` + `BodyEncoder`, whose keep-alive decision says whether later bytes are read.
use waitressd::http::encode::Framing;
use waitressd::http::{Limits, OverflowableBuffer, Request, RequestParser, ResponseHead, Status};

/// One request as waitressd framed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Framed {
    pub method: Vec<u8>,
    pub target: Vec<u8>,
    /// 10 or 11.
    pub version: u8,
    /// As they reach the environ (merged, `_` names dropped, Transfer-Encoding removed).
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
    pub body: Vec<u8>,
    pub keep_alive: bool,
}

/// How the stream ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// All bytes taken; a request may be incomplete.
    NeedMore,
    /// Refused with this status; the connection closes.
    Error(u16),
    /// The last response closes the connection; `unread` bytes followed it (discarded).
    Closed { unread: usize },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channel {
    pub requests: Vec<Framed>,
    pub end: End,
    /// The response bytes the channel would write (heads with a fixed Date, bodies).
    pub output: Vec<u8>,
}

pub const LIMITS: Limits = Limits {
    max_request_header_size: 8192,
    max_request_body_size: 65536,
};

/// Runs `chunks` through the parser the way the server does: unconsumed bytes are kept and
/// fed again while the parser makes progress.
pub fn run(chunks: &[&[u8]], limits: Limits) -> Channel {
    let mut parser = RequestParser::new(limits);
    let mut req = Request::new();
    let mut body = OverflowableBuffer::new(1 << 14);
    let mut pending: Vec<u8> = Vec::new();
    let mut ch = Channel {
        requests: Vec::new(),
        end: End::NeedMore,
        output: Vec::new(),
    };
    let total: usize = chunks.iter().map(|c| c.len()).sum();
    let mut taken = 0;
    for chunk in chunks {
        pending.extend_from_slice(chunk);
        loop {
            let p = match parser.feed(&pending, &mut req, &mut body) {
                Err(e) => {
                    ch.end = End::Error(e.status());
                    return ch;
                }
                Ok(p) => p,
            };
            assert!(p.consumed <= pending.len(), "consumed more than given");
            pending.drain(..p.consumed);
            taken += p.consumed;
            match p.status {
                Status::NeedMore => {
                    assert!(pending.is_empty(), "NeedMore left bytes unconsumed");
                    break;
                }
                Status::HeadDone { .. } => {}
                Status::Complete => {
                    let f = framed(&req, &mut body);
                    let keep = respond(&req, &f, &mut ch.output);
                    ch.requests.push(f);
                    if !keep {
                        ch.end = End::Closed {
                            unread: total - taken,
                        };
                        return ch;
                    }
                    parser.reset();
                }
            }
        }
    }
    ch
}

fn framed(req: &Request, body: &mut OverflowableBuffer) -> Framed {
    let mut b = Vec::new();
    body.read_all_into(&mut b).expect("body buffer");
    Framed {
        method: req.method().to_vec(),
        target: req.target().to_vec(),
        version: match req.version() {
            waitressd::http::Version::Http10 => 10,
            waitressd::http::Version::Http11 => 11,
        },
        headers: req
            .headers()
            .map(|(n, v)| (n.to_vec(), v.to_vec()))
            .collect(),
        body: b,
        keep_alive: req.meta().keep_alive,
    }
}

/// The response an echo app would give (its body is the request body, length known unless
/// the body is empty, so both framings are exercised); returns whether the connection stays
/// open.
fn respond(req: &Request, f: &Framed, out: &mut Vec<u8>) -> bool {
    let headers = [("Content-Type".to_string(), "text/plain".to_string())];
    let head = ResponseHead {
        request: req.meta(),
        status: "200 OK",
        headers: &headers,
        content_length: (!f.body.is_empty()).then_some(f.body.len() as u64),
        ident: Some("waitress"),
        date: b"Thu, 01 Jan 1970 00:00:00 GMT",
    };
    let mut enc = head.encode(out).expect("a valid head");
    let (c, _) = enc.encode(&f.body);
    out.extend_from_slice(c.prefix.as_bytes());
    out.extend_from_slice(c.data);
    out.extend_from_slice(c.suffix);
    let fin = enc.finish("200 OK");
    out.extend_from_slice(fin.trailer);
    if req.is_head() {
        assert!(
            matches!(enc.framing(), Framing::None),
            "a HEAD response has no body"
        );
    }
    !fin.close
}

/// `data` cut at `cuts` (positions taken modulo the length, in any order).
pub fn split<'a>(data: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut at: Vec<usize> = cuts
        .iter()
        .map(|&c| if data.is_empty() { 0 } else { c % data.len() })
        .collect();
    at.sort_unstable();
    at.dedup();
    let mut out = Vec::with_capacity(at.len() + 1);
    let mut prev = 0;
    for a in at {
        out.push(&data[prev..a]);
        prev = a;
    }
    out.push(&data[prev..]);
    out
}

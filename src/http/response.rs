//! Response heads: `start_response` checks (§3.1), header re-casing and sorting, `Server`/`Via`,
//! `Date`, Content-Length, and the one keep-alive/close/chunked decision (§3.3, hyper-style).
use super::encode::{BodyEncoder, Framing};
use super::request::RequestMeta;
use super::Version;

/// Why an app's status or headers are refused. The texts are waitress's exception messages; the
/// WSGI layer raises `AssertionError` for `HopByHop`, `ValueError` for the others.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    #[error("carriage return/line feed character present in status")]
    StatusCrLf,
    #[error("carriage return/line feed character present in header name")]
    NameCrLf,
    #[error("carriage return/line feed character present in header value")]
    ValueCrLf,
    #[error(
        "{name} is a \"hop-by-hop\" header; it cannot be used by a WSGI application (see PEP 3333)"
    )]
    HopByHop { name: String },
    #[error("invalid literal for int() with base 10: '{value}'")]
    BadContentLength { value: String },
    #[error("'latin-1' codec can't encode character in header {what}")]
    NotLatin1 { what: String },
}

/// The interim response for `Expect: 100-continue` (no headers, as waitress).
pub const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// Names an app may not set (PEP 3333 hop-by-hop; waitress's list has `trailers`, so `Trailer`
/// is allowed, as in 3.0.2).
pub const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
];

/// True for a hop-by-hop header name (any case).
pub fn is_hop_by_hop(name: &str) -> bool {
    HOP_BY_HOP.iter().any(|h| name.eq_ignore_ascii_case(h))
}

/// Checks a `start_response` call (waitress order: status, then per header value CR/LF, name
/// CR/LF, Content-Length, hop-by-hop). Returns the app's Content-Length if it set one (the last
/// one wins, as waitress). `str`-ness is the WSGI layer's job.
pub fn check_start_response(
    status: &str,
    headers: &[(String, String)],
) -> Result<Option<u64>, ResponseError> {
    let crlf = |s: &str| s.bytes().any(|c| c == b'\r' || c == b'\n');
    if crlf(status) {
        return Err(ResponseError::StatusCrLf);
    }
    let mut cl = None;
    for (name, value) in headers {
        if crlf(value) {
            return Err(ResponseError::ValueCrLf);
        }
        if crlf(name) {
            return Err(ResponseError::NameCrLf);
        }
        if name.eq_ignore_ascii_case("content-length") {
            cl = Some(
                parse_int(value).ok_or_else(|| ResponseError::BadContentLength {
                    value: value.clone(),
                })?,
            );
        } else if is_hop_by_hop(name) {
            return Err(ResponseError::HopByHop { name: name.clone() });
        }
    }
    Ok(cl)
}

/// Python `int(value)` for the non-negative values a Content-Length can take: surrounding
/// whitespace, an optional `+`, digits with single `_` between them.
fn parse_int(v: &str) -> Option<u64> {
    let v = v.trim_matches(|c: char| c.is_ascii_whitespace());
    let v = v.strip_prefix('+').unwrap_or(v);
    if v.is_empty() || v.starts_with('_') || v.ends_with('_') || v.contains("__") {
        return None;
    }
    v.bytes().filter(|&c| c != b'_').try_fold(0u64, |a, c| {
        if !c.is_ascii_digit() {
            return None;
        }
        a.checked_mul(10)?.checked_add(u64::from(c - b'0'))
    })
}

/// True for statuses that never carry a body (status string starts with `1`, `204`, `304`).
pub fn status_has_body(status: &str) -> bool {
    !(status.starts_with('1') || status.starts_with("204") || status.starts_with("304"))
}

/// The framing/persistence decision for one response: the only place that decides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub framing: Framing,
    pub keep_alive: bool,
    /// `Connection:` header to add (`close` or `Keep-Alive`), if any.
    pub connection: Option<&'static str>,
    /// Send `Content-Length` (known length, status that may have a body; HEAD included).
    pub content_length: Option<u64>,
}

/// Waitress's §3.3 rules with waitressd's differences: HTTP/1.1 stays alive after chunked
/// responses, HEAD and 1xx/204/304 get no body (so no length is needed to keep them alive).
///
/// | request | length known | result |
/// |---|---|---|
/// | 1.0, `Connection: keep-alive` | yes, or no body | keep-alive, `Connection: Keep-Alive` |
/// | 1.0, otherwise | – | body until close, `Connection: close` |
/// | 1.1, `Connection: close` | – | `Connection: close` |
/// | 1.1 | no | chunked, stays alive |
pub fn decide(req: RequestMeta, has_body_status: bool, content_length: Option<u64>) -> Decision {
    let body = has_body_status && !req.is_head;
    let framing = match (body, content_length, req.version) {
        (false, _, _) => Framing::None,
        (true, Some(n), _) => Framing::Length(n),
        (true, None, Version::Http11) => Framing::Chunked,
        (true, None, Version::Http10) => Framing::CloseDelimited,
    };
    let keep_alive = match req.version {
        Version::Http10 => req.keep_alive && framing != Framing::CloseDelimited,
        Version::Http11 => req.keep_alive,
    };
    let connection = match (keep_alive, req.version) {
        (false, _) => Some("close"),
        (true, Version::Http10) => Some("Keep-Alive"),
        (true, Version::Http11) => None,
    };
    Decision {
        framing,
        keep_alive,
        connection,
        content_length: content_length.filter(|_| has_body_status),
    }
}

/// Everything the head depends on.
#[derive(Debug, Clone, Copy)]
pub struct ResponseHead<'a> {
    pub request: RequestMeta,
    /// The app's status string, sent verbatim (`200 OK`, even `999 WHATEVER`).
    pub status: &'a str,
    pub headers: &'a [(String, String)],
    /// The body length if known: the app's Content-Length (from `check_start_response`), or the
    /// length waitress infers (an app_iter of length 1, a file wrapper).
    pub content_length: Option<u64>,
    /// `ident` setting; None = no `Server` header.
    pub ident: Option<&'a str>,
    /// The cached `Date` (see `date::DateCache`).
    pub date: &'a [u8],
}

/// One header line to write: the name is re-cased when written if `recase`.
#[derive(Clone, Copy)]
struct Line<'a> {
    name: &'a str,
    value: Val<'a>,
    recase: bool,
}

impl<'a> Line<'a> {
    const EMPTY: Line<'static> = Line::raw("", b"");
    const fn raw(name: &'a str, value: &'a [u8]) -> Line<'a> {
        Line {
            name,
            value: Val::Raw(value),
            recase: false,
        }
    }
}

/// App values are `str` (encoded as latin-1 when written); the server's own are bytes.
#[derive(Clone, Copy)]
enum Val<'a> {
    Str(&'a str),
    Raw(&'a [u8]),
}

impl ResponseHead<'_> {
    /// Appends the head (status line to the blank line) to `out` and returns the encoder for the
    /// body. `out` is reused between responses; with up to 60 app headers nothing is allocated.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<BodyEncoder, ResponseError> {
        let has_body = status_has_body(self.status);
        let d = decide(self.request, has_body, self.content_length);
        let mut app_server = false;
        let mut app_date = false;
        for (name, _) in self.headers {
            app_server |= name.eq_ignore_ascii_case("server");
            app_date |= name.eq_ignore_ascii_case("date");
        }
        let mut cl_digits = [0u8; 20];
        // The server's own lines. Sorted with the app's as indices: an array of `Line`s would be
        // initialised on every call, which cost more than the sort itself.
        let mut own = [Line::EMPTY; 5];
        let mut n_own = 0;
        let mut add = |name, value| {
            own[n_own] = Line::raw(name, value);
            n_own += 1;
        };
        if let Some(n) = d.content_length {
            add("Content-Length", super::parse::decimal(n, &mut cl_digits));
        }
        if let Some(c) = d.connection {
            add("Connection", c.as_bytes());
        }
        if d.framing == Framing::Chunked {
            add("Transfer-Encoding", b"chunked");
        }
        let ident = self.ident.filter(|i| !i.is_empty());
        match (app_server, ident) {
            (false, Some(i)) => add("Server", i.as_bytes()),
            (false, None) => {}
            (true, i) => add("Via", i.unwrap_or("waitress").as_bytes()),
        }
        if !app_date {
            add("Date", self.date);
        }
        let n_app = self.headers.len();
        let line = |i: usize| match self.headers.get(i) {
            Some((n, v)) => Line {
                name: n,
                value: Val::Str(v),
                recase: true,
            },
            None => own[i - n_app],
        };
        // The length is written from the decision (dropped for 1xx/204/304).
        let ids = (0..n_app)
            .filter(|&i| !self.headers[i].0.eq_ignore_ascii_case("content-length"))
            .chain(n_app..n_app + n_own);
        let mut stack = [0u8; 64];
        let start = out.len();
        let r = if n_app + n_own <= stack.len() {
            let mut n = 0;
            for i in ids {
                stack[n] = i as u8; // < 64
                n += 1;
            }
            sort_and_write(
                out,
                self.request.version,
                self.status,
                &mut stack[..n],
                line,
            )
        } else {
            let mut heap: Vec<usize> = ids.collect();
            sort_and_write(out, self.request.version, self.status, &mut heap, line)
        };
        if r.is_err() {
            out.truncate(start);
        }
        r?;
        Ok(BodyEncoder {
            framing: d.framing,
            keep_alive: d.keep_alive,
            is_head: self.request.is_head,
            written: 0,
            ignored: 0,
            warned_excess: false,
        })
    }
}

/// Stable-sorts the lines by re-cased name (insertion sort: tiny n, no allocation), so repeated
/// names such as Set-Cookie keep their order (waitress sorts with key=name), then writes them.
fn sort_and_write<'a, T: Copy + Into<usize>>(
    out: &mut Vec<u8>,
    version: Version,
    status: &str,
    ids: &mut [T],
    line: impl Fn(usize) -> Line<'a>,
) -> Result<(), ResponseError> {
    for i in 1..ids.len() {
        let mut j = i;
        while j > 0
            && cmp_names(&line(ids[j - 1].into()), &line(ids[j].into()))
                == std::cmp::Ordering::Greater
        {
            ids.swap(j - 1, j);
            j -= 1;
        }
    }
    out.extend_from_slice(version.as_str().as_bytes());
    out.push(b' ');
    latin1_into(out, status, "status")?;
    out.extend_from_slice(b"\r\n");
    for l in ids.iter().map(|&i| line(i.into())) {
        if l.recase {
            recase_into(out, l.name)?;
        } else {
            out.extend_from_slice(l.name.as_bytes());
        }
        out.extend_from_slice(b": ");
        match l.value {
            // App values are str: encoded as latin-1 (waitress; other characters → 500).
            Val::Str(v) => latin1_into(out, v, "value")?,
            Val::Raw(v) => out.extend_from_slice(v),
        }
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    Ok(())
}

/// Waitress re-cases every app header name: each `-`-separated part `.capitalize()`d
/// (`WWW-Authenticate` → `Www-Authenticate`, `ETag` → `Etag`).
fn recased(name: &str) -> impl Iterator<Item = char> + '_ {
    let mut first = true;
    name.chars().map(move |c| {
        let r = if first {
            c.to_ascii_uppercase()
        } else {
            c.to_ascii_lowercase()
        };
        first = c == '-';
        r
    })
}

/// Sort key: the re-cased name (the names waitressd adds are already in that form), compared
/// byte by byte (re-casing only touches ASCII, and UTF-8 byte order is code point order).
fn cmp_names(a: &Line<'_>, b: &Line<'_>) -> std::cmp::Ordering {
    let (x, y) = (a.name.as_bytes(), b.name.as_bytes());
    let (mut up_x, mut up_y) = (true, true);
    for (&cx, &cy) in x.iter().zip(y) {
        let rx = if up_x {
            cx.to_ascii_uppercase()
        } else {
            cx.to_ascii_lowercase()
        };
        let ry = if up_y {
            cy.to_ascii_uppercase()
        } else {
            cy.to_ascii_lowercase()
        };
        if rx != ry {
            return rx.cmp(&ry);
        }
        up_x = cx == b'-';
        up_y = cy == b'-';
    }
    x.len().cmp(&y.len())
}

fn recase_into(out: &mut Vec<u8>, name: &str) -> Result<(), ResponseError> {
    if name.is_ascii() {
        let mut up = true;
        out.extend(name.bytes().map(|c| {
            let r = if up {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            };
            up = c == b'-';
            r
        }));
        return Ok(());
    }
    for c in recased(name) {
        push_latin1(out, c, "name")?;
    }
    Ok(())
}

fn latin1_into(out: &mut Vec<u8>, s: &str, what: &str) -> Result<(), ResponseError> {
    if s.is_ascii() {
        out.extend_from_slice(s.as_bytes());
        return Ok(());
    }
    for c in s.chars() {
        push_latin1(out, c, what)?;
    }
    Ok(())
}

fn push_latin1(out: &mut Vec<u8>, c: char, what: &str) -> Result<(), ResponseError> {
    match u8::try_from(u32::from(c)) {
        Ok(b) => {
            out.push(b);
            Ok(())
        }
        Err(_) => Err(ResponseError::NotLatin1 {
            what: what.to_string(),
        }),
    }
}

#[cfg(test)]
#[path = "response_tests.rs"]
mod tests;

//! Response heads: header re-casing and sorting, `Server`/`Via`, `Date`, Content-Length, and the
//! one keep-alive/close/chunked decision (§3.3, hyper-style); the name and Content-Length rules
//! the WSGI layer's `start_response` checks (§3.1) use.
use super::encode::{BodyEncoder, Framing};
use super::pytext::encode_latin1;
use super::request::RequestMeta;
use super::Version;

/// Why a response head cannot be encoded: a character outside latin-1 in the status or a header.
/// (The app's `start_response` arguments are checked, with waitress's exceptions, by the WSGI
/// layer: src/wsgi/checks.rs.)
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    #[error("'latin-1' codec can't encode character in header {what}")]
    NotLatin1 { what: String },
}

/// The interim response for `Expect: 100-continue` (no headers, as waitress).
pub const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// Names an app may not set (PEP 3333 hop-by-hop; waitress's list has `trailers`, so `Trailer`
/// is allowed, as in 3.0.2).
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
];

/// `name.eq_ignore_ascii_case("content-length")`, as two 8-byte compares: the name is asked
/// for on every header, up to three times a response.
pub fn is_content_length(name: &str) -> bool {
    const LOWER: &[u8; 14] = b"content-length";
    /// 0x20 on the letters of `LOWER[at..at + 8]`: OR-ing it lowercases exactly the two cases of
    /// each letter, and leaves the dash compared as it is.
    const fn letters(at: usize) -> u64 {
        let mut m = 0u64;
        let mut i = 0;
        while i < 8 {
            if LOWER[at + i].is_ascii_lowercase() {
                m |= 0x20 << (8 * i);
            }
            i += 1;
        }
        m
    }
    let word = |b: &[u8], at: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&b[at..at + 8]);
        u64::from_le_bytes(w)
    };
    let b = name.as_bytes();
    b.len() == LOWER.len()
        && word(b, 0) | letters(0) == word(LOWER, 0)
        && word(b, 6) | letters(6) == word(LOWER, 6)
}

/// True for a hop-by-hop header name (any case).
pub fn is_hop_by_hop(name: &str) -> bool {
    HOP_BY_HOP.iter().any(|h| name.eq_ignore_ascii_case(h))
}

/// Python `int(value)` for the non-negative values a Content-Length can take: surrounding
/// whitespace (Python's: also `\x85`, `\xa0`, `\x1c`-`\x1f`), an optional `+`, digits with
/// single `_` between them. The one reading of a response's Content-Length: the WSGI layer's
/// `start_response` checks read it with this and hand the length to the server.
pub fn parse_int(v: &str) -> Option<u64> {
    // Plain digits (nearly always) need no trim, which decodes characters.
    let plain = !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit());
    let v = if plain {
        v
    } else {
        v.trim_matches(super::pytext::py_space)
    };
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

/// True when an app's header can be sent as a field line that every recipient frames alike: the
/// name token characters (RFC 9110 §5.1), the value VCHAR, obs-text, SP or HTAB (§5.5).
/// waitress only refused CR and LF: `("Transfer-Encoding ", "chunked")` went out as
/// `Transfer-Encoding : chunked` beside the server's own `Content-Length`, a response a proxy
/// that strips the space (RFC 9112 §5.1 tells proxies to) frames as chunked and a client frames
/// by the length. Latin-1 letters in a name (`X-é`) are still sent, as waitress does: no
/// recipient reads them as a framing header.
pub fn header_ok(name: &str, value: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|c| c >= 0x80 || super::decode::is_tchar(c))
        && value.bytes().all(super::decode::is_field_byte)
}

/// True when a header can be sent exactly as it is and passes every check trivially, as nearly
/// every header does: a token name and a value of visible ASCII, spaces and tabs (so ASCII
/// without CR or LF, and `header_ok`). The value's test is one pass without an early exit,
/// which the compiler turns into a few vector compares per 16 bytes.
pub fn header_plain(name: &str, value: &str) -> bool {
    !name.is_empty()
        && name.bytes().all(super::decode::is_tchar)
        && value.bytes().fold(true, |ok, b| {
            ok & ((b.wrapping_sub(0x20) < 0x5f) | (b == b'\t'))
        })
}

/// True when `status` can start an HTTP/1.1 status line: a three-digit code from 100 (RFC 9112
/// §4), then nothing or a space and the reason. waitress sent any string (`2000 OK`, `OK`):
/// a client or proxy that cannot read the status line may fall back to HTTP/0.9 and lose the
/// response's place (nginx then sent nothing for a HEAD, so its client took the next response
/// for the HEAD's).
pub fn status_line_ok(status: &str) -> bool {
    match status.as_bytes() {
        [a @ b'1'..=b'9', b, c, rest @ ..] => {
            a.is_ascii_digit()
                && b.is_ascii_digit()
                && c.is_ascii_digit()
                && matches!(rest.first(), None | Some(b' '))
        }
        _ => false,
    }
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
/// responses, HEAD and 204/304 get no body (so no length is needed to keep them alive).
///
/// | request | length known | result |
/// |---|---|---|
/// | any, app status 1xx | – | no body, `Connection: close` |
/// | 1.0, `Connection: keep-alive` | yes, or no body | keep-alive, `Connection: Keep-Alive` |
/// | 1.0, otherwise | – | body until close, `Connection: close` |
/// | 1.1, `Connection: close` | – | `Connection: close` |
/// | 1.1 | no | chunked, stays alive |
///
/// A 1xx status is interim to every client and proxy: they wait on for the final response, so
/// the next request's response on a kept-alive connection would be read as this one's. The
/// connection is closed after it instead (as waitress does). The WSGI layer refuses an app's
/// 1xx before it gets here (nginx passes a 1xx on as a final response); this is the backstop.
pub fn decide(req: RequestMeta, status: &str, content_length: Option<u64>) -> Decision {
    let has_body_status = status_has_body(status);
    let body = has_body_status && !req.is_head;
    let framing = match (body, content_length, req.version) {
        (false, _, _) => Framing::None,
        (true, Some(n), _) => Framing::Length(n),
        (true, None, Version::Http11) => Framing::Chunked,
        (true, None, Version::Http10) => Framing::CloseDelimited,
    };
    let keep_alive = !status.starts_with('1')
        && match req.version {
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
    /// The body length if known: the app's Content-Length (read by the WSGI layer's
    /// `start_response` with [`parse_int`]), or the length waitress infers (an app_iter of length
    /// 1, a file wrapper).
    pub content_length: Option<u64>,
    /// `ident` setting; None = no `Server` header.
    pub ident: Option<&'a str>,
    /// The cached `Date` (see `date::DateCache`).
    pub date: &'a [u8],
}

/// A line the server adds; its name is already in re-cased form.
#[derive(Clone, Copy)]
struct Own<'a> {
    name: &'static OwnName,
    value: &'a [u8],
}

/// A name the server adds, with the sort key of its first [`PREFIX`] bytes (see [`Key`]).
struct OwnName {
    name: &'static str,
    key: u128,
}

impl OwnName {
    const fn new(name: &'static str) -> OwnName {
        let b = name.as_bytes();
        let mut key = 0u128;
        let mut i = 0;
        while i < PREFIX {
            key = (key << 8) | if i < b.len() { b[i] as u128 } else { 0 };
            i += 1;
        }
        OwnName {
            name,
            key: key << 8,
        }
    }
}

const CONTENT_LENGTH: OwnName = OwnName::new("Content-Length");
const CONNECTION: OwnName = OwnName::new("Connection");
const TRANSFER_ENCODING: OwnName = OwnName::new("Transfer-Encoding");
const SERVER: OwnName = OwnName::new("Server");
const VIA: OwnName = OwnName::new("Via");
const DATE: OwnName = OwnName::new("Date");

/// Name bytes in a sort key.
const PREFIX: usize = 15;

/// Lines sorted by key on the stack; a head with more lines is sorted by [`cmp_names`] alone.
const STACK_LINES: usize = 24;

/// A line's sort key: the first [`PREFIX`] bytes of its re-cased name, big-endian and
/// zero-padded, then its index (app headers in their order, then the server's own lines) as the
/// low byte. Keys whose name bytes differ order as the whole re-cased names do (a shorter name
/// that is a prefix pads with zeros, below any byte but NUL); on equal name bytes the names are
/// compared whole ([`cmp_names`]) and equal names keep their order, so the sort is stable.
type Key = u128;

fn key_id(k: Key) -> usize {
    usize::from(k as u8)
}

impl ResponseHead<'_> {
    /// Appends the head (status line to the blank line) to `out` and returns the encoder for the
    /// body. `out` is reused between responses; with up to 24 lines nothing is allocated.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<BodyEncoder, ResponseError> {
        let d = decide(self.request, self.status, self.content_length);
        let mut app_server = false;
        let mut app_date = false;
        for (name, _) in self.headers {
            app_server |= name.eq_ignore_ascii_case("server");
            app_date |= name.eq_ignore_ascii_case("date");
        }
        let mut cl_digits = [0u8; 20];
        let mut own = [Own {
            name: &DATE,
            value: b"",
        }; 5];
        let mut n_own = 0;
        let mut add = |name, value| {
            own[n_own] = Own { name, value };
            n_own += 1;
        };
        if let Some(n) = d.content_length {
            add(&CONTENT_LENGTH, super::parse::decimal(n, &mut cl_digits));
        }
        if let Some(c) = d.connection {
            add(&CONNECTION, c.as_bytes());
        }
        if d.framing == Framing::Chunked {
            add(&TRANSFER_ENCODING, b"chunked");
        }
        // Latin-1, as waitress encodes the whole head (config refuses other characters).
        let ident = self.ident.filter(|i| !i.is_empty()).map(encode_latin1);
        match (app_server, &ident) {
            (false, Some(i)) => add(&SERVER, i),
            (false, None) => {}
            (true, i) => add(&VIA, i.as_deref().unwrap_or(b"waitress")),
        }
        if !app_date {
            add(&DATE, self.date);
        }
        let own = &own[..n_own];
        let start = out.len();
        let r = self.write(out, own);
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

    /// Writes the status line and the lines stably sorted by re-cased name (waitress sorts with
    /// key=name, so repeated names such as Set-Cookie keep their order), then the blank line.
    fn write(&self, out: &mut Vec<u8>, own: &[Own<'_>]) -> Result<(), ResponseError> {
        let n_app = self.headers.len();
        let name = |id: usize| match self.headers.get(id) {
            Some((n, _)) => n.as_str(),
            None => own[id - n_app].name.name,
        };
        // The app's Content-Length is written from the decision (dropped for 1xx/204/304).
        let written = |name: &String| !is_content_length(name);
        let mut stack = [0; STACK_LINES];
        let mut heap = Vec::new();
        let order = if n_app + own.len() <= STACK_LINES {
            // Plain loops: a filtered chain of ranges cost more than the sort.
            let mut n = 0;
            for (id, (name, _)) in self.headers.iter().enumerate() {
                if written(name) {
                    stack[n] = app_key(name.as_bytes()) | id as Key;
                    n += 1;
                }
            }
            for (i, line) in own.iter().enumerate() {
                stack[n] = line.name.key | (n_app + i) as Key;
                n += 1;
            }
            let keys = &mut stack[..n];
            // Insertion sort: a handful of lines, no allocation.
            for i in 1..keys.len() {
                let k = keys[i];
                let mut j = i;
                while j > 0 && after(keys[j - 1], k, name) {
                    keys[j] = keys[j - 1];
                    j -= 1;
                }
                keys[j] = k;
            }
            Order::Keys(keys)
        } else {
            heap.extend((0..n_app).filter(|&i| written(&self.headers[i].0)));
            heap.extend(n_app..n_app + own.len());
            heap.sort_by(|&a, &b| cmp_names(name(a), name(b)));
            Order::Ids(&heap)
        };
        out.extend_from_slice(self.request.version.as_str().as_bytes());
        out.push(b' ');
        latin1_into(out, self.status, "status")?;
        out.extend_from_slice(b"\r\n");
        let mut line = |id: usize, key: Option<Key>| {
            match self.headers.get(id) {
                Some((name, value)) => {
                    match key {
                        // The key holds the name re-cased: written from there.
                        Some(k) if name.len() <= PREFIX && name.is_ascii() => {
                            out.extend_from_slice(&k.to_be_bytes()[..name.len()]);
                        }
                        _ => recase_into(out, name)?,
                    }
                    out.extend_from_slice(b": ");
                    // App values are str: encoded as latin-1 (waitress; other characters → 500).
                    latin1_into(out, value, "value")?;
                }
                None => {
                    let line = own[id - n_app];
                    out.extend_from_slice(line.name.name.as_bytes());
                    out.extend_from_slice(b": ");
                    out.extend_from_slice(line.value);
                }
            }
            out.extend_from_slice(b"\r\n");
            Ok(())
        };
        match order {
            Order::Keys(keys) => keys.iter().try_for_each(|&k| line(key_id(k), Some(k)))?,
            Order::Ids(ids) => ids.iter().try_for_each(|&id| line(id, None))?,
        }
        out.extend_from_slice(b"\r\n");
        Ok(())
    }
}

/// The lines in the order they are written.
enum Order<'a> {
    Keys(&'a [Key]),
    Ids(&'a [usize]),
}

/// True when the line of key `a` sorts after that of `b` (see [`Key`]).
fn after<'a>(a: Key, b: Key, name: impl Fn(usize) -> &'a str) -> bool {
    if (a ^ b) >> 8 != 0 {
        return a > b;
    }
    let (x, y) = (key_id(a), key_id(b));
    cmp_names(name(x), name(y)).then(x.cmp(&y)).is_gt()
}

/// The name part of an app header's [`Key`] (its low byte is zero).
fn app_key(name: &[u8]) -> Key {
    let mut k = [0u8; 16];
    let n = name.len().min(PREFIX);
    k[..n].copy_from_slice(&name[..n]);
    recase_key(u128::from_be_bytes(k))
}

/// Bytes `0x01` in every position of a [`Key`].
const ONES: u128 = u128::MAX / 0xff;

/// [`recase_ascii`] of the 16 big-endian bytes of `x` at once, as bit operations on every byte
/// (SWAR: a byte's high bit marks it in each mask; adding below `0x80` never carries into the
/// next byte).
fn recase_key(x: u128) -> u128 {
    let high = ONES * 0x80;
    let ascii = !x & high;
    let y = x & (ONES * 0x7f);
    // High bit set where the 7-bit value is >= n.
    let at_least = |n: u8| (y + ONES * u128::from(0x80 - n)) & high;
    let upper = at_least(b'A') & !at_least(b'Z' + 1) & ascii;
    let lower = at_least(b'a') & !at_least(b'z' + 1) & ascii;
    let d = y ^ (ONES * u128::from(b'-'));
    let dash = !((d + ONES * 0x7f) | d) & high & ascii;
    // The first byte and every byte after a dash are capitalised; big-endian, so "after" is the
    // next lower byte.
    let first = (dash >> 8) | (0x80 << 120);
    x ^ (((upper & !first) | (lower & first)) >> 2)
}

/// Waitress re-cases every app header name: each `-`-separated part `.capitalize()`d
/// (`WWW-Authenticate` → `Www-Authenticate`, `ETag` → `Etag`). Only ASCII letters change, so
/// this works on UTF-8 bytes as on characters.
fn recase_ascii(name: &mut [u8]) {
    let mut up = true;
    for c in name {
        let was = *c;
        *c = if up {
            was.to_ascii_uppercase()
        } else {
            was.to_ascii_lowercase()
        };
        up = was == b'-';
    }
}

/// The order of two names re-cased (the names waitressd adds are already in that form),
/// compared byte by byte (re-casing only touches ASCII, and UTF-8 byte order is code point
/// order).
fn cmp_names(a: &str, b: &str) -> std::cmp::Ordering {
    let (x, y) = (a.as_bytes(), b.as_bytes());
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

/// Writes `name` re-cased and latin-1 encoded.
fn recase_into(out: &mut Vec<u8>, name: &str) -> Result<(), ResponseError> {
    if name.is_ascii() {
        let start = out.len();
        out.extend_from_slice(name.as_bytes());
        recase_ascii(&mut out[start..]);
        return Ok(());
    }
    let mut up = true;
    for c in name.chars() {
        let r = if up {
            c.to_ascii_uppercase()
        } else {
            c.to_ascii_lowercase()
        };
        up = c == '-';
        push_latin1(out, r, "name")?;
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

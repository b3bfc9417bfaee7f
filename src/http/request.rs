//! A parsed request head plus where it came from: what the app side reads.
//!
//! Owned and reusable: the server keeps `Request`s in a pool and `clear()`s them, so a busy
//! connection allocates nothing per request once its buffers have grown. All bytes live in one
//! arena (`buf`); every field is a span into it. Derived bytes (decoded path, merged or folded
//! header values, proxy rewrites) are appended to the same arena.
use std::ops::Range;

/// The HTTP version the request is answered with. Only 1.0 and 1.1 exist here: other versions
/// are answered 505 before a `Request` is complete (waitress would answer them as 1.0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Version {
    #[default]
    Http10,
    Http11,
}

impl Version {
    /// The `SERVER_PROTOCOL` string.
    pub fn as_str(self) -> &'static str {
        match self {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        }
    }
}

/// Connection facts that feed the environ, after trusted-proxy processing (waitress §1.7, §3.8).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    /// The peer's address as the server got it, never rewritten by proxy headers: the socket's
    /// peer, or the client a PROXY header names; `None` for a unix-socket peer. What
    /// `trusted_proxy` is matched against, with nothing to parse per request.
    pub peer_ip: Option<std::net::IpAddr>,
    /// REMOTE_ADDR / REMOTE_HOST (`localhost` on unix sockets).
    pub remote_addr: String,
    /// REMOTE_PORT (`None` on unix sockets, as waitress).
    pub remote_port: String,
    /// SERVER_NAME (the `server_name` setting unless a trusted proxy header says otherwise).
    pub server_name: String,
    /// SERVER_PORT (the accepting listener's port, or the unix socket path).
    pub server_port: String,
    /// wsgi.url_scheme.
    pub url_scheme: String,
    /// A TLS connection: `HTTPS=on` and the client certificate facts (None: plain TCP).
    /// Shared with the connection: every request on it carries the same facts.
    pub tls: Option<std::sync::Arc<TlsInfo>>,
}

/// What a TLS connection adds to the environ (mod_ssl's names).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsInfo {
    /// `SSL_CLIENT_S_DN`: the verified client certificate's subject (RFC 4514 text), if one
    /// was sent.
    pub client_s_dn: Option<String>,
    /// `SSL_CLIENT_VERIFY`: `SUCCESS` or `NONE`.
    pub client_verify: &'static str,
}

/// The environ key for header `name` (waitress): upper-cased, `-` → `_`, prefixed `HTTP_`
/// except `CONTENT_LENGTH` and `CONTENT_TYPE`. Written into `out` (cleared first), so a warm
/// buffer does not allocate; the WSGI layer may intern the result.
pub fn environ_key(name: &[u8], out: &mut Vec<u8>) {
    out.clear();
    let is = |want: &[u8]| {
        name.len() == want.len()
            && name
                .iter()
                .zip(want)
                .all(|(&a, &b)| a.to_ascii_uppercase() == b || (a == b'-' && b == b'_'))
    };
    if !(is(b"CONTENT_LENGTH") || is(b"CONTENT_TYPE")) {
        out.extend_from_slice(b"HTTP_");
    }
    out.extend(name.iter().map(|&c| {
        if c == b'-' {
            b'_'
        } else {
            c.to_ascii_uppercase()
        }
    }));
}

/// A byte range in the request arena (u32 keeps `Field` at 16 bytes; heads are far below 4 GiB
/// because `max_request_header_size` bounds them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) start: u32,
    pub(crate) end: u32,
}

impl Span {
    pub(crate) fn new(r: Range<usize>) -> Span {
        Span {
            start: r.start as u32,
            end: r.end as u32,
        }
    }
    pub(crate) fn range(self) -> Range<usize> {
        self.start as usize..self.end as usize
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Field {
    pub(crate) name: Span,
    pub(crate) value: Span,
}

/// What the response side needs to know about the request after the `Request` itself has been
/// handed to the app (framing and keep-alive, waitress §3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RequestMeta {
    pub version: Version,
    /// HTTP/1.0: the request said exactly `Connection: keep-alive` (waitress §2.9 / §3.3);
    /// HTTP/1.1: no `close` option in its Connection list (RFC 9112 §9.6; case-insensitive).
    pub keep_alive: bool,
    /// `HEAD` requests get no response body (a waitressd difference, §3.7).
    pub is_head: bool,
}

/// One parsed request head. Header values are as they will reach the environ: duplicates merged
/// with `", "`, `Transfer-Encoding` removed, names containing `_` dropped, obs-folds joined.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub(crate) buf: Vec<u8>,
    pub(crate) method: Span,
    pub(crate) target: Span,
    pub(crate) path: Span,
    pub(crate) query: Span,
    pub(crate) fields: Vec<Field>,
    pub(crate) version: Version,
    pub(crate) content_length: Option<u64>,
    pub(crate) keep_alive: bool,
    pub(crate) expect_continue: bool,
    /// Connection facts; the server sets it per request (`origin.clone_from(..)` reuses the
    /// strings), trusted-proxy processing rewrites it. `clear()` leaves it alone.
    pub origin: Origin,
}

impl Request {
    pub fn new() -> Request {
        Request::default()
    }

    /// Forgets the previous request but keeps every allocation (and `origin`).
    pub fn clear(&mut self) {
        self.buf.clear();
        self.fields.clear();
        self.method = Span::default();
        self.target = Span::default();
        self.path = Span::default();
        self.query = Span::default();
        self.version = Version::Http10;
        self.content_length = None;
        self.keep_alive = false;
        self.expect_continue = false;
    }

    fn get(&self, s: Span) -> &[u8] {
        self.buf.get(s.range()).unwrap_or_default()
    }

    /// REQUEST_METHOD (always upper-case: lower-case methods are rejected, as waitress).
    pub fn method(&self) -> &[u8] {
        self.get(self.method)
    }
    /// The raw request-target as received (REQUEST_URI).
    pub fn target(&self) -> &[u8] {
        self.get(self.target)
    }
    /// Percent-decoded path with leading slashes collapsed (PATH_INFO before `url_prefix`, see
    /// [`crate::http::uri::path_info`]). Bytes; the environ decodes them as latin-1.
    pub fn path(&self) -> &[u8] {
        self.get(self.path)
    }
    /// Raw query string without the `?` (QUERY_STRING), empty if none.
    pub fn query(&self) -> &[u8] {
        self.get(self.query)
    }
    pub fn version(&self) -> Version {
        self.version
    }
    /// The body length once the request is complete (the de-chunked length for chunked
    /// bodies; CONTENT_LENGTH). None when the request had neither Content-Length nor chunked.
    pub fn content_length(&self) -> Option<u64> {
        self.content_length
    }
    /// The request asked for `100 Continue` (HTTP/1.1, `Expect: 100-continue` any case).
    pub fn expect_continue(&self) -> bool {
        self.expect_continue
    }
    pub fn is_head(&self) -> bool {
        self.method() == b"HEAD"
    }
    /// The facts the response framing needs (copy it before handing the request away).
    pub fn meta(&self) -> RequestMeta {
        RequestMeta {
            version: self.version,
            keep_alive: self.keep_alive,
            is_head: self.is_head(),
        }
    }

    /// (name as received, value) pairs in arrival order of each name's first occurrence.
    pub fn headers(&self) -> impl ExactSizeIterator<Item = (&[u8], &[u8])> + '_ {
        self.fields
            .iter()
            .map(move |f| (self.get(f.name), self.get(f.value)))
    }

    /// The (merged) value of header `name`, compared case-insensitively.
    pub fn header(&self, name: &[u8]) -> Option<&[u8]> {
        self.find(name).map(|i| self.get(self.fields[i].value))
    }

    pub(crate) fn find(&self, name: &[u8]) -> Option<usize> {
        self.fields
            .iter()
            .position(|f| self.get(f.name).eq_ignore_ascii_case(name))
    }

    /// Appends bytes to the arena and returns their span.
    pub(crate) fn push_bytes(&mut self, bytes: &[u8]) -> Span {
        let start = self.buf.len();
        self.buf.extend_from_slice(bytes);
        Span::new(start..self.buf.len())
    }

    /// Sets header `name` (case-insensitive) to `value`, adding it if absent.
    pub fn set_header(&mut self, name: &[u8], value: &[u8]) {
        let value = self.push_bytes(value);
        match self.find(name) {
            Some(i) => self.fields[i].value = value,
            None => {
                let name = self.push_bytes(name);
                self.fields.push(Field { name, value });
            }
        }
    }

    /// Removes header `name` (case-insensitive); true if it was there.
    pub fn remove_header(&mut self, name: &[u8]) -> bool {
        match self.find(name) {
            Some(i) => {
                self.fields.remove(i);
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environ_keys_follow_waitress() {
        let mut k = Vec::new();
        for (name, want) in [
            ("Content-Length", "CONTENT_LENGTH"),
            ("content-type", "CONTENT_TYPE"),
            ("X-Forwarded-For", "HTTP_X_FORWARDED_FOR"),
            ("Host", "HTTP_HOST"),
            ("Content-Md5", "HTTP_CONTENT_MD5"),
        ] {
            environ_key(name.as_bytes(), &mut k);
            assert_eq!(k, want.as_bytes());
        }
    }
}

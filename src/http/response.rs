//! Response heads: `start_response` checks (§3.1), header re-casing and sorting, `Server`/`Via`,
//! `Date`, Content-Length, and the one keep-alive/close/chunked decision (§3.3, hyper-style).
use super::encode::BodyEncoder;
use super::request::RequestMeta;

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
    #[error("{name} is a \"hop-by-hop\" header; it cannot be used by a WSGI application (see PEP 3333)")]
    HopByHop { name: String },
    #[error("invalid literal for int() with base 10: '{value}'")]
    BadContentLength { value: String },
    #[error("'latin-1' codec can't encode character in header {what}")]
    NotLatin1 { what: String },
}

/// Checks a `start_response` call (waitress order: status, then per header value CR/LF, name
/// CR/LF, Content-Length, hop-by-hop). Returns the app's Content-Length if it set one.
pub fn check_start_response(
    status: &str,
    headers: &[(String, String)],
) -> Result<Option<u64>, ResponseError> {
    let _ = (status, headers);
    todo!("response")
}

/// True for statuses that never carry a body (status string starts with `1`, `204`, `304`).
pub fn status_has_body(status: &str) -> bool {
    !(status.starts_with('1') || status.starts_with("204") || status.starts_with("304"))
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

impl ResponseHead<'_> {
    /// Appends the head (status line to the blank line) to `out` and returns the encoder for the
    /// body. `out` is reused between responses, so a warm connection does not allocate.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<BodyEncoder, ResponseError> {
        let _ = out;
        todo!("response")
    }
}

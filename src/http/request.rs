//! A parsed request head plus where it came from: what the app side reads.
//!
//! Owned and reusable: the server keeps `Request`s in a pool and `clear()`s them, so a busy
//! connection allocates nothing per request once its buffers have grown.

/// The HTTP version the request is answered with (waitress answers unknown 1.x/2.x as 1.0,
/// waitressd answers them 505 before a `Request` exists).
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
}

/// One parsed request head. Header values are as they will reach the environ: duplicates merged
/// with `", "`, `Transfer-Encoding` removed on HTTP/1.1, names containing `_` dropped.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub method: Vec<u8>,
    /// The raw request-target (REQUEST_URI).
    pub target: Vec<u8>,
    /// Percent-decoded path, leading slashes collapsed (PATH_INFO before url_prefix handling).
    pub path: Vec<u8>,
    /// Raw query string without the `?`.
    pub query: Vec<u8>,
    pub version: Version,
    /// (name as received, value) pairs.
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
    /// The body length once complete (de-chunked length for chunked bodies); None when the
    /// request had no Content-Length and was not chunked.
    pub content_length: Option<u64>,
    pub origin: Origin,
}

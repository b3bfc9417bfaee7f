//! Sans-IO HTTP/1.x: request parsing, body decoding, response framing, buffers, error responses.
//!
//! Nothing here touches sockets, mio or Python: it is fed bytes and returns bytes, so every rule
//! is tested by feeding it requests split at every byte boundary. Split by job (as hyper's h1):
//! `parse` (head framing, request line) · `head` (header fields → `Request`) · `decode` (body
//! framing: fixed, chunked) · `response` (head encoding, keep-alive decision, the header rules
//! the WSGI layer's start_response checks use) · `encode` (body framing out) · `buffer`
//! (`OverflowableBuffer`) · `uri` (path, query, url_prefix) · `proxy` + `pytext` (trusted proxy
//! headers) · `trust` (peer lists: trusted_proxy, proxy_allow_ips) · `proxy_protocol` (HAProxy
//! PROXY v1/v2 header) · `date` · `error`.
//!
//! Where this layer deliberately differs from waitress 3.0.2 (RFC 9112 strictness):
//! bare CR/LF → 400 at once (waitress waits); CTL/NUL/TAB/DEL in the target → 400; a target in
//! none of the RFC 9112 §3.2 forms allowed for its method → 400 (`uri::target_form_allowed`);
//! empty Transfer-Encoding list elements and obs-fold lines that look like a `name:` field →
//! 400; `close` anywhere in an HTTP/1.1 Connection list, and any CONNECT, close the connection
//! after the response (each found by the differential check against hyper); no version,
//! trailing whitespace or leading spaces on the request line → 400; versions other than 1.0/1.1
//! → 505; HTTP/1.1 without one valid Host → 400; repeated Host/Content-Length/Content-Type →
//! 400; `chunked` twice → 400, other codings 501; TE with CL → 400; TE on HTTP/1.0 → 400; an
//! empty chunk-size line → 400 (waitress skips it); trailers are validated. Responses: HEAD and
//! 1xx/204/304 carry no body and need no length to stay alive; HTTP/1.1 stays alive after a
//! chunked response. Kept from waitress: obs-fold accepted (joined, leading whitespace kept),
//! `_` names dropped, repeats merged with ", ", error texts and status-line versions.
pub mod app;
pub mod buffer;
pub mod date;
mod decode;
pub mod encode;
pub mod error;
mod head;
pub mod log_format;
pub mod parse;
pub mod proxy;
pub mod proxy_protocol;
pub(crate) mod pytext;
pub mod request;
pub mod response;
pub mod spare_files;
pub mod trust;
pub mod uri;

pub use buffer::OverflowableBuffer;
pub use encode::{BodyEncoder, Chunk, Finish, Warning};
pub use error::{error_response, gateway_timeout_response, internal_error_response, HttpError};
pub use parse::{Progress, RequestParser, Status};
pub use request::{environ_key, Origin, Request, RequestMeta, TlsInfo, Version};
pub use response::{ResponseError, ResponseHead};
pub use trust::{NotAPeer, Peers};

/// Request limits (waitress `max_request_header_size`, `max_request_body_size`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub max_request_header_size: u64,
    pub max_request_body_size: u64,
}

#[cfg(test)]
mod alloc_tests;

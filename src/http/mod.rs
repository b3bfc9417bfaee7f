//! Sans-IO HTTP/1.x: request parsing, body decoding, response framing, buffers, error responses.
//!
//! Nothing here touches sockets, mio or Python: it is fed bytes and returns bytes, so every rule
//! is tested by feeding it requests split at every byte boundary. Split by job (as hyper's h1):
//! `parse` (head framing, request line) · `head` (header fields → `Request`) · `decode` (body
//! framing: fixed, chunked) · `response` (start_response checks, head encoding, keep-alive
//! decision) · `encode` (body framing out) · `buffer` (`OverflowableBuffer`) · `uri` (path,
//! query, url_prefix) · `proxy` (trusted proxy headers) · `date` · `error`.
pub mod app;
pub mod buffer;
pub mod date;
mod decode;
pub mod encode;
pub mod error;
mod head;
pub mod parse;
pub mod proxy;
pub mod request;
pub mod response;
pub mod uri;

pub use buffer::OverflowableBuffer;
pub use encode::{BodyEncoder, Chunk, Finish, Warning};
pub use error::{error_response, internal_error_response, HttpError};
pub use parse::{Progress, RequestParser, Status};
pub use request::{environ_key, Origin, Request, RequestMeta, Version};
pub use response::{ResponseError, ResponseHead};

/// Request limits (waitress `max_request_header_size`, `max_request_body_size`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub max_request_header_size: u64,
    pub max_request_body_size: u64,
}

#[cfg(test)]
mod alloc_tests;

//! Sans-IO HTTP/1.x: request parsing, body decoding, response framing, buffers, error responses.
//!
//! Nothing here touches sockets, mio or Python: it is fed bytes and returns bytes, so every rule
//! is tested by feeding it requests split at every byte boundary.
pub mod app;

/// Request limits (waitress `max_request_header_size`, `max_request_body_size`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub max_request_header_size: u64,
    pub max_request_body_size: u64,
}
pub mod request;

pub use request::{Origin, Request, Version};

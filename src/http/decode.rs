//! Body framing in: fixed Content-Length bodies and strict chunked decoding (RFC 9112 §7.1)
//! with waitress's 400 texts; raw chunked bytes count toward `max_request_body_size`.

/// The body reader chosen from the head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BodyDecoder {
    /// No body.
    None,
    /// `remaining` bytes of a Content-Length body.
    Fixed { remaining: u64 },
}

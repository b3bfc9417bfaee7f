//! Request framing: feeds bytes in, finds the head (CRLF only, promptly rejecting bare CR/LF),
//! checks the request line and size limits, then hands the body to `decode`.
use super::buffer::OverflowableBuffer;
use super::decode::BodyDecoder;
use super::{HttpError, Limits, Request};

/// What `feed` achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Bytes of `input` taken by the parser (now owned by `Request`/body); the rest belongs to
    /// the next call (the body, or the next pipelined request).
    pub consumed: usize,
    pub status: Status,
}

/// Where the current request stands after a `feed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Everything given was consumed; feed more bytes.
    NeedMore,
    /// The head is complete and a body follows. Reported once, before any body byte is
    /// consumed, so the server can send `100 Continue` when `expect_continue` (HTTP/1.1,
    /// `Expect: 100-continue`). Requests without a body go straight to `Complete`.
    HeadDone { expect_continue: bool },
    /// Head and body are complete: `Request::content_length()` is the decoded length and the
    /// body buffer holds it. Call `reset()` before the next request.
    Complete,
}

/// Sans-IO request parser for one connection; reusable across requests via `reset()`.
#[derive(Debug)]
pub struct RequestParser {
    pub(crate) limits: Limits,
    pub(crate) state: State,
    /// Head bytes seen for this request, leading empty lines included (waitress counts them).
    pub(crate) head_len: u64,
    /// Offset in `req.buf` where the current (incomplete) line starts.
    pub(crate) line_start: usize,
    /// Offset in `req.buf` where header lines start (after the request line's CRLF).
    pub(crate) fields_start: usize,
    /// The previous input byte was a CR (it may arrive in one feed and its LF in the next).
    pub(crate) pending_cr: bool,
    pub(crate) decoder: BodyDecoder,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    /// Before the request line (skipping empty lines).
    Start,
    /// Inside the request line.
    RequestLine,
    /// Inside the header lines.
    Fields,
    /// Head parsed, `HeadDone` not yet reported.
    HeadDone,
    /// Reading the body.
    Body,
    Complete,
    /// An error was returned; only `reset` helps.
    Failed,
}

impl RequestParser {
    pub fn new(limits: Limits) -> RequestParser {
        RequestParser {
            limits,
            state: State::Start,
            head_len: 0,
            line_start: 0,
            fields_start: 0,
            pending_cr: false,
            decoder: BodyDecoder::None,
        }
    }

    /// Prepares for the next request on the same connection (the caller clears `Request` and
    /// the body buffer, or hands them away and brings fresh ones).
    pub fn reset(&mut self) {
        self.state = State::Start;
        self.head_len = 0;
        self.line_start = 0;
        self.fields_start = 0;
        self.pending_cr = false;
        self.decoder = BodyDecoder::None;
    }

    /// True while some bytes of a request head have arrived but the head is not complete
    /// (the server evicts such connections first at `connection_limit`). Leading empty lines
    /// do not count.
    pub fn head_in_progress(&self) -> bool {
        matches!(self.state, State::RequestLine | State::Fields)
    }

    /// True once the head of the current request is complete.
    pub fn head_complete(&self) -> bool {
        matches!(self.state, State::HeadDone | State::Body | State::Complete)
    }

    /// Feeds bytes. `req` must be cleared before the first byte of a request; `body` receives
    /// the decoded body. On `Err` the server answers with `error_response` and closes.
    pub fn feed(
        &mut self,
        input: &[u8],
        req: &mut Request,
        body: &mut OverflowableBuffer,
    ) -> Result<Progress, HttpError> {
        let _ = (input, req, body);
        todo!("parser")
    }
}

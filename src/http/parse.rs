//! Request framing: feeds bytes in, finds the head (CRLF only, promptly rejecting bare CR/LF),
//! checks the request line and size limits, then hands the body to `decode`.
use std::ops::Range;

use super::buffer::OverflowableBuffer;
use super::decode::{is_tchar, BodyDecoder};
use super::head::{self, BodyKind};
use super::request::Span;
use super::{HttpError, Limits, Request, Version};

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
    /// Reused for obs-folded header lines.
    pub(crate) scratch: Vec<u8>,
    /// Where each header line of the current head ends in `req.buf` (after its CRLF), as the
    /// framing scan finds them: the fields are split without scanning the head again.
    pub(crate) line_ends: Vec<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    /// Before the request line (skipping empty lines).
    Start,
    /// Inside the request line.
    RequestLine,
    /// Inside the header lines.
    Fields,
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
            scratch: Vec::new(),
            line_ends: Vec::new(),
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
        self.line_ends.clear();
    }

    /// True while some bytes of a request head have arrived but the head is not complete
    /// (the server evicts such connections first at `connection_limit` and applies its
    /// whole-head deadline). Leading empty lines count too: otherwise a client sending one CRLF
    /// a second would hold the connection forever.
    pub fn head_in_progress(&self) -> bool {
        matches!(self.state, State::RequestLine | State::Fields)
            || (self.state == State::Start && (self.head_len > 0 || self.pending_cr))
    }

    /// Body bytes still expected, while a body of known length (Content-Length) is arriving:
    /// the server reads it in larger pieces than a head.
    pub fn fixed_body_remaining(&self) -> Option<u64> {
        match (&self.state, &self.decoder) {
            (State::Body, BodyDecoder::Fixed { remaining }) => Some(*remaining),
            _ => None,
        }
    }

    /// `n` bytes of a Content-Length body went into the body buffer without passing through
    /// `feed` (the server splices them from its socket into the buffer's temp file, see
    /// `OverflowableBuffer::append_target`). `n` must not exceed `fixed_body_remaining()`.
    /// Returns `Complete` once the body is whole, as `feed` would have.
    pub fn fixed_body_arrived(&mut self, n: u64) -> Status {
        match (&self.state, &mut self.decoder) {
            (State::Body, BodyDecoder::Fixed { remaining }) => {
                debug_assert!(n <= *remaining, "more body bytes than the Content-Length");
                *remaining = remaining.saturating_sub(n);
                if *remaining > 0 {
                    return Status::NeedMore;
                }
                self.state = State::Complete;
                Status::Complete
            }
            _ => Status::NeedMore,
        }
    }

    /// True once the head of the current request is complete.
    pub fn head_complete(&self) -> bool {
        matches!(self.state, State::Body | State::Complete)
    }

    /// Feeds bytes. At the first byte of a request line `req` and `body` are cleared (keeping
    /// their allocations and `req.origin`); `body` receives the decoded body. On `Err` the
    /// server answers with `error_response` and closes.
    ///
    /// The server's loop: keep unconsumed bytes, call `feed` again while it makes progress;
    /// on `HeadDone { expect_continue: true }` send `HTTP/1.1 100 Continue\r\n\r\n`; on
    /// `Complete` dispatch the request, `reset()`, and go on with the remaining bytes
    /// (pipelining).
    pub fn feed(
        &mut self,
        input: &[u8],
        req: &mut Request,
        body: &mut OverflowableBuffer,
    ) -> Result<Progress, HttpError> {
        let r = match self.state {
            State::Start | State::RequestLine | State::Fields => self.feed_head(input, req, body),
            State::Body => self.feed_body(input, req, body),
            State::Complete => Ok(Progress {
                consumed: 0,
                status: Status::Complete,
            }),
            State::Failed => Err(HttpError::bad_request("request parser already failed")),
        };
        if r.is_err() {
            self.state = State::Failed;
        }
        r
    }

    fn feed_head(
        &mut self,
        input: &[u8],
        req: &mut Request,
        body: &mut OverflowableBuffer,
    ) -> Result<Progress, HttpError> {
        let max = self.limits.max_request_header_size;
        // Never look past the header limit: reaching it is a 431 (waitress: `>=`), so an
        // endless head is cut off without buffering it.
        let budget = max.saturating_sub(self.head_len);
        let scan = &input[..(input.len() as u64).min(budget) as usize];
        let mut i = 0;
        // Start of the bytes of `scan` not yet copied into `req.buf`.
        let mut seg = 0;
        let mut done = false;
        while i < scan.len() {
            if self.pending_cr {
                if scan[i] != b'\n' {
                    return Err(self.bare_cr_lf(req, &scan[seg..i]));
                }
                self.pending_cr = false;
                i += 1;
                match self.state {
                    // RFC 9112 §2.2: empty lines before the request line are ignored (waitress
                    // lstrips them); they count toward the header limit but are not kept.
                    State::Start => seg = i,
                    State::RequestLine => {
                        req.buf.extend_from_slice(&scan[seg..i]);
                        seg = i;
                        let line = self.line_start..req.buf.len() - 2;
                        request_line(req, line)?;
                        self.line_start = req.buf.len();
                        self.fields_start = req.buf.len();
                        self.state = State::Fields;
                    }
                    _ => {
                        req.buf.extend_from_slice(&scan[seg..i]);
                        seg = i;
                        if req.buf.len() - 2 == self.line_start {
                            done = true;
                            break;
                        }
                        self.line_start = req.buf.len();
                        self.line_ends.push(self.line_start);
                    }
                }
                continue;
            }
            if self.state == State::Start {
                match scan[i] {
                    b'\r' => self.pending_cr = true,
                    b'\n' => return Err(self.bare_cr_lf(req, &[])),
                    _ => {
                        // First byte of a request: start from clean (but warm) buffers.
                        req.clear();
                        body.clear();
                        self.state = State::RequestLine;
                        self.line_start = 0;
                        self.line_ends.clear();
                        seg = i;
                        continue;
                    }
                }
                i += 1;
                continue;
            }
            match memchr::memchr2(b'\r', b'\n', &scan[i..]) {
                Some(off) => {
                    let j = i + off;
                    if scan[j] == b'\n' {
                        // A bare LF is refused at once (CVE-2019-16785; waitress would wait).
                        return Err(self.bare_cr_lf(req, &scan[seg..j]));
                    }
                    self.pending_cr = true;
                    i = j + 1;
                }
                None => i = scan.len(),
            }
        }
        if matches!(self.state, State::RequestLine | State::Fields) {
            req.buf.extend_from_slice(&scan[seg..i]);
        }
        self.head_len += i as u64;
        if self.head_len >= max {
            return Err(HttpError::HeaderTooLarge { max });
        }
        if !done {
            return Ok(Progress {
                consumed: i,
                status: Status::NeedMore,
            });
        }
        let kind = head::finish_head(req, self.fields_start, &self.line_ends, &mut self.scratch)?;
        let status = match kind {
            BodyKind::None => {
                self.state = State::Complete;
                Status::Complete
            }
            BodyKind::Length(n) => {
                let max_body = self.limits.max_request_body_size;
                if n >= max_body {
                    return Err(HttpError::BodyTooLarge {
                        max: max_body,
                        version: req.version,
                    });
                }
                self.decoder = BodyDecoder::Fixed { remaining: n };
                self.state = State::Body;
                Status::HeadDone {
                    expect_continue: req.expect_continue,
                }
            }
            BodyKind::Chunked => {
                self.decoder = BodyDecoder::Chunked(Default::default());
                self.state = State::Body;
                Status::HeadDone {
                    expect_continue: req.expect_continue,
                }
            }
        };
        Ok(Progress {
            consumed: i,
            status,
        })
    }

    fn feed_body(
        &mut self,
        input: &[u8],
        req: &mut Request,
        body: &mut OverflowableBuffer,
    ) -> Result<Progress, HttpError> {
        let max_body = self.limits.max_request_body_size;
        let (consumed, complete) = self
            .decoder
            .decode(input, body, max_body)
            .map_err(|e| e.with_version(req.version))?;
        if !complete {
            return Ok(Progress {
                consumed,
                status: Status::NeedMore,
            });
        }
        if let BodyDecoder::Chunked(c) = &self.decoder {
            // CONTENT_LENGTH of a chunked request is the decoded length (waitress).
            let mut digits = [0u8; 20];
            req.set_header(b"Content-Length", decimal(c.decoded, &mut digits));
            req.content_length = Some(c.decoded);
        }
        self.state = State::Complete;
        Ok(Progress {
            consumed,
            status: Status::Complete,
        })
    }

    /// The 400 for a CR not followed by LF, or an LF not preceded by CR. `partial` is the part
    /// of the current line still in the input.
    fn bare_cr_lf(&self, req: &Request, partial: &[u8]) -> HttpError {
        match self.state {
            State::Fields => {
                let mut line = head::latin1(req.buf.get(self.line_start..).unwrap_or_default());
                line.push_str(&head::latin1(partial));
                let line = line.trim_end_matches('\r');
                HttpError::bad_request(format!("Bare CR or LF found in header line \"{line}\""))
            }
            _ => HttpError::bad_request("Bare CR or LF found in HTTP message"),
        }
    }

    /// Parses one complete request (head and body) from `bytes` with generous limits: for tests
    /// of the layers above. Returns the request, its body and the bytes left over.
    #[cfg(test)]
    pub(crate) fn parse_complete(bytes: &[u8]) -> Result<(Request, Vec<u8>, usize), HttpError> {
        let mut parser = RequestParser::new(Limits {
            max_request_header_size: 1 << 20,
            max_request_body_size: 1 << 30,
        });
        let mut req = Request::new();
        let mut body = OverflowableBuffer::new(1 << 20);
        let mut pos = 0;
        loop {
            let p = parser.feed(&bytes[pos..], &mut req, &mut body)?;
            pos += p.consumed;
            match p.status {
                Status::Complete => break,
                Status::HeadDone { .. } => continue,
                Status::NeedMore if pos >= bytes.len() => {
                    return Err(HttpError::bad_request("incomplete request"))
                }
                Status::NeedMore => continue,
            }
        }
        let mut out = Vec::new();
        body.read_all_into(&mut out)
            .map_err(|e| HttpError::internal(e.to_string()))?;
        Ok((req, out, pos))
    }
}

/// Decimal digits of `n`, written to the end of `buf` (no allocation).
pub(crate) fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

/// Checks the request line `METHOD SP request-target SP HTTP/d.d` (exactly one SP between parts,
/// nothing after the version: RFC 9112 §3) and records its parts in `req`.
fn request_line(req: &mut Request, line: Range<usize>) -> Result<(), HttpError> {
    let invalid = || HttpError::bad_request("Start line is invalid");
    let l = &req.buf[line.clone()];
    // Methods are short: a plain loop beats a call to memchr here.
    let sp1 = l.iter().position(|&c| c == b' ').ok_or_else(invalid)?;
    let method = &l[..sp1];
    if method.is_empty() || !method.iter().all(|&c| is_tchar(c)) {
        return Err(invalid());
    }
    let rest = &l[sp1 + 1..];
    let sp2 = memchr::memchr(b' ', rest).ok_or_else(invalid)?;
    let target = &rest[..sp2];
    let version = &rest[sp2 + 1..];
    if target.is_empty() {
        return Err(invalid());
    }
    // `HTTP/` DIGIT `.` DIGIT; waitress also accepted no version at all (HTTP/0.9 style) and
    // trailing whitespace: both are refused here.
    let v = match version {
        [b'H', b'T', b'T', b'P', b'/', ma, b'.', mi]
            if ma.is_ascii_digit() && mi.is_ascii_digit() =>
        {
            match (ma - b'0', mi - b'0') {
                (1, 0) => Version::Http10,
                (1, 1) => Version::Http11,
                (major, minor) => return Err(HttpError::VersionNotSupported { major, minor }),
            }
        }
        _ => return Err(invalid()),
    };
    if method.iter().any(u8::is_ascii_lowercase) {
        return Err(HttpError::bad_request(format!(
            "Malformed HTTP method \"{}\"",
            head::latin1(method)
        )));
    }
    // RFC 9112 §3.2: no CTLs, NUL, TAB or DEL in the target (waitress passed them through);
    // bytes >= 0x80 are refused later as "Bad URI" unless the path starts with `//`, as waitress.
    if target.iter().any(|&c| c < 0x20 || c == 0x7f) {
        return Err(HttpError::bad_request("Bad URI").with_version(v));
    }
    if !super::uri::target_form_allowed(method, target) {
        return Err(HttpError::bad_request(
            "Bad URI: the request-target must be an absolute path (/...), an absolute URI, \
             * with OPTIONS, or host:port with CONNECT",
        )
        .with_version(v));
    }
    let m = line.start..line.start + sp1;
    let t = m.end + 1..m.end + 1 + sp2;
    req.method = Span::new(m);
    req.target = Span::new(t);
    req.version = v;
    Ok(())
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;

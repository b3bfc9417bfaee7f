//! Body framing out: Content-Length (truncating excess), chunked (`<HEX-UPPER>\r\n` headers in a
//! stack buffer), close-delimited (HTTP/1.0), or no body (HEAD, 1xx/204/304), plus waitress's
//! warnings. Designed for vectored writes: `[chunk header, data, "\r\n"]`.
use std::fmt;

/// How the body goes out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Exactly `n` bytes (extra bytes are cut, too few close the connection).
    Length(u64),
    /// `Transfer-Encoding: chunked` (HTTP/1.1 without a known length).
    Chunked,
    /// HTTP/1.0 without a known length: the body ends when the connection closes.
    CloseDelimited,
    /// No body may be sent (HEAD, 1xx/204/304); writes are dropped.
    None,
}

/// The body side of one response, produced by `ResponseHead::encode`.
#[derive(Debug, Clone)]
pub struct BodyEncoder {
    pub(crate) framing: Framing,
    pub(crate) keep_alive: bool,
    pub(crate) is_head: bool,
    pub(crate) has_body_status: bool,
    pub(crate) status_code: [u8; 3],
    pub(crate) written: u64,
    pub(crate) ignored: u64,
    pub(crate) warned_excess: bool,
}

/// One piece to write: `prefix`, `data`, `suffix` in order (any may be empty).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunk<'a> {
    pub prefix: ChunkPrefix,
    pub data: &'a [u8],
    pub suffix: &'static [u8],
}

/// A chunk-size line (`<HEX-UPPER>\r\n`) on the stack.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct ChunkPrefix {
    buf: [u8; 18],
    len: u8,
}

impl fmt::Debug for ChunkPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.as_bytes()))
    }
}

impl ChunkPrefix {
    pub fn new(len: u64) -> ChunkPrefix {
        const HEX: &[u8; 16] = b"0123456789ABCDEF";
        let mut p = ChunkPrefix::default();
        let digits = (16 - (len.leading_zeros() / 4) as usize).max(1);
        for i in 0..digits {
            p.buf[digits - 1 - i] = HEX[((len >> (4 * i)) & 0xf) as usize];
        }
        p.buf[digits] = b'\r';
        p.buf[digits + 1] = b'\n';
        p.len = (digits + 2) as u8;
        p
    }
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len as usize]
    }
}

impl<'a> Chunk<'a> {
    /// The three slices for a vectored write.
    pub fn slices(&self) -> [&[u8]; 3] {
        [self.prefix.as_bytes(), self.data, self.suffix]
    }
    /// Total bytes to write.
    pub fn len(&self) -> usize {
        self.prefix.as_bytes().len() + self.data.len() + self.suffix.len()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// End of the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Finish {
    /// Bytes to write last (`0\r\n\r\n` for chunked, else empty).
    pub trailer: &'static [u8],
    /// Close the connection once everything is sent.
    pub close: bool,
    pub warning: Option<Warning>,
}

/// Waitress's WARNING log lines about the app's body (logger `waitress`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Warning {
    /// The app wrote more than its Content-Length; the rest was cut.
    ExceededContentLength { content_length: u64 },
    /// The app produced fewer bytes than its Content-Length; the connection is closed.
    TooFewBytes { written: u64, content_length: u64 },
    /// The app wrote a body for a status that cannot have one (`bytes` were dropped).
    IgnoredBody { status: [u8; 3], bytes: u64 },
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::ExceededContentLength { content_length } => write!(
                f,
                "application-written content exceeded the number of bytes specified by \
                 Content-Length header ({content_length})"
            ),
            Warning::TooFewBytes {
                written,
                content_length,
            } => write!(
                f,
                "application returned too few bytes ({written}) for specified Content-Length \
                 ({content_length}) via app_iter"
            ),
            Warning::IgnoredBody { .. } => todo!("encode"),
        }
    }
}

impl BodyEncoder {
    pub fn framing(&self) -> Framing {
        self.framing
    }
    /// Whether the connection stays open after this response (before `finish` knows better).
    pub fn keep_alive(&self) -> bool {
        self.keep_alive
    }
    /// Frames one app write; empty writes give an empty chunk. The warning is returned once.
    pub fn encode<'a>(&mut self, data: &'a [u8]) -> (Chunk<'a>, Option<Warning>) {
        let _ = data;
        todo!("encode")
    }
    /// Ends the body.
    pub fn finish(&mut self) -> Finish {
        todo!("encode")
    }
}

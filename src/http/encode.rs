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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finish {
    /// Bytes to write last (`0\r\n\r\n` for chunked, else empty).
    pub trailer: &'static [u8],
    /// Close the connection once everything is sent.
    pub close: bool,
    pub warning: Option<Warning>,
}

/// Waitress's WARNING log lines about the app's body (logger `waitress`); `Display` is the
/// exact text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Warning {
    /// The app wrote more than its Content-Length; the rest was cut.
    ExceededContentLength { content_length: u64 },
    /// The app produced fewer bytes than its Content-Length; the connection is closed.
    TooFewBytes { written: u64, content_length: u64 },
    /// The app wrote a body for a status that cannot have one (`bytes` were dropped).
    IgnoredBody { status: String, bytes: u64 },
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
            Warning::IgnoredBody { status, .. } => write!(
                f,
                "application-written content was ignored due to HTTP response that may not \
                 contain a message-body: ({status})"
            ),
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
    /// Frames one app write; empty writes give an empty chunk (chunked framing never emits an
    /// empty chunk, which would end the body). A warning is returned at most once.
    pub fn encode<'a>(&mut self, data: &'a [u8]) -> (Chunk<'a>, Option<Warning>) {
        let empty = Chunk {
            prefix: ChunkPrefix::default(),
            data: &[],
            suffix: b"",
        };
        if data.is_empty() {
            return (empty, None);
        }
        match self.framing {
            Framing::Length(cl) => {
                // Excess is cut and the connection stays usable (waitress).
                let room = cl.saturating_sub(self.written);
                let n = (data.len() as u64).min(room) as usize;
                self.written += n as u64;
                let mut warning = None;
                if n < data.len() && !self.warned_excess {
                    self.warned_excess = true;
                    warning = Some(Warning::ExceededContentLength { content_length: cl });
                }
                (
                    Chunk {
                        data: &data[..n],
                        ..empty
                    },
                    warning,
                )
            }
            Framing::Chunked => {
                self.written += data.len() as u64;
                (
                    Chunk {
                        prefix: ChunkPrefix::new(data.len() as u64),
                        data,
                        suffix: b"\r\n",
                    },
                    None,
                )
            }
            Framing::CloseDelimited => {
                self.written += data.len() as u64;
                (Chunk { data, ..empty }, None)
            }
            Framing::None => {
                self.ignored += data.len() as u64;
                (empty, None)
            }
        }
    }

    /// Ends the body: the chunked terminator, whether to close, and the warning for a short
    /// body (closing, since the client would wait for the rest) or an ignored one. `status` is
    /// the app's status string (only used in that warning).
    pub fn finish(&mut self, status: &str) -> Finish {
        let mut close = !self.keep_alive;
        let mut warning = None;
        let mut trailer: &'static [u8] = b"";
        match self.framing {
            Framing::Length(cl) if self.written < cl => {
                close = true;
                warning = Some(Warning::TooFewBytes {
                    written: self.written,
                    content_length: cl,
                });
            }
            Framing::Length(_) => {}
            Framing::Chunked => trailer = b"0\r\n\r\n",
            Framing::CloseDelimited => close = true,
            // HEAD bodies are dropped quietly: frameworks commonly produce them.
            Framing::None if self.ignored > 0 && !self.is_head => {
                warning = Some(Warning::IgnoredBody {
                    status: status.to_string(),
                    bytes: self.ignored,
                });
            }
            Framing::None => {}
        }
        self.keep_alive = !close;
        Finish {
            trailer,
            close,
            warning,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(framing: Framing, keep_alive: bool, is_head: bool) -> BodyEncoder {
        BodyEncoder {
            framing,
            keep_alive,
            is_head,
            written: 0,
            ignored: 0,
            warned_excess: false,
        }
    }

    #[test]
    fn chunk_headers_are_upper_hex() {
        for (n, want) in [
            (1u64, "1\r\n"),
            (10, "A\r\n"),
            (255, "FF\r\n"),
            (4096, "1000\r\n"),
            (u64::MAX, "FFFFFFFFFFFFFFFF\r\n"),
        ] {
            assert_eq!(ChunkPrefix::new(n).as_bytes(), want.as_bytes());
        }
    }

    #[test]
    fn chunked_writes_are_framed_and_empty_writes_skipped() {
        let mut e = enc(Framing::Chunked, true, false);
        let (c, w) = e.encode(b"hello world!");
        assert_eq!(c.slices(), [&b"C\r\n"[..], b"hello world!", b"\r\n"]);
        assert_eq!((c.len(), w), (17, None));
        assert!(e.encode(b"").0.is_empty());
        let f = e.finish("200 OK");
        assert_eq!(
            (f.trailer, f.close, f.warning),
            (&b"0\r\n\r\n"[..], false, None)
        );
    }

    #[test]
    fn over_length_is_truncated_with_one_warning_and_keeps_alive() {
        let mut e = enc(Framing::Length(5), true, false);
        assert_eq!(e.encode(b"abc").0.data, b"abc");
        let (c, w) = e.encode(b"defg");
        assert_eq!(c.data, b"de");
        assert_eq!(
            w.unwrap().to_string(),
            "application-written content exceeded the number of bytes specified by Content-Length header (5)"
        );
        let (c, w) = e.encode(b"h");
        assert_eq!((c.data, w), (&b""[..], None));
        let f = e.finish("200 OK");
        assert_eq!((f.close, f.warning), (false, None));
    }

    #[test]
    fn under_length_closes_with_waitress_warning() {
        let mut e = enc(Framing::Length(10), true, false);
        e.encode(b"abc");
        let f = e.finish("200 OK");
        assert!(f.close);
        assert_eq!(
            f.warning.unwrap().to_string(),
            "application returned too few bytes (3) for specified Content-Length (10) via app_iter"
        );
    }

    #[test]
    fn no_body_statuses_drop_writes_and_warn_once_at_the_end() {
        let mut e = enc(Framing::None, true, false);
        assert!(e.encode(b"abc").0.is_empty());
        assert!(e.encode(b"de").0.is_empty());
        let f = e.finish("204 No Content");
        assert!(!f.close);
        let w = f.warning.unwrap();
        assert_eq!(
            w,
            Warning::IgnoredBody {
                status: "204 No Content".into(),
                bytes: 5
            }
        );
        assert_eq!(
            w.to_string(),
            "application-written content was ignored due to HTTP response that may not contain a message-body: (204 No Content)"
        );
        let mut head = enc(Framing::None, true, true);
        head.encode(b"body of a HEAD");
        assert_eq!(
            head.finish("200 OK").warning,
            None,
            "HEAD bodies are dropped quietly"
        );
    }

    #[test]
    fn close_delimited_always_closes() {
        let mut e = enc(Framing::CloseDelimited, false, false);
        assert_eq!(e.encode(b"x").0.slices(), [&b""[..], b"x", b""]);
        assert!(e.finish("200 OK").close);
    }
}

//! Body framing in: fixed Content-Length bodies and strict chunked decoding (RFC 9112 §7.1)
//! with waitress's 400 texts. Raw chunked bytes (sizes, extensions, CRLFs, trailers) count
//! toward `max_request_body_size`, as in waitress.
use super::buffer::OverflowableBuffer;
use super::HttpError;

/// The body reader chosen from the head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BodyDecoder {
    /// No body.
    None,
    /// `remaining` bytes of a Content-Length body.
    Fixed {
        remaining: u64,
    },
    Chunked(Chunked),
}

/// Chunked decoder state. Every byte is looked at once, so a body fed one byte at a time
/// decodes identically and errors are raised on the first bad byte.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Chunked {
    state: C,
    size: u64,
    /// Raw bytes consumed (the 413 count).
    pub(crate) raw: u64,
    /// Decoded bytes.
    pub(crate) decoded: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum C {
    #[default]
    SizeStart,
    Size,
    ExtStart,
    ExtName,
    ExtValStart,
    ExtToken,
    ExtQuoted,
    ExtQuotedEsc,
    ExtAfterQuote,
    SizeLf,
    Data,
    DataCr,
    DataLf,
    TrailerStart,
    TrailerName,
    TrailerValue,
    TrailerLf,
    EndLf,
    Done,
}

const SIZE: &str = "Invalid chunk size";
const EXT: &str = "Invalid chunk extension";
const TERM: &str = "Chunk not properly terminated";
const TRAILER: &str = "Invalid trailer";

/// Byte classes as lookup tables (the hot path checks every head byte).
macro_rules! table {
    ($f:ident) => {{
        let mut t = [false; 256];
        let mut i = 0;
        while i < 256 {
            t[i] = $f(i as u8);
            i += 1;
        }
        t
    }};
}

const fn tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
}

const fn field_byte(c: u8) -> bool {
    c == b'\t' || c == b' ' || (c >= 0x21 && c <= 0x7e) || c >= 0x80
}

static TCHAR: [bool; 256] = table!(tchar);
static FIELD: [bool; 256] = table!(field_byte);

/// RFC 9110 tchar.
#[inline]
pub(crate) fn is_tchar(c: u8) -> bool {
    TCHAR[c as usize]
}

/// VCHAR, obs-text, SP or HTAB: what a field value may contain (RFC 9110 §5.5).
#[inline]
pub(crate) fn is_field_byte(c: u8) -> bool {
    FIELD[c as usize]
}

fn qdtext(c: u8) -> bool {
    matches!(c, b'\t' | b' ' | 0x21 | 0x23..=0x5b | 0x5d..=0x7e) || c >= 0x80
}

impl Chunked {
    /// Decodes from `input` into `out`; returns (bytes consumed, body complete).
    pub(crate) fn decode(
        &mut self,
        input: &[u8],
        out: &mut OverflowableBuffer,
    ) -> Result<(usize, bool), HttpError> {
        let mut i = 0;
        while i < input.len() {
            if self.state == C::Done {
                break;
            }
            if self.state == C::Data {
                let n = (input.len() - i).min(usize::try_from(self.size).unwrap_or(usize::MAX));
                out.append(&input[i..i + n])
                    .map_err(HttpError::body_buffer)?;
                self.size -= n as u64;
                self.decoded += n as u64;
                i += n;
                if self.size == 0 {
                    self.state = C::DataCr;
                }
                continue;
            }
            let c = input[i];
            i += 1;
            self.state = match (self.state, c) {
                (C::SizeStart, _) => match hex(c) {
                    Some(v) => {
                        self.size = v;
                        C::Size
                    }
                    // An empty size line (waitress skips it) or a missing size: RFC 9112 has
                    // no empty chunk-size, so it is rejected.
                    None => return Err(bad(SIZE)),
                },
                (C::Size, b';') => C::ExtStart,
                (C::Size, b'\r') => C::SizeLf,
                (C::Size, _) => match hex(c) {
                    Some(v) if self.size >> 60 == 0 => {
                        self.size = self.size << 4 | v;
                        C::Size
                    }
                    _ => return Err(bad(SIZE)), // not hex, or overflows u64
                },
                (C::ExtStart | C::ExtValStart, c) if is_tchar(c) => {
                    if self.state == C::ExtStart {
                        C::ExtName
                    } else {
                        C::ExtToken
                    }
                }
                (C::ExtValStart, b'"') => C::ExtQuoted,
                (C::ExtName, b'=') => C::ExtValStart,
                (C::ExtName | C::ExtToken, c) if is_tchar(c) => self.state,
                (C::ExtName | C::ExtToken | C::ExtAfterQuote, b';') => C::ExtStart,
                (C::ExtName | C::ExtToken | C::ExtAfterQuote, b'\r') => C::SizeLf,
                (C::ExtQuoted, b'"') => C::ExtAfterQuote,
                (C::ExtQuoted, b'\\') => C::ExtQuotedEsc,
                (C::ExtQuoted, c) if qdtext(c) => C::ExtQuoted,
                (C::ExtQuotedEsc, c) if is_field_byte(c) => C::ExtQuoted,
                (
                    C::ExtStart
                    | C::ExtName
                    | C::ExtValStart
                    | C::ExtToken
                    | C::ExtQuoted
                    | C::ExtQuotedEsc
                    | C::ExtAfterQuote,
                    _,
                ) => return Err(bad(EXT)),
                (C::SizeLf, b'\n') if self.size == 0 => C::TrailerStart,
                (C::SizeLf, b'\n') => C::Data,
                (C::SizeLf, _) => return Err(bad(SIZE)),
                (C::DataCr, b'\r') => C::DataLf,
                (C::DataLf, b'\n') => C::SizeStart,
                (C::DataCr | C::DataLf, _) => return Err(bad(TERM)),
                // Trailer section: field lines validated like headers (no obs-fold), then
                // discarded; the app never sees them (waitress discards them unchecked).
                (C::TrailerStart, b'\r') => C::EndLf,
                (C::TrailerStart | C::TrailerName, c) if is_tchar(c) => C::TrailerName,
                (C::TrailerName, b':') => C::TrailerValue,
                (C::TrailerValue, b'\r') => C::TrailerLf,
                (C::TrailerValue, c) if is_field_byte(c) => C::TrailerValue,
                (C::TrailerLf, b'\n') => C::TrailerStart,
                (C::EndLf, b'\n') => C::Done,
                (C::TrailerStart | C::TrailerName | C::TrailerValue | C::TrailerLf, _) => {
                    return Err(bad(TRAILER))
                }
                (C::EndLf, _) => return Err(bad(TRAILER)),
                (C::Data | C::Done, _) => unreachable_state(),
            };
        }
        Ok((i, self.state == C::Done))
    }
}

/// `Data` and `Done` are handled before the byte match; kept total without a panic.
fn unreachable_state() -> C {
    C::Done
}

/// Chunked bodies only exist on HTTP/1.1 requests, so their errors answer HTTP/1.1.
fn bad(detail: &'static str) -> HttpError {
    HttpError::bad_request(detail).with_version(super::Version::Http11)
}

fn hex(c: u8) -> Option<u64> {
    (c as char).to_digit(16).map(u64::from)
}

impl BodyDecoder {
    /// Feeds body bytes; returns (consumed, complete). `raw_limit` is `max_request_body_size`.
    pub(crate) fn decode(
        &mut self,
        input: &[u8],
        out: &mut OverflowableBuffer,
        max_body: u64,
    ) -> Result<(usize, bool), HttpError> {
        match self {
            BodyDecoder::None => Ok((0, true)),
            BodyDecoder::Fixed { remaining } => {
                let n = (input.len() as u64).min(*remaining) as usize;
                out.expect(*remaining).map_err(HttpError::body_buffer)?;
                out.append(&input[..n]).map_err(HttpError::body_buffer)?;
                *remaining -= n as u64;
                Ok((n, *remaining == 0))
            }
            BodyDecoder::Chunked(c) => {
                // Look at no more than the limit allows: reaching it is a 413 (waitress: raw
                // bytes >= max_request_body_size), so an endless chunked body stops there.
                let budget = max_body.saturating_sub(c.raw);
                let take = (input.len() as u64).min(budget) as usize;
                let (n, done) = c.decode(&input[..take], out)?;
                c.raw += n as u64;
                if c.raw >= max_body {
                    return Err(HttpError::BodyTooLarge {
                        max: max_body,
                        version: super::Version::Http11,
                    });
                }
                Ok((n, done))
            }
        }
    }
}

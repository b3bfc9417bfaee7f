//! Client-fault errors of the parser and waitress's error response format (§2.10).
use std::borrow::Cow;

use super::Version;

/// Why a request was refused. Every variant maps to one status; the server answers with
/// [`error_response`] and closes the connection (waitress always closes after an error).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// 400 with waitress's detail text (`Invalid header`, `Start line is invalid`, ...).
    #[error("bad request: {detail}")]
    BadRequest {
        detail: Cow<'static, str>,
        version: Version,
    },
    /// 413: the body reaches `max_request_body_size` (from Content-Length, or raw chunked bytes).
    #[error("request entity too large: exceeds max_body of {max}")]
    BodyTooLarge { max: u64, version: Version },
    /// 431: the head reaches `max_request_header_size`; always answered as HTTP/1.0.
    #[error("request header fields too large: exceeds max_header of {max}")]
    HeaderTooLarge { max: u64 },
    /// 501: a transfer coding other than `chunked`.
    #[error("not implemented: {detail}")]
    NotImplemented {
        detail: Cow<'static, str>,
        version: Version,
    },
    /// 505: an `HTTP/x.y` version other than 1.0 and 1.1 (waitress would answer as 1.0).
    #[error("http version not supported: HTTP/{major}.{minor}")]
    VersionNotSupported { major: u8, minor: u8 },
    /// 500: the body could not be stored (temp file I/O); an internal fault, logged as error.
    #[error("internal error: {detail}")]
    Internal { detail: String, version: Version },
}

impl HttpError {
    /// A 400 answered as HTTP/1.0 (request line or header lines: version not yet known).
    pub fn bad_request(detail: impl Into<Cow<'static, str>>) -> HttpError {
        HttpError::BadRequest {
            detail: detail.into(),
            version: Version::Http10,
        }
    }
    pub(crate) fn internal(detail: String) -> HttpError {
        HttpError::Internal {
            detail,
            version: Version::Http10,
        }
    }
    /// The body's buffer (its temp file) failed: a 500, the server's fault, logged with
    /// where the file was and what fixes it (`$TMPDIR` missing, not writable, or full; or the
    /// process out of file descriptors).
    pub fn body_buffer(e: std::io::Error) -> HttpError {
        HttpError::internal(format!(
            "request body over inbuf_overflow: its temporary file in {}: {e}; {}",
            std::env::temp_dir().display(),
            super::spare_files::temp_file_fix(&e, "inbuf_overflow")
        ))
    }
    /// Re-targets the status line to the request's version (errors found after the request
    /// line is known use it, waitress §2.10).
    pub(crate) fn with_version(mut self, v: Version) -> HttpError {
        match &mut self {
            HttpError::BadRequest { version, .. }
            | HttpError::BodyTooLarge { version, .. }
            | HttpError::NotImplemented { version, .. }
            | HttpError::Internal { version, .. } => *version = v,
            HttpError::HeaderTooLarge { .. } | HttpError::VersionNotSupported { .. } => {}
        }
        self
    }
    /// The server's own fault (the body's temp file failed), not the client's: 501 and 505
    /// are 5xx statuses for what a client sent.
    pub fn is_internal(&self) -> bool {
        matches!(self, HttpError::Internal { .. })
    }
    pub fn status(&self) -> u16 {
        match self {
            HttpError::BadRequest { .. } => 400,
            HttpError::BodyTooLarge { .. } => 413,
            HttpError::HeaderTooLarge { .. } => 431,
            HttpError::NotImplemented { .. } => 501,
            HttpError::VersionNotSupported { .. } => 505,
            HttpError::Internal { .. } => 500,
        }
    }
    pub fn reason(&self) -> &'static str {
        reason(self.status())
    }
    /// The detail line of the body (waitress's exact texts).
    pub fn detail(&self) -> Cow<'_, str> {
        match self {
            HttpError::BadRequest { detail, .. } | HttpError::NotImplemented { detail, .. } => {
                Cow::Borrowed(detail)
            }
            HttpError::BodyTooLarge { max, .. } => format!("exceeds max_body of {max}").into(),
            HttpError::HeaderTooLarge { max } => format!("exceeds max_header of {max}").into(),
            HttpError::VersionNotSupported { major, minor } => {
                format!("HTTP/{major}.{minor} is not supported").into()
            }
            HttpError::Internal { .. } => {
                Cow::Borrowed("The server encountered an unexpected internal server error")
            }
        }
    }
    /// The version of the status line.
    pub fn version(&self) -> Version {
        match self {
            HttpError::BadRequest { version, .. }
            | HttpError::BodyTooLarge { version, .. }
            | HttpError::NotImplemented { version, .. }
            | HttpError::Internal { version, .. } => *version,
            HttpError::HeaderTooLarge { .. } | HttpError::VersionNotSupported { .. } => {
                Version::Http10
            }
        }
    }
}

/// Reason phrases of the statuses waitressd itself produces.
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        400 => "Bad Request",
        413 => "Request Entity Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

/// The complete error response for `err`, waitress's format (§2.10): body
/// `<Reason>\r\n\r\n<detail>\r\n\r\n(generated by <ident or "server">)`, headers sorted by name:
/// `Connection: close`, `Content-Length`, `Content-Type: text/plain; charset=utf-8`, `Date`,
/// `Server` (only when `ident` is set).
pub fn error_response(err: &HttpError, ident: Option<&str>, date: &[u8]) -> Vec<u8> {
    plain_response(
        err.version(),
        err.status(),
        &err.detail(),
        ident,
        date,
        true,
    )
}

/// The 500 sent when the app failed before its head went out (waitress §3.6): the request's
/// version, `Connection: close`, body text the traceback (with `expose_tracebacks`) or
/// waitress's generic sentence.
pub fn internal_error_response(
    version: Version,
    traceback: Option<&str>,
    ident: Option<&str>,
    date: &[u8],
) -> Vec<u8> {
    let text = traceback.unwrap_or("The server encountered an unexpected internal server error");
    plain_response(version, 500, text, ident, date, true)
}

/// The 504 for an app call that outlived `request_timeout` (waitress's error format; closes).
pub fn gateway_timeout_response(version: Version, ident: Option<&str>, date: &[u8]) -> Vec<u8> {
    let text = "The application did not answer within request_timeout";
    plain_response(version, 504, text, ident, date, true)
}

/// The 400 body waitress's proxy middleware produces for a malformed trusted proxy header:
/// `Bad Request\r\n\r\nHeader "<name>" malformed.\r\n\r\n(generated by server)` (always "server").
pub fn malformed_proxy_body(header: &str) -> Vec<u8> {
    format!("Bad Request\r\n\r\nHeader \"{header}\" malformed.\r\n\r\n(generated by server)")
        .into_bytes()
}

fn plain_response(
    version: Version,
    status: u16,
    detail: &str,
    ident: Option<&str>,
    date: &[u8],
    close: bool,
) -> Vec<u8> {
    let reason = reason(status);
    let tag = match ident {
        Some(i) if !i.is_empty() => i,
        _ => "server",
    };
    let body = format!("{reason}\r\n\r\n{detail}\r\n\r\n(generated by {tag})");
    let mut out = Vec::with_capacity(body.len() + 200);
    out.extend_from_slice(version.as_str().as_bytes());
    out.extend_from_slice(format!(" {status} {reason}\r\n").as_bytes());
    if close {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
    out.extend_from_slice(b"Content-Type: text/plain; charset=utf-8\r\nDate: ");
    out.extend_from_slice(date);
    out.extend_from_slice(b"\r\n");
    if let Some(i) = ident.filter(|i| !i.is_empty()) {
        out.extend_from_slice(b"Server: ");
        out.extend_from_slice(&super::pytext::encode_latin1(i));
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const DATE: &[u8] = b"Sat, 21 Nov 2026 04:19:33 GMT";

    #[test]
    fn error_response_is_waitress_format() {
        let e = HttpError::bad_request("Invalid header");
        let r = error_response(&e, Some("waitress"), DATE);
        let want = "HTTP/1.0 400 Bad Request\r\nConnection: close\r\nContent-Length: 56\r\n\
            Content-Type: text/plain; charset=utf-8\r\nDate: Sat, 21 Nov 2026 04:19:33 GMT\r\n\
            Server: waitress\r\n\r\nBad Request\r\n\r\nInvalid header\r\n\r\n(generated by waitress)";
        assert_eq!(String::from_utf8(r).unwrap(), want);
    }

    #[test]
    fn error_response_without_ident_says_server_and_has_no_server_header() {
        let e = HttpError::BodyTooLarge {
            max: 10,
            version: Version::Http11,
        };
        let r = String::from_utf8(error_response(&e, None, DATE)).unwrap();
        assert!(r.starts_with("HTTP/1.1 413 Request Entity Too Large\r\n"));
        assert!(!r.contains("Server:"));
        assert!(r.ends_with(
            "\r\n\r\nRequest Entity Too Large\r\n\r\nexceeds max_body of 10\r\n\r\n(generated by server)"
        ));
    }

    #[test]
    fn error_response_server_header_is_latin1_and_body_utf8() {
        let e = HttpError::bad_request("Invalid header");
        let r = error_response(&e, Some("caf\u{e9}"), DATE);
        let at = |needle: &[u8]| r.windows(needle.len()).any(|w| w == needle);
        assert!(at(b"\r\nServer: caf\xe9\r\n"), "{r:?}");
        assert!(at("(generated by caf\u{e9})".as_bytes()), "{r:?}");
    }

    #[test]
    fn header_too_large_is_always_http10() {
        let e = HttpError::HeaderTooLarge { max: 5 }.with_version(Version::Http11);
        let r = String::from_utf8(error_response(&e, Some("w"), DATE)).unwrap();
        assert!(r.starts_with("HTTP/1.0 431 Request Header Fields Too Large\r\n"));
        assert!(r.contains("exceeds max_header of 5"));
    }

    #[test]
    fn internal_error_uses_request_version() {
        let r = internal_error_response(Version::Http11, None, Some("waitress"), DATE);
        let r = String::from_utf8(r).unwrap();
        assert!(r.starts_with("HTTP/1.1 500 Internal Server Error\r\nConnection: close\r\n"));
        assert!(r.ends_with("Internal Server Error\r\n\r\nThe server encountered an unexpected internal server error\r\n\r\n(generated by waitress)"));
    }

    #[test]
    fn every_status_renders_its_reason_and_detail() {
        for (e, line, detail) in [
            (
                HttpError::VersionNotSupported { major: 2, minor: 0 },
                "HTTP/1.0 505 HTTP Version Not Supported",
                "HTTP/2.0 is not supported",
            ),
            (
                HttpError::NotImplemented {
                    detail: "Transfer-Encoding requested is not supported.".into(),
                    version: Version::Http11,
                },
                "HTTP/1.1 501 Not Implemented",
                "Transfer-Encoding requested is not supported.",
            ),
            (
                HttpError::bad_request("Bad URI").with_version(Version::Http11),
                "HTTP/1.1 400 Bad Request",
                "Bad URI",
            ),
        ] {
            let r = String::from_utf8(error_response(&e, Some("waitress"), DATE)).unwrap();
            let (head, body) = r.split_once("\r\n\r\n").unwrap();
            assert!(head.starts_with(line), "{head}");
            assert!(head.contains("\r\nConnection: close\r\n"));
            assert!(head.contains(&format!("\r\nContent-Length: {}\r\n", body.len())));
            let reason = &line[13..];
            assert_eq!(
                body,
                format!("{reason}\r\n\r\n{detail}\r\n\r\n(generated by waitress)")
            );
        }
    }
}

//! A connection's TLS session (rustls), driven on the event loop and by app threads under the
//! channel lock: reading records from the socket and plaintext out of them (the handshake runs
//! here, through `Channel::recv_tls` on the loop thread, never on an app thread), and writing
//! encrypted records to the socket. `OutBuf` feeds it plaintext in bounded chunks, so what is
//! encrypted but unsent stays small; file segments are copied through it with pread (no
//! sendfile under TLS).
use std::io::{self, IoSlice, Read, Write};
use std::os::fd::BorrowedFd;
use std::sync::Mutex;
use std::time::Instant;

use rustls::ServerConnection;

use super::sock::{recv_some, send_parts};
use super::throttle::Throttle;
use crate::http::TlsInfo;

/// Plaintext handed to rustls at a time (one TLS record's worth).
pub(crate) const CHUNK: usize = 16 * 1024;

/// The socket as `Read`/`Write` for rustls (MSG_NOSIGNAL sends, EINTR retried).
pub(crate) struct FdIo<'a>(pub(crate) BorrowedFd<'a>);

impl Read for FdIo<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        recv_some(self.0, buf)
    }
}

impl Write for FdIo<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        send_parts(self.0, &[IoSlice::new(buf)])
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        send_parts(self.0, bufs)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// What one read attempt gave.
pub(crate) enum Recv {
    /// Plaintext bytes in the caller's buffer.
    Data(usize),
    /// Nothing now (the socket would block).
    Again,
    /// The client closed (close_notify or TCP EOF).
    Eof,
    /// A TLS or socket error; an alert may be queued (flush, then close).
    Fail(String),
    /// As `Fail`, for a reason the client's owner must fix (an X.509 v1 client certificate):
    /// worth a warning, not only a debug line.
    Refused(String),
    /// The connection began with a plain HTTP request line, not a TLS record: answer it in
    /// plain text (`opening`), as nginx does, not with an alert the client cannot read.
    PlainHttp,
}

/// How many of a connection's first bytes are kept to tell a request line from a TLS record:
/// enough for the longest method and its space (`OPTIONS `, `CONNECT `).
const SNIFF: usize = 8;

pub(crate) struct TlsSession {
    conn: ServerConnection,
    /// The socket reported EOF: only buffered plaintext is left.
    eof: bool,
    /// The connection's first bytes (up to `SNIFF`) and how many there are.
    first: ([u8; SNIFF], usize),
}

/// Reads through `inner`, keeping the first `SNIFF` bytes of the connection in `first`.
struct Sniff<'a, R> {
    inner: R,
    first: &'a mut ([u8; SNIFF], usize),
}

impl<R: Read> Read for Sniff<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        keep_first(self.first, &buf[..n]);
        Ok(n)
    }
}

fn keep_first(first: &mut ([u8; SNIFF], usize), bytes: &[u8]) {
    let (head, len) = first;
    let k = (SNIFF - *len).min(bytes.len());
    head[*len..*len + k].copy_from_slice(&bytes[..k]);
    *len += k;
}

/// `bytes` begin like an HTTP request line: an upper-case method, then a space or nothing yet
/// (rustls fails on the 5-byte record header, before a long method's space may have come). A
/// TLS record begins with a content type byte (20-24), never a letter.
fn looks_like_http(bytes: &[u8]) -> bool {
    let method = bytes.iter().take_while(|b| b.is_ascii_uppercase()).count();
    method > 0 && matches!(bytes.get(method), Some(b' ') | None)
}

/// webpki refused the peer's certificate for being X.509 v1 (it reports that only as an
/// "other" certificate error, by its name).
fn is_v1_cert(e: &rustls::Error) -> bool {
    matches!(e, rustls::Error::InvalidCertificate(rustls::CertificateError::Other(o))
        if o.to_string().contains("UnsupportedCertVersion"))
}

/// Logs a refused handshake at WARNING, rate-limited per worker (only the loop thread calls
/// it, so the lock is never contended).
pub(crate) fn warn_refused(peer: &str, why: &str) {
    // Each client that retries would otherwise log a line per connection.
    static THROTTLE: Mutex<Throttle> = Mutex::new(Throttle::new());
    let due = THROTTLE
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .note(Instant::now());
    if let Some(n) = due {
        let again = Throttle::again(n, "refused");
        log::warn!(target: "waitress", "TLS from {peer}: {why}{again}");
    }
}

impl TlsSession {
    pub(crate) fn new(conn: ServerConnection) -> TlsSession {
        TlsSession {
            conn,
            eof: false,
            first: ([0; SNIFF], 0),
        }
    }

    /// A record the handshake could not take: plain HTTP if the connection began like it
    /// (the alert rustls queued is dropped: the client would read it as garbage after the
    /// plain-text answer).
    fn failed(&mut self, e: &rustls::Error) -> Recv {
        let (head, len) = &self.first;
        if !(self.conn.is_handshaking() && looks_like_http(&head[..*len])) {
            if is_v1_cert(e) {
                return Recv::Refused(
                    "the client certificate is an X.509 v1 certificate (no extensions), which \
                     rustls does not accept: its owner must reissue it as v3 (with \
                     extendedKeyUsage=clientAuth)"
                        .into(),
                );
            }
            return Recv::Fail(e.to_string());
        }
        while self.conn.wants_write() {
            if self.conn.write_tls(&mut io::sink()).is_err() {
                break;
            }
        }
        Recv::PlainHttp
    }

    pub(crate) fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    pub(crate) fn wants_write(&self) -> bool {
        self.conn.wants_write()
    }

    /// Plaintext into `buf`: buffered plaintext first (the socket may have nothing more: with
    /// edge-triggered polling it must be taken now), then records from the socket, or from
    /// `extra` (bytes already read from the socket, e.g. after a PROXY header).
    /// Returns what happened and how many bytes came off the socket.
    pub(crate) fn recv(
        &mut self,
        fd: BorrowedFd<'_>,
        buf: &mut [u8],
        mut extra: &[u8],
    ) -> (Recv, usize) {
        let mut raw = 0;
        // Bytes already read (after a PROXY header): all of them go in first.
        while !extra.is_empty() {
            if self.first.1 < SNIFF {
                keep_first(&mut self.first, extra);
            }
            match self.conn.read_tls(&mut extra) {
                Ok(n) => raw += n,
                Err(e) => return (Recv::Fail(e.to_string()), raw),
            }
            if let Err(e) = self.conn.process_new_packets() {
                return (self.failed(&e), raw);
            }
        }
        loop {
            match self.conn.reader().read(buf) {
                Ok(0) => return (Recv::Eof, raw),
                Ok(n) => return (Recv::Data(n), raw),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // TCP EOF without close_notify: the client went away.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return (Recv::Eof, raw),
                Err(e) => return (Recv::Fail(e.to_string()), raw),
            }
            if self.eof {
                return (Recv::Eof, raw);
            }
            let got = if self.first.1 < SNIFF {
                let first = &mut self.first;
                self.conn.read_tls(&mut Sniff {
                    inner: FdIo(fd),
                    first,
                })
            } else {
                self.conn.read_tls(&mut FdIo(fd))
            };
            match got {
                Ok(0) => self.eof = true,
                Ok(n) => raw += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return (Recv::Again, raw),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return (Recv::Fail(e.to_string()), raw),
            }
            if let Err(e) = self.conn.process_new_packets() {
                return (self.failed(&e), raw);
            }
        }
    }

    /// Sends encrypted records until none are left (true) or the socket would block (false).
    pub(crate) fn send_records(&mut self, fd: BorrowedFd<'_>) -> io::Result<bool> {
        while self.conn.wants_write() {
            match self.conn.write_tls(&mut FdIo(fd)) {
                Ok(0) => return Ok(false),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Hands plaintext to rustls; returns how much it took (less once its buffer is full).
    pub(crate) fn encrypt(&mut self, data: &[u8]) -> io::Result<usize> {
        self.conn.writer().write(data)
    }

    /// Queues the close_notify alert (sent by the next `send_records`).
    pub(crate) fn close_notify(&mut self) {
        self.conn.send_close_notify();
    }

    /// The environ facts, once the handshake is done: the verified client certificate's
    /// subject (`SSL_CLIENT_S_DN`, RFC 4514 text) and `SSL_CLIENT_VERIFY` (mod_ssl's names).
    pub(crate) fn info(&self) -> TlsInfo {
        let dn = self
            .conn
            .peer_certificates()
            .and_then(|c| c.first())
            .and_then(|der| {
                x509_parser::parse_x509_certificate(der.as_ref())
                    .ok()
                    .map(|(_, cert)| super::tls_dn::rfc4514(cert.subject()))
            });
        TlsInfo {
            client_verify: if dn.is_some() { "SUCCESS" } else { "NONE" },
            client_s_dn: dn,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_line_is_told_from_a_tls_record_by_its_first_bytes() {
        for (first, http) in [
            (&b"GET / HT"[..], true),
            (b"OPTIONS ", true),
            (b"PRI * HT", true),
            (b"OPTIO", true), // a slow client: rustls fails on the first 5 bytes
            (b"\x16\x03\x01\x02\x00\x01\x00\x01", false),
            (b"get / HT", false),
            (b" GET / H", false),
            (b"", false),
        ] {
            assert_eq!(looks_like_http(first), http, "{first:?}");
        }
        let mut kept = ([0; SNIFF], 0);
        keep_first(&mut kept, b"GET");
        keep_first(&mut kept, b" /index.html HTTP/1.1");
        assert_eq!(&kept.0[..kept.1], b"GET /ind");
    }
}

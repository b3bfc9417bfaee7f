//! The client side of the hostile harness: a raw TCP connection with its own buffer that
//! frames responses as a client would (RFC 9112 §6.3), every read bounded by `READ_TIMEOUT`.
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Upper bound for any single read: a prompt answer takes milliseconds.
pub(super) const READ_TIMEOUT: Duration = Duration::from_secs(5);

pub(super) struct Response {
    pub(super) status: u16,
    pub(super) head: String,
    pub(super) body: Vec<u8>,
}

/// A client connection with its own read buffer; every read bounded by `READ_TIMEOUT`.
pub(super) struct Conn {
    pub(super) s: TcpStream,
    pub(super) buf: Vec<u8>,
    /// The peer closed (EOF, or a reset once the expected responses were in).
    pub(super) closed: bool,
}

impl Conn {
    pub(super) fn connect(addr: &str) -> Result<Conn, String> {
        let s = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
        s.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        Ok(Conn {
            s,
            buf: Vec::new(),
            closed: false,
        })
    }

    /// Writes, ignoring errors: the server may already have closed on a hostile prefix.
    pub(super) fn send(&mut self, bytes: &[u8]) {
        let _ = self.s.write_all(bytes);
    }

    /// Writes `bytes` in pieces cut after CRs and LFs (the first `MAX_CUTS` of them), pausing
    /// between pieces so they usually arrive in separate reads: a CR at the end of one read
    /// and its LF in the next, a head split inside its lines, chunk framing split.
    pub(super) fn send_in_pieces(&mut self, bytes: &[u8]) {
        const MAX_CUTS: usize = 48;
        let _ = self.s.set_nodelay(true);
        let mut start = 0;
        let cuts = bytes
            .iter()
            .enumerate()
            .filter(|(_, &b)| b == b'\r' || b == b'\n');
        for (i, _) in cuts.take(MAX_CUTS) {
            if self.s.write_all(&bytes[start..=i]).is_err() {
                return;
            }
            start = i + 1;
            std::thread::sleep(Duration::from_millis(2));
        }
        let _ = self.s.write_all(&bytes[start..]);
    }

    /// Reads more bytes; Ok(false) once the peer has closed.
    pub(super) fn fill(&mut self, waiting_for: &str) -> Result<bool, String> {
        if self.closed {
            return Ok(false);
        }
        let mut chunk = [0u8; 16384];
        match self.s.read(&mut chunk) {
            Ok(0) => {
                self.closed = true;
                Ok(false)
            }
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(true)
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                Err(format!(
                    "no {waiting_for} within {READ_TIMEOUT:?}; got {:?}",
                    text(&self.buf)
                ))
            }
            // Python (started in-process by the wsgi tests) installs handlers without
            // SA_RESTART: a signal may interrupt a read, which a client simply retries.
            Err(e) if e.kind() == ErrorKind::Interrupted => Ok(true),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {
                self.closed = true;
                Ok(false)
            }
            Err(e) => Err(format!("read: {e}")),
        }
    }

    pub(super) fn take(&mut self, n: usize, what: &str) -> Result<Vec<u8>, String> {
        while self.buf.len() < n {
            if !self.fill(what)? {
                return Err(format!(
                    "connection closed inside {what}: {:?}",
                    text(&self.buf)
                ));
            }
        }
        Ok(self.buf.drain(..n).collect())
    }

    pub(super) fn line(&mut self, what: &str) -> Result<Vec<u8>, String> {
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = self.take(i + 2, what)?;
                return Ok(line[..i].to_vec());
            }
            if !self.fill(what)? {
                return Err(format!(
                    "connection closed inside {what}: {:?}",
                    text(&self.buf)
                ));
            }
        }
    }

    /// One response, framed as a client would (RFC 9112 section 6.3).
    pub(super) fn response(&mut self, to_head: bool) -> Result<Response, String> {
        let mut head = String::new();
        loop {
            let line = self.line("response head")?;
            if line.is_empty() {
                break;
            }
            head.push_str(&text(&line));
            head.push('\n');
        }
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let header = |name: &str| {
            head.lines().find_map(|l| {
                let (n, v) = l.split_once(':')?;
                n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
            })
        };
        let body = if to_head || status < 200 || status == 204 || status == 304 {
            Vec::new()
        } else if let Some(cl) = header("content-length") {
            let n = cl
                .parse()
                .map_err(|_| format!("bad response Content-Length {cl}"))?;
            self.take(n, "response body")?
        } else if header("transfer-encoding").is_some_and(|te| te.eq_ignore_ascii_case("chunked")) {
            let mut body = Vec::new();
            loop {
                let size = text(&self.line("chunk size")?);
                let n = usize::from_str_radix(&size, 16).map_err(|_| format!("chunk {size}"))?;
                if n == 0 {
                    self.line("chunked terminator")?;
                    break body;
                }
                body.extend(self.take(n, "chunk")?);
                self.line("chunk end")?;
            }
        } else {
            while self.fill("body until close")? {}
            std::mem::take(&mut self.buf)
        };
        Ok(Response { status, head, body })
    }

    /// Nothing more arrives and the server closes (within the read timeout).
    pub(super) fn expect_closed(&mut self) -> Result<(), String> {
        while self.fill("close")? {}
        if !self.buf.is_empty() {
            return Err(format!(
                "unexpected bytes before close: {:?}",
                text(&self.buf)
            ));
        }
        Ok(())
    }
}

pub(super) fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

//! Hostile request corpus: smuggling shapes, framing and line-ending tricks, limits, bad
//! versions and hosts, sent as raw bytes to the real binary serving
//! `tests/apps/conformance/recorder.py`, which logs every request the app receives.
//!
//! For every case: the exact statuses (in order, interim 100 included), `Connection: close` on
//! errors and the connection closed after them (or kept alive and serving, for good requests),
//! the app saw exactly the intended requests (no smuggled one, ever), and a fresh connection is
//! served afterwards. Every read is bounded by a timeout, so "never a hang" is checked too.
mod corpus;

use crate::util::{root, Daemon};
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// Upper bound for any single read: a prompt answer takes milliseconds.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// How the connection must end once the expected responses are read.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum End {
    /// Server closes it (after an error, `Connection: close`, or HTTP/1.0).
    Closed,
    /// Kept alive: a further request on it is served, then the server closes on request.
    Open,
}

/// One corpus entry. In `raw`, `then` and `seen`, `{P}` stands for the case's own path prefix
/// (`/c<group><index>`), so the recorder's lines can be attributed to the case.
pub struct Case {
    /// The behaviour, stated.
    pub name: &'static str,
    /// Bytes written on connect (in one write).
    pub raw: &'static [u8],
    /// Bytes written after the first response is read (interactive 100-continue); may be empty.
    pub then: &'static [u8],
    /// Response statuses expected, in order.
    pub statuses: &'static [u16],
    /// The first final response answers a HEAD (no body follows its head).
    pub head: bool,
    pub end: End,
    /// Recorder lines (`METHOD PATH BODYLEN X-CASE`) the app must have produced, in order.
    pub seen: &'static [&'static str],
}

struct Response {
    status: u16,
    head: String,
    body: Vec<u8>,
}

/// A client connection with its own read buffer; every read bounded by `READ_TIMEOUT`.
struct Conn {
    s: TcpStream,
    buf: Vec<u8>,
    /// The peer closed (EOF, or a reset once the expected responses were in).
    closed: bool,
}

impl Conn {
    fn connect(addr: &str) -> Result<Conn, String> {
        let s = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
        s.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        Ok(Conn { s, buf: Vec::new(), closed: false })
    }

    /// Writes, ignoring errors: the server may already have closed on a hostile prefix.
    fn send(&mut self, bytes: &[u8]) {
        let _ = self.s.write_all(bytes);
    }

    /// Reads more bytes; Ok(false) once the peer has closed.
    fn fill(&mut self, waiting_for: &str) -> Result<bool, String> {
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
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => Err(
                format!("no {waiting_for} within {READ_TIMEOUT:?}; got {:?}", text(&self.buf)),
            ),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {
                self.closed = true;
                Ok(false)
            }
            Err(e) => Err(format!("read: {e}")),
        }
    }

    fn take(&mut self, n: usize, what: &str) -> Result<Vec<u8>, String> {
        while self.buf.len() < n {
            if !self.fill(what)? {
                return Err(format!("connection closed inside {what}: {:?}", text(&self.buf)));
            }
        }
        Ok(self.buf.drain(..n).collect())
    }

    fn line(&mut self, what: &str) -> Result<Vec<u8>, String> {
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = self.take(i + 2, what)?;
                return Ok(line[..i].to_vec());
            }
            if !self.fill(what)? {
                return Err(format!("connection closed inside {what}: {:?}", text(&self.buf)));
            }
        }
    }

    /// One response, framed as a client would (RFC 9112 section 6.3).
    fn response(&mut self, to_head: bool) -> Result<Response, String> {
        let mut head = String::new();
        loop {
            let line = self.line("response head")?;
            if line.is_empty() {
                break;
            }
            head.push_str(&text(&line));
            head.push('\n');
        }
        let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let header = |name: &str| {
            head.lines().find_map(|l| {
                let (n, v) = l.split_once(':')?;
                n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
            })
        };
        let body = if to_head || status < 200 || status == 204 || status == 304 {
            Vec::new()
        } else if let Some(cl) = header("content-length") {
            let n = cl.parse().map_err(|_| format!("bad response Content-Length {cl}"))?;
            self.take(n, "response body")?
        } else if header("transfer-encoding").is_some_and(|te| te.eq_ignore_ascii_case("chunked"))
        {
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
    fn expect_closed(&mut self) -> Result<(), String> {
        while self.fill("close")? {}
        if !self.buf.is_empty() {
            return Err(format!("unexpected bytes before close: {:?}", text(&self.buf)));
        }
        Ok(())
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn fill(template: &[u8], p: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(template.len() + 8);
    let mut rest = template;
    while let Some(i) = rest.windows(3).position(|w| w == b"{P}") {
        out.extend_from_slice(&rest[..i]);
        out.extend_from_slice(p.as_bytes());
        rest = &rest[i + 3..];
    }
    out.extend_from_slice(rest);
    out
}

/// Sends one case and checks statuses, headers on errors, and how the connection ends.
fn run_case(addr: &str, c: &Case, p: &str) -> Result<(), String> {
    let mut conn = Conn::connect(addr)?;
    conn.send(&fill(c.raw, p));
    let mut head_pending = c.head;
    for (i, &want) in c.statuses.iter().enumerate() {
        let r = conn.response(head_pending && want >= 200)?;
        if want >= 200 {
            head_pending = false;
        }
        if r.status != want {
            return Err(format!(
                "response {i}: status {} instead of {want}\n{}{}",
                r.status,
                r.head,
                text(&r.body)
            ));
        }
        if want >= 400 && !r.head.contains("Connection: close") {
            return Err(format!("error response {want} without Connection: close:\n{}", r.head));
        }
        if i == 0 && !c.then.is_empty() {
            conn.send(&fill(c.then, p));
        }
    }
    match c.end {
        End::Closed => conn.expect_closed(),
        End::Open => {
            let again = format!("GET {p}/again HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            conn.send(again.as_bytes());
            let r = conn.response(false)?;
            if r.status != 200 || !text(&r.body).contains(&format!("{p}/again")) {
                return Err(format!("kept-alive connection did not serve a next request: {}", r.head));
            }
            conn.expect_closed()
        }
    }
}

/// The recorder lines of case `p`, in arrival order.
fn lines_of(log: &str, p: &str) -> Vec<String> {
    log.lines()
        .filter(|l| {
            let mut f = l.split(' ');
            let path = f.nth(1).unwrap_or("");
            let case = f.nth(1).unwrap_or("");
            path == p || path.starts_with(&format!("{p}/")) || case == p
        })
        .map(str::to_string)
        .collect()
}

/// Starts the recorder under waitressd (small limits: 4096-byte head, 1000-byte body), runs
/// every case followed by a normal request on a fresh connection, then checks the recorder log.
pub fn run_corpus(group: &str, cases: &[Case]) {
    let dir = tempfile::tempdir().unwrap();
    let log: PathBuf = dir.path().join("recorder.log");
    let mut cmd = Command::new(crate::util::bin());
    cmd.args(["--app", "recorder:app", "--listen", "127.0.0.1:0", "--threads", "2"])
        .args(["--max-request-header-size", "4096", "--max-request-body-size", "1000"])
        .current_dir(root().join("tests/apps/conformance"))
        .env("RECORDER_LOG", &log);
    let daemon = Daemon::start_with(&mut cmd, 1);
    let addr = daemon.addr();
    let mut failures = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        let p = format!("/c{group}{i:02}");
        if let Err(e) = run_case(&addr, c, &p) {
            failures.push(format!("{} ({p}): {e}", c.name));
        }
        let after = format!("GET {p}/after HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let served = Conn::connect(&addr).and_then(|mut conn| {
            conn.send(after.as_bytes());
            conn.response(false)
        });
        if !matches!(&served, Ok(r) if r.status == 200) {
            failures.push(format!("{} ({p}): server not serving afterwards", c.name));
        }
    }
    let recorded = std::fs::read_to_string(&log).unwrap_or_default();
    for (i, c) in cases.iter().enumerate() {
        let p = format!("/c{group}{i:02}");
        let mut want: Vec<String> = c.seen.iter().map(|s| s.replace("{P}", &p)).collect();
        if c.end == End::Open {
            want.push(format!("GET {p}/again 0 -"));
        }
        want.push(format!("GET {p}/after 0 -"));
        let got = lines_of(&recorded, &p);
        if got != want {
            failures.push(format!("{} ({p}): app saw {got:?}, expected {want:?}", c.name));
        }
    }
    if recorded.contains("smuggled") {
        failures.push(format!("a smuggled request reached the app:\n{recorded}"));
    }
    drop(daemon);
    assert!(failures.is_empty(), "{} case(s) failed:\n{}", failures.len(), failures.join("\n\n"));
}

#[test]
fn smuggling_shapes_are_rejected_and_never_reach_the_app() {
    run_corpus("s", corpus::SMUGGLING);
}

#[test]
fn bare_line_endings_and_control_bytes_get_a_prompt_400() {
    run_corpus("l", corpus::LINES_AND_BYTES);
}

#[test]
fn oversize_heads_and_bodies_are_431_and_413_and_close() {
    run_corpus("z", corpus::LIMITS);
}

#[test]
fn malformed_chunked_bodies_are_400_and_close() {
    run_corpus("k", corpus::CHUNKED);
}

#[test]
fn request_line_version_and_host_rules() {
    run_corpus("r", corpus::REQUEST_LINE_AND_HOST);
}

#[test]
fn valid_requests_are_served_pipelined_and_kept_alive() {
    run_corpus("v", corpus::VALID);
}

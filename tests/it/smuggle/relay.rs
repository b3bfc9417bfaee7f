//! A logging TCP relay between a front-end and waitressd (every byte the front-end sent upstream
//! kept per connection), and a strict reading of those bytes: the requests the front-end meant.
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Bytes sent upstream, one entry per connection, in accept order.
type Log = Arc<Mutex<Vec<Vec<u8>>>>;

/// Forwards every connection made to `addr()` to `upstream`, recording what goes upstream.
pub(crate) struct Relay {
    port: u16,
    pub(crate) sent: Log,
    pipes: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Relay {
    pub(crate) fn start(upstream: String) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let sent = Arc::new(Mutex::new(Vec::new()));
        let pipes = Arc::new(Mutex::new(Vec::new()));
        let (s, p) = (sent.clone(), pipes.clone());
        std::thread::spawn(move || {
            for down in listener.incoming() {
                let Ok(down) = down else { break };
                let Ok(up) = TcpStream::connect(&upstream) else {
                    continue;
                };
                let i = {
                    let mut s = s.lock().unwrap();
                    s.push(Vec::new());
                    s.len() - 1
                };
                let (d2, u2) = (down.try_clone().unwrap(), up.try_clone().unwrap());
                let log = s.clone();
                let a = std::thread::spawn(move || pipe(down, up, Some((log, i))));
                let b = std::thread::spawn(move || pipe(u2, d2, None));
                p.lock().unwrap().extend([a, b]);
            }
        });
        Relay { port, sent, pipes }
    }

    pub(crate) fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Waits for every connection relayed so far to end (the front-end and waitressd stopped).
    pub(crate) fn join(&self) {
        let pipes: Vec<_> = self.pipes.lock().unwrap().drain(..).collect();
        for p in pipes {
            let _ = p.join();
        }
    }
}

/// Copies `from` to `to` until EOF or an error, then half-closes `to`.
fn pipe(mut from: TcpStream, mut to: TcpStream, log: Option<(Log, usize)>) {
    let mut buf = [0u8; 16384];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some((log, i)) = &log {
            log.lock().unwrap()[*i].extend_from_slice(&buf[..n]);
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// One request as the front-end framed it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Forwarded {
    pub(crate) method: String,
    pub(crate) target: String,
    /// `X-Case`, if sent.
    pub(crate) case: Option<String>,
    pub(crate) body_len: usize,
}

/// The requests in `bytes` read strictly (CRLF lines, Content-Length or chunked), as a
/// front-end writes them; stops at the first incomplete or unreadable one (returned as Err
/// with the rest, for the report).
pub(crate) fn requests(bytes: &[u8]) -> (Vec<Forwarded>, Result<(), String>) {
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        match one(&bytes[at..]) {
            Some((f, n)) => {
                out.push(f);
                at += n;
            }
            None => return (out, Err(String::from_utf8_lossy(&bytes[at..]).into_owned())),
        }
    }
    (out, Ok(()))
}

fn line(b: &[u8]) -> Option<(&[u8], usize)> {
    let i = b.windows(2).position(|w| w == b"\r\n")?;
    Some((&b[..i], i + 2))
}

/// One request at the start of `b` and its length in bytes.
fn one(b: &[u8]) -> Option<(Forwarded, usize)> {
    let (start, mut at) = line(b)?;
    let start = String::from_utf8_lossy(start).into_owned();
    let mut parts = start.split(' ');
    let (method, target) = (parts.next()?.to_string(), parts.next()?.to_string());
    let (mut length, mut chunked, mut case) = (None, false, None);
    loop {
        let (l, n) = line(&b[at..])?;
        at += n;
        if l.is_empty() {
            break;
        }
        let l = String::from_utf8_lossy(l);
        let (name, value) = l.split_once(':')?;
        let value = value.trim();
        match name.to_ascii_lowercase().as_str() {
            "content-length" => length = Some(value.parse::<usize>().ok()?),
            "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
            "x-case" => case = Some(value.to_string()),
            _ => {}
        }
    }
    let mut body_len = 0;
    if chunked {
        loop {
            let (size, n) = line(&b[at..])?;
            at += n;
            let size = String::from_utf8_lossy(size);
            let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
            if size == 0 {
                loop {
                    let (l, n) = line(&b[at..])?;
                    at += n;
                    if l.is_empty() {
                        break;
                    }
                }
                break;
            }
            if b.len() < at + size + 2 || &b[at + size..at + size + 2] != b"\r\n" {
                return None;
            }
            body_len += size;
            at += size + 2;
        }
    } else if let Some(n) = length {
        if b.len() < at + n {
            return None;
        }
        body_len = n;
        at += n;
    }
    let f = Forwarded {
        method,
        target,
        case,
        body_len,
    };
    Some((f, at))
}

//! The integrity tests' client: a deliberately slow reader (a pause after every `recv`, so
//! output piles up and spills on the server) and a response reader that checks framing
//! (Content-Length, chunked, close-delimited) and hashes the body as it arrives.
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use sha2::{Digest, Sha256};

/// A reader that sleeps `pause` after each read of at most `recv` bytes.
pub struct Slow {
    pub sock: TcpStream,
    recv: usize,
    pause: Duration,
}

impl Read for Slow {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let want = buf.len().min(self.recv);
        loop {
            match self.sock.read(&mut buf[..want]) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                r => {
                    if matches!(r, Ok(n) if n > 0) && !self.pause.is_zero() {
                        std::thread::sleep(self.pause);
                    }
                    return r;
                }
            }
        }
    }
}

/// A connection read through `Slow`.
pub struct Conn {
    pub r: BufReader<Slow>,
}

/// One response as the client saw it.
#[derive(Debug)]
pub struct Seen {
    pub status: u16,
    pub head: String,
    /// Hex SHA-256 and length of the body (de-chunked).
    pub sha: String,
    pub len: u64,
}

/// How a response failed to arrive whole (shown through `Debug` in failure messages).
#[derive(Debug)]
#[allow(dead_code)] // the fields are read through Debug
pub enum Broken {
    /// The connection ended (EOF, reset or time-out) after `len` body bytes.
    Cut { len: u64, why: String },
    /// The bytes on the wire are not HTTP/1.1 framing (corruption shows up here).
    Framing(String),
}

pub fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

impl Conn {
    pub fn open(addr: &str, recv: usize, pause: Duration) -> Conn {
        let sock = TcpStream::connect(addr).expect("connect");
        sock.set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        Conn {
            r: BufReader::with_capacity(recv.max(1), Slow { sock, recv, pause }),
        }
    }

    pub fn send(&mut self, raw: &[u8]) {
        self.r.get_mut().sock.write_all(raw).expect("send request");
    }

    fn line(&mut self) -> Result<Vec<u8>, Broken> {
        let mut line = Vec::new();
        match self.r.read_until(b'\n', &mut line) {
            Ok(_) if line.ends_with(b"\r\n") => {
                line.truncate(line.len() - 2);
                Ok(line)
            }
            Ok(_) => Err(Broken::Cut {
                len: 0,
                why: format!("line cut short: {:?}", String::from_utf8_lossy(&line)),
            }),
            Err(e) => Err(Broken::Cut {
                len: 0,
                why: e.to_string(),
            }),
        }
    }

    /// Reads one response to a request with `method`, hashing its body.
    pub fn response(&mut self, method: &str) -> Result<Seen, Broken> {
        let mut head = String::new();
        loop {
            let l = self.line()?;
            if l.is_empty() {
                break;
            }
            head.push_str(&String::from_utf8_lossy(&l));
            head.push('\n');
        }
        let status: u16 = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| Broken::Framing(format!("bad status line: {head:?}")))?;
        let lower = head.to_ascii_lowercase();
        let field = |name: &str| {
            lower
                .lines()
                .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()))
        };
        let mut h = Sha256::new();
        let mut len = 0u64;
        if method != "HEAD" && status != 204 && status != 304 {
            if let Some(cl) = field("content-length:") {
                let cl: u64 = cl.parse().map_err(|_| Broken::Framing(lower.clone()))?;
                self.copy(&mut h, &mut len, Some(cl))?;
            } else if field("transfer-encoding:").as_deref() == Some("chunked") {
                loop {
                    let l = self.line().map_err(|e| at(e, len))?;
                    let size = std::str::from_utf8(&l)
                        .ok()
                        .and_then(|s| u64::from_str_radix(s, 16).ok())
                        .ok_or_else(|| {
                            Broken::Framing(format!(
                                "chunk-size line {:?} after {len} body bytes",
                                String::from_utf8_lossy(&l[..l.len().min(40)])
                            ))
                        })?;
                    if size > 0 {
                        self.copy(&mut h, &mut len, Some(size))?;
                    }
                    let end = self.line().map_err(|e| at(e, len))?;
                    if !end.is_empty() {
                        return Err(Broken::Framing(format!(
                            "chunk data not followed by CRLF after {len} body bytes"
                        )));
                    }
                    if size == 0 {
                        break;
                    }
                }
            } else {
                self.copy(&mut h, &mut len, None)?;
            }
        }
        Ok(Seen {
            status,
            head,
            sha: hex(&h.finalize()),
            len,
        })
    }

    /// Hashes `want` bytes (or everything up to EOF).
    fn copy(&mut self, h: &mut Sha256, len: &mut u64, want: Option<u64>) -> Result<(), Broken> {
        let mut left = want.unwrap_or(u64::MAX);
        while left > 0 {
            let buf = match self.r.fill_buf() {
                Ok(b) => b,
                Err(e) => {
                    return Err(at(
                        Broken::Cut {
                            len: 0,
                            why: e.to_string(),
                        },
                        *len,
                    ))
                }
            };
            if buf.is_empty() {
                if want.is_none() {
                    return Ok(());
                }
                return Err(Broken::Cut {
                    len: *len,
                    why: "EOF".into(),
                });
            }
            let k = buf.len().min(left.min(usize::MAX as u64) as usize);
            h.update(&buf[..k]);
            self.r.consume(k);
            *len += k as u64;
            left -= k as u64;
        }
        Ok(())
    }
}

fn at(e: Broken, len: u64) -> Broken {
    match e {
        Broken::Cut { why, .. } => Broken::Cut { len, why },
        f => f,
    }
}

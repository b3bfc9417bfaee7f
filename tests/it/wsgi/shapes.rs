//! The response-shape matrix through the real `waitressd` binary: every body shape an app can
//! hand over (tests/apps/wsgi/shapes.py) × every framing (Content-Length, none; HTTP/1.0 with
//! and without keep-alive) × plain TCP and TLS × `send_bytes` default and 18000. Each response
//! is parsed and compared byte for byte; on a kept-alive connection a pipelined pair and a
//! sequential request must then be answered too.
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use crate::tls::{self, certs};
use crate::util::{self, Daemon};

/// Shape name and item sizes, as in shapes.py's `SIZES`.
const SHAPES: &[(&str, &[usize])] = &[
    ("one", &[100]),
    ("list2", &[3, 4]),
    ("list50", &[10; 50]),
    ("empties", &[0, 5, 0, 0, 7, 0]),
    ("gen", &[5, 6, 7, 8]),
    ("gen_sleep", &[5, 6, 7, 8]),
    ("write_list", &[9, 11, 4]),
    ("write_only", &[6, 8]),
    ("wrapper_file", &[70000]),
    ("wrapper_bytesio", &[5000]),
    ("empty", &[]),
    ("big", &[70000, 70001, 70002]),
];

/// How a request is framed and what the response must then be.
#[derive(Clone, Copy, Debug)]
enum Framing {
    /// HTTP/1.1, the app sets Content-Length: that header, kept alive.
    Cl11,
    /// HTTP/1.1, no Content-Length from the app: chunked (or a length the server knows), kept
    /// alive.
    None11,
    /// HTTP/1.0 without keep-alive, no Content-Length: ends at the close.
    None10,
    /// HTTP/1.0 with `Connection: keep-alive`, the app sets Content-Length: kept alive.
    Cl10KeepAlive,
    /// HTTP/1.0 with `Connection: keep-alive`, no Content-Length from the app: ends at the
    /// close, unless the server knows the length and keeps the connection alive.
    None10KeepAlive,
}

impl Framing {
    const ALL: [Framing; 5] = [
        Framing::Cl11,
        Framing::None11,
        Framing::None10,
        Framing::Cl10KeepAlive,
        Framing::None10KeepAlive,
    ];

    fn request(self, shape: &str) -> String {
        match self {
            Framing::Cl11 => format!("GET /cl/{shape} HTTP/1.1\r\nHost: h\r\n\r\n"),
            Framing::None11 => format!("GET /none/{shape} HTTP/1.1\r\nHost: h\r\n\r\n"),
            Framing::None10 => format!("GET /none/{shape} HTTP/1.0\r\n\r\n"),
            Framing::Cl10KeepAlive => {
                format!("GET /cl/{shape} HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            }
            Framing::None10KeepAlive => {
                format!("GET /none/{shape} HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            }
        }
    }

    /// Whether the connection must stay open (None10KeepAlive: as the response says).
    fn keep_alive(self) -> bool {
        matches!(
            self,
            Framing::Cl11 | Framing::None11 | Framing::Cl10KeepAlive
        )
    }
}

/// The bytes shapes.py's `piece(shape, k, size)` makes.
fn piece(shape: &str, k: usize, size: usize) -> Vec<u8> {
    let unit = format!("{shape}.{k}|");
    unit.bytes().cycle().take(size).collect()
}

fn expected(shape: &str, sizes: &[usize]) -> Vec<u8> {
    let mut body = Vec::new();
    for (k, &n) in sizes.iter().enumerate() {
        body.extend(piece(shape, k, n));
    }
    body
}

/// One parsed response: status line, lower-cased headers, de-framed body.
struct Parsed {
    status_line: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Parsed {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn line(r: &mut impl BufRead) -> Result<String, String> {
    let mut l = String::new();
    match r.read_line(&mut l) {
        Ok(0) => Err("connection closed".into()),
        Ok(_) => Ok(l.trim_end_matches("\r\n").to_string()),
        Err(e) => Err(stalled(&e)),
    }
}

/// Names a read error; the read timeout is a hang.
fn stalled(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
            "nothing more arrived within 10 s (a hang)".into()
        }
        _ => format!("read failed: {e}"),
    }
}

/// Reads one response framed by Content-Length, chunked, or (`to_close`) the close.
fn parse(r: &mut impl BufRead, to_close: bool) -> Result<Parsed, String> {
    let status_line = line(r)?;
    let mut headers = Vec::new();
    loop {
        let h = line(r)?;
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':').ok_or(format!("bad header line {h:?}"))?;
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    let mut p = Parsed {
        status_line,
        headers,
        body: Vec::new(),
    };
    if let Some(cl) = p.header("content-length") {
        let cl: u64 = cl.parse().map_err(|_| format!("bad Content-Length {cl}"))?;
        let mut body = Vec::new();
        r.take(cl).read_to_end(&mut body).map_err(|e| {
            format!(
                "body stalled after {} of {cl} bytes: {}",
                body.len(),
                stalled(&e)
            )
        })?;
        if body.len() as u64 != cl {
            return Err(format!("body cut at {} of {cl} bytes", body.len()));
        }
        p.body = body;
    } else if p.header("transfer-encoding") == Some("chunked") {
        loop {
            let size = line(r)?;
            let n = usize::from_str_radix(size.trim(), 16)
                .map_err(|_| format!("bad chunk size line {size:?}"))?;
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk)
                .map_err(|e| format!("chunk of {n} cut: {}", stalled(&e)))?;
            if &chunk[n..] != b"\r\n" {
                return Err(format!("chunk of {n} not followed by CRLF"));
            }
            if n == 0 {
                break;
            }
            p.body.extend_from_slice(&chunk[..n]);
        }
    } else if to_close {
        // A TLS peer that closes without close_notify is an error here: keep what came and
        // let the byte comparison judge it. A connection left open is a hang.
        if let Err(e) = r.read_to_end(&mut p.body) {
            if e.kind() != std::io::ErrorKind::UnexpectedEof {
                return Err(format!(
                    "close-delimited body not closed after {} bytes: {}",
                    p.body.len(),
                    stalled(&e)
                ));
            }
        }
    } else {
        return Err("no Content-Length nor chunked on a kept-alive response".into());
    }
    Ok(p)
}

/// Checks one response of `shape` under `framing`.
fn check(p: &Parsed, framing: Framing, shape: &str, want: &[u8]) -> Result<(), String> {
    let version = match framing {
        Framing::Cl11 | Framing::None11 => "HTTP/1.1",
        _ => "HTTP/1.0",
    };
    if p.status_line != format!("{version} 200 OK") {
        return Err(format!("status line {:?}", p.status_line));
    }
    match framing {
        Framing::Cl11 | Framing::Cl10KeepAlive => {
            if p.header("content-length") != Some(&want.len().to_string()) {
                return Err(format!("Content-Length {:?}", p.header("content-length")));
            }
        }
        Framing::None11 => {
            if p.header("transfer-encoding") != Some("chunked")
                && p.header("content-length").is_none()
            {
                return Err("HTTP/1.1 without a length is not chunked".into());
            }
        }
        Framing::None10 | Framing::None10KeepAlive => {
            if p.header("transfer-encoding").is_some() {
                return Err("Transfer-Encoding on HTTP/1.0".into());
            }
        }
    }
    if matches!(framing, Framing::Cl10KeepAlive)
        && !p
            .header("connection")
            .is_some_and(|c| c.eq_ignore_ascii_case("keep-alive"))
    {
        return Err(format!(
            "HTTP/1.0 keep-alive answered with Connection {:?}",
            p.header("connection")
        ));
    }
    if p.body != want {
        let at = p.body.iter().zip(want).take_while(|(a, b)| a == b).count();
        return Err(format!(
            "{shape}: body of {} bytes, want {}; first difference at {at}: got {:?}",
            p.body.len(),
            want.len(),
            String::from_utf8_lossy(&p.body[at.min(p.body.len())..(at + 40).min(p.body.len())])
        ));
    }
    Ok(())
}

/// Runs one case on a fresh connection `c`: the request, then on a kept-alive connection a
/// pipelined pair and a sequential one; on HTTP/1.0 without keep-alive, the close.
fn run_case<S: Read + Write>(
    c: &mut BufReader<S>,
    framing: Framing,
    shape: &str,
    want: &[u8],
) -> Result<(), String> {
    let req = framing.request(shape);
    let send = |c: &mut BufReader<S>, bytes: &[u8]| {
        c.get_mut()
            .write_all(bytes)
            .and_then(|_| c.get_mut().flush())
            .map_err(|e| format!("send failed: {e}"))
    };
    send(c, req.as_bytes())?;
    let p = parse(c, !framing.keep_alive()).map_err(|e| format!("first response: {e}"))?;
    check(&p, framing, shape, want).map_err(|e| format!("first response: {e}"))?;
    let kept = framing.keep_alive()
        || (p.header("content-length").is_some()
            && p.header("connection")
                .is_some_and(|c| c.eq_ignore_ascii_case("keep-alive")));
    if !kept {
        if p.header("content-length").is_none() {
            return Ok(()); // read to the close already
        }
        // A length the server knew, without keep-alive: the close must follow.
        let mut b = [0u8; 1];
        return match c.read(&mut b) {
            Ok(0) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(()),
            Ok(_) => Err("bytes after a response that does not keep the connection".into()),
            Err(e) => Err(format!("connection left open: {}", stalled(&e))),
        };
    }
    send(c, format!("{req}{req}").as_bytes())?;
    for n in ["pipelined 1", "pipelined 2"] {
        let p = parse(c, false).map_err(|e| format!("{n}: {e}"))?;
        check(&p, framing, shape, want).map_err(|e| format!("{n}: {e}"))?;
    }
    send(c, req.as_bytes())?;
    let p = parse(c, false).map_err(|e| format!("sequential: {e}"))?;
    check(&p, framing, shape, want).map_err(|e| format!("sequential: {e}"))
}

/// Runs the whole matrix against `d`; returns the cases run and the failures.
fn matrix(d: &Daemon, tls_ca: Option<&Path>, label: &str, failures: &mut Vec<String>) -> usize {
    let mut n = 0;
    for &(shape, sizes) in SHAPES {
        let want = expected(shape, sizes);
        for framing in Framing::ALL {
            n += 1;
            let r = match tls_ca {
                None => {
                    let s = TcpStream::connect(d.addr()).unwrap();
                    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                    run_case(&mut BufReader::new(s), framing, shape, &want)
                }
                Some(ca) => match tls::connect(&d.addr(), certs::client(ca, 13, None)) {
                    Ok(s) => run_case(&mut BufReader::new(s), framing, shape, &want),
                    Err(e) => Err(format!("TLS handshake: {e}")),
                },
            };
            if let Err(e) = r {
                failures.push(format!("[{label}] {shape} {framing:?}: {e}"));
            }
        }
    }
    n
}

/// Every response shape × framing × transport × send_bytes setting is complete and exact,
/// and a kept-alive connection serves a pipelined pair and a further request after it (a
/// Content-Length body in pieces once kept its tail unsent on a kept-alive connection).
#[test]
fn every_response_shape_is_exact_in_every_framing_and_transport() {
    let dir = tempfile::tempdir().unwrap();
    let ca = certs::ca(dir.path());
    let (cert, key) = certs::issue(dir.path(), "srv", "rsa", false);
    let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());
    let mut failures = Vec::new();
    let mut cases = 0;
    for send_bytes in [None, Some("18000")] {
        for tls_on in [false, true] {
            let mut args = vec![
                "--app",
                "shapes:app",
                "--listen",
                "127.0.0.1:0",
                "--threads",
                "2",
            ];
            if let Some(v) = send_bytes {
                args.extend(["--send-bytes", v]);
            }
            if tls_on {
                args.extend(["--certfile", cert, "--keyfile", key]);
            }
            let d = Daemon::start(&args, &util::root().join("tests/apps/wsgi"), 1);
            let label = format!(
                "{} send_bytes={}",
                if tls_on { "tls" } else { "tcp" },
                send_bytes.unwrap_or("default")
            );
            cases += matrix(&d, tls_on.then_some(ca.as_path()), &label, &mut failures);
        }
    }
    assert_eq!(cases, SHAPES.len() * Framing::ALL.len() * 4);
    assert!(
        failures.is_empty(),
        "{} of {cases} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

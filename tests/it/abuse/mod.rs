//! Adversarial clients against the real binary (issue 11 item 5): bursts at
//! `connection_limit`, slowloris, idle floods, header bombs, clients that never read or vanish,
//! and apps that hang, raise or leak. Every test asserts that a fresh client is still served
//! within a bound and that the worker's memory stays bounded.
mod apps;
mod burst;
mod clients;
mod heads;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::util::{root, Daemon};

/// Starts `waitressd --app abuse:app` on 127.0.0.1:0 with `extra` settings.
fn start(extra: &[&str]) -> Daemon {
    let mut cmd = std::process::Command::new(crate::util::bin());
    cmd.args(["--app", "abuse:app", "--listen", "127.0.0.1:0"])
        .args(extra)
        .current_dir(root().join("tests/apps/wsgi"));
    Daemon::start_with(&mut cmd, 1)
}

/// Reads one response (head, then a Content-Length or chunked body); `None` on EOF, reset or
/// timeout before it is complete.
fn read_response(s: &mut TcpStream) -> Option<(u16, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        match s.read(&mut chunk) {
            Ok(0) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + len {
        match s.read(&mut chunk) {
            Ok(0) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    Some((status, buf[head_end..head_end + len].to_vec()))
}

/// A fresh client's `GET /hello`, answered within `secs`; how long it took.
fn fresh_client_served(addr: &str, secs: u64) -> Result<Duration, String> {
    let t = Instant::now();
    let mut s = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(secs))).unwrap();
    s.write_all(b"GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
        .map_err(|e| format!("write: {e}"))?;
    match read_response(&mut s) {
        Some((200, body)) if body == b"hello" => Ok(t.elapsed()),
        other => Err(format!(
            "fresh client got {other:?} after {:?}",
            t.elapsed()
        )),
    }
}

/// Resident memory of the daemon and its workers together, in KiB.
fn rss_kib(pid: i32) -> u64 {
    crate::util::family(pid)
        .iter()
        .filter_map(|p| std::fs::read_to_string(format!("/proc/{p}/status")).ok())
        .filter_map(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .sum()
}

/// Connects `n` clients without blocking on the server (the kernel completes the handshake
/// while they wait in the backlog).
fn connect_many(addr: &str, n: usize) -> Vec<TcpStream> {
    raise_fd_limit(n as u64 + 4096);
    (0..n)
        .map(|_| TcpStream::connect(addr).expect("connect"))
        .collect()
}

/// Raises this process's soft RLIMIT_NOFILE towards `want` (capped at the hard limit): the
/// tests share one process, and a default soft limit of 1024 is too few for a 1000-client burst.
pub(crate) fn raise_fd_limit(want: u64) {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid rlimit on our stack.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) == 0 && r.rlim_cur < want {
            r.rlim_cur = want.min(r.rlim_max);
            libc::setrlimit(libc::RLIMIT_NOFILE, &r);
        }
    }
}

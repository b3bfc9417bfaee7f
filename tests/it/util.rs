//! Test harness: start the real daemon, find its port from the "Serving on" line, stop it by PID.
#![allow(dead_code)]
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Held by tests that measure this process's RSS and by tests that make it allocate a lot
/// (they share one process).
pub static RSS_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Path of the binary under test: `$WAITRESSD_TEST_BIN` when set (another build of the same
/// sources, e.g. a release or packaged one, or an older commit's to show a regression test
/// fails there), else the one cargo built for this test run.
pub fn bin() -> PathBuf {
    std::env::var_os("WAITRESSD_TEST_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_waitressd")))
}

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The test virtualenv made by `tools/venv.sh` (the README's test command creates it).
pub fn venv() -> PathBuf {
    std::env::var_os("WAITRESSD_TEST_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(".venv"))
}

/// Child PIDs of `pid` (from /proc/PID/task/PID/children): a master's workers.
pub fn children(pid: i32) -> Vec<i32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// `pid` and its children: a master and its workers.
pub fn family(pid: i32) -> Vec<i32> {
    let mut pids = vec![pid];
    pids.extend(children(pid));
    pids
}

/// Polls `f` every 25 ms until it holds or `secs` pass; returns whether it held.
pub fn eventually(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let end = std::time::Instant::now() + Duration::from_secs(secs);
    while std::time::Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    false
}

/// Runs the binary to completion: (exit code, stdout, stderr).
pub fn run(args: &[&str], cwd: &Path) -> (i32, String, String) {
    let out = Command::new(bin())
        .args(args)
        .current_dir(cwd)
        .env("VIRTUAL_ENV", venv())
        .output()
        .expect("run waitressd");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A running daemon; killed (by its PID) on drop.
pub struct Daemon {
    pub child: Child,
    /// Every listener's URL (`listening on` / `Serving on`), in order.
    pub urls: Vec<String>,
    /// stderr lines after the Serving lines, as they arrive.
    pub stderr: mpsc::Receiver<String>,
}

impl Daemon {
    /// Starts `waitressd ARGS` in `cwd` and waits (bounded) for `n` "Serving on" lines.
    pub fn start(args: &[&str], cwd: &Path, n: usize) -> Daemon {
        Self::start_with(Command::new(bin()).args(args).current_dir(cwd), n)
    }

    pub fn start_with(cmd: &mut Command, n: usize) -> Daemon {
        if std::env::var_os("VIRTUAL_ENV").is_none() {
            cmd.env("VIRTUAL_ENV", venv());
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn waitressd");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut urls = Vec::new();
        let mut seen = Vec::new();
        while urls.len() < n {
            match rx.recv_timeout(Duration::from_secs(30)) {
                Ok(line) => {
                    // The master's "listening on URL" (at bind) comes first; waitress's
                    // "Serving on URL" follows once a worker loaded the app, unless the app's
                    // Python logging hides it (as under pserve).
                    if let Some(i) = line.find("] listening on ") {
                        urls.push(line[i + 15..].trim().to_string());
                    } else if let Some(i) = line.find("Serving on ") {
                        urls.push(line[i + 11..].trim().to_string());
                    } else {
                        seen.push(line);
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    panic!(
                        "daemon did not report {n} listener(s); stderr so far:\n{}",
                        seen.join("\n")
                    );
                }
            }
        }
        Daemon {
            child,
            urls,
            stderr: rx,
        }
    }

    /// `host:port` of the first TCP listener.
    pub fn addr(&self) -> String {
        let url = &self.urls[0];
        url.trim_start_matches("https://")
            .trim_start_matches("http://")
            .to_string()
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Sends a signal to the daemon (by its PID).
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on the PID of a child we started and have not reaped.
        unsafe { libc::kill(self.pid(), sig) };
    }

    /// Waits (bounded) for exit; returns the exit code (or 128+signal).
    pub fn wait(&mut self, secs: u64) -> Option<i32> {
        use std::os::unix::process::ExitStatusExt;
        let deadline = std::time::Instant::now() + Duration::from_secs(secs);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(st)) = self.child.try_wait() {
                return Some(st.code().unwrap_or_else(|| 128 + st.signal().unwrap_or(0)));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            // SIGQUIT first (immediate stop of master and workers), then SIGKILL.
            self.signal(libc::SIGQUIT);
            if self.wait(5).is_none() {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
    }
}

/// Sends raw bytes, reads until the peer closes or `secs` pass; returns what was read.
pub fn exchange(addr: &str, request: &[u8], secs: u64) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(secs))).unwrap();
    s.write_all(request).unwrap();
    read_until_close(&mut s).0
}

/// Reads `s` until the peer closes: what was read, and how it ended (`Ok` after a clean
/// close, the error's kind after a reset or the read timeout).
pub fn read_until_close(s: &mut TcpStream) -> (Vec<u8>, Result<(), std::io::ErrorKind>) {
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return (out, Ok(())),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            // A signal interrupted the read (handlers without SA_RESTART): retry.
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return (out, Err(e.kind())),
        }
    }
}

/// One `GET path` with `Connection: close`; returns (status code, headers text, body).
pub fn get(addr: &str, path: &str) -> (u16, String, Vec<u8>) {
    let req = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    split_response(&exchange(addr, req.as_bytes(), 30))
}

/// Splits one raw response into (status, head, body) — body is everything after the head.
pub fn split_response(raw: &[u8]) -> (u16, String, Vec<u8>) {
    let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return (0, String::from_utf8_lossy(raw).into_owned(), Vec::new());
    };
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head, raw[end + 4..].to_vec())
}

/// A `sleep 60` child, returned once it runs `sleep` (before its exec it is a copy of the test
/// binary): a live process that is not waitressd.
pub fn spawn_sleep() -> std::process::Child {
    let child = Command::new("sleep").arg("60").spawn().unwrap();
    let comm = format!("/proc/{}/comm", child.id());
    assert!(
        eventually(10, || std::fs::read_to_string(&comm)
            .is_ok_and(|c| c == "sleep\n")),
        "sleep never started"
    );
    child
}

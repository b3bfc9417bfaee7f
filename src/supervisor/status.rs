//! The status listener (`status_listen`): a small HTTP/1.1 server on a thread of the master,
//! never on the app's listeners, answering `/ready` (200 while every wanted worker is ready
//! and nothing drains, 503 from the moment a stop starts draining), `/live` and `/metrics`.
//!
//! The master owns the facts: each worker gets a block of counters in memory shared across
//! the fork (`server::metrics::Counters`); the master tells this module when workers start
//! and exit (`spawned`, `exited`), whether it is ready (`publish`) and when it drains
//! (`set_draining`); the thread only reads.
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::unistd::Pid;

use super::prometheus;
use crate::server::metrics::{Counters, Totals};

/// Worker blocks: the largest `workers` twice over (a reload runs two generations).
const SLOTS: usize = 2 * 4096 + 64;
/// Status requests served at once (more are closed: a probe retries).
const MAX_ACTIVE: usize = 16;
const IO_TIMEOUT: Duration = Duration::from_secs(2);

/// What the status thread reads.
pub(super) struct Board {
    ready: AtomicBool,
    draining: AtomicBool,
    facts: Mutex<Facts>,
    slots: &'static [Counters],
}

/// Live workers and what the dead ones left.
#[derive(Default)]
pub(super) struct Facts {
    /// (worker id, pid, slot), in spawn order.
    pub(super) workers: Vec<(usize, Pid, usize)>,
    /// Counters of workers that exited.
    pub(super) retired: Totals,
    /// Worker exits that led to a replacement or a stop, by reason.
    pub(super) restarts: BTreeMap<&'static str, u64>,
}

/// The master's side.
pub(super) struct Status {
    board: Arc<Board>,
    free: Vec<usize>,
    fd: RawFd,
    addr: SocketAddr,
}

/// Maps `SLOTS` zeroed counter blocks shared with every child forked after this.
fn shared_slots() -> std::io::Result<&'static [Counters]> {
    let len = std::mem::size_of::<Counters>() * SLOTS;
    let size = std::num::NonZeroUsize::new(len).expect("non-empty");
    use nix::sys::mman::{mmap_anonymous, MapFlags, ProtFlags};
    // SAFETY: a fresh anonymous mapping (no file, no address hint) cannot alias anything.
    let p = unsafe {
        mmap_anonymous(
            None,
            size,
            ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
            MapFlags::MAP_SHARED,
        )
    }?;
    // SAFETY: the mapping is page-aligned (enough for AtomicU64), `len` bytes long, zero-filled
    // by the kernel, and never unmapped (it lives as long as the process); `Counters` is
    // `repr(C)` made of `AtomicU64`s only, for which all-zero bytes are a valid value, and
    // atomics are the only access (from this process and from forked children).
    Ok(unsafe { std::slice::from_raw_parts(p.as_ptr() as *const Counters, SLOTS) })
}

impl Status {
    /// Binds `addr` and starts the thread. Called by the master before any fork.
    /// Serves `addr`: on the socket an upgrading master handed over (`handed`) when it is
    /// bound there, else on a new one.
    pub(super) fn start(addr: SocketAddr, handed: Option<RawFd>) -> std::io::Result<Status> {
        let listener = match handed.and_then(adopt) {
            Some(l) if l.local_addr().is_ok_and(|a| a == addr || addr.port() == 0) => l,
            _ => TcpListener::bind(addr)?, // none, or another address: dropping closes it
        };
        let fd = listener.as_raw_fd();
        let addr = listener.local_addr()?;
        let board = Arc::new(Board {
            ready: AtomicBool::new(false),
            draining: AtomicBool::new(false),
            facts: Mutex::new(Facts::default()),
            slots: shared_slots()?,
        });
        let b = board.clone();
        std::thread::Builder::new()
            .name("status".into())
            .spawn(move || serve(listener, b))?;
        Ok(Status {
            board,
            free: (0..SLOTS).rev().collect(),
            fd,
            addr,
        })
    }

    /// `http://HOST:PORT` of the status listener (the real port for port 0).
    pub(super) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The listener's descriptor (closed in forked workers).
    pub(super) fn raw_fd(&self) -> RawFd {
        self.fd
    }

    /// A counter block for a worker about to be forked.
    pub(super) fn take_slot(&mut self) -> Option<(usize, &'static Counters)> {
        let i = self.free.pop()?;
        Some((i, &self.board.slots[i]))
    }

    /// The fork failed: the block goes back.
    pub(super) fn return_slot(&mut self, slot: usize) {
        self.free.push(slot);
    }

    pub(super) fn spawned(&mut self, id: usize, pid: Pid, slot: usize) {
        self.facts().workers.push((id, pid, slot));
    }

    /// A worker exited: its counters are kept, its block freed; `restart` names why it was
    /// replaced (None: not counted, e.g. the whole server stopping).
    pub(super) fn exited(&mut self, pid: Pid, restart: Option<&'static str>) {
        let mut f = self.facts();
        if let Some(reason) = restart {
            *f.restarts.entry(reason).or_default() += 1;
        }
        let Some(i) = f.workers.iter().position(|w| w.1 == pid) else {
            return;
        };
        let (_, _, slot) = f.workers.remove(i);
        let mut retired = std::mem::take(&mut f.retired);
        self.board.slots[slot].retire_into(&mut retired);
        f.retired = retired;
        drop(f);
        self.free.push(slot);
    }

    /// Ready = every wanted worker is ready (the master decides); ignored while draining.
    pub(super) fn publish(&self, ready: bool) {
        self.board.ready.store(ready, Ordering::Release);
    }

    /// From now on `/ready` answers 503 (a stop or a retirement is draining).
    pub(super) fn set_draining(&self, draining: bool) {
        self.board.draining.store(draining, Ordering::Release);
    }

    fn facts(&self) -> std::sync::MutexGuard<'_, Facts> {
        self.board.facts.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Board {
    fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire) && !self.draining.load(Ordering::Acquire)
    }

    /// Sums every live worker's block and the retired totals; lists live workers.
    fn snapshot(&self) -> prometheus::Snapshot {
        let f = self.facts.lock().unwrap_or_else(|e| e.into_inner());
        let mut totals = f.retired.clone();
        for &(_, _, slot) in &f.workers {
            self.slots[slot].add_to(&mut totals);
        }
        prometheus::Snapshot {
            totals,
            workers: f.workers.iter().map(|&(id, pid, _)| (id, pid)).collect(),
            restarts: f.restarts.clone(),
            ready: self.is_ready(),
        }
    }
}

/// The status socket an upgrading master handed over, if `fd` is a listening TCP socket.
fn adopt(fd: RawFd) -> Option<TcpListener> {
    // Only a descriptor that is a socket with an address is taken over (and closed if unused).
    nix::sys::socket::getsockname::<nix::sys::socket::SockaddrStorage>(fd).ok()?;
    // SAFETY: the old master passed this listening socket across exec for this process alone
    // (ENV_STATUS, read and removed once at boot); nothing else here owns or closes it.
    let l = unsafe { <TcpListener as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    let _ = nix::fcntl::fcntl(
        &l,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    );
    Some(l)
}

fn serve(listener: TcpListener, board: Arc<Board>) {
    let active = Arc::new(AtomicUsize::new(0));
    for conn in listener.incoming() {
        let Ok(s) = conn else { continue };
        if active.fetch_add(1, Ordering::AcqRel) >= MAX_ACTIVE {
            active.fetch_sub(1, Ordering::AcqRel);
            continue; // dropped: closed
        }
        let (b, a) = (board.clone(), active.clone());
        let spawned = std::thread::Builder::new()
            .name("status-conn".into())
            .spawn(move || {
                handle(s, &b);
                a.fetch_sub(1, Ordering::AcqRel);
            });
        if spawned.is_err() {
            active.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// One request, one response, then close.
fn handle(mut s: TcpStream, board: &Board) {
    let _ = s.set_read_timeout(Some(IO_TIMEOUT));
    let _ = s.set_write_timeout(Some(IO_TIMEOUT));
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let (method, path) = loop {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        // Only the request line matters; the head must end within 8 KiB.
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let line = buf[..end].split(|&b| b == b'\r').next().unwrap_or(&[]);
            let line = String::from_utf8_lossy(line);
            let mut parts = line.split(' ');
            match (parts.next(), parts.next(), parts.next(), parts.next()) {
                (Some(m), Some(target), Some(v), None) if v.starts_with("HTTP/1.") => {
                    let path = target.split('?').next().unwrap_or(target);
                    break (m.to_string(), path.to_string());
                }
                _ => {}
            }
            return respond(
                &mut s,
                "400 Bad Request",
                "text/plain",
                "bad request\n",
                false,
            );
        }
        if buf.len() >= 8192 {
            return respond(
                &mut s,
                "400 Bad Request",
                "text/plain",
                "bad request\n",
                false,
            );
        }
    };
    let head = method == "HEAD";
    if method != "GET" && !head {
        return respond(
            &mut s,
            "405 Method Not Allowed",
            "text/plain",
            "GET only\n",
            head,
        );
    }
    match path.as_str() {
        "/ready" if board.is_ready() => respond(&mut s, "200 OK", "text/plain", "ready\n", head),
        "/ready" => {
            let why = if board.draining.load(Ordering::Acquire) {
                "draining\n"
            } else {
                "starting\n"
            };
            respond(&mut s, "503 Service Unavailable", "text/plain", why, head)
        }
        "/live" => respond(&mut s, "200 OK", "text/plain", "live\n", head),
        "/metrics" => {
            let text = prometheus::render(&board.snapshot());
            respond(
                &mut s,
                "200 OK",
                "text/plain; version=0.0.4; charset=utf-8",
                &text,
                head,
            )
        }
        _ => respond(&mut s, "404 Not Found", "text/plain", "not found\n", head),
    }
}

fn respond(s: &mut TcpStream, status: &str, ctype: &str, body: &str, head: bool) {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nConnection: close\r\n\r\n",
        body.len()
    );
    if !head {
        out.push_str(body);
    }
    let _ = s.write_all(out.as_bytes());
    // shutdown, not only close: a worker forked while this connection was open holds a copy
    // of its descriptor, and the client would not see the end until that worker exits.
    let _ = s.shutdown(std::net::Shutdown::Both);
}

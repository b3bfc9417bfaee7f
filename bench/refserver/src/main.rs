//! The benchmark's no-Python reference server: one thread, one mio poll, edge-triggered,
//! HTTP/1.1 keep-alive, httparse for heads. It answers the benchmark rows only:
//! `GET /` (13-byte hello), `GET /64k` (65,536 bytes), `GET /stream` (100 × 1 KiB chunked) and
//! any `POST` with a Content-Length (the body is read to the end and dropped, then hello).
//! It is the floor: what the rows cost with no Python and no WSGI in the way.
//!
//!     refserver 127.0.0.1:PORT
//!
//! Pre-fork mode (bench/accept_modes.py compares the accept strategies with it):
//!
//!     refserver 127.0.0.1:PORT --workers N --accept exclusive|exclusive-rearm|reuseport [--parent-closes]
//!
//! `exclusive`: one listener bound before forking N workers; each registers the shared fd in its
//! own epoll with EPOLLIN|EPOLLET|EPOLLEXCLUSIVE (`exclusive-rearm` also deletes and re-adds it
//! after accepting, as waitressd does). `reuseport`: N listeners with SO_REUSEPORT, all bound
//! before forking; worker i keeps listener i only. The parent holds its copies unless
//! `--parent-closes`. It prints `worker <i> pid <pid>` per worker; on SIGTERM or SIGINT it
//! forwards SIGTERM and waits; each worker then prints `worker <pid> accepted <A> requests <R>`.
use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};

use mio::net::{TcpListener, TcpStream};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};

const LISTENER: Token = Token(0);
/// A pre-fork worker's signalfd (SIGTERM, SIGINT).
const SIGNAL: Token = Token(usize::MAX);
/// Counted in every mode, reported by pre-fork workers.
static ACCEPTED: AtomicU64 = AtomicU64::new(0);
static REQUESTS: AtomicU64 = AtomicU64::new(0);
const HELLO: &[u8] = b"Hello, World!";

struct Conn {
    sock: TcpStream,
    inbuf: Vec<u8>,
    out: Vec<u8>,
    sent: usize,
    /// Body bytes of the current POST still to read.
    body_left: usize,
}

fn respond(out: &mut Vec<u8>, path: &[u8]) {
    REQUESTS.fetch_add(1, Ordering::Relaxed);
    match path {
        b"/64k" => {
            out.extend_from_slice(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 65536\r\n\r\n",
            );
            out.resize(out.len() + 65536, b'x');
        }
        b"/stream" => {
            out.extend_from_slice(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n",
            );
            for _ in 0..100 {
                out.extend_from_slice(b"400\r\n");
                out.resize(out.len() + 1024, b'x');
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"0\r\n\r\n");
        }
        _ => {
            out.extend_from_slice(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\n",
            );
            out.extend_from_slice(HELLO);
        }
    }
}

impl Conn {
    /// Parses what is buffered; queues responses. Returns false on a bad request.
    fn process(&mut self) -> bool {
        loop {
            if self.body_left > 0 {
                let take = self.body_left.min(self.inbuf.len());
                self.inbuf.drain(..take);
                self.body_left -= take;
                if self.body_left > 0 {
                    return true;
                }
                respond(&mut self.out, b"/");
            }
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut req = httparse::Request::new(&mut headers);
            let n = match req.parse(&self.inbuf) {
                Ok(httparse::Status::Complete(n)) => n,
                Ok(httparse::Status::Partial) => return true,
                Err(_) => return false,
            };
            let post = req.method == Some("POST");
            let path = req.path.unwrap_or("/").as_bytes().to_vec();
            let len = req
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse().ok())
                .unwrap_or(0usize);
            self.inbuf.drain(..n);
            if post && len > 0 {
                self.body_left = len;
                continue;
            }
            respond(&mut self.out, &path);
        }
    }

    /// Sends what is queued; false when the connection failed.
    fn flush(&mut self) -> bool {
        while self.sent < self.out.len() {
            match self.sock.write(&self.out[self.sent..]) {
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        self.out.clear();
        self.sent = 0;
        true
    }

    /// Reads until EAGAIN; false when the connection is over.
    fn read(&mut self, scratch: &mut [u8]) -> bool {
        loop {
            match self.sock.read(scratch) {
                Ok(0) => return false,
                Ok(n) => {
                    if self.body_left >= n && self.inbuf.is_empty() {
                        self.body_left -= n; // body bytes: dropped without a copy
                        if self.body_left == 0 {
                            respond(&mut self.out, b"/");
                        }
                        continue;
                    }
                    self.inbuf.extend_from_slice(&scratch[..n]);
                    if !self.process() {
                        return false;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
    }
}

/// How a loop waits for connections on its listener.
#[derive(Clone, Copy, PartialEq)]
enum Reg {
    /// mio's own registration (single-process mode).
    Mio,
    /// EPOLLIN|EPOLLET|EPOLLEXCLUSIVE by hand; `rearm`: delete and re-add after accepting.
    Exclusive { rearm: bool },
}

/// One epoll_ctl on the listener with EPOLLIN|EPOLLET|EPOLLEXCLUSIVE (`op` ADD) or DEL. The
/// event carries the token in `u64`, as mio's registrations do, so mio reports it normally.
fn epoll_exclusive(poll: &Poll, op: libc::c_int, fd: RawFd) -> std::io::Result<()> {
    let mut ev = libc::epoll_event {
        events: (libc::EPOLLIN | libc::EPOLLET | libc::EPOLLEXCLUSIVE) as u32,
        u64: LISTENER.0 as u64,
    };
    // SAFETY: `poll` owns a valid epoll fd, `fd` is an open listening socket owned by the
    // caller, and `ev` lives on our stack for the duration of the call.
    if unsafe { libc::epoll_ctl(poll.as_raw_fd(), op, fd, &mut ev) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The server loop. `signal`: a pre-fork worker's signalfd; when it fires, the worker reports
/// its counts and exits.
fn serve(mut listener: TcpListener, reg: Reg, signal: Option<RawFd>) -> std::io::Result<()> {
    let mut poll = Poll::new()?;
    match reg {
        Reg::Mio => poll
            .registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?,
        Reg::Exclusive { .. } => epoll_exclusive(&poll, libc::EPOLL_CTL_ADD, listener.as_raw_fd())?,
    }
    if let Some(fd) = signal {
        poll.registry()
            .register(&mut SourceFd(&fd), SIGNAL, Interest::READABLE)?;
    }
    let mut conns: HashMap<usize, Conn> = HashMap::new();
    let mut next = 1usize;
    let mut events = Events::with_capacity(1024);
    let mut scratch = vec![0u8; 64 * 1024];
    loop {
        if let Err(e) = poll.poll(&mut events, None) {
            if e.kind() == ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        for ev in events.iter() {
            if ev.token() == SIGNAL {
                println!(
                    "worker {} accepted {} requests {}",
                    std::process::id(),
                    ACCEPTED.load(Ordering::Relaxed),
                    REQUESTS.load(Ordering::Relaxed)
                );
                let _ = std::io::stdout().flush();
                std::process::exit(0);
            }
            if ev.token() == LISTENER {
                let mut accepted = 0;
                while let Ok((mut sock, _)) = listener.accept() {
                    accepted += 1;
                    let _ = sock.set_nodelay(true);
                    let t = Token(next);
                    next += 1;
                    poll.registry().register(
                        &mut sock,
                        t,
                        Interest::READABLE | Interest::WRITABLE,
                    )?;
                    conns.insert(
                        t.0,
                        Conn {
                            sock,
                            inbuf: Vec::new(),
                            out: Vec::new(),
                            sent: 0,
                            body_left: 0,
                        },
                    );
                }
                ACCEPTED.fetch_add(accepted, Ordering::Relaxed);
                if reg == (Reg::Exclusive { rearm: true }) && accepted > 0 {
                    let fd = listener.as_raw_fd();
                    epoll_exclusive(&poll, libc::EPOLL_CTL_DEL, fd)?;
                    epoll_exclusive(&poll, libc::EPOLL_CTL_ADD, fd)?;
                }
                continue;
            }
            let Some(c) = conns.get_mut(&ev.token().0) else {
                continue;
            };
            let mut alive = true;
            if ev.is_readable() || ev.is_read_closed() {
                alive = c.read(&mut scratch);
            }
            if alive && !c.out.is_empty() {
                alive = c.flush();
            }
            if !alive {
                if let Some(mut c) = conns.remove(&ev.token().0) {
                    let _ = poll.registry().deregister(&mut c.sock);
                }
            }
        }
    }
}

/// Turns -1 from a libc call into the OS error.
fn check(r: libc::c_int) -> std::io::Result<libc::c_int> {
    if r == -1 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// A non-blocking IPv4 listener with SO_REUSEADDR and SO_REUSEPORT set before bind.
fn bind_reuseport(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let SocketAddr::V4(v4) = addr else {
        return Err(std::io::Error::new(
            ErrorKind::InvalidInput,
            "reuseport: IPv4 only",
        ));
    };
    let sa = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: v4.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*v4.ip()).to_be(),
        },
        sin_zero: [0; 8],
    };
    let one: libc::c_int = 1;
    // SAFETY: plain socket(2); the fd is owned by the TcpListener built from it right away.
    let fd = check(unsafe {
        libc::socket(
            libc::AF_INET,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    })?;
    // SAFETY: `fd` is a fresh socket nobody else owns; from here the listener closes it.
    let listener = unsafe { TcpListener::from_raw_fd(fd) };
    for opt in [libc::SO_REUSEADDR, libc::SO_REUSEPORT] {
        // SAFETY: `one` is a c_int on our stack and its size is passed with it.
        check(unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                opt,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        })?;
    }
    // SAFETY: `sa` is a valid sockaddr_in on our stack and its size is passed with it.
    check(unsafe {
        libc::bind(
            fd,
            (&sa as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    })?;
    // SAFETY: listen(2) on the socket we own.
    check(unsafe { libc::listen(fd, 1024) })?;
    Ok(listener)
}

/// Pre-fork mode: see the top of the file.
fn prefork(
    addr: SocketAddr,
    workers: usize,
    accept: &str,
    parent_closes: bool,
) -> std::io::Result<()> {
    let (mut listeners, reg) = match accept {
        "exclusive" => (
            vec![TcpListener::bind(addr)?],
            Reg::Exclusive { rearm: false },
        ),
        "exclusive-rearm" => (
            vec![TcpListener::bind(addr)?],
            Reg::Exclusive { rearm: true },
        ),
        "reuseport" => {
            let first = bind_reuseport(addr)?;
            let addr = first.local_addr()?; // port 0: the others join the same port
            let mut ls = vec![first];
            for _ in 1..workers {
                ls.push(bind_reuseport(addr)?);
            }
            (ls, Reg::Mio)
        }
        _ => {
            return Err(std::io::Error::new(
                ErrorKind::InvalidInput,
                "--accept exclusive|exclusive-rearm|reuseport",
            ))
        }
    };
    eprintln!(
        "refserver on http://{} ({workers} workers, {accept})",
        listeners[0].local_addr()?
    );
    // SIGTERM and SIGINT are blocked before forking: the parent takes them with sigwait, the
    // workers (who inherit the mask) through a signalfd in their poll.
    // SAFETY: sigset_t is plain data that sigemptyset initialises; the calls get valid pointers.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    };
    let _ = std::io::stdout().flush();
    let mut pids = Vec::with_capacity(workers);
    for i in 0..workers {
        // SAFETY: the process is single-threaded here, so the child may go on running Rust.
        let pid = check(unsafe { libc::fork() })?;
        if pid == 0 {
            let own = if reg == Reg::Mio { i } else { 0 };
            // Only its own listener stays open in the worker (the others are closed here).
            let listener = listeners.swap_remove(own);
            drop(listeners);
            // SAFETY: `set` is the initialised sigset above; signalfd returns a new fd or -1.
            let sfd = unsafe { libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC) };
            let r = check(sfd).and_then(|sfd| serve(listener, reg, Some(sfd)));
            eprintln!("refserver worker {}: {r:?}", std::process::id());
            std::process::exit(1);
        }
        println!("worker {i} pid {pid}");
        pids.push(pid);
    }
    let _ = std::io::stdout().flush();
    if parent_closes {
        listeners.clear();
    }
    let mut sig: libc::c_int = 0;
    // SAFETY: `set` is initialised and `sig` is a valid out pointer.
    unsafe { libc::sigwait(&set, &mut sig) };
    for &pid in &pids {
        // SAFETY: kill/waitpid on our own children (a dead one is a zombie until reaped here).
        unsafe { libc::kill(pid, libc::SIGTERM) };
    }
    for &pid in &pids {
        let mut status = 0;
        // SAFETY: as above; `status` is a valid out pointer.
        unsafe { libc::waitpid(pid, &mut status, 0) };
    }
    drop(listeners);
    Ok(())
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let addr = args
        .first()
        .map(String::as_str)
        .unwrap_or("127.0.0.1:8080")
        .parse()
        .map_err(|e| std::io::Error::new(ErrorKind::InvalidInput, e))?;
    let opt = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .map(String::as_str)
    };
    if let Some(n) = opt("--workers") {
        let workers = n
            .parse()
            .map_err(|e| std::io::Error::new(ErrorKind::InvalidInput, e))?;
        let accept = opt("--accept").unwrap_or("exclusive");
        let parent_closes = args.iter().any(|a| a == "--parent-closes");
        return prefork(addr, workers, accept, parent_closes);
    }
    let listener = TcpListener::bind(addr)?;
    eprintln!("refserver on http://{}", listener.local_addr()?);
    serve(listener, Reg::Mio, None)
}

//! The worker's event loop (waitress's `wasyncore.loop` + `BaseWSGIServer`): one mio poll over
//! the listeners, every client channel and a waker; accepting under `connection_limit` (with
//! eviction of idle connections), readiness dispatch, app-thread notifications, and timers.
//!
//! Every socket is registered once, readable + writable, edge-triggered: no epoll_ctl per
//! request. A channel that is not read when readable remembers it (`read_deferred`).
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};

use super::access_log::AccessLog;
use super::channel::{socket_error, ChanState, Channel, Phase, ReadOutcome, Shared};
use super::dispatch::{self, lock, Ctx};
use super::outbuf::OutBuf;
use super::{Control, ServerError, ServerOptions, GRACEFUL, IMMEDIATE, RUNNING};
use crate::http::app::App;
use crate::http::Origin;
use crate::net::Listener;

const WAKER: Token = Token(0);
/// Listener `i` has token `LISTENER0 + i`.
const LISTENER0: usize = 1;
/// Channel slot `i` has token `CHANNEL0 + i`.
const CHANNEL0: usize = 1 << 16;
/// Timer resolution for the whole-head deadline and lingering closes.
const TICK: Duration = Duration::from_secs(1);
/// Bounds of the lingering close after an error response.
const LINGER_TIME: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 1 << 20;
/// How long `run` waits for app threads when stopping (waitress waits 5 s).
const JOIN_WAIT: Duration = Duration::from_secs(5);

enum Lsock {
    Tcp(mio::net::TcpListener),
    Unix(mio::net::UnixListener),
}

struct Listening {
    sock: Lsock,
    /// SERVER_PORT: the bound port, or the unix socket path.
    server_port: String,
    accept_pending: bool,
}

pub(crate) struct EventLoop {
    poll: Poll,
    ctx: Arc<Ctx>,
    ctl: Arc<Control>,
    listeners: Vec<Listening>,
    chans: Vec<Option<Channel>>,
    free: Vec<usize>,
    count: usize,
    at_limit_logged: bool,
    scratch: Vec<u8>,
    /// Channels that stopped reading for fairness and must be read again.
    again: Vec<usize>,
    access: Option<AccessLog>,
    draining: bool,
}

impl EventLoop {
    pub(crate) fn new(
        opts: ServerOptions,
        listeners: Vec<Listener>,
        app: Arc<dyn App>,
    ) -> Result<(EventLoop, Arc<Control>), ServerError> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let access = match &opts.access_log {
            Some(p) => Some(AccessLog::open(p).map_err(|source| ServerError::AccessLog {
                path: p.clone(),
                source,
            })?),
            None => None,
        };
        let mut ls = Vec::with_capacity(listeners.len());
        for (i, l) in listeners.into_iter().enumerate() {
            let (mut sock, server_port) = match l {
                Listener::Tcp(t) => {
                    t.set_nonblocking(true)?;
                    let port = t.local_addr()?.port().to_string();
                    (Lsock::Tcp(mio::net::TcpListener::from_std(t)), port)
                }
                Listener::Unix(u, path) => {
                    u.set_nonblocking(true)?;
                    (Lsock::Unix(mio::net::UnixListener::from_std(u)), path.display().to_string())
                }
            };
            let token = Token(LISTENER0 + i);
            match &mut sock {
                Lsock::Tcp(t) => poll.registry().register(t, token, Interest::READABLE)?,
                Lsock::Unix(u) => poll.registry().register(u, token, Interest::READABLE)?,
            }
            ls.push(Listening { sock, server_port, accept_pending: true });
        }
        let scratch = vec![0u8; opts.recv_bytes.clamp(1024, 1 << 20)];
        let ctl = Arc::new(Control {
            stop: AtomicU8::new(RUNNING),
            reopen: AtomicBool::new(false),
            waker: waker.clone(),
        });
        let ctx = Arc::new(Ctx::new(opts, app, waker));
        let el = EventLoop {
            poll,
            ctx,
            ctl: ctl.clone(),
            listeners: ls,
            chans: Vec::new(),
            free: Vec::new(),
            count: 0,
            at_limit_logged: false,
            scratch,
            again: Vec::new(),
            access,
            draining: false,
        };
        Ok((el, ctl))
    }

    pub(crate) fn run(mut self) -> Result<(), ServerError> {
        let threads = self.spawn_threads()?;
        let result = self.serve();
        // Stop: cancel what never started, let the threads finish what they run.
        for i in 0..self.chans.len() {
            if self.chans[i].is_some() {
                self.close(i);
            }
        }
        let cancelled = self.ctx.cancel_queued();
        if cancelled > 0 {
            log::warn!(target: "waitress", "Canceling {cancelled} pending task(s)");
        }
        self.ctx.stop_threads();
        let deadline = Instant::now() + JOIN_WAIT;
        while threads.iter().any(|t| !t.is_finished()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let running = threads.iter().filter(|t| !t.is_finished()).count();
        if running > 0 {
            log::warn!(target: "waitress", "{running} thread(s) still running");
        } else {
            for t in threads {
                let _ = t.join();
            }
        }
        self.flush_access_log();
        result
    }

    fn spawn_threads(&self) -> Result<Vec<JoinHandle<()>>, ServerError> {
        let mut v = Vec::new();
        for i in 0..self.ctx.opts.threads.max(1) {
            let ctx = self.ctx.clone();
            let h = std::thread::Builder::new().name(format!("waitress-{i}")).spawn(move || {
                let app = ctx.app.clone();
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    app.run_thread(&mut || dispatch::app_thread(&ctx))
                }));
                if r.is_err() {
                    log::error!(target: "waitress", "app thread waitress-{i} died");
                }
            })?;
            v.push(h);
        }
        Ok(v)
    }

    fn serve(&mut self) -> Result<(), ServerError> {
        let mut events = Events::with_capacity(1024);
        let mut batch: Vec<Arc<Shared>> = Vec::new();
        let mut done: Vec<Arc<Shared>> = Vec::new();
        let mut next_tick = Instant::now() + TICK;
        let cleanup = Duration::from_secs(self.ctx.opts.cleanup_interval.max(1));
        let mut next_sweep = Instant::now() + cleanup;
        loop {
            let now = Instant::now();
            let timeout = if self.again.is_empty() {
                next_tick.min(next_sweep).saturating_duration_since(now)
            } else {
                Duration::ZERO
            };
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() != std::io::ErrorKind::Interrupted {
                    return Err(e.into());
                }
            }
            let now = Instant::now();
            let mut woke = false;
            for ev in events.iter() {
                match ev.token() {
                    WAKER => woke = true,
                    Token(t) if t >= CHANNEL0 => {
                        let i = t - CHANNEL0;
                        if ev.is_writable() {
                            self.on_writable(i, now);
                        }
                        if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                            self.read(i, &mut batch, now);
                        }
                    }
                    Token(t) => {
                        if let Some(l) = self.listeners.get_mut(t - LISTENER0) {
                            l.accept_pending = true;
                        }
                    }
                }
            }
            for i in std::mem::take(&mut self.again) {
                self.read(i, &mut batch, now);
            }
            if woke {
                match self.ctl.stop.load(Ordering::SeqCst) {
                    IMMEDIATE => return Ok(()),
                    GRACEFUL if !self.draining => self.start_drain(),
                    _ => {}
                }
                if self.ctl.reopen.swap(false, Ordering::SeqCst) {
                    if let Some(a) = &mut self.access {
                        a.reopen();
                    }
                }
                self.ctx.take_done(&mut done);
                for sh in done.drain(..) {
                    self.after_app(&sh, &mut batch, now);
                }
            }
            if !self.draining {
                self.accept(now);
            }
            self.ctx.submit(&mut batch);
            if now >= next_tick {
                next_tick = now + TICK;
                self.tick(now);
            }
            if now >= next_sweep {
                next_sweep = now + cleanup;
                self.sweep(now);
            }
            self.flush_access_log();
            if self.draining && self.count == 0 {
                return Ok(());
            }
        }
    }

    fn chan(&mut self, i: usize) -> Option<&mut Channel> {
        self.chans.get_mut(i).and_then(|c| c.as_mut())
    }

    fn read(&mut self, i: usize, batch: &mut Vec<Arc<Shared>>, now: Instant) {
        let ctx = self.ctx.clone();
        let mut scratch = std::mem::take(&mut self.scratch);
        let outcome = match self.chan(i) {
            Some(ch) => ch.on_readable(&ctx, &mut scratch, batch, now),
            None => ReadOutcome::Done,
        };
        self.scratch = scratch;
        match outcome {
            ReadOutcome::Done => self.maybe_finish(i, now),
            ReadOutcome::More => self.again.push(i),
            ReadOutcome::Close => self.close(i),
        }
    }

    fn on_writable(&mut self, i: usize, now: Instant) {
        let wm = self.ctx.opts.outbuf_high_watermark;
        let Some(ch) = self.chan(i) else { return };
        let sh = ch.shared.clone();
        let mut st = lock(&sh.st);
        if !st.out.is_empty() && !st.closed {
            let before = st.out.pending();
            let r = st.out.flush(sh.fd());
            if st.out.pending() < before {
                st.last_activity = now;
            }
            if let Err(e) = r {
                st.closed = true;
                drop(st);
                socket_error(&self.ctx, "send", e);
                self.close(i);
                return;
            }
            if st.out.pending() <= wm {
                sh.cv.notify_all();
            }
        }
        drop(st);
        self.maybe_finish(i, now);
    }

    /// An app thread is done with a channel (or hit an error on it).
    fn after_app(&mut self, sh: &Arc<Shared>, batch: &mut Vec<Arc<Shared>>, now: Instant) {
        let i = sh.token - CHANNEL0;
        let ctx = self.ctx.clone();
        let Some(ch) = self.chan(i).filter(|c| Arc::ptr_eq(&c.shared, sh)) else { return };
        {
            let mut st = lock(&sh.st);
            if st.closed {
                drop(st);
                self.close(i);
                return;
            }
            if !st.out.is_empty() {
                if let Err(e) = st.out.flush(sh.fd()) {
                    drop(st);
                    socket_error(&ctx, "send", e);
                    self.close(i);
                    return;
                }
            }
        }
        if ch.resume(&ctx, batch, now) {
            self.close(i);
            return;
        }
        if ch.read_deferred {
            ch.read_deferred = false;
            self.read(i, batch, now);
        } else {
            self.maybe_finish(i, now);
        }
    }

    /// Closes (or starts lingering on) a channel whose last response is out; closes idle
    /// channels while draining.
    fn maybe_finish(&mut self, i: usize, now: Instant) {
        let draining = self.draining;
        let Some(ch) = self.chan(i) else { return };
        let st = lock(&ch.shared.st);
        if st.closed {
            drop(st);
            return self.close(i);
        }
        let finished = st.close_when_flushed && !st.running && st.out.is_empty();
        drop(st);
        if matches!(ch.phase, Phase::Lingering { .. }) {
            return; // ends at EOF, the byte budget or the deadline
        }
        if finished {
            if ch.peer_eof || !(ch.linger || ch.read_deferred || unread_input(&ch.shared)) {
                return self.close(i);
            }
            // Lingering close: our side is done; drain what the client still sends so the
            // response is not lost to a reset (RFC 9112 §9.6).
            let _ = nix::sys::socket::shutdown(ch.shared.fd.as_raw_fd(), nix::sys::socket::Shutdown::Write);
            ch.phase = Phase::Lingering { until: now + LINGER_TIME, left: LINGER_BYTES };
            ch.read_deferred = false;
            let mut batch = Vec::new();
            self.read(i, &mut batch, now);
        } else if draining && ch.is_idle() {
            self.close(i);
        }
    }

    fn start_drain(&mut self) {
        self.draining = true;
        self.ctx.draining.store(true, Ordering::SeqCst);
        for l in self.listeners.drain(..) {
            match l.sock {
                Lsock::Tcp(mut t) => drop(self.poll.registry().deregister(&mut t)),
                Lsock::Unix(mut u) => drop(self.poll.registry().deregister(&mut u)),
            }
        }
        for i in 0..self.chans.len() {
            let Some(ch) = self.chan(i) else { continue };
            if ch.is_idle() {
                self.close(i);
            } else {
                lock(&ch.shared.st).notify_on_done = true;
            }
        }
    }

    fn accept(&mut self, now: Instant) {
        for li in 0..self.listeners.len() {
            while self.listeners[li].accept_pending {
                if self.count >= self.ctx.opts.connection_limit.max(1) {
                    if !listener_has_pending(self.listener_fd(li)) {
                        self.listeners[li].accept_pending = false;
                        break;
                    }
                    if !self.evict_one() {
                        if !self.at_limit_logged {
                            self.at_limit_logged = true;
                            log::warn!(target: "waitress", "total open connections reached the connection limit, no longer accepting new connections");
                        }
                        return;
                    }
                }
                let l = &self.listeners[li];
                let r = match &l.sock {
                    Lsock::Tcp(t) => t.accept().map(|(s, a)| {
                        if let Err(e) = s.set_nodelay(true) {
                            if self.ctx.opts.log_socket_errors {
                                log::warn!(target: "waitress", "server accept() threw an exception: {e}");
                            }
                        }
                        (OwnedFd::from(s), a.ip().to_string(), a.port().to_string())
                    }),
                    Lsock::Unix(u) => u
                        .accept()
                        .map(|(s, _)| (OwnedFd::from(s), "localhost".to_string(), "None".to_string())),
                };
                match r {
                    Ok((fd, addr, port)) => self.add_channel(li, fd, addr, port, now),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        self.listeners[li].accept_pending = false;
                    }
                    Err(e) if matches!(e.raw_os_error(), Some(libc::ECONNABORTED) | Some(libc::EINTR)) => {}
                    Err(e) => {
                        if self.ctx.opts.log_socket_errors {
                            log::warn!(target: "waitress", "server accept() threw an exception: {e}");
                        }
                        // EMFILE and friends: retry on the next tick rather than spin.
                        self.listeners[li].accept_pending = false;
                        break;
                    }
                }
            }
        }
        if self.at_limit_logged && self.count < self.ctx.opts.connection_limit {
            self.at_limit_logged = false;
            log::info!(target: "waitress", "total open connections dropped below the connection limit, listening again");
        }
    }

    fn listener_fd(&self, li: usize) -> RawFd {
        match &self.listeners[li].sock {
            Lsock::Tcp(t) => t.as_raw_fd(),
            Lsock::Unix(u) => u.as_raw_fd(),
        }
    }

    /// At `connection_limit` with clients waiting: closes the connection that has not sent a
    /// complete request head and was active least recently (waitressd: a fresh client must
    /// be served within seconds, not wait for idle keep-alive connections to time out).
    fn evict_one(&mut self) -> bool {
        let mut oldest: Option<(Instant, usize)> = None;
        for (i, c) in self.chans.iter().enumerate() {
            let Some(ch) = c else { continue };
            if !ch.is_idle() {
                continue;
            }
            let t = ch.last_read.max(lock(&ch.shared.st).last_activity);
            if oldest.is_none_or(|(o, _)| t < o) {
                oldest = Some((t, i));
            }
        }
        match oldest {
            Some((_, i)) => {
                log::debug!(target: "waitress", "connection limit: evicting an idle connection");
                self.close(i);
                true
            }
            None => false,
        }
    }

    fn add_channel(&mut self, li: usize, fd: OwnedFd, addr: String, port: String, now: Instant) {
        let i = self.free.pop().unwrap_or_else(|| {
            self.chans.push(None);
            self.chans.len() - 1
        });
        let opts = &self.ctx.opts;
        let origin = Origin {
            remote_addr: addr,
            remote_port: port,
            server_name: opts.server_name.clone(),
            server_port: self.listeners[li].server_port.clone(),
            url_scheme: opts.url_scheme.clone(),
        };
        let raw = fd.as_raw_fd();
        let shared = Arc::new(Shared {
            fd,
            token: CHANNEL0 + i,
            st: Mutex::new(ChanState {
                out: OutBuf::new(opts.outbuf_overflow),
                queue: Default::default(),
                running: false,
                notify_on_done: false,
                close_when_flushed: false,
                closed: false,
                last_activity: now,
            }),
            cv: Condvar::new(),
            disconnected: Arc::new(AtomicBool::new(false)),
            origin,
        });
        let interest = Interest::READABLE | Interest::WRITABLE;
        if let Err(e) = self.poll.registry().register(&mut SourceFd(&raw), Token(CHANNEL0 + i), interest) {
            socket_error(&self.ctx, "register", e);
            self.free.push(i);
            return;
        }
        self.chans[i] = Some(Channel::new(shared, opts.limits.clone()));
        self.count += 1;
    }

    /// Tears a channel down: deregistered, shut down (the fd closes with its last reference),
    /// queued requests dropped, blocked app writers woken.
    fn close(&mut self, i: usize) {
        let Some(ch) = self.chans.get_mut(i).and_then(|c| c.take()) else { return };
        let raw = ch.shared.fd.as_raw_fd();
        let _ = self.poll.registry().deregister(&mut SourceFd(&raw));
        ch.shared.mark_closed();
        if let Some(job) = ch.cur {
            self.ctx.recycle(job);
        }
        self.free.push(i);
        self.count -= 1;
    }

    /// Once a second: whole-head deadlines and lingering closes.
    fn tick(&mut self, now: Instant) {
        let head_timeout = self.ctx.opts.header_timeout();
        for i in 0..self.chans.len() {
            let Some(ch) = self.chan(i) else { continue };
            let late_head = ch.head_started.is_some_and(|t| now - t >= head_timeout);
            let linger_over = matches!(ch.phase, Phase::Lingering { until, .. } if now >= until);
            if late_head {
                log::debug!(target: "waitress", "request head not complete after {head_timeout:?}, closing");
            }
            if late_head || linger_over {
                self.close(i);
            }
        }
    }

    /// Every `cleanup_interval`: closes channels idle for `channel_timeout` (waitress §4.3:
    /// no request queued or running; a half-received request counts as idle).
    fn sweep(&mut self, now: Instant) {
        let timeout = Duration::from_secs(self.ctx.opts.channel_timeout);
        for i in 0..self.chans.len() {
            let Some(ch) = self.chan(i) else { continue };
            let st = lock(&ch.shared.st);
            let last = ch.last_read.max(st.last_activity);
            let idle = !st.running && st.queue.is_empty() && now - last >= timeout;
            drop(st);
            if idle {
                self.close(i);
            }
        }
    }

    fn flush_access_log(&mut self) {
        if let (Some(a), Some(buf)) = (&mut self.access, &self.ctx.access) {
            let mut pending = lock(buf);
            if !pending.is_empty() {
                a.write(&pending);
                pending.clear();
            }
        }
    }
}

/// True if a connection waits in the listener's backlog (poll(2) with a zero timeout).
fn listener_has_pending(fd: RawFd) -> bool {
    let mut p = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    // SAFETY: one valid pollfd on our stack, nfds = 1, zero timeout (never blocks).
    let n = unsafe { libc::poll(&mut p, 1, 0) };
    n > 0 && p.revents & libc::POLLIN != 0
}

/// True if the client sent bytes we have not read (closing now would reset the connection).
fn unread_input(sh: &Shared) -> bool {
    let mut b = [0u8; 1];
    let flags = nix::sys::socket::MsgFlags::MSG_PEEK | nix::sys::socket::MsgFlags::MSG_DONTWAIT;
    matches!(nix::sys::socket::recv(sh.fd.as_raw_fd(), &mut b, flags), Ok(1))
}

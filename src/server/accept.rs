//! Listeners and admission: taking over the bound sockets, accepting (TCP_NODELAY, unix peers
//! as `localhost`), `connection_limit`, and waitressd's eviction of connections that have not
//! sent a complete request head when clients are waiting at the limit.
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Interest, Poll, Registry, Token};

use super::channel::Channel;
use super::event_loop::{EventLoop, CHANNEL0, LISTENER0};
use super::outbuf::OutBuf;
use super::shared::{socket_error, ChanState, Shared};
use super::tls::TlsSession;
use crate::http::Origin;
use crate::net::Listener;

/// How long a connection must have been idle (or sending one head) to be evicted.
const EVICT_MIN_IDLE: Duration = Duration::from_secs(1);

pub(super) enum Lsock {
    Tcp(mio::net::TcpListener),
    Unix(mio::net::UnixListener),
}

pub(super) struct Listening {
    pub(super) sock: Lsock,
    /// SERVER_PORT: the bound port, or the unix socket path.
    pub(super) server_port: String,
    pub(super) accept_pending: bool,
}

impl Listening {
    pub(super) fn deregister(self, registry: &Registry) {
        let fd = match &self.sock {
            Lsock::Tcp(t) => t.as_raw_fd(),
            Lsock::Unix(u) => u.as_raw_fd(),
        };
        // Registered by fd (see `register_exclusive`), so deregistered by fd.
        let _ = registry.deregister(&mut SourceFd(&fd));
    }
}

/// Registers a listener with EPOLLEXCLUSIVE: the listening sockets are shared by every worker
/// process, and without it each new connection wakes all of them (thundering herd). mio has no
/// flag for it, so this is the one epoll_ctl made by hand; events carry the token the way
/// mio's own registrations do (`u64` data), so mio reports them normally.
fn register_exclusive(poll: &Poll, fd: RawFd, token: Token) -> std::io::Result<()> {
    let mut ev = libc::epoll_event {
        events: (libc::EPOLLIN | libc::EPOLLET | libc::EPOLLEXCLUSIVE) as u32,
        u64: token.0 as u64,
    };
    // SAFETY: `poll` owns a valid epoll fd and `fd` is a listening socket we own; `ev` is a
    // valid epoll_event on our stack for the duration of the call.
    let r = unsafe { libc::epoll_ctl(poll.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Makes the supervisor's listeners non-blocking and registers them (readable, edge).
pub(super) fn register(poll: &Poll, listeners: Vec<Listener>) -> std::io::Result<Vec<Listening>> {
    let mut ls = Vec::with_capacity(listeners.len());
    for (i, l) in listeners.into_iter().enumerate() {
        let (sock, server_port) = match l {
            Listener::Tcp(t) => {
                t.set_nonblocking(true)?;
                let port = t.local_addr()?.port().to_string();
                (Lsock::Tcp(mio::net::TcpListener::from_std(t)), port)
            }
            Listener::Unix(u, path) => {
                u.set_nonblocking(true)?;
                (
                    Lsock::Unix(mio::net::UnixListener::from_std(u)),
                    path.display().to_string(),
                )
            }
        };
        let token = Token(LISTENER0 + i);
        let fd = match &sock {
            Lsock::Tcp(t) => t.as_raw_fd(),
            Lsock::Unix(u) => u.as_raw_fd(),
        };
        if let Err(e) = register_exclusive(poll, fd, token) {
            // Kernels before 4.5: a plain registration (every worker wakes per connection).
            log::debug!(target: "waitress", "EPOLLEXCLUSIVE not available: {e}");
            poll.registry()
                .register(&mut SourceFd(&fd), token, Interest::READABLE)?;
        }
        ls.push(Listening {
            sock,
            server_port,
            accept_pending: true,
        });
    }
    Ok(ls)
}

impl EventLoop {
    pub(super) fn accept(&mut self, now: Instant) {
        let mut victims = None;
        for li in 0..self.listeners.len() {
            let before = self.count;
            self.accept_from(li, now, &mut victims);
            if self.count > before {
                self.rearm_listener(li);
            }
        }
        if self.at_limit_logged && self.count < self.ctx.opts.connection_limit {
            self.at_limit_logged = false;
            log::info!(target: "waitress", "total open connections dropped below the connection limit, listening again");
        }
    }

    /// EPOLLEXCLUSIVE wakes the first idle waiter in the listener's wait queue, which is
    /// always the same worker while it keeps up: re-registering after accepting moves this
    /// worker to the back of the queue, so idle workers take turns (round-robin).
    fn rearm_listener(&mut self, li: usize) {
        let fd = self.listener_fd(li);
        let token = Token(LISTENER0 + li);
        // SAFETY: the epoll fd and the listening fd are both owned by this loop.
        let removed = unsafe {
            libc::epoll_ctl(
                self.poll.as_raw_fd(),
                libc::EPOLL_CTL_DEL,
                fd,
                std::ptr::null_mut(),
            )
        } == 0;
        if removed && register_exclusive(&self.poll, fd, token).is_err() {
            let _ = self
                .poll
                .registry()
                .register(&mut SourceFd(&fd), token, Interest::READABLE);
        }
    }

    /// Accepts from listener `li` until it would block or the limit holds.
    fn accept_from(
        &mut self,
        li: usize,
        now: Instant,
        victims: &mut Option<Vec<(Instant, usize)>>,
    ) {
        {
            while self.listeners[li].accept_pending {
                if self.count >= self.ctx.opts.connection_limit.max(1) {
                    if !listener_has_pending(self.listener_fd(li)) {
                        self.listeners[li].accept_pending = false;
                        break;
                    }
                    if !self.evict_one(now, victims) {
                        if !self.at_limit_logged {
                            self.at_limit_logged = true;
                            log::warn!(target: "waitress", "total open connections reached the connection limit, no longer accepting new connections");
                        }
                        // Looked at again when a connection closes or on the next tick.
                        self.listeners[li].accept_pending = false;
                        return;
                    }
                }
                let l = &self.listeners[li];
                let r = match &l.sock {
                    Lsock::Tcp(t) => t.accept().map(|(s, a)| {
                        if let Some(allow) = &self.ctx.opts.proxy_protocol {
                            if !allow.allows(a.ip()) {
                                // Not a proxy we know: the header it would send is not
                                // trusted, and the connection never reaches the app.
                                log::debug!(target: "waitress", "PROXY protocol: {a} is not in proxy_allow_ips, closing");
                                return None;
                            }
                        }
                        if let Err(e) = s.set_nodelay(true) {
                            if self.ctx.opts.log_socket_errors {
                                log::warn!(target: "waitress", "server accept() threw an exception: {e}");
                            }
                        }
                        Some((OwnedFd::from(s), a.ip().to_string(), a.port().to_string()))
                    }),
                    Lsock::Unix(u) => u.accept().map(|(s, _)| {
                        Some((OwnedFd::from(s), "localhost".to_string(), "None".to_string()))
                    }),
                };
                match r {
                    Ok(Some((fd, addr, port))) => self.add_channel(li, fd, addr, port, now),
                    Ok(None) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        self.listeners[li].accept_pending = false;
                    }
                    Err(e)
                        if matches!(
                            e.raw_os_error(),
                            Some(libc::ECONNABORTED) | Some(libc::EINTR)
                        ) => {}
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
    }

    fn listener_fd(&self, li: usize) -> RawFd {
        match &self.listeners[li].sock {
            Lsock::Tcp(t) => t.as_raw_fd(),
            Lsock::Unix(u) => u.as_raw_fd(),
        }
    }

    /// At `connection_limit` with clients waiting: closes the connection that has not sent a
    /// complete request head and has been idle longest (waitressd: a fresh client must be
    /// served within seconds, not wait for idle keep-alive connections to time out). Only
    /// connections idle for `EVICT_MIN_IDLE` qualify (a half-sent head counts from its first
    /// byte), so busy keep-alive clients are not churned when more clients than the limit
    /// are active; the rest wait in the backlog as in waitress. Candidates are collected once
    /// per accept round, so a burst costs one scan.
    fn evict_one(&mut self, now: Instant, victims: &mut Option<Vec<(Instant, usize)>>) -> bool {
        let v = victims.get_or_insert_with(|| {
            let mut v: Vec<(Instant, usize)> = self
                .chans
                .iter()
                .enumerate()
                .filter_map(|(i, c)| {
                    let ch = c.as_ref().filter(|ch| ch.is_idle())?;
                    let since = ch.idle_since();
                    (now.saturating_duration_since(since) >= EVICT_MIN_IDLE).then_some((since, i))
                })
                .collect();
            v.sort_unstable_by(|a, b| b.cmp(a)); // oldest last
            v
        });
        while let Some((_, i)) = v.pop() {
            if self
                .chans
                .get(i)
                .and_then(|c| c.as_ref())
                .is_some_and(|ch| ch.is_idle())
            {
                log::debug!(target: "waitress", "connection limit: evicting an idle connection");
                self.close(i);
                return true;
            }
        }
        false
    }

    fn add_channel(&mut self, li: usize, fd: OwnedFd, addr: String, port: String, now: Instant) {
        let i = self.free.pop().unwrap_or_else(|| {
            self.chans.push(None);
            self.chans.len() - 1
        });
        let opts = &self.ctx.opts;
        // `certfile`: TCP listeners speak TLS; unix sockets stay plain (local peers).
        let tls = match (&opts.tls, &self.listeners[li].sock) {
            (Some(cfg), Lsock::Tcp(_)) => match rustls::ServerConnection::new(cfg.clone()) {
                Ok(c) => Some(TlsSession::new(c)),
                Err(e) => {
                    log::error!(target: "waitress", "TLS session: {e}");
                    self.free.push(i);
                    return;
                }
            },
            _ => None,
        };
        let origin = Origin {
            remote_addr: addr,
            remote_port: port,
            server_name: opts.server_name.clone(),
            server_port: self.listeners[li].server_port.clone(),
            url_scheme: match tls {
                Some(_) => "https".to_string(),
                None => opts.url_scheme.clone(),
            },
            tls: tls.as_ref().map(|_| crate::http::TlsInfo {
                client_s_dn: None,
                client_verify: "NONE",
            }),
        };
        let is_tls = tls.is_some();
        let mut out = OutBuf::new(opts.outbuf_overflow);
        if let Some(t) = tls {
            out.set_tls(t);
        }
        let raw = fd.as_raw_fd();
        let shared = Arc::new(Shared {
            fd,
            token: CHANNEL0 + i,
            st: Mutex::new(ChanState {
                out,
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
            has_output: AtomicBool::new(false),
        });
        let interest = Interest::READABLE | Interest::WRITABLE;
        if let Err(e) =
            self.poll
                .registry()
                .register(&mut SourceFd(&raw), Token(CHANNEL0 + i), interest)
        {
            socket_error(&self.ctx, "register", e);
            self.free.push(i);
            return;
        }
        let mut ch = Channel::new(shared, opts.limits.clone());
        if opts.proxy_protocol.is_some() {
            ch.expect_proxy_header();
        }
        ch.tls = is_tls;
        self.chans[i] = Some(ch);
        self.count += 1;
        if let Some(m) = opts.metrics {
            m.connection(true);
        }
    }
}

/// True if a connection waits in the listener's backlog (poll(2) with a zero timeout).
fn listener_has_pending(fd: RawFd) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd on our stack, nfds = 1, zero timeout (never blocks).
    let n = unsafe { libc::poll(&mut p, 1, 0) };
    n > 0 && p.revents & libc::POLLIN != 0
}

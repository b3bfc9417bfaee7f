//! Admission: accepting from the listeners (TCP_NODELAY, unix peers as `localhost`; the
//! sockets themselves are `listener`'s), `connection_limit`, and waitressd's eviction when
//! clients are waiting at the limit: idle keep-alive connections at once, oldest first, then
//! connections that have not sent a complete request head for a second.
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Interest, Token};

use super::channel::Channel;
use super::ctx::socket_error;
use super::event_loop::{EventLoop, CHANNEL0};
use super::listener::{listener_has_pending, register_exclusive, Lsock, LISTENER0};
use super::outbuf::OutBuf;
use super::proxy_header::{self, Refused};
use super::shared::{ChanState, Shared};
use super::sock::unread_input;
use super::tls::TlsSession;
use crate::http::Origin;

/// Most connections taken from one listener's backlog at a graceful stop (the kernel caps a
/// backlog at `somaxconn`, 4096 by default).
const BACKLOG_DRAIN_MAX: usize = 65536;

/// How long a connection must have been idle (or sending one head) to be evicted.
const EVICT_MIN_IDLE: Duration = Duration::from_secs(1);
/// How often the backlog is looked at again while clients wait at the limit and nothing can
/// be evicted yet (connections become evictable `EVICT_MIN_IDLE` after their last activity;
/// waiting for the 1 s tick instead would double a waiting client's delay).
const WAITING_RETRY: Duration = Duration::from_millis(100);

impl EventLoop {
    pub(super) fn accept(&mut self, now: Instant) {
        let mut victims = None;
        for li in 0..self.listeners.len() {
            let before = self.chans.len();
            self.accept_from(li, now, &mut victims);
            if self.chans.len() > before {
                self.rearm_listener(li);
            }
        }
        if self.chans.len() < self.ctx.opts.connection_limit {
            self.ctx.set_clients_waiting(false);
        }
        if self.at_limit_logged && self.chans.len() < self.ctx.opts.connection_limit {
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
                if self.chans.len() >= self.ctx.opts.connection_limit.max(1) {
                    if !listener_has_pending(self.listener_fd(li)) {
                        self.listeners[li].accept_pending = false;
                        self.ctx.set_clients_waiting(false);
                        break;
                    }
                    if !self.evict_one(now, victims) {
                        self.ctx.set_clients_waiting(true);
                        if !self.at_limit_logged {
                            self.at_limit_logged = true;
                            log::warn!(target: "waitress", "total open connections reached the connection limit, no longer accepting new connections");
                        }
                        // Looked at again when a connection closes or on the next tick.
                        self.listeners[li].accept_pending = false;
                        return;
                    }
                }
                let r = self.accept_one(li);
                match r {
                    Ok((fd, peer)) => {
                        self.listeners[li].accept_errors.succeeded(now);
                        self.add_channel(li, fd, peer, now);
                    }
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
                            self.listeners[li].accept_errors.failed(&e, now);
                        }
                        // Out of descriptors (the open-file limit below what connection_limit
                        // needs): make room as at connection_limit, so idle connections do
                        // not keep a waiting client out until they time out.
                        let out_of_fds =
                            matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE));
                        if out_of_fds && self.evict_one(now, victims) {
                            continue;
                        }
                        // EMFILE and friends: retry on the next tick rather than spin.
                        self.listeners[li].accept_pending = false;
                        break;
                    }
                }
            }
        }
    }

    /// One accept(2) on listener `li`: the socket (TCP_NODELAY set) and the peer's address
    /// (`None` for a unix peer).
    fn accept_one(&mut self, li: usize) -> std::io::Result<(OwnedFd, Option<SocketAddr>)> {
        match &self.listeners[li].sock {
            Lsock::Tcp(t) => t.accept().map(|(s, a)| {
                if let Err(e) = s.set_nodelay(true) {
                    if self.ctx.opts.log_socket_errors {
                        log::warn!(target: "waitress", "server accept() threw an exception: {e}");
                    }
                }
                (OwnedFd::from(s), Some(a))
            }),
            Lsock::Unix(u) => u.accept().map(|(s, _)| (OwnedFd::from(s), None)),
        }
    }

    /// Graceful stop, before the listeners close: accepts every connection the kernel has
    /// already queued for us (beyond `connection_limit`), so they are answered (with
    /// `Connection: close`) instead of reset when the listening socket goes away.
    pub(super) fn drain_backlog(&mut self, now: Instant) {
        for li in 0..self.listeners.len() {
            for _ in 0..BACKLOG_DRAIN_MAX {
                match self.accept_one(li) {
                    Ok((fd, peer)) => {
                        self.listeners[li].accept_errors.succeeded(now);
                        self.add_channel(li, fd, peer, now);
                    }
                    Err(e) if e.raw_os_error() == Some(libc::ECONNABORTED) => {}
                    Err(_) => break, // WouldBlock: the backlog is empty
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

    /// The loop's next wake-up: `next`, or sooner while clients wait at the limit, when the
    /// listeners are marked for another accept round every `WAITING_RETRY`.
    pub(super) fn accept_deadline(&mut self, now: Instant, next: Instant) -> Instant {
        if !self.ctx.clients_waiting() {
            return next;
        }
        if now >= self.waiting_retry {
            self.retry_accept();
            self.waiting_retry = now + WAITING_RETRY;
        }
        next.min(self.waiting_retry)
    }

    /// Marks every listener for another accept round (a connection closed, or one became an
    /// idle keep-alive connection that can be evicted).
    pub(super) fn retry_accept(&mut self) {
        for l in &mut self.listeners {
            l.accept_pending = true;
        }
    }

    /// At `connection_limit` with clients waiting: closes one idle connection so a waiting
    /// client is served within a second, not when idle keep-alive connections time out
    /// (waitress makes it wait). Idle keep-alive connections (between requests, nothing in
    /// flight or unsent, nothing unread in the socket) go at once, oldest first, as nginx
    /// reuses them: their clients retry on a new connection (RFC 9112 §9.3.1). Connections
    /// that have sent nothing yet or only part of a head qualify after `EVICT_MIN_IDLE` (a
    /// half-sent head counts from its first byte), so clients that just connected are not
    /// churned when more clients than the limit are active; the rest wait in the backlog as in
    /// waitress. Candidates are collected once per accept round, so a burst costs one scan.
    fn evict_one(&mut self, now: Instant, victims: &mut Option<Vec<(Instant, usize)>>) -> bool {
        let v = victims.get_or_insert_with(|| {
            let mut v: Vec<(Instant, usize)> = self
                .chans
                .iter()
                .filter_map(|(i, ch)| {
                    if !ch.is_idle() {
                        return None;
                    }
                    let since = ch.idle_since();
                    let old = now.saturating_duration_since(since) >= EVICT_MIN_IDLE;
                    (old || ch.is_idle_keepalive()).then_some((since, i))
                })
                .collect();
            v.sort_unstable_by(|a, b| b.cmp(a)); // oldest last
            v
        });
        while let Some((since, i)) = v.pop() {
            let Some(ch) = self.chans.get(i) else {
                continue;
            };
            let still = ch.is_idle_keepalive()
                || (ch.is_idle() && now.saturating_duration_since(since) >= EVICT_MIN_IDLE);
            // Bytes waiting in the socket are its next request: read it rather than lose it.
            if still && !unread_input(ch.shared.fd()) {
                log::debug!(target: "waitress", "connection limit: evicting an idle connection");
                self.close(i);
                return true;
            }
        }
        false
    }

    /// A new connection from `peer` (`None`: a unix peer) on listener `li`.
    fn add_channel(&mut self, li: usize, fd: OwnedFd, peer: Option<SocketAddr>, now: Instant) {
        if let (Some(allow), Some(a)) = (&self.ctx.opts.proxy_protocol, peer) {
            if !allow.matches(Some(a.ip())) {
                // Not a proxy we know: the header it would send is not trusted, and the
                // connection never reaches the app (dropping `fd` closes it).
                proxy_header::refused(&self.ctx, &a.ip().to_string(), Refused::NotAllowed);
                return;
            }
        }
        // The slot the channel will have: its token is part of the connection's state.
        let i = self.chans.vacant_key();
        let opts = &self.ctx.opts;
        // `certfile`: TCP listeners speak TLS; unix sockets stay plain (local peers).
        let tls = match (&opts.tls, &self.listeners[li].sock) {
            (Some(cfg), Lsock::Tcp(_)) => match rustls::ServerConnection::new(cfg.clone()) {
                Ok(c) => Some(TlsSession::new(c)),
                Err(e) => {
                    log::error!(target: "waitress", "TLS session: {e}");
                    return;
                }
            },
            _ => None,
        };
        // The environ's view: waitress names a unix peer `localhost`, port `None`.
        let origin = Origin {
            peer_ip: peer.map(|a| a.ip()),
            remote_addr: peer.map_or_else(|| "localhost".to_string(), |a| a.ip().to_string()),
            remote_port: peer.map_or_else(|| "None".to_string(), |a| a.port().to_string()),
            server_name: opts.server_name.clone(),
            server_port: self.listeners[li].server_port.clone(),
            url_scheme: match tls {
                Some(_) => "https".to_string(),
                None => opts.url_scheme.clone(),
            },
            // Known once the handshake is done: `Channel::tls_info`.
            tls: None,
        };
        let is_tls = tls.is_some();
        let mut out = OutBuf::new(opts.outbuf_overflow);
        if let Some(t) = tls {
            out.set_tls(t);
        }
        let raw = fd.as_raw_fd();
        let shared = Arc::new(Shared::new(
            fd,
            CHANNEL0 + i,
            ChanState::new(out, now),
            origin,
        ));
        let interest = Interest::READABLE | Interest::WRITABLE;
        if let Err(e) =
            self.poll
                .registry()
                .register(&mut SourceFd(&raw), Token(CHANNEL0 + i), interest)
        {
            socket_error(&self.ctx, "register", e);
            return;
        }
        let mut ch = Channel::new(shared, opts.limits.clone(), is_tls);
        if opts.proxy_protocol.is_some() {
            ch.expect_proxy_header();
        }
        let slot = self.chans.insert(ch);
        debug_assert_eq!(slot, i, "the vacant slot is filled");
        if let Some(m) = opts.metrics {
            m.connection(true);
        }
    }
}

//! A connection's opening, on the loop thread: the PROXY header that must come first
//! (`proxy_protocol`; its parse state is `proxy_header`'s `ProxyState`), the request origin it
//! and the TLS handshake decide, and plaintext read through the connection's TLS session
//! (`tls`), handshake included. Part of `Channel`, which calls these from `on_readable`.
use std::io::IoSlice;
use std::sync::Arc;
use std::time::Instant;

use super::channel::{head_recv, Channel, ReadOutcome};
use super::ctx::{socket_error, Ctx};
use super::proxy_header::{self, ProxyState, Refused};
use super::shared::{unix_now, Shared};
use super::sock::send_parts;
use super::tls::Recv;
use crate::http::{HttpError, Origin};

impl Channel {
    /// The connection must open with a PROXY header.
    pub(crate) fn expect_proxy_header(&mut self) {
        self.proxy = Some(ProxyState::expected());
    }

    pub(crate) fn awaiting_proxy_header(&self) -> bool {
        self.proxy.as_ref().is_some_and(|p| p.waiting())
    }

    /// Takes header bytes from `data`: Ok(n) = the first `n` bytes were header (all of them
    /// while it is incomplete); Err = the connection must close.
    pub(crate) fn take_proxy_header(
        &mut self,
        ctx: &Ctx,
        data: &[u8],
        now: Instant,
    ) -> Result<usize, ()> {
        // A slow header counts against the whole-head deadline, like a slow request head.
        self.head_begins(now);
        let Some(p) = self.proxy.as_mut() else {
            return Ok(0);
        };
        match p.take(data) {
            Ok(used) => {
                if !p.waiting() {
                    self.head_ends();
                }
                Ok(used)
            }
            Err(e) => {
                let peer = &self.shared.origin.remote_addr;
                proxy_header::refused(ctx, peer, Refused::Header(e));
                Err(())
            }
        }
    }

    /// TLS behind a PROXY header: `rest`, what followed the header in the same read, is the
    /// start of the handshake. Returns what `on_readable` must return, if anything.
    pub(crate) fn tls_after_proxy_header(
        &mut self,
        ctx: &Ctx,
        rest: &[u8],
        batch: &mut Vec<Arc<Shared>>,
        now: Instant,
    ) -> Option<ReadOutcome> {
        if rest.is_empty() {
            return None;
        }
        let rest = rest.to_vec();
        let mut plain = vec![0u8; head_recv(ctx.opts.recv_bytes)];
        match self.recv_tls(ctx, &mut plain, &rest, now) {
            Ok(0) => Some(self.on_eof()),
            Ok(k) if self.parse(ctx, &plain[..k], batch, now) => Some(ReadOutcome::Close),
            Ok(_) | Err(ReadOutcome::Done) => None,
            Err(outcome) => Some(outcome),
        }
    }

    /// Writes a request's origin: the connection's, with the PROXY header's client address if
    /// it named one and the TLS facts. Each field is written once; buffers of a recycled
    /// request are reused (`clone_from`).
    pub(crate) fn origin_into(&self, dst: &mut Origin) {
        let src = &self.shared.origin;
        let (ip, addr, port) = match self.proxy.as_ref().and_then(|p| p.remote()) {
            Some((ip, addr, port)) => (Some(*ip), addr, port),
            None => (src.peer_ip, &src.remote_addr, &src.remote_port),
        };
        dst.peer_ip = ip;
        dst.remote_addr.clone_from(addr);
        dst.remote_port.clone_from(port);
        dst.server_name.clone_from(&src.server_name);
        dst.server_port.clone_from(&src.server_port);
        dst.url_scheme.clone_from(&src.url_scheme);
        // Set by the handshake, which ends before any plaintext (so any request) arrives.
        dst.tls.clone_from(&self.tls_info);
    }

    /// Reads plaintext through the connection's TLS session (records from the socket, or
    /// `extra` bytes already read), sends what the handshake produced, and keeps the head
    /// deadline: a slow handshake counts like a slow head. Ok(0) = the client closed;
    /// Err = what `on_readable` returns.
    pub(crate) fn recv_tls(
        &mut self,
        ctx: &Ctx,
        buf: &mut [u8],
        extra: &[u8],
        now: Instant,
    ) -> Result<usize, ReadOutcome> {
        let sh = &self.shared;
        let mut st = sh.lock();
        let Some(t) = st.out_mut().tls_mut() else {
            return Err(ReadOutcome::Close);
        };
        let was_handshaking = t.is_handshaking();
        let (r, raw) = t.recv(sh.fd(), buf, extra);
        if matches!(r, Recv::PlainHttp) {
            // Nothing was sent yet; the alert rustls queued is dropped with the connection.
            drop(st);
            log::debug!(target: "waitress", "plain HTTP on a TLS port from {}", sh.origin.remote_addr);
            // In the loop's error format (nginx: "The plain HTTP request was sent to HTTPS port").
            let e = HttpError::bad_request(
                "The plain HTTP request was sent to an HTTPS port: use https://",
            );
            let date = crate::http::date::http_date(unix_now());
            let answer = crate::http::error_response(&e, ctx.opts.ident.as_deref(), &date);
            let _ = send_parts(sh.fd(), &[IoSlice::new(&answer)]);
            // Logged and counted like the loop's other error responses (the request line is
            // unknown: only its first bytes were looked at).
            self.error_response_done(ctx, &e, None, &answer);
            return Err(ReadOutcome::Close);
        }
        let handshaken = was_handshaking && !t.is_handshaking();
        let info = handshaken.then(|| t.info());
        // Handshake messages and alerts go out now (the rest on the writable edge).
        let flushed = st.out_mut().flush(sh.fd());
        sh.note_output(&st);
        drop(st);
        if let (Some(m), true) = (ctx.opts.metrics, raw > 0) {
            m.bytes_in(raw);
        }
        if was_handshaking && raw > 0 {
            self.head_begins(now);
        }
        if let Some(info) = info {
            self.head_ends();
            self.tls_info = Some(Arc::new(info));
        }
        if let Err(e) = flushed {
            socket_error(ctx, "send", e);
            return Err(ReadOutcome::Close);
        }
        match r {
            Recv::Data(n) => Ok(n),
            Recv::Again => Err(ReadOutcome::Done),
            Recv::Eof => Ok(0),
            Recv::PlainHttp => Err(ReadOutcome::Close),
            Recv::Fail(e) => {
                log::debug!(target: "waitress", "TLS from {}: {e}", self.shared.origin.remote_addr);
                Err(ReadOutcome::Close)
            }
            Recv::Refused(why) => {
                super::tls::warn_refused(&self.shared.origin.remote_addr.to_string(), &why);
                Err(ReadOutcome::Close)
            }
        }
    }
}

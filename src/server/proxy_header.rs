//! The PROXY protocol on a connection (`proxy_protocol = true`): the loop collects the header
//! that must open every connection, parses it with `http::proxy_protocol`, and from then on
//! the connection's requests carry the client address it names. A missing, malformed or
//! oversized header closes the connection before anything reaches the app.
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use super::channel::{Channel, ReadOutcome};
use super::dispatch::Ctx;
use super::shared::Shared;
use crate::http::proxy_protocol::{self, Parsed, ProxyHeader};
use crate::http::Origin;

/// Largest v2 header accepted (fixed part, addresses and TLVs). HAProxy's own TLVs (ALPN,
/// authority, SSL facts, unique id) stay far below this.
pub(crate) const MAX_V2: usize = 4096;

/// PROXY state of one connection (boxed: most connections never have one).
#[derive(Default)]
pub(crate) struct ProxyState {
    /// Still waiting for (the rest of) the header.
    waiting: bool,
    /// The header's bytes so far, when it arrived split.
    buf: Vec<u8>,
    /// The client the header names, as an address and as REMOTE_ADDR and REMOTE_PORT (None:
    /// `LOCAL`, the socket's own).
    remote: Option<(IpAddr, String, String)>,
}

impl Channel {
    /// The connection must open with a PROXY header.
    pub(crate) fn expect_proxy_header(&mut self) {
        self.proxy = Some(Box::new(ProxyState {
            waiting: true,
            ..Default::default()
        }));
    }

    pub(crate) fn awaiting_proxy_header(&self) -> bool {
        self.proxy.as_ref().is_some_and(|p| p.waiting)
    }

    /// Takes header bytes from `data`: Ok(n) = the first `n` bytes were header (all of them
    /// while it is incomplete); Err = the connection must close.
    pub(crate) fn take_proxy_header(&mut self, data: &[u8], now: Instant) -> Result<usize, ()> {
        if self.head_started.is_none() {
            // A slow header counts against the whole-head deadline, like a slow request head.
            self.head_started = Some(now);
        }
        let Some(p) = self.proxy.as_mut() else {
            return Ok(0);
        };
        let before = p.buf.len();
        let r = if before == 0 {
            proxy_protocol::parse(data, MAX_V2)
        } else {
            p.buf.extend_from_slice(data);
            proxy_protocol::parse(&p.buf, MAX_V2)
        };
        match r {
            Ok(Parsed::NeedMore) => {
                if before == 0 {
                    p.buf.extend_from_slice(data);
                }
                Ok(data.len())
            }
            Ok(Parsed::Done { header, consumed }) => {
                p.waiting = false;
                p.buf = Vec::new();
                if let ProxyHeader::Proxied { source, .. } = header {
                    let ip = match source.ip() {
                        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(source.ip(), IpAddr::V4),
                        v4 => v4,
                    };
                    p.remote = Some((ip, ip.to_string(), source.port().to_string()));
                }
                self.head_started = None;
                Ok(consumed - before)
            }
            Err(e) => {
                log::debug!(target: "waitress", "closing a connection from {}: {e}", self.shared.origin.remote_addr);
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
        let mut plain = vec![0u8; super::channel::head_recv(ctx.opts.recv_bytes)];
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
        let (ip, addr, port) = match self.proxy.as_ref().and_then(|p| p.remote.as_ref()) {
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
}

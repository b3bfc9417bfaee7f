//! The PROXY protocol on a connection (`proxy_protocol = true`): the header that must open
//! every connection, collected as it arrives and parsed with `http::proxy_protocol`
//! (`ProxyState`); from then on the connection's requests carry the client address it names
//! (`Channel::origin_into`). A missing, malformed or oversized header, or a peer not in
//! `proxy_allow_ips`, closes the connection before anything reaches the app
//! (`Channel::take_proxy_header`, `accept`), and is reported with its fix (`refused`).
use std::net::IpAddr;
use std::time::Instant;

use super::ctx::Ctx;
use super::throttle::Throttle;
use crate::http::proxy_protocol::{self, Parsed, ProxyError, ProxyHeader};

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

impl ProxyState {
    /// The state of a connection that must open with a PROXY header.
    pub(crate) fn expected() -> Box<ProxyState> {
        Box::new(ProxyState {
            waiting: true,
            ..Default::default()
        })
    }

    /// Still waiting for (the rest of) the header.
    pub(crate) fn waiting(&self) -> bool {
        self.waiting
    }

    /// The client the header named, as an address, REMOTE_ADDR and REMOTE_PORT (None: no
    /// header yet, or `LOCAL`).
    pub(crate) fn remote(&self) -> Option<&(IpAddr, String, String)> {
        self.remote.as_ref()
    }

    /// Takes header bytes from `data`: Ok(n) = the first `n` bytes were header (all of them
    /// while it is incomplete; `waiting` turns false once it is whole); Err = the header is
    /// malformed or too large.
    pub(crate) fn take(&mut self, data: &[u8]) -> Result<usize, ProxyError> {
        let before = self.buf.len();
        let r = if before == 0 {
            proxy_protocol::parse(data, proxy_protocol::V2_MAX)
        } else {
            self.buf.extend_from_slice(data);
            proxy_protocol::parse(&self.buf, proxy_protocol::V2_MAX)
        };
        match r? {
            Parsed::NeedMore => {
                if before == 0 {
                    self.buf.extend_from_slice(data);
                }
                Ok(data.len())
            }
            Parsed::Done { header, consumed } => {
                self.waiting = false;
                self.buf = Vec::new();
                if let ProxyHeader::Proxied { source, .. } = header {
                    let ip = match source.ip() {
                        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(source.ip(), IpAddr::V4),
                        v4 => v4,
                    };
                    self.remote = Some((ip, ip.to_string(), source.port().to_string()));
                }
                Ok(consumed - before)
            }
        }
    }
}

/// Why the PROXY protocol refused a connection.
pub(crate) enum Refused {
    /// The header is missing, malformed or too long.
    Header(ProxyError),
    /// The peer is not in `proxy_allow_ips`.
    NotAllowed,
}

/// Reports a connection from `peer` closed for `why`. Usually a deployment's mistake, made
/// on every connection (`proxy_protocol = true` behind a proxy that does not send the header,
/// or a proxy whose address is not allowed): the first at WARNING with the fix, then at most
/// one line a minute with the count (`Throttle`); the others at debug.
pub(crate) fn refused(ctx: &Ctx, peer: &str, why: Refused) {
    let n = ctx.proxy_refusals().note(Instant::now());
    let (reason, fix) = match &why {
        Refused::Header(e) => (
            e.to_string(),
            "if the proxy in front is HAProxy, add send-proxy (or send-proxy-v2) to its server \
             line (nginx: proxy_protocol on); if no proxy sends the header, set \
             proxy_protocol = false"
                .to_string(),
        ),
        Refused::NotAllowed => (
            "not in proxy_allow_ips".to_string(),
            format!(
                "add the proxy's address to proxy_allow_ips (now {:?}), or * for any peer",
                ctx.opts.proxy_protocol.as_ref().map_or("", |p| p.as_str())
            ),
        ),
    };
    match n {
        Some(n) => {
            let again = Throttle::again(n, "connections refused");
            log::warn!(target: "waitress", "PROXY protocol: closed a connection from {peer}: {reason}; {fix}{again}");
        }
        None => {
            log::debug!(target: "waitress", "PROXY protocol: closed a connection from {peer}: {reason}");
        }
    }
}

//! One client connection as the loop sees it (waitress's `HTTPChannel`): parser, timers and
//! read state. Reading and parsing are in `channel::read`; the loop decides when to call them.
//! The responses the loop itself sends (`100 Continue`, parser errors) are held until the
//! channel is idle, in `channel::held`. The part shared with app threads is in `shared`; the
//! connection's opening (PROXY header, TLS reads) in `opening`.
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::proxy_header::ProxyState;
use super::shared::{ChanState, Job, Shared};
use super::sock::unread_input;
use crate::http::RequestParser;

mod held;
mod read;
use held::Held;

/// Where the loop stands with a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Reading requests (or waiting for the next one).
    Open,
    /// The response that ends the connection is queued; input is discarded (CVE-2024-49768).
    Closing,
    /// Output sent and our side shut down; draining what the client still sends so our last
    /// response is not destroyed by a reset (bounded in time and bytes).
    Lingering { until: Instant, left: usize },
}

/// A connection, as the loop sees it.
pub(crate) struct Channel {
    /// The part shared with the app threads (read-only handle).
    pub(crate) shared: Arc<Shared>,
    phase: Phase,
    parser: RequestParser,
    /// The request being parsed (taken from the pool at its first byte).
    cur: Option<Box<Job>>,
    /// Received bytes not yet parsed (only while parsing is held back).
    inbuf: Vec<u8>,
    held: Option<Held>,
    last_read: Instant,
    /// The sweep's look at a response stalled on its client: the bytes sent by then, and when
    /// first seen so (`sweep_closes`).
    stall: Option<(u64, Instant)>,
    /// First byte of the current head (whole-head deadline; `head_begins`, `head_ends`).
    head_started: Option<Instant>,
    /// Readable but not read (busy): read when the channel becomes idle.
    read_deferred: bool,
    /// epoll reported the peer's FIN (EPOLLRDHUP). The edge comes once, possibly with the last
    /// data, so from then on reads go on until recv returns 0 instead of stopping at a short
    /// read.
    read_closed: bool,
    peer_eof: bool,
    /// The current request's `100 Continue` was sent or is held.
    continue_done: bool,
    /// An error response was sent: the client is probably still sending, so linger.
    linger: bool,
    /// Bytes thrown away since the connection started closing.
    discarded: usize,
    /// `proxy_protocol`: the header awaited, and the client address it named (`opening`'s:
    /// read and written only there).
    pub(crate) proxy: Option<Box<ProxyState>>,
    /// The connection speaks TLS (the session is in `ChanState::out`).
    tls: bool,
    /// TLS facts for the environ, once the handshake is done (`opening`'s: read and written
    /// only there).
    pub(crate) tls_info: Option<Arc<crate::http::TlsInfo>>,
    /// At least one whole request was read: between requests this is an idle keep-alive
    /// connection, the first to be closed when clients wait at `connection_limit`.
    kept_alive: bool,
}

/// The recv size for heads and bodies of unknown length: `recv_bytes`, within 1 KiB..1 MiB.
pub(crate) fn head_recv(recv_bytes: usize) -> usize {
    recv_bytes.clamp(1024, 1 << 20)
}

/// What reading did.
pub(crate) enum ReadOutcome {
    /// Socket drained (or reading is paused).
    Done,
    /// Stopped early for fairness; call again.
    More,
    /// The channel has to go now.
    Close,
}

/// Largest recv while a body of known length arrives (other reads: `recv_bytes`); never more
/// than the body's rest unless that is below `recv_bytes`. A 1 MiB upload: 131 → 5 recv calls.
pub(crate) const BODY_RECV: usize = 256 * 1024;

impl Channel {
    /// A new connection over `shared`; `tls`: it speaks TLS (the session is in its output).
    pub(crate) fn new(shared: Arc<Shared>, limits: crate::http::Limits, tls: bool) -> Self {
        Channel {
            shared,
            phase: Phase::Open,
            parser: RequestParser::new(limits),
            cur: None,
            inbuf: Vec::new(),
            held: None,
            last_read: Instant::now(),
            stall: None,
            head_started: None,
            read_deferred: false,
            read_closed: false,
            peer_eof: false,
            continue_done: false,
            linger: false,
            discarded: 0,
            proxy: None,
            tls,
            tls_info: None,
            kept_alive: false,
        }
    }

    /// Reading requests (neither closing nor lingering).
    #[inline]
    pub(crate) fn is_open(&self) -> bool {
        self.phase == Phase::Open
    }

    /// In its lingering close (ends at EOF, the byte budget or the deadline).
    #[inline]
    pub(crate) fn is_lingering(&self) -> bool {
        matches!(self.phase, Phase::Lingering { .. })
    }

    /// Lingering, and its deadline is past at `now`.
    pub(crate) fn linger_over(&self, now: Instant) -> bool {
        matches!(self.phase, Phase::Lingering { until, .. } if now >= until)
    }

    /// The first byte of a head (or a PROXY header, or a TLS handshake) arrived at `now`:
    /// the whole-head deadline runs from the first such byte (kept if already running).
    #[inline]
    pub(crate) fn head_begins(&mut self, now: Instant) {
        if self.head_started.is_none() {
            self.head_started = Some(now);
        }
    }

    /// The head (or the PROXY header, or the handshake) is complete: no deadline runs.
    #[inline]
    pub(crate) fn head_ends(&mut self) {
        self.head_started = None;
    }

    /// The head begun at `head_begins` is still incomplete `timeout` after it began.
    pub(crate) fn head_overdue(&self, now: Instant, timeout: Duration) -> bool {
        self.head_started
            .is_some_and(|t| now.saturating_duration_since(t) >= timeout)
    }

    /// epoll reported the peer's FIN (EPOLLRDHUP): read until recv returns 0 from now on.
    #[inline]
    pub(crate) fn on_read_closed(&mut self) {
        self.read_closed = true;
    }

    /// The channel was readable while busy and not read (`on_readable`): true once, when the
    /// caller must read it now.
    #[inline]
    pub(crate) fn take_deferred_read(&mut self) -> bool {
        std::mem::take(&mut self.read_deferred)
    }

    /// The request being parsed, if any (the channel is being torn down: the caller recycles
    /// it).
    pub(crate) fn take_partial_request(&mut self) -> Option<Box<Job>> {
        self.cur.take()
    }

    /// `channel_timeout`'s sweep (every `cleanup_interval`): whether to close the channel at
    /// `now`. Idle for `timeout` (waitress §4.3: no request queued or running, nothing read or
    /// sent since; a half-received request counts as idle), or, waitressd's addition, an app
    /// thread has waited at `watermark` (back-pressure) on a client that read none of its
    /// response for `timeout`, as far as the sweeps saw it. waitress exempts running requests,
    /// so such clients each hold an app thread for ever (a few stop the server); a slow client
    /// that reads is never cut.
    pub(crate) fn sweep_closes(&mut self, now: Instant, timeout: Duration, watermark: u64) -> bool {
        let st = self.shared.lock();
        if !st.busy() {
            self.stall = None;
            let last = self.last_read.max(st.last_activity());
            return now.saturating_duration_since(last) >= timeout;
        }
        if !st.over_watermark(watermark) {
            self.stall = None;
            return false;
        }
        let sent = st.out().sent_total();
        match self.stall {
            Some((seen, since)) if seen == sent => {
                let cut = now.saturating_duration_since(since) >= timeout;
                if cut {
                    log::debug!(target: "waitress", "closing a connection from {}: the client read nothing of its response for channel_timeout ({} s) while an app thread waited on it", self.shared.origin.remote_addr, timeout.as_secs());
                }
                cut
            }
            _ => {
                self.stall = Some((sent, now));
                false
            }
        }
    }

    /// The last response is sent: whether to close lingering (the client may still be
    /// sending: an error response was sent, reading was deferred, or input waits unread)
    /// rather than at once. Never after the client's EOF. May peek at the socket.
    pub(crate) fn wants_linger(&self) -> bool {
        !self.peer_eof && (self.linger || self.read_deferred || unread_input(self.shared.fd()))
    }

    /// Lingering close: our side is done (write side shut down); what the client still sends
    /// is drained, until `until` or `bytes` of it, so the response is not lost to a reset
    /// (RFC 9112 §9.6). The caller reads the channel now.
    pub(crate) fn start_lingering(&mut self, until: Instant, bytes: usize) {
        // The close_notify goes before the FIN: after the shutdown it can no longer be sent,
        // and a client that treats a TCP EOF without it as a truncation would reject the
        // (complete) error response.
        self.send_close_notify();
        let _ = nix::sys::socket::shutdown(
            self.shared.fd().as_raw_fd(),
            nix::sys::socket::Shutdown::Write,
        );
        self.phase = Phase::Lingering { until, left: bytes };
        self.read_deferred = false;
    }

    /// TLS: queues the close_notify alert and sends it (best effort, one flush), so a client
    /// reading to EOF sees a clean end of the stream rather than a truncation; not when the
    /// connection is closed already or resets because a close-delimited body was cut; nor
    /// before the TLS session exists (a PROXY header still awaited, or refused: such a
    /// connection is closed as on a plain PROXY port, not answered with a TLS alert).
    pub(crate) fn send_close_notify(&self) {
        if !self.tls || self.awaiting_proxy_header() {
            return;
        }
        let mut st = self.shared.lock();
        if st.is_closed() || st.resets_on_close() {
            return;
        }
        if let Some(t) = st.out_mut().tls_mut() {
            t.close_notify();
            let _ = st.out_mut().flush(self.shared.fd());
        }
    }

    /// True when the channel may take more input: nothing held back, and no more than
    /// `channel_request_lookahead` requests queued or running (waitress `readable()`).
    fn may_read(&self, st: &ChanState, lookahead: usize) -> bool {
        self.held.is_none() && self.inbuf.is_empty() && st.may_take_more(lookahead)
    }

    /// No request started, nothing queued or running, nothing to send: a connection that may
    /// be evicted at `connection_limit` or closed on a graceful stop.
    pub(crate) fn is_idle(&self) -> bool {
        let st = self.shared.lock();
        self.phase == Phase::Open
            && st.idle()
            && !self.parser.head_complete()
            && self.held.is_none()
    }

    /// Idle between requests after at least one: an idle keep-alive connection (nginx closes
    /// these first when it runs out of connections; a client retries on a new one, RFC 9112
    /// §9.3.1).
    pub(crate) fn is_idle_keepalive(&self) -> bool {
        self.kept_alive && self.head_started.is_none() && self.is_idle()
    }

    /// Since when the connection has been waiting on its client: the first byte of a half-sent
    /// head, else its last activity.
    pub(crate) fn idle_since(&self) -> Instant {
        self.head_started.unwrap_or_else(|| self.last_active())
    }

    /// The last time the connection did anything (read, send, finished request).
    pub(crate) fn last_active(&self) -> Instant {
        self.last_read.max(self.shared.lock().last_activity())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_connection_structs_stay_small() {
        // An idle keep-alive connection is a `Channel` slot plus the `Shared` allocation (and
        // its origin strings): together well under the 2 KiB budget.
        let total = std::mem::size_of::<Channel>() + std::mem::size_of::<Shared>();
        assert!(total <= 768, "Channel + Shared = {total} bytes");
    }
}

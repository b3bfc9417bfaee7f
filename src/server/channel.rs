//! One client connection as the loop sees it (waitress's `HTTPChannel`): parser, timers and
//! read state. Reading and parsing live here; the loop decides when to call them. The
//! responses the loop itself sends (`100 Continue`, parser errors) are held until the channel
//! is idle, in `channel::held`. The part shared with app threads is in `shared`; the
//! connection's opening (PROXY header, TLS reads) in `opening`.
use std::os::fd::AsRawFd;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::socket::{recv, MsgFlags};

use super::ctx::{socket_error, Ctx};
use super::proxy_header::ProxyState;
use super::shared::{ChanState, Job, Shared};
use super::sock::unread_input;
use super::splice::{BodyPipe, Spliced, SPLICE_MIN};
use crate::http::{HttpError, RequestParser, Status};

mod held;
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

/// Most input discarded while a closing connection's last response is still unsent.
const DISCARD_MAX: usize = 4 << 20;

/// How many recv calls one readiness event may use before other channels get a turn.
const READS_PER_EVENT: usize = 32;

/// Largest recv while a body of known length arrives (other reads: `recv_bytes`); never more
/// than the body's rest unless that is below `recv_bytes`. A 1 MiB upload: 131 → 5 recv calls.
pub(crate) const BODY_RECV: usize = 256 * 1024;
/// Bytes one readiness event may read before other channels get a turn (with `BODY_RECV`
/// reads, `READS_PER_EVENT` alone would let one uploader take 8 MiB per turn).
const BYTES_PER_EVENT: usize = 1 << 20;

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

    /// The connection speaks TLS.
    #[inline]
    pub(crate) fn is_tls(&self) -> bool {
        self.tls
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

    /// Idle for `timeout` at `now` (waitress §4.3: no request queued or running, nothing read
    /// or sent since; a half-received request counts as idle): `channel_timeout`'s sweep.
    pub(crate) fn idle_timed_out(&self, now: Instant, timeout: Duration) -> bool {
        let st = self.shared.lock();
        let last = self.last_read.max(st.last_activity());
        !st.busy() && now.saturating_duration_since(last) >= timeout
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
        let _ = nix::sys::socket::shutdown(
            self.shared.fd().as_raw_fd(),
            nix::sys::socket::Shutdown::Write,
        );
        self.phase = Phase::Lingering { until, left: bytes };
        self.read_deferred = false;
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

    /// Reads what the socket has and parses it; complete requests are queued on the channel
    /// and, when no app thread owns it, the channel goes into `batch`.
    pub(crate) fn on_readable(
        &mut self,
        ctx: &Ctx,
        scratch: &mut [u8],
        pipe: &mut BodyPipe,
        batch: &mut Vec<Arc<Shared>>,
        now: Instant,
    ) -> ReadOutcome {
        let mut budget = BYTES_PER_EVENT;
        for _ in 0..READS_PER_EVENT {
            if budget == 0 {
                break;
            }
            if let Phase::Open = self.phase {
                let mut st = self.shared.lock();
                if st.closing() {
                    // The last response is decided: whatever comes now is discarded.
                    self.phase = Phase::Closing;
                    self.held = None;
                    self.inbuf = Vec::new();
                } else if !self.may_read(&st, ctx.opts.channel_request_lookahead) {
                    // Set under the same lock the app thread checks when it finishes, so
                    // the wake-up cannot be missed.
                    st.notify_when_done();
                    self.read_deferred = true;
                    return ReadOutcome::Done;
                }
            }
            match self.splice_body(ctx, pipe, batch, now) {
                // Not a short read's "drained": a pipe also fills by pages. Go on until
                // EAGAIN (edge-triggered) or the event's budget.
                Some(Ok(n)) => {
                    budget = budget.saturating_sub(n);
                    continue;
                }
                Some(Err(outcome)) => return outcome,
                None => {}
            }
            let tls = self.tls && self.phase == Phase::Open && !self.awaiting_proxy_header();
            let want = self.recv_size(ctx.opts.recv_bytes).min(scratch.len());
            let buf = &mut scratch[..want];
            let n = if tls {
                match self.recv_tls(ctx, buf, &[], now) {
                    Ok(n) => n,
                    Err(outcome) => return outcome,
                }
            } else {
                match recv(self.shared.fd().as_raw_fd(), buf, MsgFlags::empty()) {
                    Ok(n) => {
                        if let Some(m) = ctx.opts.metrics {
                            m.bytes_in(n);
                        }
                        n
                    }
                    Err(Errno::EAGAIN) => return ReadOutcome::Done,
                    Err(Errno::EINTR) => continue,
                    Err(e) => {
                        socket_error(ctx, "recv", e.into());
                        return ReadOutcome::Close;
                    }
                }
            };
            self.last_read = now;
            if n == 0 {
                return self.on_eof();
            }
            budget = budget.saturating_sub(n);
            match &mut self.phase {
                Phase::Open => {}
                Phase::Closing => {
                    // Discarded while the last response is still going out; a client that
                    // sends without reading cannot keep the connection busy forever.
                    self.discarded += n;
                    if self.discarded > DISCARD_MAX {
                        return ReadOutcome::Close;
                    }
                    continue;
                }
                Phase::Lingering { left, .. } => {
                    *left = left.saturating_sub(n);
                    if *left == 0 {
                        return ReadOutcome::Close;
                    }
                    continue;
                }
            }
            let mut data = &scratch[..n];
            if self.awaiting_proxy_header() {
                match self.take_proxy_header(data, now) {
                    Ok(used) => data = &data[used..],
                    Err(()) => return ReadOutcome::Close,
                }
                if self.tls && !self.awaiting_proxy_header() {
                    if let Some(outcome) = self.tls_after_proxy_header(ctx, data, batch, now) {
                        return outcome;
                    }
                    continue;
                }
            }
            if self.parse(ctx, data, batch, now) {
                return ReadOutcome::Close;
            }
            // A short read drained the socket (not under TLS: plaintext comes in records).
            if n < want && !self.read_closed && !tls {
                return ReadOutcome::Done;
            }
        }
        ReadOutcome::More
    }

    /// How much the next recv asks for: `recv_bytes`, or up to `BODY_RECV` of a known body.
    fn recv_size(&self, recv_bytes: usize) -> usize {
        let head = head_recv(recv_bytes);
        match self.parser.fixed_body_remaining() {
            Some(rest) if self.phase == Phase::Open => {
                usize::try_from(rest).map_or(BODY_RECV, |r| r.min(BODY_RECV).max(head))
            }
            _ => head,
        }
    }

    /// The peer closed its side. waitress closes at once; waitressd still answers requests it
    /// already has (a client may half-close after sending), then closes.
    pub(crate) fn on_eof(&mut self) -> ReadOutcome {
        self.peer_eof = true;
        self.shared.mark_disconnected();
        let mut st = self.shared.lock();
        let lingering = matches!(self.phase, Phase::Lingering { .. });
        if lingering || st.idle() {
            return ReadOutcome::Close;
        }
        // Output still to send (a half-closed client may still be reading): close after it.
        st.close_after_output();
        st.notify_when_done();
        drop(st);
        self.phase = Phase::Closing;
        ReadOutcome::Done
    }

    /// Parses `data`; returns true when the channel must close now. Bytes that cannot be
    /// parsed yet (held back behind a busy request) are kept in `inbuf`.
    pub(crate) fn parse(
        &mut self,
        ctx: &Ctx,
        mut data: &[u8],
        batch: &mut Vec<Arc<Shared>>,
        now: Instant,
    ) -> bool {
        while !data.is_empty() {
            if self.held.is_some() || self.phase != Phase::Open {
                break;
            }
            let job = self.cur.get_or_insert_with(|| ctx.fresh_job());
            let before = self.parser.head_in_progress() || self.parser.head_complete();
            // The parser is total by design; should it ever panic, this connection gets a
            // 500 and the worker lives on.
            let progress = catch_unwind(AssertUnwindSafe(|| {
                self.parser.feed(data, &mut job.req, &mut job.body)
            }))
            .unwrap_or_else(|_| {
                log::error!(target: "waitress", "internal error: the request parser panicked");
                Err(HttpError::internal("parser panic".to_string()))
            });
            if !before && self.parser.head_in_progress() {
                self.head_begins(now);
            }
            match progress {
                Err(e) => {
                    self.fail_request(ctx, e);
                    data = &[];
                }
                Ok(p) if p.consumed == 0 && p.status == Status::NeedMore => {
                    // The parser promises to take what it is given; never spin on it.
                    log::error!(target: "waitress", "internal error: the request parser stalled");
                    self.cur = None;
                    self.hold_or_send(
                        ctx,
                        Held::Error(HttpError::internal("parser stall".into()), None),
                    );
                    data = &[];
                }
                Ok(p) => {
                    data = &data[p.consumed.min(data.len())..];
                    match p.status {
                        Status::NeedMore => {}
                        Status::HeadDone { expect_continue } => {
                            self.head_started = None;
                            if expect_continue {
                                self.continue_done = true;
                                self.hold_or_send(ctx, Held::Continue);
                            }
                        }
                        Status::Complete => self.request_complete(ctx, batch, now),
                    }
                }
            }
        }
        if !data.is_empty() && self.phase == Phase::Open {
            self.inbuf.extend_from_slice(data);
            self.shared.lock().notify_when_done();
        }
        false
    }

    /// The current request is whole (head and body): it is queued for an app thread.
    fn request_complete(&mut self, ctx: &Ctx, batch: &mut Vec<Arc<Shared>>, now: Instant) {
        self.head_started = None;
        self.kept_alive = true;
        self.parser.reset();
        if let Some(mut job) = self.cur.take() {
            self.origin_into(&mut job.req.origin);
            job.received = now;
            job.send_continue = job.req.expect_continue() && !self.continue_done;
            self.continue_done = false;
            self.queue_job(ctx, job, batch);
        }
    }

    /// Reads part of a large Content-Length body straight into its temp file when it goes
    /// there (`server::splice`): `None` when this read is not one (read and parse as usual),
    /// else the bytes moved or how the read ends.
    fn splice_body(
        &mut self,
        ctx: &Ctx,
        pipe: &mut BodyPipe,
        batch: &mut Vec<Arc<Shared>>,
        now: Instant,
    ) -> Option<Result<usize, ReadOutcome>> {
        if self.tls
            || !pipe.usable()
            || self.phase != Phase::Open
            || self.held.is_some()
            || !self.inbuf.is_empty()
            || self.awaiting_proxy_header()
        {
            return None;
        }
        let rest = self
            .parser
            .fixed_body_remaining()
            .filter(|&r| r >= SPLICE_MIN)?;
        let job = self.cur.as_mut()?;
        let version = job.req.version;
        let body = &mut job.body;
        // As `feed` decides: a body that reaches `inbuf_overflow` goes to its temp file from its
        // first byte (the head may have ended exactly where this read starts).
        let target = match body.expect(rest) {
            Ok(()) => body.append_target(),
            Err(e) => Err(e),
        };
        let moved = match target {
            // Below `inbuf_overflow` the body stays in memory: read as usual.
            Ok(None) => return None,
            Ok(Some((file, offset))) => pipe.socket_to_file(self.shared.fd(), file, offset, rest),
            Err(e) => Err(e),
        };
        match moved {
            Ok(Spliced::Bytes(n)) => {
                body.appended_externally(n as u64);
                if let Some(m) = ctx.opts.metrics {
                    m.bytes_in(n);
                }
                self.last_read = now;
                if self.parser.fixed_body_arrived(n as u64) == Status::Complete {
                    self.request_complete(ctx, batch, now);
                }
                Some(Ok(n))
            }
            Ok(Spliced::Eof) => Some(Err(self.on_eof())),
            Ok(Spliced::WouldBlock) => Some(Err(ReadOutcome::Done)),
            // Refused before taking anything: this read and the next ones go through `recv`.
            Ok(Spliced::Unsupported) => None,
            Ok(Spliced::Socket(e)) => {
                socket_error(ctx, "recv", e);
                Some(Err(ReadOutcome::Close))
            }
            Err(e) => {
                // As a failing body buffer under `feed`: a 500, then the connection closes.
                self.fail_request(ctx, HttpError::body_buffer(e).with_version(version));
                Some(Err(ReadOutcome::Done))
            }
        }
    }

    fn queue_job(&mut self, ctx: &Ctx, job: Box<Job>, batch: &mut Vec<Arc<Shared>>) {
        let mut st = self.shared.lock();
        if st.last_response_decided() {
            // The connection's last response is already decided (CVE-2024-49768: nothing
            // after it may run, even when it was read ahead).
            drop(st);
            self.phase = Phase::Closing;
            ctx.recycle(job);
            return;
        }
        if st.push_job(job) {
            batch.push(self.shared.clone());
        }
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

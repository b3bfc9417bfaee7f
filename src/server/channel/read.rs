//! A channel's reading: `on_readable`'s recv loop (bounded per event), large bodies spliced
//! into their temp file, the client's EOF, the parser fed, and complete requests queued for an
//! app thread. Part of `Channel` (a child module: it reaches the channel's private state).
use std::os::fd::AsRawFd;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Instant;

use nix::errno::Errno;
use nix::sys::socket::{recv, MsgFlags};

use super::super::ctx::{socket_error, Ctx};
use super::super::shared::{Job, Shared};
use super::super::splice::{BodyPipe, Spliced, SPLICE_MIN};
use super::held::Held;
use super::{head_recv, Channel, Phase, ReadOutcome, BODY_RECV};
use crate::http::{HttpError, Status};

/// Most input discarded while a closing connection's last response is still unsent.
const DISCARD_MAX: usize = 4 << 20;

/// How many recv calls one readiness event may use before other channels get a turn.
const READS_PER_EVENT: usize = 32;

/// Bytes one readiness event may read before other channels get a turn (with `BODY_RECV`
/// reads, `READS_PER_EVENT` alone would let one uploader take 8 MiB per turn).
const BYTES_PER_EVENT: usize = 1 << 20;

impl Channel {
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
                match self.take_proxy_header(ctx, data, now) {
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

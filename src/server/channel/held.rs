//! A channel's held responses: the `100 Continue` and the loop's own error responses (400,
//! 413, 431, 505 …) wait until the app thread is done with the channel (responses stay in
//! order), then go out with their access-log line, and the parse resumes. Part of `Channel`
//! (a child module: it reaches the channel's private state).
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::super::access_log;
use super::super::ctx::{socket_error, Ctx};
use super::super::shared::{unix_now, Job, Shared, CONTINUE};
use super::{Channel, Phase};
use crate::http::HttpError;

/// What the loop holds back until the channel is idle (responses must stay in order).
pub(super) enum Held {
    Continue,
    /// The error, and the request it interrupted (what was parsed of it, for the access log).
    Error(HttpError, Option<Box<Job>>),
}

impl Channel {
    /// Answers the current request with its error response (after the running one, if any);
    /// the connection closes after it. A 500 is ours (the body's temp file failed), logged at
    /// ERROR; the rest (4xx, and the 501 and 505 of a transfer coding or an HTTP version a
    /// client sent) are the client's, at debug: a scanner's probes fill no error log.
    pub(super) fn fail_request(&mut self, ctx: &Ctx, e: HttpError) {
        if e.is_internal() {
            log::error!(target: "waitress", "{e}");
        } else {
            log::debug!(target: "waitress", "bad request from {}: {e}", self.shared.origin.remote_addr);
        }
        let job = self.cur.take();
        self.head_started = None;
        self.hold_or_send(ctx, Held::Error(e, job));
    }

    /// Sends a `100 Continue` or an error response now if the channel is idle, else holds it
    /// (and the parse) until the app thread reports the channel idle.
    pub(super) fn hold_or_send(&mut self, ctx: &Ctx, held: Held) {
        let mut st = self.shared.lock();
        if st.busy() {
            st.notify_when_done();
            self.held = Some(held);
            return;
        }
        drop(st);
        self.send_held(ctx, held);
    }

    /// Writes a held response (the channel is idle).
    fn send_held(&mut self, ctx: &Ctx, held: Held) {
        let mut st = self.shared.lock();
        let bytes: Vec<u8>;
        let data: &[u8] = match &held {
            Held::Continue => CONTINUE,
            Held::Error(e, job) => {
                bytes = crate::http::error_response(
                    e,
                    ctx.opts.ident.as_deref(),
                    &crate::http::date::http_date(unix_now()),
                );
                self.error_response_done(ctx, e, job.as_deref(), &bytes);
                st.close_after_output();
                self.phase = Phase::Closing;
                self.linger = true;
                self.inbuf = Vec::new();
                &bytes
            }
        };
        let r = st.out_mut().send(self.shared.fd(), &[data]);
        // On the loop thread: a pending rest is sent on the writable edge that follows.
        self.shared.note_output(&st);
        match r {
            Ok(_) => st.mark_active(Instant::now()),
            Err(e) => {
                st.send_failed();
                socket_error(ctx, "send", e);
            }
        }
    }

    /// An error response the loop sends itself (400, 413, 431, 505 …), counted in the
    /// metrics like the app's responses (`waitressd_requests_total` by method and status
    /// class; a request line that did not parse counts as method `other`) and given its
    /// access-log line: the request as far as it was parsed, the peer's address (proxy
    /// headers are not applied to a request that failed to parse). Also `opening`'s, for
    /// plain HTTP on a TLS port.
    pub(in crate::server) fn error_response_done(
        &self,
        ctx: &Ctx,
        e: &HttpError,
        job: Option<&Job>,
        resp: &[u8],
    ) {
        let pending = ctx.access_log();
        if pending.is_none() && ctx.opts.metrics.is_none() {
            return;
        }
        let len = access_log::body_len(resp);
        let now = Instant::now();
        let elapsed = self
            .head_started
            .map_or(Duration::ZERO, |t| now.duration_since(t));
        if let Some(m) = ctx.opts.metrics {
            let method = job.map_or(&b""[..], |j| j.req.method());
            m.request_done(method, e.status(), elapsed, len);
        }
        let Some(pending) = pending else {
            return;
        };
        let status = e.status().to_string();
        let headers = [("Content-Length".to_string(), len.to_string())];
        let line = access_log::Line {
            req: job.map(|j| &j.req),
            remote: &self.shared.origin.remote_addr,
            status: &status,
            bytes: len,
            elapsed,
            at: now,
            resp_headers: &headers,
        };
        // Rare: a clock per error response is cheaper than one per channel.
        pending.push(
            &mut access_log::Clock::default(),
            &ctx.opts.access_log_format,
            line,
        );
    }

    /// The app thread finished with the channel: send what was held, parse what was kept.
    /// Returns true when the channel must close now.
    pub(crate) fn resume(&mut self, ctx: &Ctx, batch: &mut Vec<Arc<Shared>>, now: Instant) -> bool {
        {
            let st = self.shared.lock();
            if st.busy() {
                return false;
            }
            if st.closing() {
                self.phase = Phase::Closing;
                self.held = None;
                self.inbuf = Vec::new();
                return false;
            }
        }
        if let Some(held) = self.held.take() {
            self.send_held(ctx, held);
        }
        if !self.inbuf.is_empty() {
            let data = std::mem::take(&mut self.inbuf);
            let close = self.parse(ctx, &data, batch, now);
            if self.inbuf.is_empty() {
                // Keep the allocation only if parsing stopped again.
                self.inbuf = data;
                self.inbuf.clear();
                if self.inbuf.capacity() > 4096 {
                    self.inbuf = Vec::new();
                }
            }
            return close;
        }
        false
    }
}

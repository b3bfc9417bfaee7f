//! What the loop does with one channel: read it when readable, send its output when
//! writable, take it back from its app thread, finish it (close, or linger after an error
//! response) and close it. The poll and what it dispatches here are in `event_loop`.
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;

use super::{EventLoop, CHANNEL0};
use crate::server::channel::ReadOutcome;
use crate::server::ctx::socket_error;
use crate::server::shared::Shared;
use crate::server::sock;

/// Bounds of the lingering close after an error response.
const LINGER_TIME: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 1 << 20;

impl EventLoop {
    pub(super) fn read(&mut self, i: usize, batch: &mut Vec<Arc<Shared>>, now: Instant) {
        let Some(ch) = self.chans.get_mut(i) else {
            return;
        };
        let outcome = ch.on_readable(
            &self.ctx,
            &mut self.scratch,
            &mut self.body_pipe,
            batch,
            now,
        );
        // An open channel that only read has nothing to finish (app threads report theirs).
        let settle = !ch.is_open() || self.draining;
        match outcome {
            ReadOutcome::Done if settle => self.maybe_finish(i, now),
            ReadOutcome::Done => {}
            ReadOutcome::More => self.again.push(i),
            ReadOutcome::Close => self.close(i),
        }
    }

    pub(in crate::server) fn on_writable(&mut self, i: usize, now: Instant) {
        let wm = self.ctx.opts.outbuf_high_watermark;
        let Some(ch) = self.chan(i) else { return };
        let sh = &ch.shared;
        // epoll reports writability with every readable edge: usually nothing to do, and
        // checking that must not wait for an app thread that is sending.
        if !sh.has_output() {
            return;
        }
        let mut st = sh.lock();
        if st.out().is_empty() || st.is_closed() {
            return;
        }
        let before = st.out().pending();
        let r = st.out_mut().flush(sh.fd());
        sh.flushed(&st, wm);
        if st.out().pending() < before {
            st.mark_active(now);
        }
        drop(st);
        if let Err(e) = r {
            socket_error(&self.ctx, "send", e);
            return self.close(i);
        }
        self.maybe_finish(i, now);
    }

    /// An app thread is done with a channel (or hit an error on it).
    pub(super) fn after_app(
        &mut self,
        sh: &Arc<Shared>,
        batch: &mut Vec<Arc<Shared>>,
        now: Instant,
    ) {
        let i = sh.token - CHANNEL0;
        let ctx = self.ctx.clone();
        let Some(ch) = self.chan(i).filter(|c| Arc::ptr_eq(&c.shared, sh)) else {
            return;
        };
        {
            let mut st = sh.lock();
            if st.is_closed() {
                drop(st);
                self.close(i);
                return;
            }
            if !st.out().is_empty() {
                let r = st.out_mut().flush(sh.fd());
                sh.flushed(&st, ctx.opts.outbuf_high_watermark);
                if let Err(e) = r {
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
        if ch.take_deferred_read() {
            self.read(i, batch, now);
        } else {
            self.maybe_finish(i, now);
        }
    }

    /// Closes (or starts lingering on) a channel whose last response is out; closes idle
    /// channels while draining.
    fn maybe_finish(&mut self, i: usize, now: Instant) {
        let close_idle = self.drain_grace_over(now);
        let at_limit = self.chans.len() >= self.ctx.opts.connection_limit;
        let Some(ch) = self.chan(i) else { return };
        let mut st = ch.shared.lock();
        if st.is_closed() {
            drop(st);
            return self.close(i);
        }
        let finished = st.last_response_sent();
        let delimited = if finished {
            st.close_delimited_end()
        } else {
            None
        };
        drop(st);
        if ch.is_lingering() {
            return; // ends at EOF, the byte budget or the deadline
        }
        match delimited {
            // A body that ends at the close was cut (the app failed mid-body): reset now, no
            // FIN and no lingering that would make the cut look like the end.
            Some(false) => return self.close(i),
            // Complete: the normal close (FIN after the last byte) is back.
            Some(true) => sock::reset_on_close(ch.shared.fd(), false),
            None => {}
        }
        if finished {
            if !ch.wants_linger() {
                return self.close(i);
            }
            ch.start_lingering(now + LINGER_TIME, LINGER_BYTES);
            let mut batch = Vec::new();
            self.read(i, &mut batch, now);
        } else if close_idle && ch.is_idle() {
            self.close(i);
        } else if at_limit && ch.is_idle_keepalive() && self.ctx.clients_waiting() {
            // It may make room for the client waiting at the limit: look at the backlog again
            // (only then: an accept round polls every listener).
            self.retry_accept();
        }
    }

    /// Tears a channel down: deregistered, shut down (the fd closes with its last reference),
    /// queued requests dropped, blocked app writers woken.
    pub(in crate::server) fn close(&mut self, i: usize) {
        let Some(mut ch) = self.chans.try_remove(i) else {
            return;
        };
        let raw = ch.shared.fd().as_raw_fd();
        let _ = self.poll.registry().deregister(&mut SourceFd(&raw));
        // A TLS close_notify first (if lingering did not send it already).
        ch.send_close_notify();
        ch.shared.mark_closed();
        if let Some(job) = ch.take_partial_request() {
            self.ctx.recycle(job);
        }
        if let Some(m) = self.ctx.opts.metrics {
            m.connection(false);
        }
        if self.chans.len() + 1 >= self.ctx.opts.connection_limit {
            // Room again: look at waiting clients (accepting stopped at the limit).
            self.retry_accept();
        }
    }
}

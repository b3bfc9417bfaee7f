//! Connection timers (waitress's `maintenance` sweep and waitressd's additions): the idle
//! sweep every `cleanup_interval`, a once-a-second tick for whole-head deadlines and
//! lingering closes, the graceful drain (idle connections closed after a short grace), and
//! the `GATHER_DELAY` flush of gathered streamed output.
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::event_loop::{EventLoop, CHANNEL0};

/// Graceful stop: how long an idle keep-alive connection is kept open for one more request
/// (answered with `Connection: close`). Closing it at once races with a client that is just
/// sending its next request on it: a failed request in every load test across a reload.
const DRAIN_IDLE_GRACE: Duration = Duration::from_secs(1);

impl EventLoop {
    /// Sends the gathered output whose `GATHER_DELAY` is over (the app is taking its time
    /// with the next chunk).
    pub(super) fn flush_gathered(&mut self, now: Instant) {
        while self.gathered.front().is_some_and(|(due, _)| *due <= now) {
            let Some((_, sh)) = self.gathered.pop_front() else {
                break;
            };
            sh.lock().disarm_flush();
            let i = sh.token - CHANNEL0;
            if self.chan(i).is_some_and(|c| Arc::ptr_eq(&c.shared, &sh)) {
                self.on_writable(i, now);
            }
        }
    }

    /// Once a second: whole-head deadlines and lingering closes; listeners are looked at
    /// again (accept errors such as EMFILE pause accepting until the next tick).
    pub(super) fn tick(&mut self, now: Instant) {
        for l in &mut self.listeners {
            l.accept_pending = true;
        }
        let head_timeout = self.ctx.opts.header_timeout();
        for i in 0..self.chans.end() {
            let Some(ch) = self.chan(i) else { continue };
            let late_head = ch.head_overdue(now, head_timeout);
            let linger_over = ch.linger_over(now);
            if late_head {
                log::debug!(target: "waitress", "request head not complete after {head_timeout:?}, closing");
            }
            if late_head || linger_over {
                self.close(i);
            }
        }
    }

    /// Every `cleanup_interval`: closes channels idle for `channel_timeout` (waitress §4.3:
    /// no request queued or running; a half-received request counts as idle).
    pub(super) fn sweep(&mut self, now: Instant) {
        let timeout = Duration::from_secs(self.ctx.opts.channel_timeout);
        for i in 0..self.chans.end() {
            let Some(ch) = self.chan(i) else { continue };
            if ch.idle_timed_out(now, timeout) {
                self.close(i);
            }
        }
    }

    pub(super) fn start_drain(&mut self) {
        self.draining = true;
        self.ctx.start_draining();
        self.drain_backlog(Instant::now());
        for l in self.listeners.drain(..) {
            l.deregister(self.poll.registry());
        }
        self.drain_idle_until = Some(Instant::now() + DRAIN_IDLE_GRACE);
        for i in 0..self.chans.end() {
            let Some(ch) = self.chan(i) else { continue };
            if !ch.is_idle() {
                ch.shared.lock().notify_when_done();
            }
        }
    }

    /// Draining, grace over: closes the connections still idle.
    pub(super) fn close_idle_after_grace(&mut self, now: Instant) {
        if !self.draining || self.drain_idle_until.is_none_or(|t| now < t) {
            return;
        }
        for i in 0..self.chans.end() {
            if self.chan(i).is_some_and(|ch| ch.is_idle()) {
                self.close(i);
            }
        }
    }
}

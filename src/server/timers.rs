//! Connection timers (waitress's `maintenance` sweep and waitressd's additions): the idle
//! sweep every `cleanup_interval`, a once-a-second tick for whole-head deadlines and
//! lingering closes, the graceful drain's end of grace (idle connections closed), and the
//! `GATHER_DELAY` flush of gathered streamed output.
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::event_loop::{EventLoop, CHANNEL0};

impl EventLoop {
    /// Sends the gathered output whose `GATHER_DELAY` is over (the app is taking its time
    /// with the next chunk).
    pub(super) fn flush_gathered(&mut self, now: Instant) {
        while let Some(sh) = self.take_due_gathered(now) {
            sh.lock().disarm_flush();
            let i = sh.token - CHANNEL0;
            if self.chan(i).is_some_and(|c| Arc::ptr_eq(&c.shared, &sh)) {
                self.on_writable(i, now);
            }
        }
    }

    /// Once a second: whole-head deadlines and lingering closes; listeners are looked at
    /// again (accept errors such as EMFILE pause accepting until the next tick) and their
    /// recovery is said when due (`AcceptErrors::settle`).
    pub(super) fn tick(&mut self, now: Instant) {
        self.retry_accept();
        for l in &mut self.listeners {
            l.accept_errors.settle(now);
        }
        let head_timeout = self.ctx.opts.header_timeout();
        let done: Vec<usize> = self
            .chans
            .iter()
            .filter(|(_, ch)| {
                let late_head = ch.head_overdue(now, head_timeout);
                if late_head {
                    log::debug!(target: "waitress", "request head not complete after {head_timeout:?}, closing");
                }
                late_head || ch.linger_over(now)
            })
            .map(|(i, _)| i)
            .collect();
        for i in done {
            self.close(i);
        }
    }

    /// Every `cleanup_interval`: closes channels idle for `channel_timeout` (waitress §4.3:
    /// no request queued or running; a half-received request counts as idle), and, waitressd's
    /// addition, cuts a response whose client read none of it for as long while an app thread
    /// waits on it (visibly: a short or unterminated body, or a reset for a close-delimited
    /// one), which frees the thread (`Channel::sweep_closes`).
    pub(super) fn sweep(&mut self, now: Instant) {
        let timeout = Duration::from_secs(self.ctx.opts.channel_timeout);
        let wm = self.ctx.opts.outbuf_high_watermark;
        let done: Vec<usize> = self
            .chans
            .iter_mut()
            .filter_map(|(i, ch)| ch.sweep_closes(now, timeout, wm).then_some(i))
            .collect();
        for i in done {
            self.close(i);
        }
    }

    /// Draining, grace over: closes the connections still idle.
    pub(super) fn close_idle_after_grace(&mut self, now: Instant) {
        if !self.drain_grace_over(now) {
            return;
        }
        let idle: Vec<usize> = self
            .chans
            .iter()
            .filter(|(_, ch)| ch.is_idle())
            .map(|(i, _)| i)
            .collect();
        for i in idle {
            self.close(i);
        }
    }
}

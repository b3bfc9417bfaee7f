//! Connection timers (waitress's `maintenance` sweep and waitressd's additions): the idle
//! sweep every `cleanup_interval`, and a once-a-second tick for whole-head deadlines and
//! lingering closes.
use std::time::{Duration, Instant};

use super::channel::Phase;
use super::dispatch::lock;
use super::event_loop::EventLoop;

impl EventLoop {
    /// Once a second: whole-head deadlines and lingering closes; listeners are looked at
    /// again (accept errors such as EMFILE pause accepting until the next tick).
    pub(super) fn tick(&mut self, now: Instant) {
        for l in &mut self.listeners {
            l.accept_pending = true;
        }
        let head_timeout = self.ctx.opts.header_timeout();
        for i in 0..self.chans.len() {
            let Some(ch) = self.chan(i) else { continue };
            let late_head = ch.head_started.is_some_and(|t| now - t >= head_timeout);
            let linger_over = matches!(ch.phase, Phase::Lingering { until, .. } if now >= until);
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
        for i in 0..self.chans.len() {
            let Some(ch) = self.chan(i) else { continue };
            let st = lock(&ch.shared.st);
            let last = ch.last_read.max(st.last_activity);
            let idle = !st.running && st.queue.is_empty() && now - last >= timeout;
            drop(st);
            if idle {
                self.close(i);
            }
        }
    }
}

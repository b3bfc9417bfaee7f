//! The part of a connection shared by the loop and the app thread serving it: pending output,
//! queued requests and flags, under one lock (`ChanState`), plus the `Job` a request travels in
//! and what both sides may send (`CONTINUE`, gathered output's bounds). The handle both sides
//! hold (`Shared`: the socket, the lock, the app threads' back-pressure wait
//! `Shared::wait_for_reader`) is in `shared::conn`.
use std::collections::VecDeque;
use std::time::Instant;

use super::outbuf::OutBuf;
use crate::http::{OverflowableBuffer, Request};

mod conn;
pub(crate) use conn::Shared;

/// One parsed, complete request waiting for (or being run by) an app thread.
pub(crate) struct Job {
    pub(crate) req: Request,
    pub(crate) body: OverflowableBuffer,
    /// `100 Continue` still owed (bodiless `Expect: 100-continue` request, or one pipelined
    /// behind a busy request): the task sends it before the response.
    pub(crate) send_continue: bool,
    /// When the request was complete (`/metrics` latency).
    pub(crate) received: Instant,
}

/// State shared by the loop and the app thread serving the channel (one lock).
///
/// The protocol between the two sides is in the methods below: the loop queues requests
/// (`push_job`) and hands the channel to an app thread when none owns it (`running`); the app
/// thread runs them in order (`next_job`) and lets go (`app_done`), telling the loop when it
/// asked (`notify_when_done`) or the connection ends. Either side may end the connection
/// (`close_after_output`, `no_more_requests`, `send_failed`, `time_out`).
pub(crate) struct ChanState {
    /// Output not yet sent (and the connection's TLS session, if any).
    out: OutBuf,
    /// Complete requests not yet started, in arrival order.
    queue: VecDeque<Box<Job>>,
    /// An app thread owns the channel (running, or about to run, `queue`'s head).
    running: bool,
    /// The loop wants a notification when the channel stops running.
    notify_on_done: bool,
    /// Close once `out` is sent (error, `Connection: close`, HTTP/1.0 without keep-alive).
    close_when_flushed: bool,
    /// Nothing can be written any more (peer gone, socket error, or torn down by the loop).
    closed: bool,
    /// Last successful send or finished request (the loop tracks reads itself).
    last_activity: Instant,
    /// Some of the current response went out (or is queued): a failure can only cut.
    head_out: bool,
    /// The running request outlived `request_timeout` and was answered for (watchdog.rs):
    /// the app thread's writes fail as if the client had gone.
    timed_out: bool,
    /// Gathered output is waiting and the loop holds a `GATHER_DELAY` timer for it.
    flush_armed: bool,
    /// Where a body that ends where the connection closes (HTTP/1.0 without a length) stands.
    delimited: DelimitedBody,
}

/// A response body that ends where the connection closes (HTTP/1.0 without a length) has no
/// framing to show a cut: until it is known complete the socket resets on close (SO_LINGER 0,
/// `sock::reset_on_close`), so a worker killed or an app failing mid-body is a visible reset,
/// never a clean end after a truncated body.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum DelimitedBody {
    /// None started (or the last one is complete and its normal close restored).
    None,
    /// Started and not known complete: closing resets.
    Incomplete,
    /// Complete (the app returned): closing still resets until the loop, once the last byte
    /// is handed to the kernel, restores a normal close (`close_delimited_end`).
    Complete,
}

impl ChanState {
    /// A new connection's state: `out` (with its TLS session, if any), nothing queued.
    #[inline]
    pub(crate) fn new(out: OutBuf, now: Instant) -> ChanState {
        ChanState {
            out,
            queue: VecDeque::new(),
            running: false,
            notify_on_done: false,
            close_when_flushed: false,
            closed: false,
            last_activity: now,
            head_out: false,
            timed_out: false,
            flush_armed: false,
            delimited: DelimitedBody::None,
        }
    }

    /// A body that ends where the connection closes starts (the app thread set SO_LINGER 0 on
    /// the socket): until it is complete, closing resets.
    pub(crate) fn close_delimited_begins(&mut self) {
        self.delimited = DelimitedBody::Incomplete;
    }

    /// The app returned: the close-delimited body it started, if any, is complete.
    pub(crate) fn close_delimited_complete(&mut self) {
        if self.delimited == DelimitedBody::Incomplete {
            self.delimited = DelimitedBody::Complete;
        }
    }

    /// How the loop ends a connection whose output is all sent: `None` when no close-delimited
    /// body was started; `Some(true)` when it is complete (the caller restores a normal close:
    /// the FIN goes after the data); `Some(false)` when it is not (the caller closes at once:
    /// the reset tells the client the body was cut).
    pub(crate) fn close_delimited_end(&mut self) -> Option<bool> {
        match self.delimited {
            DelimitedBody::None => None,
            DelimitedBody::Incomplete => Some(false),
            DelimitedBody::Complete => {
                self.delimited = DelimitedBody::None;
                Some(true)
            }
        }
    }

    /// Closing now resets the connection: a close-delimited body was started and its normal
    /// close is not restored yet.
    pub(crate) fn resets_on_close(&self) -> bool {
        self.delimited != DelimitedBody::None
    }

    /// The pending output.
    #[inline]
    pub(crate) fn out(&self) -> &OutBuf {
        &self.out
    }

    /// The pending output, to add to or send (call `Shared::note_output` or
    /// `Shared::flushed` after).
    #[inline]
    pub(crate) fn out_mut(&mut self) -> &mut OutBuf {
        &mut self.out
    }

    // --- Reads ---

    /// Nothing can be written any more (peer gone, socket error, or torn down by the loop).
    #[inline]
    pub(crate) fn is_closed(&self) -> bool {
        self.closed
    }

    /// The connection closes once its output is sent (`close_after_output`).
    #[inline]
    pub(crate) fn closing(&self) -> bool {
        self.close_when_flushed
    }

    /// The connection's last response is decided (closing, or closed): nothing after it may
    /// run, even when it was read ahead (CVE-2024-49768).
    #[inline]
    pub(crate) fn last_response_decided(&self) -> bool {
        self.close_when_flushed || self.closed
    }

    /// Complete requests not yet started.
    #[inline]
    pub(crate) fn queued(&self) -> usize {
        self.queue.len()
    }

    /// An app thread owns the channel, or requests wait for one.
    #[inline]
    pub(crate) fn busy(&self) -> bool {
        self.running || !self.queue.is_empty()
    }

    /// Requests queued or running, counted as waitress's `channel_request_lookahead` counts
    /// them: at most `lookahead` of them, and the channel open, lets the loop read more.
    #[inline]
    pub(crate) fn may_take_more(&self, lookahead: usize) -> bool {
        let busy = self.queue.len() + self.running as usize;
        busy <= lookahead && !self.closed
    }

    /// No request queued or running, nothing to send.
    #[inline]
    pub(crate) fn idle(&self) -> bool {
        !self.running && self.queue.is_empty() && self.out.is_empty()
    }

    /// The last response is decided and sent, and no app thread owns the channel: the loop
    /// may close it (or linger).
    #[inline]
    pub(crate) fn last_response_sent(&self) -> bool {
        self.close_when_flushed && !self.running && self.out.is_empty()
    }

    /// More than `watermark` bytes wait to be sent on an open channel: an app thread waits
    /// for the loop to send them (back-pressure, waitress `outbuf_high_watermark`).
    #[inline]
    pub(crate) fn over_watermark(&self, watermark: u64) -> bool {
        !self.closed && self.out.pending() > watermark
    }

    /// Last successful send or finished request (the loop tracks reads itself).
    #[inline]
    pub(crate) fn last_activity(&self) -> Instant {
        self.last_activity
    }

    /// Some of the current response went out (or is queued): a failure can only cut.
    #[inline]
    pub(crate) fn head_out(&self) -> bool {
        self.head_out
    }

    // --- The loop ---

    /// Queues a complete request; true when no app thread owned the channel: it is marked
    /// running now, and the caller hands it to the app threads (`Ctx::submit`).
    #[inline]
    pub(crate) fn push_job(&mut self, job: Box<Job>) -> bool {
        self.queue.push_back(job);
        if self.running {
            return false;
        }
        self.running = true;
        true
    }

    /// The loop wants to be told when the app thread lets go of the channel (`app_done`).
    /// Set under the same lock the app thread checks when it finishes, so the wake-up cannot
    /// be missed.
    #[inline]
    pub(crate) fn notify_when_done(&mut self) {
        self.notify_on_done = true;
    }

    /// Close once the output is sent (error response, the client's EOF).
    #[inline]
    pub(crate) fn close_after_output(&mut self) {
        self.close_when_flushed = true;
    }

    /// Something was sent (or a request finished) at `now` (`channel_timeout`).
    #[inline]
    pub(crate) fn mark_active(&mut self, now: Instant) {
        self.last_activity = now;
    }

    /// The loop's `GATHER_DELAY` timer for gathered output went off (`arm_flush`).
    #[inline]
    pub(crate) fn disarm_flush(&mut self) {
        self.flush_armed = false;
    }

    /// Stop: the channel was queued for an app thread that will never take it; its requests
    /// are dropped and no thread owns it.
    #[inline]
    pub(crate) fn cancel_queued(&mut self) {
        self.queue.clear();
        self.running = false;
    }

    // --- The app thread ---

    /// The app thread's next request on the channel (it owns the channel: `running`). None
    /// when there is none, or the connection's last response is decided (what was queued
    /// behind it is dropped by `app_done`).
    #[inline]
    pub(crate) fn next_job(&mut self) -> Option<Box<Job>> {
        if self.last_response_decided() {
            return None;
        }
        self.queue.pop_front()
    }

    /// The app thread lets go of the channel (`next_job` gave None): nothing left queued, not
    /// running, active `now`. True when the loop must be told (`Ctx::notify_loop`): it asked
    /// (`notify_when_done`), the connection ends, or `clients_waiting` (asked last, only if
    /// none of these) says clients wait at `connection_limit`.
    #[inline]
    pub(crate) fn app_done(
        &mut self,
        now: Instant,
        clients_waiting: impl FnOnce() -> bool,
    ) -> bool {
        self.queue.clear();
        self.running = false;
        self.last_activity = now;
        let notify =
            self.notify_on_done || self.close_when_flushed || self.closed || clients_waiting();
        self.notify_on_done = false;
        notify
    }

    /// A new app call begins (tracked with `request_timeout` only: the watchdog is the one
    /// that reads `head_out`): nothing of its response is out yet.
    #[inline]
    pub(crate) fn response_begins(&mut self) {
        self.head_out = false;
    }

    /// The app thread is about to write some of its response: false if the watchdog already
    /// answered for the request (its writes fail as if the client had gone), else the
    /// response counts as started (a failure from now on can only cut).
    #[inline]
    pub(crate) fn start_output(&mut self) -> bool {
        if self.timed_out {
            return false;
        }
        self.head_out = true;
        true
    }

    /// No more requests on this connection: close once the output is sent; the requests
    /// queued behind are dropped.
    #[inline]
    pub(crate) fn no_more_requests(&mut self) {
        self.close_when_flushed = true;
        self.queue.clear();
    }

    /// Gathered output waits and no `GATHER_DELAY` timer is held for it: one is armed now,
    /// and the caller asks the loop for it (`Ctx::flush_soon`). False when one is armed
    /// already, or the channel is closed, or nothing is pending.
    #[inline]
    pub(crate) fn arm_flush(&mut self) -> bool {
        if self.flush_armed || self.closed || self.out.is_empty() {
            return false;
        }
        self.flush_armed = true;
        true
    }

    // --- Either side ---

    /// A send failed: nothing can be written any more (the client is gone or the socket
    /// failed).
    #[inline]
    pub(crate) fn send_failed(&mut self) {
        self.closed = true;
    }

    // --- The watchdog ---

    /// The running request outlived `request_timeout` and is answered for by the watchdog:
    /// the app thread's writes fail from now on, and the connection closes after the answer.
    #[inline]
    pub(crate) fn time_out(&mut self) {
        self.timed_out = true;
        self.no_more_requests();
    }
}

/// The interim response of RFC 9110 §15.2.1 (waitress sends it without headers): sent by the
/// loop when the channel is idle, else by the task before the response.
pub(crate) const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// A streamed response's writes after the first (which carries the head) are gathered in
/// memory up to this many bytes and sent together, instead of one send per chunk.
pub(crate) const GATHER_BYTES: u64 = 32 * 1024;
/// Gathered bytes wait at most this long when the app takes time to produce its next chunk:
/// the loop sends them then (see `Task::app_may_block`).
pub(crate) const GATHER_DELAY: std::time::Duration = std::time::Duration::from_millis(1);

/// Seconds since the epoch (error responses are rare: formatted on demand).
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A close-delimited body through its states: what closing does at each step
    /// (`resets_on_close`), and what the loop decides once the output is sent
    /// (`close_delimited_end`, which restores the normal close only after a complete body).
    #[test]
    fn a_close_delimited_body_resets_on_close_until_complete_and_ended() {
        #[derive(Clone, Copy, Debug)]
        enum Step {
            Begins,
            Complete,
            End,
        }
        use Step::*;
        // (steps, resets_on_close after them, what `close_delimited_end` gives next)
        let table: &[(&[Step], bool, Option<bool>)] = &[
            (&[], false, None),
            (&[Complete], false, None),
            (&[Begins], true, Some(false)),
            (&[Begins, End], true, Some(false)),
            (&[Begins, Complete], true, Some(true)),
            (&[Begins, Complete, End], false, None),
            (&[Begins, Complete, End, Complete], false, None),
            (&[Begins, Complete, Begins], true, Some(false)),
            (&[Begins, Complete, End, Begins], true, Some(false)),
        ];
        for (steps, resets, end) in table {
            let mut st = ChanState::new(OutBuf::new(0), Instant::now());
            for step in *steps {
                match step {
                    Begins => st.close_delimited_begins(),
                    Complete => st.close_delimited_complete(),
                    End => {
                        st.close_delimited_end();
                    }
                }
            }
            assert_eq!(st.resets_on_close(), *resets, "{steps:?}: resets on close");
            assert_eq!(st.close_delimited_end(), *end, "{steps:?}: end");
        }
    }
}

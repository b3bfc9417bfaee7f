//! The part of a connection shared by the loop and the app thread serving it: socket, pending
//! output, queued requests and flags, under one lock (`Shared`), the app threads' back-pressure
//! wait on it (`Shared::wait_for_reader`), plus the `Job` a request travels in and what both
//! sides may send (`CONTINUE`, gathered output's bounds).
use std::collections::VecDeque;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

use nix::sys::socket::{shutdown, Shutdown};

use super::lock::lock;
use super::outbuf::OutBuf;
use super::sock;
use crate::http::{Origin, OverflowableBuffer, Request};

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

/// The connection, as app threads see it.
pub(crate) struct Shared {
    /// Closed only when the last reference goes: app threads may be writing while the loop
    /// tears the channel down, so the loop shuts the socket down instead of closing it
    /// (no fd reuse race; waitress CVE-2022-31015).
    fd: OwnedFd,
    /// The loop's token for the connection (`event_loop::CHANNEL0` + its slot).
    pub(crate) token: usize,
    /// Everything else both sides change, under one lock (`lock`).
    st: Mutex<ChanState>,
    /// Signalled when output drains below the watermark or the channel closes
    /// (`wait_for_reader` waits on it).
    cv: Condvar,
    /// The client is gone (`mark_disconnected`): the app sees it through the WSGI bridge
    /// (`disconnected_flag`, waitress's `waitress.client_disconnected`).
    disconnected: Arc<AtomicBool>,
    /// The connection's origin (peer and listener), as the environ shows it.
    pub(crate) origin: Origin,
    /// `!st.out.is_empty()`, readable without the lock: the loop's writable events (epoll
    /// reports writability with every readable edge) skip the lock when nothing is pending,
    /// so they do not contend with an app thread in the middle of a send.
    has_output: AtomicBool,
}

impl Shared {
    /// A new connection on `fd` (loop token `token`, from `origin`) in state `st`: nothing
    /// pending, not disconnected.
    pub(crate) fn new(fd: OwnedFd, token: usize, st: ChanState, origin: Origin) -> Shared {
        Shared {
            fd,
            token,
            st: Mutex::new(st),
            cv: Condvar::new(),
            disconnected: Arc::new(AtomicBool::new(false)),
            origin,
            has_output: AtomicBool::new(false),
        }
    }

    #[inline]
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Locks the state both sides share (`ChanState`). The job queue's lock (`Ctx`) is never
    /// taken while this one is held.
    #[inline]
    pub(crate) fn lock(&self) -> MutexGuard<'_, ChanState> {
        lock(&self.st)
    }

    /// Output may be pending (`note_output`'s flag, read without the lock): false means
    /// nothing is, as long as the caller is the one that adds output (the app thread) or
    /// `note_output` tells the loop when it becomes true.
    #[inline]
    pub(crate) fn has_output(&self) -> bool {
        self.has_output.load(Ordering::Acquire)
    }

    /// The client is gone (its EOF, or the watchdog cut or answered for its request): the
    /// app's `disconnected_flag` turns true.
    #[inline]
    pub(crate) fn mark_disconnected(&self) {
        self.disconnected.store(true, Ordering::Release);
    }

    /// The flag the app polls to learn that its client is gone (`mark_disconnected`).
    pub(crate) fn disconnected_flag(&self) -> Arc<AtomicBool> {
        self.disconnected.clone()
    }
    /// Records whether output is pending; call with the lock held after touching `out`.
    /// True when output just became pending: an app thread must then tell the loop, which
    /// may have skipped a writable event while the flag was still false.
    pub(crate) fn note_output(&self, st: &ChanState) -> bool {
        let pending = !st.out.is_empty();
        // Called once per response: a plain load when the flag is already right (the usual
        // case: nothing left after a direct send) instead of a locked swap. Writers hold `st`.
        if self.has_output.load(Ordering::Acquire) == pending {
            return false;
        }
        self.has_output.store(pending, Ordering::Release);
        pending
    }

    /// The loop sent pending output (lock held): records whether some is left, and wakes the
    /// app threads waiting for it to drop to the watermark (`wait_for_reader`). Every flush that can lower `pending` must end here: a flush that
    /// drained the output without waking them left them waiting for a writable edge that no
    /// longer comes (nothing is pending, so the loop ignores it).
    pub(crate) fn flushed(&self, st: &ChanState, watermark: u64) {
        self.note_output(st);
        if st.out.pending() <= watermark {
            self.cv.notify_all();
        }
    }

    /// An app thread waits until the client has read below `watermark` (or the channel
    /// closed): back-pressure at `outbuf_high_watermark`, as waitress waits in `write_soon`
    /// and between pipelined requests. Returns at once, without a syscall, when the channel is
    /// not over the watermark. `send`: try to send the pending output before each wait (a
    /// response being written); else only the loop sends it (between requests).
    ///
    /// The wait counts as stalled: `stalled(true)` before the first wait and `stalled(false)`
    /// once it is over (`Ctx::stalled`), both called with `st` released, since the job queue's
    /// lock they take is never taken inside a channel's. The condition is checked again after
    /// each, under the returned lock.
    #[inline]
    pub(crate) fn wait_for_reader<'a>(
        &'a self,
        mut st: MutexGuard<'a, ChanState>,
        watermark: u64,
        send: bool,
        stalled: impl Fn(bool),
    ) -> MutexGuard<'a, ChanState> {
        let mut counted = false;
        while st.over_watermark(watermark) {
            if send {
                match st.out.flush(self.fd()) {
                    Ok(true) => break,
                    Ok(false) => {}
                    Err(_) => {
                        st.send_failed();
                        continue;
                    }
                }
            }
            if counted {
                st = self.cv.wait(st).unwrap_or_else(|e| e.into_inner());
            } else {
                counted = true;
                drop(st);
                stalled(true);
                st = lock(&self.st);
            }
        }
        if counted {
            drop(st);
            stalled(false);
            st = lock(&self.st);
        }
        st
    }

    /// Marks the channel closed and wakes blocked writers (loop teardown).
    pub(crate) fn mark_closed(&self) {
        let mut st = lock(&self.st);
        st.closed = true;
        st.queue.clear();
        st.out.clear();
        let reset = st.resets_on_close();
        self.has_output.store(false, Ordering::Release);
        drop(st);
        self.mark_disconnected();
        self.cv.notify_all();
        if reset {
            // A cut close-delimited body: a FIN would make it look complete.
            sock::reset_now(self.fd());
        } else {
            let _ = shutdown(self.fd.as_raw_fd(), Shutdown::Both);
        }
    }
}

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

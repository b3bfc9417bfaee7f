//! The part of a connection shared by the loop and the app thread serving it: socket, pending
//! output, queued requests and flags, under one lock (`Shared`), plus the `Job` a request
//! travels in and what both sides may send (`CONTINUE`, gathered output's bounds).
use std::collections::VecDeque;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use nix::sys::socket::{shutdown, Shutdown};

use super::lock::lock;
use super::outbuf::OutBuf;
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
pub(crate) struct ChanState {
    pub(crate) out: OutBuf,
    /// Complete requests not yet started, in arrival order.
    pub(crate) queue: VecDeque<Box<Job>>,
    /// An app thread owns the channel (running, or about to run, `queue`'s head).
    pub(crate) running: bool,
    /// The loop wants a notification when the channel stops running.
    pub(crate) notify_on_done: bool,
    /// Close once `out` is sent (error, `Connection: close`, HTTP/1.0 without keep-alive).
    pub(crate) close_when_flushed: bool,
    /// Nothing can be written any more (peer gone, socket error, or torn down by the loop).
    pub(crate) closed: bool,
    /// Last successful send or finished request (the loop tracks reads itself).
    pub(crate) last_activity: Instant,
    /// Some of the current response went out (or is queued): a failure can only cut.
    pub(crate) head_out: bool,
    /// The running request outlived `request_timeout` and was answered for (watchdog.rs):
    /// the app thread's writes fail as if the client had gone.
    pub(crate) timed_out: bool,
    /// Gathered output is waiting and the loop holds a `GATHER_DELAY` timer for it.
    pub(crate) flush_armed: bool,
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
    pub(crate) fd: OwnedFd,
    pub(crate) token: usize,
    pub(crate) st: Mutex<ChanState>,
    /// Signalled when output drains below the watermark or the channel closes.
    pub(crate) cv: Condvar,
    pub(crate) disconnected: Arc<AtomicBool>,
    pub(crate) origin: Origin,
    /// `!st.out.is_empty()`, readable without the lock: the loop's writable events (epoll
    /// reports writability with every readable edge) skip the lock when nothing is pending,
    /// so they do not contend with an app thread in the middle of a send.
    pub(crate) has_output: AtomicBool,
}

impl Shared {
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
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
    /// app threads waiting for it to drop to the watermark (in `Task::output`, and between
    /// pipelined requests). Every flush that can lower `pending` must end here: a flush that
    /// drained the output without waking them left them waiting for a writable edge that no
    /// longer comes (nothing is pending, so the loop ignores it).
    pub(crate) fn flushed(&self, st: &ChanState, watermark: u64) {
        self.note_output(st);
        if st.out.pending() <= watermark {
            self.cv.notify_all();
        }
    }

    /// Marks the channel closed and wakes blocked writers (loop teardown).
    pub(crate) fn mark_closed(&self) {
        let mut st = lock(&self.st);
        st.closed = true;
        st.queue.clear();
        st.out.clear();
        self.has_output.store(false, Ordering::Release);
        drop(st);
        self.disconnected.store(true, Ordering::Release);
        self.cv.notify_all();
        let _ = shutdown(self.fd.as_raw_fd(), Shutdown::Both);
    }
}

/// Seconds since the epoch (error responses are rare: formatted on demand).
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

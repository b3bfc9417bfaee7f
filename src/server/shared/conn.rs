//! `Shared`, the connection as app threads see it: its socket, the lock on its `ChanState`,
//! the flags read without that lock, and the app threads' back-pressure wait
//! (`wait_for_reader`). Part of `shared` (a child module: it reaches `ChanState`'s fields).
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use nix::sys::socket::{shutdown, Shutdown};

use super::super::lock::lock;
use super::super::sock;
use super::ChanState;
use crate::http::Origin;

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

//! The job queue, and its length published for readers without the `jobs` lock: only these
//! methods change the one or store the other, so the two cannot drift apart.
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::Shared;

/// Channels with runnable requests, in order (kept under the `jobs` lock).
#[derive(Default)]
pub(super) struct JobQueue(VecDeque<Arc<Shared>>);

/// The queue's length, stored under the `jobs` lock by every `JobQueue` change and read
/// without it (`Ctx::loop_policy`'s fast path).
#[derive(Default)]
pub(super) struct QueueLen(AtomicUsize);

impl QueueLen {
    /// The length last stored (without the lock: see `Ctx::loop_policy`).
    #[inline]
    pub(super) fn get(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

impl JobQueue {
    #[inline]
    pub(super) fn len(&self) -> usize {
        self.0.len()
    }

    #[inline]
    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Queues every channel of `batch` (emptied); returns the new length.
    #[inline]
    pub(super) fn append(&mut self, batch: &mut Vec<Arc<Shared>>, len: &QueueLen) -> usize {
        self.0.extend(batch.drain(..));
        let n = self.0.len();
        len.0.store(n, Ordering::Relaxed);
        n
    }

    /// The next channel, if any.
    #[inline]
    pub(super) fn pop(&mut self, len: &QueueLen) -> Option<Arc<Shared>> {
        let c = self.0.pop_front()?;
        len.0.store(self.0.len(), Ordering::Relaxed);
        Some(c)
    }

    /// Empties the queue: its channels, in order.
    pub(super) fn drain(
        &mut self,
        len: &QueueLen,
    ) -> std::collections::vec_deque::Drain<'_, Arc<Shared>> {
        len.0.store(0, Ordering::Relaxed);
        self.0.drain(..)
    }
}

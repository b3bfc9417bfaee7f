//! `Turns`: app threads starting a request take the GIL with a bound on how long any waits.
//!
//! CPython's GIL is not fair. A thread that releases it at the end of a request and picks up the
//! next task takes it straight back before the thread it just woke gets the CPU, and a waiter
//! only forces a switch after `sys.getswitchinterval()` (5 ms) *without any* switch, so with
//! `threads = 4` one waiter can starve for hundreds of milliseconds while two others pass the
//! GIL back and forth (measured: stream row p99 646 ms against 9.8 ms with `threads = 1`).
//!
//! Request starts queue behind a ticket, so exactly one app thread waits at the GIL at a time,
//! in arrival order. A thread coming back for its next request may still go first (no queue,
//! no context switch: strict turns cost ~1.8 switches per hello-world request) while the
//! waiting thread has waited less than `BARGE_LIMIT`; after that it queues like everyone else.
//! What the app does inside a request (releasing the GIL for I/O and taking it back) is
//! untouched.
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// How long the thread first in line may be passed by threads coming back for more work.
const BARGE_LIMIT: Duration = Duration::from_millis(1);

struct State {
    /// Next ticket to hand out.
    next: u64,
    /// Ticket whose holder may take the GIL now.
    serving: u64,
    /// Threads sleeping on `turn` (notify only when someone sleeps: no syscall otherwise).
    sleepers: usize,
    /// Since when the holder of `serving` has been first in line.
    front_since: Instant,
}

impl Default for State {
    fn default() -> State {
        State {
            next: 0,
            serving: 0,
            sleepers: 0,
            front_since: Instant::now(),
        }
    }
}

/// The ticket queue of one worker's app threads.
#[derive(Default)]
pub(crate) struct Turns {
    state: Mutex<State>,
    turn: Condvar,
}

/// A thread's turn; dropping it (once the GIL is held) lets the next thread in. `None` when
/// the thread went ahead of a waiting one (see `BARGE_LIMIT`).
pub(crate) struct Turn<'a>(Option<&'a Turns>);

impl Turns {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until every thread that asked earlier has taken the GIL, unless the first in
    /// line has waited less than `BARGE_LIMIT` (then returns at once, without a turn).
    pub(crate) fn wait(&self) -> Turn<'_> {
        let now = Instant::now();
        let mut s = self.lock();
        if s.next == s.serving {
            s.front_since = now;
        } else if now.saturating_duration_since(s.front_since) < BARGE_LIMIT {
            return Turn(None);
        }
        let mine = s.next;
        s.next = s.next.wrapping_add(1);
        while s.serving != mine {
            s.sleepers += 1;
            s = self.turn.wait(s).unwrap_or_else(PoisonError::into_inner);
            s.sleepers -= 1;
        }
        Turn(Some(self))
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        let Some(turns) = self.0 else { return };
        let mut s = turns.lock();
        s.serving = s.serving.wrapping_add(1);
        if s.next != s.serving {
            // A waiter is first in line now. With nobody waiting the time is not needed: the
            // next `wait` finds the queue empty and sets it (one clock reading per request).
            s.front_since = Instant::now();
        }
        if s.sleepers > 0 {
            drop(s);
            turns.turn.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Turns, BARGE_LIMIT};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    #[test]
    fn turns_are_served_in_the_order_they_were_asked_for() {
        let turns = Arc::new(Turns::default());
        let order = Arc::new(Mutex::new(Vec::new()));
        let asked = Arc::new(AtomicUsize::new(0));
        // The main thread holds the first turn while four threads queue up one after another
        // (it has waited past BARGE_LIMIT, so nobody may go ahead of it).
        let first = turns.wait();
        std::thread::sleep(BARGE_LIMIT * 2);
        let mut handles = Vec::new();
        for i in 0..4 {
            let (t, order, asked) = (turns.clone(), order.clone(), asked.clone());
            handles.push(std::thread::spawn(move || {
                asked.fetch_add(1, Ordering::SeqCst);
                let _t = t.wait();
                order.lock().unwrap().push(i);
            }));
            // Thread i has taken its ticket (it sleeps) before thread i + 1 starts.
            while turns.lock().sleepers < i + 1 {
                std::thread::yield_now();
            }
        }
        assert_eq!(asked.load(Ordering::SeqCst), 4);
        assert!(
            order.lock().unwrap().is_empty(),
            "nobody may pass the held turn"
        );
        drop(first);
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(*order.lock().unwrap(), vec![0, 1, 2, 3]);
    }

    #[test]
    fn a_thread_may_pass_a_waiter_only_within_the_barge_limit() {
        let turns = Turns::default();
        let first = turns.wait();
        assert!(first.0.is_some(), "nobody waiting: a real turn");
        // Within the limit a second thread goes ahead without a turn (no queue, no wait).
        assert!(turns.wait().0.is_none());
        std::thread::sleep(BARGE_LIMIT * 2);
        // Past it, a second thread must queue: it can only get a turn after `first` is done.
        std::thread::scope(|sc| {
            let h = sc.spawn(|| turns.wait().0.is_some());
            while turns.lock().sleepers == 0 {
                std::thread::yield_now();
            }
            drop(first);
            assert!(h.join().unwrap());
        });
    }
}

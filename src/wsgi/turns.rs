//! `Turns`: app threads starting a request take the GIL in the order they asked for it.
//!
//! CPython's GIL is not fair. A thread that releases it at the end of a request and picks up the
//! next task takes it straight back before the thread it just woke gets the CPU, and a waiter
//! only forces a switch after `sys.getswitchinterval()` (5 ms) *without any* switch, so with
//! `threads = 4` one waiter can starve for hundreds of milliseconds while two others pass the
//! GIL back and forth (measured: stream row p99 646 ms against 9.8 ms with `threads = 1`).
//! Queueing the request-start acquisitions behind one ticket lets exactly one app thread wait
//! at the GIL at a time, in arrival order; what the app does inside a request (releasing the
//! GIL for I/O and taking it back) is untouched.
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

#[derive(Default)]
struct State {
    /// Next ticket to hand out.
    next: u64,
    /// Ticket whose holder may take the GIL now.
    serving: u64,
    /// Threads sleeping on `turn` (notify only when someone sleeps: no syscall otherwise).
    sleepers: usize,
}

/// The ticket queue of one worker's app threads.
#[derive(Default)]
pub(crate) struct Turns {
    state: Mutex<State>,
    turn: Condvar,
}

/// A thread's turn; dropping it (once the GIL is held) lets the next thread in.
pub(crate) struct Turn<'a>(&'a Turns);

impl Turns {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until every thread that asked earlier has taken the GIL.
    pub(crate) fn wait(&self) -> Turn<'_> {
        let mut s = self.lock();
        let mine = s.next;
        s.next = s.next.wrapping_add(1);
        while s.serving != mine {
            s.sleepers += 1;
            s = self.turn.wait(s).unwrap_or_else(PoisonError::into_inner);
            s.sleepers -= 1;
        }
        Turn(self)
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        let mut s = self.0.lock();
        s.serving = s.serving.wrapping_add(1);
        if s.sleepers > 0 {
            drop(s);
            self.0.turn.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Turns;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    #[test]
    fn turns_are_served_in_the_order_they_were_asked_for() {
        let turns = Arc::new(Turns::default());
        let order = Arc::new(Mutex::new(Vec::new()));
        let asked = Arc::new(AtomicUsize::new(0));
        // The main thread holds the first turn while four threads queue up one after another.
        let first = turns.wait();
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
}

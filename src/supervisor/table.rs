//! The worker table (`WorkerTable`): the workers the master started (`Worker`), the respawns it
//! owes with each slot's crash backoff, and the slots failing at boot. The spawn, reap, respawn
//! and stop bookkeeping of children.rs, master.rs and reload.rs goes through its methods; the
//! decisions (what an exit means, when to retire, which generation serves) stay with them.
//!
//! A slot is (worker id, generation). A worker no longer fills its slot once it is retiring
//! (`Worker::retiring`: its replacement starts first, children.rs) or has been asked to stop
//! (its SIGKILL deadline is armed).
use std::collections::{HashMap, HashSet};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::lifecycle::Backoff;
use super::retire::Retire;
use super::{log_info, log_warn};

/// After an immediate stop (QUIT, second INT), workers get this long before SIGKILL.
const IMMEDIATE_GRACE: Duration = Duration::from_secs(2);
/// A worker not ready this long after its fork is reported (an app import that hangs leaves
/// clients waiting in the listen backlog with nothing in the log)...
/// helper.py's `SLOW_LOAD_SECONDS` is the same: the worker writes its Python stack then.
pub(super) const SLOW_BOOT_FIRST: Duration = Duration::from_secs(10);
/// ...and again this often while it stays so.
const SLOW_BOOT_EVERY: Duration = Duration::from_secs(60);

/// A worker process the master started: slot `id` of `generation`.
pub(super) struct Worker {
    id: usize,
    generation: u64,
    pid: Pid,
    ready: bool,
    /// Its status pipe (`R` = ready, retirement requests); None once it reached end of file.
    ready_fd: Option<OwnedFd>,
    spawned: Instant,
    /// Asked to stop: SIGKILL at this instant if still alive.
    kill_at: Option<Instant>,
    /// Asked to stop gracefully (TERM) or at once (QUIT) with this much time to finish, as
    /// opposed to killed outright (`kill_now`): a kill at its end cuts requests, and says so.
    grace: Option<Duration>,
    /// On its way out (retire.rs, children.rs): stopped once its replacement is ready.
    retiring: Option<Retire>,
    /// When it is reported as slow to boot if it is still not ready (`slow_boots`).
    slow_boot_at: Instant,
    /// Already above `max_worker_memory` when it became ready: never retired for memory (its
    /// replacement would be too, a worker replaced every second).
    memory_exempt: bool,
}

impl Worker {
    /// A worker just forked, with the read end of its status pipe.
    pub(super) fn new(id: usize, generation: u64, pid: Pid, ready_fd: OwnedFd) -> Worker {
        let spawned = Instant::now();
        Worker {
            id,
            generation,
            pid,
            ready: false,
            ready_fd: Some(ready_fd),
            spawned,
            kill_at: None,
            grace: None,
            retiring: None,
            slow_boot_at: spawned + SLOW_BOOT_FIRST,
            memory_exempt: false,
        }
    }

    pub(super) fn id(&self) -> usize {
        self.id
    }

    pub(super) fn generation(&self) -> u64 {
        self.generation
    }

    pub(super) fn pid(&self) -> Pid {
        self.pid
    }

    /// It has reported ready (app loaded, server built).
    pub(super) fn was_ready(&self) -> bool {
        self.ready
    }

    /// The master asked it to stop (its SIGKILL deadline is armed).
    pub(super) fn asked_to_stop(&self) -> bool {
        self.kill_at.is_some()
    }

    /// Why it is being retired, if it is.
    pub(super) fn retiring(&self) -> Option<Retire> {
        self.retiring
    }

    /// How long since it was forked.
    pub(super) fn lived(&self) -> Duration {
        self.spawned.elapsed()
    }

    /// Retiring or asked to stop.
    fn leaving(&self) -> bool {
        self.retiring.is_some() || self.kill_at.is_some()
    }

    /// Asks it to stop (TERM: graceful, QUIT: now) and arms its SIGKILL deadline.
    fn stop(&mut self, immediate: bool, grace: Duration) {
        let (sig, grace) = if immediate {
            (Signal::SIGQUIT, IMMEDIATE_GRACE)
        } else {
            (Signal::SIGTERM, grace)
        };
        let _ = kill(self.pid, sig);
        let at = crate::time::later(Instant::now(), grace);
        self.kill_at = Some(self.kill_at.map_or(at, |k| k.min(at)));
        self.grace = Some(self.grace.map_or(grace, |g| g.min(grace)));
    }

    /// SIGKILL now (nothing to drain).
    fn kill_now(&mut self) {
        let _ = kill(self.pid, Signal::SIGKILL);
        self.kill_at = Some(Instant::now());
        self.grace = None;
    }
}

/// The master's workers and the respawns it owes; the loop (master.rs) owns it.
#[derive(Default)]
pub(super) struct WorkerTable {
    /// Live workers, in spawn order (indices are stable within one turn of the loop: only
    /// reaping removes).
    workers: Vec<Worker>,
    /// (worker id, generation, when).
    respawns: Vec<(usize, u64, Instant)>,
    /// Crash backoff per worker id.
    backoff: HashMap<usize, Backoff>,
    /// Slots (id, generation) whose last start failed at boot; retried with backoff.
    boot_failing: HashSet<(usize, u64)>,
    /// The last generation a worker of which was found above `max_worker_memory` as it became
    /// ready (warned about once per generation).
    memory_warned: Option<u64>,
}

impl WorkerTable {
    /// No worker is alive.
    pub(super) fn is_empty(&self) -> bool {
        self.workers.is_empty()
    }

    /// A worker just forked.
    pub(super) fn add(&mut self, w: Worker) {
        self.workers.push(w);
    }

    /// Removes the reaped worker `pid` (None: not one of ours).
    pub(super) fn take_by_pid(&mut self, pid: Pid) -> Option<Worker> {
        let i = self.workers.iter().position(|w| w.pid == pid)?;
        Some(self.workers.remove(i))
    }

    /// The nearest SIGKILL deadline or due respawn.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        let kills = self.workers.iter().filter_map(|w| w.kill_at);
        kills.chain(self.respawns.iter().map(|r| r.2)).min()
    }

    /// (index, status pipe) of every worker whose pipe is still open: polled by the loop,
    /// closed in every forked child.
    pub(super) fn status_fds(&self) -> impl Iterator<Item = (usize, BorrowedFd<'_>)> {
        self.workers
            .iter()
            .enumerate()
            .filter_map(|(i, w)| w.ready_fd.as_ref().map(|f| (i, f.as_fd())))
    }

    /// Reads what worker `i`'s status pipe holds into `buf`; at end of file (it is exiting,
    /// CHLD follows) the pipe is closed. Returns the bytes read (none on end of file or error).
    pub(super) fn read_status<'b>(&mut self, i: usize, buf: &'b mut [u8]) -> &'b [u8] {
        let w = &mut self.workers[i];
        let got = match &w.ready_fd {
            Some(fd) => nix::unistd::read(fd.as_fd(), buf),
            None => return &[],
        };
        match got {
            Ok(0) => {
                w.ready_fd = None;
                &[]
            }
            Ok(n) => &buf[..n],
            Err(_) => &[],
        }
    }

    /// Worker `i` reported ready; None if it already had.
    pub(super) fn mark_ready(&mut self, i: usize) -> Option<&Worker> {
        let w = &mut self.workers[i];
        if w.ready {
            return None;
        }
        w.ready = true;
        Some(w)
    }

    /// Worker `i` is to be retired for `why`; None if it is already on its way out.
    pub(super) fn mark_retiring(&mut self, i: usize, why: Retire) -> Option<&Worker> {
        let w = &mut self.workers[i];
        if w.leaving() {
            return None;
        }
        w.retiring = Some(why);
        Some(w)
    }

    /// Workers of `generation` that are ready.
    pub(super) fn ready_count(&self, generation: u64) -> usize {
        self.workers
            .iter()
            .filter(|w| w.generation == generation && w.ready)
            .count()
    }

    /// Workers of `generation` that are ready and not asked to stop.
    pub(super) fn serving_count(&self, generation: u64) -> usize {
        self.workers
            .iter()
            .filter(|w| w.generation == generation && w.ready && w.kill_at.is_none())
            .count()
    }

    /// True if slot (`id`, `generation`) has a live worker that is not on its way out.
    pub(super) fn slot_filled(&self, id: usize, generation: u64) -> bool {
        self.workers
            .iter()
            .any(|w| w.id == id && w.generation == generation && !w.leaving())
    }

    /// (index, pid) of the ready workers not on their way out (`max_worker_memory` checks).
    pub(super) fn memory_candidates(&self) -> Vec<(usize, Pid)> {
        self.workers
            .iter()
            .enumerate()
            .filter(|(_, w)| w.ready && !w.leaving() && !w.memory_exempt)
            .map(|(i, w)| (i, w.pid))
            .collect()
    }

    /// Worker `i` was above `max_worker_memory` as it became ready: it is not retired for
    /// memory. True the first time for its generation (warn then).
    pub(super) fn exempt_from_memory(&mut self, i: usize) -> bool {
        let w = &mut self.workers[i];
        w.memory_exempt = true;
        let first = self.memory_warned != Some(w.generation);
        self.memory_warned = Some(w.generation);
        first
    }

    /// Sends `sig` to every worker.
    pub(super) fn signal_all(&self, sig: Signal) {
        for w in &self.workers {
            let _ = kill(w.pid, sig);
        }
    }

    /// Workers still not ready whose slow-boot report is due at `now` (then next due
    /// `SLOW_BOOT_EVERY` later): (id, pid, time since the fork).
    pub(super) fn slow_boots(&mut self, now: Instant) -> Vec<(usize, Pid, Duration)> {
        let mut due = Vec::new();
        for w in &mut self.workers {
            if !w.ready && !w.leaving() && w.slow_boot_at <= now {
                w.slow_boot_at = now + SLOW_BOOT_EVERY;
                due.push((w.id, w.pid, now.saturating_duration_since(w.spawned)));
            }
        }
        due
    }

    /// SIGKILLs the workers past their deadline (once: the next try is an hour away).
    pub(super) fn kill_overdue(&mut self, now: Instant) {
        for w in &mut self.workers {
            if w.kill_at.is_some_and(|k| k <= now) {
                let _ = kill(w.pid, Signal::SIGKILL);
                w.kill_at = Some(now + Duration::from_secs(3600));
                if let Some(grace) = w.grace.take() {
                    log_warn(&format!(
                        "worker {} (pid {}): still serving {} s after it was asked to stop: \
                         killed, cutting the requests it was serving (raise graceful_timeout \
                         if they may take that long)",
                        w.id,
                        w.pid,
                        grace.as_secs_f64()
                    ));
                }
            }
        }
    }

    /// The retiring workers of slot (`id`, `generation`) not yet asked to stop: their
    /// replacement is ready, they stop gracefully now.
    pub(super) fn stop_replaced(&mut self, id: usize, generation: u64, grace: Duration) {
        for w in self.workers.iter_mut().filter(|w| {
            w.id == id && w.generation == generation && w.retiring.is_some() && w.kill_at.is_none()
        }) {
            log_info(&format!(
                "worker {id} (pid {}): replacement ready, stopping gracefully",
                w.pid
            ));
            w.stop(false, grace);
        }
    }

    /// TTOU: stops the workers of slot (`id`, `generation`) gracefully and drops its respawn.
    pub(super) fn stop_slot(&mut self, id: usize, generation: u64, grace: Duration) {
        for w in self
            .workers
            .iter_mut()
            .filter(|w| w.generation == generation && w.id == id)
        {
            w.stop(false, grace);
        }
        self.respawns.retain(|r| !(r.1 == generation && r.0 == id));
    }

    /// A reload committed: the old `generation`'s workers stop gracefully, none respawns.
    pub(super) fn stop_generation(&mut self, generation: u64, grace: Duration) {
        for w in self
            .workers
            .iter_mut()
            .filter(|w| w.generation == generation)
        {
            w.stop(false, grace);
        }
        self.respawns.retain(|r| r.1 != generation);
    }

    /// A reload abandoned: the new `generation`'s workers are killed, none respawns, and its
    /// boot failures are forgotten.
    pub(super) fn abandon_generation(&mut self, generation: u64) {
        for w in self
            .workers
            .iter_mut()
            .filter(|w| w.generation == generation)
        {
            w.kill_now();
        }
        self.respawns.retain(|r| r.1 != generation);
        self.boot_failing.retain(|s| s.1 != generation);
    }

    /// The master stops: no more respawns; workers that never got ready are killed (nothing
    /// to drain), the others asked to stop (again, with QUIT, if `immediate`).
    pub(super) fn stop_all(&mut self, immediate: bool, grace: Duration) {
        self.respawns.clear();
        for w in &mut self.workers {
            if !w.ready {
                w.kill_now();
            } else if immediate || w.kill_at.is_none() {
                w.stop(immediate, grace);
            }
        }
    }

    /// Slot (`id`, `generation`) is started again at `at`.
    pub(super) fn respawn_at(&mut self, id: usize, generation: u64, at: Instant) {
        self.respawns.push((id, generation, at));
    }

    /// A respawn of slot (`id`, `generation`) is due.
    pub(super) fn respawn_pending(&self, id: usize, generation: u64) -> bool {
        self.respawns.iter().any(|r| r.0 == id && r.1 == generation)
    }

    /// Removes and returns the slots whose respawn is due at `now`.
    pub(super) fn take_due_respawns(&mut self, now: Instant) -> Vec<(usize, u64)> {
        let (due, later): (Vec<_>, Vec<_>) = self.respawns.drain(..).partition(|r| r.2 <= now);
        self.respawns = later;
        due.into_iter().map(|(id, g, _)| (id, g)).collect()
    }

    /// Worker `id` of `generation` crashed after `lived`: its respawn is due after the
    /// slot's backoff delay, which is returned.
    pub(super) fn note_crash(&mut self, id: usize, generation: u64, lived: Duration) -> Duration {
        let delay = self.backoff.entry(id).or_default().on_crash(lived);
        self.respawns.push((id, generation, Instant::now() + delay));
        delay
    }

    /// Slot (`id`, `generation`) failed at boot (and is retried).
    pub(super) fn note_boot_failure(&mut self, id: usize, generation: u64) {
        self.boot_failing.insert((id, generation));
    }

    /// Slot (`id`, `generation`) became ready; true if it had been failing at boot.
    pub(super) fn boot_recovered(&mut self, id: usize, generation: u64) -> bool {
        self.boot_failing.remove(&(id, generation))
    }

    /// Slots failing at boot.
    pub(super) fn failing_boot(&self) -> usize {
        self.boot_failing.len()
    }

    /// A reload to `generation` committed: backoff starts over and only that generation's
    /// boot failures still count.
    pub(super) fn generation_committed(&mut self, generation: u64) {
        self.backoff.clear();
        self.boot_failing.retain(|s| s.1 == generation);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn respawns_are_owed_per_slot_until_due_or_dropped() {
        let mut t = WorkerTable::default();
        let now = Instant::now();
        let later = now + Duration::from_secs(5);
        t.respawn_at(1, 1, now);
        t.respawn_at(2, 1, later);
        t.respawn_at(1, 2, now);
        assert_eq!(t.next_deadline(), Some(now));
        assert!(t.respawn_pending(2, 1) && !t.respawn_pending(2, 2));
        assert_eq!(t.take_due_respawns(now), vec![(1, 1), (1, 2)]);
        assert_eq!(t.next_deadline(), Some(later));
        // TTOU drops its slot's respawn; a committed reload drops the old generation's.
        t.stop_slot(2, 1, Duration::ZERO);
        assert!(!t.respawn_pending(2, 1));
        t.respawn_at(3, 1, now);
        t.respawn_at(3, 2, now);
        t.stop_generation(1, Duration::ZERO);
        assert!(!t.respawn_pending(3, 1) && t.respawn_pending(3, 2));
        t.stop_all(false, Duration::ZERO);
        assert_eq!(t.next_deadline(), None);
        assert!(t.is_empty());
    }

    #[test]
    fn crashes_back_off_per_slot_until_a_reload_commits() {
        let mut t = WorkerTable::default();
        let quick = Duration::from_millis(1);
        assert_eq!(t.note_crash(1, 1, quick), Duration::ZERO);
        assert!(t.note_crash(1, 1, quick) > Duration::ZERO);
        assert_eq!(t.note_crash(2, 1, quick), Duration::ZERO, "per worker id");
        assert!(t.respawn_pending(1, 1) && t.respawn_pending(2, 1));
        t.generation_committed(2);
        assert_eq!(t.note_crash(1, 2, quick), Duration::ZERO, "starts over");
    }

    #[test]
    fn boot_failures_count_until_recovered_committed_away_or_abandoned() {
        let mut t = WorkerTable::default();
        t.note_boot_failure(1, 1);
        t.note_boot_failure(2, 1);
        t.note_boot_failure(1, 2);
        assert_eq!(t.failing_boot(), 3);
        assert!(t.boot_recovered(2, 1) && !t.boot_recovered(2, 1));
        t.abandon_generation(2);
        assert_eq!(t.failing_boot(), 1);
        t.note_boot_failure(1, 2);
        t.generation_committed(2);
        assert_eq!(t.failing_boot(), 1);
        assert!(t.boot_recovered(1, 2));
        assert_eq!(t.failing_boot(), 0);
    }
}

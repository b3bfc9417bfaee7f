//! Retirement: a worker that must go while healthy work is still in it (`max_requests`
//! reached, a request stuck past `request_timeout`, RSS over `max_worker_memory`) is replaced
//! first: the master starts a worker for the same slot, and only once that one is ready asks
//! the old one to stop gracefully (it finishes what it has within `graceful_timeout`, then is
//! killed). `Worker::retiring` is the one notion of "on its way out" the master keeps, for
//! logs, status and readiness reporting alike.
use std::time::Duration;

use super::master::{stop_worker, Master, Phase};
use super::{log_info, log_warn};

/// Why a worker is retired. Workers ask over their status pipe with `byte()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retire {
    /// It served `max_requests` (+ jitter) requests.
    MaxRequests,
    /// A request outlived `request_timeout` and did not return when interrupted.
    StuckRequest,
    /// Its resident memory (bytes) exceeded `max_worker_memory`.
    Memory(u64),
}

impl Retire {
    /// The status-pipe byte a worker sends to ask for this (None: decided by the master).
    pub fn byte(self) -> Option<u8> {
        match self {
            Retire::MaxRequests => Some(b'M'),
            Retire::StuckRequest => Some(b'T'),
            Retire::Memory(_) => None,
        }
    }

    pub fn from_byte(b: u8) -> Option<Retire> {
        [Retire::MaxRequests, Retire::StuckRequest]
            .into_iter()
            .find(|r| r.byte() == Some(b))
    }
}

impl std::fmt::Display for Retire {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Retire::MaxRequests => f.write_str("max_requests reached"),
            Retire::StuckRequest => f.write_str("a request is stuck past request_timeout"),
            Retire::Memory(rss) => write!(
                f,
                "resident memory {rss} bytes ({} MiB) exceeds max_worker_memory",
                rss / (1024 * 1024)
            ),
        }
    }
}

impl Master {
    /// Retires worker `i` for `why`: a replacement for its slot starts now (unless one is
    /// already booting or due), and the worker is stopped gracefully once it is ready.
    pub(super) fn retire(&mut self, i: usize, why: Retire) {
        if matches!(self.phase, Phase::Stopping { .. }) {
            return;
        }
        let w = &mut self.workers[i];
        if w.retiring.is_some() || w.kill_at.is_some() {
            return; // already on its way out
        }
        w.retiring = Some(why);
        let (id, generation) = (w.id, w.generation);
        let msg = format!("worker {id} (pid {}): retiring: {why}", w.pid);
        match why {
            Retire::MaxRequests => log_info(&msg),
            _ => log_warn(&msg),
        }
        let due = self.respawns.iter().any(|r| r.0 == id && r.1 == generation);
        if !self.slot_filled(id, generation) && !due {
            self.spawn(id, generation);
        }
    }

    /// A worker of slot (`id`, `generation`) became ready: the workers it replaces stop
    /// gracefully now.
    pub(super) fn replacement_ready(&mut self, id: usize, generation: u64) {
        let grace = Duration::from_secs(self.settings.graceful_timeout);
        for w in self.workers.iter_mut().filter(|w| {
            w.id == id && w.generation == generation && w.retiring.is_some() && w.kill_at.is_none()
        }) {
            log_info(&format!(
                "worker {id} (pid {}): replacement ready, stopping gracefully",
                w.pid
            ));
            stop_worker(w, false, grace);
        }
    }

    /// `max_worker_memory` (about once a second): retires the serving workers whose resident
    /// memory exceeds it (uWSGI's `reload-on-rss`, but graceful).
    pub(super) fn check_memory(&mut self) {
        let limit = self.settings.max_worker_memory;
        if limit == 0 {
            return;
        }
        for i in 0..self.workers.len() {
            let w = &self.workers[i];
            if !w.ready || w.retiring.is_some() || w.kill_at.is_some() {
                continue;
            }
            match rss(w.pid.as_raw()) {
                Some(bytes) if bytes > limit => self.retire(i, Retire::Memory(bytes)),
                _ => {}
            }
        }
    }

    /// True if slot (`id`, `generation`) has a live worker that is not on its way out.
    pub(super) fn slot_filled(&self, id: usize, generation: u64) -> bool {
        self.workers.iter().any(|w| {
            w.id == id && w.generation == generation && w.retiring.is_none() && w.kill_at.is_none()
        })
    }
}

/// Resident memory of a process in bytes (`VmRSS` in /proc/PID/status), None if it is gone.
pub fn rss(pid: i32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb.saturating_mul(1024))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rss_of_this_process_is_plausible() {
        let me = rss(std::process::id() as i32).unwrap();
        assert!(me > 1 << 20 && me < 1 << 40, "{me}");
        assert_eq!(rss(i32::MAX), None);
    }

    #[test]
    fn status_bytes_round_trip() {
        for r in [Retire::MaxRequests, Retire::StuckRequest] {
            assert_eq!(Retire::from_byte(r.byte().unwrap()), Some(r));
        }
        assert_eq!(Retire::from_byte(b'R'), None); // READY is not a retirement
        assert_eq!(Retire::Memory(1).byte(), None);
    }
}

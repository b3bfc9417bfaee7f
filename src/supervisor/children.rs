//! The master's children as processes: fork one (with its generation's settings and sockets),
//! reap the dead, decide what an exit means (lifecycle.rs) and respawn with backoff, fire the
//! timers (SIGKILL deadlines, reload deadline, due respawns), and retire (why: retire.rs).
//!
//! Retirement: a worker that must go while healthy work is still in it is replaced first: the
//! master starts a worker for the same slot, and only once that one is ready asks the old one
//! to stop gracefully (it finishes what it has within `graceful_timeout`, then is killed).
//! `Worker::retiring` is the one notion of "on its way out" the master keeps, for logs, status
//! and readiness reporting alike.
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::lifecycle::{on_exit, ExitAction, ExitFacts};
use super::retire::{rss, Retire};
use super::spawn;
use super::state::{stop_worker, Master, Phase, Worker};
use super::worker::WorkerStart;
use super::{log_error, log_info, log_warn};

/// A spawn that failed (sharing the sockets, or fork itself) is tried again after this long.
const SPAWN_RETRY: Duration = Duration::from_secs(1);

impl Master {
    /// Forks worker `id` of `generation` with that generation's settings and sockets.
    pub(super) fn spawn(&mut self, id: usize, generation: u64) {
        let (settings, listeners, identity, tls) = match &self.phase {
            Phase::Reloading(p) if p.generation == generation => {
                (&p.settings, &p.listeners, &p.identity, &p.tls)
            }
            _ => (&self.settings, &self.listeners, &self.identity, &self.tls),
        };
        let mut close: Vec<RawFd> = vec![self.sigfd.as_raw_fd()];
        close.extend(
            self.workers
                .iter()
                .filter_map(|w| w.ready_fd.as_ref().map(|f| f.as_raw_fd())),
        );
        close.extend(self.listeners.raw_fds());
        if let Phase::Reloading(p) = &self.phase {
            close.extend(p.listeners.raw_fds());
        }
        close.extend(self.daemon.raw_fd());
        if let Some(s) = &self.status {
            close.extend(s.raw_fds());
        }
        let slot = self.status.as_mut().and_then(|s| s.take_slot());
        let socks = match listeners.for_worker() {
            Ok(s) => s,
            Err(e) => {
                log_error(&format!("cannot share listeners with worker {id}: {e}"));
                self.respawns
                    .push((id, generation, Instant::now() + SPAWN_RETRY));
                return;
            }
        };
        let start = WorkerStart {
            id,
            generation,
            settings: settings.clone(),
            listeners: socks,
            identity: identity.clone(),
            master: Pid::from_raw(self.pid),
            ready: None,
            preloaded: self.preloaded.clone(),
            // waitress's "Serving on" comes once, from the first worker of the first start,
            // once it has loaded the app.
            announce: !self.booted && generation == 1 && id == 1,
            metrics: slot.map(|s| s.1),
            tls: tls.clone(),
        };
        let body = self.body;
        let preload = self.preloaded.is_some();
        if preload {
            // CPython's fork protocol: GIL and interpreter locks taken around fork(2).
            crate::wsgi::before_fork();
        }
        let spawned = spawn::spawn_worker(&close, move |ready| body(start.with_ready(ready)));
        if preload {
            crate::wsgi::after_fork_parent();
        }
        match spawned {
            Ok(s) => {
                if let (Some(st), Some((i, _))) = (&mut self.status, slot) {
                    st.spawned(id, s.pid, i);
                }
                log_info(&format!(
                    "worker {id} (pid {}): started, generation {generation}",
                    s.pid
                ));
                self.workers.push(Worker {
                    id,
                    generation,
                    pid: s.pid,
                    ready: false,
                    ready_fd: Some(s.ready),
                    spawned: Instant::now(),
                    kill_at: None,
                    retiring: None,
                });
            }
            Err(e) => {
                if let (Some(st), Some((i, _))) = (&mut self.status, slot) {
                    st.return_slot(i);
                }
                log_error(&format!("fork of worker {id} failed: {e}"));
                self.respawns
                    .push((id, generation, Instant::now() + SPAWN_RETRY));
            }
        }
    }

    pub(super) fn reap(&mut self) {
        loop {
            let (pid, code) = match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => (pid, Some(code)),
                Ok(WaitStatus::Signaled(pid, _, _)) => (pid, None),
                Ok(WaitStatus::StillAlive) => return,
                Ok(_) => continue,
                Err(nix::Error::EINTR) => continue,
                Err(_) => return,
            };
            let Some(i) = self.workers.iter().position(|w| w.pid == pid) else {
                let how = match code {
                    Some(c) => format!("exit code {c}"),
                    None => "killed by a signal".to_string(),
                };
                self.upgrade_exited(pid, &how);
                continue;
            };
            let w = self.workers.remove(i);
            self.worker_exited(w, code);
        }
    }

    pub(super) fn worker_exited(&mut self, w: Worker, code: Option<i32>) {
        let how = match code {
            Some(c) => format!("exit code {c}"),
            None => "killed by a signal".to_string(),
        };
        let reload_pending =
            matches!(&self.phase, Phase::Reloading(p) if p.generation == w.generation);
        let serving = match &self.phase {
            Phase::Reloading(p) if p.generation == w.generation => p.serving,
            _ => w.generation == self.generation && self.serving,
        };
        let facts = ExitFacts {
            expected: w.kill_at.is_some() || matches!(self.phase, Phase::Stopping { .. }),
            ever_ready: w.ready,
            reload_pending,
            serving,
            code,
        };
        if facts.expected {
            log_info(&format!("worker {} (pid {}): exited ({how})", w.id, w.pid));
        } else {
            log_error(&format!(
                "worker {} (pid {}): died unexpectedly ({how})",
                w.id, w.pid
            ));
        }
        if let Some(st) = &mut self.status {
            st.exited(w.pid, restart_reason(&facts, &self.phase, w.retiring));
        }
        let action = on_exit(facts);
        match action {
            ExitAction::Forget => {}
            ExitAction::Respawn | ExitAction::RetryBoot => {
                let current = w.generation == self.generation && w.id <= self.target;
                // A retiring worker's replacement may already fill the slot.
                if (current || reload_pending) && !self.slot_filled(w.id, w.generation) {
                    let delay = self
                        .backoff
                        .entry(w.id)
                        .or_default()
                        .on_crash(w.spawned.elapsed());
                    self.respawns
                        .push((w.id, w.generation, Instant::now() + delay));
                    if action == ExitAction::RetryBoot {
                        self.boot_failing.insert((w.id, w.generation));
                        log_error(&format!(
                            "worker {} failed to boot ({how}) while the others serve; \
                             retrying in {:.1} s (fix the code or config on disk: it recovers \
                             by itself)",
                            w.id,
                            delay.as_secs_f64()
                        ));
                        self.notifier.status(&self.status());
                    }
                }
            }
            ExitAction::AbortReload => {
                self.abort_reload(&format!("new worker {} failed to boot ({how})", w.id))
            }
            ExitAction::Halt(c) => {
                log_error(&format!("worker {} failed to boot ({how}); stopping", w.id));
                self.exit_code = c;
                self.begin_stop(false);
            }
        }
    }

    pub(super) fn timers(&mut self) {
        let now = Instant::now();
        for w in &mut self.workers {
            if w.kill_at.is_some_and(|k| k <= now) {
                let _ = kill(w.pid, Signal::SIGKILL);
                w.kill_at = Some(now + Duration::from_secs(3600));
            }
        }
        if matches!(&self.phase, Phase::Reloading(p) if p.deadline <= now) {
            self.abort_reload("new workers were not ready in time");
        }
        let (due, later): (Vec<_>, Vec<_>) = self.respawns.drain(..).partition(|r| r.2 <= now);
        self.respawns = later;
        for (id, generation, _) in due {
            let wanted = match &self.phase {
                Phase::Running => generation == self.generation && id <= self.target,
                Phase::Reloading(p) => generation == p.generation || generation == self.generation,
                Phase::Stopping { .. } => false,
            };
            if wanted && !self.slot_filled(id, generation) {
                self.spawn(id, generation);
            }
        }
    }

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

/// Why a worker's exit counts as a restart on `/metrics` (None: the server is stopping).
fn restart_reason(f: &ExitFacts, phase: &Phase, retiring: Option<Retire>) -> Option<&'static str> {
    match (f.expected, f.code) {
        _ if matches!(phase, Phase::Stopping { .. }) => None,
        _ if retiring.is_some() => Some(match retiring {
            Some(Retire::MaxRequests) => "max_requests",
            Some(Retire::StuckRequest) => "request_timeout",
            _ => "max_worker_memory",
        }),
        (true, _) => Some("stopped"),
        (false, Some(_)) => Some("exited"),
        (false, None) => Some("signal"),
    }
}

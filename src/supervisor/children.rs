//! The master's children as processes: fork one (with its generation's settings and sockets),
//! reap the dead, decide what an exit means (lifecycle.rs) and respawn with backoff, fire the
//! timers (SIGKILL deadlines, reload deadline, due respawns), and retire (why: retire.rs).
//! What it decides is recorded in the worker table (table.rs).
//!
//! Retirement: a worker that must go while healthy work is still in it is replaced first: the
//! master starts a worker for the same slot, and only once that one is ready asks the old one
//! to stop gracefully (it finishes what it has within `graceful_timeout`, then is killed).
//! `Worker::retiring` is the one notion of "on its way out" the master keeps, for logs, status
//! and readiness reporting alike.
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::lifecycle::{on_exit, ExitAction, ExitFacts};
use super::retire::{rss, Retire};
use super::spawn;
use super::state::{Master, Phase};
use super::table::Worker;
use super::worker::WorkerStart;
use super::{log_error, log_info, log_warn};

/// A spawn that failed (sharing the sockets, or fork itself) is tried again after this long.
const SPAWN_RETRY: Duration = Duration::from_secs(1);

impl Master {
    /// Forks worker `id` of `generation` with that generation's settings and sockets.
    pub(super) fn spawn(&mut self, id: usize, generation: u64) {
        let (settings, listeners, identity, tls) = match &self.phase {
            Phase::Reloading(p) if p.generation() == generation => p.config(),
            _ => (&self.settings, &self.listeners, &self.identity, &self.tls),
        };
        let mut close: Vec<RawFd> = vec![self.sigfd.as_raw_fd()];
        close.extend(self.workers.status_fds().map(|(_, f)| f.as_raw_fd()));
        close.extend(self.listeners.raw_fds());
        if let Phase::Reloading(p) = &self.phase {
            close.extend(p.listeners().raw_fds());
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
                self.workers
                    .respawn_at(id, generation, Instant::now() + SPAWN_RETRY);
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
                self.workers
                    .add(Worker::new(id, generation, s.pid, s.ready));
            }
            Err(e) => {
                if let (Some(st), Some((i, _))) = (&mut self.status, slot) {
                    st.return_slot(i);
                }
                log_error(&format!("fork of worker {id} failed: {e}"));
                self.workers
                    .respawn_at(id, generation, Instant::now() + SPAWN_RETRY);
            }
        }
    }

    pub(super) fn reap(&mut self) {
        loop {
            let (pid, code, signal) = match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => (pid, Some(code), None),
                Ok(WaitStatus::Signaled(pid, sig, _)) => (pid, None, Some(sig)),
                Ok(WaitStatus::StillAlive) => return,
                Ok(_) => continue,
                Err(nix::Error::EINTR) => continue,
                Err(_) => return,
            };
            let Some(w) = self.workers.take_by_pid(pid) else {
                self.upgrade_exited(pid, &how_it_ended(code, signal));
                continue;
            };
            self.worker_exited(w, code, signal);
        }
    }

    pub(super) fn worker_exited(&mut self, w: Worker, code: Option<i32>, signal: Option<Signal>) {
        let how = how_it_ended(code, signal);
        let (id, generation, pid) = (w.id(), w.generation(), w.pid());
        let reload_pending =
            matches!(&self.phase, Phase::Reloading(p) if p.generation() == generation);
        let serving = match &self.phase {
            Phase::Reloading(p) if p.generation() == generation => p.serving(),
            _ => generation == self.generation && self.serving,
        };
        let facts = ExitFacts {
            expected: w.asked_to_stop() || matches!(self.phase, Phase::Stopping { .. }),
            ever_ready: w.was_ready(),
            reload_pending,
            serving,
            code,
            crashed: signal.is_some_and(crash_signal),
        };
        if facts.expected {
            log_info(&format!("worker {id} (pid {pid}): exited ({how})"));
        } else if facts.ever_ready && code == Some(0) {
            // A worker stops cleanly only when told to: a TERM or INT sent to it from
            // outside (gunicorn's way to recycle one worker by hand). Replaced as usual.
            log_warn(&format!(
                "worker {id} (pid {pid}): exited with code 0 without the master asking (a \
                 TERM or INT sent to it, or os._exit(0) in the app); starting a replacement"
            ));
        } else {
            log_error(&format!(
                "worker {id} (pid {pid}): died unexpectedly ({how})"
            ));
        }
        if let Some(st) = &mut self.status {
            st.exited(pid, restart_reason(&facts, &self.phase, w.retiring()));
        }
        let action = on_exit(facts);
        match action {
            ExitAction::Forget => {}
            ExitAction::Respawn | ExitAction::RetryBoot => {
                let current = generation == self.generation && id <= self.target;
                // A retiring worker's replacement may already fill the slot.
                if (current || reload_pending) && !self.slot_filled(id, generation) {
                    let delay = self.workers.note_crash(id, generation, w.lived());
                    if action == ExitAction::RetryBoot {
                        self.workers.note_boot_failure(id, generation);
                        log_error(&format!(
                            "worker {id} failed to boot ({how}) while the others serve; \
                             retrying in {:.1} s (fix the code or config on disk: it recovers \
                             by itself)",
                            delay.as_secs_f64()
                        ));
                        self.notifier.status(&self.status());
                    }
                }
            }
            ExitAction::AbortReload => {
                self.abort_reload(&format!("new worker {id} failed to boot ({how})"))
            }
            ExitAction::Halt(c) => {
                log_error(&format!("worker {id} failed to boot ({how}); stopping"));
                self.exit_code = c;
                self.begin_stop(false);
            }
        }
    }

    pub(super) fn timers(&mut self) {
        let now = Instant::now();
        self.workers.kill_overdue(now);
        for (id, pid, since) in self.workers.slow_boots(now) {
            log_warn(&format!(
                "worker {id} (pid {pid}): not ready {} s after it started: still loading the \
                 app (an import that hangs or waits on a network resource?); clients wait in \
                 the listen backlog meanwhile. Its Python stack at {} s is in the log, after \
                 \"Python stack of the app load\"",
                since.as_secs(),
                super::table::SLOW_BOOT_FIRST.as_secs()
            ));
        }
        if matches!(&self.phase, Phase::Reloading(p) if p.deadline() <= now) {
            self.abort_reload("new workers were not ready in time");
        }
        for (id, generation) in self.workers.take_due_respawns(now) {
            let wanted = match &self.phase {
                Phase::Running => generation == self.generation && id <= self.target,
                Phase::Reloading(p) => {
                    generation == p.generation() || generation == self.generation
                }
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
        let Some(w) = self.workers.mark_retiring(i, why) else {
            return; // already on its way out
        };
        let (id, generation) = (w.id(), w.generation());
        let msg = format!("worker {id} (pid {}): retiring: {why}", w.pid());
        match why {
            Retire::MaxRequests => log_info(&msg),
            _ => log_warn(&msg),
        }
        let due = self.workers.respawn_pending(id, generation);
        if !self.slot_filled(id, generation) && !due {
            self.spawn(id, generation);
        }
    }

    /// A worker of slot (`id`, `generation`) became ready: the workers it replaces stop
    /// gracefully now.
    pub(super) fn replacement_ready(&mut self, id: usize, generation: u64) {
        let grace = Duration::from_secs(self.settings.graceful_timeout);
        self.workers.stop_replaced(id, generation, grace);
    }

    /// `max_worker_memory` (about once a second): retires the serving workers whose resident
    /// memory exceeds it (uWSGI's `reload-on-rss`, but graceful).
    pub(super) fn check_memory(&mut self) {
        let limit = self.settings.max_worker_memory;
        if limit == 0 {
            return;
        }
        for (i, pid) in self.workers.memory_candidates() {
            match rss(pid.as_raw()) {
                Some(bytes) if bytes > limit => self.retire(i, Retire::Memory(bytes)),
                _ => {}
            }
        }
    }

    /// Worker `i` (slot `id`, `pid`) just became ready: one already above `max_worker_memory`
    /// is exempt from it, since every replacement would be too (a limit below what a fresh
    /// worker uses, such as 200 meant as MB, replaced a worker every second for ever); said
    /// once per generation at WARNING with the fix.
    pub(super) fn check_fresh_memory(&mut self, i: usize, id: usize, pid: Pid) {
        let limit = self.settings.max_worker_memory;
        if limit == 0 {
            return;
        }
        let Some(bytes) = rss(pid.as_raw()) else {
            return;
        };
        if bytes > limit && self.workers.exempt_from_memory(i) {
            log_warn(&format!(
                "worker {id} (pid {pid}): resident memory {bytes} bytes ({} MiB) right after \
                 start is already above max_worker_memory = {limit} bytes: no worker can stay \
                 below it, so none of this configuration is retired for memory; set \
                 max_worker_memory above what a fresh worker uses (bytes, or with a K, M or G \
                 suffix: 512M)",
                bytes / (1024 * 1024)
            ));
        }
    }

    /// True if slot (`id`, `generation`) has a live worker that is not on its way out.
    pub(super) fn slot_filled(&self, id: usize, generation: u64) -> bool {
        self.workers.slot_filled(id, generation)
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

/// "exit code N", or "killed by SIGNAME" (a crash and the OOM killer's SIGKILL look alike
/// otherwise).
fn how_it_ended(code: Option<i32>, signal: Option<Signal>) -> String {
    match (code, signal) {
        (Some(c), _) => format!("exit code {c}"),
        (None, Some(sig)) => format!("killed by {}", sig.as_str()),
        (None, None) => "killed by a signal".to_string(),
    }
}

/// A signal the process raised on itself by crashing (a bad memory access in a C extension,
/// an abort), as opposed to one sent from outside (the OOM killer, an operator's kill).
fn crash_signal(sig: Signal) -> bool {
    matches!(
        sig,
        Signal::SIGSEGV
            | Signal::SIGBUS
            | Signal::SIGILL
            | Signal::SIGFPE
            | Signal::SIGABRT
            | Signal::SIGSYS
            | Signal::SIGTRAP
    )
}

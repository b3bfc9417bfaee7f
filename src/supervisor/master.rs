//! The master loop (gunicorn's arbiter, nginx's master cycle): signals arrive as commands on a
//! signalfd; the loop reaps and respawns with backoff (children.rs), reloads by generations
//! (reload.rs) and stops gracefully. Start-up is in boot.rs. It never runs Python unless `preload_app` is on.
use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::sys::signalfd::SignalFd;
use nix::unistd::Pid;

use super::lifecycle::Backoff;
use super::listeners::ListenerSet;
use super::signals::{self, Command};
use super::spawn::DaemonStatus;
use super::systemd::Notifier;
use super::worker::{Preloaded, WorkerStart};
use super::{log_info, log_warn};
use crate::config::Settings;
use crate::net::Identity;

/// What a forked worker runs (the real one serves WSGI; tests use small fakes).
pub type WorkerBody = fn(WorkerStart) -> i32;

/// After an immediate stop (QUIT, second INT), workers get this long before SIGKILL.
const IMMEDIATE_GRACE: Duration = Duration::from_secs(2);

pub(super) struct Worker {
    pub(super) id: usize,
    pub(super) generation: u64,
    pub(super) pid: Pid,
    pub(super) ready: bool,
    pub(super) ready_fd: Option<OwnedFd>,
    pub(super) spawned: Instant,
    /// Asked to stop: SIGKILL at this instant if still alive.
    pub(super) kill_at: Option<Instant>,
}

pub(super) struct Pending {
    pub(super) generation: u64,
    pub(super) settings: Settings,
    pub(super) listeners: ListenerSet,
    pub(super) identity: Option<Identity>,
    pub(super) deadline: Instant,
}

pub(super) enum Phase {
    Running,
    Reloading(Box<Pending>),
    Stopping { immediate: bool },
}

pub(super) struct Master {
    pub(super) pid: i32,
    pub(super) settings: Settings,
    pub(super) listeners: ListenerSet,
    pub(super) identity: Option<Identity>,
    pub(super) generation: u64,
    pub(super) target: usize,
    pub(super) workers: Vec<Worker>,
    /// (worker id, generation, when).
    pub(super) respawns: Vec<(usize, u64, Instant)>,
    pub(super) backoff: HashMap<usize, Backoff>,
    pub(super) phase: Phase,
    pub(super) sigfd: SignalFd,
    pub(super) notifier: Notifier,
    pub(super) reload: Option<super::ReloadFn>,
    pub(super) body: WorkerBody,
    pub(super) booted: bool,
    pub(super) daemon: DaemonStatus,
    pub(super) exit_code: i32,
    /// `preload_app`: loaded here before the first fork.
    pub(super) preloaded: Option<Preloaded>,
}

impl Master {
    pub(super) fn run_loop(&mut self) {
        loop {
            if matches!(self.phase, Phase::Stopping { .. }) && self.workers.is_empty() {
                return;
            }
            self.wait_events();
            for cmd in signals::drain(&self.sigfd) {
                self.command(cmd);
            }
            self.reap();
            self.timers();
            self.check_progress();
        }
    }

    /// Sleeps in poll(2) until a signal, a ready byte, or the next timer.
    pub(super) fn wait_events(&mut self) {
        let now = Instant::now();
        let mut next = now + Duration::from_secs(1);
        for w in &self.workers {
            if let Some(k) = w.kill_at {
                next = next.min(k);
            }
        }
        for (_, _, at) in &self.respawns {
            next = next.min(*at);
        }
        if let Phase::Reloading(p) = &self.phase {
            next = next.min(p.deadline);
        }
        let ms = next.saturating_duration_since(now).as_millis().min(1000) as u16;
        let mut fds = vec![PollFd::new(self.sigfd.as_fd(), PollFlags::POLLIN)];
        let mut idx = Vec::new();
        for (i, w) in self.workers.iter().enumerate() {
            if let (false, Some(fd)) = (w.ready, &w.ready_fd) {
                fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
                idx.push(i);
            }
        }
        if nix::poll::poll(&mut fds, PollTimeout::from(ms)).unwrap_or(0) <= 0 {
            return;
        }
        let hit: Vec<usize> = fds[1..]
            .iter()
            .zip(&idx)
            .filter(|(f, _)| f.revents().is_some_and(|r| !r.is_empty()))
            .map(|(_, &i)| i)
            .collect();
        drop(fds);
        for i in hit {
            self.read_ready(i);
        }
    }

    pub(super) fn read_ready(&mut self, i: usize) {
        let w = &mut self.workers[i];
        let Some(fd) = &w.ready_fd else { return };
        let mut b = [0u8; 8];
        match nix::unistd::read(fd.as_fd(), &mut b) {
            Ok(n) if n > 0 => {
                w.ready = true;
                w.ready_fd = None;
                log_info(&format!("worker {} (pid {}): ready", w.id, w.pid));
            }
            Ok(_) => w.ready_fd = None, // closed without a byte: it is exiting; CHLD follows
            Err(_) => {}
        }
    }

    pub(super) fn command(&mut self, cmd: Command) {
        match cmd {
            Command::Terminate | Command::Interrupt => match self.phase {
                Phase::Stopping { immediate: false } if cmd == Command::Interrupt => {
                    log_info(&format!("master {}: second SIGINT, stopping now", self.pid));
                    self.begin_stop(true);
                }
                Phase::Stopping { .. } => {}
                _ => {
                    log_info(&format!("master {}: graceful stop", self.pid));
                    self.begin_stop(false);
                }
            },
            Command::Quit => {
                log_info(&format!("master {}: immediate stop", self.pid));
                self.begin_stop(true);
            }
            Command::Reload => match self.phase {
                Phase::Running => self.begin_reload(),
                _ => log_warn(&format!(
                    "master {}: SIGHUP ignored (reload or stop under way)",
                    self.pid
                )),
            },
            Command::ReopenLogs => {
                for w in &self.workers {
                    let _ = kill(w.pid, Signal::SIGUSR1);
                }
            }
            Command::MoreWorkers | Command::FewerWorkers => {
                if !matches!(self.phase, Phase::Running) {
                    log_warn("worker count change ignored during reload or stop");
                    return;
                }
                if cmd == Command::MoreWorkers {
                    self.target += 1;
                    self.spawn(self.target, self.generation);
                } else if self.target > 1 {
                    let (g, t) = (self.generation, self.target);
                    let grace = Duration::from_secs(self.settings.graceful_timeout);
                    for w in self
                        .workers
                        .iter_mut()
                        .filter(|w| w.generation == g && w.id == t)
                    {
                        stop_worker(w, false, grace);
                    }
                    self.respawns.retain(|r| !(r.1 == g && r.0 == t));
                    self.target -= 1;
                }
                log_info(&format!(
                    "master {}: {} worker(s) wanted",
                    self.pid, self.target
                ));
            }
            Command::Reap => {} // reaped on every turn
        }
    }

    pub(super) fn begin_stop(&mut self, immediate: bool) {
        self.notifier.stopping();
        if let Phase::Reloading(p) = std::mem::replace(&mut self.phase, Phase::Running) {
            p.listeners.remove_files_not_in(Some(&self.listeners));
        }
        self.phase = Phase::Stopping { immediate };
        self.respawns.clear();
        let grace = Duration::from_secs(self.settings.graceful_timeout);
        for w in &mut self.workers {
            if !w.ready {
                // Not serving anything yet: nothing to drain.
                let _ = kill(w.pid, Signal::SIGKILL);
                w.kill_at = Some(Instant::now());
            } else if immediate || w.kill_at.is_none() {
                stop_worker(w, immediate, grace);
            }
        }
    }

    pub(super) fn status(&self) -> String {
        match self.settings.proc_name.as_deref().filter(|n| !n.is_empty()) {
            Some(name) => format!("{name}: serving with {} worker(s)", self.target),
            None => format!("serving with {} worker(s)", self.target),
        }
    }

    pub(super) fn check_progress(&mut self) {
        let ready = |g: u64| {
            self.workers
                .iter()
                .filter(|w| w.generation == g && w.ready)
                .count()
        };
        match &self.phase {
            Phase::Running if !self.booted && ready(self.generation) >= self.target => {
                self.booted = true;
                log_info(&format!(
                    "master {}: {} worker(s) ready",
                    self.pid, self.target
                ));
                self.notifier.ready(&self.status());
                self.daemon.report_ready();
            }
            Phase::Reloading(p) if ready(p.generation) >= p.settings.workers.max(1) => {
                self.commit_reload()
            }
            _ => {}
        }
    }
}

/// Asks one worker to stop (TERM: graceful, QUIT: now) and arms its SIGKILL deadline.
pub(super) fn stop_worker(w: &mut Worker, immediate: bool, grace: Duration) {
    let (sig, grace) = if immediate {
        (Signal::SIGQUIT, IMMEDIATE_GRACE)
    } else {
        (Signal::SIGTERM, grace)
    };
    let _ = kill(w.pid, sig);
    let at = Instant::now() + grace;
    w.kill_at = Some(w.kill_at.map_or(at, |k| k.min(at)));
}

//! The master loop (gunicorn's arbiter, nginx's master cycle): signals arrive as commands on a
//! signalfd; the loop reaps, respawns with backoff and retires (children.rs), reloads by
//! generations (reload.rs), upgrades (upgrade.rs) and stops gracefully. Its state is in
//! state.rs (the workers in table.rs); start-up is in boot.rs. It never runs Python unless
//! `preload_app` is on.
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;

use super::retire::Retire;
use super::signals::{self, Command};
use super::spawn;
use super::state::{Master, Phase};
use super::status::Readiness;
use super::{log_info, log_warn};

/// How often `max_worker_memory` is checked.
const MEMORY_CHECK: Duration = Duration::from_secs(1);

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
            self.check_upgrade();
            self.timers();
            if Instant::now() >= self.next_memory_check {
                self.next_memory_check = Instant::now() + MEMORY_CHECK;
                self.check_memory();
            }
            self.check_progress();
            self.publish_readiness();
        }
    }

    /// Sleeps in poll(2) until a signal, a ready byte, a status connection's turn, or the next
    /// timer; then serves the status listener (status.rs: no thread in a master that forks).
    pub(super) fn wait_events(&mut self) {
        let now = Instant::now();
        let mut next = now + Duration::from_secs(1);
        if let Some(at) = self.workers.next_deadline() {
            next = next.min(at);
        }
        if let Phase::Reloading(p) = &self.phase {
            next = next.min(p.deadline());
        }
        if let Some(at) = self.status.as_ref().and_then(|s| s.next_deadline(now)) {
            next = next.min(at);
        }
        // Rounded up: waking a fraction of a millisecond early would spin until the deadline.
        let wait = next
            .saturating_duration_since(now)
            .as_micros()
            .div_ceil(1000);
        let ms = wait.min(1000) as u16;
        let mut fds = vec![PollFd::new(self.sigfd.as_fd(), PollFlags::POLLIN)];
        let mut idx = Vec::new();
        for (i, fd) in self.workers.status_fds() {
            fds.push(PollFd::new(fd, PollFlags::POLLIN));
            idx.push(i);
        }
        let status_at = fds.len();
        if let Some(s) = &self.status {
            fds.extend(s.poll_fds());
        }
        let polled = nix::poll::poll(&mut fds, PollTimeout::from(ms)).unwrap_or(0) > 0;
        let revents = |f: &PollFd| f.revents().unwrap_or(PollFlags::empty());
        let (hit, status_events): (Vec<usize>, Vec<PollFlags>) = if polled {
            let hit = fds[1..status_at]
                .iter()
                .zip(&idx)
                .filter(|(f, _)| !revents(f).is_empty())
                .map(|(_, &i)| i)
                .collect();
            (hit, fds[status_at..].iter().map(revents).collect())
        } else {
            (Vec::new(), Vec::new())
        };
        drop(fds);
        for i in hit {
            self.read_ready(i);
        }
        if let Some(s) = &mut self.status {
            // After a timeout too: expired connections are closed.
            s.serve(&status_events);
        }
    }

    /// Reads a worker's status pipe: `R` = ready; later bytes ask for its retirement
    /// (retire.rs, carried out in children.rs); end of file = it is exiting (CHLD follows).
    pub(super) fn read_ready(&mut self, i: usize) {
        let mut b = [0u8; 16];
        for &byte in self.workers.read_status(i, &mut b) {
            if byte == spawn::READY {
                self.became_ready(i);
            } else if let Some(why) = Retire::from_byte(byte) {
                self.retire(i, why);
            }
        }
    }

    fn became_ready(&mut self, i: usize) {
        let Some(w) = self.workers.mark_ready(i) else {
            return;
        };
        let (id, generation, pid) = (w.id(), w.generation(), w.pid());
        log_info(&format!("worker {id} (pid {pid}): ready"));
        self.check_fresh_memory(i, id, pid);
        if generation == self.generation {
            self.serving = true;
        }
        if let Phase::Reloading(p) = &mut self.phase {
            p.note_ready(generation);
        }
        if self.workers.boot_recovered(id, generation) {
            log_info(&format!("worker {id}: recovered, booting again"));
            if self.workers.failing_boot() == 0 && self.booted {
                self.notifier.status(&self.status());
            }
        }
        self.replacement_ready(id, generation);
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
                Phase::Running if self.handing_over() => {
                    // Its new workers would be killed when the new master takes over, and
                    // the new master read the configuration as it started.
                    log_warn(&format!(
                        "master {}: SIGHUP ignored: a USR2 upgrade is under way; once the new \
                         master serves, reload that one",
                        self.pid
                    ));
                    super::control::report(false, "a USR2 upgrade is under way");
                }
                Phase::Running => self.begin_reload(),
                Phase::Reloading(_) => {
                    // Applied once this reload is committed or abandoned (a systemd reload
                    // waits for its own RELOADING=1 ... READY=1 round).
                    log_info(&format!(
                        "master {}: SIGHUP during a reload: queued",
                        self.pid
                    ));
                    self.reload_queued = true;
                }
                Phase::Stopping { .. } => {
                    log_warn(&format!("master {}: SIGHUP ignored (stopping)", self.pid));
                    super::control::report(false, "the master is stopping");
                }
            },
            Command::ReopenLogs => {
                // The master first (as root it can create the files logrotate moved away and
                // hand them to `user`), then the workers, which reopen by path.
                if let Err(e) = super::logfiles::prepare(&self.settings, self.identity.as_ref()) {
                    super::log_error(&e);
                }
                super::logfiles::redirect(&self.settings);
                log_info(&format!("master {}: log files reopened", self.pid));
                self.workers.signal_all(Signal::SIGUSR1);
            }
            Command::MoreWorkers | Command::FewerWorkers => {
                if !matches!(self.phase, Phase::Running) {
                    log_warn("worker count change ignored during reload or stop");
                    return;
                }
                if cmd == Command::MoreWorkers {
                    let ceiling = ttin_ceiling(self.settings.workers);
                    if self.target >= ceiling {
                        log_warn(&format!(
                            "master {}: TTIN ignored: {} workers is the ceiling (4 per CPU, or \
                             `workers` if higher); raise `workers` and reload for more",
                            self.pid, self.target
                        ));
                        return;
                    }
                    self.target += 1;
                    self.spawn(self.target, self.generation);
                } else if self.target > 1 {
                    let grace = Duration::from_secs(self.settings.graceful_timeout);
                    self.workers.stop_slot(self.target, self.generation, grace);
                    self.target -= 1;
                }
                log_info(&format!(
                    "master {}: {} worker(s) wanted",
                    self.pid, self.target
                ));
            }
            Command::Reap => {} // reaped on every turn
            Command::Upgrade => self.begin_upgrade(),
        }
    }

    pub(super) fn begin_stop(&mut self, immediate: bool) {
        if let Phase::Reloading(p) = std::mem::replace(&mut self.phase, Phase::Running) {
            p.remove_socket_files(&self.listeners);
        }
        self.phase = Phase::Stopping { immediate };
        // First: a load balancer probing /ready stops sending before anything closes (/ready
        // says draining from now). Unless a new master took over: it answers the probes from
        // now on.
        if self.handing_over() {
            if let Some(s) = &mut self.status {
                s.set_answering(false);
            }
        } else if self.handover_from.is_none() {
            // (Taken over by a new master: systemd follows its MAINPID; nothing to say. Nor
            // does a new master that never took over: the old one still serves as systemd's
            // main process, and a STOPPING=1 from us (NotifyAccess=all) would put the unit in
            // stop-sigterm, whose timeout SIGKILLs the old master.)
            self.notifier.stopping();
        }
        self.publish_readiness();
        let grace = Duration::from_secs(self.settings.graceful_timeout);
        self.workers.stop_all(immediate, grace);
        self.listeners.close_sockets();
    }

    /// What `/ready` answers, from the phase: draining from a stop's first turn, else ready
    /// while every wanted worker of the serving generation is ready, degraded (also 200) while
    /// some of them serve once it has served.
    fn publish_readiness(&mut self) {
        let ready = self.workers.serving_count(self.generation);
        let readiness = match self.phase {
            // Taken over: connections this master still has open get the last answer
            // ("ready", as the new master's), not its own drain.
            Phase::Stopping { .. } if self.handing_over() => return,
            Phase::Stopping { .. } => Readiness::Draining,
            _ if ready >= self.target => Readiness::Ready,
            _ if self.booted && ready > 0 => Readiness::Degraded,
            _ => Readiness::Starting,
        };
        if let Some(s) = &mut self.status {
            s.publish(readiness);
        }
    }
    pub(super) fn check_progress(&mut self) {
        let ready = |g: u64| self.workers.ready_count(g);
        match &self.phase {
            // Degraded start (a sibling serves, another fails at boot): serving all the same.
            Phase::Running
                if !self.booted
                    && (ready(self.generation) >= self.target
                        || (self.serving && self.workers.failing_boot() > 0)) =>
            {
                self.booted = true;
                log_info(&format!(
                    "master {}: {} worker(s) ready",
                    self.pid,
                    ready(self.generation)
                ));
                // A USR2's new master takes the pidfile first: one that cannot stops without
                // having told systemd it is the main process.
                if !self.take_pidfile_over() {
                    return;
                }
                self.notifier.ready(&self.status());
                self.daemon.report_ready();
                self.finish_takeover();
            }
            Phase::Reloading(p) if ready(p.generation()) >= p.target() => self.commit_reload(),
            _ => {}
        }
        if self.reload_queued && matches!(self.phase, Phase::Running) {
            self.reload_queued = false;
            self.begin_reload();
        }
        if self.upgrade_queued && matches!(self.phase, Phase::Running) {
            self.upgrade_queued = false;
            self.begin_upgrade();
        }
    }
}

/// Most workers TTIN may reach: 4 per CPU, or the configured `workers` if that is higher
/// (a runaway script sending TTIN cannot fork the machine to death).
pub(super) fn ttin_ceiling(workers: usize) -> usize {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    workers.max(cpus.saturating_mul(4)).min(4096)
}

//! The master loop (gunicorn's arbiter, nginx's master cycle): signals arrive as commands on a
//! signalfd; the loop reaps, respawns with backoff, reloads by generations and stops
//! gracefully. It never runs Python itself unless `preload_app` is on.
use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::sys::signalfd::SignalFd;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::lifecycle::{on_exit, Backoff, ExitAction, ExitFacts};
use super::listeners::ListenerSet;
use super::signals::{self, Command};
use super::spawn::{self, DaemonStatus};
use super::systemd::{self, Notifier};
use super::worker::WorkerStart;
use super::{log_error, log_info, log_warn, RunOptions, SupervisorError};
use crate::config::Settings;
use crate::exit;
use crate::net::Identity;

/// What a forked worker runs (the real one serves WSGI; tests use small fakes).
pub type WorkerBody = fn(WorkerStart) -> i32;

/// After an immediate stop (QUIT, second INT), workers get this long before SIGKILL.
const IMMEDIATE_GRACE: Duration = Duration::from_secs(2);

struct Worker {
    id: usize,
    generation: u64,
    pid: Pid,
    ready: bool,
    ready_fd: Option<OwnedFd>,
    spawned: Instant,
    /// Asked to stop: SIGKILL at this instant if still alive.
    kill_at: Option<Instant>,
}

struct Pending {
    generation: u64,
    settings: Settings,
    listeners: ListenerSet,
    identity: Option<Identity>,
    deadline: Instant,
}

enum Phase {
    Running,
    Reloading(Box<Pending>),
    Stopping { immediate: bool },
}

struct Master {
    pid: i32,
    settings: Settings,
    listeners: ListenerSet,
    identity: Option<Identity>,
    generation: u64,
    target: usize,
    workers: Vec<Worker>,
    /// (worker id, generation, when).
    respawns: Vec<(usize, u64, Instant)>,
    backoff: HashMap<usize, Backoff>,
    phase: Phase,
    sigfd: SignalFd,
    notifier: Notifier,
    reload: Option<super::ReloadFn>,
    body: WorkerBody,
    booted: bool,
    daemon: DaemonStatus,
    exit_code: i32,
}

fn boot<E: std::fmt::Display>(e: E) -> SupervisorError {
    SupervisorError::Boot(e.to_string())
}

/// Start-up in nginx's order: umask, signals, identity, listeners ("Serving on"), detach,
/// pidfile, title; then the loop.
pub fn run(settings: Settings, opts: RunOptions, body: WorkerBody) -> Result<(), SupervisorError> {
    if let Some(mask) = settings.umask {
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(
            mask as libc::mode_t,
        ));
    }
    let sigfd = signals::block_and_open().map_err(|e| boot(format!("signals: {e}")))?;
    let identity =
        Identity::resolve(settings.user.as_deref(), settings.group.as_deref()).map_err(boot)?;
    let inherited = systemd::take_listen_fds().map_err(boot)?;
    let listeners = ListenerSet::open(&settings, identity.as_ref(), inherited).map_err(boot)?;
    for (_, l) in &listeners.entries {
        // Printed whatever the logging config (tests and users look for it), once the socket
        // is listening: connections wait in the backlog until a worker accepts.
        eprintln!("Serving on {}", l.url());
    }
    let notifier = Notifier::from_env();
    let daemon = if opts.daemon {
        spawn::daemonize().map_err(|e| boot(format!("daemonize: {e}")))?
    } else {
        DaemonStatus::none()
    };
    let pid = std::process::id() as i32;
    let mut m = Master {
        pid,
        target: settings.workers.max(1),
        settings,
        listeners,
        identity,
        generation: 1,
        workers: Vec::new(),
        respawns: Vec::new(),
        backoff: HashMap::new(),
        phase: Phase::Running,
        sigfd,
        notifier,
        reload: opts.reload,
        body,
        booted: false,
        daemon,
        exit_code: exit::OK,
    };
    let _pidfile = match &m.settings.pidfile {
        Some(p) => match super::pidfile::PidFile::create(p, pid) {
            Ok(f) => Some(f),
            Err(e) => {
                m.daemon.report(exit::BOOT);
                m.listeners.remove_files_not_in(None);
                return Err(boot(e));
            }
        },
        None => None,
    };
    super::title::set(None);
    log_info(&format!("master {pid}: starting {} worker(s)", m.target));
    for id in 1..=m.target {
        m.spawn(id, 1);
    }
    m.run_loop();
    m.notifier.stopping();
    m.listeners.remove_files_not_in(None);
    m.daemon.report(m.exit_code);
    log_info(&format!("master {pid}: exiting with code {}", m.exit_code));
    match m.exit_code {
        exit::OK => Ok(()),
        exit::CONFIG => Err(SupervisorError::Config(
            "a worker found the configuration unusable".into(),
        )),
        exit::APP_LOAD => Err(SupervisorError::AppLoad(
            "a worker could not load the application".into(),
        )),
        code => Err(SupervisorError::Boot(format!(
            "a worker could not boot (exit code {code})"
        ))),
    }
}

impl Master {
    fn run_loop(&mut self) {
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
    fn wait_events(&mut self) {
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

    fn read_ready(&mut self, i: usize) {
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

    fn command(&mut self, cmd: Command) {
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

    fn begin_stop(&mut self, immediate: bool) {
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

    fn begin_reload(&mut self) {
        log_info(&format!("master {}: reloading", self.pid));
        self.notifier.reloading();
        let settings = match &self.reload {
            Some(f) => f(),
            None => Ok(self.settings.clone()),
        };
        let prepared = settings.and_then(|s| {
            if s.pidfile != self.settings.pidfile {
                log_warn("a changed pidfile takes effect at the next start, not on reload");
            }
            if let Some(mask) = s.umask {
                // Before binding new unix sockets, as at start.
                nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(
                    mask as libc::mode_t,
                ));
            }
            let id = Identity::resolve(s.user.as_deref(), s.group.as_deref())
                .map_err(|e| e.to_string())?;
            let (set, fresh) = self
                .listeners
                .reopen(&s, id.as_ref())
                .map_err(|e| e.to_string())?;
            Ok((s, id, set, fresh))
        });
        let (settings, identity, listeners, fresh) = match prepared {
            Ok(p) => p,
            Err(e) => {
                log_error(&format!(
                    "reload failed, still serving the old configuration: {e}"
                ));
                self.notifier.ready("serving (reload failed)");
                return;
            }
        };
        for i in fresh {
            eprintln!("Serving on {}", listeners.entries[i].1.url());
        }
        let generation = self.generation + 1;
        let grace = Duration::from_secs(settings.graceful_timeout.max(5));
        let n = settings.workers.max(1);
        self.phase = Phase::Reloading(Box::new(Pending {
            generation,
            settings,
            listeners,
            identity,
            deadline: Instant::now() + grace,
        }));
        for id in 1..=n {
            self.spawn(id, generation);
        }
    }

    fn commit_reload(&mut self) {
        let Phase::Reloading(p) = std::mem::replace(&mut self.phase, Phase::Running) else {
            return;
        };
        let old_gen = self.generation;
        let grace = Duration::from_secs(self.settings.graceful_timeout);
        for w in self.workers.iter_mut().filter(|w| w.generation == old_gen) {
            stop_worker(w, false, grace);
        }
        self.respawns.retain(|r| r.1 != old_gen);
        let p = *p;
        let old = std::mem::replace(&mut self.listeners, p.listeners);
        old.remove_files_not_in(Some(&self.listeners));
        drop(old);
        self.settings = p.settings;
        self.identity = p.identity;
        self.generation = p.generation;
        self.target = self.settings.workers.max(1);
        self.backoff.clear();
        log_info(&format!(
            "master {}: reload complete (generation {})",
            self.pid, self.generation
        ));
        self.notifier.ready(&self.status());
    }

    fn abort_reload(&mut self, why: &str) {
        let Phase::Reloading(p) = std::mem::replace(&mut self.phase, Phase::Running) else {
            return;
        };
        log_error(&format!(
            "reload aborted, still serving the old configuration: {why}"
        ));
        for w in self
            .workers
            .iter_mut()
            .filter(|w| w.generation == p.generation)
        {
            let _ = kill(w.pid, Signal::SIGKILL);
            w.kill_at = Some(Instant::now());
        }
        self.respawns.retain(|r| r.1 != p.generation);
        p.listeners.remove_files_not_in(Some(&self.listeners));
        self.notifier.ready(&self.status());
    }

    fn status(&self) -> String {
        format!("serving with {} worker(s)", self.target)
    }

    /// Forks worker `id` of `generation` with that generation's settings and sockets.
    fn spawn(&mut self, id: usize, generation: u64) {
        let (settings, listeners, identity) = match &self.phase {
            Phase::Reloading(p) if p.generation == generation => {
                (&p.settings, &p.listeners, &p.identity)
            }
            _ => (&self.settings, &self.listeners, &self.identity),
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
        let socks = match listeners.for_worker() {
            Ok(s) => s,
            Err(e) => {
                log_error(&format!("cannot share listeners with worker {id}: {e}"));
                self.respawns
                    .push((id, generation, Instant::now() + Duration::from_secs(1)));
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
        };
        let body = self.body;
        match spawn::spawn_worker(&close, move |ready| body(start.with_ready(ready))) {
            Ok(s) => {
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
                });
            }
            Err(e) => {
                log_error(&format!("fork of worker {id} failed: {e}"));
                self.respawns
                    .push((id, generation, Instant::now() + Duration::from_secs(1)));
            }
        }
    }

    fn reap(&mut self) {
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
                continue;
            };
            let w = self.workers.remove(i);
            self.worker_exited(w, code);
        }
    }

    fn worker_exited(&mut self, w: Worker, code: Option<i32>) {
        let how = match code {
            Some(c) => format!("exit code {c}"),
            None => "killed by a signal".to_string(),
        };
        let reload_pending =
            matches!(&self.phase, Phase::Reloading(p) if p.generation == w.generation);
        let facts = ExitFacts {
            expected: w.kill_at.is_some() || matches!(self.phase, Phase::Stopping { .. }),
            ever_ready: w.ready,
            reload_pending,
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
        match on_exit(facts) {
            ExitAction::Forget => {}
            ExitAction::Respawn => {
                let current = w.generation == self.generation && w.id <= self.target;
                if current || reload_pending {
                    let delay = self
                        .backoff
                        .entry(w.id)
                        .or_default()
                        .on_crash(w.spawned.elapsed());
                    self.respawns
                        .push((w.id, w.generation, Instant::now() + delay));
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

    fn timers(&mut self) {
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
            if wanted {
                self.spawn(id, generation);
            }
        }
    }

    fn check_progress(&mut self) {
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
                self.daemon.report(exit::OK);
            }
            Phase::Reloading(p) if ready(p.generation) >= p.settings.workers.max(1) => {
                self.commit_reload()
            }
            _ => {}
        }
    }
}

/// Asks one worker to stop (TERM: graceful, QUIT: now) and arms its SIGKILL deadline.
fn stop_worker(w: &mut Worker, immediate: bool, grace: Duration) {
    let (sig, grace) = if immediate {
        (Signal::SIGQUIT, IMMEDIATE_GRACE)
    } else {
        (Signal::SIGTERM, grace)
    };
    let _ = kill(w.pid, sig);
    let at = Instant::now() + grace;
    w.kill_at = Some(w.kill_at.map_or(at, |k| k.min(at)));
}

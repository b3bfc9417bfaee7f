//! The master's state (`Master`: its worker table, the phase, the generation it serves),
//! shared by the loop (master.rs) and the files that act on it: children.rs (fork, reap,
//! respawn, retire), reload.rs and upgrade.rs; boot.rs builds it. The workers and their
//! respawn bookkeeping are table.rs's (`WorkerTable`), a reload under way pending.rs's
//! (`Pending`). Also the `STATUS=` line (`Master::status`).
use std::time::Instant;

use nix::sys::signalfd::SignalFd;

use super::listeners::ListenerSet;
use super::pending::Pending;
use super::pidfile::PidFile;
use super::spawn::{DaemonStatus, Exec};
use super::systemd::Notifier;
use super::table::WorkerTable;
use super::worker::{Preloaded, WorkerStart};
use crate::config::Settings;
use crate::net::Identity;

/// What a forked worker runs (the real one serves WSGI; tests use small fakes).
pub type WorkerBody = fn(WorkerStart) -> i32;

/// Where the master is: serving, reloading, or stopping.
pub(super) enum Phase {
    Running,
    Reloading(Box<Pending>),
    Stopping { immediate: bool },
}

/// Everything the master knows; the loop (master.rs) owns it.
pub(super) struct Master {
    pub(super) pid: i32,
    pub(super) settings: Settings,
    pub(super) listeners: ListenerSet,
    pub(super) identity: Option<Identity>,
    pub(super) generation: u64,
    pub(super) target: usize,
    /// The workers, the respawns owed, the slots failing at boot.
    pub(super) workers: WorkerTable,
    pub(super) phase: Phase,
    pub(super) sigfd: SignalFd,
    pub(super) notifier: Notifier,
    pub(super) reload: Option<super::ReloadFn>,
    pub(super) body: WorkerBody,
    pub(super) booted: bool,
    /// A worker of the current generation has been ready: its configuration serves.
    pub(super) serving: bool,
    /// A HUP arrived during a reload: reload again once this one is committed or abandoned.
    pub(super) reload_queued: bool,
    /// A USR2 arrived during a reload: the upgrade starts once the reload is done (a package
    /// upgrade's postinst sends it whenever it runs).
    pub(super) upgrade_queued: bool,
    /// Next `max_worker_memory` check.
    pub(super) next_memory_check: Instant,
    /// How this binary was started (USR2 starts it again).
    pub(super) exec: Exec,
    /// The new master a USR2 started, until it takes over or fails.
    pub(super) upgrade: Option<super::spawn::Sibling>,
    /// This master came from a USR2: the old master, stopped once our workers are ready.
    pub(super) handover_from: Option<i32>,
    pub(super) pidfile: Option<PidFile>,
    pub(super) daemon: DaemonStatus,
    pub(super) exit_code: i32,
    /// `preload_app`: loaded here before the first fork.
    pub(super) preloaded: Option<Preloaded>,
    /// `status_listen`: the status listener and the workers' shared counters.
    pub(super) status: Option<super::status::Status>,
    /// `certfile`: the TLS configuration the current generation serves with.
    pub(super) tls: Option<super::tls::Loaded>,
}

impl Master {
    /// The `STATUS=` line for systemd: serving, or degraded while slots fail at boot.
    pub(super) fn status(&self) -> String {
        let state = match self.workers.failing_boot() {
            0 => format!("serving with {} worker(s)", self.target),
            n => format!(
                "degraded: serving, {n} worker(s) failing to boot (retrying; see the error log)"
            ),
        };
        match self.settings.proc_name.as_deref().filter(|n| !n.is_empty()) {
            Some(name) => format!("{name}: {state}"),
            None => state,
        }
    }
}

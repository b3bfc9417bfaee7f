//! A reload under way (`Pending`): the new generation with its settings, sockets, identity and
//! TLS configuration, how many workers it runs, its deadline, and whether one of its workers
//! has been ready. reload.rs builds it and commits or abandons it; the loop (master.rs) and
//! children.rs read it through methods.
use std::time::Instant;

use super::listeners::ListenerSet;
use super::tls::Loaded;
use crate::config::Settings;
use crate::net::Identity;

/// A reload under way: the new generation, until its workers are ready (or it is abandoned).
pub(super) struct Pending {
    generation: u64,
    settings: Settings,
    listeners: ListenerSet,
    identity: Option<Identity>,
    deadline: Instant,
    /// One of its workers has been ready (its boot failures are then retried, not fatal).
    serving: bool,
    /// Workers it runs: its `workers`, or the TTIN/TTOU-changed count if `workers` is unchanged.
    target: usize,
    /// The new generation's TLS configuration (certificates re-read by the reload).
    tls: Option<Loaded>,
}

/// What a committed reload hands the master: (generation, target, settings, listeners,
/// identity, TLS configuration).
pub(super) type Committed = (
    u64,
    usize,
    Settings,
    ListenerSet,
    Option<Identity>,
    Option<Loaded>,
);

impl Pending {
    /// Generation `generation` runs `target` workers with this configuration; abandoned if not
    /// all ready by `deadline`.
    pub(super) fn new(
        generation: u64,
        target: usize,
        settings: Settings,
        listeners: ListenerSet,
        identity: Option<Identity>,
        tls: Option<Loaded>,
        deadline: Instant,
    ) -> Pending {
        Pending {
            generation,
            settings,
            listeners,
            identity,
            deadline,
            serving: false,
            target,
            tls,
        }
    }

    pub(super) fn generation(&self) -> u64 {
        self.generation
    }

    /// Workers it runs.
    pub(super) fn target(&self) -> usize {
        self.target
    }

    /// It is abandoned if its workers are not all ready by then.
    pub(super) fn deadline(&self) -> Instant {
        self.deadline
    }

    /// One of its workers has been ready.
    pub(super) fn serving(&self) -> bool {
        self.serving
    }

    /// A worker of `generation` became ready: if it is this reload's, its configuration serves.
    pub(super) fn note_ready(&mut self, generation: u64) {
        self.serving |= self.generation == generation;
    }

    /// What its workers are started with: settings, sockets, identity, TLS configuration.
    pub(super) fn config(&self) -> (&Settings, &ListenerSet, &Option<Identity>, &Option<Loaded>) {
        (&self.settings, &self.listeners, &self.identity, &self.tls)
    }

    /// Its sockets (closed in every forked worker, which gets its own generation's).
    pub(super) fn listeners(&self) -> &ListenerSet {
        &self.listeners
    }

    /// Abandoned (stop, or its workers failed): removes the unix socket files it created that
    /// `serving` does not use (its sockets close when it is dropped).
    pub(super) fn remove_socket_files(&self, serving: &ListenerSet) {
        self.listeners.remove_files_not_in(Some(serving));
    }

    /// Committed: what the master serves with from now on.
    pub(super) fn commit(self) -> Committed {
        (
            self.generation,
            self.target,
            self.settings,
            self.listeners,
            self.identity,
            self.tls,
        )
    }
}

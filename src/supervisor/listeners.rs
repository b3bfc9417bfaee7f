//! The master's listening sockets: opened from `Settings` (or taken from systemd), and carried
//! across a reload — sockets for unchanged entries stay open (no connection is ever refused),
//! new entries are bound, removed ones closed once the old workers are gone.
//!
//! Load spreading: one listening socket per entry, inherited by every worker (each polls it),
//! rather than an SO_REUSEPORT socket per worker. A reuseport socket's accept queue dies with
//! its worker: connections queued to a crashed, retiring (reload) or TTOU-ed worker are reset,
//! which breaks "no failed request during a reload" and "a crash is invisible except for the
//! requests it was serving"; a shared socket keeps them for the surviving and new workers.
//! Measured on loopback (2 cores, 2 workers): a plain shared epoll registration balanced
//! 21k/32k accepts with 0.2-0.5 % empty wake-ups (herd); SO_REUSEPORT 33k/33k but unsafe as
//! said; the server registers the shared socket with EPOLLEXCLUSIVE (no herd), which alone
//! sends everything to the first idle worker (619/181 requests), and re-registers it after
//! each accept batch so idle workers take turns: 401/399 with one client, 394/406 with 16,
//! keep-alive connections 9/7.

use std::ops::Range;
use std::os::fd::RawFd;
use std::path::PathBuf;

use crate::config::Settings;
use crate::net::{self, BindError, Identity, Listener};

/// What a listener was configured as (port 0 stays 0, so a reload keeps the same socket).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wanted {
    Tcp(std::net::SocketAddr),
    Unix(PathBuf),
    /// From socket activation: kept as long as the master lives.
    Inherited(RawFd),
}

/// Open listeners with what they were configured as.
#[derive(Debug, Default)]
pub struct ListenerSet {
    pub entries: Vec<(Wanted, Listener)>,
    /// Entries whose sockets `close_sockets` closed (their unix socket files are still
    /// removed at exit).
    closed: Vec<Wanted>,
}

/// The configured entries: every resolved `listen` address, then `unix_socket`.
pub fn wanted(settings: &Settings) -> Vec<Wanted> {
    let mut w: Vec<Wanted> = settings.listen.iter().copied().map(Wanted::Tcp).collect();
    if let Some(p) = &settings.unix_socket {
        w.push(Wanted::Unix(p.clone()));
    }
    w
}

fn open_one(w: &Wanted, s: &Settings, id: Option<&Identity>) -> Result<Listener, BindError> {
    match w {
        Wanted::Tcp(a) => net::bind_tcp(*a, s.backlog),
        Wanted::Unix(p) => net::bind_unix(
            p,
            s.unix_socket_perms,
            s.backlog,
            id.map(Identity::file_owner),
        ),
        Wanted::Inherited(fd) => net::from_inherited_fd(*fd),
    }
}

impl ListenerSet {
    /// Binds everything `settings` asks for, or takes the systemd-passed descriptors instead.
    pub fn open(
        settings: &Settings,
        identity: Option<&Identity>,
        inherited: Option<Range<RawFd>>,
    ) -> Result<ListenerSet, BindError> {
        let wanted: Vec<Wanted> = match inherited {
            Some(r) => r.map(Wanted::Inherited).collect(),
            None => wanted(settings),
        };
        let mut set = ListenerSet::default();
        for w in wanted {
            let l = open_one(&w, settings, identity)?;
            set.entries.push((w, l));
        }
        Ok(set)
    }

    /// A USR2 upgrade: the old master's sockets (`handed`) for the entries still configured
    /// (or for every socket systemd passed it), new ones bound, and handed sockets no longer
    /// wanted closed.
    pub fn open_handed(
        settings: &Settings,
        identity: Option<&Identity>,
        mut handed: Vec<(Wanted, RawFd)>,
    ) -> Result<ListenerSet, BindError> {
        let wanted: Vec<Wanted> = if handed
            .iter()
            .any(|(w, _)| matches!(w, Wanted::Inherited(_)))
        {
            handed.iter().map(|(w, _)| w.clone()).collect()
        } else {
            wanted(settings)
        };
        let mut set = ListenerSet::default();
        for w in wanted {
            let l = match handed.iter().position(|(hw, _)| *hw == w) {
                Some(i) => net::from_inherited_fd(handed.remove(i).1)?,
                None => open_one(&w, settings, identity)?,
            };
            set.entries.push((w, l));
        }
        for (_, fd) in handed {
            // SAFETY: a descriptor the old master handed to this process and nothing owns.
            unsafe { libc::close(fd) };
        }
        Ok(set)
    }

    /// The set a reload to `settings` needs: unchanged entries share the open sockets (dup;
    /// `refit` gives them the reload's socket keys once it commits), others are bound now.
    /// Returns the new set and the indices of freshly bound entries.
    pub fn reopen(
        &self,
        settings: &Settings,
        identity: Option<&Identity>,
    ) -> Result<(ListenerSet, Vec<usize>), BindError> {
        let inherited = self
            .entries
            .iter()
            .any(|(w, _)| matches!(w, Wanted::Inherited(_)));
        let wanted: Vec<Wanted> = if inherited {
            self.entries.iter().map(|(w, _)| w.clone()).collect()
        } else {
            wanted(settings)
        };
        let mut used = vec![false; self.entries.len()];
        let mut next = ListenerSet::default();
        let mut fresh = Vec::new();
        for w in wanted {
            let old = self
                .entries
                .iter()
                .enumerate()
                .position(|(i, (ow, _))| !used[i] && *ow == w);
            let l = match old {
                Some(i) => {
                    used[i] = true;
                    self.entries[i].1.try_clone().map_err(|source| match &w {
                        Wanted::Unix(path) => BindError::Unix {
                            path: path.clone(),
                            source,
                        },
                        Wanted::Tcp(addr) => BindError::Tcp {
                            addr: *addr,
                            source,
                        },
                        Wanted::Inherited(fd) => BindError::Inherited {
                            fd: *fd,
                            reason: source.to_string(),
                        },
                    })?
                }
                None => {
                    fresh.push(next.entries.len());
                    open_one(&w, settings, identity)?
                }
            };
            next.entries.push((w, l));
        }
        Ok((next, fresh))
    }

    /// A committed reload's `backlog`, `unix_socket_perms` and socket file owner, given to
    /// every socket (listen(2) again, chmod, chown; the freshly bound ones have them already):
    /// only at the commit, so a failed or abandoned reload leaves the running configuration's.
    /// systemd's sockets keep its Backlog= and SocketMode=. A failure is named in a WARNING.
    pub fn refit(&self, settings: &Settings, identity: Option<&Identity>) {
        let owner = identity.map(Identity::file_owner);
        for (w, l) in &self.entries {
            if matches!(w, Wanted::Inherited(_)) {
                continue;
            }
            if let Err(e) = net::refit(l, settings.unix_socket_perms, settings.backlog, owner) {
                super::log_warn(&format!(
                    "reload: the socket {} keeps its backlog, permissions and owner: {e}",
                    l.url(false)
                ));
            }
        }
    }

    /// Handles on every socket, for a worker (dup'ed; the master keeps its own).
    pub fn for_worker(&self) -> std::io::Result<Vec<Listener>> {
        self.entries.iter().map(|(_, l)| l.try_clone()).collect()
    }

    pub fn raw_fds(&self) -> Vec<RawFd> {
        self.entries.iter().map(|(_, l)| l.raw_fd()).collect()
    }

    /// A graceful stop: the master's copies of the sockets are closed, so once the workers
    /// have accepted what is queued and closed theirs, a new client is refused (a proxy
    /// retries elsewhere at once) instead of waiting in a backlog nobody accepts from, to be
    /// reset at exit. Sockets systemd passed stay open in systemd, which queues for the next
    /// start; after a USR2 takeover the new master has its own.
    pub fn close_sockets(&mut self) {
        self.closed.extend(self.entries.drain(..).map(|(w, _)| w));
    }

    /// Unix socket files this master bound and `other` does not use: removed from disk.
    pub fn remove_files_not_in(&self, other: Option<&ListenerSet>) {
        let closed = self.closed.iter();
        for w in self.entries.iter().map(|(w, _)| w).chain(closed) {
            if let Wanted::Unix(p) = w {
                let kept = other.is_some_and(|o| o.entries.iter().any(|(ow, _)| ow == w));
                if !kept {
                    let _ = std::fs::remove_file(p);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(set: &ListenerSet) -> Vec<String> {
        set.entries.iter().map(|(_, l)| l.url(false)).collect()
    }

    #[test]
    fn reload_keeps_unchanged_sockets_binds_new_ones_and_drops_removed() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("a.sock");
        let mut s = super::super::testkit::settings(vec!["127.0.0.1:0".parse().unwrap()]);
        s.unix_socket = Some(sock.clone());
        let old = ListenerSet::open(&s, None, None).unwrap();
        assert_eq!(wanted(&s).len(), 2);

        // Same config: every socket is the same one (same bound port, nothing fresh).
        let (same, fresh) = old.reopen(&s, None).unwrap();
        assert!(fresh.is_empty());
        assert_eq!(addrs(&same), addrs(&old));

        // One TCP entry more, the unix socket gone.
        let mut s2 = s.clone();
        s2.listen.push("127.0.0.1:0".parse().unwrap());
        s2.unix_socket = None;
        let (next, fresh) = old.reopen(&s2, None).unwrap();
        assert_eq!(fresh, vec![1]);
        assert_eq!(next.entries.len(), 2);
        assert_eq!(next.entries[0].1.url(false), old.entries[0].1.url(false));
        assert_ne!(next.entries[1].1.url(false), old.entries[0].1.url(false));
        // The old set's unix file goes once the new set takes over; kept ones stay.
        old.remove_files_not_in(Some(&same));
        assert!(sock.exists());
        old.remove_files_not_in(Some(&next));
        assert!(!sock.exists());
    }
}

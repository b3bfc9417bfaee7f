//! USR2: upgrade the binary in place (nginx's and gunicorn's USR2, finished by the new master
//! itself). The master forks and execs the binary on disk with the same arguments, handing it
//! every listening socket (descriptor numbers in `WAITRESSD_UPGRADE_FDS`, each with what it was
//! configured as, so the new master keeps them instead of binding) and systemd's notify socket.
//! The new master boots as usual; once its workers are ready it sends `MAINPID=` and `READY=1`
//! and asks the old master (`WAITRESSD_UPGRADE_FROM`) to stop gracefully (TERM). The old master
//! then drains like any graceful stop, but leaves the unix socket files and the pidfile (which
//! now names the new master) and tells systemd nothing. If the new master exits before that,
//! the old one logs why, takes the pidfile back and keeps serving. The new master is a child
//! of the old master's parent, not of the old master (spawn.rs `fork_sibling`): systemd then
//! waits for its drain at `systemctl stop` instead of SIGKILLing the unit.
use std::os::fd::RawFd;
use std::path::PathBuf;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::listeners::Wanted;
use super::pidfile::PidFile;
use super::state::{Master, Phase};
use super::{log_error, log_info, log_warn, spawn};

const ENV_FDS: &str = "WAITRESSD_UPGRADE_FDS";
const ENV_FROM: &str = "WAITRESSD_UPGRADE_FROM";
const ENV_STATUS: &str = "WAITRESSD_UPGRADE_STATUS";

/// What an old master handed to this one.
#[derive(Debug, Default)]
pub struct Handover {
    /// The old master's PID.
    pub from: i32,
    /// Its listening sockets, with what each was configured as.
    pub fds: Vec<(Wanted, RawFd)>,
    /// Its `status_listen` socket (binding the address again would fail while it listens).
    pub status: Option<RawFd>,
}

fn encode(w: &Wanted) -> String {
    match w {
        Wanted::Tcp(a) => format!("tcp:{a}"),
        Wanted::Unix(p) => format!("unix:{}", p.display()),
        Wanted::Inherited(fd) => format!("sd:{fd}"),
    }
}

fn decode(s: &str) -> Option<Wanted> {
    let (kind, v) = s.split_once(':')?;
    Some(match kind {
        "tcp" => Wanted::Tcp(v.parse().ok()?),
        "unix" => Wanted::Unix(PathBuf::from(v)),
        "sd" => Wanted::Inherited(v.parse().ok()?),
        _ => return None,
    })
}

/// `5=tcp:127.0.0.1:0;6=unix:/run/app.sock` ↔ entries. Unix paths with `;` are not handed over.
fn parse_fds(s: &str) -> Vec<(Wanted, RawFd)> {
    s.split(';')
        .filter_map(|e| {
            let (fd, w) = e.split_once('=')?;
            Some((decode(w)?, fd.parse().ok()?))
        })
        .collect()
}

/// Reads and removes the handover variables (workers and the app never see them).
pub fn take_handover() -> Option<Handover> {
    let from = std::env::var(ENV_FROM).ok();
    let fds = std::env::var(ENV_FDS).ok();
    let status = std::env::var(ENV_STATUS).ok();
    std::env::remove_var(ENV_FROM);
    std::env::remove_var(ENV_FDS);
    std::env::remove_var(ENV_STATUS);
    Some(Handover {
        from: from?.parse().ok()?,
        fds: parse_fds(&fds.unwrap_or_default()),
        status: status.and_then(|s| s.parse().ok()),
    })
}

impl Master {
    /// USR2: starts the new master from the binary on disk.
    pub(super) fn begin_upgrade(&mut self) {
        if matches!(self.phase, Phase::Reloading(_)) {
            log_info(&format!(
                "master {}: USR2 during a reload: queued, the upgrade starts once it is done",
                self.pid
            ));
            self.upgrade_queued = true;
            return;
        }
        if !matches!(self.phase, Phase::Running) || self.upgrade.is_some() {
            log_warn(&format!(
                "master {}: USR2 ignored (a stop or an upgrade is under way)",
                self.pid
            ));
            return;
        }
        if self.pid == 1 {
            // The init of a PID namespace (a container's entrypoint): its exit ends every
            // process in the namespace, the new master and its workers too.
            log_error(
                "master 1: USR2 refused: this master is the init (PID 1) of its container, and \
                 its exit would end every process in it, the new master too; roll out a new \
                 container instead",
            );
            return;
        }
        let Some(program) = self.exec.program.clone() else {
            log_error("USR2: cannot upgrade: the path of this binary is unknown");
            return;
        };
        let mut fds: Vec<RawFd> = self.listeners.raw_fds();
        let handed: Vec<String> = self
            .listeners
            .entries
            .iter()
            .map(|(w, l)| format!("{}={}", l.raw_fd(), encode(w)))
            .collect();
        let mut env = vec![
            (ENV_FDS.to_string(), handed.join(";")),
            (ENV_FROM.to_string(), self.pid.to_string()),
        ];
        if let Some(raw) = self.notifier.raw() {
            env.push(("NOTIFY_SOCKET".to_string(), raw.to_string()));
        }
        if let Some(s) = &self.status {
            fds.push(s.listener_fd());
            env.push((ENV_STATUS.to_string(), s.listener_fd().to_string()));
        }
        match spawn::fork_exec(&program, &self.exec.args, &env, &fds) {
            Ok(new) => {
                log_info(&format!(
                    "master {}: USR2: started the new master (pid {}) from {}",
                    self.pid,
                    new.pid,
                    program.display()
                ));
                self.upgrade = Some(new);
            }
            Err(e) => log_error(&format!(
                "master {}: USR2: cannot start {}: {}; still serving (put an executable waitressd \
                 at that path, then send USR2 again)",
                self.pid,
                program.display(),
                e.desc()
            )),
        }
    }

    /// True while a new master we started is alive: a graceful stop is then its takeover.
    pub(super) fn handing_over(&self) -> bool {
        self.upgrade.as_ref().is_some_and(|u| !u.exited())
    }

    /// Each turn: a new master that is our parent's child (not reaped here) and has exited
    /// failed to take over. (Our own child stays a zombie, alive to kill(2), until `reap`.)
    pub(super) fn check_upgrade(&mut self) {
        let Some(u) = &self.upgrade else { return };
        if !u.own() && u.exited() {
            let pid = u.pid;
            self.upgrade_exited(pid, "its own lines above say why");
        }
    }

    /// Reaped `pid`; true if it was the new master of an upgrade (which failed to take over).
    pub(super) fn upgrade_exited(&mut self, pid: Pid, how: &str) -> bool {
        if self.upgrade.as_ref().map(|u| u.pid) != Some(pid) {
            return false;
        }
        self.upgrade = None;
        if matches!(self.phase, Phase::Stopping { .. }) {
            // Taken over (or stopped during the upgrade): the new master had served, or was
            // to; this one only finishes its drain.
            log_warn(&format!(
                "master {}: the new master (pid {pid}) exited ({how}) while this master stops: \
                 nothing serves once its drain ends",
                self.pid
            ));
        } else {
            log_error(&format!(
                "master {}: upgrade failed: the new master (pid {pid}) exited ({how}); still \
                 serving",
                self.pid
            ));
        }
        if let Some(p) = &self.pidfile {
            if let Err(e) = p.take_back() {
                log_warn(&format!("cannot take the pidfile back: {e}"));
            }
        }
        self.notifier
            .notify(&format!("MAINPID={}\nSTATUS={}", self.pid, self.status()));
        true
    }

    /// A USR2's new master whose workers serve writes its PID over the old master's in the
    /// pidfile, before it tells systemd (`MAINPID=`) or answers a probe. False if it cannot:
    /// it then stops (exit 3) without a word to systemd, the old master serving on.
    pub(super) fn take_pidfile_over(&mut self) -> bool {
        let (Some(from), Some(path)) = (self.handover_from, self.settings.pidfile.clone()) else {
            return true;
        };
        match PidFile::take_over(&path, self.pid, from) {
            Ok(f) => {
                self.pidfile = Some(f);
                true
            }
            Err(e) => {
                // The old master writes its PID back once it sees this one exit.
                log_error(&format!(
                    "master {}: cannot take the pidfile over: {e}; stopping, the old master \
                     (pid {from}) keeps serving (fix the pidfile's directory, then send it \
                     USR2 again)",
                    self.pid
                ));
                // (`handover_from` stays: the unix socket files are the old master's, left in
                // place at exit, and systemd is told nothing.)
                self.exit_code = crate::exit::BOOT;
                self.begin_stop(false);
                false
            }
        }
    }

    /// The new master is serving (and holds the pidfile): it answers the status probes and
    /// asks the old master (our parent, usually) to stop gracefully.
    pub(super) fn finish_takeover(&mut self) {
        if let Some(s) = &mut self.status {
            s.set_answering(true);
        }
        if let Some(from) = self.handover_from.take() {
            log_info(&format!(
                "master {}: serving; stopping the old master (pid {from})",
                self.pid
            ));
            let _ = kill(Pid::from_raw(from), Signal::SIGTERM);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handed_fds_round_trip() {
        let entries = [
            Wanted::Tcp("127.0.0.1:0".parse().unwrap()),
            Wanted::Tcp("[::1]:8080".parse().unwrap()),
            Wanted::Unix(PathBuf::from("/run/app.sock")),
            Wanted::Inherited(3),
        ];
        let text: Vec<String> = entries
            .iter()
            .enumerate()
            .map(|(i, w)| format!("{}={}", i + 5, encode(w)))
            .collect();
        let back = parse_fds(&text.join(";"));
        assert_eq!(back.len(), 4);
        for (i, (w, fd)) in back.iter().enumerate() {
            assert_eq!((w, *fd), (&entries[i], i as RawFd + 5));
        }
        assert!(parse_fds("x;5=nope:1;=tcp:1.2.3.4:5").is_empty());
    }
}

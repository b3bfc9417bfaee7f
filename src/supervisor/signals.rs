//! The master's signals: blocked in every thread and read from a signalfd in the master loop,
//! so no handler ever runs (nothing to get wrong in a handler, and Python's `import signal`
//! cannot steal SIGINT). Each signal becomes a [`Command`] the loop acts on.
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

/// What a signal asks the master to do (gunicorn's arbiter vocabulary).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// TERM: graceful stop.
    Terminate,
    /// INT: graceful stop; a second one while stopping stops at once.
    Interrupt,
    /// QUIT: immediate stop.
    Quit,
    /// HUP: re-read the config, start new workers, retire the old ones.
    Reload,
    /// USR1: reopen log files (master and workers).
    ReopenLogs,
    /// TTIN: one worker more.
    MoreWorkers,
    /// TTOU: one worker less.
    FewerWorkers,
    /// CHLD: reap.
    Reap,
    /// USR2: start a new master from the binary on disk, hand it the listeners, stop.
    Upgrade,
}

/// Every signal the master handles.
pub const HANDLED: [Signal; 9] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGHUP,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGTTIN,
    Signal::SIGTTOU,
    Signal::SIGCHLD,
];

/// The signal → command table.
pub fn command(sig: Signal) -> Option<Command> {
    Some(match sig {
        Signal::SIGTERM => Command::Terminate,
        Signal::SIGINT => Command::Interrupt,
        Signal::SIGQUIT => Command::Quit,
        Signal::SIGHUP => Command::Reload,
        Signal::SIGUSR1 => Command::ReopenLogs,
        Signal::SIGTTIN => Command::MoreWorkers,
        Signal::SIGTTOU => Command::FewerWorkers,
        Signal::SIGCHLD => Command::Reap,
        Signal::SIGUSR2 => Command::Upgrade,
        _ => return None,
    })
}

/// The handled set.
pub fn handled_set() -> SigSet {
    let mut set = SigSet::empty();
    for s in HANDLED {
        set.add(s);
    }
    set
}

/// Blocks the handled signals in the calling thread (and every thread or child it creates
/// later) and returns a non-blocking signalfd that reads them. Call before any thread starts.
pub fn block_and_open() -> nix::Result<SignalFd> {
    let set = handled_set();
    set.thread_block()?;
    SignalFd::with_flags(&set, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
}

/// Drains every pending signal into commands, in arrival order.
pub fn drain(fd: &SignalFd) -> Vec<Command> {
    let mut out = Vec::new();
    while let Ok(Some(info)) = fd.read_signal() {
        if let Some(c) = Signal::try_from(info.ssi_signo as i32)
            .ok()
            .and_then(command)
        {
            out.push(c);
        }
    }
    out
}

/// Unblocks everything in this thread (used for the exec'ed or forked helpers that must
/// behave like plain processes).
pub fn unblock_all() -> nix::Result<()> {
    nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_table() {
        let table = [
            (Signal::SIGTERM, Some(Command::Terminate)),
            (Signal::SIGINT, Some(Command::Interrupt)),
            (Signal::SIGQUIT, Some(Command::Quit)),
            (Signal::SIGHUP, Some(Command::Reload)),
            (Signal::SIGUSR1, Some(Command::ReopenLogs)),
            (Signal::SIGTTIN, Some(Command::MoreWorkers)),
            (Signal::SIGTTOU, Some(Command::FewerWorkers)),
            (Signal::SIGCHLD, Some(Command::Reap)),
            (Signal::SIGUSR2, Some(Command::Upgrade)),
            (Signal::SIGPIPE, None),
        ];
        for (sig, want) in table {
            assert_eq!(command(sig), want, "{sig:?}");
        }
        for s in HANDLED {
            assert!(handled_set().contains(s));
        }
    }
}

//! Pure decisions of the master about a worker that exited: forget it, respawn it (with
//! backoff), abort a reload, or stop the master with the worker's boot exit code.
//!
//! The boot-failure policy: gunicorn halts on WORKER_BOOT_ERROR / APP_LOAD_ERROR whenever it
//! happens; waitressd halts only while no worker of that configuration has ever been ready
//! (first start: the config or the app is broken; a reload: it is abandoned instead). Once a
//! configuration serves, a worker failing at boot (broken code on disk mid-deploy) is retried
//! with backoff while its siblings serve, and the service recovers when the code is fixed.
use std::time::Duration;

use crate::exit;

/// What the master knew about the worker when it exited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitFacts {
    /// The master had asked it to stop (stop, reload retirement, TTOU).
    pub expected: bool,
    /// It had reported ready (app loaded, server built).
    pub ever_ready: bool,
    /// Its generation is a reload that has not been committed yet.
    pub reload_pending: bool,
    /// Some worker of its generation (its configuration) has been ready.
    pub serving: bool,
    /// Exit code, or None when killed by a signal.
    pub code: Option<i32>,
    /// Killed by a signal of its own crash (SIGSEGV, SIGABRT, ...), not one sent to it.
    pub crashed: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitAction {
    /// Nothing to do.
    Forget,
    /// Start a replacement (after the slot's backoff delay).
    Respawn,
    /// It failed at boot while its configuration serves: retry with backoff, loudly.
    RetryBoot,
    /// The new generation cannot boot: kill it, keep serving with the old one.
    AbortReload,
    /// Stop the master with this exit code.
    Halt(i32),
}

pub fn on_exit(f: ExitFacts) -> ExitAction {
    // 2 too: a worker can find a configuration error only it sees (e.g. the virtualenv).
    // And a crash before ready (a C extension's SIGSEGV at import) happens again on every
    // respawn: `--check-config` calls it an app load failure (4), so does the master.
    let boot_failure = !f.ever_ready
        && (f.crashed || matches!(f.code, Some(exit::CONFIG | exit::BOOT | exit::APP_LOAD)));
    match (f.expected, boot_failure, f.serving, f.reload_pending) {
        (true, ..) => ExitAction::Forget,
        (false, true, true, _) => ExitAction::RetryBoot,
        (false, true, false, true) => ExitAction::AbortReload,
        (false, true, false, false) => ExitAction::Halt(f.code.unwrap_or(exit::APP_LOAD)),
        (false, false, ..) => ExitAction::Respawn,
    }
}

/// Respawn delay per worker slot: the first crash respawns at once; crashes in quick
/// succession back off exponentially up to `MAX`; a worker that lived `STABLE` resets it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backoff {
    pub failures: u32,
}

impl Backoff {
    pub const STABLE: Duration = Duration::from_secs(10);
    pub const MAX: Duration = Duration::from_secs(10);
    const BASE: Duration = Duration::from_millis(100);

    /// Records an unexpected exit after `lived`; returns how long to wait before respawning.
    pub fn on_crash(&mut self, lived: Duration) -> Duration {
        if lived >= Self::STABLE {
            self.failures = 0;
        }
        self.failures = self.failures.saturating_add(1);
        match self.failures {
            0 | 1 => Duration::ZERO,
            n => Self::BASE
                .saturating_mul(1u32 << (n - 2).min(16))
                .min(Self::MAX),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_decision_table() {
        let f = |expected, ever_ready, reload_pending, code| ExitFacts {
            expected,
            ever_ready,
            reload_pending,
            serving: false,
            code,
            crashed: false,
        };
        let crashed = |facts: ExitFacts| ExitFacts {
            crashed: true,
            ..facts
        };
        let serving = |facts: ExitFacts| ExitFacts {
            serving: true,
            ..facts
        };
        let table = [
            (f(true, true, false, Some(0)), ExitAction::Forget),
            (f(true, false, true, Some(4)), ExitAction::Forget),
            (f(false, false, false, Some(4)), ExitAction::Halt(4)),
            (f(false, false, false, Some(3)), ExitAction::Halt(3)),
            (f(false, false, false, Some(2)), ExitAction::Halt(2)),
            (f(false, false, true, Some(4)), ExitAction::AbortReload),
            (f(false, true, false, Some(4)), ExitAction::Respawn), // was serving: not a boot error
            (f(false, false, false, None), ExitAction::Respawn),   // killed while booting
            (f(false, true, false, None), ExitAction::Respawn),    // kill -9
            (f(false, true, false, Some(1)), ExitAction::Respawn),
            (f(false, false, true, Some(70)), ExitAction::Respawn),
            // Its configuration serves (a sibling was ready): retried, never a halt.
            (
                serving(f(false, false, false, Some(4))),
                ExitAction::RetryBoot,
            ),
            (
                serving(f(false, false, false, Some(3))),
                ExitAction::RetryBoot,
            ),
            (
                serving(f(false, false, true, Some(4))),
                ExitAction::RetryBoot,
            ),
            (serving(f(true, false, false, Some(4))), ExitAction::Forget),
            (serving(f(false, true, false, Some(1))), ExitAction::Respawn),
            // A crash (SIGSEGV) before ready: a boot failure like exit 4; after: a crash.
            (crashed(f(false, false, false, None)), ExitAction::Halt(4)),
            (
                crashed(f(false, false, true, None)),
                ExitAction::AbortReload,
            ),
            (
                serving(crashed(f(false, false, false, None))),
                ExitAction::RetryBoot,
            ),
            (crashed(f(false, true, false, None)), ExitAction::Respawn),
            (crashed(f(true, false, false, None)), ExitAction::Forget),
        ];
        for (facts, want) in table {
            assert_eq!(on_exit(facts), want, "{facts:?}");
        }
    }

    #[test]
    fn backoff_grows_caps_and_resets() {
        let quick = Duration::from_millis(50);
        let mut b = Backoff::default();
        let delays: Vec<_> = (0..10).map(|_| b.on_crash(quick)).collect();
        assert_eq!(delays[0], Duration::ZERO);
        assert_eq!(delays[1], Duration::from_millis(100));
        assert_eq!(delays[2], Duration::from_millis(200));
        assert!(delays.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(*delays.last().unwrap(), Backoff::MAX);
        assert_eq!(b.on_crash(Backoff::STABLE), Duration::ZERO);
    }
}

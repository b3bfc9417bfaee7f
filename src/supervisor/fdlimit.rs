//! The open-file limit the workers need for `connection_limit`: the master raises its soft
//! limit (inherited by every worker it forks) at boot and at each reload when it is below what
//! the configuration needs, up to the hard limit, and warns when even that is too low, instead
//! of the workers meeting EMFILE at accept under load. It never lowers a limit.
use nix::sys::resource::{getrlimit, setrlimit, Resource};

use super::{log_info, log_warn};

/// Descriptors a worker holds beyond its connections: listeners, epoll, pipes, log files, the
/// interpreter's and the app's own.
const BASE: u64 = 256;
/// Per connection: its socket, and a body or a response spilled to a temporary file.
const PER_CONNECTION: u64 = 2;

/// Open files a worker may need with `connection_limit`.
fn needed(connection_limit: usize) -> u64 {
    (connection_limit as u64)
        .saturating_mul(PER_CONNECTION)
        .saturating_add(BASE)
}

/// What to do about limits (`soft`, `hard`) for `need` open files.
#[derive(Debug, PartialEq, Eq)]
enum Plan {
    Enough,
    Raise(u64),
    /// Raised to the hard limit, which is still below `need`.
    Short(u64),
}

fn plan(soft: u64, hard: u64, need: u64) -> Plan {
    if soft >= need {
        Plan::Enough
    } else if hard >= need {
        Plan::Raise(need)
    } else {
        Plan::Short(hard)
    }
}

/// Raises the soft open-file limit for `connection_limit` (see the module doc).
pub(super) fn fit(connection_limit: usize) {
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return;
    };
    let need = needed(connection_limit);
    let to = match plan(soft, hard, need) {
        Plan::Enough => return,
        Plan::Raise(to) => to,
        Plan::Short(to) => {
            log_warn(&format!(
                "connection_limit = {connection_limit}: a worker may need {need} open files, but \
                 the hard limit is {hard}; clients beyond it wait or fail (accept: too many open \
                 files): raise it (LimitNOFILE= in the systemd unit, ulimit -Hn before starting) \
                 or lower connection_limit"
            ));
            to
        }
    };
    if to <= soft {
        return;
    }
    match setrlimit(Resource::RLIMIT_NOFILE, to, hard) {
        Ok(()) => log_info(&format!(
            "open-file limit raised from {soft} to {to} for connection_limit = {connection_limit}"
        )),
        Err(e) => log_warn(&format!("cannot raise the open-file limit to {to}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_rises_to_what_connection_limit_needs_never_past_the_hard_one() {
        for (limit, soft, hard, want) in [
            // waitress's default, under systemd's default 1024:524288: enough already.
            (100, 1024, 524_288, Plan::Enough),
            (10_000, 1024, 524_288, Plan::Raise(20_256)),
            (10_000, 1024, 4096, Plan::Short(4096)),
            (10_000, 65_536, 65_536, Plan::Enough),
            // The largest accepted value does not overflow.
            (usize::MAX, 1024, u64::MAX, Plan::Raise(u64::MAX)),
        ] {
            assert_eq!(
                plan(soft, hard, needed(limit)),
                want,
                "{limit} {soft} {hard}"
            );
        }
    }
}

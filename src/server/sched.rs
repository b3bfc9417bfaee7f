//! Scheduling policy of a worker's threads: app threads always SCHED_BATCH, the loop thread
//! SCHED_BATCH only while the app threads are backlogged. Only under the default policy: a
//! worker started under another (`chrt`, systemd's `CPUSchedulingPolicy=`) keeps it.

/// Whether the calling thread runs under the default policy, SCHED_OTHER (threads inherit the
/// policy of the thread that starts them). Any other was the operator's choice and is kept.
pub(crate) fn is_default() -> bool {
    // SAFETY: sched_getscheduler only reads the calling thread's (pid 0) policy.
    let p = unsafe { libc::sched_getscheduler(0) };
    p & !libc::SCHED_RESET_ON_FORK == libc::SCHED_OTHER
}

/// SCHED_BATCH for an app thread (called by each at its start): its wake-up does not preempt
/// the thread running on that CPU, so on a busy core the loop collects every ready event
/// while an app thread finishes its batch, instead of the two preempting each other per
/// request. Measured (hello world through Python, server pinned to one core, wrk -c32):
/// context switches per request 0.36 → 0.15, CPU per request 18 → 12.4 µs, 55k → 79k req/s.
pub(crate) fn app_thread() {
    if is_default() {
        set(libc::SCHED_BATCH);
    }
}

/// The loop thread's policy while the app threads are backlogged (`Ctx::loop_policy` decides;
/// the loop asks only if it started under the default policy: `is_default`).
///
/// Normally SCHED_OTHER: the loop must run soon after a client's packet arrives, and a
/// SCHED_BATCH loop waits out the time slice of whatever else runs on its CPU (another worker,
/// another process): hello world at C=1 on a shared core took 2 ms per request with it and
/// 0.05 ms without (README "Performance").
///
/// While requests wait in the queue and no idle app thread will be woken for them, though, a
/// request the loop reads now cannot start sooner than when a busy app thread comes back for
/// work, and that thread lets a runnable loop go first before it sleeps (`Ctx::take`). Waking
/// then only preempts the app thread running Python: a Flask request at C=16 cost 1.7
/// voluntary and 0.8 involuntary context switches, the loop cutting into the app once per
/// arriving request; SCHED_BATCH while backlogged: 0.25 and 0.02. An app thread that goes
/// idle while the loop is SCHED_BATCH wakes it, so it never sleeps SCHED_BATCH with nothing
/// queued. Threads waiting for a slow client to read do not count as busy: they wait for the
/// loop to send, so the last busy one to start waiting wakes a SCHED_BATCH loop too.
pub(crate) fn loop_thread(backlogged: bool) {
    set(if backlogged {
        libc::SCHED_BATCH
    } else {
        libc::SCHED_OTHER
    });
}

/// Sets the calling thread's policy (priority 0, the only one either policy has), keeping
/// an operator's SCHED_RESET_ON_FORK.
fn set(policy: libc::c_int) {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: sched_getscheduler only reads the calling thread's (pid 0) policy.
    let reset = unsafe { libc::sched_getscheduler(0) }.max(0) & libc::SCHED_RESET_ON_FORK;
    // SAFETY: pid 0 = the calling thread; a valid sched_param on our stack. Switching between
    // SCHED_OTHER and SCHED_BATCH needs no privilege.
    let r = unsafe { libc::sched_setscheduler(0, policy | reset, &param) };
    if r != 0 {
        log::debug!(target: "waitress", "sched_setscheduler({policy}): {}", std::io::Error::last_os_error());
    }
}

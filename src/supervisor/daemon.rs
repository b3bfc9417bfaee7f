//! `--daemon` around the fork in spawn.rs: the daemon never keeps the caller's standard
//! streams (so `out=$(waitressd --daemon app.ini)`, ssh and Ansible return). Until every worker
//! is ready, its stdout and stderr go through a pipe that the foreground process copies to the
//! caller's stderr (boot errors and tracebacks reach the caller); once ready, they go where the
//! logs go (`detach_std_streams`) and the foreground exits 0, or with the boot error's code.
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout};

/// The descriptor stdout and stderr get once the daemon is serving (-1: not a daemon).
static LOG_FD: AtomicI32 = AtomicI32::new(-1);

/// After a boot error, the foreground copies the daemon's last words for at most this long
/// (a grandchild of the app could hold the pipe open).
const LAST_WORDS: Duration = Duration::from_secs(10);

/// Where a serving daemon's stdout and stderr go, opened before any worker is forked (so a
/// worker that dropped privileges can still use it): `error_log` when set, else /dev/null.
/// Returns the descriptor and what to tell the user.
pub(super) fn open_log_target(
    settings: &crate::config::Settings,
) -> std::io::Result<(OwnedFd, String)> {
    if let Some(p) = settings
        .error_log
        .as_deref()
        .filter(|p| *p != Path::new("-"))
    {
        let f = crate::logging::open_append(p)?;
        return Ok((f.into(), format!("logs: {}", p.display())));
    }
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")?;
    Ok((
        null.into(),
        "logs: /dev/null (--daemon without error_log; set error_log = PATH to keep them)"
            .to_string(),
    ))
}

/// Remembers the log target for `detach_std_streams` (in the daemon, before any worker).
pub(super) fn set_log_fd(fd: OwnedFd) {
    // Kept open for the daemon's life: workers forked later inherit it.
    LOG_FD.store(fd.as_raw_fd(), Ordering::SeqCst);
    std::mem::forget(fd);
}

/// In a daemon (master or worker) that is serving: stdout and stderr leave the boot pipe for
/// the log target. No-op when not daemonized.
pub fn detach_std_streams() {
    let fd = LOG_FD.load(Ordering::SeqCst);
    if fd < 0 {
        return;
    }
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    for target in [1, 2] {
        // SAFETY: dup2 onto the standard descriptors, from a descriptor this process keeps
        // open for its whole life (LOG_FD is never closed).
        unsafe { libc::dup2(fd, target) };
    }
}

/// The foreground side: copies the daemon's boot output to stderr, and to the log target
/// (`error_log`: the boot lines belong in it too), until the daemon reports; returns the exit
/// code (0 = every worker ready; no report at all = 1).
pub(super) fn wait_for_daemon(
    status: &OwnedFd,
    output: &OwnedFd,
    log: &OwnedFd,
    daemon: nix::unistd::Pid,
) -> i32 {
    let interrupt = interrupt_fd();
    let mut log = std::fs::File::from(log.try_clone().expect("dup the log target"));
    let mut stderr = std::io::stderr().lock();
    let mut code: Option<i32> = None;
    let mut output_open = true;
    let mut status_open = true;
    let mut deadline: Option<Instant> = None;
    let mut buf = [0u8; 8192];
    loop {
        if code == Some(0) || !output_open || deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        if let Some(sig) = interrupt.as_ref().and_then(interrupted) {
            return stop_starting_daemon(daemon, sig);
        }
        let mut fds = vec![PollFd::new(output.as_fd(), PollFlags::POLLIN)];
        if let Some(fd) = &interrupt {
            fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
        }
        if status_open {
            fds.push(PollFd::new(status.as_fd(), PollFlags::POLLIN));
        }
        if nix::poll::poll(&mut fds, PollTimeout::from(200u16)).unwrap_or(0) <= 0 {
            continue;
        }
        if interrupt.is_some() {
            fds.remove(1);
        }
        let out_ready = fds[0].revents().is_some_and(|r| !r.is_empty());
        let st_ready = fds
            .get(1)
            .and_then(|f| f.revents())
            .is_some_and(|r| !r.is_empty());
        drop(fds);
        if out_ready {
            match nix::unistd::read(output.as_fd(), &mut buf) {
                Ok(0) => output_open = false,
                Ok(n) => {
                    let _ = stderr.write_all(&buf[..n]);
                    let _ = log.write_all(&buf[..n]);
                }
                Err(nix::Error::EINTR) | Err(nix::Error::EAGAIN) => {}
                Err(_) => output_open = false,
            }
        }
        if st_ready {
            let mut b = [0u8; 1];
            match nix::unistd::read(status.as_fd(), &mut b) {
                Ok(1) => code = Some(b[0] as i32),
                Ok(_) | Err(_) => status_open = false,
            }
            if code != Some(0) {
                // A boot error (or a daemon that died without a word): its message follows.
                deadline.get_or_insert(Instant::now() + LAST_WORDS);
                status_open = false;
            }
        }
    }
    if code.is_none() && status_open {
        // The output ended first: the status byte, if any, was written before that.
        let mut fds = [PollFd::new(status.as_fd(), PollFlags::POLLIN)];
        if nix::poll::poll(&mut fds, PollTimeout::ZERO).unwrap_or(0) > 0 {
            let mut b = [0u8; 1];
            if let Ok(1) = nix::unistd::read(status.as_fd(), &mut b) {
                code = Some(b[0] as i32);
            }
        }
    }
    if code == Some(0) {
        // What the daemon wrote before it reported (its "logs:" line) is in the pipe already.
        let _ = nix::fcntl::fcntl(
            output.as_fd(),
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        );
        while let Ok(n) = nix::unistd::read(output.as_fd(), &mut buf) {
            if n == 0 {
                break;
            }
            let _ = stderr.write_all(&buf[..n]);
            let _ = log.write_all(&buf[..n]);
        }
    }
    let _ = stderr.flush();
    code.unwrap_or(1)
}

/// In the daemon, right after the fork: stdin from /dev/null, stdout and stderr into the boot
/// pipe (never the caller's streams).
pub(super) fn redirect_into_pipe(pipe: &OwnedFd) {
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // stdin reads nothing, as under waitress-serve started from a service manager (never
    // the log target, which is open for writing only: a read from it fails with EBADF).
    let null = std::fs::File::open("/dev/null");
    // SAFETY: dup2 onto the standard descriptors from descriptors this process owns.
    unsafe {
        if let Ok(null) = &null {
            libc::dup2(null.as_raw_fd(), 0);
        }
        libc::dup2(pipe.as_raw_fd(), 1);
        libc::dup2(pipe.as_raw_fd(), 2);
    }
}

/// The foreground caller inherits the master's blocked signals: a signalfd makes Ctrl-C,
/// `timeout`'s TERM, a closed terminal's HUP or QUIT readable instead of lost (None if the
/// descriptor cannot be made: the caller then waits as before).
fn interrupt_fd() -> Option<nix::sys::signalfd::SignalFd> {
    use nix::sys::signal::{SigSet, Signal};
    use nix::sys::signalfd::{SfdFlags, SignalFd};
    let mut set = SigSet::empty();
    for sig in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
    ] {
        set.add(sig);
    }
    set.thread_block().ok()?;
    SignalFd::with_flags(&set, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC).ok()
}

fn interrupted(fd: &nix::sys::signalfd::SignalFd) -> Option<nix::sys::signal::Signal> {
    let info = fd.read_signal().ok()??;
    nix::sys::signal::Signal::try_from(info.ssi_signo as i32).ok()
}

/// The caller of a start was interrupted before the daemon served: the start is called off
/// (the daemon, in its own session, would otherwise come up unseen later), and the caller
/// exits as a shell reports a signal's death (128 + its number).
fn stop_starting_daemon(daemon: nix::unistd::Pid, sig: nix::sys::signal::Signal) -> i32 {
    let _ = nix::sys::signal::kill(daemon, nix::sys::signal::Signal::SIGTERM);
    crate::logbridge::stderr_line(&format!(
        "waitressd: {} while the daemon (pid {daemon}) was starting: it is told to stop \
         (TERM); start it again when ready",
        sig.as_str()
    ));
    128 + sig as i32
}

//! Every fork in waitressd lives here: worker processes, the `--daemon` detach, the USR2
//! upgrade's new master (`fork_exec` of `Exec`, how this binary was started), and (in tests)
//! a master under test. The child side never returns into the caller's stack: it runs its body
//! and `_exit`s, so no destructor of the master's state (pidfile, unix socket files) runs twice.
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::ptr;

use nix::fcntl::OFlag;
use nix::unistd::{ForkResult, Pid};

/// Exit code of a child whose body panicked (EX_SOFTWARE).
pub const PANIC_EXIT: i32 = 70;

/// Forks; the child runs `body` and exits with its return code. Returns the child's PID.
pub fn fork_child(body: impl FnOnce() -> i32) -> nix::Result<Pid> {
    // SAFETY: the master is single-threaded (signals come from a signalfd, `status_listen` is
    // served from its poll loop), so no other thread can hold a lock (malloc's, stdio's, a
    // mutex) that the child would find locked forever. (Except threads a `preload_app` app
    // starts itself, as under any pre-forking server; the worker spawn runs CPython's fork
    // protocol around this fork for the interpreter's own locks.) The child never returns
    // from this function.
    match unsafe { nix::unistd::fork() }? {
        ForkResult::Parent { child } => Ok(child),
        ForkResult::Child => {
            let code =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)).unwrap_or(PANIC_EXIT);
            let _ = std::io::stdout().flush();
            let _ = std::io::stderr().flush();
            // SAFETY: _exit ends the process without running atexit handlers or the
            // destructors of state copied from the parent; always sound.
            unsafe { libc::_exit(code) }
        }
    }
}

/// The byte on a worker's status pipe that says it is ready.
pub const READY: u8 = b'R';

/// The write end of a worker's status pipe: `READY` tells the master the app is loaded and
/// the server is built; later bytes ask the master for things (retire.rs). Safe from any
/// thread (one write(2) of one byte is atomic).
#[derive(Debug, Clone)]
pub struct ReadySignal(std::sync::Arc<OwnedFd>);

impl ReadySignal {
    pub fn send(&self) {
        self.send_byte(READY);
    }
    pub fn send_byte(&self, b: u8) {
        let _ = nix::unistd::write(self.0.as_fd(), &[b]);
    }
}

/// A forked worker as the master sees it.
#[derive(Debug)]
pub struct Spawned {
    pub pid: Pid,
    /// Read end of the ready pipe (non-blocking).
    pub ready: OwnedFd,
}

/// Forks a worker: the child closes the master's descriptors listed in `close_in_child`, then
/// runs `body` with its ready signal.
pub fn spawn_worker(
    close_in_child: &[RawFd],
    body: impl FnOnce(ReadySignal) -> i32,
) -> nix::Result<Spawned> {
    let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)?;
    let r_fd = r.as_raw_fd();
    let pid = fork_child(move || {
        for &fd in close_in_child.iter().chain(std::iter::once(&r_fd)) {
            // SAFETY: these are the master's descriptors, copied into this child by fork; no
            // object in the child's live code owns them (the copies of the master's structs
            // are never used or dropped here).
            unsafe { libc::close(fd) };
        }
        body(ReadySignal(std::sync::Arc::new(w)))
    })?;
    Ok(Spawned { pid, ready: r })
}

/// How this binary was started, to start it again (captured at boot, before a package upgrade
/// replaces the file: the path then names the new binary).
#[derive(Debug, Default)]
pub struct Exec {
    pub program: Option<std::path::PathBuf>,
    pub args: Vec<std::ffi::OsString>,
}

impl Exec {
    pub fn current() -> Exec {
        Exec {
            program: std::env::current_exe().ok(),
            args: std::env::args_os().skip(1).collect(),
        }
    }
}

/// The new master of a USR2 upgrade, as the old master sees it.
#[derive(Debug)]
pub struct Sibling {
    pub pid: Pid,
    pub kin: Kin,
}

/// Whose child the new master is, and so how the old master learns that it has exited.
#[derive(Debug)]
pub enum Kin {
    /// Our parent's child (`CLONE_PARENT`), with a pidfd that polls readable once it exits.
    Pidfd(OwnedFd),
    /// Our parent's child on a kernel before 5.2, which ignores `CLONE_PIDFD`: `/proc` tells.
    Parents,
    /// Our own child (the `fork` fallback): alive until `waitpid` reaps it (its exit code is
    /// logged there).
    Own,
}

impl Sibling {
    /// Whether the new master is our own child (reaped by our `waitpid`).
    pub fn own(&self) -> bool {
        matches!(self.kin, Kin::Own)
    }

    /// Whether the new master has exited. Our own child counts as alive until reaped. Our
    /// parent's child without a pidfd has exited when it is gone, a zombie its parent has not
    /// reaped (a test harness or supervisor that waits only for the old master never does),
    /// or its PID now belongs to a process that is not our parent's child (reaped, and the
    /// PID reused).
    pub fn exited(&self) -> bool {
        if let Kin::Pidfd(fd) = &self.kin {
            return pidfd_exited(fd);
        }
        if nix::sys::signal::kill(self.pid, None).is_err() {
            return true;
        }
        if self.own() {
            return false;
        }
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)) else {
            return true;
        };
        // "pid (comm) S ppid ...": comm may hold spaces and parentheses.
        let mut after = stat
            .rsplit_once(')')
            .map_or("", |(_, r)| r)
            .split_whitespace();
        let (state, ppid) = (after.next(), after.next());
        state == Some("Z")
            || state == Some("X")
            || ppid != Some(&nix::unistd::getppid().as_raw().to_string())
    }
}

/// Which side of `fork_sibling` this is.
enum Forked {
    Child,
    /// The child's PID and whose child it is.
    Parent(Pid, Kin),
}

/// fork(2), but the child is our parent's child (`CLONE_PARENT`) and a pidfd of it is returned
/// (`CLONE_PIDFD`): the new master of an upgrade must be the service manager's own child, or
/// systemd, which decides once at `MAINPID=` whether it may wait for its main process, takes
/// it for an alien and at `systemctl stop` sends SIGTERM, does not wait, and SIGKILLs the
/// whole unit. A namespace's init (PID 1 of a container), which may not use `CLONE_PARENT`,
/// forks as usual.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn fork_sibling() -> nix::Result<Forked> {
    use std::os::fd::FromRawFd;
    let mut pidfd: libc::c_int = -1;
    let flags = libc::CLONE_PARENT | libc::CLONE_PIDFD | libc::SIGCHLD;
    // SAFETY: clone(2) without CLONE_VM and with a null stack is fork(2): the child gets a
    // copy of the address space and continues here on its copy of the stack. The master is
    // single-threaded (see `fork_child`), and the child only execs or `_exit`s (the caller's
    // closure allocates nothing and takes no lock). The kernel writes the pidfd into `pidfd`
    // (the parent_tid argument, with CLONE_PIDFD) in the parent. Arguments: x86_64 takes
    // (flags, stack, parent_tid, child_tid, tls); aarch64 (CONFIG_CLONE_BACKWARDS) takes
    // (flags, stack, parent_tid, tls, child_tid): the same for us, the last two being 0.
    // (s390x swaps flags and stack, microblaze adds a stack size: those fork, see below.)
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone,
            flags as libc::c_ulong,
            0usize,
            &mut pidfd as *mut libc::c_int,
            0usize,
            0usize,
        )
    };
    match r {
        0 => Ok(Forked::Child),
        pid if pid > 0 => {
            // SAFETY: with CLONE_PIDFD the kernel installed a new close-on-exec descriptor
            // in this process and stored it in `pidfd`; nothing else owns it.
            let kin = if pidfd >= 0 {
                Kin::Pidfd(unsafe { OwnedFd::from_raw_fd(pidfd) })
            } else {
                Kin::Parents
            };
            Ok(Forked::Parent(Pid::from_raw(pid as i32), kin))
        }
        // EINVAL: a namespace's init; ENOSYS or EPERM: a seccomp filter (a container
        // runtime's) that refuses these flags. The upgrade still happens, as our own child.
        _ => match nix::Error::last() {
            nix::Error::EINVAL | nix::Error::ENOSYS | nix::Error::EPERM => plain_fork(),
            e => Err(e),
        },
    }
}

/// Where clone(2)'s argument order is not checked here: the new master is our own child.
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn fork_sibling() -> nix::Result<Forked> {
    plain_fork()
}

/// fork(2) for `fork_sibling`: the child is ours.
fn plain_fork() -> nix::Result<Forked> {
    // SAFETY: as in `fork_child`.
    match unsafe { nix::unistd::fork() }? {
        ForkResult::Parent { child } => Ok(Forked::Parent(child, Kin::Own)),
        ForkResult::Child => Ok(Forked::Child),
    }
}

/// Whether the process of `pidfd` has exited (the pidfd polls readable).
pub fn pidfd_exited(pidfd: &OwnedFd) -> bool {
    let mut fds = [nix::poll::PollFd::new(
        pidfd.as_fd(),
        nix::poll::PollFlags::POLLIN,
    )];
    nix::poll::poll(&mut fds, nix::poll::PollTimeout::ZERO).unwrap_or(0) > 0
}

/// Forks and execs `program args` with `env` added, keeping the descriptors `keep` open across
/// the exec (every other descriptor of the master is close-on-exec). The USR2 upgrade: the new
/// master is made our parent's child where it can be (`fork_sibling`).
pub fn fork_exec(
    program: &std::path::Path,
    args: &[std::ffi::OsString],
    env: &[(String, String)],
    keep: &[RawFd],
) -> nix::Result<Sibling> {
    use std::os::unix::ffi::OsStrExt;
    let cstr = |b: &[u8]| std::ffi::CString::new(b).map_err(|_| nix::Error::EINVAL);
    let prog = cstr(program.as_os_str().as_bytes())?;
    let mut argv = vec![prog.clone()];
    for a in args {
        argv.push(cstr(a.as_bytes())?);
    }
    // The environment is built before the fork: the child allocates nothing and takes no
    // lock (set_var would take std's environment lock, which another thread may hold).
    let mut envp = Vec::new();
    for (k, v) in std::env::vars_os() {
        if !env.iter().any(|(name, _)| std::ffi::OsStr::new(name) == k) {
            envp.push(cstr(&[k.as_bytes(), b"=", v.as_bytes()].concat())?);
        }
    }
    for (k, v) in env {
        envp.push(cstr(format!("{k}={v}").as_bytes())?);
    }
    // How the exec went: a successful exec closes this close-on-exec pipe, a failed one writes
    // its errno into it first (as std's Command does), so the old master can say why.
    let (outcome_r, outcome_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    // The pointer arrays too: nix's execve would collect them in the child, and a raw clone
    // (unlike glibc's fork) leaves malloc's locks as another thread (a `preload_app` app's)
    // held them.
    let ptrs = |v: &[std::ffi::CString]| -> Vec<*const libc::c_char> {
        v.iter()
            .map(|c| c.as_ptr())
            .chain(std::iter::once(ptr::null()))
            .collect()
    };
    let (argv_p, envp_p) = (ptrs(&argv), ptrs(&envp));
    let Forked::Parent(pid, kin) = fork_sibling()? else {
        for &fd in keep {
            // SAFETY: clears FD_CLOEXEC on a listening socket this child owns a copy of.
            unsafe { libc::fcntl(fd, libc::F_SETFD, 0) };
        }
        // The new master blocks its signals itself; it starts from a clean mask.
        let _ = super::signals::unblock_all();
        // SAFETY: `prog` and the strings `argv_p`/`envp_p` point to live on, both arrays end
        // with a null pointer; execve(2) returns only on failure.
        unsafe { libc::execve(prog.as_ptr(), argv_p.as_ptr(), envp_p.as_ptr()) };
        let errno = nix::Error::last_raw();
        let _ = nix::unistd::write(&outcome_w, &errno.to_ne_bytes());
        // SAFETY: the child ends here, exec failed (the old master keeps serving), without
        // running destructors of the state it copied from the master.
        unsafe { libc::_exit(127) }
    };
    drop(outcome_w);
    // EOF now means the exec happened.
    let mut errno = [0u8; 4];
    let mut got = 0;
    while got < errno.len() {
        match nix::unistd::read(&outcome_r, &mut errno[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(nix::Error::EINTR) => {}
            Err(_) => break,
        }
    }
    if got == errno.len() {
        // The child is exiting 127; reap it here, where its failure is explained (a sibling
        // is our parent's to reap, and waitpid fails at once).
        let _ = nix::sys::wait::waitpid(pid, None);
        return Err(nix::Error::from_raw(i32::from_ne_bytes(errno)));
    }
    Ok(Sibling { pid, kin })
}

/// Tells the foreground parent of `--daemon` how start-up went.
#[derive(Debug)]
pub struct DaemonStatus(Option<OwnedFd>, String);

impl DaemonStatus {
    /// Not daemonized: nothing to tell.
    pub fn none() -> DaemonStatus {
        DaemonStatus(None, String::new())
    }
    /// The pipe's descriptor, which forked workers must close.
    pub fn raw_fd(&self) -> Option<RawFd> {
        self.0.as_ref().map(|f| f.as_raw_fd())
    }
    /// Sends the exit code the foreground process should exit with; only once.
    pub fn report(&mut self, code: i32) {
        if let Some(fd) = self.0.take() {
            let _ = nix::unistd::write(fd.as_fd(), &[code as u8]);
        }
    }
    /// Every worker is ready: says once where the logs go, lets the foreground exit 0, and
    /// moves stdout/stderr to the log target.
    pub fn report_ready(&mut self) {
        if self.0.is_some() {
            // One write(2): the foreground copies whole lines.
            crate::logbridge::stderr_line(&format!(
                "waitressd: daemon {} is serving; {}",
                std::process::id(),
                self.1
            ));
            self.report(0);
            super::daemon::detach_std_streams();
        }
    }
}

/// `--daemon`: forks; the foreground parent copies the daemon's boot output to its stderr
/// until the daemon reports (ready → 0, boot failure → its exit code, after its message) and
/// exits with that; the daemon becomes a session leader whose standard streams never are the
/// caller's (stdin /dev/null; stdout/stderr the boot pipe, then the log target).
pub fn daemonize(settings: &crate::config::Settings) -> nix::Result<DaemonStatus> {
    let io = |e: std::io::Error| nix::Error::from_raw(e.raw_os_error().unwrap_or(libc::EIO));
    let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    let (out_r, out_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    let (log_fd, where_logs_go) = super::daemon::open_log_target(settings).map_err(io)?;
    // SAFETY: as in `fork_child`: single-threaded master, before any worker exists. The
    // parent branch only reads the pipes and `_exit`s.
    match unsafe { nix::unistd::fork() }? {
        ForkResult::Parent { child } => {
            drop(w);
            drop(out_w);
            let code = super::daemon::wait_for_daemon(&r, &out_r, &log_fd, child);
            // SAFETY: the foreground parent ends here without touching the state the daemon
            // now owns (listeners, unix socket files).
            unsafe { libc::_exit(code) }
        }
        ForkResult::Child => {
            drop(r);
            drop(out_r);
            nix::unistd::setsid()?;
            super::daemon::redirect_into_pipe(&out_w);
            drop(out_w);
            super::daemon::set_log_fd(log_fd);
            Ok(DaemonStatus(Some(w), where_logs_go))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A zombie: a child that exited and is not reaped yet.
    fn zombie() -> Pid {
        // SAFETY: the child only calls _exit, async-signal-safe in a multi-threaded process.
        let pid = match unsafe { nix::unistd::fork() }.unwrap() {
            ForkResult::Parent { child } => child,
            // SAFETY: ends the child at once.
            ForkResult::Child => unsafe { libc::_exit(0) },
        };
        let stat = || std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        for _ in 0..10_000 {
            if stat()
                .rsplit_once(')')
                .unwrap()
                .1
                .trim_start()
                .starts_with('Z')
            {
                return pid;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        panic!("child {pid} never exited");
    }

    /// On a kernel before 5.2 (no pidfd), a new master that is our parent's child and exited
    /// stays a zombie while its parent does not reap it: it has exited all the same (before,
    /// kill(pid, 0) found it alive, and the old master took a USR2 whose new master had died
    /// for a handover under way: HUP refused, the next TERM taken for the takeover).
    #[test]
    fn an_unreaped_sibling_without_a_pidfd_has_exited() {
        let pid = zombie();
        let sibling = Sibling {
            pid,
            kin: Kin::Parents,
        };
        assert!(sibling.exited(), "a zombie sibling has exited");
        let child = Sibling { pid, kin: Kin::Own };
        assert!(!child.exited(), "our own child is alive until reaped");
        nix::sys::wait::waitpid(pid, None).unwrap();
        assert!(child.exited(), "reaped");
    }
}

//! `waitressd reload`: an honest reload for `ExecReload=` and init scripts. The client binds
//! the abstract datagram socket `waitressd-reload-<master pid>`, sends HUP, and waits; the
//! master sends the outcome there (`ok ...` once the new workers serve, `failed: why` when the
//! reload is abandoned and the old workers keep serving). The sender's PID is checked with
//! SCM_CREDENTIALS, so no other process can fake an outcome.
use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use super::pidfile::{holder, Holder};
use nix::sys::socket::{
    bind, recvmsg, sendto, setsockopt, socket, sockopt, AddressFamily, ControlMessageOwned,
    MsgFlags, SockFlag, SockType, UnixAddr,
};

fn addr(master: i32) -> nix::Result<UnixAddr> {
    UnixAddr::new_abstract(format!("waitressd-reload-{master}").as_bytes())
}

fn dgram() -> nix::Result<OwnedFd> {
    socket(
        AddressFamily::Unix,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )
}

/// Master side: tells a waiting `waitressd reload` (if any) how the reload ended.
pub fn report(ok: bool, detail: &str) {
    let master = std::process::id() as i32;
    let msg = if ok {
        format!("ok {detail}")
    } else {
        format!("failed: {detail}")
    };
    if let (Ok(fd), Ok(a)) = (dgram(), addr(master)) {
        // Nobody listening (a plain `kill -HUP`) is the normal case: ECONNREFUSED, ignored.
        let _ = sendto(fd.as_raw_fd(), msg.as_bytes(), &a, MsgFlags::MSG_DONTWAIT);
    }
}

/// What `waitressd reload` concluded. Exit codes: 0 ok, 1 abandoned, 3 cannot ask.
#[derive(Debug)]
pub enum Outcome {
    Reloaded(String),
    Abandoned(String),
    Trouble(String),
}

impl Outcome {
    pub fn exit_code(&self) -> i32 {
        match self {
            Outcome::Reloaded(_) => crate::exit::OK,
            Outcome::Abandoned(_) => 1,
            Outcome::Trouble(_) => crate::exit::BOOT,
        }
    }
}

/// Client side: HUP to `master`, then wait up to `timeout` for its outcome.
pub fn reload(master: i32, timeout: Duration) -> Outcome {
    let trouble = |what: &str, e: nix::Error| Outcome::Trouble(format!("{what}: {e}"));
    let fd = match dgram() {
        Ok(fd) => fd,
        Err(e) => return trouble("socket", e),
    };
    let a = match addr(master) {
        Ok(a) => a,
        Err(e) => return trouble("address", e),
    };
    if let Err(e) = bind(fd.as_raw_fd(), &a) {
        return Outcome::Trouble(match e {
            nix::Error::EADDRINUSE => format!("another reload of {master} is waiting"),
            e => format!("bind: {e}"),
        });
    }
    let _ = setsockopt(&fd, sockopt::PassCred, &true);
    // A pidfile left by a master that died may name a PID given since to another program,
    // which a HUP could kill: only a waitressd is signalled.
    match holder(master) {
        Holder::Waitressd => {}
        Holder::Gone => {
            return Outcome::Trouble(format!(
                "master {master} is not running (a stale pidfile? start waitressd first)"
            ))
        }
        Holder::Other(comm) => {
            return Outcome::Trouble(format!(
                "process {master} is {comm:?}, not waitressd: not signalled (a stale pidfile? \
                 give the master's PID with --pid)"
            ))
        }
    }
    if let Err(e) = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(master),
        nix::sys::signal::Signal::SIGHUP,
    ) {
        return trouble(&format!("cannot signal master {master}"), e);
    }
    let end = Instant::now() + timeout;
    let mut buf = [0u8; 1024];
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Outcome::Trouble(format!(
                "no outcome from master {master} within {}s; the reload goes on (new workers \
                 still loading the app?): its log says how it ended, or give --timeout more seconds",
                timeout.as_secs()
            ));
        }
        let mut fds = [nix::poll::PollFd::new(
            std::os::fd::AsFd::as_fd(&fd),
            nix::poll::PollFlags::POLLIN,
        )];
        let ms = left.as_millis().min(1000) as u16;
        let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(ms));
        if nix::sys::signal::kill(nix::unistd::Pid::from_raw(master), None).is_err() {
            return Outcome::Trouble(format!("master {master} exited"));
        }
        let mut iov = [IoSliceMut::new(&mut buf)];
        let mut cmsg = nix::cmsg_space!(nix::sys::socket::UnixCredentials);
        let (len, from) = match recvmsg::<()>(
            fd.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_DONTWAIT,
        ) {
            Ok(m) => {
                let from = m.cmsgs().ok().and_then(|mut c| {
                    c.find_map(|c| match c {
                        ControlMessageOwned::ScmCredentials(cr) => Some(cr.pid()),
                        _ => None,
                    })
                });
                (m.bytes, from)
            }
            Err(nix::Error::EAGAIN) => continue,
            Err(e) => return trouble("receive", e),
        };
        if from != Some(master) {
            continue; // not from the master: ignored
        }
        let text = String::from_utf8_lossy(&buf[..len]).into_owned();
        return match text.strip_prefix("ok ") {
            Some(rest) => Outcome::Reloaded(rest.to_string()),
            None => Outcome::Abandoned(text.trim_start_matches("failed: ").to_string()),
        };
    }
}

/// `waitressd reload [--pid PID | --pidfile PATH] [--timeout SECONDS]` (PID defaults to
/// `$MAINPID`, as systemd sets it for `ExecReload=`). Returns the exit code.
pub fn main(args: &[String]) -> i32 {
    let usage = "usage: waitressd reload [--pid PID | --pidfile PATH] [--timeout SECONDS]";
    // The PID as given, and where from (for the message when it is not one).
    let mut pid = std::env::var("MAINPID")
        .ok()
        .filter(|p| !p.trim().is_empty())
        .map(|p| (p, "$MAINPID".to_string()));
    let mut timeout = 90u64;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let v = it.next();
        match (a.as_str(), v) {
            ("--pid", Some(v)) => pid = Some((v.clone(), "--pid".into())),
            ("--pidfile", Some(v)) => match std::fs::read_to_string(v) {
                Ok(s) => pid = Some((s.trim().to_string(), format!("pidfile {v}"))),
                Err(e) => {
                    eprintln!("waitressd reload: cannot read pidfile {v}: {e} (is it running?)");
                    return crate::exit::BOOT;
                }
            },
            ("--timeout", Some(v)) => match v.parse() {
                Ok(t) => timeout = t,
                Err(_) => {
                    eprintln!("waitressd reload: --timeout {v}: not a number of seconds\n{usage}");
                    return crate::exit::CONFIG;
                }
            },
            _ => {
                eprintln!("waitressd reload: unexpected {a:?}\n{usage}");
                return crate::exit::CONFIG;
            }
        }
    }
    let Some((given, from)) = pid else {
        eprintln!("waitressd reload: no master PID (give --pid, --pidfile or $MAINPID)\n{usage}");
        return crate::exit::CONFIG;
    };
    let Some(master) = given.trim().parse::<i32>().ok().filter(|&p| p > 0) else {
        eprintln!(
            "waitressd reload: invalid PID '{}' ({from}): give the master's process ID, \
             a positive number\n{usage}",
            given.escape_debug()
        );
        return crate::exit::CONFIG;
    };
    let out = reload(master, Duration::from_secs(timeout));
    match &out {
        Outcome::Reloaded(m) => println!("waitressd reload: reloaded ({m})"),
        Outcome::Abandoned(m) => {
            eprintln!("waitressd reload: reload abandoned, old workers still serving: {m}")
        }
        Outcome::Trouble(m) => eprintln!("waitressd reload: {m}"),
    }
    out.exit_code()
}

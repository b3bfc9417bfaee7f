//! systemd integration without a crate: `sd_notify` over the `NOTIFY_SOCKET` datagram socket
//! (`Type=notify` / `notify-reload`) and socket activation from `LISTEN_PID`/`LISTEN_FDS`.
use std::ops::Range;
use std::os::fd::RawFd;
use std::os::unix::net::{SocketAddr, UnixDatagram};

/// sd_listen_fds(3): passed descriptors start at 3.
pub const LISTEN_FDS_START: RawFd = 3;

/// Sends state lines to systemd when `NOTIFY_SOCKET` was set at start; otherwise does nothing.
#[derive(Debug, Default)]
pub struct Notifier {
    addr: Option<SocketAddr>,
    /// `NOTIFY_SOCKET` as given (handed to a new master at a USR2 upgrade).
    raw: Option<String>,
}

impl Notifier {
    /// Reads `NOTIFY_SOCKET` (a path, or `@name` for the abstract namespace) and removes it from
    /// the environment so workers and the app do not talk to systemd as the main PID.
    pub fn from_env() -> Notifier {
        let Some(raw) = std::env::var_os("NOTIFY_SOCKET") else {
            return Notifier::default();
        };
        std::env::remove_var("NOTIFY_SOCKET");
        let raw = raw.to_string_lossy().into_owned();
        Notifier {
            addr: parse_addr(&raw),
            raw: Some(raw),
        }
    }

    pub fn raw(&self) -> Option<&str> {
        self.raw.as_deref()
    }

    pub fn enabled(&self) -> bool {
        self.addr.is_some()
    }

    /// Sends one notification (newline-separated `KEY=VALUE` lines); errors are logged only.
    pub fn notify(&self, state: &str) {
        let Some(addr) = &self.addr else { return };
        let sent = UnixDatagram::unbound().and_then(|s| s.send_to_addr(state.as_bytes(), addr));
        if let Err(e) = sent {
            super::log_warn(&format!("sd_notify failed: {e}"));
        }
    }

    pub fn ready(&self, status: &str) {
        self.notify(&format!(
            "READY=1\nSTATUS={status}\nMAINPID={}",
            std::process::id()
        ));
    }

    /// `RELOADING=1` with `MONOTONIC_USEC`, which `Type=notify-reload` requires.
    pub fn reloading(&self) {
        self.notify(&format!(
            "RELOADING=1\nMONOTONIC_USEC={}\nSTATUS=reloading",
            monotonic_usec()
        ));
    }

    pub fn stopping(&self) {
        self.notify("STOPPING=1\nSTATUS=stopping");
    }

    pub fn status(&self, status: &str) {
        self.notify(&format!("STATUS={status}"));
    }
}

fn parse_addr(raw: &str) -> Option<SocketAddr> {
    if let Some(name) = raw.strip_prefix('@') {
        use std::os::linux::net::SocketAddrExt;
        SocketAddr::from_abstract_name(name.as_bytes()).ok()
    } else if raw.starts_with('/') {
        SocketAddr::from_pathname(raw).ok()
    } else {
        None
    }
}

fn monotonic_usec() -> u64 {
    match nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC) {
        Ok(t) => t.tv_sec() as u64 * 1_000_000 + t.tv_nsec() as u64 / 1000,
        Err(_) => 0,
    }
}

/// sd_listen_fds(3) rules: the variables count only when `LISTEN_PID` is our PID; the
/// descriptors are `3 .. 3+LISTEN_FDS`. Ok(None) when socket activation is not in use.
pub fn listen_fds(
    our_pid: u32,
    listen_pid: Option<&str>,
    listen_fds: Option<&str>,
) -> Result<Option<Range<RawFd>>, String> {
    let (Some(pid), Some(n)) = (listen_pid, listen_fds) else {
        return Ok(None);
    };
    let pid: u32 = pid
        .trim()
        .parse()
        .map_err(|_| format!("LISTEN_PID={pid:?} is not a PID"))?;
    if pid != our_pid {
        return Ok(None);
    }
    let n: RawFd = n
        .trim()
        .parse()
        .ok()
        .filter(|n: &RawFd| (0..=1024).contains(n))
        .ok_or_else(|| format!("LISTEN_FDS={n:?} is not a descriptor count"))?;
    if n == 0 {
        return Ok(None);
    }
    Ok(Some(LISTEN_FDS_START..LISTEN_FDS_START + n))
}

/// Reads and removes the activation variables (so children never take them for their own).
pub fn take_listen_fds() -> Result<Option<Range<RawFd>>, String> {
    let pid = std::env::var("LISTEN_PID").ok();
    let fds = std::env::var("LISTEN_FDS").ok();
    for v in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
        std::env::remove_var(v);
    }
    listen_fds(std::process::id(), pid.as_deref(), fds.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_fds_table() {
        type Case<'a> = (
            Option<&'a str>,
            Option<&'a str>,
            Result<Option<Range<RawFd>>, ()>,
        );
        let cases: [Case; 7] = [
            (None, None, Ok(None)),
            (Some("42"), None, Ok(None)),
            (Some("42"), Some("2"), Ok(Some(3..5))),
            (Some("43"), Some("2"), Ok(None)), // meant for another process
            (Some("42"), Some("0"), Ok(None)),
            (Some("x"), Some("1"), Err(())),
            (Some("42"), Some("-1"), Err(())),
        ];
        for (pid, n, want) in cases {
            let got = listen_fds(42, pid, n).map_err(|_| ());
            assert_eq!(got, want, "pid={pid:?} n={n:?}");
        }
    }

    #[test]
    fn notify_reaches_a_datagram_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let sock = UnixDatagram::bind(&path).unwrap();
        let n = Notifier {
            addr: parse_addr(path.to_str().unwrap()),
            raw: None,
        };
        assert!(n.enabled());
        n.ready("serving");
        n.reloading();
        let mut buf = [0u8; 512];
        let len = sock.recv(&mut buf).unwrap();
        let first = String::from_utf8_lossy(&buf[..len]).into_owned();
        assert!(
            first.starts_with("READY=1\nSTATUS=serving\nMAINPID="),
            "{first}"
        );
        let len = sock.recv(&mut buf).unwrap();
        let second = String::from_utf8_lossy(&buf[..len]).into_owned();
        assert!(
            second.starts_with("RELOADING=1\nMONOTONIC_USEC="),
            "{second}"
        );
        assert!(parse_addr("@abstract").is_some());
        assert!(parse_addr("relative").is_none());
    }
}

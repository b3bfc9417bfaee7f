//! The listening sockets: taking over the supervisor's bound sockets (non-blocking, one token
//! each from `LISTENER0`), registering them with EPOLLEXCLUSIVE, and asking one whether a
//! connection waits in its backlog. Accepting from them is `accept`'s;
//! how its failures are reported is here (`AcceptErrors`).
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Interest, Poll, Registry, Token};

use super::throttle::Throttle;
use crate::net::Listener;

/// Listener `i` has token `LISTENER0 + i` (the waker is token 0, channels come after the
/// listeners: `event_loop::CHANNEL0`).
pub(super) const LISTENER0: usize = 1;

pub(super) enum Lsock {
    Tcp(mio::net::TcpListener),
    Unix(mio::net::UnixListener),
}

pub(super) struct Listening {
    pub(super) sock: Lsock,
    /// SERVER_PORT: the bound port, or the unix socket path.
    pub(super) server_port: String,
    pub(super) accept_pending: bool,
    /// accept(2) failures and their reports (`accept`'s).
    pub(super) accept_errors: AcceptErrors,
}

/// How long accept(2) must work, with no failure, before "works again" is said.
const ACCEPT_SETTLED: Duration = Duration::from_secs(1);

/// accept(2) failures as the operator sees them: the first at once (waitress's words, and the
/// fix when it is the open-file limit), then at most one failure line a minute with the count
/// since the last line (`Throttle`: EMFILE while the open-file limit is reached is retried at
/// every tick and every readiness), and "works again" (with the count since the last such
/// line) once accepting has worked for `ACCEPT_SETTLED`: after a failure line, else once the
/// minute is over. At the open-file limit accept(2) flaps (each closed connection frees a
/// descriptor for one accept): that is one episode, not two lines per connection. waitress
/// logs every failure: ~6 lines a second here.
#[derive(Default)]
pub(super) struct AcceptErrors {
    /// Failures since accepting was last said to work again (0: none).
    total: u64,
    reports: Throttle,
    /// The last line said "works again".
    recovery_said: bool,
    /// Accepting has worked since (no failure since).
    working_since: Option<Instant>,
}

impl AcceptErrors {
    pub(super) fn failed(&mut self, e: &std::io::Error, now: Instant) {
        self.total += 1;
        self.working_since = None;
        let Some(n) = self.reports.note(now) else {
            return;
        };
        let fix = match e.raw_os_error() {
            Some(libc::EMFILE) => {
                "; raise the open-file limit (LimitNOFILE=, ulimit -n) or lower connection_limit"
            }
            Some(libc::ENFILE) => "; the system's open-file table is full (fs.file-max)",
            _ => "",
        };
        let again = Throttle::again(n, "times");
        log::warn!(target: "waitress", "server accept() threw an exception: {e}{fix}{again}");
        self.recovery_said = false;
    }

    /// An accept(2) worked.
    pub(super) fn succeeded(&mut self, now: Instant) {
        if self.total > 0 && self.working_since.is_none() {
            self.working_since = Some(now);
        }
    }

    /// At every tick: says "works again" when it is due (see the type's doc).
    pub(super) fn settle(&mut self, now: Instant) {
        let settled = self
            .working_since
            .is_some_and(|t| now.duration_since(t) >= ACCEPT_SETTLED);
        if self.total == 0 || !settled || (self.recovery_said && self.reports.recent(now)) {
            return;
        }
        log::warn!(target: "waitress", "server accept() works again, after {} failures", self.total);
        self.total = 0;
        self.working_since = None;
        self.recovery_said = true;
    }
}

impl Listening {
    pub(super) fn deregister(self, registry: &Registry) {
        let fd = match &self.sock {
            Lsock::Tcp(t) => t.as_raw_fd(),
            Lsock::Unix(u) => u.as_raw_fd(),
        };
        // Registered by fd (see `register_exclusive`), so deregistered by fd.
        let _ = registry.deregister(&mut SourceFd(&fd));
    }
}

/// Registers a listener with EPOLLEXCLUSIVE: the listening sockets are shared by every worker
/// process, and without it each new connection wakes all of them (thundering herd). mio has no
/// flag for it, so this is the one epoll_ctl made by hand; events carry the token the way
/// mio's own registrations do (`u64` data), so mio reports them normally.
pub(super) fn register_exclusive(poll: &Poll, fd: RawFd, token: Token) -> std::io::Result<()> {
    let mut ev = libc::epoll_event {
        events: (libc::EPOLLIN | libc::EPOLLET | libc::EPOLLEXCLUSIVE) as u32,
        u64: token.0 as u64,
    };
    // SAFETY: `poll` owns a valid epoll fd and `fd` is a listening socket we own; `ev` is a
    // valid epoll_event on our stack for the duration of the call.
    let r = unsafe { libc::epoll_ctl(poll.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Makes the supervisor's listeners non-blocking and registers them (readable, edge).
pub(super) fn register(poll: &Poll, listeners: Vec<Listener>) -> std::io::Result<Vec<Listening>> {
    let mut ls = Vec::with_capacity(listeners.len());
    for (i, l) in listeners.into_iter().enumerate() {
        let (sock, server_port) = match l {
            Listener::Tcp(t) => {
                t.set_nonblocking(true)?;
                let port = t.local_addr()?.port().to_string();
                (Lsock::Tcp(mio::net::TcpListener::from_std(t)), port)
            }
            Listener::Unix(u, path) => {
                u.set_nonblocking(true)?;
                (
                    Lsock::Unix(mio::net::UnixListener::from_std(u)),
                    path.display().to_string(),
                )
            }
        };
        let token = Token(LISTENER0 + i);
        let fd = match &sock {
            Lsock::Tcp(t) => t.as_raw_fd(),
            Lsock::Unix(u) => u.as_raw_fd(),
        };
        if let Err(e) = register_exclusive(poll, fd, token) {
            // Kernels before 4.5: a plain registration (every worker wakes per connection).
            log::debug!(target: "waitress", "EPOLLEXCLUSIVE not available: {e}");
            poll.registry()
                .register(&mut SourceFd(&fd), token, Interest::READABLE)?;
        }
        ls.push(Listening {
            sock,
            server_port,
            accept_pending: true,
            accept_errors: AcceptErrors::default(),
        });
    }
    Ok(ls)
}

/// True if a connection waits in the listener's backlog (poll(2) with a zero timeout).
pub(super) fn listener_has_pending(fd: RawFd) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd on our stack, nfds = 1, zero timeout (never blocks).
    let n = unsafe { libc::poll(&mut p, 1, 0) };
    n > 0 && p.revents & libc::POLLIN != 0
}

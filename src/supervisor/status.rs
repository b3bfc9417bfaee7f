//! The status listener (`status_listen`): a small HTTP/1.1 server in the master's own poll
//! loop, never on the app's listeners, answering `/ready` (200 while every wanted worker is
//! ready and nothing drains, or `degraded` while some serve after the first did; 503 before
//! that and from the moment a stop starts draining), `/live` and
//! `/metrics`. One request per connection, `Connection: close`.
//!
//! No thread: the master forks workers, and a fork copies only the forking thread, so a lock
//! another thread held (a mutex, an allocator arena, stdio) would stay locked in the child
//! forever. The listener and its connections are non-blocking; the master polls them beside
//! its signalfd (`poll_fds`, then `serve` with what poll found) and wakes no later than the
//! nearest connection's deadline (`next_deadline`). At most `MAX_ACTIVE` connections are open;
//! each has `IO_TIMEOUT` from its accept to its close. While every slot is taken and a client
//! waits, the connection open longest without a request (or answered, its client neither
//! closing nor reading) is closed to make room once it is `EVICT_MIN_AGE` old (`evict_one`):
//! idle or slow connections, a port scanner's say, cannot keep a liveness probe from being
//! answered. A connection (in `status::conn`) ends in order: once the response is written the
//! master shuts its side for writing and discards what the client still sends (a body,
//! pipelined requests, the rest of an oversized head) until the client's end of file; closing
//! a socket with unread bytes would send a reset instead, and a client still sending would see
//! its send fail and might never read the response.
//!
//! The price: while the master itself is busy in one turn of its loop (importing the app
//! with `preload_app`, or parsing a reloaded config), probes wait in the listen backlog and
//! are answered on the next turn. A liveness probe's timeout must cover the app's import.
//!
//! The master owns the facts: each worker gets a block of counters in memory shared across
//! the fork (`server::metrics::Counters`); the master tells this module when workers start
//! and exit (`spawned`, `exited`) and what `/ready` answers (`publish`, every turn). The
//! answer to a request (the request line, `/ready`, `/live`, `/metrics`) is made in
//! `status::answer`.
use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags};
use nix::unistd::Pid;

use crate::server::metrics::{Counters, Totals};

mod answer;
mod conn;
use conn::{Conn, Stage};

/// Worker blocks: the largest `workers` twice over (a reload runs two generations).
const SLOTS: usize = 2 * 4096 + 64;
/// Status connections open at once, draining ones included (more wait in the listen backlog).
const MAX_ACTIVE: usize = 128;
/// The listen backlog (the kernel caps it at `net.core.somaxconn`): deep enough that a probe
/// is queued, not dropped to wait for a SYN retransmit, while hundreds of idle clients hold
/// the listener.
const BACKLOG: i32 = 1024;
/// While every slot is taken, a connection is closed for a waiting client once it has been
/// open this long without a request (`Status::victim`): long enough for a probe to send its
/// request after connecting, short enough that clients holding connections idle let a
/// waiting probe in within a fraction of a second (`MAX_ACTIVE` every `EVICT_MIN_AGE`).
const EVICT_MIN_AGE: Duration = Duration::from_millis(200);
/// From accept to the close (the response written, what the client still sends discarded).
const IO_TIMEOUT: Duration = Duration::from_secs(2);
/// Discarded from one connection per turn of the master loop at most (a client streaming at
/// loopback speed must not keep the master from its signals and children).
const DRAIN_PER_TURN: usize = 256 * 1024;
/// The request head must end within this many bytes.
const MAX_HEAD: usize = 8192;
/// After an accept error other than "nothing queued" (EMFILE, ENOBUFS...): the listener stays
/// readable, so polling it again at once would spin.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// What `/ready` answers; the master derives it from its phase and workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Readiness {
    /// Not every wanted worker is ready before the first one serves (booting): 503 `starting`.
    Starting,
    /// Every wanted worker is ready: 200.
    Ready,
    /// Serving, but not every wanted worker is ready (a dead one being replaced, or one failing
    /// at boot while its siblings serve): 200 `degraded`. A 503 made a load balancer take out
    /// an instance that answered every request, and every instance at once after a broken
    /// deploy that each found by a respawn.
    Degraded,
    /// A stop is draining the workers: 503 `draining`.
    Draining,
}

/// What the answers come from; the master alone reads and writes it.
struct Board {
    readiness: Readiness,
    /// Counter blocks shared with the workers (they write, the master reads).
    slots: &'static [Counters],
    /// (worker id, pid, slot) of live workers, in spawn order.
    workers: Vec<(usize, Pid, usize)>,
    /// Counters of workers that exited.
    retired: Totals,
    /// Worker exits that led to a replacement or a stop, by reason.
    restarts: BTreeMap<&'static str, u64>,
}

/// The master's side.
pub(super) struct Status {
    /// mio's for its accept: one accept4(2) with SOCK_NONBLOCK | SOCK_CLOEXEC per connection.
    listener: mio::net::TcpListener,
    /// False while the listener is shared with another master during an upgrade and the other
    /// one answers (see `set_answering`).
    answering: bool,
    addr: SocketAddr,
    conns: Vec<Conn>,
    /// Accepting resumes at this instant (after an accept error).
    paused_until: Option<Instant>,
    board: Board,
    free: Vec<usize>,
}

/// Maps `SLOTS` zeroed counter blocks shared with every child forked after this.
fn shared_slots() -> std::io::Result<&'static [Counters]> {
    let len = std::mem::size_of::<Counters>() * SLOTS;
    let size = std::num::NonZeroUsize::new(len).expect("non-empty");
    use nix::sys::mman::{mmap_anonymous, MapFlags, ProtFlags};
    // SAFETY: a fresh anonymous mapping (no file, no address hint) cannot alias anything.
    let p = unsafe {
        mmap_anonymous(
            None,
            size,
            ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
            MapFlags::MAP_SHARED,
        )
    }?;
    // SAFETY: the mapping is page-aligned (enough for AtomicU64), `len` bytes long, zero-filled
    // by the kernel, and never unmapped (it lives as long as the process); `Counters` is
    // `repr(C)` made of `AtomicU64`s only, for which all-zero bytes are a valid value, and
    // atomics are the only access (from this process and from forked children).
    Ok(unsafe { std::slice::from_raw_parts(p.as_ptr() as *const Counters, SLOTS) })
}

impl Status {
    /// Binds `addr` (non-blocking; served by the master loop). Called by the master before
    /// any fork. Serves `addr`: on the socket an upgrading master handed over (`handed`) when
    /// it is bound there, else on a new one.
    pub(super) fn start(addr: SocketAddr, handed: Option<RawFd>) -> std::io::Result<Status> {
        let (listener, adopted) = match handed.and_then(adopt) {
            Some(l) if l.local_addr().is_ok_and(|a| a == addr || addr.port() == 0) => (l, true),
            _ => (bind(addr)?, false), // none, or another address: dropping closes it
        };
        // Also for a handed socket: the old master may still accept from it until it stops,
        // so a wake-up here can find nothing queued.
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        Ok(Status {
            listener: mio::net::TcpListener::from_std(listener),
            // A new master leaves the probes to the old one until it takes over: its own
            // `/ready` says "starting" meanwhile, and a load balancer must not see the two
            // answers alternate.
            answering: !adopted,
            addr,
            conns: Vec::new(),
            paused_until: None,
            board: Board {
                readiness: Readiness::Starting,
                slots: shared_slots()?,
                workers: Vec::new(),
                retired: Totals::default(),
                restarts: BTreeMap::new(),
            },
            free: (0..SLOTS).rev().collect(),
        })
    }

    /// `http://HOST:PORT` of the status listener (the real port for port 0).
    pub(super) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The listener's descriptor (handed to the new master by USR2).
    pub(super) fn listener_fd(&self) -> RawFd {
        self.listener.as_raw_fd()
    }

    /// The listener's and every open connection's descriptors, which a forked worker closes
    /// first thing (all are close-on-exec too: std binds with SOCK_CLOEXEC, `adopt` sets
    /// FD_CLOEXEC, accept4 takes SOCK_CLOEXEC).
    pub(super) fn raw_fds(&self) -> impl Iterator<Item = RawFd> + '_ {
        std::iter::once(self.listener_fd()).chain(self.conns.iter().map(|c| c.stream.as_raw_fd()))
    }

    /// What to poll: the listener first (POLLIN while `accepting`: more clients wait in the
    /// backlog otherwise), then each connection (POLLIN while its head comes and while it
    /// drains, POLLOUT while its response has bytes left).
    pub(super) fn poll_fds(&self) -> Vec<PollFd<'_>> {
        let accept = if self.accepting(Instant::now()) {
            PollFlags::POLLIN
        } else {
            PollFlags::empty()
        };
        let mut fds = vec![PollFd::new(self.listener.as_fd(), accept)];
        for c in &self.conns {
            let want = match c.stage {
                Stage::Head(_) | Stage::Drain => PollFlags::POLLIN,
                Stage::Answer(..) => PollFlags::POLLOUT,
            };
            fds.push(PollFd::new(c.stream.as_fd(), want));
        }
        fds
    }

    /// Whether the listener's queue is taken from: not while accepting is paused, nor while
    /// every slot is taken and no connection can be evicted yet.
    fn accepting(&self, now: Instant) -> bool {
        self.answering
            && self.paused_until.is_none()
            && (self.conns.len() < MAX_ACTIVE || self.victim(now).is_some())
    }

    /// When the master must wake for this module at the latest, seen at `now`: a connection's
    /// deadline, the end of an accept pause, or (every slot taken) the next connection to
    /// become evictable. One evictable already needs no wake: the listener is polled then
    /// (`accepting`), so a waiting client wakes the master; an instant already past would make
    /// it spin until the idle connections expire.
    pub(super) fn next_deadline(&self, now: Instant) -> Option<Instant> {
        let conns = self.conns.iter().map(|c| c.deadline());
        let evictable = self
            .conns
            .iter()
            .filter(|c| self.conns.len() >= MAX_ACTIVE && c.eviction_rank().is_some())
            .map(|c| c.opened + EVICT_MIN_AGE)
            .filter(|&at| at > now);
        conns.chain(evictable).chain(self.paused_until).min()
    }

    /// Serves what poll found (`revents` in the order of `poll_fds`; empty after a timeout),
    /// accepts what is queued, and closes expired connections.
    pub(super) fn serve(&mut self, revents: &[PollFlags]) {
        self.serve_at(Instant::now(), revents);
    }

    fn serve_at(&mut self, now: Instant, revents: &[PollFlags]) {
        let board = &self.board;
        let mut i = 0;
        self.conns.retain_mut(|c| {
            let hit = revents.get(i + 1).is_some_and(|r| !r.is_empty());
            i += 1;
            (!hit || c.progress(board)) && c.deadline() > now
        });
        if self.paused_until.is_some_and(|t| t <= now) {
            self.paused_until = None;
        }
        if revents.first().is_some_and(|r| !r.is_empty()) && self.paused_until.is_none() {
            self.accept(now);
        }
    }

    /// Accepts what is queued, at most `MAX_ACTIVE` per turn (a flood of probes must not keep
    /// the master from its signals and children; the rest wait in the backlog for the next
    /// turn); tries each new connection at once (its request has usually arrived with it).
    /// While every slot is taken, only as long as a connection can be evicted for the new one.
    fn accept(&mut self, now: Instant) {
        for _ in 0..MAX_ACTIVE {
            if self.conns.len() >= MAX_ACTIVE && self.victim(now).is_none() {
                return;
            }
            let s = match self.listener.accept() {
                Ok((s, _)) => TcpStream::from(s),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::Interrupted | ErrorKind::ConnectionAborted
                    ) =>
                {
                    continue
                }
                Err(_) => {
                    self.paused_until = Some(now + ACCEPT_PAUSE);
                    return;
                }
            };
            let mut c = Conn::new(s, now);
            if c.progress(&self.board) {
                if self.conns.len() >= MAX_ACTIVE {
                    self.evict_one(now);
                }
                self.conns.push(c);
            }
        }
    }

    /// The connection to close for a new one while every slot is taken: the lowest
    /// `eviction_rank` (waiting for its head before answered), the longest open among those,
    /// once open `EVICT_MIN_AGE` (a new one's request may be on its way). None: every
    /// connection is writing its answer, or new.
    fn victim(&self, now: Instant) -> Option<usize> {
        self.conns
            .iter()
            .enumerate()
            .filter(|(_, c)| now.saturating_duration_since(c.opened) >= EVICT_MIN_AGE)
            .filter_map(|(i, c)| Some((c.eviction_rank()?, c.opened, i)))
            .min()
            .map(|(_, _, i)| i)
    }

    /// Closes `victim`'s connection (dropping it shuts its write side and closes it).
    fn evict_one(&mut self, now: Instant) {
        if let Some(i) = self.victim(now) {
            self.conns.swap_remove(i);
        }
    }

    /// A counter block for a worker about to be forked.
    pub(super) fn take_slot(&mut self) -> Option<(usize, &'static Counters)> {
        let i = self.free.pop()?;
        Some((i, &self.board.slots[i]))
    }

    /// The fork failed: the block goes back.
    pub(super) fn return_slot(&mut self, slot: usize) {
        self.free.push(slot);
    }

    pub(super) fn spawned(&mut self, id: usize, pid: Pid, slot: usize) {
        self.board.workers.push((id, pid, slot));
    }

    /// A worker exited: its counters are kept, its block freed; `restart` names why it was
    /// replaced (None: not counted, e.g. the whole server stopping).
    pub(super) fn exited(&mut self, pid: Pid, restart: Option<&'static str>) {
        let b = &mut self.board;
        if let Some(reason) = restart {
            *b.restarts.entry(reason).or_default() += 1;
        }
        let Some(i) = b.workers.iter().position(|w| w.1 == pid) else {
            return;
        };
        let (_, _, slot) = b.workers.remove(i);
        b.slots[slot].retire_into(&mut b.retired);
        self.free.push(slot);
    }

    pub(super) fn publish(&mut self, readiness: Readiness) {
        self.board.readiness = readiness;
    }

    /// Whether this master takes the listener's connections. During an upgrade the two
    /// masters share it: the new one starts answering once it takes over, the old one stops
    /// then; connections already open are answered either way.
    pub(super) fn set_answering(&mut self, on: bool) {
        self.answering = on;
    }
}

/// A listening socket on `addr` as `TcpListener::bind` makes it (SO_REUSEADDR,
/// close-on-exec), with a `BACKLOG` of its own.
fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    s.set_reuse_address(true)?;
    s.bind(&addr.into())?;
    s.listen(BACKLOG)?;
    Ok(s.into())
}

/// The status socket an upgrading master handed over, if `fd` is a listening TCP socket.
fn adopt(fd: RawFd) -> Option<TcpListener> {
    // Only a descriptor that is a socket with an address is taken over (and closed if unused).
    nix::sys::socket::getsockname::<nix::sys::socket::SockaddrStorage>(fd).ok()?;
    // SAFETY: the old master passed this listening socket across exec for this process alone
    // (ENV_STATUS, read and removed once at boot); nothing else here owns or closes it.
    let l = unsafe { <TcpListener as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    let _ = nix::fcntl::fcntl(
        &l,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    );
    Some(l)
}

#[cfg(test)]
mod tests;

//! The socket calls the server makes itself rather than through mio, each retried when a signal
//! interrupts it: one `send` or vectored `sendmsg` without SIGPIPE (plain output and TLS records
//! alike), TLS's `recv`, a peek for input not read yet, and the reset-on-close switch for bodies
//! that end where the connection closes.
use std::io::{self, IoSlice};
use std::os::fd::{AsRawFd, BorrowedFd};

use nix::errno::Errno;
use nix::sys::socket::{recv, send, sendmsg, MsgFlags};

/// Makes closing the socket reset the connection (`true`: SO_LINGER on with a zero timeout)
/// or close it normally again (`false`: the FIN goes after the data still queued). The kernel
/// applies it however the fd closes, a killed process included.
pub(crate) fn reset_on_close(fd: BorrowedFd<'_>, reset: bool) {
    let linger = libc::linger {
        l_onoff: reset.into(),
        l_linger: 0,
    };
    if let Err(e) = nix::sys::socket::setsockopt(&fd, nix::sys::socket::sockopt::Linger, &linger) {
        log::debug!(target: "waitress", "SO_LINGER: {e}");
    }
}

/// Resets the connection now, whoever still holds the fd: `connect` with an AF_UNSPEC address
/// disconnects a TCP socket, and Linux sends a reset for an established one
/// (`tcp_disconnect`). Later writes on the fd fail, as after a shutdown.
pub(crate) fn reset_now(fd: BorrowedFd<'_>) {
    // SAFETY: an all-zero sockaddr is valid; only its family is read for AF_UNSPEC.
    let mut addr: libc::sockaddr = unsafe { std::mem::zeroed() };
    addr.sa_family = libc::AF_UNSPEC as libc::sa_family_t;
    let len = std::mem::size_of::<libc::sockaddr>() as libc::socklen_t;
    // SAFETY: a valid fd we hold, and a sockaddr of `len` bytes on our stack.
    if unsafe { libc::connect(fd.as_raw_fd(), &addr, len) } != 0 {
        log::debug!(target: "waitress", "reset: {}", io::Error::last_os_error());
    }
}

/// Parts that add up to at most this many bytes are copied together and sent with `send`:
/// for a small response (a head and a short body) the copy costs less than the kernel's
/// `sendmsg` path (the message header and the iovec array are copied in and checked).
const GATHER_MAX: usize = 1024;

/// Sends `parts` with one call (MSG_NOSIGNAL: a gone peer is an error, not a SIGPIPE):
/// `send` for one part or a few small ones, else a vectored `sendmsg`.
pub(crate) fn send_parts(fd: BorrowedFd<'_>, parts: &[IoSlice<'_>]) -> io::Result<usize> {
    if let [p] = parts {
        return send_one(fd, p);
    }
    let total: usize = parts.iter().map(|p| p.len()).sum();
    if total > GATHER_MAX {
        return send_vectored(fd, parts);
    }
    let mut joined = [0u8; GATHER_MAX];
    let mut at = 0;
    for p in parts {
        joined[at..at + p.len()].copy_from_slice(p);
        at += p.len();
    }
    send_one(fd, &joined[..total])
}

fn send_one(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    restarting(|| send(fd.as_raw_fd(), buf, MsgFlags::MSG_NOSIGNAL))
}

fn send_vectored(fd: BorrowedFd<'_>, parts: &[IoSlice<'_>]) -> io::Result<usize> {
    restarting(|| sendmsg::<()>(fd.as_raw_fd(), parts, &[], MsgFlags::MSG_NOSIGNAL, None))
}

/// Receives into `buf` (TLS records), retried when a signal interrupts it.
pub(crate) fn recv_some(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    restarting(|| recv(fd.as_raw_fd(), buf, MsgFlags::empty()))
}

/// Runs a socket call again while a signal interrupts it (EINTR).
fn restarting(mut call: impl FnMut() -> nix::Result<usize>) -> io::Result<usize> {
    loop {
        match call() {
            Err(Errno::EINTR) => continue,
            r => return r.map_err(io::Error::from),
        }
    }
}

/// True if the client sent bytes we have not read (closing now would reset the connection).
pub(crate) fn unread_input(fd: BorrowedFd<'_>) -> bool {
    let mut b = [0u8; 1];
    let flags = nix::sys::socket::MsgFlags::MSG_PEEK | nix::sys::socket::MsgFlags::MSG_DONTWAIT;
    matches!(nix::sys::socket::recv(fd.as_raw_fd(), &mut b, flags), Ok(1))
}

#[cfg(test)]
mod tests {
    use super::{send_parts, GATHER_MAX};
    use std::io::{IoSlice, Read};
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixStream;

    /// One part, small parts joined into one `send` (an empty one among them), exactly
    /// `GATHER_MAX` bytes, and one byte more (vectored): the peer reads the parts in order,
    /// and the count is the bytes of all of them.
    #[test]
    fn parts_arrive_whole_and_in_order_joined_or_vectored() {
        let big: Vec<u8> = (0..GATHER_MAX as u32).map(|i| (i % 251) as u8).collect();
        let cases: Vec<Vec<&[u8]>> = vec![
            vec![b"HTTP/1.1 200 OK\r\n\r\n"],
            vec![b"HTTP/1.1 200 OK\r\n", b"", b"\r\n", b"Hello world!\n"],
            vec![&big[..GATHER_MAX - 3], b"abc"],
            vec![&big[..GATHER_MAX - 3], b"abcd"],
            vec![&big, &big, b"tail"],
        ];
        for parts in cases {
            let (a, mut b) = UnixStream::pair().unwrap();
            let iov: Vec<IoSlice<'_>> = parts.iter().map(|p| IoSlice::new(p)).collect();
            let want: Vec<u8> = parts.concat();
            assert_eq!(send_parts(a.as_fd(), &iov).unwrap(), want.len());
            drop(a);
            let mut got = Vec::new();
            b.read_to_end(&mut got).unwrap();
            assert_eq!(
                got,
                want,
                "parts of {:?} bytes",
                parts.iter().map(|p| p.len()).collect::<Vec<_>>()
            );
        }
    }
}

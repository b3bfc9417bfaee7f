//! The socket calls the server makes itself rather than through mio: one vectored `sendmsg`
//! without SIGPIPE (plain output and TLS records alike), a peek for input not read yet, and
//! the reset-on-close switch for bodies that end where the connection closes.
use std::io::{self, IoSlice};
use std::os::fd::{AsRawFd, BorrowedFd};

use nix::errno::Errno;
use nix::sys::socket::{sendmsg, MsgFlags};

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

/// Sends `parts` with one `sendmsg` (MSG_NOSIGNAL: a gone peer is an error, not a SIGPIPE).
pub(crate) fn send_parts(fd: BorrowedFd<'_>, parts: &[IoSlice<'_>]) -> io::Result<usize> {
    loop {
        match sendmsg::<()>(fd.as_raw_fd(), parts, &[], MsgFlags::MSG_NOSIGNAL, None) {
            Ok(n) => return Ok(n),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(io::Error::from(e)),
        }
    }
}

/// True if the client sent bytes we have not read (closing now would reset the connection).
pub(crate) fn unread_input(fd: BorrowedFd<'_>) -> bool {
    let mut b = [0u8; 1];
    let flags = nix::sys::socket::MsgFlags::MSG_PEEK | nix::sys::socket::MsgFlags::MSG_DONTWAIT;
    matches!(nix::sys::socket::recv(fd.as_raw_fd(), &mut b, flags), Ok(1))
}

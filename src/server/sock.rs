//! The socket calls the server makes itself rather than through mio: one vectored `sendmsg`
//! without SIGPIPE (plain output and TLS records alike), and a peek for input not read yet.
use std::io::{self, IoSlice};
use std::os::fd::{AsRawFd, BorrowedFd};

use nix::errno::Errno;
use nix::sys::socket::{sendmsg, MsgFlags};

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

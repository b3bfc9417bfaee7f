//! `BodyPipe`: a large Content-Length body goes from the socket into its temp file through a
//! pipe (splice(2) twice), so its bytes are copied once, into the file's pages, instead of
//! into user space by `recv` and again by `pwrite`. The loop thread owns one pipe per worker.
//!
//! Nothing here is zero-copy toward a buffer we own: the socket's pages move into the pipe by
//! reference and are copied out of it into the page cache, so a body file kept for the next
//! upload (`http::buffer`'s spare) can be rewritten as before.
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::{fcntl, splice, FcntlArg, OFlag, SpliceFFlags};

use crate::http::spare_files::SPARES;

/// Asked for per splice from the socket (the pipe is grown to this when the kernel allows).
const SPLICE_MAX: usize = 256 * 1024;
/// Bodies with less left than this are read as before (two syscalls per piece either way).
pub(crate) const SPLICE_MIN: u64 = 64 * 1024;

/// What one splice from the socket did.
pub(crate) enum Spliced {
    /// `n > 0` bytes are now in the file.
    Bytes(usize),
    /// The client closed its side.
    Eof,
    /// Nothing to read now.
    WouldBlock,
    /// splice(2) does not work here (nothing was read): read the body as usual.
    Unsupported,
    /// Reading the socket failed (a reset, ...): the connection's fault, as a failed `recv`.
    Socket(io::Error),
}

#[derive(Default)]
pub(crate) struct BodyPipe {
    /// (read end, write end, capacity), made on first use; dropped after any failure, so a
    /// pipe never holds bytes of an earlier body.
    pipe: Option<(OwnedFd, OwnedFd, usize)>,
    /// The socket or the temp file's filesystem refused splice (EINVAL): bodies are read and
    /// written as before from then on.
    unsupported: bool,
}

impl BodyPipe {
    /// False once splice(2) was refused: do not ask again.
    pub(crate) fn usable(&self) -> bool {
        !self.unsupported
    }

    fn pipe(&mut self) -> io::Result<&(OwnedFd, OwnedFd, usize)> {
        if self.pipe.is_none() {
            let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)?;
            // The default is 64 KiB; more means fewer round trips per body. Refused above
            // /proc/sys/fs/pipe-max-size (or the user's pipe quota): keep what we have.
            let cap = fcntl(&w, FcntlArg::F_SETPIPE_SZ(SPLICE_MAX as i32))
                .or_else(|_| fcntl(&w, FcntlArg::F_GETPIPE_SZ))
                .map_or(64 * 1024, |c| usize::try_from(c).unwrap_or(64 * 1024));
            self.pipe = Some((r, w, cap.max(4096)));
        }
        Ok(self.pipe.as_ref().expect("just made"))
    }

    /// Moves bytes of the body from `sock` into `file` at `offset`: at most `rest` (the
    /// body's remaining length: the next pipelined request stays in the socket) and at most
    /// a pipe's capacity. `Err` is the file's failure (the bytes taken are lost: the caller
    /// fails the request).
    pub(crate) fn socket_to_file(
        &mut self,
        sock: impl AsFd,
        file: &File,
        offset: u64,
        rest: u64,
    ) -> io::Result<Spliced> {
        let mut refused = false;
        let r = self
            .pipe()
            .and_then(|p| move_bytes(p, sock.as_fd(), file, offset, rest, &mut refused));
        if refused {
            log::info!(target: "waitress", "splice(2) refused (socket or $TMPDIR's filesystem): reading request bodies as usual");
            self.unsupported = true;
        }
        if refused || r.is_err() {
            self.pipe = None;
        }
        r
    }
}

/// One splice from the socket into the pipe, then the pipe drained into the file. Sets
/// `refused` when splice(2) is not supported on either side (bytes already in the pipe are
/// then copied through memory).
fn move_bytes(
    (r, w, cap): &(OwnedFd, OwnedFd, usize),
    sock: BorrowedFd,
    file: &File,
    offset: u64,
    rest: u64,
    refused: &mut bool,
) -> io::Result<Spliced> {
    let mut off =
        i64::try_from(offset).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let want = usize::try_from(rest).map_or(*cap, |r| r.min(*cap));
    let n = loop {
        match splice(
            sock.as_fd(),
            None,
            w,
            None,
            want,
            SpliceFFlags::SPLICE_F_MOVE | SpliceFFlags::SPLICE_F_NONBLOCK,
        ) {
            Ok(0) => return Ok(Spliced::Eof),
            Ok(n) => break n,
            Err(Errno::EAGAIN) => return Ok(Spliced::WouldBlock),
            Err(Errno::EINVAL) => {
                *refused = true;
                return Ok(Spliced::Unsupported);
            }
            Err(Errno::EINTR) => continue,
            Err(e) => return Ok(Spliced::Socket(e.into())),
        }
    };
    // Drain the pipe completely into the file: writing to a file does not wait on the
    // socket, and an empty pipe is what the next call relies on. A full disk first drops the
    // body files kept for reuse (`http::spare_files`), once; the bytes wait in the pipe.
    let mut left = n;
    let mut released = false;
    while left > 0 {
        match splice(
            r,
            None,
            file,
            Some(&mut off),
            left,
            SpliceFFlags::SPLICE_F_MOVE,
        ) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "splice to the body file wrote nothing",
                ))
            }
            Ok(k) => left -= k,
            Err(Errno::EINTR) => {}
            Err(Errno::ENOSPC | Errno::EDQUOT) if !released && SPARES.release() => released = true,
            // This filesystem takes no splice (or the file is in append mode): what the pipe
            // holds goes through memory, so nothing taken from the socket is lost.
            Err(Errno::EINVAL) => {
                *refused = true;
                copy_through_memory(r, file, off as u64, left)?;
                break;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Spliced::Bytes(n))
}

/// Moves the `left` bytes in the pipe into `file` at `offset` with read + pwrite.
fn copy_through_memory(
    r: &OwnedFd,
    file: &File,
    mut offset: u64,
    mut left: usize,
) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0u8; left.min(SPLICE_MAX)];
    while left > 0 {
        let want = left.min(buf.len());
        match nix::unistd::read(r, &mut buf[..want]) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(k) => {
                SPARES.retry_when_full(|| file.write_all_at(&buf[..k], offset))?;
                offset += k as u64;
                left -= k;
            }
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek, Write};
    use std::os::unix::net::UnixStream;

    #[test]
    fn bytes_move_from_a_socket_into_the_file_at_the_offset_and_no_further() {
        let (a, b) = UnixStream::pair().unwrap();
        b.set_nonblocking(true).unwrap();
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(b"head:").unwrap();
        let mut p = BodyPipe::default();
        assert!(matches!(
            p.socket_to_file(&b, &file, 5, 100).unwrap(),
            Spliced::WouldBlock
        ));
        let body: Vec<u8> = (0..300_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
        // More than a socket buffer: written from another thread while we splice.
        let writer = {
            let body = body.clone();
            std::thread::spawn(move || {
                let mut a = a;
                a.write_all(&body).unwrap();
                a.write_all(b"NEXT").unwrap();
                a
            })
        };
        let mut got = 0;
        while got < body.len() {
            match p
                .socket_to_file(&b, &file, 5 + got as u64, (body.len() - got) as u64)
                .unwrap()
            {
                Spliced::Bytes(n) => got += n,
                Spliced::WouldBlock => std::thread::yield_now(),
                Spliced::Eof => panic!("end of stream before the body"),
                Spliced::Unsupported | Spliced::Socket(_) => panic!("splice refused here"),
            }
        }
        let a = writer.join().unwrap();
        assert_eq!(got, body.len());
        let mut all = Vec::new();
        file.rewind().unwrap();
        file.read_to_end(&mut all).unwrap();
        assert_eq!(&all[..5], b"head:");
        assert!(all[5..] == body[..], "the file holds exactly the body");
        // What follows the body stays in the socket.
        let mut rest = [0u8; 8];
        let mut b2 = &b;
        b.set_nonblocking(false).unwrap();
        assert_eq!(b2.read(&mut rest).unwrap(), 4);
        assert_eq!(&rest[..4], b"NEXT");
        drop(a);
        b.set_nonblocking(true).unwrap();
        assert!(p.usable());
        assert!(matches!(
            p.socket_to_file(&b, &file, 0, 10).unwrap(),
            Spliced::Eof
        ));
    }

    #[test]
    fn a_file_that_refuses_splice_gets_the_bytes_through_memory_and_splice_stops() {
        let (mut a, b) = UnixStream::pair().unwrap();
        b.set_nonblocking(true).unwrap();
        // splice(2) into a file opened for appending is EINVAL, like a filesystem without it.
        let path = tempfile::NamedTempFile::new().unwrap();
        let file = std::fs::OpenOptions::new()
            .append(true)
            .read(true)
            .open(path.path())
            .unwrap();
        let mut p = BodyPipe::default();
        a.write_all(b"0123456789").unwrap();
        assert!(matches!(
            p.socket_to_file(&b, &file, 0, 10).unwrap(),
            Spliced::Bytes(10)
        ));
        assert!(!p.usable(), "not asked again");
        assert_eq!(std::fs::read(path.path()).unwrap(), b"0123456789");
    }
}

//! A connection's pending output, sent in order: in-memory bytes, bytes spilled to an anonymous
//! temp file past `outbuf_overflow`, and queued files (`wsgi.file_wrapper`) sent with sendfile(2).
//!
//! Waitress keeps a list of `OverflowableBuffer`s per channel; this is the same idea with the
//! sending built in: memory segments go out with one `send` or vectored `sendmsg`, file segments with
//! `sendfile`, so a response never costs more syscalls than it has segments.
//!
//! Zero-copy rule: sendfile(2) to a socket queues references to the file's page-cache pages,
//! not copies; the kernel reads them when it transmits (and, over loopback, when the peer
//! reads its receive queue), long after the call returned and `off` moved past them. There is
//! no notification of when that is over. So a spill file is append-only: bytes once written
//! are never written again, a drained spill file is closed, never reused (closing drops only
//! the page-cache mapping; pages still queued stay alive and unchanged until the kernel lets
//! go of them), and a long stream moves on to a new file every `SPILL_FILE_MAX` bytes so its
//! disk use stays bounded. Memory segments go out with `send`/`sendmsg`, which copy.
use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, IoSlice};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use nix::errno::Errno;

use super::sock::send_parts;
use super::tls::{TlsSession, CHUNK};
use crate::http::spare_files::{temp_file_fix, SPARES};

/// How many memory segments one vectored write gathers.
const MAX_IOV: usize = 64;
/// A spill file could not be made or written (`$TMPDIR` missing, not writable, or full; or no
/// file descriptor left): carried inside the `io::Error` so it is logged as what it is, not as
/// a socket error.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot spill a response over outbuf_overflow to a temporary file in {}: {source}; {fix}",
    dir.display()
)]
pub(crate) struct SpillFailed {
    dir: PathBuf,
    source: io::Error,
    fix: String,
}

fn spill_failed(source: io::Error) -> io::Error {
    let kind = source.kind();
    io::Error::new(
        kind,
        SpillFailed {
            dir: std::env::temp_dir(),
            fix: temp_file_fix(&source, "outbuf_overflow"),
            source,
        },
    )
}

/// Largest single sendfile(2) call.
const SENDFILE_CHUNK: u64 = 1 << 30;
/// A spill file takes no more appends once it holds this much; the next spill starts a new
/// file, and the full one is closed once sent (disk per connection: pending + this).
const SPILL_FILE_MAX: u64 = 16 << 20;

enum Seg {
    Mem {
        buf: Vec<u8>,
        pos: usize,
    },
    /// `spill`: our own temp file (append-only, closed once sent, never reused); otherwise an
    /// app file, also closed once sent.
    File {
        file: File,
        off: u64,
        end: u64,
        spill: bool,
    },
}

/// Pending output of one connection.
pub(crate) struct OutBuf {
    segs: VecDeque<Seg>,
    pending: u64,
    /// Bytes held in memory segments (spill trigger).
    mem: u64,
    /// Bytes ever queued (pending or since sent): `queued - pending` only grows as the client
    /// reads (`sent_total`).
    queued: u64,
    overflow: u64,
    /// TLS: everything goes out encrypted through this session.
    tls: Option<Box<TlsSession>>,
}

impl OutBuf {
    pub(crate) fn new(overflow: u64) -> OutBuf {
        OutBuf {
            segs: VecDeque::new(),
            pending: 0,
            mem: 0,
            queued: 0,
            overflow,
            tls: None,
        }
    }

    /// From now on output is encrypted by `s` (set before the first byte goes out).
    pub(crate) fn set_tls(&mut self, s: TlsSession) {
        self.tls = Some(Box::new(s));
    }

    pub(crate) fn tls_mut(&mut self) -> Option<&mut TlsSession> {
        self.tls.as_deref_mut()
    }

    /// Nothing left to send (with TLS: no plaintext and no encrypted record either).
    pub(crate) fn is_empty(&self) -> bool {
        self.pending == 0 && !self.tls.as_ref().is_some_and(|t| t.wants_write())
    }

    pub(crate) fn pending(&self) -> u64 {
        self.pending
    }

    /// Queued bytes sent so far (or dropped at a close): grows with every send of queued
    /// output, so the same value twice means the client read none of it in between.
    pub(crate) fn sent_total(&self) -> u64 {
        self.queued - self.pending
    }

    /// Appends bytes: to memory, or to a spill file once `overflow` bytes are held in memory.
    /// Once output spills, later bytes follow it into a file (order), a new one when the last
    /// is full; file bytes are only ever appended (see the module doc).
    pub(crate) fn push(&mut self, data: &[u8]) -> io::Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        let len = data.len() as u64;
        match self.segs.back_mut() {
            Some(Seg::File {
                file,
                end,
                spill: true,
                ..
            }) if *end < SPILL_FILE_MAX => {
                let at = *end;
                SPARES
                    .retry_when_full(|| file.write_all_at(data, at))
                    .map_err(spill_failed)?;
                *end += len;
            }
            Some(Seg::File { spill: true, .. }) => self.spill(data)?,
            _ if self.mem + len > self.overflow => self.spill(data)?,
            Some(Seg::Mem { buf, .. }) => {
                buf.extend_from_slice(data);
                self.mem += len;
            }
            _ => {
                self.segs.push_back(Seg::Mem {
                    buf: data.to_vec(),
                    pos: 0,
                });
                self.mem += len;
            }
        }
        self.pending += len;
        self.queued += len;
        Ok(())
    }

    /// Starts a new spill file holding `data`. A full disk first drops the request-body temp
    /// files kept for reuse (`http::spare_files`), then fails.
    fn spill(&mut self, data: &[u8]) -> io::Result<()> {
        let file = SPARES
            .retry_when_full(tempfile::tempfile)
            .map_err(spill_failed)?;
        SPARES
            .retry_when_full(|| file.write_all_at(data, 0))
            .map_err(spill_failed)?;
        self.segs.push_back(Seg::File {
            file,
            off: 0,
            end: data.len() as u64,
            spill: true,
        });
        Ok(())
    }

    /// Queues `len` bytes of `file` from `offset`; the file is closed once sent.
    pub(crate) fn push_file(&mut self, file: File, offset: u64, len: u64) {
        if len == 0 {
            return;
        }
        self.segs.push_back(Seg::File {
            file,
            off: offset,
            end: offset + len,
            spill: false,
        });
        self.pending += len;
        self.queued += len;
    }

    /// Drops everything (connection closing).
    pub(crate) fn clear(&mut self) {
        self.segs.clear();
        self.pending = 0;
        self.mem = 0;
    }

    /// Sends `parts` after whatever is pending, in as few syscalls as possible: when nothing is
    /// pending they go out directly in one vectored write and only the unsent rest is copied.
    /// Returns true when everything was sent.
    pub(crate) fn send(&mut self, fd: BorrowedFd<'_>, parts: &[&[u8]]) -> io::Result<bool> {
        if self.tls.is_some() {
            return self.send_tls(fd, parts);
        }
        if self.is_empty() {
            let mut iov: [IoSlice<'_>; 4] = [IoSlice::new(&[]); 4];
            let mut n = 0;
            for p in parts.iter().filter(|p| !p.is_empty()) {
                if n == iov.len() {
                    break;
                }
                iov[n] = IoSlice::new(p);
                n += 1;
            }
            let mut sent = match send_parts(fd, &iov[..n]) {
                Ok(s) => s,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
                Err(e) => return Err(e),
            };
            for p in parts {
                if sent >= p.len() {
                    sent -= p.len();
                } else {
                    self.push(&p[sent..])?;
                    sent = 0;
                }
            }
            return Ok(self.is_empty());
        }
        for p in parts {
            self.push(p)?;
        }
        self.flush(fd)
    }

    /// Sends pending output until done or the socket would block. Returns true when empty.
    pub(crate) fn flush(&mut self, fd: BorrowedFd<'_>) -> io::Result<bool> {
        if self.tls.is_some() {
            return self.flush_tls(fd);
        }
        while let Some(front) = self.segs.front_mut() {
            match front {
                Seg::Mem { .. } => {
                    let sent = {
                        let mut iov: [IoSlice<'_>; MAX_IOV] = [IoSlice::new(&[]); MAX_IOV];
                        let mut n = 0;
                        for s in self.segs.iter() {
                            match s {
                                Seg::Mem { buf, pos } if n < MAX_IOV => {
                                    iov[n] = IoSlice::new(&buf[*pos..]);
                                    n += 1;
                                }
                                _ => break,
                            }
                        }
                        match send_parts(fd, &iov[..n]) {
                            Ok(s) => s,
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                            Err(e) => return Err(e),
                        }
                    };
                    self.advance_mem(sent);
                    if sent == 0 {
                        return Ok(false);
                    }
                }
                Seg::File { file, off, end, .. } => {
                    let count = (*end - *off).min(SENDFILE_CHUNK) as usize;
                    let mut o = *off as libc::off64_t;
                    let r = nix::sys::sendfile::sendfile64(fd, file.as_fd(), Some(&mut o), count);
                    match r {
                        Ok(0) => {
                            // The file is shorter than announced: the response cannot be
                            // completed, the connection has to go (as a short CL response).
                            return Err(io::Error::new(
                                io::ErrorKind::UnexpectedEof,
                                "file shrank",
                            ));
                        }
                        Ok(n) => {
                            *off += n as u64;
                            self.pending -= n as u64;
                            if *off == *end {
                                // Closed, never rewritten: its pages may still be queued.
                                self.segs.pop_front();
                            }
                        }
                        Err(Errno::EAGAIN) => return Ok(false),
                        Err(Errno::EINTR) => {}
                        Err(e) => return Err(io::Error::from(e)),
                    }
                }
            }
        }
        Ok(true)
    }

    /// TLS `send`: plaintext goes straight into the session while nothing is queued (rustls
    /// buffers a bounded amount), the rest is queued; then records are sent.
    fn send_tls(&mut self, fd: BorrowedFd<'_>, parts: &[&[u8]]) -> io::Result<bool> {
        let mut direct = self.segs.is_empty();
        for p in parts {
            let mut p: &[u8] = p;
            if direct {
                if let Some(t) = self.tls.as_deref_mut() {
                    let n = t.encrypt(p)?;
                    p = &p[n..];
                }
                direct = p.is_empty();
            }
            self.push(p)?;
        }
        self.flush_tls(fd)
    }

    /// TLS `flush`: records out first, then the next chunk of plaintext in, until everything
    /// is sent or the socket would block. Files are copied with pread, a chunk at a time.
    fn flush_tls(&mut self, fd: BorrowedFd<'_>) -> io::Result<bool> {
        loop {
            let Some(t) = self.tls.as_deref_mut() else {
                return Ok(true);
            };
            if !t.send_records(fd)? {
                return Ok(false);
            }
            let took = match self.segs.front_mut() {
                None => return Ok(true),
                Some(Seg::Mem { buf, pos }) => {
                    let end = (*pos + CHUNK).min(buf.len());
                    t.encrypt(&buf[*pos..end])?
                }
                Some(Seg::File { file, off, end, .. }) => {
                    let mut tmp = [0u8; CHUNK];
                    let want = ((*end - *off) as usize).min(CHUNK);
                    let n = file.read_at(&mut tmp[..want], *off)?;
                    if n == 0 {
                        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "file shrank"));
                    }
                    // rustls takes all of it: its buffer was just emptied.
                    let took = t.encrypt(&tmp[..n])?;
                    *off += took as u64;
                    took
                }
            };
            if took == 0 {
                return Ok(false);
            }
            match self.segs.front() {
                Some(Seg::Mem { .. }) => self.advance_mem(took),
                Some(Seg::File { off, end, .. }) => {
                    self.pending -= took as u64;
                    if off == end {
                        // Closed once sent, like every file (module doc: never reused).
                        self.segs.pop_front();
                    }
                }
                None => {}
            }
        }
    }

    fn advance_mem(&mut self, mut sent: usize) {
        self.pending -= sent as u64;
        self.mem -= sent as u64;
        while sent > 0 {
            let Some(Seg::Mem { buf, pos }) = self.segs.front_mut() else {
                return;
            };
            let left = buf.len() - *pos;
            if sent >= left {
                sent -= left;
                self.segs.pop_front();
            } else {
                *pos += sent;
                sent = 0;
            }
        }
    }
}

#[cfg(test)]
#[path = "outbuf_tests.rs"]
mod tests;

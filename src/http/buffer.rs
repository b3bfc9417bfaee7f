//! `OverflowableBuffer` (waitress's name): a byte stream kept in memory until it reaches its
//! overflow size, then moved to an anonymous temp file, so a 1 GiB body or response costs a
//! bounded amount of memory. Used for request bodies (`inbuf_overflow`) and response output
//! (`outbuf_overflow`). File I/O happens here, except the server's splicing of a body into
//! the file `append_target` names; sockets are never touched here.
use std::fs::File;
use std::io::{self, BufRead, Read, Seek, SeekFrom};
use std::mem::MaybeUninit;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;

/// Size of the read window used once the data lives in the temp file.
const READ_WINDOW: usize = 64 * 1024;
/// Once spilled, small appends are gathered up to this size before one write (a chunked body of
/// 1-byte chunks, or an app writing tiny pieces, would otherwise cost a syscall each).
const WRITE_BEHIND: usize = 64 * 1024;
pub use super::spare_files::SPARE_MAX_BYTES;
use super::spare_files::{SpareFiles, SPARES};

/// Append at the end, read (and seek) from a cursor. Appending never disturbs the cursor, so
/// it works both as a request body (fill, then read from 0) and as an output queue (append
/// while the event loop drains with `fill_buf`/`consume`).
#[derive(Debug)]
pub struct OverflowableBuffer {
    overflow: u64,
    /// All data while not spilled; afterwards the bytes `[flushed, len)` not yet written.
    mem: Vec<u8>,
    file: Option<File>,
    /// Bytes in the file (spilled only).
    flushed: u64,
    /// Total bytes appended since the last `clear`.
    len: u64,
    /// Absolute position of the next byte to read.
    pos: u64,
    /// Read window over the file: bytes `[win_start, win_start + win.len())`.
    win: Vec<u8>,
    win_start: u64,
    /// Where finished bodies' temp files are kept for the next spill: overwriting their blocks
    /// from offset 0 saves creating, allocating and freeing an inode per upload. Safe only
    /// because these files are never handed to sendfile(2) (response spill files are, and are
    /// never reused, see `server::outbuf`). Bytes past `len` are stale and never read.
    spares: &'static SpareFiles,
    /// Highest offset ever written to the current file (its size).
    extent: u64,
}

impl OverflowableBuffer {
    /// A buffer that moves to a temp file once it holds `>= overflow` bytes (waitress rule).
    pub fn new(overflow: u64) -> OverflowableBuffer {
        OverflowableBuffer::with_spares(overflow, &SPARES)
    }

    /// The same, keeping its temp files in `spares` instead of the process's.
    pub fn with_spares(overflow: u64, spares: &'static SpareFiles) -> OverflowableBuffer {
        OverflowableBuffer {
            overflow,
            mem: Vec::new(),
            file: None,
            flushed: 0,
            len: 0,
            pos: 0,
            win: Vec::new(),
            win_start: 0,
            spares,
            extent: 0,
        }
    }

    /// Total bytes appended since the last `clear`.
    pub fn len(&self) -> u64 {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Bytes not yet read.
    pub fn remaining(&self) -> u64 {
        self.len.saturating_sub(self.pos)
    }
    /// True once the data lives in the temp file.
    pub fn is_spilled(&self) -> bool {
        self.file.is_some()
    }
    /// Heap bytes held (memory part plus read window); bounded by about `overflow + 128 KiB`.
    pub fn memory_footprint(&self) -> usize {
        self.mem.capacity() + self.win.capacity()
    }

    /// `total` more bytes are known to be coming (a Content-Length body): when they reach the
    /// overflow size, spill now, so they go to the file as they arrive instead of growing the
    /// memory part first and copying it over.
    pub fn expect(&mut self, total: u64) -> io::Result<()> {
        if self.file.is_none() && self.len.saturating_add(total) >= self.overflow {
            self.start_file()?;
        }
        Ok(())
    }

    /// For a writer that fills the temp file itself (the server splicing a body from its
    /// socket): the file and the offset of the next appended byte, after writing out what was
    /// gathered. `None` until spilled (see `expect`). Report what was written with
    /// `appended_externally`.
    pub fn append_target(&mut self) -> io::Result<Option<(&File, u64)>> {
        self.flush()?;
        Ok(self.file.as_ref().map(|f| (f, self.flushed)))
    }

    /// `n` bytes were written to the temp file at the offset `append_target` gave.
    pub fn appended_externally(&mut self, n: u64) {
        debug_assert!(self.file.is_some() && self.mem.is_empty());
        self.flushed += n;
        self.len += n;
        self.extent = self.extent.max(self.flushed);
    }

    /// Moves the data to a temp file (a kept one if any). A full disk drops the kept files
    /// first (`SpareFiles::retry_when_full`), here and wherever this buffer writes its file.
    fn start_file(&mut self) -> io::Result<()> {
        let (f, extent) = match self.spares.take() {
            Some(kept) => kept,
            None => (self.spares.retry_when_full(tempfile::tempfile)?, 0),
        };
        self.extent = extent;
        self.spares
            .retry_when_full(|| f.write_all_at(&self.mem, 0))?;
        self.flushed = self.mem.len() as u64;
        self.extent = self.extent.max(self.flushed);
        self.file = Some(f);
        self.mem.clear();
        self.mem.shrink_to(WRITE_BEHIND.min(self.mem.capacity()));
        Ok(())
    }

    /// Empties the buffer: keeps a bounded memory part, and hands the temp file to `spares`
    /// (kept when it stayed within `SPARE_MAX_BYTES`; else closed, which deletes it).
    pub fn clear(&mut self) {
        self.mem.clear();
        let keep = usize::try_from(self.overflow)
            .unwrap_or(usize::MAX)
            .min(READ_WINDOW);
        if self.mem.capacity() > keep {
            self.mem.shrink_to(keep);
        }
        if let Some(f) = self.file.take() {
            self.spares.keep(f, self.extent);
        }
        self.flushed = 0;
        self.len = 0;
        self.pos = 0;
        self.win.clear();
        self.win_start = 0;
    }

    /// Appends `data`, spilling to a temp file when the total reaches the overflow size.
    pub fn append(&mut self, data: &[u8]) -> io::Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        let new_len = self.len + data.len() as u64;
        if self.file.is_none() {
            if new_len < self.overflow {
                self.mem.extend_from_slice(data);
                self.len = new_len;
                return Ok(());
            }
            self.start_file()?;
        }
        if self.mem.len() + data.len() > WRITE_BEHIND {
            self.flush()?;
        }
        if let (Some(f), true) = (&self.file, data.len() >= WRITE_BEHIND) {
            let at = self.flushed;
            self.spares.retry_when_full(|| f.write_all_at(data, at))?;
            self.flushed += data.len() as u64;
            self.extent = self.extent.max(self.flushed);
        } else {
            self.mem.extend_from_slice(data);
        }
        self.len = new_len;
        Ok(())
    }

    /// Writes the gathered bytes to the temp file.
    fn flush(&mut self) -> io::Result<()> {
        if let Some(f) = &self.file {
            if !self.mem.is_empty() {
                let at = self.flushed;
                self.spares
                    .retry_when_full(|| f.write_all_at(&self.mem, at))?;
                self.flushed += self.mem.len() as u64;
                self.extent = self.extent.max(self.flushed);
                self.mem.clear();
            }
        }
        Ok(())
    }

    /// A read of at least a window's size of spilled bytes outside the window goes from the
    /// file straight into the caller's memory (`wsgi.input.read()` of a large body: one pread,
    /// no window copy): the file and how many bytes to read, or `None` when the window or the
    /// gathering buffer serves it.
    fn direct(&self, len: usize) -> Option<(&File, usize)> {
        let file = self.file.as_ref()?;
        let win_end = self.win_start + self.win.len() as u64;
        let in_window = self.pos >= self.win_start && self.pos < win_end;
        if len < READ_WINDOW || self.pos >= self.flushed || in_window {
            return None;
        }
        Some((file, (self.flushed - self.pos).min(len as u64) as usize))
    }

    fn read_file_direct(&mut self, out: &mut [u8]) -> io::Result<Option<usize>> {
        let Some((file, want)) = self.direct(out.len()) else {
            return Ok(None);
        };
        let n = file.read_at(&mut out[..want], self.pos)?;
        self.advance_direct(n).map(Some)
    }

    fn advance_direct(&mut self, n: usize) -> io::Result<usize> {
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "overflow buffer temp file is shorter than expected",
            ));
        }
        self.pos += n as u64;
        Ok(n)
    }

    /// `read_exact` into memory that may be uninitialised (a bytes object made at its final
    /// size is filled without zeroing it first); every byte of `out` is written on success.
    pub fn read_exact_uninit(&mut self, out: &mut [MaybeUninit<u8>]) -> io::Result<()> {
        let mut done = 0;
        while done < out.len() {
            let rest = &mut out[done..];
            if let Some((file, want)) = self.direct(rest.len()) {
                // SAFETY: `rest` is valid for writes of `rest.len() >= want` bytes and pread(2)
                // writes at most `want`; uninitialised destination bytes are fine for it.
                let n = unsafe {
                    libc::pread(
                        file.as_raw_fd(),
                        rest.as_mut_ptr().cast(),
                        want,
                        self.pos as libc::off_t,
                    )
                };
                if n < 0 {
                    let e = io::Error::last_os_error();
                    if e.kind() == io::ErrorKind::Interrupted {
                        continue;
                    }
                    return Err(e);
                }
                done += self.advance_direct(n as usize)?;
                continue;
            }
            let avail = self.fill_buf()?;
            if avail.is_empty() {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            let n = avail.len().min(rest.len());
            // SAFETY: `avail` is this buffer's memory and `rest` the caller's, so they do not
            // overlap; both are valid for `n` bytes.
            unsafe { std::ptr::copy_nonoverlapping(avail.as_ptr(), rest.as_mut_ptr().cast(), n) };
            self.consume(n);
            done += n;
        }
        Ok(())
    }

    /// Reads everything from the cursor to the end into `out` (tests, small bodies).
    pub fn read_all_into(&mut self, out: &mut Vec<u8>) -> io::Result<()> {
        self.read_to_end(out).map(|_| ())
    }
}

impl Read for OverflowableBuffer {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if let Some(n) = self.read_file_direct(out)? {
            return Ok(n);
        }
        let avail = self.fill_buf()?;
        let n = avail.len().min(out.len());
        out[..n].copy_from_slice(&avail[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for OverflowableBuffer {
    /// The next unread bytes (empty at the end). For output queues this is what to send next.
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.pos >= self.len {
            return Ok(&[]);
        }
        let Some(file) = &self.file else {
            let start = self.pos as usize;
            return Ok(&self.mem[start..]);
        };
        if self.pos >= self.flushed {
            // Not yet written: serve it from the gathering buffer.
            let start = (self.pos - self.flushed) as usize;
            return Ok(&self.mem[start..]);
        }
        let win_end = self.win_start + self.win.len() as u64;
        if self.pos < self.win_start || self.pos >= win_end {
            let want = (self.flushed - self.pos).min(READ_WINDOW as u64) as usize;
            self.win.resize(want, 0);
            let mut got = 0;
            while got < want {
                let n = file.read_at(&mut self.win[got..], self.pos + got as u64)?;
                if n == 0 {
                    break;
                }
                got += n;
            }
            self.win.truncate(got);
            self.win_start = self.pos;
            if got == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "overflow buffer temp file is shorter than expected",
                ));
            }
        }
        let off = (self.pos - self.win_start) as usize;
        Ok(&self.win[off..])
    }

    fn consume(&mut self, amt: usize) {
        self.pos = (self.pos + amt as u64).min(self.len);
    }
}

impl Seek for OverflowableBuffer {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        match target {
            Some(t) => {
                // Past the end reads as EOF, like BytesIO and files.
                self.pos = t.min(self.len);
                Ok(t)
            }
            None => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek to a negative position",
            )),
        }
    }
}

#[cfg(test)]
#[path = "buffer_tests.rs"]
mod tests;

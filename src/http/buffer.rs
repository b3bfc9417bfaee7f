//! `OverflowableBuffer` (waitress's name): a byte stream kept in memory until it reaches its
//! overflow size, then moved to an anonymous temp file, so a 1 GiB body or response costs a
//! bounded amount of memory. Used for request bodies (`inbuf_overflow`) and response output
//! (`outbuf_overflow`). File I/O happens here; sockets never do.
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
/// A temp file that never grew past this is kept by `clear` for the next spill (see `spare`).
pub const SPARE_MAX_BYTES: u64 = 4 * 1024 * 1024;

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
    /// The last body's temp file, kept for the next spill: overwriting its blocks from offset 0
    /// saves creating, allocating and freeing an inode per upload. Safe only because these
    /// files are never handed to sendfile(2) (response spill files are, and are never reused,
    /// see `server::outbuf`). Bytes past `len` are stale and never read.
    spare: Option<File>,
    /// Highest offset ever written to the current file (its size).
    extent: u64,
}

impl OverflowableBuffer {
    /// A buffer that moves to a temp file once it holds `>= overflow` bytes (waitress rule).
    pub fn new(overflow: u64) -> OverflowableBuffer {
        OverflowableBuffer {
            overflow,
            mem: Vec::new(),
            file: None,
            flushed: 0,
            len: 0,
            pos: 0,
            win: Vec::new(),
            win_start: 0,
            spare: None,
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

    /// True when a temp file is kept for the next spill.
    pub fn has_spare(&self) -> bool {
        self.spare.is_some()
    }
    /// Closes (deletes) the kept temp file.
    pub fn drop_spare(&mut self) {
        self.spare = None;
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

    /// Moves the data to a temp file (the spare one if kept).
    fn start_file(&mut self) -> io::Result<()> {
        let f = match self.spare.take() {
            Some(f) => f,
            None => {
                self.extent = 0;
                tempfile::tempfile()?
            }
        };
        f.write_all_at(&self.mem, 0)?;
        self.flushed = self.mem.len() as u64;
        self.extent = self.extent.max(self.flushed);
        self.file = Some(f);
        self.mem.clear();
        self.mem.shrink_to(WRITE_BEHIND.min(self.mem.capacity()));
        Ok(())
    }

    /// Empties the buffer: keeps a bounded memory part, and the temp file (as `spare`) when it
    /// stayed within `SPARE_MAX_BYTES`; a larger one is closed, which deletes it.
    pub fn clear(&mut self) {
        self.mem.clear();
        let keep = usize::try_from(self.overflow)
            .unwrap_or(usize::MAX)
            .min(READ_WINDOW);
        if self.mem.capacity() > keep {
            self.mem.shrink_to(keep);
        }
        if let Some(f) = self.file.take() {
            if self.extent <= SPARE_MAX_BYTES {
                self.spare = Some(f);
            }
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
            f.write_all_at(data, self.flushed)?;
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
                f.write_all_at(&self.mem, self.flushed)?;
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
mod tests {
    use super::*;

    #[test]
    fn small_data_stays_in_memory() {
        let mut b = OverflowableBuffer::new(100);
        b.append(b"hello ").unwrap();
        b.append(b"world").unwrap();
        assert!(!b.is_spilled());
        let mut out = Vec::new();
        b.read_all_into(&mut out).unwrap();
        assert_eq!(out, b"hello world");
    }

    #[test]
    fn reaching_the_overflow_size_spills_like_waitress() {
        let mut b = OverflowableBuffer::new(10);
        b.append(b"123456789").unwrap();
        assert!(!b.is_spilled());
        b.append(b"0").unwrap();
        assert!(b.is_spilled(), ">= overflow moves to a file");
        let mut out = Vec::new();
        b.read_all_into(&mut out).unwrap();
        assert_eq!(out, b"1234567890");
    }

    #[test]
    fn ten_mib_through_a_64k_threshold_keeps_data_and_bounded_memory() {
        let mut b = OverflowableBuffer::new(64 * 1024);
        let mut expect = Vec::new();
        let mut seed = 7u32;
        for i in 0..(10 * 1024) {
            let chunk: Vec<u8> = (0..1024)
                .map(|_| {
                    seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345 + i);
                    (seed >> 16) as u8
                })
                .collect();
            b.append(&chunk).unwrap();
            expect.extend_from_slice(&chunk);
            assert!(b.memory_footprint() <= 2 * 64 * 1024 + READ_WINDOW);
        }
        assert!(b.is_spilled());
        assert_eq!(b.len(), 10 * 1024 * 1024);
        let mut got = Vec::with_capacity(expect.len());
        loop {
            let n = {
                let chunk = b.fill_buf().unwrap();
                if chunk.is_empty() {
                    break;
                }
                got.extend_from_slice(chunk);
                chunk.len()
            };
            b.consume(n);
            assert!(b.memory_footprint() <= 2 * 64 * 1024 + READ_WINDOW);
        }
        assert!(got == expect, "data differs after spill");
        b.clear();
        assert!(!b.is_spilled());
        assert!(b.memory_footprint() <= 2 * 64 * 1024 + READ_WINDOW);
    }

    #[test]
    fn interleaved_append_and_drain_works_as_an_output_queue() {
        let mut b = OverflowableBuffer::new(8);
        let mut got = Vec::new();
        for i in 0..50u8 {
            b.append(&[i; 3]).unwrap();
            let n = {
                let c = b.fill_buf().unwrap();
                let n = c.len().min(2);
                got.extend_from_slice(&c[..n]);
                n
            };
            b.consume(n);
        }
        b.read_all_into(&mut got).unwrap();
        let want: Vec<u8> = (0..50u8).flat_map(|i| [i; 3]).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn tiny_appends_after_spill_are_gathered_and_readable_at_any_point() {
        let mut b = OverflowableBuffer::new(16);
        let mut want = Vec::new();
        for i in 0..200_000u32 {
            let byte = [(i % 251) as u8];
            b.append(&byte).unwrap();
            want.push(byte[0]);
            if i % 50_000 == 7 {
                // Reading in the middle sees everything appended so far.
                let mut got = Vec::new();
                b.seek(SeekFrom::Start(0)).unwrap();
                b.read_all_into(&mut got).unwrap();
                assert!(got == want);
            }
        }
        b.append(&[9u8; WRITE_BEHIND * 2]).unwrap();
        want.extend_from_slice(&[9u8; WRITE_BEHIND * 2]);
        b.seek(SeekFrom::Start(0)).unwrap();
        let mut got = Vec::new();
        b.read_all_into(&mut got).unwrap();
        assert!(got == want);
        assert!(b.memory_footprint() <= 3 * 64 * 1024);
    }

    #[test]
    fn large_reads_of_a_spilled_body_match_small_ones_from_any_position() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 253) as u8).collect();
        let mut b = OverflowableBuffer::new(1000);
        for piece in data.chunks(10_000) {
            b.append(piece).unwrap();
        }
        assert!(b.is_spilled());
        for start in [0usize, 1, 999, 65_535, 70_000, 299_000] {
            for size in [READ_WINDOW, READ_WINDOW + 1, 200_000, 400_000] {
                b.seek(SeekFrom::Start(start as u64)).unwrap();
                let mut one = [0u8; 1];
                let _ = b.read(&mut one).unwrap(); // leaves a window around `start`
                let mut got = vec![one[0]];
                let mut buf = vec![0u8; size];
                loop {
                    let n = b.read(&mut buf).unwrap();
                    if n == 0 {
                        break;
                    }
                    got.extend_from_slice(&buf[..n]);
                }
                assert!(got == data[start..], "start {start}, size {size}");
            }
        }
        b.seek(SeekFrom::Start(0)).unwrap();
        let mut all = vec![0u8; data.len()];
        b.read_exact(&mut all).unwrap();
        assert!(all == data);
        // The same through read_exact_uninit, from positions inside and outside the window.
        for start in [0usize, 5, 70_000, 299_999] {
            b.seek(SeekFrom::Start(start as u64)).unwrap();
            let mut one = [0u8; 1];
            let _ = b.read(&mut one).unwrap();
            let mut out = vec![MaybeUninit::new(0xEEu8); data.len() - start - 1];
            b.read_exact_uninit(&mut out).unwrap();
            let got: Vec<u8> = out.iter().map(|m| unsafe { m.assume_init() }).collect();
            assert!(got == data[start + 1..], "start {start}");
            assert!(b.read_exact_uninit(&mut [MaybeUninit::uninit()]).is_err());
        }
    }

    #[test]
    fn a_kept_temp_file_is_overwritten_and_only_the_new_bytes_are_read() {
        use std::os::unix::fs::MetadataExt;
        let mut b = OverflowableBuffer::new(1000);
        let first: Vec<u8> = (0..300_000u32).map(|i| (i % 241) as u8).collect();
        b.expect(first.len() as u64).unwrap();
        assert!(
            b.is_spilled(),
            "a known body at the overflow size goes to the file at once"
        );
        b.append(&first).unwrap();
        let ino = b.file.as_ref().unwrap().metadata().unwrap().ino();
        b.clear();
        assert!(b.has_spare() && !b.is_spilled());
        // A shorter body in the same file: the stale tail of the first is never read.
        let second: Vec<u8> = (0..120_000u32).map(|i| (i % 13) as u8 + 100).collect();
        for piece in second.chunks(7_000) {
            b.append(piece).unwrap();
        }
        assert_eq!(b.file.as_ref().unwrap().metadata().unwrap().ino(), ino);
        let mut got = Vec::new();
        b.read_all_into(&mut got).unwrap();
        assert!(got == second);
        let mut all = vec![0u8; 5];
        b.seek(SeekFrom::Start(second.len() as u64 - 2)).unwrap();
        assert_eq!(b.read(&mut all).unwrap(), 2, "reads stop at the new length");
        // A file that grew past SPARE_MAX_BYTES is closed, not kept.
        b.clear();
        b.append(&vec![1u8; SPARE_MAX_BYTES as usize + 1]).unwrap();
        b.clear();
        assert!(!b.has_spare());
    }

    #[test]
    fn seek_rewinds_and_past_end_reads_empty() {
        let mut b = OverflowableBuffer::new(4);
        b.append(b"abcdef").unwrap();
        let mut s = String::new();
        b.read_to_string(&mut s).unwrap();
        assert_eq!(s, "abcdef");
        b.seek(SeekFrom::Start(2)).unwrap();
        s.clear();
        b.read_to_string(&mut s).unwrap();
        assert_eq!(s, "cdef");
        b.seek(SeekFrom::Start(100)).unwrap();
        assert_eq!(b.read(&mut [0; 4]).unwrap(), 0);
        assert!(b.seek(SeekFrom::Current(-1000)).is_err());
    }
}

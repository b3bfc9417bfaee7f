//! `OverflowableBuffer` (waitress's name): a byte stream kept in memory until it reaches its
//! overflow size, then moved to an anonymous temp file, so a 1 GiB body or response costs a
//! bounded amount of memory. Used for request bodies (`inbuf_overflow`) and response output
//! (`outbuf_overflow`). File I/O happens here; sockets never do.
use std::fs::File;
use std::io::{self, BufRead, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;

/// Size of the read window used once the data lives in the temp file.
const READ_WINDOW: usize = 64 * 1024;
/// Once spilled, small appends are gathered up to this size before one write (a chunked body of
/// 1-byte chunks, or an app writing tiny pieces, would otherwise cost a syscall each).
const WRITE_BEHIND: usize = 64 * 1024;

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

    /// Empties the buffer: drops the temp file (deleting it), keeps a bounded memory part.
    pub fn clear(&mut self) {
        self.mem.clear();
        let keep = usize::try_from(self.overflow)
            .unwrap_or(usize::MAX)
            .min(READ_WINDOW);
        if self.mem.capacity() > keep {
            self.mem.shrink_to(keep);
        }
        self.file = None;
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
            let f = tempfile::tempfile()?;
            f.write_all_at(&self.mem, 0)?;
            self.flushed = self.mem.len() as u64;
            self.file = Some(f);
            self.mem.clear();
            self.mem.shrink_to(WRITE_BEHIND.min(self.mem.capacity()));
        }
        if self.mem.len() + data.len() > WRITE_BEHIND {
            self.flush()?;
        }
        if let (Some(f), true) = (&self.file, data.len() >= WRITE_BEHIND) {
            f.write_all_at(data, self.flushed)?;
            self.flushed += data.len() as u64;
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
                self.mem.clear();
            }
        }
        Ok(())
    }

    /// A read of at least a window's size of spilled bytes outside the window goes from the
    /// file straight into `out` (`wsgi.input.read()` of a large body: one pread, no window
    /// copy). `None` when the window or the gathering buffer serves it.
    fn read_file_direct(&mut self, out: &mut [u8]) -> io::Result<Option<usize>> {
        let Some(file) = &self.file else {
            return Ok(None);
        };
        let win_end = self.win_start + self.win.len() as u64;
        let in_window = self.pos >= self.win_start && self.pos < win_end;
        if out.len() < READ_WINDOW || self.pos >= self.flushed || in_window {
            return Ok(None);
        }
        let want = (self.flushed - self.pos).min(out.len() as u64) as usize;
        let n = file.read_at(&mut out[..want], self.pos)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "overflow buffer temp file is shorter than expected",
            ));
        }
        self.pos += n as u64;
        Ok(Some(n))
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

//! Tests of `OverflowableBuffer`: memory and spilled data, reads from any point, kept temp files.
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
        // SAFETY: read_exact_uninit returned Ok, so it wrote every byte of `out` (which was
        // initialised to 0xEE anyway).
        let got: Vec<u8> = out.iter().map(|m| unsafe { m.assume_init() }).collect();
        assert!(got == data[start + 1..], "start {start}");
        assert!(b.read_exact_uninit(&mut [MaybeUninit::uninit()]).is_err());
    }
}

#[test]
fn a_kept_temp_file_is_overwritten_and_only_the_new_bytes_are_read() {
    use std::os::unix::fs::MetadataExt;
    // A pool of its own: the tests running beside it keep their files in the process's.
    let spares: &'static SpareFiles = Box::leak(Box::default());
    let mut b = OverflowableBuffer::with_spares(1000, spares);
    let first: Vec<u8> = (0..300_000u32).map(|i| (i % 241) as u8).collect();
    b.expect(first.len() as u64).unwrap();
    assert!(
        b.is_spilled(),
        "a known body at the overflow size goes to the file at once"
    );
    b.append(&first).unwrap();
    let ino = b.file.as_ref().unwrap().metadata().unwrap().ino();
    b.clear();
    assert!(spares.len() == 1 && !b.is_spilled());
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
    assert!(spares.is_empty());
}

/// A full disk drops the kept files and tries once more; without kept files, or failing
/// otherwise, the error stands.
#[test]
fn a_full_disk_releases_kept_files_and_retries_once() {
    let spares: &'static SpareFiles = Box::leak(Box::default());
    let full = || io::Error::from_raw_os_error(libc::ENOSPC);
    let mut calls = 0;
    let r = spares.retry_when_full(|| {
        calls += 1;
        Err::<(), _>(full())
    });
    assert!(r.is_err() && calls == 1, "nothing to release: no retry");
    spares.keep(tempfile::tempfile().unwrap(), 10);
    spares.keep(tempfile::tempfile().unwrap(), 10);
    let mut calls = 0;
    let r = spares.retry_when_full(|| {
        calls += 1;
        if calls == 1 {
            Err(full())
        } else {
            Ok(calls)
        }
    });
    assert_eq!(r.unwrap(), 2);
    assert!(spares.is_empty());
    spares.keep(tempfile::tempfile().unwrap(), 10);
    let r = spares.retry_when_full(|| Err::<(), _>(io::Error::from_raw_os_error(libc::EIO)));
    assert!(
        r.is_err() && spares.len() == 1,
        "only a full disk releases them"
    );
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

//! Unit tests of `outbuf`: ordering across memory, spill files and queued files, the spill
//! threshold, direct sends, and the zero-copy rule (queued spill pages never rewritten).
use super::*;
use std::io::Read;
use std::os::unix::net::UnixStream;

fn drain(b: &mut UnixStream, want: usize) -> Vec<u8> {
    let mut out = vec![0u8; want];
    b.read_exact(&mut out).unwrap();
    out
}

#[test]
fn memory_spill_and_files_go_out_in_order() {
    let (a, mut b) = UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    let mut ob = OutBuf::new(8);
    let mut f = tempfile::tempfile().unwrap();
    std::io::Write::write_all(&mut f, b"0123456789").unwrap();
    ob.push(b"head;").unwrap();
    ob.push(b"abcdefgh").unwrap(); // past overflow: spills
    ob.push(b"ij").unwrap(); // appended to the spill file
    ob.push_file(f, 2, 5);
    assert_eq!(ob.pending(), 5 + 8 + 2 + 5);
    assert!(ob.flush(a.as_fd()).unwrap());
    assert!(ob.is_empty());
    assert_eq!(drain(&mut b, 20), b"head;abcdefghij23456");
}

/// Spill after spill while the peer reads nothing: the first spill's pages are still
/// queued in the kernel (zero-copy) when the next spill is written. Reusing the drained
/// file from offset 0 rewrote them, and the peer read the second bytes twice.
fn spills_queued_by_sendfile_are_never_rewritten(a: &impl AsFd, b: &mut impl Read) {
    let mut ob = OutBuf::new(0);
    let mut want = Vec::new();
    for fill in [b'A', b'B', b'C'] {
        let part = vec![fill; 48 * 1024];
        ob.push(&part).unwrap();
        assert!(
            ob.flush(a.as_fd()).unwrap(),
            "the socket buffer holds 144 KiB"
        );
        want.extend_from_slice(&part);
    }
    let mut got = vec![0u8; want.len()];
    b.read_exact(&mut got).unwrap();
    let first_bad = got.iter().zip(&want).position(|(g, w)| g != w);
    assert_eq!(first_bad, None, "queued spill bytes were rewritten");
}

#[test]
fn spilled_bytes_queued_on_a_unix_socket_stay_intact() {
    let (a, mut b) = UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    spills_queued_by_sendfile_are_never_rewritten(&a, &mut b);
}

#[test]
fn spilled_bytes_queued_on_a_loopback_tcp_socket_stay_intact() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let a = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (mut b, _) = l.accept().unwrap();
    a.set_nonblocking(true).unwrap();
    spills_queued_by_sendfile_are_never_rewritten(&a, &mut b);
}

#[test]
fn a_long_spill_moves_to_new_files_and_drops_sent_ones() {
    let (a, mut b) = UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    let mut ob = OutBuf::new(0);
    let part: Vec<u8> = (0..1024 * 1024u32).map(|i| (i % 253) as u8).collect();
    let parts = (SPILL_FILE_MAX / part.len() as u64) * 2 + 1;
    for _ in 0..parts {
        ob.push(&part).unwrap();
    }
    let files = ob
        .segs
        .iter()
        .filter(|s| matches!(s, Seg::File { .. }))
        .count();
    assert_eq!(files, 3, "one file per SPILL_FILE_MAX bytes");
    let total = part.len() * parts as usize;
    let reader = std::thread::spawn(move || drain(&mut b, total));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !ob.flush(a.as_fd()).unwrap() {
        assert!(std::time::Instant::now() < deadline);
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    assert!(ob.segs.is_empty());
    let got = reader.join().unwrap();
    assert!(got.chunks(part.len()).all(|c| c == &part[..]));
}

#[test]
fn memory_held_never_exceeds_overflow() {
    // (pushes, overflow) → bytes that stay in memory
    let table: [(&[usize], u64, u64); 4] = [
        (&[10, 10], 100, 20),
        (&[60, 60], 100, 60),
        (&[500], 100, 0),
        (&[100], 100, 100),
    ];
    for (pushes, overflow, want_mem) in table {
        let mut ob = OutBuf::new(overflow);
        for &n in pushes {
            ob.push(&vec![1u8; n]).unwrap();
        }
        assert_eq!(ob.mem, want_mem, "{pushes:?} with overflow {overflow}");
        assert_eq!(ob.pending(), pushes.iter().sum::<usize>() as u64);
    }
}

#[test]
fn send_direct_copies_only_the_unsent_rest() {
    let (a, mut b) = UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    let mut ob = OutBuf::new(1 << 20);
    let big = vec![7u8; 4 << 20];
    let done = ob.send(a.as_fd(), &[b"HEAD", &big]).unwrap();
    assert!(
        !done,
        "a 4 MiB write into a socketpair cannot complete at once"
    );
    let total = 4 + big.len();
    let reader = std::thread::spawn(move || drain(&mut b, total));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !ob.flush(a.as_fd()).unwrap() {
        assert!(std::time::Instant::now() < deadline);
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let got = reader.join().unwrap();
    assert_eq!(&got[..4], b"HEAD");
    assert!(got[4..].iter().all(|&c| c == 7));
}

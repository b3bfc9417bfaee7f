//! Clients that never read, or vanish mid-request, mid-body or mid-response.
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use super::{fresh_client_served, rss_kib, start};

/// Open file descriptors of the daemon's worker(s) and master.
fn fds(pid: i32) -> usize {
    crate::util::family(pid)
        .iter()
        .filter_map(|p| std::fs::read_dir(format!("/proc/{p}/fd")).ok())
        .map(|d| d.count())
        .sum()
}

/// Ten clients ask for a 64 MiB response and never read it: the app threads wait on
/// back-pressure (`outbuf_high_watermark`, 16 MiB by default, spilled to a file past
/// `outbuf_overflow`), memory stays bounded, and with a free app thread a fresh client is
/// served.
#[test]
fn clients_that_never_read_a_large_response_do_not_grow_memory() {
    let d = start(&["--threads", "12"]);
    let addr = d.addr();
    let base = rss_kib(d.pid());
    let mut stuck = Vec::new();
    for _ in 0..10 {
        let mut s = TcpStream::connect(&addr).unwrap();
        s.write_all(b"GET /big HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        stuck.push(s);
    }
    std::thread::sleep(Duration::from_secs(2));
    fresh_client_served(&addr, 10).unwrap();
    let grown = rss_kib(d.pid()).saturating_sub(base);
    // 10 x 64 MiB were asked for; in memory at most the watermark's share of each.
    assert!(grown < 256 * 1024, "memory grew by {grown} KiB");
}

/// Clients that ask for a large response and then read nothing, as many as there are app
/// threads: each is cut once it has read nothing for `channel_timeout` while its thread waited
/// on it (its chunked body visibly unterminated), which frees the threads, and a fresh client
/// is served. waitress exempts running requests from `channel_timeout`: such clients held every
/// thread for ever and nobody else was served. A client that reads slowly is never cut.
#[test]
fn clients_that_read_nothing_lose_their_app_threads_after_channel_timeout() {
    let d = start(&[
        "--threads",
        "2",
        "--channel-timeout",
        "2",
        "--cleanup-interval",
        "1",
        "--outbuf-high-watermark",
        "1048576",
    ]);
    let addr = d.addr();
    let ask_big = || {
        let mut s = TcpStream::connect(&addr).unwrap();
        s.write_all(b"GET /big HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        s
    };
    // A slow reader first: a few KiB every 100 ms, for longer than channel_timeout.
    let mut slow = ask_big();
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let reader = std::thread::spawn(move || {
        let (mut read, mut buf) = (0, [0u8; 4096]);
        let until = std::time::Instant::now() + Duration::from_secs(6);
        while std::time::Instant::now() < until {
            match slow.read(&mut buf) {
                Ok(n) if n > 0 => read += n,
                other => {
                    return Err(format!(
                        "the slow reader was cut after {read} bytes: {other:?}"
                    ))
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(read)
    });
    std::thread::sleep(Duration::from_millis(300));
    let mut stuck = vec![ask_big(), ask_big()];
    // Every thread is taken (the slow reader's and a stuck client's, the other stuck client
    // queued): a fresh client is served once the stuck ones are cut.
    fresh_client_served(&addr, 30).expect("a fresh client is served after the cut");
    reader.join().unwrap().unwrap();
    // The fresh client may have had the slow reader's thread (free once it stopped at 6 s)
    // before the second stuck client was cut: give the sweep its channel_timeout and a turn
    // more before reading them (a stuck client that reads is no longer stuck).
    std::thread::sleep(Duration::from_secs(4));
    for s in &mut stuck {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut got = Vec::new();
        let end = s.read_to_end(&mut got);
        assert!(
            end.is_ok()
                || end
                    .as_ref()
                    .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
            "{end:?}"
        );
        assert!(got.len() < 64 << 20, "a stuck client got the whole body");
        assert!(
            !got.ends_with(b"0\r\n\r\n"),
            "a cut body must not look complete"
        );
    }
}

/// 50 rounds of clients that disconnect mid-head, mid-body and mid-response: the server keeps
/// serving and holds no descriptor for any of them afterwards.
#[test]
fn clients_that_vanish_mid_request_body_or_response_leave_nothing_behind() {
    let d = start(&["--threads", "4"]);
    let addr = d.addr();
    fresh_client_served(&addr, 10).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let before = fds(d.pid());
    for _ in 0..50 {
        let mut s = TcpStream::connect(&addr).unwrap();
        s.write_all(b"GET /hello HTTP/1.1\r\nHo").unwrap();
        drop(s);
        let mut s = TcpStream::connect(&addr).unwrap();
        s.write_all(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n")
            .unwrap();
        s.write_all(&[b'x'; 5000]).unwrap();
        drop(s);
        let mut s = TcpStream::connect(&addr).unwrap();
        s.write_all(b"GET /big HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        let mut buf = [0u8; 65536];
        let _ = s.read(&mut buf);
        drop(s);
    }
    fresh_client_served(&addr, 10).unwrap();
    // Every connection is torn down once its app thread notices (bounded wait).
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut now = fds(d.pid());
    while now > before + 2 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        now = fds(d.pid());
    }
    assert!(
        now <= before + 2,
        "descriptors: {before} before, {now} after"
    );
}

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

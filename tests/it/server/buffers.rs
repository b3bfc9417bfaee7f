//! Buffers and memory: 1 GiB up and down with bounded RSS (back-pressure), output spilled to
//! disk for a slow reader, idle connections that cost little, clients that leave mid-response
//! or half-close.
use std::io::{BufRead, Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use waitressd::server::ServerOptions;

use super::{get, opts, read_response, TestServer};

/// Tests that measure the process's RSS run one at a time.
use crate::util::RSS_LOCK;

fn vm_rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Samples VmRSS every 20 ms until dropped; `max()` is the peak.
struct RssWatch {
    peak: Arc<AtomicU64>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl RssWatch {
    fn start() -> RssWatch {
        let peak = Arc::new(AtomicU64::new(vm_rss_kib()));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (p, st) = (peak.clone(), stop.clone());
        std::thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                p.fetch_max(vm_rss_kib(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        RssWatch { peak, stop }
    }
    fn peak(&self) -> u64 {
        self.peak.load(Ordering::Relaxed)
    }
}

impl Drop for RssWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

const GIB: u64 = 1 << 30;

#[test]
fn upload_of_1gib_keeps_memory_bounded() {
    let _g = RSS_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let mut o = opts();
    o.limits.max_request_body_size = 2 * GIB;
    let srv = TestServer::start(o);
    let before = vm_rss_kib();
    let watch = RssWatch::start();
    let mut s = srv.connect();
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    write!(
        s,
        "POST /count HTTP/1.1\r\nHost: t\r\nContent-Length: {GIB}\r\n\r\n"
    )
    .unwrap();
    let block = vec![b'u'; 1 << 20];
    let start = Instant::now();
    for _ in 0..1024 {
        s.write_all(&block).unwrap();
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "upload too slow"
        );
    }
    let (status, _, body) = read_response(&mut s).unwrap();
    assert_eq!((status, body), (200, GIB.to_string().into_bytes()));
    let grew = watch.peak().saturating_sub(before);
    eprintln!("1 GiB upload: peak RSS grew by {grew} KiB");
    assert!(
        grew < 64 * 1024,
        "RSS grew by {grew} KiB during a 1 GiB upload"
    );
}

#[test]
fn download_of_1gib_goes_through_backpressure() {
    let _g = RSS_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let srv = TestServer::start(opts());
    let before = vm_rss_kib();
    let watch = RssWatch::start();
    let mut s = srv.connect();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s.write_all(get(&format!("/big?{GIB}")).as_bytes()).unwrap();
    let mut r = std::io::BufReader::with_capacity(1 << 20, s);
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        r.read_exact(&mut b).unwrap();
        head.push(b[0]);
    }
    let mut got = 0u64;
    let start = Instant::now();
    while got < GIB {
        let n = r.fill_buf().unwrap().len();
        assert!(n > 0, "connection closed after {got} bytes");
        r.consume(n);
        got += n as u64;
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "download too slow"
        );
    }
    assert_eq!(got, GIB);
    let grew = watch.peak().saturating_sub(before);
    eprintln!("1 GiB download: peak RSS grew by {grew} KiB");
    assert!(
        grew < 64 * 1024,
        "RSS grew by {grew} KiB during a 1 GiB download"
    );
}

#[test]
fn client_disconnect_mid_response_leaves_server_serving() {
    let srv = TestServer::start(opts());
    {
        let mut s = srv.connect();
        s.write_all(get(&format!("/big?{}", 200 << 20)).as_bytes())
            .unwrap();
        let mut buf = [0u8; 4096];
        s.read_exact(&mut buf).unwrap();
    }
    for _ in 0..3 {
        let mut s = srv.connect();
        s.write_all(get("/hello").as_bytes()).unwrap();
        assert_eq!(read_response(&mut s).unwrap().2, b"hello");
    }
}

#[test]
fn half_closed_client_gets_its_whole_response() {
    let srv = TestServer::start(opts());
    let mut s = srv.connect();
    let n = 8 << 20;
    // HTTP/1.0 without keep-alive: the response is the connection's last.
    s.write_all(format!("GET /big?{n} HTTP/1.0\r\n\r\n").as_bytes())
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut r = std::io::BufReader::new(s);
    let (status, _, body) = read_response(&mut r).expect("whole response after half-close");
    assert_eq!((status, body.len()), (200, n));
}

#[test]
fn idle_keep_alive_connections_cost_little_memory() {
    let _g = RSS_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let srv = TestServer::start(ServerOptions {
        connection_limit: 2000,
        ..opts()
    });
    let mut warm = srv.connect();
    for _ in 0..20 {
        warm.write_all(get("/hello").as_bytes()).unwrap();
        read_response(&mut warm).unwrap();
    }
    const N: u64 = 500;
    // 3 rounds: 3,000 descriptors in this process (client and server ends).
    crate::abuse::raise_fd_limit(4096);
    let mut conns = Vec::new();
    // RSS is the whole test process's: other tests of this binary allocate concurrently, so
    // the least of three rounds of N more connections is the connections' own cost.
    let mut per_conn = u64::MAX;
    for _ in 0..3 {
        let before = vm_rss_kib();
        for _ in 0..N {
            let mut s = srv.connect();
            s.write_all(get("/hello").as_bytes()).unwrap();
            assert_eq!(read_response(&mut s).unwrap().0, 200);
            conns.push(s);
        }
        per_conn = per_conn.min(vm_rss_kib().saturating_sub(before) * 1024 / N);
        if per_conn <= 2048 {
            break;
        }
    }
    eprintln!("idle keep-alive connection: {per_conn} bytes of RSS");
    assert!(
        per_conn <= 2048,
        "an idle keep-alive connection costs {per_conn} bytes"
    );
}

#[test]
fn slow_reader_gets_spilled_output_in_order() {
    let srv = TestServer::start(ServerOptions {
        outbuf_overflow: 64 * 1024,
        outbuf_high_watermark: 1 << 20,
        ..opts()
    });
    let mut s = srv.connect();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let n: u64 = 24 << 20;
    s.write_all(get(&format!("/pattern?{n}")).as_bytes())
        .unwrap();
    // Let the app run into back-pressure with output spilled to the temp file.
    std::thread::sleep(Duration::from_millis(500));
    let mut r = std::io::BufReader::new(s);
    let (status, head, body) = read_response(&mut r).unwrap();
    assert_eq!(status, 200, "{head}");
    assert_eq!(body.len() as u64, n);
    assert!(
        body.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8),
        "output reordered"
    );
}

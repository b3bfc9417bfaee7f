//! Slowloris, idle floods and header bombs: the loop cuts them and a fresh client is served.
use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use super::{connect_many, fresh_client_served, read_response, rss_kib, start};
use crate::util::{root, Daemon};

/// Clients that send a head one byte every 300 ms, below `connection_limit` (the others are
/// served beside them) and above it (they are evicted for waiting clients, and the whole-head
/// deadline cuts them anyway).
#[test]
fn slowloris_below_and_above_the_connection_limit_does_not_starve_fresh_clients() {
    let d = start(&[
        "--connection-limit",
        "20",
        "--channel-timeout",
        "4",
        "--cleanup-interval",
        "1",
    ]);
    let addr = d.addr();
    let base = rss_kib(d.pid());
    // Below the limit they cost nothing; above it, 40 of them wait in the backlog ahead of the
    // fresh client and each is evicted a second after its first byte (two rounds of 20).
    for (n, bound) in [(10, 2), (60, 6)] {
        let mut slow = connect_many(&addr, n);
        for s in &mut slow {
            let _ = s.write_all(b"GET /hello HTTP/1.1\r\nHost: t\r\n");
        }
        let t = Instant::now();
        let mut served = Vec::new();
        while t.elapsed() < Duration::from_secs(3) {
            for s in &mut slow {
                let _ = s.write_all(b"X");
            }
            served.push(fresh_client_served(&addr, 10));
            std::thread::sleep(Duration::from_millis(300));
        }
        for (i, r) in served.iter().enumerate() {
            let took = r
                .as_ref()
                .unwrap_or_else(|e| panic!("{n} slow clients: {e}"));
            assert!(
                *took < Duration::from_secs(bound),
                "{n} slow clients: fresh client {i} took {took:?}"
            );
        }
    }
    let grown = rss_kib(d.pid()).saturating_sub(base);
    assert!(grown < 64 * 1024, "memory grew by {grown} KiB");
}

/// 300 connections that never send a byte, at a `connection_limit` of 100: the ones idle
/// longest make room, and fresh clients keep being served.
#[test]
fn an_idle_flood_above_the_limit_does_not_starve_fresh_clients() {
    let d = start(&["--connection-limit", "100"]);
    let addr = d.addr();
    let base = rss_kib(d.pid());
    let _idle = connect_many(&addr, 300);
    std::thread::sleep(Duration::from_millis(300));
    for i in 0..5 {
        let took = fresh_client_served(&addr, 10).unwrap();
        assert!(took < Duration::from_secs(5), "fresh client {i}: {took:?}");
    }
    let grown = rss_kib(d.pid()).saturating_sub(base);
    assert!(grown < 64 * 1024, "memory grew by {grown} KiB");
}

fn send_and_read(addr: &str, req: &[u8]) -> Option<u16> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // The server may answer 431 and close before the whole bomb is written.
    let _ = s.write_all(req);
    read_response(&mut s).map(|r| r.0)
}

/// Header bombs within and beyond `max_request_header_size` (262144 by default): many small
/// header lines, one huge header, a huge request line. Each gets its answer (served or 431,
/// never a hang or a crash), the worker's memory stays bounded, and a fresh client is served.
#[test]
fn header_bombs_get_431_or_are_served_and_memory_stays_bounded() {
    let d = start(&[]);
    let addr = d.addr();
    let base = rss_kib(d.pid());
    let many_small = |n: usize| {
        let mut r = b"GET /hello HTTP/1.1\r\nHost: t\r\n".to_vec();
        for i in 0..n {
            r.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        r.extend_from_slice(b"\r\n");
        r
    };
    assert_eq!(send_and_read(&addr, &many_small(5_000)), Some(200));
    assert_eq!(send_and_read(&addr, &many_small(40_000)), Some(431));
    let huge_header = format!(
        "GET /hello HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n",
        "a".repeat(1 << 20)
    );
    assert_eq!(send_and_read(&addr, huge_header.as_bytes()), Some(431));
    let huge_line = format!("GET /{} HTTP/1.1\r\nHost: t\r\n\r\n", "a".repeat(1 << 20));
    assert_eq!(send_and_read(&addr, huge_line.as_bytes()), Some(431));
    // Many at once.
    let bombs: Vec<_> = (0..20)
        .map(|_| {
            let addr = addr.clone();
            let bomb = huge_header.clone();
            std::thread::spawn(move || send_and_read(&addr, bomb.as_bytes()))
        })
        .collect();
    for b in bombs {
        assert_eq!(b.join().unwrap(), Some(431));
    }
    fresh_client_served(&addr, 10).unwrap();
    let grown = rss_kib(d.pid()).saturating_sub(base);
    assert!(grown < 64 * 1024, "memory grew by {grown} KiB");
}

/// Requests that each carry a header with a new long name (150 KiB, within
/// `max_request_header_size`): every one is served and the worker's memory stays flat. The
/// environ builder's per-thread cache of header names once kept up to 256 of them per app
/// thread, twice each (400 MiB per worker with 4 threads, for the worker's life).
#[test]
fn distinct_long_header_names_do_not_grow_memory() {
    served_with_flat_memory(24 * 1024, |i| {
        let name = format!("X-{}", format!("{i:08}").repeat(150 * 1024 / 8));
        format!("GET /hello HTTP/1.1\r\nHost: t\r\n{name}: v\r\n\r\n").into_bytes()
    });
}

/// 400 requests built by `request(i)` on one keep-alive connection (1 app thread): each is
/// answered 200 `hello`, a fresh client is served after them, and the worker grew by less than
/// `max_kib`.
fn served_with_flat_memory(max_kib: u64, request: impl Fn(usize) -> Vec<u8>) {
    let d = start(&["--threads", "1"]);
    let addr = d.addr();
    fresh_client_served(&addr, 10).unwrap();
    let base = rss_kib(d.pid());
    let mut s = TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    for i in 0..400 {
        s.write_all(&request(i)).unwrap();
        assert_eq!(
            read_response(&mut s),
            Some((200, b"hello".to_vec())),
            "request {i}"
        );
    }
    fresh_client_served(&addr, 10).unwrap();
    let grown = rss_kib(d.pid()).saturating_sub(base);
    assert!(grown < max_kib, "memory grew by {grown} KiB");
}

/// `waitressd --app abuse:app` (1 thread) under an open-file limit (soft and hard) of `n`.
fn start_with_nofile(n: libc::rlim_t) -> Daemon {
    use std::os::unix::process::CommandExt;
    let mut cmd = std::process::Command::new(crate::util::bin());
    cmd.args([
        "--app",
        "abuse:app",
        "--listen",
        "127.0.0.1:0",
        "--threads",
        "1",
    ])
    .current_dir(root().join("tests/apps/wsgi"));
    // SAFETY: the closure runs in the forked child before exec and only calls setrlimit(2),
    // which is async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            let r = libc::rlimit {
                rlim_cur: n,
                rlim_max: n,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &r) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Daemon::start_with(&mut cmd, 1)
}

/// An open-file limit below what `connection_limit` needs (hard limit 64, the default limit of
/// 100): 100 clients that connect and send nothing take every descriptor the worker has, and
/// accept(2) fails with EMFILE. They are made room for as at `connection_limit` (those idle
/// for a second are closed), so a fresh client is answered; it used to wait in the backlog
/// until they timed out (`channel_timeout`, 120 s).
#[test]
fn idle_connections_at_the_open_file_limit_make_room_for_a_fresh_client() {
    let d = start_with_nofile(64);
    let addr = d.addr();
    fresh_client_served(&addr, 10).unwrap();
    let _idle = connect_many(&addr, 100);
    std::thread::sleep(Duration::from_millis(1500));
    for i in 0..3 {
        fresh_client_served(&addr, 10).unwrap_or_else(|e| panic!("fresh client {i}: {e}"));
    }
    let said: Vec<String> = d.stderr.try_iter().collect();
    assert!(
        said.iter()
            .any(|l| l.contains("Too many open files") && l.contains("LimitNOFILE")),
        "{said:?}"
    );
}

/// A worker out of file descriptors (the app took them all) cannot make the temp file a large
/// upload or a spilled response needs: the upload gets a 500, the response is cut, and each is
/// logged with the fix that helps (the open-file limit), not "a writable TMPDIR with free
/// space", which sent operators to a directory with nothing wrong. Once the descriptors are
/// back, the worker serves as before.
#[test]
fn a_worker_out_of_descriptors_names_the_open_file_limit_when_a_spill_fails() {
    let d = start_with_nofile(256);
    let addr = d.addr();
    let upload = |s: &mut TcpStream| {
        let n = 1 << 20;
        let head = format!("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: {n}\r\n\r\n");
        s.write_all(head.as_bytes()).unwrap();
        // The server may answer and close before it has read the whole body.
        let _ = s.write_all(&vec![b'u'; n]);
        read_response(s)
    };
    // A response that must spill (64 MiB to a client not reading yet), then an upload.
    let mut a = TcpStream::connect(&addr).unwrap();
    a.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    a.write_all(b"GET /hog HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut a), Some((200, b"hello".to_vec())));
    a.write_all(b"GET /big HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    // A chunked body cut before its last chunk (the connection ends), never a complete one.
    let (got, _) = crate::util::read_until_close(&mut a);
    assert!(got.starts_with(b"HTTP/1.1 200"), "{}", got.len());
    assert!(
        !got.ends_with(b"\r\n0\r\n\r\n") && got.len() < 64 << 20,
        "{}",
        got.len()
    );
    let spill = wait_line(&d, "cannot spill a response");
    drop(a);
    let mut b = TcpStream::connect(&addr).unwrap();
    b.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    assert_eq!(upload(&mut b).map(|r| r.0), Some(500));
    let body = wait_line(&d, "request body over inbuf_overflow");
    for line in [&spill, &body] {
        assert!(
            line.contains("Too many open files") && line.contains("LimitNOFILE"),
            "{line}"
        );
        assert!(!line.contains("free space"), "{line}");
    }
    drop(b);
    let mut c = TcpStream::connect(&addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(b"GET /unhog HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut c), Some((200, b"hello".to_vec())));
    let mut e = TcpStream::connect(&addr).unwrap();
    e.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let echoed = upload(&mut e).expect("the upload is served again");
    assert_eq!((echoed.0, echoed.1.len()), (200, 1 << 20));
}

/// The first stderr line of `d` containing `want` (bounded wait).
fn wait_line(d: &Daemon, want: &str) -> String {
    let end = Instant::now() + Duration::from_secs(10);
    let mut seen = Vec::new();
    while let Ok(l) = d
        .stderr
        .recv_timeout(end.saturating_duration_since(Instant::now()))
    {
        if l.contains(want) {
            return l;
        }
        seen.push(l);
    }
    panic!("no line with {want:?}:\n{}", seen.join("\n"));
}

/// Requests that each carry 1,000 header names never seen before (400,000 in all): every one
/// is served and the worker's memory stays flat. Names past the per-thread cache were
/// interned, and CPython 3.12 makes interned strings immortal: a worker built on 3.12 grew by
/// every new name for good.
#[test]
fn ever_new_header_names_do_not_grow_memory() {
    served_with_flat_memory(16 * 1024, |i| {
        let mut req = b"GET /hello HTTP/1.1\r\nHost: t\r\n".to_vec();
        for j in 0..1000 {
            req.extend_from_slice(format!("X-{i}-{j}: v\r\n").as_bytes());
        }
        req.extend_from_slice(b"\r\n");
        req
    });
}

//! Apps that never return, raise or leak, and a worker killed mid-request.
use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use super::{fresh_client_served, read_response, rss_kib, start};

/// With every app thread stuck in an app that never returns, the loop still accepts, answers
/// what it answers itself (a malformed request's 400), and closes idle connections on its
/// sweep; the stuck requests' clients are not answered wrongly.
#[test]
fn an_app_that_never_returns_on_every_thread_leaves_the_loop_working() {
    let d = start(&[
        "--threads",
        "2",
        "--channel-timeout",
        "2",
        "--cleanup-interval",
        "1",
    ]);
    let addr = d.addr();
    let mut hung = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(&addr).unwrap();
        s.write_all(b"GET /hang HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        hung.push(s);
    }
    std::thread::sleep(Duration::from_millis(300));
    // Accepted, and a malformed request is refused by the loop itself.
    let mut bad = TcpStream::connect(&addr).unwrap();
    bad.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    bad.write_all(b"GET nope HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut bad).map(|r| r.0), Some(400));
    // An idle connection is closed by the sweep within channel_timeout + a sweep or two.
    let mut idle = TcpStream::connect(&addr).unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let t = Instant::now();
    let mut b = [0u8; 1];
    let closed = matches!(std::io::Read::read(&mut idle, &mut b), Ok(0) | Err(_));
    assert!(
        closed && t.elapsed() < Duration::from_secs(8),
        "idle connection not swept"
    );
}

/// An app that raises on every request: each client gets a 500 (never a hang or a reset),
/// memory stays bounded, and the next good request is served.
#[test]
fn an_app_that_raises_on_every_request_gets_500s_and_keeps_serving() {
    let d = start(&["--threads", "4"]);
    let addr = d.addr();
    fresh_client_served(&addr, 10).unwrap();
    let base = rss_kib(d.pid());
    let mut s = TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    for i in 0..300 {
        if s.write_all(b"GET /raise HTTP/1.1\r\nHost: t\r\n\r\n")
            .is_err()
        {
            s = TcpStream::connect(&addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            s.write_all(b"GET /raise HTTP/1.1\r\nHost: t\r\n\r\n")
                .unwrap();
        }
        match read_response(&mut s) {
            Some((500, _)) => {}
            other => panic!("request {i}: {other:?}"),
        }
        // waitress closes after an app error (Connection: close).
        s = TcpStream::connect(&addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    }
    fresh_client_served(&addr, 10).unwrap();
    let grown = rss_kib(d.pid()).saturating_sub(base);
    assert!(grown < 64 * 1024, "memory grew by {grown} KiB");
}

/// An app that leaks an open file and 64 KiB on every request keeps being served: the leak is
/// the app's, the server neither crashes nor stops answering.
#[test]
fn an_app_that_leaks_on_every_request_keeps_being_served() {
    let d = start(&["--threads", "4"]);
    let addr = d.addr();
    for i in 0..200 {
        let mut s = TcpStream::connect(&addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(b"GET /leak HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            .unwrap();
        assert_eq!(read_response(&mut s).map(|r| r.0), Some(200), "request {i}");
    }
    fresh_client_served(&addr, 10).unwrap();
}

/// A worker killed (SIGKILL) while a request runs: that client sees its connection end
/// without a response (a visible failure, never wrong bytes), the master starts a new worker,
/// and a fresh client is served.
#[test]
fn a_worker_killed_mid_request_is_replaced_and_its_client_sees_a_visible_failure() {
    let d = start(&["--threads", "2"]);
    let addr = d.addr();
    fresh_client_served(&addr, 10).unwrap();
    let pid = d.pid();
    let workers = || crate::util::children(pid);
    let old = workers();
    assert_eq!(old.len(), 1, "{old:?}");
    let mut s = TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /hang HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: kill(2) on the worker the daemon we started forked (read from /proc).
    unsafe { libc::kill(old[0], libc::SIGKILL) };
    assert_eq!(
        read_response(&mut s),
        None,
        "a response from a killed worker"
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut served = Err(String::new());
    while Instant::now() < deadline {
        served = fresh_client_served(&addr, 5);
        if served.is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    served.unwrap();
    let new = workers();
    assert!(new.len() == 1 && new != old, "workers {old:?} -> {new:?}");
}

//! Bursts at `connection_limit`: idle keep-alive connections make room at once, oldest first.
use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use super::{connect_many, fresh_client_served, read_response, rss_kib, start};

/// 1000 keep-alive clients arrive at once at a worker with the default `connection_limit`
/// of 100; each sends one request and keeps its connection. All are answered, the idle
/// keep-alive connections being closed to make room (a waiting client is never stuck behind
/// one for a second, as it was with the 1 s eviction age: 1000 then took over 9 s); a fresh
/// client is served at once; and no request is lost: a second request on every connection is
/// answered, on the same one when it is still open or on a new one, as an HTTP client retries.
#[test]
fn a_burst_of_1000_keepalive_clients_at_the_limit_is_all_answered_and_none_lost() {
    let _g = crate::util::RSS_LOCK
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let d = start(&["--threads", "4"]);
    let addr = d.addr();
    let t = Instant::now();
    let mut clients = connect_many(&addr, 1000);
    for s in &mut clients {
        s.write_all(b"GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    }
    for (i, s) in clients.iter_mut().enumerate() {
        let r = read_response(s);
        assert_eq!(
            r.map(|r| r.0),
            Some(200),
            "client {i} of the burst not answered after {:?}",
            t.elapsed()
        );
    }
    let all = t.elapsed();
    // The target is 3 s; 8 s is generous on a shared machine, and the old behaviour (one
    // batch of `connection_limit` per second) needs over 9 s.
    assert!(all < Duration::from_secs(8), "1000 clients took {all:?}");
    let fresh = fresh_client_served(&addr, 10).unwrap();
    assert!(
        fresh < Duration::from_secs(3),
        "fresh client took {fresh:?}"
    );

    // No request lost: each client asks again, retrying on a new connection if its idle
    // connection was closed (and only then).
    let mut retried = 0;
    for (i, s) in clients.iter_mut().enumerate() {
        let again = s
            .write_all(b"GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
            .ok()
            .and_then(|_| read_response(s));
        let again = match again {
            Some(r) => Some(r),
            None => {
                retried += 1;
                let mut n = TcpStream::connect(&addr).unwrap();
                n.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                n.write_all(b"GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                    .unwrap();
                read_response(&mut n)
            }
        };
        assert_eq!(
            again.map(|r| r.0),
            Some(200),
            "client {i}: second request lost"
        );
    }
    assert!(retried >= 900, "only {retried} connections were closed");
    assert!(rss_kib(d.pid()) < 512 * 1024, "memory grew past 512 MiB");
}

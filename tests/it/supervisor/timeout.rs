//! `request_timeout` on the real binary: a stuck call is answered 504, logged with its Python
//! stack and interrupted; one that cannot be interrupted (blocked in C) gets its worker
//! replaced while the other requests are served.
use std::time::{Duration, Instant};

use crate::util::{exchange, split_response, Daemon};

use super::{ask, children, eventually, start, write_ini};

/// Waits (bounded) until every needle has been seen in some stderr line, in any order.
fn saw_all(d: &Daemon, needles: &[&str], secs: u64) -> Result<(), Vec<String>> {
    let mut left: Vec<String> = needles.iter().map(|s| s.to_string()).collect();
    let end = Instant::now() + Duration::from_secs(secs);
    while !left.is_empty() {
        let Some(wait) = end.checked_duration_since(Instant::now()) else {
            break;
        };
        match d.stderr.recv_timeout(wait) {
            Ok(line) => left.retain(|n| !line.contains(n.as_str())),
            Err(_) => break,
        }
    }
    if left.is_empty() {
        Ok(())
    } else {
        Err(left)
    }
}

#[test]
fn request_timeout_answers_504_logs_the_stack_interrupts_and_replaces_a_stuck_worker() {
    let dir = tempfile::tempdir().unwrap();
    let ini = write_ini(
        dir.path(),
        "supapp:make_app",
        "one",
        "listen = 127.0.0.1:0\nrequest_timeout = 2\ngraceful_timeout = 3",
    );
    let mut d = start(&ini, 1);
    let addr = d.addr();
    assert!(eventually(30, || ask(&addr, "/").is_some()));
    let (first, _, _) = ask(&addr, "/").unwrap();

    // A busy Python loop: 504 for the client, its stack logged, TimeoutError raised in it.
    let raw = exchange(&addr, b"GET /spin?60 HTTP/1.1\r\nHost: t\r\n\r\n", 30);
    let (status, head, body) = split_response(&raw);
    assert_eq!(status, 504, "{head}");
    assert!(head.contains("Connection: close"), "{head}");
    assert!(String::from_utf8_lossy(&body).contains("request_timeout"));
    saw_all(
        &d,
        &[
            "request_timeout: GET /spin has run",
            "supapp.py",
            "TimeoutError",
        ],
        20,
    )
    .unwrap();

    // Blocked in C (time.sleep): 504 too; the other app threads keep serving; the call never
    // returns, so the worker is replaced and then killed after graceful_timeout.
    let a = addr.clone();
    let stuck =
        std::thread::spawn(move || exchange(&a, b"GET /sleep?600 HTTP/1.1\r\nHost: t\r\n\r\n", 30));
    let mut failures = 0;
    for _ in 0..20 {
        if ask(&addr, "/").is_none() {
            failures += 1;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let (status, head, _) = split_response(&stuck.join().unwrap());
    assert_eq!(status, 504, "{head}");
    saw_all(
        &d,
        &["GET /sleep has run", "asking for this worker's replacement"],
        30,
    )
    .unwrap();
    assert!(
        eventually(30, || match ask(&addr, "/") {
            Some((pid, _, _)) => pid != first,
            None => {
                failures += 1;
                false
            }
        }),
        "the replacement serves"
    );
    assert_eq!(failures, 0, "no other request failed");
    assert!(
        eventually(30, || children(d.pid()).len() == 1),
        "the stuck worker is gone"
    );
    d.signal(libc::SIGTERM);
    assert_eq!(d.wait(30), Some(0));
}

//! Workers retired while healthy work goes on: `max_requests` (+ jitter) and
//! `max_worker_memory` replace a worker gracefully (the replacement is ready first), with no
//! failed request under load.
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::failures::line_with;
use super::reload::Client;
use super::{ask, eventually, start, write_ini};

/// Bounded load: 2 keep-alive clients and 2 connection-per-request clients until `stop` (or
/// 120 s). Returns (handles, ok count, failures, pids seen).
pub(super) type Load = (
    Vec<std::thread::JoinHandle<()>>,
    Arc<AtomicUsize>,
    Arc<Mutex<Vec<String>>>,
    Arc<Mutex<std::collections::HashSet<i32>>>,
);

pub(super) fn load(addr: &str, stop: &Arc<AtomicBool>) -> Load {
    let ok = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let pids = Arc::new(Mutex::new(std::collections::HashSet::new()));
    let handles = (0..4)
        .map(|i| {
            let (stop, ok, failures, pids, addr) = (
                stop.clone(),
                ok.clone(),
                failures.clone(),
                pids.clone(),
                addr.to_string(),
            );
            std::thread::spawn(move || {
                let mut c = Client {
                    addr: addr.clone(),
                    conn: None,
                };
                let end = Instant::now() + Duration::from_secs(120);
                while !stop.load(Ordering::SeqCst) && Instant::now() < end {
                    let r = if i < 2 {
                        c.get("/")
                            .and_then(|b| b.split(' ').next().unwrap_or("").parse().map_err(|_| b))
                    } else {
                        ask(&addr, "/")
                            .map(|r| r.0)
                            .ok_or_else(|| "new connection failed".to_string())
                    };
                    match r {
                        Ok(pid) => {
                            ok.fetch_add(1, Ordering::SeqCst);
                            pids.lock().unwrap().insert(pid);
                        }
                        Err(e) => failures.lock().unwrap().push(e),
                    }
                }
            })
        })
        .collect();
    (handles, ok, failures, pids)
}

#[test]
fn max_requests_recycles_workers_under_load_with_zero_failures() {
    let dir = tempfile::tempdir().unwrap();
    let ini = write_ini(
        dir.path(),
        "supapp:make_app",
        "one",
        "listen = 127.0.0.1:0\nworkers = 2\nmax_requests = 150\nmax_requests_jitter = 50",
    );
    let mut d = start(&ini, 1);
    let addr = d.addr();
    assert!(eventually(30, || ask(&addr, "/").is_some()));
    let stop = Arc::new(AtomicBool::new(false));
    let (handles, ok, failures, pids) = load(&addr, &stop);
    // Each worker retires after 150-200 requests: at least 3 generations of workers.
    assert!(
        eventually(100, || pids.lock().unwrap().len() >= 6
            && ok.load(Ordering::SeqCst) > 900),
        "workers were recycled: {} pids, {} requests",
        pids.lock().unwrap().len(),
        ok.load(Ordering::SeqCst)
    );
    stop.store(true, Ordering::SeqCst);
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(*failures.lock().unwrap(), Vec::<String>::new());
    assert!(line_with(&d, "retiring: max_requests reached", 10).is_some());
    d.signal(libc::SIGTERM);
    assert_eq!(d.wait(30), Some(0));
}

#[test]
fn a_leaking_worker_crossing_max_worker_memory_is_replaced_gracefully() {
    let dir = tempfile::tempdir().unwrap();
    let ini = write_ini(
        dir.path(),
        "supapp:make_app",
        "one",
        "listen = 127.0.0.1:0\nmax_worker_memory = 150M",
    );
    let mut d = start(&ini, 1);
    let addr = d.addr();
    assert!(eventually(30, || ask(&addr, "/").is_some()));
    let (leaker, _, _) = ask(&addr, "/leak?40").unwrap();
    for _ in 0..4 {
        assert!(ask(&addr, "/leak?40").is_some(), "leaking requests succeed");
    }
    let line = line_with(&d, "exceeds max_worker_memory", 30).expect("logged with its RSS");
    assert!(line.contains(&format!("pid {leaker}")), "{line}");
    let mut failures = 0;
    assert!(
        eventually(60, || {
            match ask(&addr, "/") {
                Some((pid, _, _)) => pid != leaker,
                None => {
                    failures += 1;
                    false
                }
            }
        }),
        "the replacement serves"
    );
    assert_eq!(failures, 0);
    assert!(
        eventually(30, || super::children(d.pid()).len() == 1),
        "the leaking worker is gone"
    );
    d.signal(libc::SIGTERM);
    assert_eq!(d.wait(30), Some(0));
}

/// A `max_worker_memory` below what a fresh worker uses (`200`, meant as MB, is 200 bytes):
/// the worker is kept and a WARNING names the fix, where every worker was retired the second
/// after it became ready, for ever (a replacement a second). A leak past a sensible limit
/// still retires (above).
#[test]
fn a_max_worker_memory_below_a_fresh_worker_is_named_not_a_replacement_every_second() {
    let dir = tempfile::tempdir().unwrap();
    let ini = write_ini(
        dir.path(),
        "supapp:make_app",
        "one",
        "listen = 127.0.0.1:0\nmax_worker_memory = 200",
    );
    let mut d = start(&ini, 1);
    let addr = d.addr();
    assert!(eventually(30, || ask(&addr, "/").is_some()));
    let (first, _, _) = ask(&addr, "/").unwrap();
    // The memory check runs every second: 4 s without a retirement, the same worker serving.
    let mut seen = Vec::new();
    let end = Instant::now() + Duration::from_secs(4);
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        if let Ok(l) = d.stderr.recv_timeout(left) {
            seen.push(l);
        }
    }
    assert!(!seen.iter().any(|l| l.contains("retiring")), "{seen:?}");
    let warn: Vec<_> = seen
        .iter()
        .filter(|l| l.contains("right after start is already above max_worker_memory = 200 bytes"))
        .collect();
    assert_eq!(warn.len(), 1, "one WARNING naming the limit: {seen:?}");
    assert!(warn[0].contains("512M"), "{}", warn[0]);
    assert_eq!(ask(&addr, "/").unwrap().0, first, "the same worker serves");
    d.signal(libc::SIGTERM);
    assert_eq!(d.wait(30), Some(0));
}

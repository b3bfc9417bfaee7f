//! Workers' lifecycle under the master: privilege drop after binding a privileged port,
//! a killed worker replaced without downtime, SIGTERM draining in-flight requests, SIGINT twice.
use std::net::TcpStream;
use std::time::{Duration, Instant};

use super::{ask, children, eventually, start, write_ini};

fn proc_ids(pid: i32, key: &str) -> Vec<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(key)).unwrap();
    line.split_whitespace()
        .skip(1)
        .map(|x| x.parse().unwrap())
        .collect()
}

/// Port 80 if free, else a free port below 1024 chosen at random.
fn privileged_port() -> u16 {
    if std::net::TcpListener::bind("127.0.0.1:80").is_ok() {
        return 80;
    }
    let mut seed = std::process::id() as u64 ^ Instant::now().elapsed().as_nanos() as u64;
    for _ in 0..200 {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let port = 600 + (seed >> 33) as u16 % 400;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free privileged port");
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn privileged_port_as_root_then_workers_run_as_nobody() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = privileged_port();
    // preload_app: this machine's CPython lives under /root (mode 0700), which `nobody` cannot
    // read; the master loads the app as root and the workers serve as nobody.
    let ini = write_ini(
        dir.path(),
        "supapp:make_app",
        "one",
        &format!("listen = 127.0.0.1:{port}\nuser = nobody\nworkers = 2\npreload_app = true"),
    );
    let d = start(&ini, 1);
    assert_eq!(d.addr(), format!("127.0.0.1:{port}"));
    let nobody = 65534u32;
    let (pid, _, ids) = ask(&d.addr(), "/").expect("request as nobody succeeds");
    assert_eq!(ids, format!("{nobody},{nobody},{nobody}"));
    // A worker is root only between fork and its privilege drop (before it loads anything):
    // wait until both are up, then every sample must show nobody.
    let all_nobody = || {
        let ws = children(d.pid());
        ws.len() == 2 && ws.iter().all(|&w| proc_ids(w, "Uid:") == vec![nobody; 4])
    };
    assert!(eventually(20, all_nobody));
    for _ in 0..20 {
        assert!(all_nobody(), "no root worker");
        std::thread::sleep(Duration::from_millis(10));
    }
    for w in children(d.pid()) {
        assert_eq!(
            proc_ids(w, "Uid:"),
            vec![nobody; 4],
            "worker {w}: real, effective, saved, fs uid"
        );
        assert_ne!(proc_ids(w, "Gid:")[0], 0, "worker {w} gid");
        let comm = std::fs::read_to_string(format!("/proc/{w}/comm")).unwrap();
        assert!(comm.starts_with("waitressd-w"), "{comm}");
    }
    assert!(children(d.pid()).contains(&pid));
    let comm = std::fs::read_to_string(format!("/proc/{}/comm", d.pid())).unwrap();
    assert_eq!(comm.trim(), "waitressd-m");
}

#[test]
fn two_workers_serve_and_a_killed_worker_is_replaced_without_downtime() {
    let dir = tempfile::tempdir().unwrap();
    let ini = write_ini(
        dir.path(),
        "supapp:make_app",
        "one",
        "listen = 127.0.0.1:0\nworkers = 2",
    );
    let mut d = start(&ini, 1);
    let addr = d.addr();
    let mut per_pid = std::collections::HashMap::<i32, usize>::new();
    assert!(
        eventually(30, || {
            if let Some((pid, _, _)) = ask(&addr, "/") {
                *per_pid.entry(pid).or_default() += 1;
            }
            per_pid.len() == 2
        }),
        "both workers serve: {per_pid:?}"
    );
    let victim = *per_pid.keys().next().unwrap();
    // SAFETY: kill(2) on a worker of the daemon this test started.
    unsafe { libc::kill(victim, libc::SIGKILL) };
    let mut failures = 0;
    let mut replaced = false;
    assert!(eventually(30, || {
        match ask(&addr, "/") {
            Some((pid, _, _)) => replaced |= !per_pid.contains_key(&pid),
            None => failures += 1,
        }
        replaced
    }));
    assert_eq!(failures, 0, "service never stopped");
    assert!(!children(d.pid()).contains(&victim));
    d.signal(libc::SIGTERM);
    assert_eq!(d.wait(30), Some(0));
}

#[test]
fn term_completes_in_flight_request_exits_0_and_stops_listening() {
    let dir = tempfile::tempdir().unwrap();
    let ini = write_ini(dir.path(), "supapp:make_app", "one", "listen = 127.0.0.1:0");
    let mut d = start(&ini, 1);
    let addr = d.addr();
    assert!(ask(&addr, "/").is_some());
    let a = addr.clone();
    let slow = std::thread::spawn(move || ask(&a, "/sleep?2"));
    std::thread::sleep(Duration::from_millis(500));
    d.signal(libc::SIGTERM);
    assert!(
        slow.join().unwrap().is_some(),
        "the 2-second request completed"
    );
    assert_eq!(d.wait(30), Some(0));
    assert!(
        TcpStream::connect(&addr).is_err(),
        "nothing listens afterwards"
    );
}

/// During a graceful stop a new client is refused at once (a proxy retries elsewhere), not
/// left in a backlog nobody accepts from until the master exits and resets it; the request
/// in flight still completes.
#[test]
fn a_client_arriving_during_the_drain_is_refused_not_left_hanging() {
    let dir = tempfile::tempdir().unwrap();
    let ini = write_ini(
        dir.path(),
        "supapp:make_app",
        "one",
        "listen = 127.0.0.1:0\nworkers = 2\ngraceful_timeout = 30",
    );
    let mut d = start(&ini, 1);
    let addr = d.addr();
    assert!(eventually(30, || ask(&addr, "/").is_some()));
    let a = addr.clone();
    let slow = std::thread::spawn(move || ask(&a, "/sleep?8"));
    std::thread::sleep(Duration::from_millis(500));
    d.signal(libc::SIGTERM);
    assert!(
        eventually(6, || TcpStream::connect(&addr)
            .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionRefused)),
        "while the 8-second request runs, new connections are refused"
    );
    assert!(
        slow.join().unwrap().is_some(),
        "the request in flight completed"
    );
    assert_eq!(d.wait(30), Some(0));
}

#[test]
fn int_twice_stops_immediately() {
    let dir = tempfile::tempdir().unwrap();
    let ini = write_ini(
        dir.path(),
        "supapp:make_app",
        "one",
        "listen = 127.0.0.1:0\ngraceful_timeout = 60",
    );
    let mut d = start(&ini, 1);
    let addr = d.addr();
    assert!(ask(&addr, "/").is_some());
    let a = addr.clone();
    let _slow = std::thread::spawn(move || ask(&a, "/sleep?30"));
    std::thread::sleep(Duration::from_millis(500));
    d.signal(libc::SIGINT);
    std::thread::sleep(Duration::from_millis(200));
    d.signal(libc::SIGINT);
    assert!(
        d.wait(10).is_some(),
        "second INT stopped the daemon at once"
    );
}

/// A request still running at `graceful_timeout` is cut by the master's SIGKILL, and the log
/// says so (it said only "exited (killed by a signal)"); a worker stopped from outside (a TERM
/// sent to it by hand) is replaced with a WARNING, not an ERROR about a crash.
#[test]
fn the_log_says_when_a_stop_cuts_requests_and_when_a_worker_was_stopped_by_hand() {
    let dir = tempfile::tempdir().unwrap();
    let ini = write_ini(
        dir.path(),
        "supapp:make_app",
        "one",
        "listen = 127.0.0.1:0\ngraceful_timeout = 2",
    );
    let mut d = start(&ini, 1);
    let addr = d.addr();
    let (first, _, _) = ask(&addr, "/").expect("served");
    // SAFETY: kill(2) on the worker of the daemon this test started.
    unsafe { libc::kill(first, libc::SIGTERM) };
    let by_hand = super::failures::line_with(&d, "without the master asking", 30);
    assert!(by_hand.is_some_and(|l| l.contains("WARN") && l.contains(&first.to_string())));
    assert!(eventually(30, || ask(&addr, "/").is_some_and(|(p, _, _)| p != first)));
    let a = addr.clone();
    let _slow = std::thread::spawn(move || ask(&a, "/sleep?30"));
    std::thread::sleep(Duration::from_millis(500));
    d.signal(libc::SIGTERM);
    let cut = super::failures::line_with(&d, "after it was asked to stop", 30);
    assert!(
        cut.is_some_and(|l| l.contains("WARN") && l.contains("still serving 2 s")),
        "the cut is logged"
    );
    assert_eq!(d.wait(30), Some(0));
}

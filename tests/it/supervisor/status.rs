//! The status listener on the real binary: `/ready` (200 once every worker is ready, 503 from
//! the moment a TERM starts draining, while the in-flight request still completes), `/live`,
//! and `/metrics` equal to what a bounded load sent, kept across a worker's crash; served by
//! a single-threaded master that closes idle clients and forks with them open.
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use super::{apps, ask, children, eventually, start, write_ini};
use crate::util::{split_response, Daemon};

/// Reads stderr (bounded) until the `Status on http://...` line; returns `host:port`.
pub(super) fn status_addr(d: &Daemon) -> String {
    loop {
        let line = d
            .stderr
            .recv_timeout(Duration::from_secs(30))
            .expect("no Status on line");
        if let Some(i) = line.find("Status on http://") {
            return line[i + 17..].trim().to_string();
        }
    }
}

/// (status, body) of one request, or (0, "") when the connection fails.
pub(super) fn req(addr: &str, method: &str, path: &str) -> (u16, String) {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return (0, String::new());
    };
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let r = format!("{method} {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    if s.write_all(r.as_bytes()).is_err() {
        return (0, String::new());
    }
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let (code, _, body) = split_response(&raw);
    (code, String::from_utf8_lossy(&body).into_owned())
}

/// The value of the sample named exactly `name` (labels included).
pub(super) fn sample(metrics: &str, name: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

pub(super) fn boot(workers: usize) -> (tempfile::TempDir, Daemon, String) {
    let dir = tempfile::tempdir().unwrap();
    let ini = write_ini(
        dir.path(),
        "supapp:make_app",
        "one",
        &format!(
            "listen = 127.0.0.1:0\nworkers = {workers}\nthreads = 2\nstatus_listen = 127.0.0.1:0\n"
        ),
    );
    let _ = apps();
    let d = start(&ini, 1);
    let status = status_addr(&d);
    assert!(
        eventually(30, || req(&status, "GET", "/ready").0 == 200),
        "/ready never 200"
    );
    (dir, d, status)
}

#[test]
fn metrics_equal_what_a_bounded_load_sent() {
    let (_dir, d, status) = boot(2);
    assert_eq!(req(&status, "GET", "/live"), (200, "live\n".into()));
    assert_eq!(req(&status, "GET", "/nope").0, 404);
    assert_eq!(req(&status, "POST", "/ready").0, 405);
    let app = d.addr();
    let (mut sent_bytes, mut ok) = (0usize, 0);
    // (method, count)
    for (method, n) in [("GET", 30), ("HEAD", 7), ("POST", 5)] {
        for _ in 0..n {
            let r = format!("{method} /x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
            sent_bytes += r.len();
            ok += (req(&app, method, "/x").0 == 200) as usize;
        }
    }
    assert_eq!(ok, 42);
    let mut m = String::new();
    // Gauges settle once the last connection is closed by the worker.
    assert!(eventually(10, || {
        m = req(&status, "GET", "/metrics").1;
        sample(&m, "waitressd_open_connections") == Some(0.0)
    }));
    let get = |n: &str| sample(&m, n).unwrap_or_else(|| panic!("no {n} in\n{m}"));
    assert_eq!(
        get("waitressd_requests_total{method=\"GET\",code=\"2xx\"}"),
        30.0
    );
    assert_eq!(
        get("waitressd_requests_total{method=\"HEAD\",code=\"2xx\"}"),
        7.0
    );
    assert_eq!(
        get("waitressd_requests_total{method=\"POST\",code=\"2xx\"}"),
        5.0
    );
    assert_eq!(get("waitressd_request_duration_seconds_count"), 42.0);
    assert_eq!(
        get("waitressd_request_duration_seconds_bucket{le=\"+Inf\"}"),
        42.0
    );
    assert_eq!(get("waitressd_received_bytes_total"), sent_bytes as f64);
    assert_eq!(get("waitressd_requests_in_flight"), 0.0);
    assert_eq!(get("waitressd_workers"), 2.0);
    assert_eq!(get("waitressd_ready"), 1.0);
    assert_eq!(m.matches("waitressd_worker_rss_bytes{").count(), 2, "{m}");

    // A worker killed: its counts stay, the restart is counted with its reason.
    let victim = children(d.pid())[0];
    // SAFETY: kill(2) on a worker of the daemon this test started.
    unsafe { libc::kill(victim, libc::SIGKILL) };
    assert!(eventually(30, || {
        m = req(&status, "GET", "/metrics").1;
        sample(&m, "waitressd_worker_restarts_total{reason=\"signal\"}") == Some(1.0)
            && sample(&m, "waitressd_workers") == Some(2.0)
    }));
    assert_eq!(
        sample(&m, "waitressd_request_duration_seconds_count"),
        Some(42.0),
        "{m}"
    );
}

#[test]
fn ready_is_503_from_the_start_of_a_drain_while_requests_finish() {
    let (_dir, mut d, status) = boot(1);
    let app = d.addr();
    let slow = std::thread::spawn(move || req(&app, "GET", "/sleep?2"));
    std::thread::sleep(Duration::from_millis(500));
    d.signal(libc::SIGTERM);
    assert!(
        eventually(2, || req(&status, "GET", "/ready")
            == (503, "draining\n".into())),
        "/ready not 503 after TERM"
    );
    assert!(
        !slow.is_finished(),
        "the in-flight request ended before /ready said 503"
    );
    assert_eq!(slow.join().unwrap().0, 200, "in-flight request lost");
    assert_eq!(d.wait(30), Some(0));
}

#[test]
fn status_listen_on_a_taken_port_is_a_boot_error_naming_it() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let ini = write_ini(
        dir.path(),
        "supapp:make_app",
        "one",
        &format!("listen = 127.0.0.1:0\nstatus_listen = 127.0.0.1:{port}\n"),
    );
    let out = super::command(&ini).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains(&format!("status_listen 127.0.0.1:{port}")),
        "{err}"
    );
    // The fix, worded like the app listener's.
    assert!(
        err.contains(&format!("ss -ltnp 'sport = :{port}' names it"))
            && err.contains("choose another port with status_listen ="),
        "{err}"
    );
}

#[test]
fn retirements_are_counted_by_reason_and_keep_their_requests() {
    let dir = tempfile::tempdir().unwrap();
    let ini = write_ini(
        dir.path(),
        "supapp:make_app",
        "one",
        "listen = 127.0.0.1:0\nworkers = 1\nmax_requests = 5\nstatus_listen = 127.0.0.1:0\n",
    );
    let d = start(&ini, 1);
    let status = status_addr(&d);
    let app = d.addr();
    let mut ok = 0;
    for _ in 0..12 {
        // A retirement in progress may close a keep-alive slot: retry once, as a client would.
        if req(&app, "GET", "/x").0 == 200 || req(&app, "GET", "/x").0 == 200 {
            ok += 1;
        }
    }
    assert_eq!(ok, 12);
    let mut m = String::new();
    assert!(
        eventually(30, || {
            m = req(&status, "GET", "/metrics").1;
            sample(
                &m,
                "waitressd_worker_restarts_total{reason=\"max_requests\"}",
            )
            .is_some_and(|n| n >= 1.0)
        }),
        "{m}"
    );
    assert!(
        sample(&m, "waitressd_request_duration_seconds_count").unwrap() >= 12.0,
        "{m}"
    );
}

/// A status connection is closed in order even when the client sends more than the server
/// reads (a body, pipelined requests, a head past 8 KiB): the server shuts its side for
/// writing and drains the rest before it closes, so the client's send completes and it reads
/// the whole response and an end of file. (Closing a socket with unread bytes sends a reset on
/// Linux: a client still sending saw its send fail and never read the response.) 8 MiB each:
/// more than the kernel buffers between the two (the client's 4 MiB send buffer at most, the
/// server's unread receive window), so the client is still sending when the answer comes.
#[test]
fn unread_request_bytes_still_get_the_whole_response_and_a_clean_end() {
    const MORE: usize = 8 << 20;
    let (_dir, _d, status) = boot(1);
    let post = format!("POST /ready HTTP/1.1\r\nHost: t\r\nContent-Length: {MORE}\r\n\r\n")
        + &"x".repeat(MORE);
    let pipelined = "GET /live HTTP/1.1\r\nHost: t\r\n\r\n".to_string()
        + &"GET /ready HTTP/1.1\r\n\r\n".repeat(MORE / 23);
    let long_head = format!("GET /live HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(MORE));
    // (what the client sends, status line, body)
    let table = [
        (
            "a body",
            post,
            "HTTP/1.1 405 Method Not Allowed",
            "GET only\n",
        ),
        ("pipelined requests", pipelined, "HTTP/1.1 200 OK", "live\n"),
        (
            "a head past 8 KiB",
            long_head,
            "HTTP/1.1 400 Bad Request",
            "bad request\n",
        ),
    ];
    for (name, sent, status_line, want) in table {
        let mut s = TcpStream::connect(&status).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        s.set_write_timeout(Some(Duration::from_secs(30))).unwrap();
        let wrote = s.write_all(sent.as_bytes());
        assert!(wrote.is_ok(), "{name}: the send failed: {wrote:?}");
        let mut raw = Vec::new();
        let r = s.read_to_end(&mut raw);
        assert!(
            r.is_ok(),
            "{name}: {r:?} after {:?}",
            String::from_utf8_lossy(&raw)
        );
        let (_, head, got) = split_response(&raw);
        assert_eq!(head.lines().next(), Some(status_line), "{name}");
        assert_eq!(
            String::from_utf8_lossy(&got),
            want,
            "{name}: one whole response"
        );
    }
}

/// Threads of process `pid`.
fn threads(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// The inode of the IPv4 TCP socket bound to 127.0.0.1:`port` that is listening (`peer`
/// None) or connected to 127.0.0.1:`peer`; None while it has no file (not accepted yet).
fn socket_inode(port: u16, peer: Option<u16>) -> Option<u64> {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let local = format!("0100007F:{port:04X}");
    table.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        let matches = match peer {
            None => f[3] == "0A",
            Some(p) => f[3] == "01" && f[2] == format!("0100007F:{p:04X}"),
        };
        let inode: u64 = f[9].parse().ok()?;
        (f[1] == local && matches && inode != 0).then_some(inode)
    })
}

/// Process `pid` has a descriptor on socket `inode`.
fn holds(pid: i32, inode: u64) -> bool {
    let want = format!("socket:[{inode}]");
    std::fs::read_dir(format!("/proc/{pid}/fd")).is_ok_and(|d| {
        d.flatten()
            .any(|e| std::fs::read_link(e.path()).is_ok_and(|t| t.as_os_str() == want.as_str()))
    })
}

/// The master answers status requests from its own poll loop, with no thread of its own (a
/// fork copies only the forking thread: a lock another thread held would stay locked in the
/// worker): clients that send nothing or half a head hold up no other request, are closed
/// about 2 s after they connected, and a HUP reload forking new workers meanwhile works,
/// without the workers keeping the status sockets.
#[test]
fn a_single_threaded_master_answers_status_beside_idle_clients_and_reloads() {
    let dir = tempfile::tempdir().unwrap();
    let server = "listen = 127.0.0.1:0\nworkers = 1\nstatus_listen = 127.0.0.1:0\n";
    let ini = write_ini(dir.path(), "supapp:make_app", "one", server);
    let _ = apps();
    let d = start(&ini, 1);
    let (status, app, master) = (status_addr(&d), d.addr(), d.pid());
    assert!(
        eventually(30, || req(&status, "GET", "/ready").0 == 200),
        "/ready never 200"
    );
    let port: u16 = status.rsplit(':').next().unwrap().parse().unwrap();

    let opened = Instant::now();
    let mut idle = TcpStream::connect(&status).unwrap();
    let mut partial = TcpStream::connect(&status).unwrap();
    partial
        .write_all(b"GET /ready HTTP/1.1\r\nHost: t\r\n")
        .unwrap();
    let idle_port = idle.local_addr().unwrap().port();
    let mut conn = None;
    assert!(
        eventually(5, || {
            conn = socket_inode(port, Some(idle_port));
            conn.is_some_and(|i| holds(master, i))
        }),
        "the idle connection is never accepted"
    );
    let (conn, listener) = (conn.unwrap(), socket_inode(port, None).unwrap());
    assert!(holds(master, listener));

    assert_eq!(req(&status, "GET", "/ready"), (200, "ready\n".into()));
    let (code, m) = req(&status, "GET", "/metrics");
    assert_eq!(code, 200, "{m}");
    assert_eq!(sample(&m, "waitressd_workers"), Some(1.0), "{m}");
    assert_eq!(threads(master), 1, "the master's threads, clients open");

    // A reload forks the new generation while both clients are open.
    let old = children(master);
    write_ini(dir.path(), "supapp:make_app", "two", server);
    d.signal(libc::SIGHUP);
    assert!(
        eventually(5, || children(master).iter().any(|p| !old.contains(p))),
        "no new worker forked"
    );
    assert_eq!(threads(master), 1, "the master's threads, forking");

    for (name, s) in [("idle", &mut idle), ("partial", &mut partial)] {
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut got = Vec::new();
        let r = s.read_to_end(&mut got);
        let after = opened.elapsed();
        assert!(
            r.is_ok() && got.is_empty(),
            "{name}: {r:?}, {:?}",
            String::from_utf8_lossy(&got)
        );
        // Closed by its deadline (2 s after accept), not at once; only a lower bound is
        // asserted (a loaded machine closes it later, never earlier).
        assert!(
            after >= Duration::from_millis(1800),
            "{name} closed after {after:?}"
        );
    }

    assert!(
        eventually(60, || ask(&app, "/").is_some_and(|r| r.1 == "two")),
        "the reload's config never served"
    );
    assert!(eventually(30, || req(&status, "GET", "/ready").0 == 200));
    for w in children(master) {
        assert!(!holds(w, conn), "worker {w} holds a status connection");
        assert!(!holds(w, listener), "worker {w} holds the status listener");
    }
    assert_eq!(threads(master), 1, "the master's threads after the reload");
}

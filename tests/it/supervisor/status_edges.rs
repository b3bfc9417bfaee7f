//! The status listener's edges: clients that hold its connections (a port scanner, a broken
//! monitor) while probes are still answered, dozens of idle connections kept open and
//! re-opened as fast as they are closed; a 405 that names the methods it takes; and
//! `/metrics` counting the server's own error responses (400, 413) beside the app's; `/ready`
//! while a worker slot fails at boot and its sibling serves.
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::failures::{line_with, start_deployed};
use super::status::{boot, req, sample, status_addr};
use super::{apps, ask, children, eventually, start, write_ini};

/// Idle connections held open at once: twice the 128 the master serves at once.
const IDLE: usize = 256;

/// Keeps `n` connections to `addr` open that send nothing, re-opening each as soon as the
/// server closes it, until `stop` (or 120 s at most); returns how many it opened in all.
fn hold_idle(addr: String, n: usize, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<usize> {
    std::thread::spawn(move || {
        let end = Instant::now() + Duration::from_secs(120);
        let open = || {
            let s = TcpStream::connect(&addr).ok()?;
            s.set_nonblocking(true).ok()?;
            Some(s)
        };
        let mut conns: Vec<Option<TcpStream>> = (0..n).map(|_| open()).collect();
        let mut opened = n;
        while !stop.load(Ordering::Relaxed) && Instant::now() < end {
            for c in &mut conns {
                let closed = match c {
                    None => true,
                    Some(s) => match s.read(&mut [0u8; 512]) {
                        Ok(_) => true,
                        Err(e) => e.kind() != ErrorKind::WouldBlock,
                    },
                };
                if closed {
                    *c = open();
                    opened += 1;
                }
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        opened
    })
}

/// (status, body) of one request with 5 s to connect and to answer; (0, "") when it is not
/// answered in time.
fn probe(addr: &str, path: &str) -> (u16, String) {
    let Ok(sa) = addr.parse() else {
        return (0, String::new());
    };
    let Ok(mut s) = TcpStream::connect_timeout(&sa, Duration::from_secs(5)) else {
        return (0, String::new());
    };
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let r = format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n");
    if s.write_all(r.as_bytes()).is_err() {
        return (0, String::new());
    }
    let mut raw = Vec::new();
    if s.read_to_end(&mut raw).is_err() {
        return (0, String::new());
    }
    let (code, _, body) = crate::util::split_response(&raw);
    (code, String::from_utf8_lossy(&body).into_owned())
}

/// 256 idle connections (twice as many as the master serves at once), re-opened whenever
/// closed: the connection open longest without a request is closed for each new client once
/// it is 0.2 s old, so `/live` and `/ready` are answered (before: they waited in the backlog
/// behind the idle ones until those timed out, 2 s per 16, and a 1 s liveness probe failed).
#[test]
fn probes_are_answered_while_idle_connections_fill_the_status_listener() {
    let (_dir, _d, status) = boot(1);
    let stop = Arc::new(AtomicBool::new(false));
    let holder = hold_idle(status.clone(), IDLE, stop.clone());
    // The idle connections are in place: they took every slot and the backlog.
    std::thread::sleep(Duration::from_millis(500));
    let mut got = Vec::new();
    for _ in 0..3 {
        for path in ["/live", "/ready"] {
            got.push((path, probe(&status, path)));
        }
    }
    stop.store(true, Ordering::Relaxed);
    let opened = holder.join().unwrap();
    for (path, (code, body)) in &got {
        assert_eq!(*code, 200, "{path} not answered within 5 s: {got:?}");
        assert_eq!(*body, format!("{}\n", &path[1..]), "{path}");
    }
    assert!(opened >= IDLE, "the idle connections were held ({opened})");
    // Once they are gone, it still answers.
    assert_eq!(req(&status, "GET", "/live"), (200, "live\n".into()));
}

/// CPU seconds (user + system) process `pid` has used.
fn cpu_seconds(pid: i32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_comm = stat.rsplit_once(')').unwrap().1;
    let f: Vec<&str> = after_comm.split_whitespace().collect();
    let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    // SAFETY: sysconf(3) reads a system constant.
    ticks as f64 / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}

/// 128 idle connections kept open (every slot taken, each evictable once 0.2 s old) and no
/// new client: the master sleeps until they expire (before: the instants they had become
/// evictable, all past, made its poll return at once, and it spun at full CPU for as long as
/// a client kept the table full).
#[test]
fn a_status_table_full_of_idle_connections_leaves_the_master_asleep() {
    let (_dir, d, status) = boot(1);
    let idle: Vec<TcpStream> = (0..128)
        .map(|_| TcpStream::connect(&status).unwrap())
        .collect();
    // All are accepted and evictable; they expire 2 s after their accept.
    std::thread::sleep(Duration::from_millis(400));
    let before = cpu_seconds(d.pid());
    std::thread::sleep(Duration::from_millis(1200));
    let used = cpu_seconds(d.pid()) - before;
    drop(idle);
    assert!(
        used < 0.3,
        "the master used {used} s of CPU in 1.2 s while idle connections filled its table"
    );
    assert_eq!(req(&status, "GET", "/live"), (200, "live\n".into()));
}

/// RFC 9110 §15.5.6: a 405 carries `Allow` with the methods the resource takes.
#[test]
fn a_method_not_allowed_names_the_allowed_ones() {
    let (_dir, _d, status) = boot(1);
    for method in ["POST", "PUT", "DELETE"] {
        let mut s = TcpStream::connect(&status).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let r = format!("{method} /ready HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n");
        s.write_all(r.as_bytes()).unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).unwrap();
        let (code, head, _) = crate::util::split_response(&raw);
        assert_eq!(code, 405, "{method}: {head}");
        assert!(
            head.lines().any(|l| l == "Allow: GET, HEAD"),
            "{method}: {head}"
        );
    }
}

/// The event loop's own error responses (a 413 for a body above `max_request_body_size`, a
/// 400 for a request line that does not parse) are requests answered like the app's: counted
/// in `waitressd_requests_total` by method and status class (before: only the app's were).
#[test]
fn metrics_count_the_servers_own_error_responses() {
    let dir = tempfile::tempdir().unwrap();
    let server = "listen = 127.0.0.1:0\nworkers = 1\nstatus_listen = 127.0.0.1:0\n\
                  max_request_body_size = 1000\n";
    let ini = write_ini(dir.path(), "supapp:make_app", "one", server);
    let _ = apps();
    let d = start(&ini, 1);
    let status = status_addr(&d);
    assert!(eventually(30, || req(&status, "GET", "/ready").0 == 200));
    let app = d.addr();
    let sent = [
        (
            "POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 99999999999\r\n\r\n",
            413,
        ),
        ("BAD\r\n\r\n", 400),
    ];
    for (raw, want) in sent {
        let mut s = TcpStream::connect(&app).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        s.write_all(raw.as_bytes()).unwrap();
        let mut got = Vec::new();
        let _ = s.read_to_end(&mut got);
        assert_eq!(crate::util::split_response(&got).0, want, "{raw:?}");
    }
    let mut m = String::new();
    let series = |m: &str, method: &str| {
        sample(
            m,
            &format!("waitressd_requests_total{{method=\"{method}\",code=\"4xx\"}}"),
        )
    };
    assert!(
        eventually(10, || {
            m = req(&status, "GET", "/metrics").1;
            series(&m, "POST") == Some(1.0) && series(&m, "other") == Some(1.0)
        }),
        "{m}"
    );
    assert_eq!(
        sample(&m, "waitressd_request_duration_seconds_count"),
        Some(2.0),
        "{m}"
    );
}

/// A worker dies while broken code is on disk (a deploy in progress): its respawn fails at
/// boot again and again while its sibling serves every request. `/ready` answers 200
/// `degraded` meanwhile, so a load balancer keeps the instance (its 503 `starting` took out an
/// instance that answered everything, and every instance at once when each found the broken
/// deploy by a respawn: HAProxy then answered 503 to every client), and `ready` once the code
/// is fixed and the slot serves again.
#[test]
fn ready_is_200_degraded_while_a_slot_fails_at_boot_and_its_sibling_serves() {
    let dir = tempfile::tempdir().unwrap();
    let module = dir.path().join("deployed.py");
    let good = std::fs::read_to_string(apps().join("supapp.py")).unwrap();
    std::fs::write(&module, &good).unwrap();
    let server = "listen = 127.0.0.1:0\nworkers = 2\nstatus_listen = 127.0.0.1:0";
    let mut d = start_deployed(dir.path(), server);
    let status = status_addr(&d);
    let addr = d.addr();
    let ready = |body: &str| req(&status, "GET", "/ready") == (200, body.to_string());
    assert!(eventually(30, || ready("ready\n")), "never ready");
    std::fs::write(&module, "raise ImportError('deploy in progress')\n").unwrap();
    let victim = children(d.pid())[0];
    // SAFETY: kill(2) on a worker of the daemon this test started.
    unsafe { libc::kill(victim, libc::SIGKILL) };
    line_with(&d, "failed to boot", 30).expect("the respawn fails at boot");
    assert_eq!(
        req(&status, "GET", "/ready"),
        (200, "degraded\n".to_string()),
        "/ready while the sibling serves"
    );
    let (_, metrics) = req(&status, "GET", "/metrics");
    assert_eq!(sample(&metrics, "waitressd_ready"), Some(1.0), "{metrics}");
    for _ in 0..20 {
        assert!(
            ask(&addr, "/").is_some(),
            "the sibling serves every request"
        );
    }
    std::fs::write(&module, &good).unwrap();
    assert!(
        eventually(60, || ready("ready\n")),
        "ready again once the code is fixed"
    );
    d.signal(libc::SIGTERM);
    assert_eq!(d.wait(30), Some(0));
}

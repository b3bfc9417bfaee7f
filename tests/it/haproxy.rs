//! Scale-out, proved: Debian's HAProxy with `packaging/haproxy.cfg` in front of three
//! waitressd instances (PROXY v2, health checks on `/ready`). A bounded load runs through
//! HAProxy from 127.0.0.2 while each instance in turn is reloaded (SIGHUP), then stopped
//! (SIGTERM) and started again: no request fails, and the app always sees 127.0.0.2 (the
//! client's address from the PROXY header, not HAProxy's 127.0.0.1).
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::util::{bin, root, split_response, Daemon};

/// A free port below the ephemeral range: instances are restarted on the same ports, and a
/// port from the ephemeral range could meanwhile become the source port of one of the
/// thousands of connections the load makes.
pub(crate) fn free_port() -> u16 {
    let lo: u16 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(32768);
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
        ^ u64::from(std::process::id());
    let span = u64::from(lo.saturating_sub(10_000).max(1));
    for _ in 0..1000 {
        let n = seed.wrapping_add(NEXT.fetch_add(1, Ordering::Relaxed).wrapping_mul(7919));
        let port = 10_000 + (n.wrapping_mul(6364136223846793005) >> 33) as u16 % span as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port below {lo}");
}

fn instance(port: u16, status: u16) -> Daemon {
    let mut c = Command::new(bin());
    c.args(["--app", "tlsenv:app", "--threads", "4"])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--status-listen", &format!("127.0.0.1:{status}")])
        .args(["--proxy-protocol", "--proxy-allow-ips", "127.0.0.1"])
        .current_dir(root().join("tests/apps/wsgi"));
    let d = Daemon::start_with(&mut c, 1);
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        let (code, body) = get_from(&format!("127.0.0.1:{status}"), "/ready", None);
        if code == 200 {
            break;
        }
        if Instant::now() > end {
            let log: Vec<String> = d.stderr.try_iter().collect();
            panic!(
                "instance on {port} never ready (/ready: {code} {:?}):\n{}",
                String::from_utf8_lossy(&body),
                log.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    d
}

/// GET `path` with `Connection: close`, from `source` if given; (status, body), 0 = failed.
fn get_from(addr: &str, path: &str, source: Option<&str>) -> (u16, Vec<u8>) {
    let run = || -> std::io::Result<(u16, Vec<u8>)> {
        let to: SocketAddr = addr.parse().unwrap();
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
        if let Some(src) = source {
            s.bind(&format!("{src}:0").parse::<SocketAddr>().unwrap().into())?;
        }
        s.connect_timeout(&to.into(), Duration::from_secs(5))?;
        let mut s: TcpStream = s.into();
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes(),
        )?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw)?;
        let (status, _, body) = split_response(&raw);
        Ok((status, body))
    };
    run().unwrap_or_else(|e| (0, e.to_string().into_bytes()))
}

struct HaProxy(Child);

impl Drop for HaProxy {
    fn drop(&mut self) {
        let _ = self.0.kill(); // our own child, by PID
        let _ = self.0.wait();
    }
}

#[test]
fn rolling_restart_behind_haproxy_fails_no_request() {
    assert!(
        Command::new("haproxy").arg("-v").output().is_ok(),
        "haproxy is not installed (tools/test.sh installs Debian's package)"
    );
    let ports: Vec<(u16, u16)> = (0..3).map(|_| (free_port(), free_port())).collect();
    let front = format!("127.0.0.1:{}", free_port());
    let mut instances: Vec<Daemon> = ports.iter().map(|&(p, s)| instance(p, s)).collect();
    let mut cmd = Command::new("haproxy");
    cmd.args(["-db", "-f"])
        .arg(root().join("packaging/haproxy.cfg"))
        .env("FRONT", &front)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (i, (p, s)) in ports.iter().enumerate() {
        cmd.env(format!("W{}", i + 1), format!("127.0.0.1:{p}"));
        cmd.env(format!("S{}", i + 1), s.to_string());
    }
    let _haproxy = HaProxy(cmd.spawn().expect("start haproxy"));
    let end = Instant::now() + Duration::from_secs(20);
    while get_from(&front, "/", None).0 != 200 {
        assert!(Instant::now() < end, "HAProxy never served");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_secs(1)); // every server through its "rise" checks

    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let load: Vec<_> = (0..4)
        .map(|_| {
            let (stop, ok, failures, front) =
                (stop.clone(), ok.clone(), failures.clone(), front.clone());
            std::thread::spawn(move || {
                // Bounded: the rolling restart below ends well within this.
                let deadline = Instant::now() + Duration::from_secs(240);
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    let (status, body) = get_from(&front, "/", Some("127.0.0.2"));
                    let env: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                    if status == 200 && env["REMOTE_ADDR"] == "127.0.0.2" {
                        ok.fetch_add(1, Ordering::Relaxed);
                    } else {
                        failures.lock().unwrap().push(format!(
                            "status {status}: {}",
                            String::from_utf8_lossy(&body)
                        ));
                    }
                }
            })
        })
        .collect();
    for (i, &(p, s)) in ports.iter().enumerate() {
        let before = ok.load(Ordering::Relaxed);
        let d = &mut instances[i];
        d.signal(libc::SIGHUP);
        let end = Instant::now() + Duration::from_secs(60);
        loop {
            let line = d
                .stderr
                .recv_timeout(end.saturating_duration_since(Instant::now()))
                .expect("reload never completed");
            if line.contains("reload complete") {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(500));
        d.signal(libc::SIGTERM);
        assert_eq!(d.wait(60), Some(0), "instance {i} did not stop cleanly");
        instances[i] = instance(p, s);
        std::thread::sleep(Duration::from_secs(1)); // HAProxy's checks see it up again
        assert!(
            ok.load(Ordering::Relaxed) > before,
            "no request served while instance {i} restarted"
        );
    }
    stop.store(true, Ordering::Relaxed);
    for t in load {
        t.join().unwrap();
    }
    let failures = failures.lock().unwrap();
    let served = ok.load(Ordering::Relaxed);
    assert!(
        failures.is_empty(),
        "{} of {} requests failed during the rolling restart; first: {:?}",
        failures.len(),
        served + failures.len() as u64,
        &failures[..failures.len().min(3)]
    );
    assert!(served > 100, "only {served} requests in the whole run");
    eprintln!("rolling restart behind HAProxy: {served} requests served, none failed");
}

//! The hostile corpus through real front-ends, as HTTP Garden runs it: Debian's nginx with
//! README's "Behind nginx" config (upstream keep-alive) and HAProxy in http mode (keep-alive and
//! `http-reuse always` to the backend), each in front of waitressd serving the recorder app,
//! with a logging relay between front-end and waitressd. Whatever a front-end does with a
//! hostile request (refuse it, normalize it, pass it on), waitressd must frame what it was sent:
//! every request the app sees is one the front-end forwarded as a request of its own, with the
//! same method and body length. A request smuggled inside another's body, or a body cut at
//! another place, fails the test with the bytes the front-end sent.
mod relay;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::haproxy::free_port;
use crate::hostile::{fill, start_recorder, Case, GROUPS};
use crate::nginx::{nginx_parts, Nginx};
use relay::{requests, Forwarded, Relay};

/// What identifies a request on both sides: method, body length, and whether it is the
/// corpus's would-be smuggled request.
type Key = (String, usize, bool);

/// Whether `text` (a target, path or X-Case) belongs to case prefix `p` (`/s12` is not `/s1`).
fn of_case(text: &str, p: &str) -> bool {
    text.match_indices(p).any(|(i, _)| {
        !text[i + p.len()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit())
    })
}

/// Sends every case (its interactive part at once, then a closing request) through `front`.
fn send_all(front: &str, cases: &[(String, &Case)]) {
    for (p, c) in cases {
        let mut raw = fill(c.raw, p);
        raw.extend_from_slice(&fill(c.then, p));
        raw.extend_from_slice(
            format!("GET {p}/end HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        );
        let Ok(mut s) = TcpStream::connect(front) else {
            panic!("{front} refused a connection");
        };
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let _ = s.write_all(&raw);
        // Until the front-end closes, or at most a few seconds for a case it still waits on.
        let end = Instant::now() + Duration::from_secs(5);
        let mut buf = [0u8; 16384];
        while Instant::now() < end && matches!(s.read(&mut buf), Ok(n) if n > 0) {}
    }
}

/// Keys per case prefix: `(app saw, front-end forwarded)`.
fn compare(
    cases: &[(String, &Case)],
    recorded: &str,
    forwarded: &[Forwarded],
) -> HashMap<String, (Vec<Key>, Vec<Key>)> {
    let mut by_case = HashMap::new();
    for (p, _) in cases {
        let seen: Vec<Key> = recorded
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split(' ').collect();
                let (m, path, len, case) = (f.first()?, f.get(1)?, f.get(2)?, f.get(3)?);
                (of_case(path, p) || *case == p).then(|| {
                    let len = len.parse().unwrap_or(usize::MAX);
                    (m.to_string(), len, path.contains("smuggled"))
                })
            })
            .collect();
        let sent: Vec<Key> = forwarded
            .iter()
            .filter(|f| of_case(&f.target, p) || f.case.as_deref() == Some(p.as_str()))
            .map(|f| (f.method.clone(), f.body_len, f.target.contains("smuggled")))
            .collect();
        by_case.insert(p.clone(), (seen, sent));
    }
    by_case
}

/// Runs the whole corpus through the front-end `start` brings up in front of `relay_addr`.
fn through(name: &str, start: impl FnOnce(&str, u16) -> Box<dyn std::any::Any>) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("recorder.log");
    let daemon = start_recorder(&log, &[]);
    let relay = Relay::start(daemon.addr());
    let front_port = free_port();
    let front = format!("127.0.0.1:{front_port}");
    let proxy = start(&relay.addr(), front_port);
    let ready = Instant::now() + Duration::from_secs(20);
    loop {
        let r = TcpStream::connect(&front).map(|mut s| {
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let _ = s.write_all(b"GET /ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            crate::util::read_until_close(&mut s).0
        });
        if matches!(&r, Ok(r) if r.starts_with(b"HTTP/1.1 200")) {
            break;
        }
        assert!(Instant::now() < ready, "{name} never served: {r:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let cases: Vec<(String, &Case)> = GROUPS
        .iter()
        .flat_map(|(g, cs)| {
            cs.iter()
                .enumerate()
                .map(move |(i, c)| (format!("/x{g}{i:02}"), c))
        })
        .collect();
    send_all(&front, &cases);
    // Everything in flight ends: the front-end stops, then waitressd, then the relay's pipes.
    drop(proxy);
    let mut daemon = daemon;
    daemon.signal(libc::SIGTERM);
    assert_eq!(daemon.wait(60), Some(0), "waitressd did not stop cleanly");
    relay.join();

    let recorded = std::fs::read_to_string(&log).unwrap_or_default();
    let streams = relay.sent.lock().unwrap().clone();
    let mut forwarded = Vec::new();
    let mut tails = Vec::new();
    for s in &streams {
        let (reqs, rest) = requests(s);
        forwarded.extend(reqs);
        if let Err(rest) = rest {
            tails.push(rest);
        }
    }
    assert!(
        forwarded.len() > cases.len(),
        "{name} forwarded only {} requests",
        forwarded.len()
    );
    let mut failures = Vec::new();
    for (p, (seen, mut sent)) in compare(&cases, &recorded, &forwarded) {
        for k in &seen {
            match sent.iter().position(|s| s == k) {
                Some(i) => _ = sent.remove(i),
                None => {
                    let bytes: Vec<String> = streams
                        .iter()
                        .filter(|s| of_case(&String::from_utf8_lossy(s), &p))
                        .map(|s| {
                            let s = String::from_utf8_lossy(s);
                            format!("{:?}", s.chars().take(2000).collect::<String>())
                        })
                        .collect();
                    failures.push(format!(
                        "{name} {p}: the app saw {k:?}, which {name} never forwarded as a \
                         request; {name} sent: {}",
                        bytes.join(" | ")
                    ));
                    break;
                }
            }
        }
    }
    if !failures.is_empty() {
        failures.push(format!("unparsed tails: {tails:?}"));
    }
    failures
}

/// HAProxy and its config's directory; killed by PID on drop.
struct HaProxy {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for HaProxy {
    fn drop(&mut self) {
        let _ = self.child.kill(); // our own child, by PID
        let _ = self.child.wait();
    }
}

#[test]
fn behind_nginx_waitressd_frames_exactly_what_nginx_forwarded() {
    let failures = through("nginx", |relay, front| {
        let port: u16 = relay.rsplit(':').next().unwrap().parse().unwrap();
        let (http, _) = nginx_parts(&[port, port], front);
        Box::new(Nginx::start(&http, false))
    });
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn behind_haproxy_waitressd_frames_exactly_what_haproxy_forwarded() {
    assert!(
        Command::new("haproxy").arg("-v").output().is_ok(),
        "haproxy is not installed (tools/test.sh installs Debian's package)"
    );
    let failures = through("HAProxy", |relay, front| {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("haproxy.cfg");
        std::fs::write(
            &cfg,
            format!(
                "global\n    maxconn 256\ndefaults\n    mode http\n    timeout connect 2s\n    \
                 timeout client 10s\n    timeout server 10s\n    timeout http-keep-alive 5s\n\
                 frontend web\n    bind 127.0.0.1:{front}\n    default_backend w\n\
                 backend w\n    http-reuse always\n    server w1 {relay}\n"
            ),
        )
        .unwrap();
        let child = Command::new("haproxy")
            .args(["-db", "-f"])
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start haproxy");
        Box::new(HaProxy { child, _dir: dir })
    });
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

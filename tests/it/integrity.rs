//! End-to-end response and upload integrity on the real binary: every byte the app produced is
//! checked by SHA-256 on the client, over every path bytes leave the process by — memory,
//! spill files (sendfile), `wsgi.file_wrapper` files, `send_bytes` buffering, back-pressure at
//! `outbuf_high_watermark`, pipelined responses behind a spilled one, HEAD — read by slow
//! clients, plus clients that vanish mid-spill and an app file that shrinks while it is sent.
//! Regression for the spill-file reuse bug (queued sendfile pages rewritten).
use std::time::Duration;

use crate::util::{self, Daemon};

mod client;
mod tls;
mod tmpdir;
use client::{sha256_hex, Broken, Conn, Seen};

const MIB: u64 = 1 << 20;

/// The integrity clients hold megabytes of buffers in this process: tests that measure the test
/// process's RSS must not run beside them.
fn rss_lock() -> std::sync::MutexGuard<'static, ()> {
    util::RSS_LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn apps_dir() -> std::path::PathBuf {
    util::root().join("tests/apps/integrity")
}

fn daemon(settings: &[&str]) -> Daemon {
    let mut args = vec!["--app", "integrity:app", "--listen", "127.0.0.1:0"];
    args.extend_from_slice(settings);
    Daemon::start(&args, &apps_dir(), 1)
}

/// The hex SHA-256 of the first `len` bytes of body `seed`/`n`, computed by the app.
fn digest(addr: &str, seed: u64, n: u64, len: Option<u64>) -> String {
    let len = len.map(|l| format!("&len={l}")).unwrap_or_default();
    let (status, _, body) = util::get(addr, &format!("/digest?seed={seed}&n={n}{len}"));
    assert_eq!(status, 200);
    String::from_utf8(body).unwrap()
}

/// One download on a new connection read by a slow client: Ok if every byte is right.
fn download(addr: &str, route: &str, seed: u64, n: u64, version: &str) -> Result<(), String> {
    let want = digest(addr, seed, n, None);
    // Slow readers, at paces that differ from one download to the next.
    let mut c = Conn::open(addr, MIB as usize, Duration::from_millis(1 + seed % 4));
    c.send(format!("GET {route}?seed={seed}&n={n} {version}\r\nHost: t\r\n\r\n").as_bytes());
    check(
        c.response("GET"),
        &want,
        n,
        &format!("{route} seed {seed} {version}"),
    )
}

fn check(seen: Result<Seen, Broken>, want: &str, n: u64, what: &str) -> Result<(), String> {
    match seen {
        Ok(s) if s.status == 200 && s.len == n && s.sha == want => Ok(()),
        Ok(s) => Err(format!(
            "{what}: status {} len {} of {n}, sha256 {} (want {want})\n{}",
            s.status, s.len, s.sha, s.head
        )),
        Err(b) => Err(format!("{what}: {b:?}")),
    }
}

/// Runs `jobs` on `clients` threads at once; returns every failure.
fn concurrently(clients: usize, jobs: impl Fn(usize) -> Vec<String> + Sync) -> Vec<String> {
    let jobs = &jobs;
    std::thread::scope(|s| {
        let hs: Vec<_> = (0..clients).map(|i| s.spawn(move || jobs(i))).collect();
        hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
    })
}

/// The reported bug: 16 MB chunked responses in random slices (1 B – 1 MiB), a 64 KiB spill
/// threshold, slow readers, 4 app threads. Before the fix about 1 in 8 arrived corrupted
/// (2–3 of 20 in two runs of this test against the old binary).
#[test]
fn spilled_chunked_streams_reach_slow_clients_intact() {
    let _rss = rss_lock();
    let d = daemon(&["--threads", "4", "--outbuf-overflow", "65536"]);
    let addr = d.addr();
    let bad = concurrently(4, |i| {
        (0..8)
            .filter_map(|k| {
                download(
                    &addr,
                    "/stream",
                    100 + (i * 8 + k) as u64,
                    16_000_000,
                    "HTTP/1.1",
                )
                .err()
            })
            .collect()
    });
    assert!(
        bad.is_empty(),
        "{} of 32 corrupted:\n{}",
        bad.len(),
        bad.join("\n")
    );
}

/// Every body route, HTTP/1.1 and 1.0 (close-delimited), at spill thresholds from "every byte
/// spills" to "nothing spills".
#[test]
fn every_response_kind_is_intact_at_every_spill_threshold() {
    let _rss = rss_lock();
    let routes = ["/stream", "/cl", "/once", "/write", "/file", "/filenocl"];
    for overflow in ["0", "4096", "1048576", "1073741824"] {
        let d = daemon(&["--threads", "4", "--outbuf-overflow", overflow]);
        let addr = d.addr();
        let bad = concurrently(3, |i| {
            let mut bad = Vec::new();
            for (k, route) in routes.iter().enumerate() {
                let seed = (i * 10 + k) as u64;
                let n = [3 * MIB + 17, 5 * MIB, 1][(seed % 3) as usize];
                let version = ["HTTP/1.1", "HTTP/1.0"][i % 2];
                bad.extend(download(&addr, route, seed, n, version).err());
            }
            bad
        });
        assert!(
            bad.is_empty(),
            "outbuf_overflow {overflow}:\n{}",
            bad.join("\n")
        );
    }
}

/// Small writes kept back by `send_bytes`, and app threads held at a small
/// `outbuf_high_watermark` by slow readers.
#[test]
fn send_bytes_and_back_pressure_keep_bytes_intact() {
    let _rss = rss_lock();
    let d = daemon(&[
        "--threads",
        "2",
        "--outbuf-overflow",
        "8192",
        "--outbuf-high-watermark",
        "262144",
        "--send-bytes",
        "100000",
    ]);
    let addr = d.addr();
    let bad = concurrently(4, |i| {
        ["/stream", "/write", "/file"]
            .iter()
            .filter_map(|r| download(&addr, r, 40 + i as u64, 6 * MIB + 3, "HTTP/1.1").err())
            .collect()
    });
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

/// One write of pipelined requests, a spilled stream first: every response arrives whole and
/// in order, HEAD with no body, on one connection.
#[test]
fn pipelined_responses_behind_a_spilled_one_are_intact_and_in_order() {
    let _rss = rss_lock();
    let d = daemon(&["--threads", "4", "--outbuf-overflow", "65536"]);
    let addr = d.addr();
    let asks: [(&str, &str, u64); 6] = [
        ("GET", "/stream", 9 * MIB),
        ("HEAD", "/stream", 9 * MIB),
        ("GET", "/file", 4 * MIB + 1),
        ("GET", "/cl", 2 * MIB),
        ("GET", "/once", 7),
        ("GET", "/stream", 3 * MIB),
    ];
    for round in 0..3u64 {
        let mut c = Conn::open(&addr, MIB as usize, Duration::from_millis(1));
        let mut raw = Vec::new();
        for (k, (m, r, n)) in asks.iter().enumerate() {
            let seed = round * 100 + k as u64;
            raw.extend(format!("{m} {r}?seed={seed}&n={n} HTTP/1.1\r\nHost: t\r\n\r\n").bytes());
        }
        c.send(&raw);
        for (k, (m, r, n)) in asks.iter().enumerate() {
            let seed = round * 100 + k as u64;
            let seen = c.response(m);
            let what = format!("round {round} #{k} {m} {r}");
            if *m == "HEAD" {
                let s = seen.unwrap_or_else(|e| panic!("{what}: {e:?}"));
                assert_eq!((s.status, s.len), (200, 0), "{what}");
                continue;
            }
            check(seen, &digest(&addr, seed, *n, None), *n, &what).unwrap();
        }
    }
}

/// Clients that read a little of a spilling response and vanish: the worker closes every
/// spill file and socket (its fd count returns to where it was) and serves the next client
/// whole.
#[test]
fn clients_gone_mid_spill_leave_nothing_behind() {
    let _rss = rss_lock();
    let d = daemon(&["--threads", "8", "--outbuf-overflow", "65536"]);
    let addr = d.addr();
    download(&addr, "/stream", 1, MIB, "HTTP/1.1").unwrap();
    let worker = util_worker_pid(&d);
    let fds = || {
        std::fs::read_dir(format!("/proc/{worker}/fd"))
            .unwrap()
            .count()
    };
    let before = fds();
    for round in 0..3 {
        let conns: Vec<Conn> = (0..8)
            .map(|i| {
                let mut c = Conn::open(&addr, 65536, Duration::ZERO);
                let route = ["/stream", "/file", "/cl", "/write"][i % 4];
                c.send(
                    format!("GET {route}?seed={i}&n=67108864 HTTP/1.1\r\nHost: t\r\n\r\n")
                        .as_bytes(),
                );
                let mut first = [0u8; 65536];
                std::io::Read::read_exact(&mut c.r, &mut first).unwrap();
                c
            })
            .collect();
        drop(conns);
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while fds() > before && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let after = fds();
        assert!(
            after <= before,
            "round {round}: worker {worker} holds {after} fds, {before} before"
        );
    }
    download(&addr, "/stream", 2, 5 * MIB, "HTTP/1.1").unwrap();
}

/// A `wsgi.file_wrapper` file truncated to a third while it is being sent: the response ends
/// visibly short (the connection closes before Content-Length), never hangs, every byte that
/// did arrive is the file's, and the worker goes on serving.
#[test]
fn a_file_that_shrinks_while_sent_ends_the_response_short() {
    let _rss = rss_lock();
    let d = daemon(&["--threads", "2"]);
    let addr = d.addr();
    let n = 48 * MIB; // truncated to 16 MiB: a page boundary
    let mut c = Conn::open(&addr, 65536, Duration::ZERO);
    c.send(format!("GET /shrink?seed=5&n={n}&delay=300 HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
    // Read the head and a little, then stop reading until the file has shrunk.
    let mut first = [0u8; 4096];
    std::io::Read::read_exact(&mut c.r, &mut first).unwrap();
    std::thread::sleep(Duration::from_millis(800));
    let mut rest = Vec::new();
    let r = std::io::Read::read_to_end(&mut c.r, &mut rest);
    let mut all = first.to_vec();
    all.extend_from_slice(&rest);
    let (status, head, body) = util::split_response(&all);
    assert_eq!(status, 200, "{head}");
    assert!(
        (body.len() as u64) < n,
        "a shrunk file cannot complete its Content-Length ({r:?})"
    );
    assert_eq!(
        sha256_hex(&body),
        digest(&addr, 5, n, Some(body.len() as u64)),
        "the {} bytes that arrived are the file's first bytes",
        body.len()
    );
    download(&addr, "/file", 6, 3 * MIB, "HTTP/1.1").unwrap();
}

/// Uploads of random sizes, Content-Length and chunked, in memory and spilled past a small
/// `inbuf_overflow`: the app hashes what `wsgi.input` gave it.
#[test]
fn uploads_reach_the_app_intact() {
    let _rss = rss_lock();
    let d = daemon(&["--threads", "2", "--inbuf-overflow", "65536"]);
    let addr = d.addr();
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    for k in 0..12u64 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let n = [0, 1, 65535, 65537, 3 * MIB + 5, x % (8 * MIB)][(k % 6) as usize] as usize;
        let body: Vec<u8> = (0..n)
            .map(|i| (i as u64 * 31 + x + (i as u64 >> 9)) as u8)
            .collect();
        let mut raw = Vec::new();
        if k % 2 == 0 {
            raw.extend(
                format!("POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: {n}\r\n\r\n").bytes(),
            );
            raw.extend_from_slice(&body);
        } else {
            raw.extend(b"POST /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n");
            for part in body.chunks(1 + (x % 100_000) as usize) {
                raw.extend(format!("{:x}\r\n", part.len()).bytes());
                raw.extend_from_slice(part);
                raw.extend(b"\r\n");
            }
            raw.extend(b"0\r\n\r\n");
        }
        let mut c = Conn::open(&addr, 65536, Duration::ZERO);
        c.send(&raw);
        let (status, _, got) = util::split_response(&{
            let mut all = Vec::new();
            let mut r = c.r;
            r.get_mut()
                .sock
                .shutdown(std::net::Shutdown::Write)
                .unwrap();
            std::io::Read::read_to_end(&mut r, &mut all).unwrap();
            all
        });
        assert_eq!(status, 200);
        assert_eq!(
            String::from_utf8(got).unwrap(),
            format!("{n} {}", sha256_hex(&body)),
            "upload {k}"
        );
    }
}

/// Content-Length bodies past `inbuf_overflow` go from the socket into their temp file by
/// splice(2), which must take exactly the body: sent in uneven pieces with pauses, each one
/// followed in the same write by the head (and start) of the next pipelined request.
#[test]
fn pipelined_requests_behind_a_spliced_upload_are_intact() {
    let d = daemon(&["--inbuf-overflow", "65536"]);
    let addr = d.addr();
    let worker = util_worker_pid(&d);
    let pipes = || {
        std::fs::read_dir(format!("/proc/{worker}/fd"))
            .unwrap()
            .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
            .filter(|l| l.to_string_lossy().starts_with("pipe:"))
            .count()
    };
    // Counted once the worker has served (past its boot: the descriptors it inherited from
    // the fork are closed by then; on a loaded machine they were still counted).
    let _ = util::get(&addr, "/");
    let pipes_before = pipes();
    let sizes = [MIB as usize + 3, 65536, 70_001, 3 * MIB as usize, 0];
    let bodies: Vec<Vec<u8>> = sizes
        .iter()
        .enumerate()
        .map(|(k, &n)| (0..n).map(|i| (i * 13 + k * 7 + (i >> 11)) as u8).collect())
        .collect();
    let mut raw = Vec::new();
    for b in &bodies {
        raw.extend(
            format!(
                "POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
                b.len()
            )
            .bytes(),
        );
        raw.extend_from_slice(b);
    }
    let mut c = Conn::open(&addr, 65536, Duration::ZERO);
    // Piece sizes that cut heads, bodies and their boundaries anywhere.
    let pieces = [1usize, 4095, 65_536, 100_003, 7, 300_000, 1_000_000];
    let mut at = 0;
    for k in 0.. {
        if at == raw.len() {
            break;
        }
        let end = (at + pieces[k % pieces.len()]).min(raw.len());
        c.send(&raw[at..end]);
        at = end;
        if k % 3 == 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    for (k, b) in bodies.iter().enumerate() {
        let seen = c
            .response("POST")
            .unwrap_or_else(|e| panic!("upload {k}: {e:?}"));
        assert_eq!(seen.status, 200, "upload {k}");
        let want = format!("{} {}", b.len(), sha256_hex(b));
        assert_eq!(
            seen.sha,
            sha256_hex(want.as_bytes()),
            "upload {k} of {} bytes",
            b.len()
        );
    }
    // The bodies went through the worker's splice pipe (made at the first splice), not `recv`.
    assert_eq!(pipes(), pipes_before + 2, "the worker never spliced a body");
}

/// The daemon's one worker (workers = 1): the child of the master.
fn util_worker_pid(d: &Daemon) -> i32 {
    let pid = d.pid();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(&k) = util::children(pid).first() {
            return k;
        }
        assert!(std::time::Instant::now() < deadline, "no worker process");
        std::thread::sleep(Duration::from_millis(50));
    }
}

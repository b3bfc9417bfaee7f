//! Behind nginx, proved with README's own configs: the `nginx` and `ini` blocks of its "Behind
//! nginx" section are taken from README.md (ports substituted) and run with Debian's nginx in
//! front of two waitressd instances. Keep-alive clients from 127.0.0.2 send GETs and POSTs
//! through nginx (upstream keep-alive on) while one instance is reloaded (SIGHUP), then
//! stopped (SIGTERM) and started again: every response is checked whole, none fails, and the
//! app sees the client's address and `Host`, not nginx's. The `stream` block (PROXY protocol)
//! is run the same way. An HTTP/1.0 client without a `Host` is served through the same config.
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::haproxy::free_port;
use crate::util::{bin, root, Daemon};

/// The first ```LANG block after the line `heading` in README.md.
fn readme_block(heading: &str, lang: &str) -> String {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let at = readme
        .find(heading)
        .unwrap_or_else(|| panic!("README has no {heading:?}"));
    let fence = format!("```{lang}\n");
    let start = at + readme[at..].find(&fence).expect("no such block") + fence.len();
    let len = readme[start..].find("```").unwrap();
    readme[start..start + len].to_string()
}

/// README's nginx block for the instances on `ports`: (http part, stream part), with the
/// README's ports 8081/8082 replaced and `listen 80` / `listen 8000` moved to `front`.
pub(crate) fn nginx_parts(ports: &[u16; 2], front: u16) -> (String, String) {
    let block = readme_block("### Behind nginx", "nginx")
        .replace("127.0.0.1:8081", &format!("127.0.0.1:{}", ports[0]))
        .replace("127.0.0.1:8082", &format!("127.0.0.1:{}", ports[1]));
    let split = block
        .find("stream {")
        .expect("README's nginx block has a stream part");
    let http = block[..split].replace("listen 80;", &format!("listen 127.0.0.1:{front};"));
    let stream = block[split..].replace("listen 8000;", &format!("listen 127.0.0.1:{front};"));
    (http, stream)
}

/// nginx with `body` (http or stream part) in a minimal main file; killed by PID on drop.
pub(crate) struct Nginx(Child, tempfile::TempDir);

impl Nginx {
    pub(crate) fn start(body: &str, stream: bool) -> Nginx {
        assert!(
            Command::new("nginx").arg("-v").output().is_ok(),
            "nginx is not installed (tools/test.sh installs Debian's nginx-light)"
        );
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        let (load, inner) = if stream {
            let module = "/usr/lib/nginx/modules/ngx_stream_module.so";
            assert!(
                Path::new(module).exists(),
                "{module} is missing (tools/test.sh installs libnginx-mod-stream)"
            );
            (format!("load_module {module};\n"), body.to_string())
        } else {
            (
                String::new(),
                format!("http {{\n access_log off;\n{body}\n}}\n"),
            )
        };
        let conf = format!(
            "{load}daemon off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
             events {{ worker_connections 512; }}\n{inner}"
        );
        std::fs::write(dir.path().join("nginx.conf"), conf).unwrap();
        let child = Command::new("nginx")
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(dir.path().join("nginx.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nginx");
        Nginx(child, dir)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.1.path().join("error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // Our own child, by PID. TERM: the master stops its worker process and exits (a KILL
        // would leave the worker running, orphaned); KILL only if it has not exited in 10 s.
        // SAFETY: kill(2) on the PID of a child we started and have not reaped.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let end = Instant::now() + Duration::from_secs(10);
        while matches!(self.0.try_wait(), Ok(None)) && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A waitressd instance on `port` with README's per-instance settings for nginx (the `ini`
/// block of "Behind nginx", as flags), or PROXY protocol for the stream part; serving the
/// echo app; waits until it answers.
fn instance(port: u16, stream: bool) -> Daemon {
    let mut c = Command::new(bin());
    c.args(["--app", "echo:app", "--threads", "4", "--workers", "2"])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .current_dir(root().join("tests/apps/wsgi"));
    if stream {
        c.args(["--proxy-protocol", "--proxy-allow-ips", "127.0.0.1"]);
    } else {
        for line in readme_block("### Behind nginx", "ini").lines() {
            let Some((k, v)) = line.split_once('=') else {
                continue;
            };
            let (k, v) = (k.trim(), v.trim());
            if k != "use" && k != "listen" {
                c.arg(format!("--{}", k.replace('_', "-"))).arg(v);
            }
        }
    }
    let d = Daemon::start_with(&mut c, 1);
    let end = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < end, "instance on {port} never listened");
        std::thread::sleep(Duration::from_millis(50));
    }
    d
}

/// A keep-alive HTTP/1.1 client from 127.0.0.2 (reconnects after `Connection: close`) that
/// claims to forward for 203.0.113.9: only the last hop, added by nginx, may be believed.
struct Client {
    front: SocketAddr,
    conn: Option<BufReader<TcpStream>>,
}

impl Client {
    /// Sends one request; (status, body) or the I/O error (the connection is then dropped).
    fn request(&mut self, method: &str, path: &str, body: &[u8]) -> Result<(u16, Vec<u8>), String> {
        let r = self.exchange(method, path, body);
        if r.is_err() {
            self.conn = None;
        }
        r.map_err(|e| e.to_string())
    }

    fn exchange(
        &mut self,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> std::io::Result<(u16, Vec<u8>)> {
        if self.conn.is_none() {
            let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
            s.bind(&"127.0.0.2:0".parse::<SocketAddr>().unwrap().into())?;
            s.connect_timeout(&self.front.into(), Duration::from_secs(5))?;
            let s: TcpStream = s.into();
            s.set_read_timeout(Some(Duration::from_secs(30)))?;
            self.conn = Some(BufReader::new(s));
        }
        let conn = self.conn.as_mut().unwrap();
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: front.example\r\n\
             X-Forwarded-For: 203.0.113.9\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        req.extend_from_slice(body);
        conn.get_mut().write_all(&req)?;
        let mut line = String::new();
        if conn.read_line(&mut line)? == 0 {
            return Err(std::io::Error::other("closed before a response"));
        }
        let status: u16 = line
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let (mut len, mut close) = (0usize, false);
        loop {
            line.clear();
            if conn.read_line(&mut line)? == 0 {
                return Err(std::io::Error::other("closed in the response head"));
            }
            let l = line.trim_end().to_ascii_lowercase();
            if l.is_empty() {
                break;
            }
            if let Some(v) = l.strip_prefix("content-length:") {
                len = v.trim().parse().unwrap_or(0);
            } else if l == "connection: close" {
                close = true;
            }
        }
        let mut got = vec![0; len];
        conn.read_exact(&mut got)?;
        if close {
            self.conn = None;
        }
        Ok((status, got))
    }
}

/// Keep-alive clients through `front` until `stop`; each response must be the echo of its own
/// request as the app saw it from 127.0.0.2 with `Host: front.example` (`forwarded`: else from
/// a PROXY header, where the Host is the client's anyway).
fn load(
    front: SocketAddr,
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    failures: Arc<Mutex<Vec<String>>>,
) -> Vec<std::thread::JoinHandle<()>> {
    (0..4)
        .map(|k| {
            let (stop, ok, failures) = (stop.clone(), ok.clone(), failures.clone());
            std::thread::spawn(move || {
                let mut c = Client { front, conn: None };
                // Bounded: the operations below end well within this.
                let deadline = Instant::now() + Duration::from_secs(120);
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    n += 1;
                    let (method, body) = if n % 3 == 0 {
                        ("POST", format!("body {k} {n}"))
                    } else {
                        ("GET", String::new())
                    };
                    let path = format!("/r/{k}?n={n}");
                    let verdict = match c.request(method, &path, body.as_bytes()) {
                        Err(e) => Err(format!("{method} {path}: {e}")),
                        Ok((status, got)) => check(method, k, n, &body, status, &got),
                    };
                    match verdict {
                        Ok(()) => _ = ok.fetch_add(1, Ordering::Relaxed),
                        Err(e) => failures.lock().unwrap().push(e),
                    }
                }
            })
        })
        .collect()
}

/// The echo app's answer (JSON, blank line, body) matches the request sent.
fn check(
    method: &str,
    k: usize,
    n: u64,
    body: &str,
    status: u16,
    got: &[u8],
) -> Result<(), String> {
    let text = String::from_utf8_lossy(got);
    let bad = || format!("{method} /r/{k}?n={n}: {status} {text:?}");
    let (meta, echoed) = text.split_once("\r\n\r\n").ok_or_else(bad)?;
    let meta: serde_json::Value = serde_json::from_str(meta).map_err(|_| bad())?;
    let want = serde_json::json!({
        "method": method, "path_info": format!("/r/{k}"), "query_string": format!("n={n}"),
        "remote_addr": "127.0.0.2", "host": "front.example", "scheme": "http",
    });
    let seen = serde_json::json!({
        "method": meta["method"], "path_info": meta["path_info"], "query_string": meta["query_string"],
        "remote_addr": meta["remote_addr"], "host": meta["headers"]["HOST"], "scheme": meta["scheme"],
    });
    if status == 200 && seen == want && echoed == body {
        Ok(())
    } else {
        Err(format!("{} (saw {seen})", bad()))
    }
}

fn wait_line(d: &Daemon, what: &str) {
    let end = Instant::now() + Duration::from_secs(60);
    loop {
        let line = d
            .stderr
            .recv_timeout(end.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("never logged {what:?}"));
        if line.contains(what) {
            return;
        }
    }
}

/// Two instances behind nginx with README's config (`stream`: its stream part); the load
/// runs while instance 0 is reloaded, then stopped and started again.
fn run(stream: bool) {
    let ports = [free_port(), free_port()];
    let front = free_port();
    let mut instances: Vec<Daemon> = ports.iter().map(|&p| instance(p, stream)).collect();
    let (http, stream_part) = nginx_parts(&ports, front);
    let nginx = Nginx::start(if stream { &stream_part } else { &http }, stream);
    let front: SocketAddr = format!("127.0.0.1:{front}").parse().unwrap();
    let end = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(front).is_err() {
        assert!(
            Instant::now() < end,
            "nginx never listened: {}",
            nginx.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let threads = load(front, stop.clone(), ok.clone(), failures.clone());
    std::thread::sleep(Duration::from_millis(500));
    let d = &mut instances[0];
    d.signal(libc::SIGHUP);
    wait_line(d, "reload complete");
    std::thread::sleep(Duration::from_millis(1500)); // past the old workers' drain
    d.signal(libc::SIGTERM);
    assert_eq!(d.wait(60), Some(0), "instance 0 did not stop cleanly");
    std::thread::sleep(Duration::from_millis(500));
    instances[0] = instance(ports[0], stream);
    std::thread::sleep(Duration::from_millis(2500)); // past nginx's fail_timeout: back in use
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    let failures = failures.lock().unwrap();
    let served = ok.load(Ordering::Relaxed);
    assert!(
        failures.is_empty(),
        "{} of {} requests failed through nginx; first: {:?}\nnginx: {}",
        failures.len(),
        served + failures.len() as u64,
        &failures[..failures.len().min(3)],
        nginx.log()
    );
    assert!(served > 100, "only {served} requests in the whole run");
    eprintln!("behind nginx (stream: {stream}): {served} requests, none failed");
}

#[test]
fn reload_and_stop_behind_nginx_fail_no_request() {
    run(false);
}

#[test]
fn stream_proxy_protocol_behind_nginx() {
    run(true);
}

/// An HTTP/1.0 client that sends no `Host` (old monitoring probes, `printf | nc`) is served
/// through README's nginx config, and the app sees the config's `server_name` as its Host.
/// nginx speaks HTTP/1.1 upstream and fills `Host` from `$host`; without a `server_name` that
/// is empty, so nginx dropped the header and waitressd answered `400 Missing Host header`
/// (RFC 9112 §3.2) where waitress served the request.
#[test]
fn an_http10_client_without_host_is_served_behind_nginx() {
    let ports = [free_port(), free_port()];
    let front = free_port();
    let _instances: Vec<Daemon> = ports.iter().map(|&p| instance(p, false)).collect();
    let (http, _) = nginx_parts(&ports, front);
    let nginx = Nginx::start(&http, false);
    let end = Instant::now() + Duration::from_secs(20);
    let mut s = loop {
        match TcpStream::connect(("127.0.0.1", front)) {
            Ok(s) => break s,
            Err(e) => assert!(Instant::now() < end, "nginx never listened: {e}"),
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(b"GET /old?v=1.0 HTTP/1.0\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let (status, _, body) = crate::util::split_response(&raw);
    let text = String::from_utf8_lossy(&body);
    assert_eq!(status, 200, "{text}\nnginx: {}", nginx.log());
    let meta: serde_json::Value =
        serde_json::from_str(text.split("\r\n\r\n").next().unwrap()).unwrap();
    let host = readme_block("### Behind nginx", "nginx")
        .lines()
        .find_map(|l| l.trim().strip_prefix("server_name "))
        .map(|n| n.trim_end_matches(';').to_string())
        .expect("README's nginx block names a server_name");
    assert_eq!(meta["headers"]["HOST"], host.as_str(), "{text}");
    assert_eq!(meta["query_string"], "v=1.0", "{text}");
}

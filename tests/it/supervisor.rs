//! Integration tests: supervisor — the real binary as master of pre-forked workers: privilege
//! drop on a privileged port, worker crash and respawn, graceful stop, reload under load, boot
//! failures, pidfile, systemd notify and socket activation. Fixture apps: tests/apps/supervisor.
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::util::{bin, root, split_response, Daemon};

fn apps() -> PathBuf {
    root().join("tests/apps/supervisor")
}

/// An INI for the fixture app: `[app:main]` with `name`, `[server:main]` with `server`.
fn write_ini(dir: &Path, app: &str, name: &str, server: &str) -> PathBuf {
    let path = dir.join("sup.ini");
    let text = format!(
        "[app:main]\nuse = call:{app}\nname = {name}\n\n[server:main]\nuse = egg:waitress#main\n{server}\n"
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn command(ini: &Path) -> Command {
    let mut c = Command::new(bin());
    c.arg("--config")
        .arg(ini)
        .env("PYTHONPATH", apps())
        .current_dir(ini.parent().unwrap());
    c
}

fn start(ini: &Path, listeners: usize) -> Daemon {
    Daemon::start_with(&mut command(ini), listeners)
}

/// The fixture's answer: (pid, name, "ruid,euid,suid"), or None on any failure.
/// (Never panics: a refused connection is a failed request, counted by the callers.)
fn ask(addr: &str, path: &str) -> Option<(i32, String, String)> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(60))).ok()?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let (status, _, body) = split_response(&raw);
    if status != 200 {
        return None;
    }
    let body = String::from_utf8(body).ok()?;
    let mut w = body.split(' ');
    Some((
        w.next()?.parse().ok()?,
        w.next()?.to_string(),
        w.next()?.to_string(),
    ))
}

fn eventually(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    false
}

/// Waits (bounded) for a stderr line containing `needle`.
fn stderr_has(d: &Daemon, needle: &str, secs: u64) -> bool {
    let end = Instant::now() + Duration::from_secs(secs);
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        match d.stderr.recv_timeout(left) {
            Ok(line) if line.contains(needle) => return true,
            Ok(_) => {}
            Err(_) => return false,
        }
    }
    false
}

/// Child PIDs of `pid` (from /proc/PID/task/PID/children).
fn children(pid: i32) -> Vec<i32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

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

/// A keep-alive HTTP/1.1 client. Strict: a reused connection closed under a request is a
/// failed request (real clients retry it, RFC 9112 §9.3.1, but the server drains idle
/// keep-alive connections with a grace period so that even clients that do not retry lose
/// nothing across a reload).
const RETRY_IDLE_CLOSE: bool = false;

struct Client {
    addr: String,
    conn: Option<BufReader<TcpStream>>,
}

impl Client {
    fn get(&mut self, path: &str) -> Result<String, String> {
        for _ in 0..2 {
            let reused = self.conn.is_some();
            if self.conn.is_none() {
                let s = TcpStream::connect(&self.addr).map_err(|e| format!("connect: {e}"))?;
                s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                self.conn = Some(BufReader::new(s));
            }
            match self.once(path) {
                Ok(body) => return Ok(body),
                Err((false, _)) if reused && RETRY_IDLE_CLOSE => self.conn = None,
                Err((_, e)) => {
                    self.conn = None;
                    return Err(e);
                }
            }
        }
        Err("retry failed".into())
    }

    /// Err((got_any_byte, why)).
    fn once(&mut self, path: &str) -> Result<String, (bool, String)> {
        let c = self.conn.as_mut().unwrap();
        let req = format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n");
        c.get_mut()
            .write_all(req.as_bytes())
            .map_err(|e| (false, e.to_string()))?;
        let mut status = String::new();
        match c.read_line(&mut status) {
            Ok(0) => return Err((false, "closed".into())),
            Err(e) => return Err((false, e.to_string())),
            Ok(_) => {}
        }
        if !status.starts_with("HTTP/1.1 200") {
            return Err((true, status));
        }
        let (mut len, mut close) = (0usize, false);
        loop {
            let mut line = String::new();
            c.read_line(&mut line).map_err(|e| (true, e.to_string()))?;
            let l = line.trim_end().to_ascii_lowercase();
            if l.is_empty() {
                break;
            }
            if let Some(v) = l.strip_prefix("content-length:") {
                len = v.trim().parse().unwrap_or(0);
            }
            close |= l == "connection: close";
        }
        let mut body = vec![0u8; len];
        c.read_exact(&mut body).map_err(|e| (true, e.to_string()))?;
        if close {
            self.conn = None;
        }
        Ok(String::from_utf8_lossy(&body).into_owned())
    }
}

#[test]
fn hup_under_load_loses_nothing_then_broken_config_keeps_old_workers() {
    let dir = tempfile::tempdir().unwrap();
    let server = "listen = 127.0.0.1:0\nworkers = 2";
    let ini = write_ini(dir.path(), "supapp:make_app", "one", server);
    let mut d = start(&ini, 1);
    let addr = d.addr();
    assert!(eventually(30, || ask(&addr, "/").is_some()));

    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let load: Vec<_> = (0..4)
        .map(|i| {
            let (stop, ok, failures, addr) =
                (stop.clone(), ok.clone(), failures.clone(), addr.clone());
            std::thread::spawn(move || {
                let mut c = Client {
                    addr: addr.clone(),
                    conn: None,
                };
                let end = Instant::now() + Duration::from_secs(90);
                while !stop.load(Ordering::SeqCst) && Instant::now() < end {
                    // Threads 0, 1: keep-alive; 2, 3: a new connection per request.
                    let r = if i < 2 {
                        c.get("/")
                    } else {
                        ask(&addr, "/")
                            .map(|_| String::new())
                            .ok_or_else(|| "new connection failed".into())
                    };
                    match r {
                        Ok(_) => ok.fetch_add(1, Ordering::SeqCst),
                        Err(e) => {
                            failures.lock().unwrap().push(e);
                            0
                        }
                    };
                }
            })
        })
        .collect();
    assert!(eventually(30, || ok.load(Ordering::SeqCst) > 200));
    // A slow request in flight on an old worker across the reload completes too.
    let a = addr.clone();
    let slow = std::thread::spawn(move || ask(&a, "/sleep?1"));
    std::thread::sleep(Duration::from_millis(200));
    write_ini(dir.path(), "supapp:make_app", "two", server);
    d.signal(libc::SIGHUP);
    assert!(
        eventually(60, || ask(&addr, "/").is_some_and(|r| r.1 == "two")),
        "new config served"
    );
    assert!(eventually(60, || (0..10)
        .all(|_| ask(&addr, "/").is_some_and(|r| r.1 == "two"))));
    assert_eq!(
        slow.join().unwrap().map(|r| r.1).as_deref(),
        Some("one"),
        "slow request on an old worker"
    );
    let before = ok.load(Ordering::SeqCst);
    assert!(eventually(60, || ok.load(Ordering::SeqCst) > (before + 200).max(3000)));
    stop.store(true, Ordering::SeqCst);
    for t in load {
        t.join().unwrap();
    }
    assert_eq!(
        *failures.lock().unwrap(),
        Vec::<String>::new(),
        "no request failed during the reload"
    );
    assert!(
        ok.load(Ordering::SeqCst) > 1000,
        "a few thousand requests ran"
    );

    // A broken config: an error is logged and the old workers keep serving.
    std::fs::write(&ini, "[server:main]\nworkers = many\n").unwrap();
    // The retired workers finish draining first (idle keep-alive grace), then exit.
    assert!(eventually(60, || children(d.pid()).len() == 2));
    let pids_before = children(d.pid());
    d.signal(libc::SIGHUP);
    assert!(
        stderr_has(&d, "reload failed", 30),
        "the reload error is logged"
    );
    assert_eq!(ask(&addr, "/").map(|r| r.1).as_deref(), Some("two"));
    assert_eq!(children(d.pid()), pids_before, "old workers kept");
    d.signal(libc::SIGTERM);
    assert_eq!(d.wait(30), Some(0));
}

#[test]
fn app_that_fails_to_import_exits_4_without_respawn_loop() {
    let dir = tempfile::tempdir().unwrap();
    let ini = write_ini(
        dir.path(),
        "supbroken:app",
        "one",
        "listen = 127.0.0.1:0\nworkers = 2",
    );
    let start = Instant::now();
    let out = command(&ini).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(start.elapsed() < Duration::from_secs(30));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.matches("started").count() <= 2,
        "no respawn storm:\n{stderr}"
    );
}

#[test]
fn bind_error_exits_3_with_one_clear_line() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let ini = write_ini(
        dir.path(),
        "supapp:make_app",
        "one",
        &format!("listen = 127.0.0.1:{port}"),
    );
    let out = command(&ini).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("127.0.0.1:{port}")), "{stderr}");
}

#[test]
fn pidfile_written_stale_replaced_and_removed_at_exit() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("w.pid");
    std::fs::write(&pidfile, "999999999\n").unwrap(); // stale
    let ini = write_ini(
        dir.path(),
        "supapp:make_app",
        "one",
        &format!("listen = 127.0.0.1:0\npidfile = {}", pidfile.display()),
    );
    let mut d = start(&ini, 1);
    assert!(eventually(10, || std::fs::read_to_string(&pidfile)
        .is_ok_and(|t| t.trim() == d.pid().to_string())));
    // A second daemon with the same pidfile refuses to start.
    let out = command(&ini).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    d.signal(libc::SIGTERM);
    assert_eq!(d.wait(30), Some(0));
    assert!(!pidfile.exists());
}

#[test]
fn notify_socket_gets_ready_reloading_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let sock_path = dir.path().join("notify");
    let sock = std::os::unix::net::UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let ini = write_ini(dir.path(), "supapp:make_app", "one", "listen = 127.0.0.1:0");
    let mut d = Daemon::start_with(command(&ini).env("NOTIFY_SOCKET", &sock_path), 1);
    let recv = || {
        let mut buf = [0u8; 1024];
        let n = sock.recv(&mut buf).expect("notification");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let ready = recv();
    assert!(
        ready.contains("READY=1") && ready.contains(&format!("MAINPID={}", d.pid())),
        "{ready}"
    );
    d.signal(libc::SIGHUP);
    assert!(recv().contains("RELOADING=1"));
    assert!(recv().contains("READY=1"));
    d.signal(libc::SIGTERM);
    assert!(recv().contains("STOPPING=1"));
    assert_eq!(d.wait(30), Some(0));
}

#[test]
fn listen_fds_socket_activation_is_used_instead_of_binding() {
    let dir = tempfile::tempdir().unwrap();
    // `listen` names a port we hold: binding it would fail, so success proves fd 3 was used.
    let blocker = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let ini = write_ini(
        dir.path(),
        "supapp:make_app",
        "one",
        &format!("listen = {}", blocker.local_addr().unwrap()),
    );
    let activated = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let want = format!("http://{}", activated.local_addr().unwrap());
    let fd = activated.as_raw_fd();
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg("export LISTEN_PID=$$ LISTEN_FDS=1; exec \"$0\" \"$@\"")
        .arg(bin())
        .arg("--config")
        .arg(&ini)
        .env("PYTHONPATH", apps())
        .current_dir(dir.path());
    // SAFETY: dup2 and fcntl are async-signal-safe; fd is open in the parent and inherited.
    unsafe {
        cmd.pre_exec(move || {
            if fd == 3 {
                libc::fcntl(3, libc::F_SETFD, 0);
            } else {
                libc::dup2(fd, 3);
            }
            Ok(())
        });
    }
    let d = Daemon::start_with(&mut cmd, 1);
    drop(activated);
    assert_eq!(d.urls[0], want);
    assert!(ask(&d.addr(), "/").is_some());
}

#[test]
fn unix_socket_gets_perms_and_is_removed_at_exit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.sock");
    let ini = write_ini(
        dir.path(),
        "supapp:make_app",
        "one",
        &format!("unix_socket = {}\nunix_socket_perms = 660", path.display()),
    );
    let mut d = start(&ini, 1);
    assert_eq!(d.urls[0], format!("http://unix:{}", path.display()));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o660
    );
    let mut s = std::os::unix::net::UnixStream::connect(&path).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    assert!(out.starts_with("HTTP/1.0 200"), "{out}");
    d.signal(libc::SIGTERM);
    assert_eq!(d.wait(30), Some(0));
    assert!(!path.exists(), "the master removes its unix socket file");
}

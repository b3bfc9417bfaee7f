//! What a SIGHUP does with each kind of key: keys read only at start are named in one WARNING
//! and keep their running value; socket keys apply to the sockets a reload keeps open.
use std::time::{Duration, Instant};

use crate::util::Daemon;

use super::{ask, eventually, start, write_ini};

/// HUPs the master and returns its stderr lines up to the end of reload `generation` (bounded).
fn hup(d: &Daemon, generation: u32) -> Vec<String> {
    d.signal(libc::SIGHUP);
    let done = format!("reload complete (generation {generation})");
    let end = Instant::now() + Duration::from_secs(60);
    let mut lines = Vec::new();
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        match d.stderr.recv_timeout(left) {
            Ok(line) => {
                let last = line.contains(&done) || line.contains("reload failed");
                lines.push(line);
                if last {
                    return lines;
                }
            }
            Err(_) => break,
        }
    }
    panic!("no end of reload {generation}:\n{}", lines.join("\n"));
}

/// A daemon with one worker of `supapp:make_app`, started from an INI whose `[server:main]`
/// the test rewrites before each HUP.
struct Served {
    dir: tempfile::TempDir,
    d: Daemon,
    addr: String,
}

impl Served {
    /// Started from `server` and answering.
    fn start(server: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let d = start(&write_ini(dir.path(), "supapp:make_app", "one", server), 1);
        let addr = d.addr();
        let served = Served { dir, d, addr };
        assert!(served.answers());
        served
    }

    /// Writes `server` into the INI (read at the next HUP).
    fn rewrite(&self, server: &str) {
        write_ini(self.dir.path(), "supapp:make_app", "one", server);
    }

    /// A request is answered (within 30 s).
    fn answers(&self) -> bool {
        eventually(30, || ask(&self.addr, "/").is_some())
    }
}

fn count(lines: &[String], needle: &str) -> usize {
    lines.iter().filter(|l| l.contains(needle)).count()
}

/// The worker's process title (`waitressd: worker 1 [NAME]`).
fn worker_title(master: i32) -> String {
    let w = crate::util::children(master)[0];
    std::fs::read_to_string(format!("/proc/{w}/cmdline"))
        .unwrap_or_default()
        .replace('\0', " ")
}

/// `proc_name`, `preload_app`, `pidfile` and `status_listen` changed in the file: each reload
/// serves with the file's other settings, names each of the four once in a WARNING and keeps
/// its running value (so a file put back reloads without a warning).
#[test]
fn start_only_keys_changed_on_reload_are_named_once_and_keep_their_running_value() {
    let base = "listen = 127.0.0.1:0\nproc_name = first";
    let s = Served::start(base);
    let (dir, d) = (s.dir.path(), &s.d);
    assert!(worker_title(d.pid()).contains("[first]"));
    let pidfile = dir.join("new.pid");
    s.rewrite(&format!(
        "listen = 127.0.0.1:0\nproc_name = second\npreload_app = true\npidfile = {}\n\
         status_listen = 127.0.0.1:0",
        pidfile.display()
    ));
    for generation in [2, 3] {
        // Twice: the second reload still runs what the first kept, and says so again.
        let lines = hup(d, generation);
        let all = lines.join("\n");
        for key in ["proc_name", "preload_app", "pidfile", "status_listen"] {
            let warned = format!("a changed {key} takes effect at the next start, not on reload");
            assert_eq!(count(&lines, &warned), 1, "{key}:\n{all}");
            assert!(
                lines
                    .iter()
                    .any(|l| l.contains(&warned) && l.contains("WARN")),
                "{all}"
            );
        }
    }
    assert!(s.answers());
    assert!(worker_title(d.pid()).contains("[first]"));
    assert!(!pidfile.exists());
    // Back to the first file: nothing differs from what runs, no warning.
    s.rewrite(base);
    let lines = hup(d, 4);
    assert_eq!(count(&lines, "a changed"), 0, "{}", lines.join("\n"));
    assert!(s.answers());
}

/// `backlog` raised in the file applies to the listening socket the reload keeps: with the
/// worker stopped (SIGSTOP: nobody accepts), 20 clients complete their handshake into the
/// accept queue (with the start's `backlog = 1` only 2 would; the rest time out).
#[test]
fn a_reload_resizes_the_backlog_of_a_kept_listener() {
    let s = Served::start("listen = 127.0.0.1:0\nbacklog = 1");
    let d = &s.d;
    s.rewrite("listen = 127.0.0.1:0\nbacklog = 64");
    hup(d, 2);
    assert!(eventually(30, || crate::util::children(d.pid()).len() == 1));
    assert!(ask(&s.addr, "/").is_some());
    let worker = crate::util::children(d.pid())[0];
    // SAFETY: kill(2) on our daemon's worker; SIGCONT follows below whatever happens.
    unsafe { libc::kill(worker, libc::SIGSTOP) };
    let target: std::net::SocketAddr = s.addr.parse().unwrap();
    let queued: Vec<_> = (0..20)
        .filter_map(|_| {
            std::net::TcpStream::connect_timeout(&target, Duration::from_millis(500)).ok()
        })
        .collect();
    // SAFETY: as above.
    unsafe { libc::kill(worker, libc::SIGCONT) };
    assert_eq!(
        queued.len(),
        20,
        "handshakes completed with nobody accepting"
    );
    drop(queued);
    assert!(s.answers());
}

/// `unix_socket_perms` changed in the file applies to the socket file the reload keeps.
#[test]
fn a_reload_applies_unix_socket_perms_to_a_kept_socket_file() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.sock");
    let ini = |perms: &str| {
        let server = format!(
            "unix_socket = {}\nunix_socket_perms = {perms}",
            path.display()
        );
        write_ini(dir.path(), "supapp:make_app", "one", &server)
    };
    let d = start(&ini("600"), 1);
    let mode = || std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(), 0o600);
    ini("660");
    hup(&d, 2);
    assert_eq!(mode(), 0o660);
    assert!(std::os::unix::net::UnixStream::connect(&path).is_ok());
}

/// A reload abandoned because its workers fail to boot leaves the kept socket file with the
/// running configuration's `unix_socket_perms` (the abandoned file's 0666 stayed, while the
/// log said it still served the old configuration).
#[test]
fn an_abandoned_reload_leaves_the_unix_socket_perms_of_the_running_configuration() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let module = dir.path().join("deployed.py");
    let good = std::fs::read_to_string(super::apps().join("supapp.py")).unwrap();
    std::fs::write(&module, good).unwrap();
    let path = dir.path().join("w.sock");
    let server = |perms: &str| {
        format!(
            "unix_socket = {}\nunix_socket_perms = {perms}",
            path.display()
        )
    };
    let d = super::failures::start_deployed(dir.path(), &server("600"));
    let mode = || std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(), 0o600);
    let ready = super::failures::line_with(&d, "worker(s) ready", 30);
    assert!(ready.is_some(), "serving before the deploy breaks");
    std::fs::write(&module, "raise ImportError('broken deploy')\n").unwrap();
    write_ini(dir.path(), "deployed:make_app", "one", &server("666"));
    d.signal(libc::SIGHUP);
    let aborted = super::failures::line_with(&d, "reload aborted", 60);
    assert!(aborted.is_some(), "the reload was abandoned");
    assert_eq!(mode(), 0o600, "the running configuration's permissions");
    assert!(std::os::unix::net::UnixStream::connect(&path).is_ok());
}

/// With `preload_app` the master's Python, which every worker inherits, started in the start's
/// virtualenv: a `virtualenv` changed in the file is named in a WARNING (it was silently
/// kept).
#[test]
fn a_preloading_master_names_a_changed_virtualenv_on_reload() {
    let s = Served::start("listen = 127.0.0.1:0\npreload_app = true");
    let (dir, d) = (s.dir.path(), &s.d);
    let other = dir.join("other-venv");
    s.rewrite(&format!(
        "listen = 127.0.0.1:0\npreload_app = true\nvirtualenv = {}",
        other.display()
    ));
    let lines = hup(d, 2);
    let warned = "a changed virtualenv takes effect at the next start, not on reload";
    assert_eq!(count(&lines, warned), 1, "{}", lines.join("\n"));
    assert!(s.answers());
}

/// The umask in /proc/PID/status.
fn umask_of(pid: i32) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let line = status.lines().find(|l| l.starts_with("Umask:"));
    line.unwrap_or_default()
        .trim_start_matches("Umask:")
        .trim()
        .to_string()
}

/// A reload gives its workers the new `umask`; a reload that fails leaves the master's as it
/// was, so a worker respawned after it keeps the running configuration's (it got the failed
/// file's umask).
#[test]
fn a_failed_reload_leaves_the_umask_of_the_running_configuration() {
    let s = Served::start("listen = 127.0.0.1:0\numask = 022");
    let (dir, d) = (s.dir.path(), &s.d);
    let worker = crate::util::children(d.pid())[0];
    assert_eq!(umask_of(worker), "0022");
    let missing = dir.join("missing.pem");
    s.rewrite(&format!(
        "listen = 127.0.0.1:0\numask = 077\ncertfile = {}",
        missing.display()
    ));
    let lines = hup(d, 2);
    assert_eq!(count(&lines, "reload failed"), 1, "{}", lines.join("\n"));
    assert_eq!(umask_of(d.pid()), "0022");
    // SAFETY: kill(2) on our daemon's worker, which the master respawns.
    unsafe { libc::kill(worker, libc::SIGKILL) };
    let respawned = || {
        let c = crate::util::children(d.pid());
        c.len() == 1 && c[0] != worker && ask(&s.addr, "/").is_some()
    };
    assert!(eventually(30, respawned));
    assert_eq!(umask_of(crate::util::children(d.pid())[0]), "0022");
    // A good reload: new workers and then the master take the new umask.
    s.rewrite("listen = 127.0.0.1:0\numask = 077");
    hup(d, 2);
    assert!(eventually(30, || crate::util::children(d.pid()).len() == 1));
    assert_eq!(umask_of(crate::util::children(d.pid())[0]), "0077");
    assert_eq!(umask_of(d.pid()), "0077");
}

/// A reload that removes `umask` from the file gives its workers, then the master, the umask
/// the server started with, as a start with that file would (the last configured one stayed).
#[test]
fn a_reload_that_unsets_umask_gives_back_the_umask_the_server_started_with() {
    let started = umask_of(std::process::id() as i32);
    assert_ne!(started, "0077", "the test runs with another umask");
    let s = Served::start("listen = 127.0.0.1:0\numask = 077");
    let d = &s.d;
    assert_eq!(umask_of(crate::util::children(d.pid())[0]), "0077");
    s.rewrite("listen = 127.0.0.1:0");
    hup(d, 2);
    assert!(eventually(30, || crate::util::children(d.pid()).len() == 1));
    assert_eq!(umask_of(crate::util::children(d.pid())[0]), started);
    assert_eq!(umask_of(d.pid()), started);
}

/// `graceful_timeout` raised in the file applies to the old workers this reload retires: a
/// 3 s request they are serving finishes (with the start's 1 s it was cut, and the WARNING said
/// to raise graceful_timeout, which the operator just had).
#[test]
fn a_reload_drains_the_old_workers_with_the_new_graceful_timeout() {
    let s = Served::start("listen = 127.0.0.1:0\ngraceful_timeout = 1");
    let d = &s.d;
    let a = s.addr.clone();
    let slow = std::thread::spawn(move || ask(&a, "/sleep?3"));
    // The request is in the old worker's app thread before the reload.
    std::thread::sleep(Duration::from_millis(500));
    s.rewrite("listen = 127.0.0.1:0\ngraceful_timeout = 30");
    hup(d, 2);
    assert!(
        slow.join().unwrap().is_some(),
        "the in-flight request was cut"
    );
}

/// `error_log` set by a reload and unset by the next: the master's log comes back to the
/// standard error it started with (it stayed in the file, with nothing saying so).
#[test]
fn a_reload_that_unsets_error_log_logs_to_the_original_stderr_again() {
    let s = Served::start("listen = 127.0.0.1:0");
    let (dir, d) = (s.dir.path(), &s.d);
    let file = dir.join("e.log");
    s.rewrite(&format!(
        "listen = 127.0.0.1:0\nerror_log = {}",
        file.display()
    ));
    d.signal(libc::SIGHUP);
    let read = || std::fs::read_to_string(&file).unwrap_or_default();
    assert!(eventually(30, || read().contains("reload complete (generation 2)")));
    s.rewrite("listen = 127.0.0.1:0");
    let lines = hup(d, 3);
    assert!(count(&lines, "reload complete (generation 3)") == 1);
    assert!(!read().contains("generation 3"), "{}", read());
}

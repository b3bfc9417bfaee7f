//! USR2 on the real binary: the master re-execs the binary on disk, hands it the listeners,
//! and stops once the new master serves (no request fails, the pidfile moves); a new master
//! that cannot start leaves the old one serving.
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::failures::{line_with, start_deployed};
use super::recycle::load;
use super::{ask, children, command, eventually, start, write_ini};
use crate::util::Daemon;

/// True while `pid` runs (not gone, not a zombie).
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status")).is_ok_and(|s| {
        !s.lines()
            .any(|l| l.starts_with("State:") && l.contains('Z'))
    })
}

/// Stops (by PID) a master this test caused to exist but did not spawn itself.
struct Reaper(i32);

impl Drop for Reaper {
    fn drop(&mut self) {
        if alive(self.0) {
            // SAFETY: kill(2) on the new master the test's daemon started.
            unsafe { libc::kill(self.0, libc::SIGQUIT) };
            if !eventually(5, || !alive(self.0)) {
                // SAFETY: as above.
                unsafe { libc::kill(self.0, libc::SIGKILL) };
            }
        }
    }
}

fn read_pid(path: &std::path::Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The supervisor test app from an INI in `dir` with a pidfile (`dir/w.pid`) and `extra`
/// settings, started: the daemon and its pidfile's path.
fn start_with_pidfile(dir: &std::path::Path, extra: &str) -> (Daemon, std::path::PathBuf) {
    let pidfile = dir.join("w.pid");
    let settings = format!(
        "listen = 127.0.0.1:0\npidfile = {}\n{extra}",
        pidfile.display()
    );
    let ini = write_ini(dir, "supapp:make_app", "one", &settings);
    (start(&ini, 1), pidfile)
}

/// The supervisor test app as module `deployed` in `dir` (so a test can change the code the
/// new master loads), with a pidfile, started.
struct Deployed {
    d: Daemon,
    module: std::path::PathBuf,
    good: String,
    pidfile: std::path::PathBuf,
}

fn deployed(dir: &std::path::Path) -> Deployed {
    let module = dir.join("deployed.py");
    let good = std::fs::read_to_string(super::apps().join("supapp.py")).unwrap();
    std::fs::write(&module, &good).unwrap();
    let pidfile = dir.join("w.pid");
    let d = start_deployed(
        dir,
        &format!("listen = 127.0.0.1:0\npidfile = {}", pidfile.display()),
    );
    Deployed {
        d,
        module,
        good,
        pidfile,
    }
}

impl Deployed {
    /// From now on the app's import takes `secs` seconds (the next workers load slowly).
    fn load_slowly(&self, secs: u32) {
        let slow = format!("import time\ntime.sleep({secs})\n{}", self.good);
        std::fs::write(&self.module, slow).unwrap();
    }
}

#[test]
fn usr2_under_load_hands_over_to_a_new_master_with_zero_failures_and_moves_the_pidfile() {
    let dir = tempfile::tempdir().unwrap();
    let (mut d, pidfile) = start_with_pidfile(dir.path(), "workers = 2");
    let addr = d.addr();
    let old = d.pid();
    assert!(eventually(30, || ask(&addr, "/").is_some()));
    let stop = Arc::new(AtomicBool::new(false));
    let (handles, ok, failures, _) = load(&addr, &stop);
    assert!(eventually(30, || ok.load(Ordering::SeqCst) > 200));
    d.signal(libc::SIGUSR2);
    // The old master stops by itself once the new one serves.
    let code = d.wait(60);
    let new = read_pid(&pidfile);
    let _reaper = new.map(Reaper);
    assert_eq!(code, Some(0), "the old master stopped gracefully");
    let new = new.expect("pidfile");
    assert_ne!(new, old, "the pidfile names the new master");
    assert!(alive(new));
    let before = ok.load(Ordering::SeqCst);
    assert!(eventually(60, || ok.load(Ordering::SeqCst) > before + 200));
    stop.store(true, Ordering::SeqCst);
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(*failures.lock().unwrap(), Vec::<String>::new());
    let (pid, _, _) = ask(&addr, "/").expect("the new master serves");
    assert!(
        children(new).contains(&pid),
        "served by the new master's worker"
    );
    // SAFETY: kill(2) on the new master this test's daemon started.
    unsafe { libc::kill(new, libc::SIGTERM) };
    assert!(eventually(30, || !alive(new)));
    assert!(!pidfile.exists(), "removed by the new master at exit");
}

/// The new master of a USR2 upgrade is a child of the old master's parent (systemd, under a
/// unit), not of the old master: systemd decides once, at `MAINPID=`, whether its main process
/// is its own child, and for one that is not (an "alien", `Supervising process N which is not
/// our child` in the journal) `systemctl stop` sends SIGTERM, does not wait for the drain and
/// SIGKILLs the whole unit at once, cutting every request in flight; its exit status is lost too.
/// Here the test process stands for systemd: it is the new master's parent and reaps its exit 0.
/// (x86_64 and aarch64 only: elsewhere the new master is the old master's child.)
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
#[test]
fn usr2_new_master_is_a_child_of_the_old_masters_parent_which_reaps_its_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let (mut d, pidfile) = start_with_pidfile(dir.path(), "workers = 1");
    let addr = d.addr();
    assert!(eventually(30, || ask(&addr, "/").is_some()));
    d.signal(libc::SIGUSR2);
    let code = d.wait(60);
    let new = read_pid(&pidfile);
    let _reaper = new.map(Reaper);
    assert_eq!(code, Some(0), "the old master handed over and stopped");
    let new = new.expect("pidfile");
    let status = std::fs::read_to_string(format!("/proc/{new}/status")).unwrap();
    let ppid = status
        .lines()
        .find_map(|l| l.strip_prefix("PPid:"))
        .map(|v| v.trim().to_string());
    assert_eq!(
        ppid,
        Some(std::process::id().to_string()),
        "the new master's parent is the old master's parent"
    );
    assert!(ask(&addr, "/").is_some(), "the new master serves");
    // SAFETY: kill(2) on the new master this test's daemon started.
    unsafe { libc::kill(new, libc::SIGTERM) };
    let mut st = 0;
    // SAFETY: waitpid(2) on that process, our child.
    let r = unsafe { libc::waitpid(new, &mut st, 0) };
    assert_eq!(r, new, "reaped by its parent");
    assert!(
        libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0,
        "a graceful stop's exit 0, status {st:#x}"
    );
}

/// A master that is the init (PID 1) of its PID namespace (a container's entrypoint) cannot
/// hand over: its exit ends every process in the namespace, and USR2 took the whole container
/// down, every request cut. It refuses USR2 with the reason and keeps serving.
#[test]
fn usr2_as_the_init_of_a_pid_namespace_is_refused_and_it_keeps_serving() {
    // SAFETY: geteuid(2) has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: a PID namespace needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ini = write_ini(dir.path(), "supapp:make_app", "one", "listen = 127.0.0.1:0");
    let mut c = std::process::Command::new("unshare");
    c.args(["--fork", "--pid", "--mount-proc", "--kill-child=SIGQUIT"])
        .arg(crate::util::bin())
        .arg("--config")
        .arg(&ini)
        .env("PYTHONPATH", super::apps())
        .current_dir(dir.path());
    let d = Daemon::start_with(&mut c, 1);
    let addr = d.addr();
    assert!(eventually(30, || ask(&addr, "/").is_some()));
    let master = children(d.pid());
    assert_eq!(master.len(), 1, "unshare's one child, the master");
    // SAFETY: kill(2) on the master this test started (through unshare).
    unsafe { libc::kill(master[0], libc::SIGUSR2) };
    let line = line_with(&d, "USR2", 30).expect("a line about the USR2");
    assert!(
        line.contains("USR2 refused") && line.contains("PID 1"),
        "{line}"
    );
    assert!(ask(&addr, "/").is_some(), "still serving");
    assert!(alive(master[0]), "the same master");
}

#[test]
fn usr2_whose_new_master_cannot_start_keeps_the_old_master_serving() {
    let dir = tempfile::tempdir().unwrap();
    let Deployed {
        mut d,
        module,
        pidfile,
        ..
    } = deployed(dir.path());
    let addr = d.addr();
    assert!(eventually(30, || ask(&addr, "/").is_some()));
    // The new master's workers cannot import the app: it exits 4 before serving.
    std::fs::write(&module, "raise ImportError('half-installed upgrade')\n").unwrap();
    d.signal(libc::SIGUSR2);
    let failed = line_with(&d, "upgrade failed", 60).unwrap_or_default();
    assert!(failed.ends_with("); still serving"), "{failed}");
    assert!(eventually(10, || read_pid(&pidfile) == Some(d.pid())));
    let (pid, _, _) = ask(&addr, "/").expect("the old master still serves");
    assert!(children(d.pid()).contains(&pid));
    d.signal(libc::SIGTERM);
    assert_eq!(d.wait(30), Some(0));
}

/// The `status_listen` socket goes over to the new master too: binding its address again
/// while the old master still listens would fail the upgrade.
#[test]
fn usr2_hands_the_status_listener_over() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let status = format!("127.0.0.1:{port}");
    let (mut d, pidfile) = start_with_pidfile(dir.path(), &format!("status_listen = {status}"));
    let addr = d.addr();
    let old = d.pid();
    // `start` returns once the app listener is bound; the status listener may come a moment later.
    let ready = || {
        std::net::TcpStream::connect(&status).is_ok()
            && crate::util::get(&status, "/ready").0 == 200
    };
    assert!(eventually(30, ready));
    // Probed all through the upgrade: one master answers at a time, and the answer is "ready"
    // (the new master while it boots, or the old one while it drains, would say 503).
    let probing = Arc::new(AtomicBool::new(true));
    let prober = {
        let (probing, status) = (probing.clone(), status.clone());
        std::thread::spawn(move || {
            let mut seen = Vec::new();
            while probing.load(Ordering::SeqCst) {
                seen.push(crate::util::get(&status, "/ready").0);
            }
            seen
        })
    };
    d.signal(libc::SIGUSR2);
    let code = d.wait(60);
    probing.store(false, Ordering::SeqCst);
    let seen = prober.join().unwrap();
    assert!(seen.len() > 10, "probed {} times", seen.len());
    let not_ready: Vec<_> = seen.iter().filter(|&&c| c != 200).collect();
    assert!(
        not_ready.is_empty(),
        "/ready during the upgrade: {} of {} not 200: {not_ready:?}",
        not_ready.len(),
        seen.len()
    );
    let new = read_pid(&pidfile);
    let _reaper = new.map(Reaper);
    assert_eq!(code, Some(0), "the old master stopped: the new one booted");
    let new = new.expect("pidfile");
    assert_ne!(new, old);
    assert!(eventually(30, ready));
    let (code, _, body) = crate::util::get(&status, "/metrics");
    assert_eq!(code, 200);
    assert!(String::from_utf8_lossy(&body).contains("waitressd_"));
    assert!(ask(&addr, "/").is_some(), "the new master serves");
    // SAFETY: kill(2) on the new master this test's daemon started.
    unsafe { libc::kill(new, libc::SIGTERM) };
    assert!(eventually(30, || !alive(new)));
}

/// USR2 with the binary the master was started from gone (removed, not replaced): the old
/// master says why the new one could not start and what to do, and keeps serving.
#[test]
fn usr2_with_the_binary_gone_says_why_and_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("waitressd");
    std::fs::copy(crate::util::bin(), &copy).unwrap();
    let pidfile = dir.path().join("w.pid");
    let settings = format!("listen = 127.0.0.1:0\npidfile = {}", pidfile.display());
    let ini = write_ini(dir.path(), "supapp:make_app", "one", &settings);
    let mut c = std::process::Command::new(&copy);
    c.arg("--config")
        .arg(&ini)
        .env("PYTHONPATH", super::apps())
        .current_dir(dir.path());
    let mut d = Daemon::start_with(&mut c, 1);
    let addr = d.addr();
    assert!(eventually(30, || ask(&addr, "/").is_some()));
    std::fs::remove_file(&copy).unwrap();
    d.signal(libc::SIGUSR2);
    let line = line_with(&d, "USR2: cannot start", 30).expect("the failed exec is reported");
    assert!(
        line.contains(&copy.display().to_string())
            && line.contains("No such file or directory")
            && line.contains("send USR2 again"),
        "{line}"
    );
    assert_eq!(read_pid(&pidfile), Some(d.pid()));
    let (pid, _, _) = ask(&addr, "/").expect("the old master still serves");
    assert!(children(d.pid()).contains(&pid));
    assert_eq!(children(d.pid()).len(), 1, "the failed child was reaped");
    d.signal(libc::SIGTERM);
    assert_eq!(d.wait(30), Some(0));
}

/// The new master of a USR2 upgrade takes the pidfile over only once its workers serve: while
/// it loads the app the file still names the old master (an init script waiting for the file
/// to change must not report an upgrade that may still fail, nor stop the wrong master).
#[test]
fn usr2_moves_the_pidfile_only_once_the_new_master_serves() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = deployed(dir.path());
    let pidfile = t.pidfile.clone();
    let (addr, old) = (t.d.addr(), t.d.pid());
    assert!(eventually(30, || ask(&addr, "/").is_some()));
    // The new master's workers take 3 s to import the app.
    t.load_slowly(3);
    t.d.signal(libc::SIGUSR2);
    assert!(line_with(&t.d, "started the new master", 30).is_some());
    let mut names = std::collections::HashSet::new();
    let until = std::time::Instant::now() + std::time::Duration::from_millis(2000);
    while std::time::Instant::now() < until {
        names.insert(read_pid(&pidfile));
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let code = t.d.wait(60);
    let new = read_pid(&pidfile);
    let _reaper = new.map(Reaper);
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        vec![Some(old)],
        "the old master's PID while the new one loads"
    );
    assert_eq!(
        code,
        Some(0),
        "the old master stopped once the new one served"
    );
    assert!(
        new.is_some_and(|p| p != old && alive(p)),
        "the new master's PID"
    );
}

/// A USR2 that arrives while a reload's new workers load (a package upgrade's postinst sends
/// it whenever it runs) is queued, not dropped: the upgrade follows once the reload is done.
#[test]
fn usr2_during_a_reload_is_queued_then_upgrades() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = deployed(dir.path());
    let pidfile = t.pidfile.clone();
    let (addr, old) = (t.d.addr(), t.d.pid());
    assert!(eventually(30, || ask(&addr, "/").is_some()));
    t.load_slowly(2);
    t.d.signal(libc::SIGHUP);
    assert!(line_with(&t.d, "reload", 30).is_some());
    t.d.signal(libc::SIGUSR2);
    assert!(
        line_with(&t.d, "USR2 during a reload: queued", 30).is_some(),
        "queued, not ignored"
    );
    assert!(line_with(&t.d, "started the new master", 60).is_some());
    let code = t.d.wait(60);
    let new = read_pid(&pidfile);
    let _reaper = new.map(Reaper);
    assert_eq!(code, Some(0), "the old master handed over and stopped");
    assert!(new.is_some_and(|p| p != old && alive(p)));
    assert!(ask(&addr, "/").is_some(), "the new master serves");
}

/// A HUP while a USR2's new master still loads would start a reload whose workers the takeover
/// kills: it is refused with the reason, and the upgrade completes.
#[test]
fn a_hup_during_an_upgrade_is_refused_and_the_upgrade_completes() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = deployed(dir.path());
    let pidfile = t.pidfile.clone();
    let addr = t.d.addr();
    assert!(eventually(30, || ask(&addr, "/").is_some()));
    t.load_slowly(3);
    t.d.signal(libc::SIGUSR2);
    assert!(line_with(&t.d, "started the new master", 30).is_some());
    t.d.signal(libc::SIGHUP);
    let refused = line_with(&t.d, "SIGHUP ignored: a USR2 upgrade is under way", 30);
    // The new master is reaped whatever the assertions find.
    let code = t.d.wait(60);
    let new = read_pid(&pidfile);
    let _reaper = new.map(Reaper);
    assert!(
        refused.is_some_and(|l| l.contains("WARN")),
        "refused with the reason"
    );
    assert_eq!(code, Some(0), "the old master handed over and stopped");
    assert!(ask(&addr, "/").is_some(), "the new master serves");
}

/// A USR2's new master that cannot write the pidfile (its directory was removed, a tmpfiles
/// clean-up of /run say) stops without a word to systemd: before, it sent READY=1 with its
/// own MAINPID, then STOPPING=1, which under the unit's NotifyAccess=all stops the whole
/// service while the old master serves on.
#[test]
fn usr2_whose_new_master_cannot_take_the_pidfile_over_tells_systemd_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    std::fs::create_dir(&run).unwrap();
    let sock_path = dir.path().join("notify");
    let sock = std::os::unix::net::UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(std::time::Duration::from_millis(200)))
        .unwrap();
    let settings = format!(
        "listen = 127.0.0.1:0\npidfile = {}",
        run.join("w.pid").display()
    );
    let ini = write_ini(dir.path(), "supapp:make_app", "one", &settings);
    let d = Daemon::start_with(command(&ini).env("NOTIFY_SOCKET", &sock_path), 1);
    let (addr, old) = (d.addr(), d.pid());
    assert!(eventually(30, || ask(&addr, "/").is_some()));
    std::fs::remove_dir_all(&run).unwrap();
    d.signal(libc::SIGUSR2);
    let started = line_with(&d, "started the new master (pid ", 30).expect("USR2 started it");
    let new: i32 = started
        .split("started the new master (pid ")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .and_then(|p| p.parse().ok())
        .expect("its pid");
    let _reaper = Reaper(new);
    let failed = line_with(&d, "upgrade failed: the new master", 60);
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while let Ok(n) = sock.recv(&mut buf) {
        got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    assert!(failed.is_some(), "the new master gave up: {got:?}");
    let from_new: Vec<&String> = got
        .iter()
        .filter(|m| m.contains("STOPPING=1") || m.contains(&format!("MAINPID={new}")))
        .collect();
    assert!(from_new.is_empty(), "told systemd: {from_new:?}");
    assert!(
        got.iter().any(|m| m.contains(&format!("MAINPID={old}"))),
        "{got:?}"
    );
    assert!(ask(&addr, "/").is_some(), "the old master serves");
}

/// A new master that took over and then stops (a `kill` of the pidfile's PID, a
/// `systemctl stop` right after a package upgrade) while the old master still drains a slow
/// request: the old master logged `upgrade failed: the new master (pid N) exited (before
/// serving; ...); still serving` at ERROR, false on both counts (it had served, and the old
/// one is stopping). It now says the new master exited while it stops.
#[test]
fn a_new_master_that_stops_while_the_old_one_drains_is_no_failed_upgrade() {
    let dir = tempfile::tempdir().unwrap();
    let (mut d, pidfile) = start_with_pidfile(dir.path(), "workers = 1");
    let (addr, old) = (d.addr(), d.pid());
    assert!(eventually(30, || ask(&addr, "/").is_some()));
    let slow = {
        let addr = addr.clone();
        std::thread::spawn(move || ask(&addr, "/sleep?5"))
    };
    std::thread::sleep(std::time::Duration::from_millis(500));
    d.signal(libc::SIGUSR2);
    assert!(
        eventually(60, || read_pid(&pidfile).is_some_and(|p| p != old)),
        "the new master took over"
    );
    let new = read_pid(&pidfile).unwrap();
    let _reaper = Reaper(new);
    assert!(alive(old), "the old master drains the slow request");
    // SAFETY: kill(2) on the new master this test's daemon started.
    unsafe { libc::kill(new, libc::SIGTERM) };
    let mut lines = Vec::new();
    let end = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while let Some(left) = end.checked_duration_since(std::time::Instant::now()) {
        match d.stderr.recv_timeout(left) {
            Ok(l) if l.contains(&format!("master {old}: exiting")) => break,
            Ok(l) => lines.push(l),
            Err(_) => break,
        }
    }
    assert_eq!(d.wait(30), Some(0), "the old master drained and stopped");
    assert!(
        slow.join().unwrap().is_some(),
        "the slow request was answered"
    );
    let about_new: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains(&format!("master {old}:")) && l.contains(&format!("(pid {new})")))
        .collect();
    assert!(
        about_new
            .iter()
            .all(|l| !l.contains("upgrade failed") && !l.contains("still serving")),
        "{about_new:#?}"
    );
    assert!(
        about_new
            .iter()
            .any(|l| l.contains("while this master stops: nothing serves once its drain ends")),
        "{lines:#?}"
    );
}

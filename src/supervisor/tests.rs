//! The master loop driven for real: a master forked from the test process runs fake workers
//! (no Python) or the real server core with a Rust app, and the tests talk to it over
//! loopback and signal it by PID.
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;

use super::testkit::*;
use super::{boot as master, spawn, RunOptions};

#[test]
fn two_workers_serve_and_a_killed_worker_is_replaced() {
    two_workers_serve_and_a_killed_worker_is_replaced_with(fake_worker)
}

#[test]
fn two_workers_serve_and_a_killed_worker_is_replaced_real_server() {
    two_workers_serve_and_a_killed_worker_is_replaced_with(server_worker)
}

fn two_workers_serve_and_a_killed_worker_is_replaced_with(body: super::WorkerBody) {
    let mut s = settings(vec![free_port()]);
    s.workers = 2;
    let mut m = TestMaster::start_env(s, None, Vec::new(), body);
    let mut pids = std::collections::HashSet::new();
    assert!(
        eventually(20, || {
            if let Some(b) = ask(m.addr, "/") {
                pids.insert(b[0].clone());
            }
            pids.len() == 2
        }),
        "both workers answer"
    );
    let victim: i32 = pids.iter().next().unwrap().parse().unwrap();
    kill(Pid::from_raw(victim), Signal::SIGKILL).unwrap();
    let mut failures = 0;
    let mut seen_new = false;
    assert!(
        eventually(20, || {
            match ask(m.addr, "/") {
                Some(b) => seen_new |= !pids.contains(&b[0]),
                None => failures += 1,
            }
            seen_new
        }),
        "a replacement worker answers"
    );
    assert_eq!(failures, 0);
    m.signal(Signal::SIGTERM);
    assert_eq!(m.wait(20), Some(0));
    assert!(
        TcpStream::connect(m.addr).is_err(),
        "nothing listens after exit"
    );
}

#[test]
fn worker_failing_at_boot_stops_master_with_its_code() {
    for (ident, code) in [("fail4", 4), ("fail3", 3)] {
        let mut s = settings(vec![free_port()]);
        s.ident = Some(ident.into());
        s.workers = 2;
        let mut m = TestMaster::start(s, None);
        assert_eq!(m.wait(10), Some(code), "{ident}");
    }
}

#[test]
fn term_finishes_in_flight_request_then_exits_0() {
    term_finishes_in_flight_request_then_exits_0_with(fake_worker)
}

#[test]
fn term_finishes_in_flight_request_then_exits_0_real_server() {
    term_finishes_in_flight_request_then_exits_0_with(server_worker)
}

fn term_finishes_in_flight_request_then_exits_0_with(body: super::WorkerBody) {
    let mut m = TestMaster::start_env(settings(vec![free_port()]), None, Vec::new(), body);
    assert!(eventually(20, || ask(m.addr, "/").is_some()));
    let addr = m.addr;
    let slow = std::thread::spawn(move || ask(addr, "/sleep"));
    std::thread::sleep(Duration::from_millis(300));
    m.signal(Signal::SIGTERM);
    assert!(
        slow.join().unwrap().is_some(),
        "in-flight request completes"
    );
    assert_eq!(m.wait(20), Some(0));
    assert!(TcpStream::connect(addr).is_err());
}

#[test]
fn second_int_stops_at_once() {
    second_int_stops_at_once_with(fake_worker)
}

#[test]
fn second_int_stops_at_once_real_server() {
    second_int_stops_at_once_with(server_worker)
}

fn second_int_stops_at_once_with(body: super::WorkerBody) {
    let mut s = settings(vec![free_port()]);
    s.graceful_timeout = 60;
    let mut m = TestMaster::start_env(s, None, Vec::new(), body);
    assert!(eventually(20, || ask(m.addr, "/").is_some()));
    let addr = m.addr;
    // A request that keeps the fake worker busy long after the master must be gone.
    let _slow = std::thread::spawn(move || ask(addr, "/sleep"));
    std::thread::sleep(Duration::from_millis(200));
    m.signal(Signal::SIGINT);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(m.code, None);
    m.signal(Signal::SIGINT);
    assert_eq!(m.wait(5), Some(0));
}

#[test]
fn reload_under_load_loses_nothing_and_applies_new_settings() {
    reload_under_load_loses_nothing_and_applies_new_settings_with(fake_worker)
}

#[test]
fn reload_under_load_loses_nothing_and_applies_new_settings_real_server() {
    reload_under_load_loses_nothing_and_applies_new_settings_with(server_worker)
}

fn reload_under_load_loses_nothing_and_applies_new_settings_with(body: super::WorkerBody) {
    let dir = tempfile::tempdir().unwrap();
    let ident_file = dir.path().join("ident");
    std::fs::write(&ident_file, "one").unwrap();
    let mut s = settings(vec![free_port()]);
    s.workers = 2;
    let base = s.clone();
    let f = ident_file.clone();
    let reload: super::ReloadFn = Box::new(move || {
        let ident = std::fs::read_to_string(&f).map_err(|e| e.to_string())?;
        if ident == "broken" {
            return Err("line 3: bad value".into());
        }
        let mut s = base.clone();
        s.ident = Some(ident);
        Ok(s)
    });
    let mut m = TestMaster::start_env(s, Some(reload), Vec::new(), body);
    let addr = m.addr;
    assert!(eventually(20, || ask(addr, "/").is_some()));

    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let loaders: Vec<_> = (0..4)
        .map(|_| {
            let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
            std::thread::spawn(move || {
                let end = Instant::now() + Duration::from_secs(60);
                while !stop.load(Ordering::SeqCst) && Instant::now() < end {
                    match ask(addr, "/") {
                        Some(_) => ok.fetch_add(1, Ordering::SeqCst),
                        None => failed.fetch_add(1, Ordering::SeqCst),
                    };
                }
            })
        })
        .collect();

    // A broken config: logged, old workers keep serving.
    std::fs::write(&ident_file, "broken").unwrap();
    m.signal(Signal::SIGHUP);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(ask(addr, "/").unwrap()[2], "one");

    std::fs::write(&ident_file, "two").unwrap();
    m.signal(Signal::SIGHUP);
    assert!(eventually(30, || ask(addr, "/").is_some_and(|b| b[2] == "two")));
    // Every answer after the switch comes from the new generation.
    assert!(eventually(30, || (0..10)
        .all(|_| ask(addr, "/").is_some_and(|b| b[1] == "2"))));
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::SeqCst);
    for l in loaders {
        l.join().unwrap();
    }
    assert!(ok.load(Ordering::SeqCst) > 100, "load actually ran");
    assert_eq!(
        failed.load(Ordering::SeqCst),
        0,
        "no request failed during reloads"
    );
    m.signal(Signal::SIGTERM);
    assert_eq!(m.wait(20), Some(0));
}

#[test]
fn ttin_and_ttou_change_the_worker_count() {
    let m = TestMaster::start(settings(vec![free_port()]), None);
    assert!(eventually(20, || ask(m.addr, "/").is_some()));
    m.signal(Signal::SIGTTIN);
    let mut pids = std::collections::HashSet::new();
    assert!(eventually(20, || {
        if let Some(b) = ask(m.addr, "/") {
            pids.insert(b[0].clone());
        }
        pids.len() == 2
    }));
    m.signal(Signal::SIGTTOU);
    // Eventually only one PID answers, many times in a row.
    assert!(eventually(20, || {
        let got: std::collections::HashSet<_> = (0..20)
            .filter_map(|_| ask(m.addr, "/"))
            .map(|b| b[0].clone())
            .collect();
        got.len() == 1
    }));
}

#[test]
fn workers_run_as_nobody_seen_from_proc() {
    if !nix::unistd::geteuid().is_root() {
        return; // the privilege drop needs root; CI runs as root
    }
    let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
    let mut s = settings(vec![free_port()]);
    s.user = Some("nobody".into());
    let m = TestMaster::start(s, None);
    let mut body = None;
    assert!(eventually(20, || {
        body = ask(m.addr, "/");
        body.is_some()
    }));
    let body = body.unwrap();
    let uid = nobody.uid.as_raw();
    assert_eq!(body[3], format!("{uid},{uid},{uid}"));
    let status = std::fs::read_to_string(format!("/proc/{}/status", body[0])).unwrap();
    let uids = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    let ids: Vec<u32> = uids
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().unwrap())
        .collect();
    assert_eq!(ids, vec![uid; 4], "real, effective, saved, fs uid");
    let comm = std::fs::read_to_string(format!("/proc/{}/comm", body[0])).unwrap();
    assert_eq!(comm.trim(), "waitressd-w1");
    let comm = std::fs::read_to_string(format!("/proc/{}/comm", m.pid)).unwrap();
    assert_eq!(comm.trim(), "waitressd-m");
}

#[test]
fn pidfile_and_notify_lifecycle() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("run.pid");
    let sock_path = dir.path().join("notify");
    let sock = std::os::unix::net::UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut s = settings(vec![free_port()]);
    s.pidfile = Some(pidfile.clone());
    let env = vec![("NOTIFY_SOCKET".to_string(), sock_path.display().to_string())];
    let mut m = TestMaster::start_env(s, None, env, fake_worker);
    let mut buf = [0u8; 512];
    let n = sock.recv(&mut buf).unwrap();
    let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(msg.contains("READY=1"), "{msg}");
    assert!(msg.contains(&format!("MAINPID={}", m.pid)), "{msg}");
    assert_eq!(
        std::fs::read_to_string(&pidfile).unwrap().trim(),
        m.pid.to_string()
    );
    m.signal(Signal::SIGHUP);
    let n = sock.recv(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).contains("RELOADING=1"));
    let n = sock.recv(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).contains("READY=1"));
    m.signal(Signal::SIGTERM);
    let n = sock.recv(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).contains("STOPPING=1"));
    assert_eq!(m.wait(20), Some(0));
    assert!(!pidfile.exists(), "pidfile removed at exit");
}

#[test]
fn a_live_pidfile_is_a_boot_error() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("run.pid");
    std::fs::write(&pidfile, format!("{}\n", std::process::id())).unwrap();
    let mut s = settings(vec![free_port()]);
    s.pidfile = Some(pidfile.clone());
    let mut m = TestMaster::start(s, None);
    assert_eq!(m.wait(10), Some(3));
    assert_eq!(
        std::fs::read_to_string(&pidfile).unwrap().trim(),
        std::process::id().to_string()
    );
}

#[test]
fn daemon_mode_detaches_once_ready_and_stops_on_term() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("d.pid");
    let mut s = settings(vec![free_port()]);
    s.pidfile = Some(pidfile.clone());
    let addr = s.listen[0];
    let foreground = spawn::fork_child(move || {
        let opts = RunOptions {
            daemon: true,
            reload: None,
        };
        match master::run(s, opts, fake_worker) {
            Ok(()) => 0,
            Err(e) => e.exit_code(),
        }
    })
    .unwrap();
    // The foreground process exits 0 only once the workers are ready.
    assert_eq!(
        waitpid(foreground, None).unwrap(),
        WaitStatus::Exited(foreground, 0)
    );
    assert!(
        ask(addr, "/").is_some(),
        "serving as soon as the foreground exits"
    );
    let daemon: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_ne!(daemon, foreground.as_raw());
    let sid = nix::unistd::getsid(Some(Pid::from_raw(daemon))).unwrap();
    assert_eq!(sid.as_raw(), daemon, "the daemon leads its own session");
    kill(Pid::from_raw(daemon), Signal::SIGTERM).unwrap();
    assert!(eventually(20, || !pidfile.exists()));
}

#[test]
fn unknown_user_and_port_in_use_are_boot_errors() {
    let mut s = settings(vec![free_port()]);
    s.user = Some("no-such-user-for-waitressd".into());
    assert_eq!(TestMaster::start(s, None).wait(10), Some(3));
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let s = settings(vec![taken.local_addr().unwrap()]);
    assert_eq!(TestMaster::start(s, None).wait(10), Some(3));
}

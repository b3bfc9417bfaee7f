//! systemd: sd_notify states on `NOTIFY_SOCKET`, and `LISTEN_FDS` socket activation used
//! instead of binding.
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::Duration;

use crate::util::{bin, Daemon};

use super::{apps, ask, command, write_ini};

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

/// A USR2 whose new master cannot load the app leaves the old master serving, and says nothing
/// to systemd but the old master's MAINPID=: the failing new master used to send STOPPING=1
/// (NotifyAccess=all accepts it), which put the unit in stop-sigterm, and TimeoutStopSec later
/// systemd SIGKILLed the old master that was still serving.
#[test]
fn failed_usr2_upgrade_never_tells_systemd_the_service_is_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let sock_path = dir.path().join("notify");
    let sock = std::os::unix::net::UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let module = dir.path().join("deployed.py");
    std::fs::copy(apps().join("supapp.py"), &module).unwrap();
    let ini = write_ini(
        dir.path(),
        "deployed:make_app",
        "one",
        "listen = 127.0.0.1:0",
    );
    let mut c = command(&ini);
    c.env("PYTHONPATH", dir.path())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("NOTIFY_SOCKET", &sock_path);
    let mut d = Daemon::start_with(&mut c, 1);
    let recv = || {
        let mut buf = [0u8; 1024];
        let n = sock.recv(&mut buf).expect("notification");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    assert!(recv().contains("READY=1"));
    std::fs::write(&module, "raise ImportError('half-installed upgrade')\n").unwrap();
    d.signal(libc::SIGUSR2);
    // Every notification until the old master names itself again after the failure.
    let mut seen = Vec::new();
    loop {
        let m = recv();
        seen.push(m.clone());
        if m.contains(&format!("MAINPID={}", d.pid())) {
            break;
        }
    }
    assert!(
        !seen.iter().any(|m| m.contains("STOPPING=1")),
        "notifications during the failed upgrade: {seen:?}"
    );
    assert!(ask(&d.addr(), "/").is_some(), "the old master serves");
    d.signal(libc::SIGTERM);
    assert!(recv().contains("STOPPING=1"), "its own stop still says so");
    assert_eq!(d.wait(30), Some(0));
}

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

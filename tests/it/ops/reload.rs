//! `waitressd reload`: HUP and wait for the outcome (the ExecReload= of waitressd@.service).
use std::process::Command;

use super::{apps, eventually};
use crate::util::{bin, get, Daemon};

fn reload(pid: i32) -> (i32, String) {
    let out = Command::new(bin())
        .args(["reload", "--pid", &pid.to_string(), "--timeout", "60"])
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn reload_subcommand_waits_for_the_new_workers_and_fails_when_abandoned() {
    let dir = tempfile::tempdir().unwrap();
    let ini = dir.path().join("ops.ini");
    let good = "[app:main]\nuse = call:opsapp:factory\n\n[server:main]\nuse = egg:waitress#main\nlisten = 127.0.0.1:0\n";
    std::fs::write(&ini, good).unwrap();
    let mut cmd = Command::new(bin());
    cmd.arg(&ini)
        .env("PYTHONPATH", apps())
        .current_dir(dir.path());
    let mut d = Daemon::start_with(&mut cmd, 1);
    assert!(eventually(30, || get(&d.addr(), "/").0 == 200));
    let (code, text) = reload(d.pid());
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("reloaded (generation 2)"), "{text}");
    // A bad configuration: abandoned at once.
    std::fs::write(&ini, good.replace("listen", "threads = none\nlisten")).unwrap();
    let (code, text) = reload(d.pid());
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("threads"), "{text}");
    // An app that cannot load: the new workers fail, the old ones keep serving.
    std::fs::write(
        &ini,
        good.replace("opsapp:factory", "opsapp:no_such_factory"),
    )
    .unwrap();
    let (code, text) = reload(d.pid());
    assert_eq!(code, 1, "{text}");
    assert_eq!(get(&d.addr(), "/").0, 200);
    // Nothing to signal: exit 3 with a message.
    let (code, text) = reload(i32::MAX - 1);
    assert_eq!(code, 3, "{text}");
    d.signal(libc::SIGTERM);
    assert_eq!(d.wait(30), Some(0));
}

/// `waitressd reload --pidfile` on a pidfile left by a master that died, whose PID another
/// program has since been given, refuses (exit 3) instead of sending that program a HUP (which
/// kills most programs); a PID nobody has is named as not running.
#[test]
fn reload_never_signals_a_pid_that_is_not_waitressd() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("app.pid");
    let mut other = crate::util::spawn_sleep();
    std::fs::write(&pidfile, format!("{}\n", other.id())).unwrap();
    let out = Command::new(bin())
        .args(["reload", "--pidfile", pidfile.to_str().unwrap()])
        .args(["--timeout", "5"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("\"sleep\", not waitressd: not signalled"),
        "{err}"
    );
    assert!(err.contains("--pid"), "{err}");
    assert!(
        other.try_wait().unwrap().is_none(),
        "the other program was signalled"
    );
    let _ = other.kill();
    let _ = other.wait();
    let out = Command::new(bin())
        .args(["reload", "--pidfile", pidfile.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("is not running"), "{err}");
}

/// A PID that is not a number is named as such, with where it came from (it was "no master
/// PID", as if none had been given).
#[test]
fn reload_names_an_invalid_pid() {
    for (args, want) in [
        (&["--pid", "abc"][..], "invalid PID 'abc' (--pid)"),
        (&["--pid", "-3"][..], "invalid PID '-3' (--pid)"),
    ] {
        let out = Command::new(bin())
            .arg("reload")
            .args(args)
            .env_remove("MAINPID")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(want), "{want:?} not in {err}");
    }
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("app.pid");
    std::fs::write(&pidfile, "garbage\n").unwrap();
    let out = Command::new(bin())
        .args(["reload", "--pidfile", pidfile.to_str().unwrap()])
        .env_remove("MAINPID")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    let want = format!("invalid PID 'garbage' (pidfile {})", pidfile.display());
    assert!(err.contains(&want), "{want:?} not in {err}");
}

/// A reload whose new workers take longer than `--timeout` to load the app: exit 3, and the
/// message says the reload goes on and how to wait longer (it said only "no outcome"); the
/// reload then completes on its own.
#[test]
fn reload_past_its_timeout_says_the_reload_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("slowload.py"),
        "import os, time\n\
         time.sleep(float(open(os.path.join(os.path.dirname(__file__), 'delay')).read()))\n\
         def app(environ, start_response):\n    \
             start_response('200 OK', [('Content-Length', '2')])\n    \
             return [b'ok']\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("delay"), "0").unwrap();
    let mut cmd = Command::new(bin());
    cmd.args(["slowload:app", "--listen", "127.0.0.1:0"])
        .current_dir(dir.path());
    let mut d = Daemon::start_with(&mut cmd, 1);
    assert!(eventually(30, || get(&d.addr(), "/").0 == 200));
    std::fs::write(dir.path().join("delay"), "3").unwrap();
    let out = Command::new(bin())
        .args(["reload", "--pid", &d.pid().to_string(), "--timeout", "1"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("within 1s"), "{err}");
    assert!(
        err.contains("the reload goes on") && err.contains("--timeout"),
        "{err}"
    );
    // It did go on: the new workers serve (the old ones kept serving meanwhile).
    assert_eq!(get(&d.addr(), "/").0, 200);
    let mut complete = false;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !complete && std::time::Instant::now() < deadline {
        if let Ok(l) = d.stderr.recv_timeout(std::time::Duration::from_millis(100)) {
            complete = l.contains("reload complete (generation 2)");
        }
    }
    assert!(complete, "no 'reload complete' line");
    d.signal(libc::SIGTERM);
    assert_eq!(d.wait(30), Some(0));
}

//! `--reload`: an edited module is served within seconds under load with zero failed requests;
//! a syntax error keeps the old workers (traceback printed once); the fix is picked up.
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::apps;
use crate::util::{get, Daemon};

/// The version the app reports, or None for a failed request (refused, reset, not 200).
fn version(addr: &str) -> Option<i64> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    s.write_all(b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let (status, _, body) = crate::util::split_response(&raw);
    if status != 200 {
        return None;
    }
    serde_json::from_slice::<serde_json::Value>(&body).ok()?["version"].as_i64()
}

/// Waits (bounded) until the load sees `want`; seconds it took.
fn until_version(seen: &Mutex<i64>, want: i64, secs: u64) -> Option<f64> {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(secs) {
        if *seen.lock().unwrap() == want {
            return Some(t.elapsed().as_secs_f64());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

fn write_version(path: &std::path::Path, line: &str) {
    let src = std::fs::read_to_string(apps().join("envapp.py")).unwrap();
    let src = src.replace("VERSION = 1", line);
    // Save as editors do: a new file renamed over the old one.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, src).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[test]
fn reload_picks_up_an_edited_module_under_load_and_survives_a_syntax_error() {
    let dir = tempfile::tempdir().unwrap();
    let module = dir.path().join("reloadapp.py");
    write_version(&module, "VERSION = 1");
    let d = Daemon::start(
        &[
            "--chdir",
            dir.path().to_str().unwrap(),
            "reloadapp:app",
            "--reload",
            "--listen",
            "127.0.0.1:0",
            "--graceful-timeout",
            "5",
        ],
        dir.path(),
        1,
    );
    let addr = d.addr();
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let seen = Arc::new(Mutex::new(0i64));
    let load: Vec<_> = (0..2)
        .map(|_| {
            let (stop, ok, failed, seen, addr) = (
                stop.clone(),
                ok.clone(),
                failed.clone(),
                seen.clone(),
                addr.clone(),
            );
            std::thread::spawn(move || {
                // Bounded: the test stops it, and it ends after 120 s whatever happens.
                let t = Instant::now();
                while !stop.load(Ordering::SeqCst) && t.elapsed() < Duration::from_secs(120) {
                    match version(&addr) {
                        Some(v) => {
                            ok.fetch_add(1, Ordering::SeqCst);
                            *seen.lock().unwrap() = v;
                        }
                        None => {
                            failed.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                }
            })
        })
        .collect();
    assert!(until_version(&seen, 1, 20).is_some());
    // Let the watcher start (it logs once it watches).
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(20) {
        if let Ok(l) = d.stderr.recv_timeout(Duration::from_millis(50)) {
            if l.contains("--reload: watching") {
                break;
            }
        }
    }
    write_version(&module, "VERSION = 22");
    let took = until_version(&seen, 22, 20).expect("the edit was served");
    eprintln!("--reload: edited module served after {took:.2} s");
    assert!(took < 10.0, "took {took} s");
    // A syntax error: the old workers keep serving version 22.
    write_version(&module, "VERSION = (");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(*seen.lock().unwrap(), 22);
    let mut lines = Vec::new();
    while let Ok(l) = d.stderr.recv_timeout(Duration::from_millis(200)) {
        lines.push(l);
    }
    let tracebacks = lines
        .iter()
        .filter(|l| l.starts_with("SyntaxError"))
        .count();
    assert_eq!(tracebacks, 1, "{lines:#?}");
    // The fix is picked up.
    write_version(&module, "VERSION = 333");
    assert!(
        until_version(&seen, 333, 20).is_some(),
        "the fix was served"
    );
    stop.store(true, Ordering::SeqCst);
    for l in load {
        l.join().unwrap();
    }
    assert!(ok.load(Ordering::SeqCst) > 20, "the load ran");
    assert_eq!(failed.load(Ordering::SeqCst), 0, "no request failed");
}

#[test]
fn reload_watches_the_ini_file_and_extra_files() {
    let dir = tempfile::tempdir().unwrap();
    let ini = dir.path().join("app.ini");
    let extra = dir.path().join("templates.txt");
    std::fs::write(&extra, "a").unwrap();
    let write_ini = |ident: &str| {
        let text = format!(
            "[app:main]\npaste.app_factory = envapp_paste:factory\n\n[server:main]\n\
             use = egg:waitress#main\nlisten = 127.0.0.1:0\nident = {ident}\n"
        );
        let tmp = ini.with_extension("tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, &ini).unwrap();
    };
    write_ini("first");
    let d = Daemon::start(
        &[
            ini.to_str().unwrap(),
            "--pythonpath",
            apps().to_str().unwrap(),
            "--reload",
            "--reload-extra-file",
            extra.to_str().unwrap(),
        ],
        dir.path(),
        1,
    );
    let server = |addr: &str| {
        let (_, head, _) = get(addr, "/");
        head.lines()
            .find_map(|l| l.strip_prefix("Server: ").map(str::to_string))
            .unwrap_or_default()
    };
    let eventually = |want: &str| {
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(20) {
            if server(&d.addr()) == want {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    };
    assert!(eventually("first"));
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(20) {
        if let Ok(l) = d.stderr.recv_timeout(Duration::from_millis(50)) {
            if l.contains("--reload: watching") {
                break;
            }
        }
    }
    write_ini("second");
    assert!(eventually("second"), "the INI edit was applied");
    let mut lines = Vec::new();
    while let Ok(l) = d.stderr.recv_timeout(Duration::from_millis(300)) {
        lines.push(l);
    }
    std::fs::write(&extra, "b").unwrap();
    let t = Instant::now();
    let mut reloaded = false;
    while !reloaded && t.elapsed() < Duration::from_secs(20) {
        if let Ok(l) = d.stderr.recv_timeout(Duration::from_millis(50)) {
            reloaded = l.contains("templates.txt changed, reloading");
        }
    }
    assert!(reloaded, "the extra file's change reloads");
}

/// Modules an app imports only when serving (Django's views, on the first request) are
/// watched too: the list of imported modules is read again every second.
#[test]
fn reload_watches_modules_imported_after_start() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("lazyapp.py"),
        "def app(environ, start_response):\n    import lazyview\n    body = lazyview.TEXT.encode()\n    \
         start_response('200 OK', [('Content-Length', str(len(body)))])\n    return [body]\n",
    )
    .unwrap();
    let view = dir.path().join("lazyview.py");
    std::fs::write(&view, "TEXT = 'one'\n").unwrap();
    let d = Daemon::start(
        &[
            "--chdir",
            dir.path().to_str().unwrap(),
            "lazyapp:app",
            "--reload",
            "--listen",
            "127.0.0.1:0",
        ],
        dir.path(),
        1,
    );
    let body = |addr: &str| get(addr, "/").2;
    assert_eq!(body(&d.addr()), b"one");
    // The next rescan (within a second) adds lazyview.py; then edit it.
    std::thread::sleep(Duration::from_millis(2500));
    let tmp = view.with_extension("tmp");
    std::fs::write(&tmp, "TEXT = 'two!'\n").unwrap();
    std::fs::rename(&tmp, &view).unwrap();
    let t = Instant::now();
    while body(&d.addr()) != b"two!" && t.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(body(&d.addr()), b"two!");
}

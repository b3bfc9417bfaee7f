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
    let dir = tempfile::tempdir().unwrap();
    let ini = |server: &str| write_ini(dir.path(), "supapp:make_app", "one", server);
    let base = "listen = 127.0.0.1:0\nproc_name = first";
    let d = start(&ini(base), 1);
    let addr = d.addr();
    assert!(eventually(30, || ask(&addr, "/").is_some()));
    assert!(worker_title(d.pid()).contains("[first]"));
    let pidfile = dir.path().join("new.pid");
    ini(&format!(
        "listen = 127.0.0.1:0\nproc_name = second\npreload_app = true\npidfile = {}\n\
         status_listen = 127.0.0.1:0",
        pidfile.display()
    ));
    for generation in [2, 3] {
        // Twice: the second reload still runs what the first kept, and says so again.
        let lines = hup(&d, generation);
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
    assert!(eventually(30, || ask(&addr, "/").is_some()));
    assert!(worker_title(d.pid()).contains("[first]"));
    assert!(!pidfile.exists());
    // Back to the first file: nothing differs from what runs, no warning.
    ini(base);
    let lines = hup(&d, 4);
    assert_eq!(count(&lines, "a changed"), 0, "{}", lines.join("\n"));
    assert!(eventually(30, || ask(&addr, "/").is_some()));
}

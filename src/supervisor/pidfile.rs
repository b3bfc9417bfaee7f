//! The pidfile: written atomically (temp file + rename), a stale one replaced (its PID dead, or
//! reused by another program after a crash or a reboot), a live waitressd's refused, and removed
//! at exit only if it still names us.
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum PidFileError {
    #[error("pidfile {} names running process {pid} (another waitressd? stop it first, or set another pidfile)", path.display())]
    Running { path: PathBuf, pid: i32 },
    #[error("cannot write pidfile {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A written pidfile; removed on drop if it still holds our PID.
#[derive(Debug)]
pub struct PidFile {
    path: PathBuf,
    pid: i32,
}

/// The PID in a pidfile's text, if any.
fn parse(text: &str) -> Option<i32> {
    text.trim().parse::<i32>().ok().filter(|p| *p > 0)
}

/// Who has the PID a pidfile names.
#[derive(Debug, PartialEq)]
pub(super) enum Holder {
    /// Nobody: the file is stale.
    Gone,
    /// A waitressd (or a process we cannot look at): the file is live.
    Waitressd,
    /// Another program (its `comm`): the master died without removing the file and the PID
    /// was reused, so the file is stale. gunicorn and waitress-era init scripts refuse to
    /// start here until someone deletes the file by hand.
    Other(String),
}

/// Who has `pid` (also `control`'s: `waitressd reload` signals only a waitressd).
pub(super) fn holder(pid: i32) -> Holder {
    // kill(pid, 0): Ok or EPERM both mean a process with that PID exists.
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) {
        Ok(()) | Err(nix::Error::EPERM) => {}
        Err(_) => return Holder::Gone,
    }
    // A master's `comm` is `waitressd-m` (`title`), or before that the binary's name (ours,
    // whatever it was installed as).
    let comm = |p: &str| std::fs::read_to_string(format!("/proc/{p}/comm"));
    match (comm(&pid.to_string()), comm("self")) {
        (Ok(theirs), Ok(ours)) if !theirs.starts_with("waitressd") && theirs != ours => {
            Holder::Other(theirs.trim_end().to_string())
        }
        _ => Holder::Waitressd,
    }
}

/// The warning for a stale pidfile `path` that named `old`.
fn warn_stale(path: &Path, old: i32, was: Holder) {
    let why = match was {
        Holder::Other(comm) => format!("process {old} is now {comm:?}, not waitressd"),
        _ => format!("process {old} is gone"),
    };
    super::log_warn(&format!(
        "replacing stale pidfile {} ({why})",
        path.display()
    ));
}

impl PidFile {
    /// Refuses a pidfile that names a live process other than `pid` (checked before binding,
    /// so a second daemon started by mistake never touches the first one's sockets).
    /// `from`: the old master of a USR2 upgrade, whose pidfile this one takes over.
    pub fn check(path: &Path, pid: i32, from: Option<i32>) -> Result<(), PidFileError> {
        match std::fs::read_to_string(path)
            .ok()
            .as_deref()
            .and_then(parse)
        {
            Some(old) if old != pid && Some(old) != from && holder(old) == Holder::Waitressd => {
                Err(PidFileError::Running {
                    path: path.to_path_buf(),
                    pid: old,
                })
            }
            _ => Ok(()),
        }
    }

    /// Writes `pid` to `path` atomically. An existing file naming a live process other than
    /// `pid` is an error; one naming a dead process (stale) is replaced with a warning.
    pub fn create(path: &Path, pid: i32) -> Result<PidFile, PidFileError> {
        let io = |source| PidFileError::Io {
            path: path.to_path_buf(),
            source,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => {
                if let Some(old) = parse(&text).filter(|old| *old != pid) {
                    match holder(old) {
                        Holder::Waitressd => {
                            return Err(PidFileError::Running {
                                path: path.to_path_buf(),
                                pid: old,
                            })
                        }
                        was => warn_stale(path, old, was),
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(e)),
        }
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let mut tmp = tempfile::Builder::new()
            .prefix(".waitressd-pid")
            .tempfile_in(dir)
            .map_err(io)?;
        writeln!(tmp, "{pid}").map_err(io)?;
        tmp.as_file().sync_all().map_err(io)?;
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o644))
                .map_err(io)?;
        }
        tmp.persist(path).map_err(|e| io(e.error))?;
        Ok(PidFile {
            path: path.to_path_buf(),
            pid,
        })
    }

    /// A USR2 upgrade: the new master writes its PID over the old master's.
    pub fn take_over(path: &Path, pid: i32, from: i32) -> Result<PidFile, PidFileError> {
        if std::fs::read_to_string(path)
            .ok()
            .as_deref()
            .and_then(parse)
            == Some(from)
        {
            // `create` refuses a file naming a live process: this one is handed over.
            let _ = std::fs::remove_file(path);
        }
        PidFile::create(path, pid)
    }

    /// A failed upgrade: the file names the dead new master; write our PID back.
    pub fn take_back(&self) -> Result<(), PidFileError> {
        PidFile::create(&self.path, self.pid).map(std::mem::forget)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        if std::fs::read_to_string(&self.path)
            .ok()
            .as_deref()
            .and_then(parse)
            == Some(self.pid)
        {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_table() {
        for (text, want) in [
            ("123\n", Some(123)),
            (" 7 ", Some(7)),
            ("", None),
            ("-1", None),
            ("x", None),
        ] {
            assert_eq!(parse(text), want, "{text:?}");
        }
    }

    #[test]
    fn lifecycle_written_stale_replaced_live_refused_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.pid");
        let me = std::process::id() as i32;
        // A stale file (a PID that cannot exist) is replaced.
        std::fs::write(&path, "999999999\n").unwrap();
        let pf = PidFile::create(&path, me).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("{me}\n"));
        // A second daemon pointing at it is refused: we are alive.
        match PidFile::create(&path, me + 1) {
            Err(PidFileError::Running { pid, .. }) => assert_eq!(pid, me),
            other => panic!("{other:?}"),
        }
        drop(pf);
        assert!(!path.exists());
        // A PID reused by another program after a crash: stale, replaced.
        let mut other = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        // Until its exec, the child is a copy of this test binary (named waitressd-…).
        let comm = format!("/proc/{}/comm", other.id());
        for _ in 0..500 {
            if std::fs::read_to_string(&comm).is_ok_and(|c| c == "sleep\n") {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        std::fs::write(&path, format!("{}\n", other.id())).unwrap();
        assert_eq!(
            holder(other.id() as i32),
            Holder::Other("sleep".to_string())
        );
        PidFile::check(&path, me, None).unwrap();
        let pf = PidFile::create(&path, me).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("{me}\n"));
        drop(pf);
        let _ = other.kill();
        let _ = other.wait();
        // Not removed when someone else's PID is in it by then.
        let pf = PidFile::create(&path, me).unwrap();
        std::fs::write(&path, "1\n").unwrap();
        drop(pf);
        assert!(path.exists());
    }
}

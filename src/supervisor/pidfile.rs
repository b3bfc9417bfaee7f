//! The pidfile: written atomically (temp file + rename), a stale one replaced (its PID dead, or
//! reused by another program after a crash or a reboot), a live waitressd's refused, and removed
//! at exit only if it still names us.
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum PidFileError {
    #[error("pidfile {} names running process {pid} (another waitressd? stop it first, or set another pidfile)", path.display())]
    Running { path: PathBuf, pid: i32 },
    #[error("cannot write pidfile {}: {source}{}", path.display(), fix(path, source))]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The pidfile's directory (`.` for a bare name).
fn dir_of(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// The fix for a pidfile that cannot be written: its directory's.
fn fix(path: &Path, e: &std::io::Error) -> String {
    let dir = dir_of(path).display();
    match e.kind() {
        std::io::ErrorKind::NotFound => {
            format!(" (its directory {dir} does not exist: create it, or set another pidfile)")
        }
        std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem => format!(
            " (the pidfile is written in its directory {dir}, which must be writable by the user \
             waitressd starts as, then renamed over it: fix its permissions, or set another pidfile)"
        ),
        _ => String::new(),
    }
}

/// The OS error alone: tempfile's errors name the temporary file (`at path
/// "/dir/.waitressd-pidLeHJuB"`), a name the user never gave, and keep only the error's kind.
fn os_error(e: std::io::Error) -> std::io::Error {
    use std::io::ErrorKind as K;
    if e.raw_os_error().is_some() {
        return e;
    }
    let errno = match e.kind() {
        K::NotFound => libc::ENOENT,
        K::PermissionDenied => libc::EACCES,
        K::ReadOnlyFilesystem => libc::EROFS,
        K::NotADirectory => libc::ENOTDIR,
        K::StorageFull => libc::ENOSPC,
        _ => return e,
    };
    std::io::Error::from_raw_os_error(errno)
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
            source: os_error(source),
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
        let dir = dir_of(path);
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

    /// The message names the pidfile and its directory with the fix, never tempfile's
    /// temporary name.
    #[test]
    fn a_pidfile_in_a_missing_directory_names_the_directory_not_the_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("no-such-dir/w.pid");
        let e = PidFile::create(&path, 1).unwrap_err().to_string();
        let want = format!(
            "cannot write pidfile {}: No such file or directory (os error 2) (its directory {} \
             does not exist: create it, or set another pidfile)",
            path.display(),
            dir.path().join("no-such-dir").display()
        );
        assert_eq!(e, want);
        assert!(!e.contains(".waitressd-pid"), "{e}");
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

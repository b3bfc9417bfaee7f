//! The log files (`error_log`, `access_log`), opened by the master while it is still root:
//! created if missing and handed to `user`/`group`, so workers that dropped privileges can
//! write and reopen them even in a root-owned directory such as `/var/log/waitressd`. On USR1
//! the master reopens first (creating the files logrotate renamed away), then tells the
//! workers, which reopen by path.
use std::os::fd::AsFd;
use std::path::Path;

use crate::config::Settings;
use crate::net::Identity;

/// The log files of `s` that are files (not `-`, standard error), with their keys.
fn files(s: &Settings) -> impl Iterator<Item = (&'static str, &Path)> {
    [("error_log", &s.error_log), ("access_log", &s.access_log)]
        .into_iter()
        .filter_map(|(key, path)| Some((key, path.as_deref().filter(|p| *p != Path::new("-"))?)))
}

/// Opens `path` for appending, creating it; Err = one line naming where `key` was set, the
/// path and the fix.
fn open(s: &Settings, key: &str, path: &Path) -> Result<std::fs::File, String> {
    crate::logging::open_append(path).map_err(|e| {
        let fix = if path.is_dir() {
            format!("it is a directory: point {key} at a file in it")
        } else {
            format!(
                "the master opens it before dropping privileges: create its directory, or \
                 point {key} elsewhere"
            )
        };
        s.given.blame(
            key,
            format!("cannot open {key} {}: {e} ({fix})", path.display()),
        )
    })
}

/// `--check-config`: opens every log file as `prepare` does at start (same user, same flags,
/// same message), then removes the ones the check itself created, so none is left behind.
pub fn check(s: &Settings) -> Result<(), String> {
    for (key, path) in files(s) {
        let existed = path.symlink_metadata().is_ok();
        drop(open(s, key, path)?);
        if !existed {
            let _ = std::fs::remove_file(path);
        }
    }
    Ok(())
}

/// Opens (creating) every log file of `s` and gives it to the workers' identity. Err = one line
/// naming the key, the path and the fix.
pub fn prepare(s: &Settings, identity: Option<&Identity>) -> Result<(), String> {
    for (key, path) in files(s) {
        let f = open(s, key, path)?;
        if let Some(id) = identity {
            let meta = f.metadata().map_err(|e| e.to_string())?;
            let (uid, gid) = (id.uid.unwrap_or(meta_uid(&meta)), id.gid);
            if meta_uid(&meta) != uid || meta_gid(&meta) != gid {
                // Only root may give a file away; a master that is not root keeps its own.
                if let Err(e) = nix::unistd::fchown(
                    f.as_fd(),
                    Some(nix::unistd::Uid::from_raw(uid)),
                    Some(nix::unistd::Gid::from_raw(gid)),
                ) {
                    super::log_warn(&format!(
                        "cannot hand {key} {} to uid {uid} gid {gid}: {e}",
                        path.display()
                    ));
                }
            }
        }
    }
    Ok(())
}

fn meta_uid(m: &std::fs::Metadata) -> u32 {
    std::os::unix::fs::MetadataExt::uid(m)
}

fn meta_gid(m: &std::fs::Metadata) -> u32 {
    std::os::unix::fs::MetadataExt::gid(m)
}

/// Points this process's standard error at `error_log`, or back at the original one when it
/// is unset; errors are logged.
pub fn redirect(s: &Settings) {
    match &s.error_log {
        Some(p) => {
            if let Err(e) = crate::logging::redirect_stderr(p) {
                super::log_error(&format!("cannot reopen error_log {}: {e}", p.display()));
            }
        }
        None => crate::logging::restore_stderr(),
    }
}

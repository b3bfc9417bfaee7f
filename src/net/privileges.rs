//! Dropping root after binding, as nginx does for its workers: setgroups, setgid, setuid (all
//! three ids each), then verify that root cannot be regained. Any failure is fatal (exit 3).
use std::ffi::CString;

use nix::unistd::{Gid, Group, Uid, User};

/// Why the identity could not be resolved or assumed.
#[derive(Debug, thiserror::Error)]
pub enum PrivilegeError {
    #[error("unknown user {0:?}")]
    UnknownUser(String),
    #[error("unknown group {0:?}")]
    UnknownGroup(String),
    #[error("cannot look up {what} {name:?}: {source}")]
    Lookup {
        what: &'static str,
        name: String,
        source: nix::Error,
    },
    #[error("cannot drop privileges ({step}): {source}{}", if *source == nix::Error::EPERM {
        " (switching to user/group needs root: start waitressd as root, or remove user = and \
         group = to run as the current user)"
    } else { "" })]
    Drop {
        step: &'static str,
        source: nix::Error,
    },
    #[error("privilege drop did not stick: {0}")]
    Verify(String),
}

impl PrivilegeError {
    /// The setting a lookup failure is about (`user` or `group`); None for a failed drop.
    pub fn setting(&self) -> Option<&'static str> {
        match self {
            PrivilegeError::UnknownUser(_) => Some("user"),
            PrivilegeError::UnknownGroup(_) => Some("group"),
            PrivilegeError::Lookup { what, .. } => Some(what),
            PrivilegeError::Drop { .. } | PrivilegeError::Verify(_) => None,
        }
    }
}

/// The umask the process started with: the one the first `set_umask` replaced.
static STARTED_WITH: std::sync::OnceLock<nix::sys::stat::Mode> = std::sync::OnceLock::new();

/// Sets the process umask to `umask` as configured, or, when it is unset (a reload took it out
/// of the file), back to the one the process started with; returns the one it replaces (None:
/// unset and never changed, nothing to do).
pub fn set_umask(mask: Option<u32>) -> Option<nix::sys::stat::Mode> {
    let mode = match mask {
        Some(m) => nix::sys::stat::Mode::from_bits_truncate(m as libc::mode_t),
        None => *STARTED_WITH.get()?,
    };
    let before = nix::sys::stat::umask(mode);
    let _ = STARTED_WITH.set(before);
    Some(before)
}

/// Who the workers run as: `user` and/or `group` settings, resolved once in the master.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// None when only `group` was given (the uid is kept).
    pub uid: Option<u32>,
    pub gid: u32,
    /// The user's name, for `initgroups` (supplementary groups from /etc/group).
    pub user_name: Option<String>,
}

fn lookup_user(spec: &str) -> Result<User, PrivilegeError> {
    let err = |source| PrivilegeError::Lookup {
        what: "user",
        name: spec.to_string(),
        source,
    };
    let found = match spec.parse::<u32>() {
        Ok(id) => User::from_uid(Uid::from_raw(id)).map_err(err)?,
        Err(_) => User::from_name(spec).map_err(err)?,
    };
    found.ok_or_else(|| PrivilegeError::UnknownUser(spec.to_string()))
}

fn lookup_group(spec: &str) -> Result<u32, PrivilegeError> {
    if let Ok(id) = spec.parse::<u32>() {
        // A numeric gid need not exist in /etc/group (containers often have none).
        return Ok(id);
    }
    let err = |source| PrivilegeError::Lookup {
        what: "group",
        name: spec.to_string(),
        source,
    };
    Group::from_name(spec)
        .map_err(err)?
        .map(|g| g.gid.as_raw())
        .ok_or_else(|| PrivilegeError::UnknownGroup(spec.to_string()))
}

impl Identity {
    /// Resolves `user`/`group` (names or numeric ids). None when neither is set. The group
    /// defaults to the user's primary group.
    pub fn resolve(
        user: Option<&str>,
        group: Option<&str>,
    ) -> Result<Option<Identity>, PrivilegeError> {
        let user = user.map(lookup_user).transpose()?;
        let gid = match (group, &user) {
            (Some(g), _) => lookup_group(g)?,
            (None, Some(u)) => u.gid.as_raw(),
            (None, None) => return Ok(None),
        };
        Ok(Some(Identity {
            uid: user.as_ref().map(|u| u.uid.as_raw()),
            gid,
            user_name: user.map(|u| u.name),
        }))
    }

    /// Owner for files the workers must use (unix socket): (uid, gid), keeping the current uid
    /// when only a group is set.
    pub fn file_owner(&self) -> (u32, u32) {
        (
            self.uid.unwrap_or_else(|| Uid::current().as_raw()),
            self.gid,
        )
    }

    /// Assumes this identity for the rest of the process's life, then checks that neither the
    /// old uid nor root can be regained.
    pub fn assume(&self) -> Result<(), PrivilegeError> {
        let step = |step| move |source| PrivilegeError::Drop { step, source };
        let gid = Gid::from_raw(self.gid);
        let already = Gid::effective() == gid
            && Gid::current() == gid
            && self
                .uid
                .is_none_or(|u| Uid::effective().as_raw() == u && Uid::current().as_raw() == u);
        if already && !Uid::effective().is_root() {
            // Started as that user already (no root to drop): nothing to change, only check.
            return self.verify();
        }
        // Supplementary groups first, while we still may change them.
        match &self.user_name {
            Some(name) => {
                let c = CString::new(name.as_str()).map_err(|_| PrivilegeError::Drop {
                    step: "initgroups",
                    source: nix::Error::EINVAL,
                })?;
                nix::unistd::initgroups(&c, gid).map_err(step("initgroups"))?;
            }
            None => nix::unistd::setgroups(&[gid]).map_err(step("setgroups"))?,
        }
        nix::unistd::setresgid(gid, gid, gid).map_err(step("setgid"))?;
        if let Some(uid) = self.uid {
            let uid = Uid::from_raw(uid);
            nix::unistd::setresuid(uid, uid, uid).map_err(step("setuid"))?;
        }
        self.verify()
    }

    /// Real, effective and saved ids are the target ones, and (for non-root targets) setuid(0)
    /// and setgid(0) fail.
    pub fn verify(&self) -> Result<(), PrivilegeError> {
        let g = nix::unistd::getresgid().map_err(|e| PrivilegeError::Verify(e.to_string()))?;
        if [g.real, g.effective, g.saved] != [Gid::from_raw(self.gid); 3] {
            return Err(PrivilegeError::Verify(format!(
                "gids are {}/{}/{}, wanted {}",
                g.real, g.effective, g.saved, self.gid
            )));
        }
        if let Some(uid) = self.uid {
            let u = nix::unistd::getresuid().map_err(|e| PrivilegeError::Verify(e.to_string()))?;
            if [u.real, u.effective, u.saved] != [Uid::from_raw(uid); 3] {
                return Err(PrivilegeError::Verify(format!(
                    "uids are {}/{}/{}, wanted {uid}",
                    u.real, u.effective, u.saved
                )));
            }
            if uid != 0 {
                if nix::unistd::setuid(Uid::from_raw(0)).is_ok() {
                    return Err(PrivilegeError::Verify("setuid(0) succeeded".into()));
                }
                if self.gid != 0 && nix::unistd::setgid(Gid::from_raw(0)).is_ok() {
                    return Err(PrivilegeError::Verify("setgid(0) succeeded".into()));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_table() {
        let nobody = User::from_name("nobody").unwrap().expect("nobody exists");
        let root_gid = Group::from_name("root").unwrap().map(|g| g.gid.as_raw());
        type Case<'a> = (Option<&'a str>, Option<&'a str>, Option<(Option<u32>, u32)>);
        let cases: Vec<Case> = vec![
            (None, None, None),
            (
                Some("nobody"),
                None,
                Some((Some(nobody.uid.as_raw()), nobody.gid.as_raw())),
            ),
            (Some("65534"), Some("1234"), Some((Some(65534), 1234))),
            (None, Some("4321"), Some((None, 4321))),
            (
                Some("0"),
                Some("root"),
                Some((Some(0), root_gid.unwrap_or(0))),
            ),
        ];
        for (u, g, want) in cases {
            let got = Identity::resolve(u, g).unwrap().map(|i| (i.uid, i.gid));
            assert_eq!(got, want, "user={u:?} group={g:?}");
        }
    }

    #[test]
    fn unknown_names_are_errors() {
        assert!(matches!(
            Identity::resolve(Some("no-such-user-xyz"), None),
            Err(PrivilegeError::UnknownUser(_))
        ));
        assert!(matches!(
            Identity::resolve(None, Some("no-such-group-xyz")),
            Err(PrivilegeError::UnknownGroup(_))
        ));
    }
}

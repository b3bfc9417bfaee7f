//! `Given`: where each setting of a `Settings` was given (file:line, flag or variable), so
//! that a failure found after validation (an unknown `user`, a log file that cannot be
//! opened) names the line to fix as a config error does.
use std::collections::BTreeMap;

use super::error::ValueError;
use super::raw::Raw;

/// Each given key's origin and value; defaults are absent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Given(BTreeMap<String, ValueError>);

impl Given {
    pub(super) fn from_raws(raws: &[Raw]) -> Given {
        Given(
            raws.iter()
                .map(|r| {
                    let at = ValueError {
                        origin: r.origin.clone(),
                        key: r.key.clone(),
                        value: r.value.clone(),
                        reason: String::new(),
                    };
                    (r.key.clone(), at)
                })
                .collect(),
        )
    }

    /// `reason` about `key`'s value, headed by where it was given
    /// (`FILE:LINE: [section] key = 'value': reason`, `--flag 'value': reason`), or as is
    /// when `key` has its default.
    pub fn blame(&self, key: &str, reason: impl Into<String>) -> String {
        let reason = reason.into();
        match self.0.get(key) {
            Some(at) => ValueError {
                reason,
                ..at.clone()
            }
            .to_string(),
            None => reason,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Origin;

    #[test]
    fn blame_heads_the_reason_with_where_the_key_was_given() {
        let raw = |key: &str, value: &str, origin| Raw {
            key: key.into(),
            value: value.into(),
            origin,
            base: "/".into(),
        };
        let given = Given::from_raws(&[
            raw(
                "user",
                "nobodyx",
                Origin::Ini {
                    file: "prod.ini".into(),
                    line: 7,
                    section: "server:main".into(),
                },
            ),
            raw("group", "staffx", Origin::Flag("--group".into())),
        ]);
        assert_eq!(
            given.blame("user", "unknown user"),
            "prod.ini:7: [server:main] user = 'nobodyx': unknown user"
        );
        assert_eq!(
            given.blame("group", "unknown group"),
            "--group 'staffx': unknown group"
        );
        assert_eq!(given.blame("access_log", "cannot open"), "cannot open");
    }
}

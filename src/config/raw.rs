//! The given settings: one `Raw` string per key and where it came from, the values converted
//! by the settings table (`Values`: what was given, else the default), and the value error
//! that points back at a raw setting (`err`). Shared by the settings builder and the files it
//! hands keys to (`edge`), and by the readers that produce raws (`layers`, `paste`).
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::defs::{self, Conv, Def};
use super::error::ValueError;
use super::values::{as_bool, as_list, py_int, py_strip, slash_fixed_str, str_iftruthy, IntError};
use super::{ConfigError, Origin};

/// One raw setting and where it came from.
#[derive(Debug, Clone)]
pub struct Raw {
    pub key: String,
    pub value: String,
    pub origin: Origin,
    /// Directory relative paths are resolved against (`here`, or the cwd for flags).
    pub base: PathBuf,
}

#[derive(Debug, Clone, PartialEq)]
enum Val {
    Str(String),
    Int(i128),
    Bool(bool),
    List(Vec<String>),
    Opt(Option<String>),
    Path(Option<PathBuf>),
    Empty,
}

fn convert(def: &Def, s: &str, base: &Path) -> Result<Val, String> {
    let int = |s: &str, base: u32| {
        py_int(s, base).map_err(|e| match e {
            IntError::Invalid if base == 8 => "invalid literal for int() with base 8".to_string(),
            IntError::Invalid => "invalid literal for int()".to_string(),
            IntError::TooLarge => "integer too large".to_string(),
        })
    };
    let v = match def.conv {
        Conv::Str => Val::Str(s.to_string()),
        Conv::Int => Val::Int(int(s, 10)?),
        // An octal key that is unset by default (`umask`): empty leaves it unset.
        Conv::Octal if def.default.is_none() && py_strip(s).is_empty() => Val::Opt(None),
        Conv::Octal => Val::Int(int(s, 8)?),
        Conv::Size => {
            let (digits, unit) = split_size(py_strip(s));
            let n = int(digits, 10).map_err(|e| format!("{e} (a size takes K, M or G)"))?;
            Val::Int(n.checked_mul(unit).ok_or("integer too large")?)
        }
        Conv::IntOrAuto if py_strip(s).eq_ignore_ascii_case("auto") => {
            Val::Int(std::thread::available_parallelism().map_or(1, |n| n.get()) as i128)
        }
        Conv::IntOrAuto => Val::Int(int(s, 10).map_err(|e| format!("{e} (or auto)"))?),
        Conv::Bool => Val::Bool(as_bool(s)),
        Conv::List | Conv::Set => Val::List(as_list(s)),
        Conv::SlashStr => Val::Str(slash_fixed_str(s)),
        Conv::StrIfTruthy => Val::Opt(str_iftruthy(s)),
        Conv::SocketList => Val::Empty,
        Conv::Path => Val::Path(match s {
            "" => None,
            "-" => Some(PathBuf::from("-")),
            p => Some(base.join(p)),
        }),
    };
    if let Val::Int(n) = v {
        let (lo, hi) = def.range;
        if n < lo || n > hi {
            let show = |x: i128| {
                if def.conv == Conv::Octal {
                    format!("{x:o}")
                } else {
                    x.to_string()
                }
            };
            let why = if n < lo && lo > 0 {
                format!(
                    "must be at least {} (waitressd refuses values that cannot serve)",
                    show(lo)
                )
            } else if n < 0 && hi == u64::MAX as i128 {
                "must not be negative (waitressd refuses values that cannot serve)".to_string()
            } else if hi == u64::MAX as i128 {
                "integer too large".to_string()
            } else {
                format!("must be between {} and {}", show(lo), show(hi))
            };
            return Err(why);
        }
    }
    Ok(v)
}

/// A word waitress's `asbool` means as true or false (anything else it reads as false too,
/// which is worth a warning); an empty value is false without one.
fn is_bool_word(s: &str) -> bool {
    let v = py_strip(s).to_lowercase();
    as_bool(&v) || matches!(v.as_str(), "" | "f" | "false" | "n" | "no" | "off" | "0")
}

/// `64M` → ("64", 2^20): the suffix K, M or G (either case) as a multiplier.
fn split_size(s: &str) -> (&str, i128) {
    let units = [('k', 1i128 << 10), ('m', 1 << 20), ('g', 1 << 30)];
    match s.chars().last().map(|c| c.to_ascii_lowercase()) {
        Some(c) => match units.iter().find(|u| u.0 == c) {
            Some(&(_, n)) => (&s[..s.len() - 1], n),
            None => (s, 1),
        },
        None => (s, 1),
    }
}

/// A value error for `r` (where it came from, its key and value) with `reason`. An INI value
/// that looks like it carries an inline comment says that the comment is part of the value.
pub(super) fn err(r: &Raw, reason: impl Into<String>) -> ConfigError {
    let mut reason = reason.into();
    if matches!(r.origin, Origin::Ini { .. }) && has_inline_comment(&r.value) {
        reason.push_str(
            " (the value includes its '#'/';' comment: INI values take no inline comments, \
             configparser and PasteDeploy keep them; move the comment to its own line)",
        );
    }
    presence_err(r, reason)
}

/// An error about `r` being set at all (its value does not matter).
pub(super) fn presence_err(r: &Raw, reason: impl Into<String>) -> ConfigError {
    let reason = reason.into();
    ConfigError::from(ValueError {
        origin: r.origin.clone(),
        key: r.key.clone(),
        value: r.value.clone(),
        reason,
    })
}

/// A `#` or `;` that starts the value or follows whitespace (`threads = 3 # four cores`).
fn has_inline_comment(v: &str) -> bool {
    let mut prev = None;
    v.chars().any(|c| {
        let starts = matches!(c, '#' | ';') && prev.is_none_or(char::is_whitespace);
        prev = Some(c);
        starts
    })
}

/// The converted values: what was given, else the table's default.
pub(super) struct Values<'a> {
    given: HashMap<&'static str, (Val, &'a Raw)>,
}

impl<'a> Values<'a> {
    /// Converts `raws` in order by the table: the first unknown key or bad value is the error.
    /// Keys waitress takes before `Adjustments` (`defs::IGNORED`) are skipped.
    pub(super) fn from_raws(raws: &'a [Raw]) -> Result<Values<'a>, ConfigError> {
        let mut given = HashMap::new();
        for r in raws {
            if defs::IGNORED.contains(&r.key.as_str()) {
                log::debug!("ignoring {} (taken by waitress before Adjustments)", r.key);
                continue;
            }
            let Some(def) = defs::find(&r.key) else {
                let hint = defs::suggest(&r.key)
                    .map(|s| format!(" (did you mean '{s}'?)"))
                    .unwrap_or_default();
                return Err(err(r, format!("Unknown adjustment '{}'{hint}", r.key)));
            };
            let v = convert(def, &r.value, &r.base).map_err(|reason| err(r, reason))?;
            if def.conv == Conv::Bool && !is_bool_word(&r.value) {
                // waitress's asbool reads any other word as false; kept, but said.
                log::warn!(
                    "{}",
                    ValueError {
                        origin: r.origin.clone(),
                        key: r.key.clone(),
                        value: r.value.clone(),
                        reason: "not a boolean: it reads as false, as in waitress; write \
                                 true or false"
                            .into(),
                    }
                );
            }
            given.insert(def.name, (v, r));
        }
        Ok(Values { given })
    }
    pub(super) fn raw(&self, name: &str) -> Option<&'a Raw> {
        self.given.get(name).map(|(_, r)| *r)
    }
    fn val(&self, name: &str) -> Val {
        if let Some((v, _)) = self.given.get(name) {
            return v.clone();
        }
        let def = defs::find(name).expect("name from the table");
        match def.default {
            Some(d) => convert(def, d, Path::new("/")).expect("defaults convert"),
            None if def.conv == Conv::Path => Val::Path(None),
            None => Val::Opt(None),
        }
    }
    pub(super) fn int(&self, name: &str) -> i128 {
        match self.val(name) {
            Val::Int(n) => n,
            _ => 0,
        }
    }
    /// An integer key that may be unset (`umask`).
    pub(super) fn int_opt(&self, name: &str) -> Option<i128> {
        match self.val(name) {
            Val::Int(n) => Some(n),
            _ => None,
        }
    }
    pub(super) fn boolean(&self, name: &str) -> bool {
        matches!(self.val(name), Val::Bool(true))
    }
    pub(super) fn string(&self, name: &str) -> String {
        match self.val(name) {
            Val::Str(s) => s,
            Val::Opt(s) => s.unwrap_or_default(),
            _ => String::new(),
        }
    }
    pub(super) fn opt(&self, name: &str) -> Option<String> {
        match self.val(name) {
            Val::Opt(s) => s,
            Val::Str(s) => Some(s),
            _ => None,
        }
    }
    pub(super) fn list(&self, name: &str) -> Vec<String> {
        match self.val(name) {
            Val::List(l) => l,
            _ => Vec::new(),
        }
    }
    pub(super) fn path(&self, name: &str) -> Option<PathBuf> {
        match self.val(name) {
            Val::Path(p) => p,
            _ => None,
        }
    }
}

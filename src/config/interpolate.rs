//! configparser's `BasicInterpolation` as PasteDeploy uses it: `%(name)s` from the section,
//! then the defaults (`here`, `__file__`, `[DEFAULT]`, `NAME=VALUE`), `%%` for `%`, a depth
//! limit of 10; plus `NicerConfigParser.defaults()` and `parser.options()`.
use super::ini::{Ini, Opt, Section};

/// configparser's `MAX_INTERPOLATION_DEPTH`.
const MAX_DEPTH: usize = 10;

/// An interpolation failure (`InterpolationMissingOptionError` and friends).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InterpError {
    Missing { name: String },
    Syntax { reason: String },
    Depth,
}

impl InterpError {
    pub fn kind(&self) -> &'static str {
        match self {
            InterpError::Missing { .. } => "InterpolationMissingOptionError",
            InterpError::Syntax { .. } => "InterpolationSyntaxError",
            InterpError::Depth => "InterpolationDepthError",
        }
    }
}

impl std::fmt::Display for InterpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InterpError::Missing { name } => write!(
                f,
                "%({name})s: no '{name}' in this section, [DEFAULT], here, __file__ or \
                 NAME=VALUE (for a literal %, as in access_log_format's atoms, write %%)"
            ),
            InterpError::Syntax { reason } => write!(f, "{reason} (write %% for a literal %)"),
            InterpError::Depth => write!(f, "%(...)s references nest deeper than {MAX_DEPTH}"),
        }
    }
}

impl Ini {
    /// `update_defaults(new, overwrite=False)`: caller defaults only fill keys that are not
    /// already defaults (PasteDeploy 5.1: `[DEFAULT]` wins for interpolation).
    pub fn add_defaults(&mut self, vars: &[(String, String)]) {
        for (k, v) in vars {
            if !self.defaults.iter().any(|o| &o.key == k) {
                self.defaults.push(Opt {
                    key: k.clone(),
                    value: v.clone(),
                    line: 0,
                });
            }
        }
    }

    pub fn section(&self, name: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.name == name)
    }

    fn lookup<'a>(&'a self, section: Option<&'a Section>, key: &str) -> Option<&'a str> {
        section
            .and_then(|s| s.opts.iter().find(|o| o.key == key))
            .or_else(|| self.defaults.iter().find(|o| o.key == key))
            .map(|o| o.value.as_str())
    }

    /// `parser.options(section)`: the section's keys, then defaults not overridden there.
    pub fn options(&self, section: &Section) -> Vec<(String, usize)> {
        let mut out: Vec<(String, usize)> = section
            .opts
            .iter()
            .map(|o| (o.key.clone(), o.line))
            .collect();
        for d in &self.defaults {
            if !section.opts.iter().any(|o| o.key == d.key) {
                out.push((d.key.clone(), d.line));
            }
        }
        out
    }

    /// `parser.get(section, key)` with interpolation; `section = None` is `[DEFAULT]`.
    /// `Ok(None)` if the key does not exist.
    pub fn get(&self, section: Option<&str>, key: &str) -> Result<Option<String>, InterpError> {
        let sect = section.and_then(|n| self.section(n));
        let Some(raw) = self.lookup(sect, key) else {
            return Ok(None);
        };
        let mut out = String::new();
        self.interpolate(sect, &mut out, raw, 1)?;
        Ok(Some(out))
    }

    /// `BasicInterpolation._interpolate_some`, including its depth rule: a referenced value
    /// is interpolated again (one level deeper) only if it contains `%`.
    fn interpolate(
        &self,
        sect: Option<&Section>,
        out: &mut String,
        mut rest: &str,
        depth: usize,
    ) -> Result<(), InterpError> {
        if depth > MAX_DEPTH {
            return Err(InterpError::Depth);
        }
        while !rest.is_empty() {
            let Some(p) = rest.find('%') else {
                out.push_str(rest);
                return Ok(());
            };
            out.push_str(&rest[..p]);
            rest = &rest[p..];
            match rest.as_bytes().get(1) {
                Some(b'%') => {
                    out.push('%');
                    rest = &rest[2..];
                }
                Some(b'(') => {
                    // _KEYCRE: %\(([^)]+)\)s
                    let close = rest
                        .find(')')
                        .filter(|&c| c > 2 && rest[c + 1..].starts_with('s'));
                    let Some(c) = close else {
                        return Err(InterpError::Syntax {
                            reason: format!(
                                "bad interpolation variable reference {}",
                                super::values::py_repr(rest)
                            ),
                        });
                    };
                    let name = &rest[2..c];
                    rest = &rest[c + 2..];
                    let v = self
                        .lookup(sect, name)
                        .ok_or_else(|| InterpError::Missing {
                            name: name.to_string(),
                        })?;
                    if v.contains('%') {
                        self.interpolate(sect, out, v, depth + 1)?;
                    } else {
                        out.push_str(v);
                    }
                }
                _ => {
                    return Err(InterpError::Syntax {
                        reason: format!(
                            "'%' must be followed by '%' or '(', found: {}",
                            super::values::py_repr(rest)
                        ),
                    })
                }
            }
        }
        Ok(())
    }

    /// NicerConfigParser.defaults(): every default interpolated against the defaults, with
    /// the raw value kept when the interpolated one is empty (`get(...) or val`).
    pub fn interpolated_defaults(
        &self,
    ) -> Result<Vec<(String, String)>, (String, usize, InterpError)> {
        let mut out = Vec::new();
        for d in &self.defaults {
            let v = self
                .get(None, &d.key)
                .map_err(|e| (d.key.clone(), d.line, e))?
                .unwrap_or_default();
            out.push((
                d.key.clone(),
                if v.is_empty() { d.value.clone() } else { v },
            ));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn parse(text: &str) -> Ini {
        Ini::parse(text, Path::new("/srv/app/production.ini"), "production.ini").unwrap()
    }

    fn get(ini: &Ini, s: &str, k: &str) -> String {
        ini.get(Some(s), k).unwrap().unwrap()
    }

    #[test]
    fn interpolation_uses_section_defaults_here_and_file() {
        let ini = parse("[DEFAULT]\nport = 6543\nlog = %(here)s/log\n[s]\nlisten = *:%(port)s\npct = 100%%\nf = %(__file__)s\nnested = %(log)s\n");
        assert_eq!(get(&ini, "s", "listen"), "*:6543");
        assert_eq!(get(&ini, "s", "pct"), "100%");
        assert_eq!(get(&ini, "s", "f"), "/srv/app/production.ini");
        assert_eq!(get(&ini, "s", "nested"), "/srv/app/log");
    }

    #[test]
    fn interpolation_errors() {
        let ini = parse("[s]\na = %(nope)s\nb = 50%\nc = %(c)s\nd = %(x\n");
        assert!(matches!(
            ini.get(Some("s"), "a"),
            Err(InterpError::Missing { .. })
        ));
        assert!(matches!(
            ini.get(Some("s"), "b"),
            Err(InterpError::Syntax { .. })
        ));
        assert_eq!(ini.get(Some("s"), "c"), Err(InterpError::Depth));
        assert!(matches!(
            ini.get(Some("s"), "d"),
            Err(InterpError::Syntax { .. })
        ));
    }
    #[test]
    fn depth_limit_is_ten_levels_like_configparser() {
        // threads -> d0 -> ... -> d8 -> "3": the value of d8 is reached at depth 10.
        let chain = |n: usize| -> String {
            let mut s = String::from("[s]\nthreads = %(d0)s\n");
            for i in 0..n {
                s.push_str(&format!("d{i} = %(d{})s\n", i + 1));
            }
            s.push_str(&format!("d{n} = 3\n"));
            s
        };
        let ok = Ini::parse(&chain(9), std::path::Path::new("/a.ini"), "a.ini").unwrap();
        assert_eq!(ok.get(Some("s"), "threads"), Ok(Some("3".into())));
        let deep = Ini::parse(&chain(10), std::path::Path::new("/a.ini"), "a.ini").unwrap();
        assert_eq!(deep.get(Some("s"), "threads"), Err(InterpError::Depth));
    }
}

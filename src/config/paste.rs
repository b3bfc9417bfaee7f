//! PasteDeploy 3.1.0's `loadserver("config:FILE", name)` for a `[server:NAME]` section: which
//! keys reach waitress (`local_conf`), following `ConfigLoader.get_context`: `set`/`get`,
//! keys also in the defaults dropped, `require` removed, and `use =` resolved
//! (`egg:waitress#main`, `config:other.ini#name`, another `[server:x]` of the same file).
use std::path::{Path, PathBuf};

use super::error::{ConfigError, Origin, ValueError};
use super::ini::{Ini, LoadError, Section};
use super::raw::{err, Raw};
use super::values::{py_repr, py_strip};

/// A `use` chain longer than this is a loop (Python would hit its recursion limit).
const MAX_USE_DEPTH: usize = 32;

type Conf = Vec<(String, String)>;

/// Loads the server section `name` of `path` (`display` names it in messages) with the
/// caller defaults `vars` (`NAME=VALUE` words). Returns waitress's keyword arguments in order.
pub fn load_server(
    path: &Path,
    display: &str,
    name: &str,
    vars: &Conf,
) -> Result<Vec<Raw>, ConfigError> {
    let global = (!vars.is_empty()).then_some(vars);
    load_config(path, display, name, global, 0)
}

fn load_config(
    path: &Path,
    display: &str,
    name: &str,
    global: Option<&Conf>,
    depth: usize,
) -> Result<Vec<Raw>, ConfigError> {
    let mut ini = Ini::read(path, display).map_err(|e| match e {
        LoadError::Io(source) => ConfigError::Io {
            file: display.to_string(),
            source,
        },
        LoadError::Read(e) => ConfigError::File {
            file: display.to_string(),
            line: e.line(),
            reason: e.to_string(),
        },
    })?;
    if let Some(g) = global {
        ini.add_defaults(g);
    }
    get_context(&ini, name, global, depth)
}

fn upsert<T>(v: &mut Vec<(String, T)>, k: &str, val: T) {
    match v.iter_mut().find(|(key, _)| key == k) {
        Some(slot) => slot.1 = val,
        None => v.push((k.to_string(), val)),
    }
}

fn find_section<'a>(ini: &'a Ini, name: &str) -> Result<&'a Section, ConfigError> {
    let found: Vec<&Section> = ini
        .sections
        .iter()
        .filter(|s| {
            s.name
                .strip_prefix("server:")
                .is_some_and(|rest| py_strip(rest) == name)
        })
        .collect();
    match found.as_slice() {
        [one] => Ok(one),
        [] => Err(ConfigError::File {
            file: ini.display.clone(),
            line: 0,
            reason: format!("no [server:{name}] section (pick one with -s/--server-name)"),
        }),
        many => Err(ConfigError::File {
            file: ini.display.clone(),
            line: many[1].line,
            reason: format!(
                "ambiguous server sections: {}",
                many.iter()
                    .map(|s| format!("[{}]", s.name))
                    .collect::<Vec<_>>()
                    .join(" and ")
            ),
        }),
    }
}

fn get_context(
    ini: &Ini,
    name: &str,
    global: Option<&Conf>,
    depth: usize,
) -> Result<Vec<Raw>, ConfigError> {
    let section = find_section(ini, name)?;
    let origin = |line: usize| Origin::Ini {
        file: ini.display.clone(),
        line,
        section: section.name.clone(),
    };
    let interp = |key: &str, line: usize| -> Result<String, ConfigError> {
        ini.get(Some(&section.name), key)
            .map(Option::unwrap_or_default)
            .map_err(|e| {
                let raw = ini
                    .section(&section.name)
                    .and_then(|s| s.opts.iter().find(|o| o.key == key));
                let raw = raw.or_else(|| ini.defaults.iter().find(|o| o.key == key));
                ConfigError::from(ValueError {
                    origin: origin(line),
                    key: key.to_string(),
                    value: raw.map(|o| o.value.clone()).unwrap_or_default(),
                    reason: format!("interpolation: {e}"),
                })
            })
    };
    let defaults = ini.interpolated_defaults().map_err(|(key, line, e)| {
        let value = ini
            .defaults
            .iter()
            .find(|o| o.key == key)
            .map(|o| o.value.clone());
        let value = value.unwrap_or_default();
        if line == 0 {
            // `here`, `__file__` or a NAME=VALUE word: PasteDeploy interpolates them too.
            return ConfigError::File {
                file: ini.display.clone(),
                line: 0,
                reason: format!("default {key} = {}: interpolation: {e}", py_repr(&value)),
            };
        }
        let section = "DEFAULT".to_string();
        let origin = Origin::Ini {
            file: ini.display.clone(),
            line,
            section,
        };
        let reason = format!("interpolation: {e}");
        ConfigError::from(ValueError {
            origin,
            key,
            value,
            reason,
        })
    })?;
    let mut global_conf: Conf = defaults.clone();
    for (k, v) in global.into_iter().flatten() {
        upsert(&mut global_conf, k, v.clone());
    }
    let mut local: Vec<(String, (String, usize))> = Vec::new();
    let mut gets: Vec<(String, (String, usize))> = Vec::new();
    for (opt, line) in ini.options(section) {
        if let Some(n) = opt.strip_prefix("set ") {
            let v = interp(&opt, line)?;
            upsert(&mut global_conf, py_strip(n), v);
        } else if let Some(n) = opt.strip_prefix("get ") {
            let v = interp(&opt, line)?;
            upsert(&mut gets, py_strip(n), (v, line));
        } else if defaults.iter().any(|(k, _)| *k == opt) {
            // PasteDeploy drops a key that is also a default, even when the section sets it.
            if section.opts.iter().any(|o| o.key == opt) {
                warn_dropped(ini, section, &opt, line);
            }
        } else {
            let v = interp(&opt, line)?;
            upsert(&mut local, &opt, (v, line));
        }
    }
    for (local_var, (glob_var, line)) in gets {
        let Some((_, v)) = global_conf.iter().find(|(k, _)| *k == glob_var) else {
            return Err(ConfigError::from(ValueError {
                origin: origin(line),
                key: format!("get {local_var}"),
                value: glob_var.clone(),
                reason: format!(
                    "there is no default {} ([DEFAULT], set or NAME=VALUE)",
                    py_repr(&glob_var)
                ),
            }));
        };
        upsert(&mut local, &local_var, (v.clone(), line));
    }
    // `require = dist ...` only checks that Python distributions are installed.
    local.retain(|(k, _)| k != "require");
    let base = ini.path.parent().unwrap_or(Path::new("/")).to_path_buf();
    let raws = |entries: Vec<(String, (String, usize))>| -> Vec<Raw> {
        entries
            .into_iter()
            .map(|(key, (value, line))| Raw {
                key,
                value,
                origin: origin(line),
                base: base.clone(),
            })
            .collect()
    };
    if let Some(pos) = local.iter().position(|(k, _)| k == "use") {
        let (_, (use_value, line)) = local.remove(pos);
        let use_raw = Raw {
            key: "use".into(),
            value: use_value.clone(),
            origin: origin(line),
            base: base.clone(),
        };
        if depth >= MAX_USE_DEPTH {
            return Err(err(&use_raw, "`use` chain too deep (does it loop?)"));
        }
        let mut inner = context_from_use(ini, &use_raw, &global_conf, depth + 1)?;
        for r in raws(local) {
            match inner.iter_mut().find(|i| i.key == r.key) {
                Some(slot) => *slot = r,
                None => inner.push(r),
            }
        }
        return Ok(inner);
    }
    // No `use`: the factory may be named by a protocol key (`_context_from_explicit`).
    if let Some(pos) = local.iter().position(|(k, _)| k == "paste.server_runner") {
        let (_, (v, line)) = local.remove(pos);
        let compact: String = v.chars().filter(|c| !c.is_whitespace()).collect();
        if compact != "waitress:serve_paste" {
            let r = Raw {
                key: "paste.server_runner".into(),
                value: v,
                origin: origin(line),
                base,
            };
            return Err(err(
                &r,
                "not waitress's runner (expected waitress:serve_paste)",
            ));
        }
        return Ok(raws(local));
    }
    Err(ConfigError::File {
        file: ini.display.clone(),
        line: section.line,
        reason: format!(
            "[{}] has no `use = egg:waitress#main` (no server is named)",
            section.name
        ),
    })
}

fn warn_dropped(ini: &Ini, section: &Section, key: &str, line: usize) {
    let why = match ini.defaults.iter().find(|o| o.key == key) {
        Some(d) if d.line > 0 => format!("it is also set in [DEFAULT] (line {})", d.line),
        _ if key == "here" || key == "__file__" => "it is a built-in default".to_string(),
        _ => "it is also given as NAME=VALUE on the command line".to_string(),
    };
    log::warn!(
        "{}:{}: [{}] {key} is ignored because {why}; PasteDeploy drops such keys from the \
         section. Write `get {key} = {key}` to use the default's value, or rename one of them.",
        ini.display,
        line,
        section.name
    );
}

/// `importlib.metadata` distribution-name normalisation.
fn normalize_dist(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !out.ends_with('_') {
                out.push('_');
            }
        } else {
            out.extend(c.to_lowercase());
        }
    }
    out
}

fn context_from_use(
    ini: &Ini,
    use_raw: &Raw,
    global: &Conf,
    depth: usize,
) -> Result<Vec<Raw>, ConfigError> {
    let value = use_raw.value.as_str();
    // `_absolute_re = ^[a-zA-Z]+:`; anything else names another [server:x] of this file.
    let scheme_len = value
        .find(':')
        .filter(|&i| i > 0 && value[..i].bytes().all(|b| b.is_ascii_alphabetic()));
    let Some(colon) = scheme_len else {
        return get_context(ini, value, Some(global), depth);
    };
    let (uri, name) = match value.split_once('#') {
        Some((u, n)) => (u, n),
        None => (value, "main"),
    };
    let scheme = value[..colon].to_ascii_lowercase();
    let path = &uri[colon + 1..];
    match scheme.as_str() {
        "egg" => {
            let dist = normalize_dist(path);
            if dist != "waitress" && dist != "waitressd" {
                return Err(err(
                    use_raw,
                    format!("this section configures {path}, not waitress; waitressd only replaces waitress (use = egg:waitress#main)"),
                ));
            }
            if name != "main" {
                return Err(err(use_raw, format!("{path} has no server entry point {}", py_repr(name))));
            }
            Ok(Vec::new())
        }
        "config" => {
            let rel = ini.path.parent().unwrap_or(Path::new("/")).to_string_lossy().replace('\\', "/");
            let mut p = path.replace('\\', "/");
            if !path.starts_with('/') {
                p = if rel.ends_with('/') { format!("{rel}{p}") } else { format!("{rel}/{p}") };
            }
            if p.starts_with("///") {
                p = p[2..].to_string();
            }
            let p = unquote(&p);
            let p = py_strip(&p).to_string();
            let display = if path.starts_with('/') {
                p.clone()
            } else {
                let outer = Path::new(&ini.display).parent().unwrap_or(Path::new(""));
                outer.join(unquote(path.trim())).to_string_lossy().into_owned()
            };
            load_config(&PathBuf::from(&p), &display, name, (!global.is_empty()).then_some(global), depth)
        }
        "call" => Err(err(use_raw, "call: server factories are not supported; waitressd replaces waitress (use = egg:waitress#main)")),
        other => Err(err(use_raw, format!("URI scheme not known: {} (egg, config)", py_repr(other)))),
    }
}

/// `urllib.parse.unquote`: `%XX` → byte, invalid escapes kept, bytes read as UTF-8 with
/// replacement.
fn unquote(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unquote_like_urllib() {
        assert_eq!(unquote("a%20b.ini"), "a b.ini");
        assert_eq!(unquote("100%"), "100%");
        assert_eq!(unquote("%zz%2"), "%zz%2");
        assert_eq!(unquote("%C3%A9"), "é");
    }

    #[test]
    fn dist_names_normalise() {
        assert_eq!(normalize_dist("Waitress"), "waitress");
        assert_eq!(normalize_dist("wait-_.ress"), "wait_ress");
    }
}

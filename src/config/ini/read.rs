//! The INI line reader: `Ini::read`/`Ini::parse` mirror `RawConfigParser._read` of CPython 3.11
//! line for line, so that a differential test against Python can compare sections, keys and
//! interpolated values.
use std::collections::HashSet;
use std::path::Path;

use super::{abspath, Ini, LoadError, Opt, ReadError, Section};
use crate::config::values::{py_space, py_strip};

/// Splits like Python's universal-newlines text reader: `\n`, `\r\n` and `\r` end lines.
fn lines(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let b = text.as_bytes();
    let (mut start, mut i) = (0, 0);
    while i < b.len() {
        match b[i] {
            b'\n' => {
                out.push(&text[start..i]);
                start = i + 1;
            }
            b'\r' => {
                out.push(&text[start..i]);
                if b.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    if start < b.len() {
        out.push(&text[start..]);
    }
    out
}

/// `SECTCRE`: `\[(?P<header>.+)\]` matched at the start of the stripped line.
fn section_header(value: &str) -> Option<&str> {
    if !value.starts_with('[') {
        return None;
    }
    let close = value.rfind(']')?;
    (close >= 2).then(|| &value[1..close])
}

/// `OPTCRE`: the key is everything before the first `=` or `:` (right-stripped), the value
/// everything after it (stripped). `None` if there is no delimiter.
fn option_line(value: &str) -> Option<(&str, &str)> {
    let d = value.find(['=', ':'])?;
    Some((
        value[..d].trim_end_matches(py_space),
        py_strip(&value[d + 1..]),
    ))
}

enum Cur {
    None,
    Default,
    Section(usize),
}

impl Ini {
    /// Reads `path` (opened as given; `display` is how messages name it) and adds the
    /// built-in defaults `here` and `__file__` from `abs` (Python's `os.path.abspath`).
    pub fn read(path: &Path, display: &str) -> Result<Ini, LoadError> {
        let bytes = std::fs::read(path).map_err(LoadError::Io)?;
        let abs = abspath(path);
        let text = match std::str::from_utf8(&bytes) {
            Ok(t) => t,
            Err(e) => {
                let line = 1 + bytes[..e.valid_up_to()]
                    .iter()
                    .filter(|&&b| b == b'\n')
                    .count();
                return Err(LoadError::Read(ReadError::Encoding { line }));
            }
        };
        Self::parse(text, &abs, display).map_err(LoadError::Read)
    }

    /// Parses `text` as the file at absolute path `abs`.
    pub fn parse(text: &str, abs: &Path, display: &str) -> Result<Ini, ReadError> {
        let here = abs.parent().unwrap_or(Path::new("/"));
        let mut ini = Ini {
            path: abs.to_path_buf(),
            display: display.to_string(),
            defaults: vec![
                Opt {
                    key: "here".into(),
                    value: here.to_string_lossy().into(),
                    line: 0,
                },
                Opt {
                    key: "__file__".into(),
                    value: abs.to_string_lossy().into(),
                    line: 0,
                },
            ],
            sections: Vec::new(),
        };
        // Values as lists of lines until the end, like configparser.
        let mut pending: Vec<(bool, usize, usize, Vec<String>)> = Vec::new(); // (is_default, sect, opt, lines)
        let mut added_sections: HashSet<String> = HashSet::new();
        let mut added_opts: HashSet<(String, String)> = HashSet::new();
        let mut cur = Cur::None;
        let mut sectname = String::new();
        let mut optname: Option<usize> = None; // index into `pending`
        let mut indent_level = 0usize;
        let mut first_error: Option<ReadError> = None;
        for (i, raw) in lines(text).into_iter().enumerate() {
            let lineno = i + 1;
            let stripped = py_strip(raw);
            let is_comment = stripped.starts_with('#') || stripped.starts_with(';');
            let value = if is_comment { "" } else { stripped };
            if value.is_empty() {
                // An empty line (not a comment) becomes part of a multi-line value.
                if !is_comment && !matches!(cur, Cur::None) {
                    if let Some(p) = optname {
                        pending[p].3.push(String::new());
                    }
                }
                continue;
            }
            let cur_indent = raw.chars().position(|c| !py_space(c)).unwrap_or(0);
            if let Some(p) =
                optname.filter(|_| !matches!(cur, Cur::None) && cur_indent > indent_level)
            {
                pending[p].3.push(value.to_string());
                continue;
            }
            indent_level = cur_indent;
            if let Some(header) = section_header(value) {
                sectname = header.to_string();
                if let Some(idx) = ini.sections.iter().position(|s| s.name == header) {
                    if added_sections.contains(header) {
                        return Err(ReadError::DuplicateSection {
                            line: lineno,
                            section: sectname,
                        });
                    }
                    cur = Cur::Section(idx);
                    added_sections.insert(sectname.clone());
                } else if header == "DEFAULT" {
                    cur = Cur::Default;
                } else {
                    ini.sections.push(Section {
                        name: sectname.clone(),
                        line: lineno,
                        opts: Vec::new(),
                    });
                    cur = Cur::Section(ini.sections.len() - 1);
                    added_sections.insert(sectname.clone());
                }
                optname = None;
                continue;
            }
            if matches!(cur, Cur::None) {
                return Err(ReadError::MissingSectionHeader {
                    line: lineno,
                    text: raw.to_string(),
                });
            }
            let Some((key, val)) = option_line(value) else {
                first_error.get_or_insert(ReadError::Parsing {
                    line: lineno,
                    text: raw.to_string(),
                });
                continue;
            };
            if key.is_empty() {
                first_error.get_or_insert(ReadError::Parsing {
                    line: lineno,
                    text: raw.to_string(),
                });
            }
            if !added_opts.insert((sectname.clone(), key.to_string())) {
                return Err(ReadError::DuplicateOption {
                    line: lineno,
                    section: sectname,
                    key: key.to_string(),
                });
            }
            let opt = Opt {
                key: key.to_string(),
                value: String::new(),
                line: lineno,
            };
            let (is_default, sect, idx) = match cur {
                Cur::Default => (true, 0, upsert(&mut ini.defaults, opt)),
                Cur::Section(s) => (false, s, upsert(&mut ini.sections[s].opts, opt)),
                Cur::None => unreachable!("checked above"),
            };
            pending.push((is_default, sect, idx, vec![val.to_string()]));
            // An empty key is falsy in Python: it takes no continuation lines.
            optname = (!key.is_empty()).then(|| pending.len() - 1);
        }
        for (is_default, sect, idx, vals) in pending {
            let joined = vals.join("\n");
            let value = joined.trim_end_matches(py_space).to_string();
            let opts = if is_default {
                &mut ini.defaults
            } else {
                &mut ini.sections[sect].opts
            };
            opts[idx].value = value;
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(ini),
        }
    }
}

/// Inserts or replaces (keeping the position, like a dict assignment); returns the index.
fn upsert(opts: &mut Vec<Opt>, opt: Opt) -> usize {
    if let Some(i) = opts.iter().position(|o| o.key == opt.key) {
        opts[i] = opt;
        i
    } else {
        opts.push(opt);
        opts.len() - 1
    }
}

//! Python `configparser.ConfigParser` as PasteDeploy configures it: strict, case-sensitive keys
//! (`optionxform = str`), `=`/`:` delimiters, full-line `#`/`;` comments only, indented
//! continuation lines, `[DEFAULT]`, and basic `%(name)s` interpolation (depth limit 10).
//!
//! The reader mirrors `RawConfigParser._read` of CPython 3.11 line for line, so that a
//! differential test against Python can compare sections, keys and interpolated values.
use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::values::{py_space, py_strip};

/// One option: its key, raw (uninterpolated) value and the line it starts on (0 = not from
/// the file: `here`, `__file__`, or a caller default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opt {
    pub key: String,
    pub value: String,
    pub line: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub name: String,
    pub line: usize,
    pub opts: Vec<Opt>,
}

/// A parsed INI file.
#[derive(Debug, Clone)]
pub struct Ini {
    /// Absolute path (`__file__`).
    pub path: PathBuf,
    /// The path as the user (or a `use = config:` line) spelled it, for messages.
    pub display: String,
    /// `here`, `__file__`, then `[DEFAULT]` options, then caller defaults, in dict order.
    pub defaults: Vec<Opt>,
    pub sections: Vec<Section>,
}

/// What went wrong while reading, with the 1-based line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadError {
    /// The file is not UTF-8 (Python reads it with the locale encoding, UTF-8).
    Encoding {
        line: usize,
    },
    MissingSectionHeader {
        line: usize,
        text: String,
    },
    DuplicateSection {
        line: usize,
        section: String,
    },
    DuplicateOption {
        line: usize,
        section: String,
        key: String,
    },
    /// A line that is neither a section, an option, a comment nor a continuation.
    Parsing {
        line: usize,
        text: String,
    },
}

impl ReadError {
    pub fn line(&self) -> usize {
        match self {
            ReadError::Encoding { line }
            | ReadError::MissingSectionHeader { line, .. }
            | ReadError::DuplicateSection { line, .. }
            | ReadError::DuplicateOption { line, .. }
            | ReadError::Parsing { line, .. } => *line,
        }
    }
    /// The configparser exception this corresponds to (for the differential test).
    pub fn kind(&self) -> &'static str {
        match self {
            ReadError::Encoding { .. } => "UnicodeDecodeError",
            ReadError::MissingSectionHeader { .. } => "MissingSectionHeaderError",
            ReadError::DuplicateSection { .. } => "DuplicateSectionError",
            ReadError::DuplicateOption { .. } => "DuplicateOptionError",
            ReadError::Parsing { .. } => "ParsingError",
        }
    }
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use super::values::py_repr;
        match self {
            ReadError::Encoding { .. } => write!(f, "file is not valid UTF-8"),
            ReadError::MissingSectionHeader { text, .. } => {
                write!(f, "{} comes before any [section] header", py_repr(text))
            }
            ReadError::DuplicateSection { section, .. } => {
                write!(f, "section [{section}] already exists")
            }
            ReadError::DuplicateOption { section, key, .. } => {
                write!(f, "[{section}] {key} is already set in this section")
            }
            ReadError::Parsing { text, .. } => write!(
                f,
                "{} is not `key = value`, a [section], a comment or an indented continuation",
                py_repr(text)
            ),
        }
    }
}

/// Reading a file failed: it could not be opened, or it is not a valid INI file.
#[derive(Debug)]
pub enum LoadError {
    Io(std::io::Error),
    Read(ReadError),
}

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

/// Python's `os.path.abspath`: join with the cwd, then `normpath` (lexical; symlinks are not
/// resolved; a leading `//` is kept, as POSIX allows).
pub fn abspath(p: &Path) -> PathBuf {
    let s = p.to_string_lossy();
    let joined = if s.starts_with('/') {
        s.into_owned()
    } else {
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
        format!("{}/{}", cwd.to_string_lossy(), s)
    };
    let lead = if joined.starts_with("//") && !joined.starts_with("///") {
        "//"
    } else {
        "/"
    };
    let mut parts: Vec<&str> = Vec::new();
    for comp in joined.split('/') {
        match comp {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    PathBuf::from(format!("{lead}{}", parts.join("/")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Ini, ReadError> {
        Ini::parse(text, Path::new("/srv/app/production.ini"), "production.ini")
    }

    fn get(ini: &Ini, s: &str, k: &str) -> String {
        ini.get(Some(s), k).unwrap().unwrap()
    }

    #[test]
    fn values_follow_configparser() {
        let ini = parse(
            "[s]\na = 1\nb: two words\nc = foo ; bar # baz\nd =\n  line1\n\n  line2\n\ne = x\n# comment\n  y\nKey = Case\n  [x] = 1\n",
        )
        .unwrap();
        let cases = [
            ("a", "1"),
            ("b", "two words"),
            ("c", "foo ; bar # baz"),
            ("d", "\nline1\n\nline2"),
            ("e", "x\ny"),
            ("Key", "Case\n[x] = 1"),
        ];
        for (k, v) in cases {
            assert_eq!(get(&ini, "s", k), v, "{k}");
        }
        assert!(
            ini.get(Some("s"), "key").unwrap().is_none(),
            "keys are case-sensitive"
        );
    }

    #[test]
    fn first_delimiter_splits_and_section_header_is_permissive() {
        let ini = parse("[a]b]\nurl: http://x = y\nk=v:w\n").unwrap();
        assert_eq!(ini.sections[0].name, "a]b");
        assert_eq!(get(&ini, "a]b", "url"), "http://x = y");
        assert_eq!(get(&ini, "a]b", "k"), "v:w");
    }

    #[test]
    fn read_errors_name_the_line() {
        let cases: &[(&str, &str, usize)] = &[
            ("key = 1\n", "MissingSectionHeaderError", 1),
            ("[a]\n[a]\n", "DuplicateSectionError", 2),
            ("[a]\nx = 1\ny = 2\nx = 3\n", "DuplicateOptionError", 4),
            (
                "[DEFAULT]\nx = 1\n[DEFAULT]\nx = 2\n",
                "DuplicateOptionError",
                4,
            ),
            ("[a]\nx = 1\njunk\n", "ParsingError", 3),
            ("[a]\n= 1\n", "ParsingError", 2),
            ("[a]\njunk\n[a]\n", "DuplicateSectionError", 3),
        ];
        for (text, kind, line) in cases {
            let e = parse(text).unwrap_err();
            assert_eq!((e.kind(), e.line()), (*kind, *line), "{text:?}");
        }
    }

    #[test]
    fn repeated_default_section_is_allowed() {
        let ini = parse("[DEFAULT]\na = 1\n[DEFAULT]\nb = 2\n[s]\n").unwrap();
        assert_eq!(get(&ini, "s", "b"), "2");
    }

    #[test]
    fn crlf_and_cr_line_ends() {
        let ini = parse("[s]\r\na = 1\rb = 2\r\n").unwrap();
        assert_eq!(get(&ini, "s", "b"), "2");
    }

    #[test]
    fn abspath_is_lexical() {
        assert_eq!(
            abspath(Path::new("/a/./b/../c.ini")),
            PathBuf::from("/a/c.ini")
        );
        assert_eq!(abspath(Path::new("//a/b")), PathBuf::from("//a/b"));
        assert_eq!(abspath(Path::new("///a")), PathBuf::from("/a"));
    }
}

//! Python `configparser.ConfigParser` as PasteDeploy configures it: strict, case-sensitive keys
//! (`optionxform = str`), `=`/`:` delimiters, full-line `#`/`;` comments only, indented
//! continuation lines, `[DEFAULT]`, and basic `%(name)s` interpolation (depth limit 10).
//!
//! This file holds the model (`Ini`, `Section`, `Opt`), the read errors and `abspath`; the line
//! reader is `read.rs`.
use std::path::{Path, PathBuf};

mod read;
#[cfg(test)]
mod tests;

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
            ReadError::MissingSectionHeader { text, .. } if text.starts_with('\u{feff}') => write!(
                f,
                "the file starts with a UTF-8 byte-order mark, which configparser (so pserve too) \
                 rejects: save it as UTF-8 without BOM"
            ),
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

//! `ConfigError`: every configuration or command-line failure, as one line naming where.
use std::fmt;

use super::values::py_repr;

/// Where a raw setting value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A line of an INI file (`file` as the user spelled it).
    Ini {
        file: String,
        line: usize,
        section: String,
    },
    /// A command-line flag, e.g. `--threads`.
    Flag(String),
    /// An environment variable, e.g. `WAITRESSD_THREADS`.
    Env(String),
}

impl Origin {
    /// Short form for "also set at ..." notes.
    pub fn short(&self, key: &str) -> String {
        match self {
            Origin::Ini { file, line, .. } => format!("{key} at {file}:{line}"),
            Origin::Flag(f) | Origin::Env(f) => f.clone(),
        }
    }

    /// The setting as it was given, for "(turned off by ...)" notes: `key = 'value' at
    /// FILE:LINE`, `--flag 'value'` or `environment VAR='value'`.
    pub fn setting(&self, key: &str, value: &str) -> String {
        let value = py_repr(value);
        match self {
            Origin::Ini { file, line, .. } => format!("{key} = {value} at {file}:{line}"),
            Origin::Flag(flag) => format!("{flag} {value}"),
            Origin::Env(var) => format!("environment {var}={value}"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The INI file (or one it `use`s) cannot be read.
    #[error("cannot read {file}: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
    /// A problem with a file as a whole or one of its lines (`line` 0 = no line).
    #[error("{}", at(file, *line, reason))]
    File {
        file: String,
        line: usize,
        reason: String,
    },
    /// A bad value for a key: `FILE:LINE: [section] key = 'value': reason` or
    /// `--flag 'value': reason`.
    #[error("{0}")]
    Value(Box<ValueError>),
    /// A bad command line.
    #[error("{0}")]
    Usage(String),
}

fn at(file: &str, line: usize, reason: &str) -> String {
    if line == 0 {
        format!("{file}: {reason}")
    } else {
        format!("{file}:{line}: {reason}")
    }
}

/// What `ConfigError::Value` carries (boxed: errors travel in every `Result` here).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueError {
    pub origin: Origin,
    pub key: String,
    pub value: String,
    pub reason: String,
}

impl From<ValueError> for ConfigError {
    fn from(v: ValueError) -> Self {
        ConfigError::Value(Box::new(v))
    }
}

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (key, value, reason) = (&self.key, py_repr(&self.value), &self.reason);
        match &self.origin {
            origin @ Origin::Ini { .. } => write!(f, "{origin} {key} = {value}: {reason}"),
            Origin::Flag(flag) => write!(f, "{flag} {value}: {reason}"),
            Origin::Env(var) => write!(f, "environment {var}={value}: {reason}"),
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Ini {
                file,
                line,
                section,
            } => write!(f, "{file}:{line}: [{section}]"),
            Origin::Flag(flag) => f.write_str(flag),
            Origin::Env(var) => write!(f, "environment {var}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_one_line_with_file_line_key_value() {
        let e = ConfigError::from(ValueError {
            origin: Origin::Ini {
                file: "production.ini".into(),
                line: 14,
                section: "server:main".into(),
            },
            key: "threads".into(),
            value: "four".into(),
            reason: "invalid literal for int()".into(),
        });
        assert_eq!(
            e.to_string(),
            "production.ini:14: [server:main] threads = 'four': invalid literal for int()"
        );
        let e = ConfigError::from(ValueError {
            origin: Origin::Flag("--threads".into()),
            key: "threads".into(),
            value: "a\nb".into(),
            reason: "x".into(),
        });
        assert_eq!(e.to_string(), "--threads 'a\\nb': x");
        let e = ConfigError::File {
            file: "a.ini".into(),
            line: 0,
            reason: "no [server:main]".into(),
        };
        assert_eq!(e.to_string(), "a.ini: no [server:main]");
    }
}

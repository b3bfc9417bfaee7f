//! waitress's converters (`asbool`, `int`, `aslist`, `asoctal`, `slash_fixed_str`,
//! `str_iftruthy`) with Python's exact string rules, plus Python's whitespace and `repr`.
//!
//! Everything here is pure: the INI reader and the settings builder share it.

pub(crate) use crate::http::pytext::py_space;

/// Python's `str.strip()` with no argument.
pub fn py_strip(s: &str) -> &str {
    s.trim_matches(py_space)
}

/// Python's `str.split()` with no argument: runs of whitespace separate, no empty items.
pub fn py_split(s: &str) -> Vec<&str> {
    s.split(py_space).filter(|p| !p.is_empty()).collect()
}

/// The first code point of every block of ten Unicode decimal digits (category Nd) in the
/// Unicode 14 database CPython 3.11 uses; `int()` accepts any of them (`int("٨٠") == 80`).
const DECIMAL_BLOCKS: [u32; 66] = [
    0x30, 0x660, 0x6f0, 0x7c0, 0x966, 0x9e6, 0xa66, 0xae6, 0xb66, 0xbe6, 0xc66, 0xce6, 0xd66,
    0xde6, 0xe50, 0xed0, 0xf20, 0x1040, 0x1090, 0x17e0, 0x1810, 0x1946, 0x19d0, 0x1a80, 0x1a90,
    0x1b50, 0x1bb0, 0x1c40, 0x1c50, 0xa620, 0xa8d0, 0xa900, 0xa9d0, 0xa9f0, 0xaa50, 0xabf0, 0xff10,
    0x104a0, 0x10d30, 0x11066, 0x110f0, 0x11136, 0x111d0, 0x112f0, 0x11450, 0x114d0, 0x11650,
    0x116c0, 0x11730, 0x118e0, 0x11950, 0x11c50, 0x11d50, 0x11da0, 0x16a60, 0x16ac0, 0x16b50,
    0x1d7ce, 0x1d7d8, 0x1d7e2, 0x1d7ec, 0x1d7f6, 0x1e140, 0x1e2f0, 0x1e950, 0x1fbf0,
];

fn decimal_value(c: char) -> Option<u8> {
    let cp = c as u32;
    DECIMAL_BLOCKS
        .iter()
        .find(|&&start| cp >= start && cp < start + 10)
        .map(|&start| (cp - start) as u8)
}

/// Why a string is not an integer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IntError {
    /// Python would raise `ValueError: invalid literal for int()`.
    Invalid,
    /// A valid Python integer that does not fit in 128 bits.
    TooLarge,
}

/// Python's `int(s, base)` for a `str` (base 10 or 8): surrounding whitespace, a sign, single
/// `_` between digits, Unicode decimal digits, and for base 8 an optional `0o` prefix.
pub fn py_int(s: &str, base: u32) -> Result<i128, IntError> {
    // CPython first maps whitespace to ' ' and decimal digits to ASCII; anything else
    // non-ASCII makes the literal invalid.
    let mut ascii = String::with_capacity(s.len());
    for c in s.chars() {
        if py_space(c) {
            ascii.push(' ');
        } else if let Some(d) = decimal_value(c) {
            ascii.push((b'0' + d) as char);
        } else if c.is_ascii() {
            ascii.push(c);
        } else {
            return Err(IntError::Invalid);
        }
    }
    let t = ascii.trim_matches(' ');
    let (neg, t) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let mut digits = t;
    let mut underscore_ok = false;
    if base == 8 && (t.starts_with("0o") || t.starts_with("0O")) {
        digits = &t[2..];
        // `0o_17` is valid: one underscore may follow the prefix.
        underscore_ok = true;
    }
    if digits.is_empty() {
        return Err(IntError::Invalid);
    }
    let mut value: i128 = 0;
    let mut prev_underscore = false;
    let mut any = false;
    for (i, b) in digits.bytes().enumerate() {
        if b == b'_' {
            if prev_underscore || (i == 0 && !underscore_ok) {
                return Err(IntError::Invalid);
            }
            prev_underscore = true;
            continue;
        }
        let d = (b as char).to_digit(base).ok_or(IntError::Invalid)?;
        value = value
            .checked_mul(base as i128)
            .and_then(|v| v.checked_add(d as i128))
            .ok_or(IntError::TooLarge)?;
        prev_underscore = false;
        any = true;
    }
    if prev_underscore || !any {
        return Err(IntError::Invalid);
    }
    Ok(if neg { -value } else { value })
}

/// waitress `asbool`: `t true y yes on 1` (after strip + lower) are True, **anything else is
/// False** — never an error.
pub fn as_bool(s: &str) -> bool {
    let v = py_strip(s).to_lowercase();
    matches!(v.as_str(), "t" | "true" | "y" | "yes" | "on" | "1")
}

/// waitress `aslist`: split into lines, strip, drop empties, split each on whitespace.
/// Every line break Python knows is also whitespace, so this is `str.split()`.
pub fn as_list(s: &str) -> Vec<String> {
    py_split(s).into_iter().map(str::to_string).collect()
}

/// waitress `slash_fixed_str`: strip; if non-empty, exactly one leading `/` and no trailing
/// `/` (`"/"` stays `"/"`, `"//foo//"` becomes `"/foo"`).
pub fn slash_fixed_str(s: &str) -> String {
    let s = py_strip(s);
    if s.is_empty() {
        return String::new();
    }
    format!("/{}", s.trim_start_matches('/').trim_end_matches('/'))
}

/// waitress `str_iftruthy`: the empty string is None.
pub fn str_iftruthy(s: &str) -> Option<String> {
    if s.is_empty() {
        None
    } else {
        Some(s.to_string())
    }
}

/// Python's `repr()` of a `str`, for error messages (`'four'`, `"it's"`).
pub fn py_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int_follows_python_int() {
        let ok: &[(&str, i128)] = &[
            ("80", 80),
            (" +80 ", 80),
            ("8_0", 80),
            ("-5", -5),
            ("007", 7),
            ("0_0", 0),
            ("\t42\n", 42),
            ("\u{1c}9\u{1f}", 9),
            ("٨٠", 80),
            ("８０", 80),
            ("1_000_000", 1_000_000),
        ];
        for (s, v) in ok {
            assert_eq!(py_int(s, 10), Ok(*v), "{s:?}");
        }
        for s in [
            "", " ", "4.0", "abc", "four", "_80", "80_", "8__0", "- 1", "+-1", "0x10", "1e3",
            "0o17", "++1", "8 0", "٨a",
        ] {
            assert_eq!(py_int(s, 10), Err(IntError::Invalid), "{s:?}");
        }
        assert_eq!(py_int("9".repeat(60).as_str(), 10), Err(IntError::TooLarge));
    }

    #[test]
    fn octal_follows_python_int_base_8() {
        let ok: &[(&str, i128)] = &[
            ("600", 0o600),
            ("0600", 0o600),
            ("0o600", 0o600),
            ("0O600", 0o600),
            (" 660 ", 0o660),
            ("0o_6_00", 0o600),
            ("-600", -0o600),
            ("7", 7),
        ];
        for (s, v) in ok {
            assert_eq!(py_int(s, 8), Ok(*v), "{s:?}");
        }
        for s in ["rw", "8", "0o", "0o__6", "0x1", "6.0", "", "0b1", "o600"] {
            assert_eq!(py_int(s, 8), Err(IntError::Invalid), "{s:?}");
        }
    }

    #[test]
    fn asbool_word_list_and_everything_else_false() {
        for s in [
            "t", "true", "TRUE", " yes ", "Y", "on", "On", "1", "\ttrue\n",
        ] {
            assert!(as_bool(s), "{s:?}");
        }
        for s in [
            "", "2", "no", "false", "maybe", "0", "ok", "enabled", "truee", "1.0",
        ] {
            assert!(!as_bool(s), "{s:?}");
        }
    }

    #[test]
    fn aslist_splits_lines_and_spaces() {
        assert_eq!(as_list("a b\n  c\n\n d\te"), ["a", "b", "c", "d", "e"]);
        assert_eq!(as_list(""), Vec::<String>::new());
        assert_eq!(as_list("a\u{2028}b\u{1c}c"), ["a", "b", "c"]);
    }

    #[test]
    fn slash_fixed_str_matches_waitress() {
        let cases = [
            ("", ""),
            ("  ", ""),
            ("foo", "/foo"),
            ("//foo//", "/foo"),
            ("/", "/"),
            ("///", "/"),
            (" /a/b/ ", "/a/b"),
        ];
        for (s, want) in cases {
            assert_eq!(slash_fixed_str(s), want, "{s:?}");
        }
    }

    #[test]
    fn str_iftruthy_empty_is_none() {
        assert_eq!(str_iftruthy(""), None);
        assert_eq!(str_iftruthy(" "), Some(" ".into()));
    }

    #[test]
    fn repr_quotes_like_python() {
        assert_eq!(py_repr("four"), "'four'");
        assert_eq!(py_repr("it's"), "\"it's\"");
        assert_eq!(py_repr("a\nb"), "'a\\nb'");
        assert_eq!(py_repr("'\""), "'\\'\"'");
    }
}

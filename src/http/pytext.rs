//! The Python string operations waitress's proxy code relies on, on latin-1 bytes (header
//! values reach waitress as latin-1 `str`): `strip()`, `lower()`, `undquote`, brackets.

/// Python's `str.isspace()`: Unicode White_Space plus the information separators
/// U+001C..U+001F, which Python (not Rust) counts as whitespace. `str.strip()`,
/// `str.split()`, `int()` and configparser's `\s` all use this set.
pub(crate) fn py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

pub(crate) fn strip_brackets(a: &[u8]) -> &[u8] {
    match a {
        [b'[', inner @ .., b']'] => inner,
        _ => a,
    }
}

/// Python `str.strip()` on latin-1 text: also strips `\x85` and `\xa0` (and CTL whitespace).
pub(crate) fn py_strip(b: &[u8]) -> &[u8] {
    let ws = |c: &u8| {
        matches!(
            c,
            b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | 0x1c..=0x1f | b' ' | 0x85 | 0xa0
        )
    };
    let start = b.iter().position(|c| !ws(c)).unwrap_or(b.len());
    let end = b.iter().rposition(|c| !ws(c)).map_or(start, |e| e + 1);
    &b[start..end]
}

/// Python `str.lower()` on latin-1 text.
pub(crate) fn py_lower(b: &[u8]) -> Vec<u8> {
    b.iter()
        .map(|&c| match c {
            b'A'..=b'Z' | 0xc0..=0xd6 | 0xd8..=0xde => c + 32,
            _ => c,
        })
        .collect()
}

pub(crate) fn latin1(b: &[u8]) -> String {
    b.iter().map(|&c| c as char).collect()
}

/// Python `s.encode("latin-1")` for text config already checked is latin-1 (`ident`); ASCII
/// is borrowed as is. A character outside latin-1 (never here) would become `?`.
pub(crate) fn encode_latin1(s: &str) -> std::borrow::Cow<'_, [u8]> {
    if s.is_ascii() {
        return s.as_bytes().into();
    }
    s.chars()
        .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
        .collect::<Vec<u8>>()
        .into()
}

/// waitress `undquote`: a fully quoted value loses its quotes and quoted-pair backslashes; an
/// unquoted value is returned as is; anything else is "Invalid quoting in value".
pub(crate) fn undquote(v: &[u8]) -> Result<Vec<u8>, &'static str> {
    const INVALID: &str = "Invalid quoting in value";
    let starts = v.first() == Some(&b'"');
    let ends = v.last() == Some(&b'"');
    if !starts && !ends {
        return Ok(v.to_vec());
    }
    if !(starts && ends) || v.len() < 2 {
        return Err(INVALID);
    }
    let mut out = Vec::with_capacity(v.len());
    let mut i = 1;
    loop {
        match v.get(i) {
            None => return Err(INVALID),
            Some(b'"') => {
                return if i == v.len() - 1 {
                    Ok(out)
                } else {
                    Err(INVALID)
                };
            }
            Some(b'\\') => match v.get(i + 1) {
                Some(&c) if c == b'\t' || c == b' ' || (0x21..=0x7e).contains(&c) || c >= 0x80 => {
                    out.push(c);
                    i += 2;
                }
                _ => return Err(INVALID),
            },
            Some(&c)
                if matches!(c, b'\t' | b' ' | 0x21 | 0x23..=0x5b | 0x5d..=0x7e) || c >= 0x80 =>
            {
                out.push(c);
                i += 1;
            }
            Some(_) => return Err(INVALID),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undquote_follows_waitress() {
        assert_eq!(undquote(b"abc").unwrap(), b"abc");
        assert_eq!(undquote(b"\"a\\\"b c\"").unwrap(), b"a\"b c");
        assert_eq!(undquote(b"\"\"").unwrap(), b"");
        for bad in [&b"\""[..], b"\"a", b"a\"", b"\"a\"b\"", b"\"a\\\""] {
            assert!(undquote(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn python_strip_and_lower_on_latin1() {
        assert_eq!(py_strip(b"\xa0 \t x y \x85"), b"x y");
        assert_eq!(py_lower(b"HTTPS\xc9\xd7"), b"https\xe9\xd7");
        assert_eq!(strip_brackets(b"[::1]"), b"::1");
        assert_eq!(strip_brackets(b""), b"");
    }
}

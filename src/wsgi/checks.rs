//! waitress's `start_response` argument checks (task.py, spec §3.1), in its order and with its
//! exception types and messages: status and header types, CR/LF, Content-Length, hop-by-hop,
//! latin-1.
use pyo3::exceptions::{PyAssertionError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyList, PyString, PyTuple};

/// waitress: status must be a str without CR/LF; its format is not checked. waitressd also
/// requires a three-digit code from 100 and a space before any reason (`status_line_ok`), and a
/// final status (not 1xx). On success it is copied into `out` (cleared first; its buffer is
/// reused from request to request).
pub(crate) fn checked_status(status: &Bound<'_, PyAny>, out: &mut String) -> PyResult<()> {
    let Ok(s) = status.cast::<PyString>() else {
        return Err(PyAssertionError::new_err(format!(
            "status {status} is not a string"
        )));
    };
    let s = match s.to_str() {
        Ok(r) if plain(r) => r,
        // The first failing check of waitress's order raises, as without the fast path.
        _ => {
            let s = latin1_checked(s)?;
            if has_crlf(s) {
                return Err(PyValueError::new_err(
                    "carriage return/line feed character present in status",
                ));
            }
            s
        }
    };
    if !crate::http::response::status_line_ok(s) {
        return Err(PyValueError::new_err(format!(
            "status {s:?} does not start with a three-digit code from 100 followed by a space \
             and a reason (PEP 3333: \"200 OK\")"
        )));
    }
    if s.starts_with('1') {
        // Clients and proxies read a 1xx as interim and wait for the final response; nginx
        // even passes it on as the final one, so its client reads the next response as this
        // one's. `100 Continue` is the server's to send.
        return Err(PyValueError::new_err(format!(
            "status {s:?} is informational (1xx): a WSGI response must be final (the server \
             sends 100 Continue itself)"
        )));
    }
    out.clear();
    out.push_str(s);
    Ok(())
}

/// Response headers as handed to the exchange.
type Headers = Vec<(String, String)>;

/// waitress's header checks, in its order, then waitressd's own (a token name, a value without
/// control characters: `http::response::header_ok`); returns the headers and a parsed
/// Content-Length.
/// The headers are written over `reuse` (an earlier response's), keeping its allocations.
pub(crate) fn checked_headers(
    py: Python<'_>,
    headers: &Bound<'_, PyAny>,
    reuse: Headers,
) -> PyResult<(Headers, Option<u64>)> {
    let mut out = reuse;
    // One spare slot: the Content-Length the task adds for a one-item body needs no regrowth.
    let want = headers.len().unwrap_or(4) + 1;
    out.reserve(want.saturating_sub(out.len()));
    let mut n = 0;
    let mut content_length = None;
    let mut check = |item: Bound<'_, PyAny>| -> PyResult<()> {
        let (k, v) = unpack_pair(&item)?;
        let pair = || {
            (k.clone(), v.clone())
                .into_pyobject(py)
                .and_then(|t| t.repr())
                .map(|r| r.to_string())
                .unwrap_or_default()
        };
        let (Ok(ks), Ok(vs)) = (k.cast::<PyString>(), v.cast::<PyString>()) else {
            let (what, bad) = if k.cast::<PyString>().is_err() {
                ("name", &k)
            } else {
                ("value", &v)
            };
            return Err(PyAssertionError::new_err(format!(
                "Header {what} {} is not a string in {}",
                bad.repr()?,
                pair()
            )));
        };
        let (name, value) = match plain_pair(ks, vs) {
            Some(pair) => pair,
            None => {
                let (name, value) = (latin1_checked(ks)?, latin1_checked(vs)?);
                if has_crlf(value) {
                    return Err(PyValueError::new_err(
                        "carriage return/line feed character present in header value",
                    ));
                }
                if has_crlf(name) {
                    return Err(PyValueError::new_err(
                        "carriage return/line feed character present in header name",
                    ));
                }
                if !crate::http::response::header_ok(name, value) {
                    return Err(PyValueError::new_err(format!(
                        "header {} cannot be sent: its name must be a token (letters, \
                         digits, !#$%&'*+-.^_`|~), without spaces, and its value free of \
                         control characters other than TAB",
                        pair()
                    )));
                }
                (name, value)
            }
        };
        if crate::http::response::is_content_length(name) {
            content_length = Some(parse_content_length(value)?);
        } else if crate::http::response::is_hop_by_hop(name) {
            return Err(PyAssertionError::new_err(format!(
                "{name} is a \"hop-by-hop\" header; it cannot be used by a WSGI application (see PEP 3333)"
            )));
        }
        match out.get_mut(n) {
            Some((k, v)) => {
                k.clear();
                k.push_str(name);
                v.clear();
                v.push_str(value);
            }
            None => out.push((name.to_owned(), value.to_owned())),
        }
        n += 1;
        Ok(())
    };
    // A plain list or tuple is read by index: no iterator object. Subclasses (which may
    // override `__iter__`) and other iterables go through `iter()` as in waitress.
    if let Ok(list) = headers.cast_exact::<PyList>() {
        list.iter().try_for_each(&mut check)?;
    } else if let Ok(tuple) = headers.cast_exact::<PyTuple>() {
        tuple.iter().try_for_each(&mut check)?;
    } else {
        for item in headers.try_iter()? {
            check(item?)?;
        }
    }
    out.truncate(n);
    Ok((out, content_length))
}

/// `k, v = item`, as waitress's `for k, v in headers` unpacks a header: a two-item list
/// (`[["X-A", "1"]]`, e.g. headers read back from JSON) is a pair as well as a tuple is.
fn unpack_pair<'py>(item: &Bound<'py, PyAny>) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
    // The tuple, by far the common case, is tried first.
    if let Ok(pair) = item.cast::<PyTuple>() {
        if pair.len() == 2 {
            return Ok((pair.get_item(0)?, pair.get_item(1)?));
        }
    } else if let Ok(list) = item.cast::<PyList>() {
        if list.len() == 2 {
            return Ok((list.get_item(0)?, list.get_item(1)?));
        }
    }
    // Anything else fails here with Python's own unpacking error.
    item.extract()
}

/// waitress does `int(value)` (`http::response::parse_int`); a negative length is refused too
/// (it cannot frame a body).
fn parse_content_length(v: &str) -> PyResult<u64> {
    crate::http::response::parse_int(v).ok_or_else(|| {
        PyValueError::new_err(format!("invalid literal for int() with base 10: '{v}'"))
    })
}

/// True when `s` passes the latin-1 and CR/LF checks trivially: ASCII without CR or LF, as
/// nearly every status, name and value is. One pass without an early exit, which the compiler
/// turns into a few vector compares per 16 bytes (cheaper than `is_ascii` plus `memchr2` on
/// such short strings).
fn plain(s: &str) -> bool {
    s.bytes()
        .fold(true, |ok, b| ok & (b < 0x80) & (b != b'\r') & (b != b'\n'))
}

/// Name and value as `&str` when they pass every check trivially
/// (`http::response::header_plain`); None sends the caller to the full checks, which then fail
/// (or pass) exactly as they would have: the name's `to_str` comes first, as in
/// `latin1_checked(name)`.
fn plain_pair<'a>(
    k: &'a Bound<'_, PyString>,
    v: &'a Bound<'_, PyString>,
) -> Option<(&'a str, &'a str)> {
    let name = k.to_str().ok()?;
    let value = v.to_str().ok()?;
    crate::http::response::header_plain(name, value).then_some((name, value))
}

fn has_crlf(s: &str) -> bool {
    memchr::memchr2(b'\r', b'\n', s.as_bytes()).is_some()
}

/// A str that can be sent as latin-1 (the head is encoded latin-1, waitress task.py); other
/// characters raise Python's own UnicodeEncodeError.
fn latin1_checked<'a>(s: &'a Bound<'_, PyString>) -> PyResult<&'a str> {
    let r = s.to_str()?;
    if r.is_ascii() || r.chars().all(|c| u32::from(c) < 256) {
        return Ok(r);
    }
    // Python's own encode() raises the UnicodeEncodeError waitress's head building raises.
    s.call_method1("encode", ("latin-1",))?;
    Err(PyValueError::new_err(format!(
        "cannot encode {r:?} as latin-1"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_is_ascii_without_cr_or_lf_at_every_length_and_position() {
        for len in 0..70 {
            let base = "a".repeat(len);
            assert!(plain(&base), "{len}");
            for at in 0..len {
                for bad in ["\r", "\n", "\u{e9}", "\u{7ff}", "\u{1f600}"] {
                    let s = format!("{}{bad}{}", &base[..at], &base[at + 1..]);
                    assert!(!plain(&s), "{s:?}");
                    assert_eq!(s.is_ascii() && !has_crlf(&s), plain(&s), "{s:?}");
                }
                for ok in ["\t", " ", "\x7f", "\0", "-", ":"] {
                    let s = format!("{}{ok}{}", &base[..at], &base[at + 1..]);
                    assert!(plain(&s), "{s:?}");
                }
            }
        }
    }

    #[test]
    fn content_length_parse_table() {
        let cases = [
            ("12", Some(12)),
            (" 12 ", Some(12)),
            ("+7", Some(7)),
            ("1_000", Some(1000)),
            ("0", Some(0)),
            ("-1", None),
            ("", None),
            ("abc", None),
            ("_1", None),
            ("1.0", None),
            ("1__0", None),
            ("1_", None),
            ("99999999999999999999999", None),
            // Python's whitespace, not only ASCII's.
            ("\u{a0}12\u{85}", Some(12)),
            ("\u{1c}5\u{1f}", Some(5)),
        ];
        for (v, want) in cases {
            assert_eq!(parse_content_length(v).ok(), want, "{v:?}");
        }
    }
}

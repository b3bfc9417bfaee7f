//! `access_log_format`: gunicorn's access-log atoms (`%(h)s`, `%({Header}i)s` …) compiled once
//! and rendered per response into a byte buffer, or `json` (one object per line). Sans-IO: the
//! server hands in an [`Entry`] and gets bytes back.
use std::time::Duration;

use super::Request;

/// Apache combined, gunicorn's default `access_log_format`.
pub const COMBINED: &str = r#"%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s""#;

/// The atoms gunicorn documents (its "Access log format" table), minus `{var}e`, with what
/// each logs: waitressd.ini(5) lists them (`config::manpages`), where an operator writing a
/// format, or fixing one an "unknown access log atom" error names, looks them up.
pub const ATOMS: &[(&str, &str)] = &[
    (
        "h",
        "remote address (the client a trusted proxy names, when its headers are trusted)",
    ),
    ("l", "always -"),
    ("u", "user name of HTTP Basic auth, else -"),
    (
        "t",
        "time the response was logged (UTC), [10/Oct/2000:13:55:36 +0000]",
    ),
    ("r", "request line, GET /path?query HTTP/1.1"),
    ("m", "method"),
    ("U", "URL path without query"),
    ("q", "query string (empty when there is none)"),
    ("H", "protocol, HTTP/1.1"),
    ("s", "status"),
    ("B", "response body length"),
    ("b", "response body length, - for 0"),
    ("f", "Referer header"),
    ("a", "User-Agent header"),
    ("T", "request time in seconds"),
    ("M", "request time in milliseconds"),
    ("D", "request time in microseconds"),
    ("L", "request time in decimal seconds"),
    ("p", "process ID, as <1234>"),
];

/// The other forms `access_log_format` takes, documented beside `ATOMS` (a test parses each).
pub const OTHER_FORMS: &[(&str, &str)] = &[
    (
        "%({Header}i)s",
        "request header Header (any case), - when absent",
    ),
    (
        "%({Header}o)s",
        "response header Header (any case), - when absent",
    ),
    (
        "json",
        "as the whole value: one JSON object per line instead, with remote_addr, user, time, \
         method, path, query, protocol, status, bytes, referer, user_agent, duration_us and pid \
         (null when unknown)",
    ),
];

/// One piece of a compiled format.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Atom {
    Lit(Vec<u8>),
    /// One of the single-letter atoms of `ATOMS`.
    Key(u8),
    /// `%({name}i)s`, name lower-cased.
    ReqHeader(Vec<u8>),
    /// `%({name}o)s`, name lower-cased.
    RespHeader(String),
}

/// A compiled `access_log_format`, with the text it was compiled from (what `--print-config`
/// shows).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Format {
    kind: Kind,
    /// The setting as written.
    text: String,
}

/// What a format writes: one JSON object per line, or its atoms in order.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Json,
    Atoms(Vec<Atom>),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    #[error("unknown access log atom %({0})s (known: {list})", list = known())]
    Unknown(String),
    #[error("unterminated %( at byte {0}: atoms are written %(NAME)s (and %% for a literal %)")]
    Unterminated(usize),
}

/// Every form the parser takes, from the tables waitressd.ini(5) lists: the atoms, then
/// `OTHER_FORMS` (`..., %({Header}o)s, or json`).
fn known() -> String {
    let mut list = ATOMS
        .iter()
        .map(|(k, _)| format!("%({k})s"))
        .collect::<Vec<_>>()
        .join(" ");
    for (i, (form, _)) in OTHER_FORMS.iter().enumerate() {
        list.push_str(match i + 1 == OTHER_FORMS.len() {
            true => ", or ",
            false => ", ",
        });
        list.push_str(form);
    }
    list
}

/// One response, as the access log sees it.
pub struct Entry<'a> {
    /// The request; `None` (or one whose request line was never parsed) logs `-` for `r`, `m`,
    /// `U`, `q`, `H` and the request headers.
    pub req: Option<&'a Request>,
    /// Client address (the trusted proxy's client when proxy headers were trusted).
    pub remote: &'a str,
    /// `[10/Oct/2000:13:55:36 +0000]`.
    pub time: &'a [u8],
    /// The status code, e.g. `200`.
    pub status: &'a str,
    /// Response body bytes sent.
    pub bytes: u64,
    pub elapsed: Duration,
    pub pid: u32,
    pub resp_headers: &'a [(String, String)],
}

impl Format {
    /// The default: Apache combined.
    pub fn combined() -> Format {
        Format::parse(COMBINED).expect("the default format parses")
    }

    pub fn parse(s: &str) -> Result<Format, FormatError> {
        Ok(Format {
            kind: Kind::parse(s)?,
            text: s.to_string(),
        })
    }

    /// The setting as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Appends one line (with its newline) for `e` to `out`.
    pub fn write(&self, e: &Entry, out: &mut Vec<u8>) {
        match &self.kind {
            Kind::Json => json(e, out),
            Kind::Atoms(atoms) => {
                for a in atoms {
                    match a {
                        Atom::Lit(l) => out.extend_from_slice(l),
                        Atom::Key(k) => key(e, *k, out),
                        Atom::ReqHeader(n) => {
                            dash_or(out, e.req.and_then(|r| r.header(n)));
                        }
                        Atom::RespHeader(n) => dash_or(out, resp_header(e, n)),
                    }
                }
                out.push(b'\n');
            }
        }
    }
}

impl Kind {
    fn parse(s: &str) -> Result<Kind, FormatError> {
        if s.trim().eq_ignore_ascii_case("json") {
            return Ok(Kind::Json);
        }
        let b = s.as_bytes();
        let mut atoms = Vec::new();
        let mut lit = Vec::new();
        let mut i = 0;
        while i < b.len() {
            if b[i] != b'%' {
                lit.push(b[i]);
                i += 1;
                continue;
            }
            if b.get(i + 1) == Some(&b'%') {
                lit.push(b'%');
                i += 2;
                continue;
            }
            if b.get(i + 1) != Some(&b'(') {
                lit.push(b'%');
                i += 1;
                continue;
            }
            let rest = &s[i + 2..];
            let end = rest.find(")s").ok_or(FormatError::Unterminated(i))?;
            let name = &rest[..end];
            if !lit.is_empty() {
                atoms.push(Atom::Lit(std::mem::take(&mut lit)));
            }
            atoms.push(atom(name)?);
            i += 2 + end + 2;
        }
        if !lit.is_empty() {
            atoms.push(Atom::Lit(lit));
        }
        Ok(Kind::Atoms(atoms))
    }
}

fn atom(name: &str) -> Result<Atom, FormatError> {
    if let Some(h) = name.strip_prefix('{') {
        if let Some(h) = h.strip_suffix("}i") {
            return Ok(Atom::ReqHeader(h.to_ascii_lowercase().into_bytes()));
        }
        if let Some(h) = h.strip_suffix("}o") {
            return Ok(Atom::RespHeader(h.to_ascii_lowercase()));
        }
    }
    match ATOMS.iter().find(|(k, _)| *k == name) {
        Some((k, _)) => Ok(Atom::Key(k.as_bytes()[0])),
        None => Err(FormatError::Unknown(name.to_string())),
    }
}

fn resp_header<'a>(e: &'a Entry, name: &str) -> Option<&'a [u8]> {
    e.resp_headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_bytes())
}

/// The request, if its request line was parsed.
fn parsed<'a>(e: &Entry<'a>) -> Option<&'a Request> {
    e.req.filter(|r| !r.method().is_empty())
}

fn key(e: &Entry, k: u8, out: &mut Vec<u8>) {
    let num = |out: &mut Vec<u8>, n: u128| {
        out.extend_from_slice(super::parse::decimal(n as u64, &mut [0; 20]));
    };
    match k {
        b'h' => escaped(out, e.remote.as_bytes()),
        b'l' => out.push(b'-'),
        b'u' => dash_or(out, basic_user(e.req).as_deref()),
        b't' => out.extend_from_slice(e.time),
        b'r' => match parsed(e) {
            Some(r) => {
                escaped(out, r.method());
                out.push(b' ');
                escaped(out, r.target());
                out.push(b' ');
                out.extend_from_slice(r.version().as_str().as_bytes());
            }
            None => out.push(b'-'),
        },
        b'm' => dash_or(out, parsed(e).map(|r| r.method())),
        b'U' => dash_or(out, parsed(e).map(|r| path_of(r.target()))),
        b'q' => {
            // gunicorn logs the query string as is, empty when there is none.
            if let Some(r) = parsed(e) {
                escaped(out, r.query());
            }
        }
        b'H' => dash_or(out, parsed(e).map(|r| r.version().as_str().as_bytes())),
        b's' => out.extend_from_slice(e.status.as_bytes()),
        b'B' => num(out, e.bytes as u128),
        b'b' if e.bytes == 0 => out.push(b'-'),
        b'b' => num(out, e.bytes as u128),
        b'f' => dash_or(out, e.req.and_then(|r| r.header(b"referer"))),
        b'a' => dash_or(out, e.req.and_then(|r| r.header(b"user-agent"))),
        b'T' => num(out, e.elapsed.as_secs() as u128),
        b'M' => num(out, e.elapsed.as_millis()),
        b'D' => num(out, e.elapsed.as_micros()),
        b'L' => out.extend_from_slice(format!("{:.6}", e.elapsed.as_secs_f64()).as_bytes()),
        b'p' => out.extend_from_slice(format!("<{}>", e.pid).as_bytes()),
        _ => out.push(b'-'),
    }
}

/// The raw path of a request-target (before `?`), as gunicorn's `%(U)s` (`RAW_URI` path).
fn path_of(target: &[u8]) -> &[u8] {
    target.split(|&b| b == b'?').next().unwrap_or_default()
}

fn dash_or(out: &mut Vec<u8>, v: Option<&[u8]>) {
    match v {
        Some(v) if !v.is_empty() => escaped(out, v),
        _ => out.push(b'-'),
    }
}

/// Copies `v`, escaping `"`, `\` and non-printable bytes as Apache does (`\xhh`), so a client
/// cannot forge log lines.
pub fn escaped(out: &mut Vec<u8>, v: &[u8]) {
    // Usually nothing needs escaping: copy printable runs whole (a push per byte cost a
    // hello-world line 1.2k instructions per request; callgrind, README "Performance").
    let plain = |b: &u8| matches!(b, 0x20..=0x7e) && *b != b'"' && *b != b'\\';
    let run = v.iter().position(|b| !plain(b)).unwrap_or(v.len());
    out.extend_from_slice(&v[..run]);
    for &b in &v[run..] {
        match b {
            b'"' | b'\\' => {
                out.push(b'\\');
                out.push(b);
            }
            0x20..=0x7e => out.push(b),
            _ => out.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
        }
    }
}

/// The user name of an `Authorization: Basic` header (RFC 7617), as gunicorn's `%(u)s`.
fn basic_user(req: Option<&Request>) -> Option<Vec<u8>> {
    let v = req?.header(b"authorization")?;
    let (scheme, cred) = v.split_at(v.iter().position(|&b| b == b' ')?);
    if !scheme.eq_ignore_ascii_case(b"basic") {
        return None;
    }
    let decoded = base64_decode(cred.trim_ascii())?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    Some(decoded[..colon].to_vec())
}

/// Standard base64 with optional padding; None on any other byte.
fn base64_decode(s: &[u8]) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let s = s.strip_suffix(b"==").or(s.strip_suffix(b"=")).unwrap_or(s);
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for &c in s {
        acc = (acc << 6) | val(c)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// Bytes as a JSON string: latin-1, so every byte survives (as PEP 3333 decodes them).
fn latin1(v: &[u8]) -> serde_json::Value {
    serde_json::Value::String(v.iter().map(|&b| b as char).collect())
}

/// `access_log_format = json`: one object per line.
fn json(e: &Entry, out: &mut Vec<u8>) {
    use serde_json::{json, Value};
    let r = parsed(e);
    let opt = |v: Option<&[u8]>| v.map_or(Value::Null, latin1);
    let time = std::str::from_utf8(e.time)
        .unwrap_or_default()
        .trim_matches(|c| c == '[' || c == ']');
    let obj = json!({
        "remote_addr": e.remote,
        "user": opt(basic_user(e.req).as_deref()),
        "time": time,
        "method": opt(r.map(|r| r.method())),
        "path": opt(r.map(|r| path_of(r.target()))),
        "query": opt(r.map(|r| r.query())),
        "protocol": r.map(|r| r.version().as_str()),
        "status": e.status.parse::<u16>().ok(),
        "bytes": e.bytes,
        "referer": opt(e.req.and_then(|r| r.header(b"referer"))),
        "user_agent": opt(e.req.and_then(|r| r.header(b"user-agent"))),
        "duration_us": e.elapsed.as_micros() as u64,
        "pid": e.pid,
    });
    let _ = serde_json::to_writer(&mut *out, &obj);
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::RequestParser;

    fn req(raw: &[u8]) -> Request {
        RequestParser::parse_complete(raw).unwrap().0
    }

    fn line(fmt: &str, req: Option<&Request>, bytes: u64) -> String {
        let e = Entry {
            req,
            remote: "10.0.0.1",
            time: b"[06/Dec/2026:07:00:00 +0000]",
            status: "200",
            bytes,
            elapsed: Duration::from_micros(1_234_567),
            pid: 42,
            resp_headers: &[("Content-Type".into(), "text/plain".into())],
        };
        let mut out = Vec::new();
        Format::parse(fmt).unwrap().write(&e, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn atoms_table() {
        let r = req(b"GET /a/b?x=1 HTTP/1.1\r\nHost: h\r\nReferer: http://r/\r\nUser-Agent: ua \"q\"\r\nAuthorization: Basic dXNlcjpwYXNz\r\nX-Id: 7\r\n\r\n");
        let cases = [
            (COMBINED, "10.0.0.1 - user [06/Dec/2026:07:00:00 +0000] \"GET /a/b?x=1 HTTP/1.1\" 200 13 \"http://r/\" \"ua \\\"q\\\"\"\n"),
            ("%(m)s %(U)s %(q)s %(H)s", "GET /a/b x=1 HTTP/1.1\n"),
            ("%(B)s %(b)s %(D)s %(M)s %(T)s %(L)s %(p)s", "13 13 1234567 1234 1 1.234567 <42>\n"),
            ("%({x-id}i)s %({X-Missing}i)s %({content-type}o)s", "7 - text/plain\n"),
            ("100%% %(s)s", "100% 200\n"),
        ];
        for (fmt, want) in cases {
            assert_eq!(line(fmt, Some(&r), 13), want, "{fmt}");
        }
        assert_eq!(
            line(COMBINED, None, 0),
            "10.0.0.1 - - [06/Dec/2026:07:00:00 +0000] \"-\" 200 - \"-\" \"-\"\n"
        );
    }

    #[test]
    fn bad_formats_name_the_fix() {
        for (fmt, want) in [
            ("%(x)s", "unknown access log atom %(x)s"),
            ("%(h", "unterminated %( at byte 0"),
        ] {
            let e = Format::parse(fmt).unwrap_err().to_string();
            assert!(e.starts_with(want), "{fmt}: {e}");
        }
        // The unknown-atom message offers every documented form.
        let e = FormatError::Unknown("x".into()).to_string();
        let forms = ATOMS.iter().map(|(k, _)| format!("%({k})s"));
        for form in forms.chain(OTHER_FORMS.iter().map(|(f, _)| f.to_string())) {
            assert!(e.contains(&form), "{form} missing from {e}");
        }
        assert!(e.ends_with(", %({Header}o)s, or json)"), "{e}");
        let json = Format::parse(" JSON ").unwrap();
        assert_eq!((json.kind, json.text.as_str()), (Kind::Json, " JSON "));
    }

    /// What waitressd.ini(5) documents is what the parser takes (and json's keys are the ones
    /// it names).
    #[test]
    fn documented_forms_parse() {
        for (k, _) in ATOMS {
            assert_eq!(
                Format::parse(&format!("%({k})s")).unwrap().kind,
                Kind::Atoms(vec![Atom::Key(k.as_bytes()[0])])
            );
        }
        let want = [
            Kind::Atoms(vec![Atom::ReqHeader(b"x-id".to_vec())]),
            Kind::Atoms(vec![Atom::RespHeader("x-id".into())]),
            Kind::Json,
        ];
        assert_eq!(OTHER_FORMS.len(), want.len());
        for ((form, _), want) in OTHER_FORMS.iter().zip(want) {
            let got = Format::parse(&form.replace("Header", "X-Id")).unwrap().kind;
            assert_eq!(got, want, "{form}");
        }
        let doc = OTHER_FORMS.iter().find(|(f, _)| *f == "json").unwrap().1;
        let v: serde_json::Value = serde_json::from_str(&line("json", None, 0)).unwrap();
        for key in v.as_object().unwrap().keys() {
            assert!(doc.contains(key.as_str()), "json's doc lacks {key}");
        }
    }

    #[test]
    fn json_lines_are_objects() {
        let r = req(b"POST /p?q=%E9 HTTP/1.0\r\nUser-Agent: \xe9\r\n\r\n");
        let l = line("json", Some(&r), 5);
        let v: serde_json::Value = serde_json::from_str(&l).unwrap();
        assert_eq!(v["method"], "POST");
        assert_eq!(v["query"], "q=%E9");
        assert_eq!(v["user_agent"], "\u{e9}");
        assert_eq!(v["status"], 200);
        assert_eq!(v["bytes"], 5);
        assert_eq!(v["user"], serde_json::Value::Null);
        assert_eq!(v["duration_us"], 1_234_567);
    }

    #[test]
    fn basic_auth_user() {
        assert_eq!(base64_decode(b"dXNlcjpwYXNz").unwrap(), b"user:pass");
        assert_eq!(base64_decode(b"YQ==").unwrap(), b"a");
        assert!(base64_decode(b"!!").is_none());
    }
}

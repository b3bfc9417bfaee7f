//! Header fields: RFC 9110 field syntax as waitress checks it (token name, no whitespace
//! before the colon, VCHAR/obs-text values), obs-fold joining, `_` names dropped, duplicates
//! merged, and the framing headers (Content-Length, Transfer-Encoding, Host, Connection,
//! Expect) decided with RFC 9112 strictness.
use std::ops::Range;

use super::decode::{is_field_byte, is_tchar};
use super::request::{Field, Span};
use super::{uri, HttpError, Request, Version};

/// How the body is framed, from the head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyKind {
    None,
    Length(u64),
    Chunked,
}

/// Headers that must appear at most once (smuggling shapes; waitress 3.0.2 merged them, its
/// main branch rejects them with this text).
const SINGLETONS: [(&[u8], &str); 3] = [
    (b"host", "Host"),
    (b"content-length", "Content-Length"),
    (b"content-type", "Content-Type"),
];

/// A continuation line whose content is `token ":"`: a field name to any parser that strips
/// leading whitespace instead of folding.
fn looks_like_a_field(line: &[u8]) -> bool {
    let t = line.trim_ascii_start();
    let name = t.iter().take_while(|&&c| is_tchar(c)).count();
    name > 0 && t.get(name) == Some(&b':')
}

/// Turns the raw header lines (from `fields_start`, each ending in CRLF at the offsets in
/// `line_ends`, bare CR/LF already excluded by the framing scan) into `req`'s fields and decides
/// the body framing. `scratch` is reused for obs-folded lines.
pub(crate) fn finish_head(
    req: &mut Request,
    fields_start: usize,
    line_ends: &[usize],
    scratch: &mut Vec<u8>,
) -> Result<BodyKind, HttpError> {
    let mut pos = fields_start;
    // The logical line being assembled: its raw range, and whether continuation lines were
    // appended to it in `scratch`.
    let mut cur: Option<Range<usize>> = None;
    let mut folded = false;
    for &end in line_ends {
        let line = pos..end - 2;
        pos = end;
        if line.is_empty() {
            continue;
        }
        if matches!(req.buf[line.start], b' ' | b'\t') {
            // obs-fold (RFC 9112 §5.2): accepted as waitress does, the CRLF removed and the
            // continuation's leading whitespace kept (`a\r\n  b` → `a  b`).
            let Some(c) = &cur else {
                return Err(HttpError::bad_request(format!(
                    "Malformed header line \"{}\"",
                    latin1(&req.buf[line])
                )));
            };
            if looks_like_a_field(&req.buf[line.clone()]) {
                // ` Content-Length: 40` read as a field by a front-end but folded into the
                // previous value here would frame the body as the next request: refused.
                return Err(HttpError::bad_request(format!(
                    "Malformed header line \"{}\" (a continuation line that looks like a header)",
                    latin1(&req.buf[line])
                )));
            }
            if !folded {
                scratch.clear();
                scratch.extend_from_slice(&req.buf[c.clone()]);
                folded = true;
            }
            scratch.extend_from_slice(&req.buf[line]);
            continue;
        }
        if let Some(c) = cur.replace(line) {
            add_field(req, c, folded.then_some(&scratch[..]))?;
            folded = false;
        }
    }
    if let Some(c) = cur {
        add_field(req, c, folded.then_some(&scratch[..]))?;
    }
    merge_repeats(req)?;
    framing(req)
}

/// Validates one logical field line (`token ":" OWS value OWS`, else "Invalid header") and
/// stores it (repeats are merged afterwards). `joined` holds the line when it was obs-folded.
fn add_field(req: &mut Request, raw: Range<usize>, joined: Option<&[u8]>) -> Result<(), HttpError> {
    let line = joined.unwrap_or(&req.buf[raw.clone()]);
    let colon = line.iter().position(|&c| !is_tchar(c));
    let colon = match colon {
        Some(n) if n > 0 && line[n] == b':' => n,
        _ => return Err(HttpError::bad_request("Invalid header")),
    };
    let value = &line[colon + 1..];
    if !valid_value(value) {
        return Err(HttpError::bad_request("Invalid header"));
    }
    // Only SP/HTAB are stripped (waitress 3.0.1; `\x85`/`\xa0` stay).
    let lead = value
        .iter()
        .take_while(|&&c| c == b' ' || c == b'\t')
        .count();
    let trail = value[lead..]
        .iter()
        .rev()
        .take_while(|&&c| c == b' ' || c == b'\t')
        .count();
    let vrange = colon + 1 + lead..line.len() - trail;
    let name = &line[..colon];
    if name.contains(&b'_') {
        // Dropped silently, as waitress does: `X_Foo` and `X-Foo` would both become HTTP_X_FOO.
        return Ok(());
    }
    let name_span = Span::new(raw.start..raw.start + colon);
    let value_span = match joined {
        Some(j) => {
            let v = j[vrange].to_vec();
            req.push_bytes(&v)
        }
        None => Span::new(raw.start + vrange.start..raw.start + vrange.end),
    };
    req.fields.push(Field {
        name: name_span,
        value: value_span,
    });
    Ok(())
}

/// Merges repeated fields into the first one, values joined with ", " in arrival order
/// (waitress §2.4), and refuses repeated Host/Content-Length/Content-Type. Linear in the head
/// size however many repeats there are (a naive merge is quadratic: a 256 KiB head of `X:a`
/// lines would copy gigabytes). Small heads without repeats (the common case) do not allocate.
fn name(r: &Request, i: usize) -> &[u8] {
    r.buf.get(r.fields[i].name.range()).unwrap_or_default()
}

fn merge_repeats(req: &mut Request) -> Result<(), HttpError> {
    let n = req.fields.len();
    if n <= 32 {
        let repeats =
            (1..n).any(|i| (0..i).any(|j| name(req, i).eq_ignore_ascii_case(name(req, j))));
        if !repeats {
            return Ok(());
        }
    }
    let mut order: Vec<u32> = (0..n as u32).collect();
    order.sort_by(|&a, &b| {
        let (x, y) = (name(req, a as usize), name(req, b as usize));
        x.iter()
            .map(u8::to_ascii_lowercase)
            .cmp(y.iter().map(u8::to_ascii_lowercase))
            .then(a.cmp(&b))
    });
    let mut drop = vec![false; n];
    let mut run = 0;
    while run < n {
        let first = order[run] as usize;
        let mut end = run + 1;
        while end < n && name(req, order[end] as usize).eq_ignore_ascii_case(name(req, first)) {
            end += 1;
        }
        if end - run > 1 {
            let nm = name(req, first);
            if let Some((_, canonical)) =
                SINGLETONS.iter().find(|(s, _)| nm.eq_ignore_ascii_case(s))
            {
                return Err(
                    HttpError::bad_request(format!("Duplicate header: {canonical}"))
                        .with_version(req.version),
                );
            }
            let start = req.buf.len();
            for (k, &i) in order[run..end].iter().enumerate() {
                if k > 0 {
                    req.buf.extend_from_slice(b", ");
                    drop[i as usize] = true;
                }
                req.buf
                    .extend_from_within(req.fields[i as usize].value.range());
            }
            req.fields[first].value = Span::new(start..req.buf.len());
        }
        run = end;
    }
    let mut i = 0;
    req.fields.retain(|_| {
        i += 1;
        !drop[i - 1]
    });
    Ok(())
}

/// Where the framing headers are (one pass over the names instead of one search each).
#[derive(Default)]
struct Known {
    te: Option<usize>,
    cl: Option<usize>,
    host: Option<usize>,
    conn: Option<usize>,
    expect: Option<usize>,
}

impl Known {
    fn scan(req: &Request) -> Known {
        let mut k = Known::default();
        for i in 0..req.fields.len() {
            let n = name(req, i);
            let slot = match n.len() {
                4 if n.eq_ignore_ascii_case(b"host") => &mut k.host,
                6 if n.eq_ignore_ascii_case(b"expect") => &mut k.expect,
                10 if n.eq_ignore_ascii_case(b"connection") => &mut k.conn,
                14 if n.eq_ignore_ascii_case(b"content-length") => &mut k.cl,
                17 if n.eq_ignore_ascii_case(b"transfer-encoding") => &mut k.te,
                _ => continue,
            };
            *slot = Some(i);
        }
        k
    }
}

/// Target, Transfer-Encoding, Content-Length, Host, Connection and Expect.
fn framing(req: &mut Request) -> Result<BodyKind, HttpError> {
    let v = req.version;
    let bad = |d: &'static str| HttpError::bad_request(d).with_version(v);

    // The path and query (waitress split_uri); the decoded path goes to the arena.
    let target = req.target.range();
    let split = uri::split_target(&req.buf[target.clone()]).ok_or_else(|| bad("Bad URI"))?;
    let path_start = req.buf.len();
    let raw_path = target.start + split.path.start..target.start + split.path.end;
    uri::percent_decode_within(&mut req.buf, raw_path);
    let collapsed = uri::collapse_leading_slashes(&req.buf[path_start..]).len();
    req.path = Span::new(req.buf.len() - collapsed..req.buf.len());
    req.query = Span::new(target.start + split.query.start..target.start + split.query.end);

    // Transfer-Encoding: never visible to the app (waitress pops it on HTTP/1.1).
    let known = Known::scan(req);
    let mut chunked = false;
    if let Some(i) = known.te {
        let te = req.fields.remove(i).value;
        if v == Version::Http10 {
            // RFC 9112 §6.1: TE in HTTP/1.0 means faulty framing (waitress ignored it).
            return Err(bad("Transfer-Encoding is not allowed in HTTP/1.0 requests"));
        }
        let mut codings = 0;
        let mut chunked_count = 0;
        for coding in req.buf[te.range()].split(|&c| c == b',') {
            let coding = trim_ows(coding);
            if coding.is_empty() {
                // RFC 9110 §5.6.1 lets recipients skip empty list elements, but a front-end
                // that does not would frame this message differently: refused, as hyper does.
                return Err(bad("Transfer-Encoding is invalid"));
            }
            codings += 1;
            if coding.eq_ignore_ascii_case(b"chunked") {
                chunked_count += 1;
            } else {
                return Err(HttpError::NotImplemented {
                    detail: "Transfer-Encoding requested is not supported.".into(),
                    version: v,
                });
            }
        }
        if codings == 0 {
            return Err(bad("Transfer-Encoding is invalid"));
        }
        if chunked_count > 1 {
            return Err(bad(
                "Transfer-Encoding is invalid. Multiple chunked encodings requested.",
            ));
        }
        chunked = true;
    }

    // Indices after the TE one moved down by one.
    let shift = |i: usize| match known.te {
        Some(t) if i > t => i - 1,
        _ => i,
    };
    let value =
        |r: &Request, i: Option<usize>| -> Option<Span> { i.map(|i| r.fields[shift(i)].value) };
    let (cl, host, conn, expect) = (
        value(req, known.cl),
        value(req, known.host),
        value(req, known.conn),
        value(req, known.expect),
    );
    let get = |s: Option<Span>| s.map(|s| &req.buf[s.range()]);
    let mut length = None;
    if let Some(cl) = get(cl) {
        if cl.is_empty() || !cl.iter().all(u8::is_ascii_digit) {
            return Err(bad("Content-Length is invalid"));
        }
        // Digits only; a value beyond u64 is certainly over any body limit (waitress parses
        // big integers and answers 413).
        length = Some(
            cl.iter()
                .try_fold(0u64, |a, &d| {
                    a.checked_mul(10)?.checked_add(u64::from(d - b'0'))
                })
                .unwrap_or(u64::MAX),
        );
    }
    if chunked && length.is_some() {
        // RFC 9112 §6.3: a request with both is a smuggling shape; waitressd refuses it.
        return Err(bad("Content-Length and Transfer-Encoding are both present"));
    }

    match get(host) {
        Some(h) if !valid_host(h) => return Err(bad("Invalid Host header")),
        None if v == Version::Http11 => return Err(bad("Missing Host header")),
        _ => {}
    }

    let conn = get(conn).unwrap_or_default();
    let keep_alive = match v {
        Version::Http10 => conn.eq_ignore_ascii_case(b"keep-alive"),
        // RFC 9112 §9.6: a `close` option anywhere in the list (`close, te`, or two merged
        // Connection fields) ends the connection, as hyper and every front-end read it;
        // waitress only honoured the exact value `close`.
        Version::Http11 => !conn
            .split(|&c| c == b',')
            .any(|t| trim_ows(t).eq_ignore_ascii_case(b"close")),
    };
    // RFC 9110 §9.3.6: after a CONNECT the client's bytes are a tunnel, not requests. An app
    // cannot tunnel, so the connection closes after the answer rather than read on what a
    // proxy in front would have passed through unparsed (waitress kept it open).
    let keep_alive = keep_alive && &req.buf[req.method.range()] != b"CONNECT";
    let expect_continue = v == Version::Http11
        && get(expect).is_some_and(|e| e.eq_ignore_ascii_case(b"100-continue"));
    req.keep_alive = keep_alive;
    req.expect_continue = expect_continue;

    req.content_length = length;
    Ok(match (chunked, length) {
        (true, _) => BodyKind::Chunked,
        (false, Some(n)) if n > 0 => BodyKind::Length(n),
        _ => BodyKind::None,
    })
}

/// Every byte is VCHAR, obs-text, SP or HTAB. Eight bytes at a time: a word with no byte below
/// 0x20 and none equal to 0x7f is valid; only words that might hold one (or a TAB) are checked
/// byte by byte.
fn valid_value(v: &[u8]) -> bool {
    const L: u64 = 0x0101_0101_0101_0101;
    const H: u64 = 0x8080_8080_8080_8080;
    let mut chunks = v.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        let x = u64::from_le_bytes(w);
        let below_space = x.wrapping_sub(L * 0x20) & !x & H;
        let d = x ^ (L * 0x7f);
        let del = d.wrapping_sub(L) & !d & H;
        if below_space | del != 0 && !c.iter().all(|&b| is_field_byte(b)) {
            return false;
        }
    }
    chunks.remainder().iter().all(|&b| is_field_byte(b))
}

fn trim_ows(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|&c| c != b' ' && c != b'\t')
        .unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|&c| c != b' ' && c != b'\t')
        .map_or(start, |e| e + 1);
    &s[start..end]
}

/// `uri-host [":" port]` (RFC 9112 §3.2, RFC 3986): reg-name / IPv4 / IP-literal characters
/// only; an empty Host is allowed (a target without authority).
fn valid_host(h: &[u8]) -> bool {
    h.iter()
        .all(|&c| uri::reg_name_char(c) || matches!(c, b'%' | b':' | b'[' | b']'))
}

/// Bytes as waitress shows them in messages (latin-1 decoded).
pub(crate) fn latin1(b: &[u8]) -> String {
    b.iter().map(|&c| c as char).collect()
}

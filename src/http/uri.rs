//! Request-target handling as waitress's `split_uri` (§2.5) and the environ's path rules
//! (§3.8): percent-decoding, leading-slash collapsing, `url_prefix` stripping.
use std::ops::Range;

/// The parts of a request-target (ranges into it) before decoding. The fragment is dropped and
/// the scheme/authority of absolute-form are ignored, as waitress does.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SplitTarget {
    pub path: Range<usize>,
    pub query: Range<usize>,
}

/// Splits a request-target like waitress: a target starting with `//` is a path taken verbatim
/// (so `//host/x` is not an authority); otherwise Python's `urlsplit` rules (a leading
/// `scheme:` and a following `//authority` are skipped, so `h.example:80/x` gives the path
/// `80/x` as in waitress). `None` means 400 "Bad URI" (non-ASCII bytes, unbalanced brackets).
pub fn split_target(target: &[u8]) -> Option<SplitTarget> {
    let mut start = 0;
    if !target.starts_with(b"//") {
        // urlsplit on bytes decodes them as ASCII first: UnicodeError → "Bad URI".
        if !target.is_ascii() {
            return None;
        }
        if let Some(i) = memchr::memchr(b':', target) {
            let scheme = &target[..i];
            if i > 0
                && scheme[0].is_ascii_alphabetic()
                && scheme
                    .iter()
                    .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'))
            {
                start = i + 1;
            }
        }
        if target[start..].starts_with(b"//") {
            let auth_start = start + 2;
            let auth_end = target[auth_start..]
                .iter()
                .position(|c| matches!(c, b'/' | b'?' | b'#'))
                .map_or(target.len(), |p| auth_start + p);
            let netloc = &target[auth_start..auth_end];
            if netloc.contains(&b'[') != netloc.contains(&b']') {
                return None; // urlsplit: ValueError("Invalid IPv6 URL")
            }
            start = auth_end;
        }
    }
    let end = memchr::memchr(b'#', &target[start..]).map_or(target.len(), |p| start + p);
    Some(match memchr::memchr(b'?', &target[start..end]) {
        Some(q) => SplitTarget {
            path: start..start + q,
            query: start + q + 1..end,
        },
        None => SplitTarget {
            path: start..end,
            query: end..end,
        },
    })
}

/// Whether `target` has a request-target form RFC 9112 §3.2 allows for `method`:
/// origin-form (starts with `/`; waitress's `//path` included), absolute-form
/// (`scheme://authority[/path]` with a non-empty authority, RFC 9110 §4.2: `http:/x`,
/// `urn:x` and waitress's `h.example:80/x` quirk are refused, as hyper does), authority-form
/// (`host:port`) only with CONNECT, which takes no other form (RFC 9110 §9.3.6), and
/// asterisk-form (`*`) only with OPTIONS. Anything else is answered 400 instead of being passed
/// to the app as a relative path (waitress passed `GET foo` on as PATH_INFO `foo`).
pub fn target_form_allowed(method: &[u8], target: &[u8]) -> bool {
    if method == b"CONNECT" {
        return is_authority_form(target);
    }
    match target.first() {
        Some(b'/') => true,
        Some(b'*') => target.len() == 1 && method == b"OPTIONS",
        _ => is_absolute_form(target),
    }
}

/// `scheme "://" authority` then nothing, or `/`, `?` (RFC 3986 §3.1 scheme: ALPHA
/// *( ALPHA / DIGIT / "+" / "-" / "." )), with a non-empty authority.
fn is_absolute_form(target: &[u8]) -> bool {
    let Some(colon) = memchr::memchr(b':', target) else {
        return false;
    };
    let scheme = &target[..colon];
    let scheme_ok = scheme.first().is_some_and(u8::is_ascii_alphabetic)
        && scheme
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'));
    let Some(rest) = target[colon + 1..].strip_prefix(b"//") else {
        return false;
    };
    let authority = rest
        .iter()
        .position(|c| matches!(c, b'/' | b'?' | b'#'))
        .map_or(rest, |p| &rest[..p]);
    scheme_ok && valid_authority(authority, false)
}

/// `uri-host ":" port` (RFC 9112 §3.2.3; CONNECT needs the port, RFC 9110 §9.3.6).
fn is_authority_form(target: &[u8]) -> bool {
    valid_authority(target, true)
}

/// `uri-host [":" port]` without userinfo (RFC 9110 §4.2.4): a bracketed IP literal or a
/// reg-name/IPv4 of unreserved and sub-delims (no pct-encoding: strict parsers refuse `%` in a
/// host, found by the differential fuzz target; no real host name needs it), then `:` and 1*DIGIT (`required`) or
/// optionally `:` *DIGIT.
fn valid_authority(a: &[u8], port_required: bool) -> bool {
    let host_end = match a.first() {
        Some(b'[') => match memchr::memchr(b']', a) {
            Some(e) => e + 1,
            None => return false,
        },
        _ => memchr::memchr(b':', a).unwrap_or(a.len()),
    };
    let (host, port) = a.split_at(host_end);
    let port_ok = match port {
        [] => !port_required,
        [b':', digits @ ..] => {
            digits.iter().all(u8::is_ascii_digit) && !(port_required && digits.is_empty())
        }
        _ => false,
    };
    let literal = |h: &[u8]| {
        h.iter()
            .all(|&c| c.is_ascii_hexdigit() || matches!(c, b':' | b'.' | b'v' | b'V'))
    };
    let host_ok = match host {
        [b'[', inner @ .., b']'] => !inner.is_empty() && literal(inner),
        [] => false,
        _ => host.iter().all(|&c| reg_name_char(c)),
    };
    port_ok && host_ok
}

/// RFC 3986 §3.2.2 reg-name characters without pct-encoding: unreserved and sub-delims.
pub(super) fn reg_name_char(c: u8) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
        )
}

/// Percent-decodes `src` into `out` like `urllib.parse.unquote_to_bytes`: `%XX` with two hex
/// digits becomes one byte, anything else (`%zz`, a lone `%`) stays literal.
pub fn percent_decode_into(src: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    while i < src.len() {
        let Some(p) = memchr::memchr(b'%', &src[i..]) else {
            out.extend_from_slice(&src[i..]);
            return;
        };
        out.extend_from_slice(&src[i..i + p]);
        i += p;
        match (src.get(i + 1).and_then(hex), src.get(i + 2).and_then(hex)) {
            (Some(h), Some(l)) => {
                out.push(h << 4 | l);
                i += 3;
            }
            _ => {
                out.push(b'%');
                i += 1;
            }
        }
    }
}

/// `percent_decode_into` for a range of `buf` itself, appending the result to `buf` (the request
/// arena), so no temporary is needed.
pub(crate) fn percent_decode_within(buf: &mut Vec<u8>, src: Range<usize>) {
    buf.reserve(src.len());
    let mut i = src.start;
    while i < src.end {
        let c = buf[i];
        if c == b'%' && i + 2 < src.end {
            if let (Some(h), Some(l)) = (hex(&buf[i + 1]), hex(&buf[i + 2])) {
                buf.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        buf.push(c);
        i += 1;
    }
}

fn hex(c: &u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Collapses a run of leading slashes to one (`//a//b` → `/a//b`), as waitress's environ does.
pub fn collapse_leading_slashes(path: &[u8]) -> &[u8] {
    let n = path.iter().take_while(|&&c| c == b'/').count();
    if n > 1 {
        &path[n - 1..]
    } else {
        path
    }
}

/// PATH_INFO from the request's decoded path and the `url_prefix` setting (SCRIPT_NAME is always
/// the prefix): equal → `""`; starts with `prefix + "/"` → the rest from that slash; otherwise
/// (`/foobar` under `/foo`, case mismatch) unchanged.
pub fn path_info<'a>(path: &'a [u8], url_prefix: &[u8]) -> &'a [u8] {
    if url_prefix.is_empty() {
        return path;
    }
    if path == url_prefix {
        return &path[path.len()..];
    }
    match path.strip_prefix(url_prefix) {
        Some(rest) if rest.first() == Some(&b'/') => rest,
        _ => path,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(t: &str) -> Option<(String, String)> {
        let b = t.as_bytes();
        split_target(b).map(|s| {
            let mut p = Vec::new();
            percent_decode_into(&b[s.path], &mut p);
            (
                String::from_utf8_lossy(&p).into_owned(),
                String::from_utf8_lossy(&b[s.query]).into_owned(),
            )
        })
    }

    #[test]
    fn split_uri_matches_waitress_table() {
        for (target, path, query) in [
            ("/", "/", ""),
            ("/a/b?x=1&y=2", "/a/b", "x=1&y=2"),
            ("/a?x#frag", "/a", "x"),
            ("/a#frag?notquery", "/a", ""),
            ("//host/x?q", "//host/x", "q"),
            ("//a//b#f", "//a//b", ""),
            ("http://h:8080/p?q", "/p", "q"),
            ("https://h", "", ""),
            ("*", "*", ""),
            ("h.example:80/x", "80/x", ""),
            ("/a:b", "/a:b", ""),
            ("/%2F%2f/x%20y", "////x y", ""),
            ("/%zz%4", "/%zz%4", ""),
            ("/q??a", "/q", "?a"),
        ] {
            assert_eq!(
                split(target),
                Some((path.to_string(), query.to_string())),
                "{target}"
            );
        }
    }

    #[test]
    fn request_target_forms_follow_rfc9112() {
        for (method, target, ok) in [
            ("GET", "/", true),
            ("GET", "//host/x", true),
            ("GET", "http://h/p", true),
            ("GET", "https://h:8443", true),
            ("GET", "h.example:80/x", false),
            ("GET", "urn:x", false),
            ("GET", "http:/h/p", false),
            ("GET", "http:///p", false),
            ("GET", "http://h?q", true),
            ("GET", "http://h:8080/p", true),
            ("GET", "http://[::1]/p", true),
            ("GET", "http://`.example/p", false),
            ("GET", "http://::.example/p", false),
            ("GET", "http://u@h/p", false),
            ("GET", "http://h:x/p", false),
            ("GET", "http://exAmpl-%.com/p", false),
            ("GET", "http://h%4/p", false),
            ("GET", "http://h%41/p", false),
            ("OPTIONS", "*", true),
            ("OPTIONS", "/x", true),
            ("CONNECT", "h.example:443", true),
            ("CONNECT", "127.0.0.1:80", true),
            ("CONNECT", "[::1]:8443", true),
            ("GET", "*", false),
            ("POST", "*", false),
            ("OPTIONS", "**", false),
            ("OPTIONS", "*/x", false),
            ("GET", "foo", false),
            ("GET", "foo/bar", false),
            ("GET", "?x=1", false),
            ("GET", "#f", false),
            ("GET", "127.0.0.1:80", false),
            ("GET", "[::1]:80", false),
            ("GET", ":80", false),
            ("GET", "1http://h/", false),
            ("CONNECT", "/", false),
            ("CONNECT", "http://h:80/", false),
            ("CONNECT", "h.example", false),
            ("CONNECT", "h.example:", false),
            ("CONNECT", ":443", false),
            ("CONNECT", "h/x:443", false),
            ("CONNECT", "user@h:443", false),
            ("CONNECT", "[::1:443", false),
            ("CONNECT", "*", false),
        ] {
            assert_eq!(
                target_form_allowed(method.as_bytes(), target.as_bytes()),
                ok,
                "{method} {target}"
            );
        }
    }

    #[test]
    fn percent_decoding_gives_raw_bytes() {
        let mut out = Vec::new();
        percent_decode_into(b"/%E2%82%AC", &mut out);
        assert_eq!(out, b"/\xe2\x82\xac");
    }

    #[test]
    fn bad_uris() {
        assert_eq!(split_target(b"/\xff"), None);
        assert_eq!(split_target(b"http://[::1/x"), None);
        assert!(
            split_target(b"//\xff").is_some(),
            "waitress takes // paths verbatim"
        );
    }

    #[test]
    fn leading_slashes_collapse() {
        assert_eq!(collapse_leading_slashes(b"//a//b"), b"/a//b");
        assert_eq!(collapse_leading_slashes(b"///"), b"/");
        assert_eq!(collapse_leading_slashes(b"/a"), b"/a");
        assert_eq!(collapse_leading_slashes(b"*"), b"*");
    }

    #[test]
    fn url_prefix_table_from_waitress() {
        for (path, prefix, want) in [
            ("/foo", "/foo", ""),
            ("/foo/", "/foo", "/"),
            ("/foo/bar", "/foo", "/bar"),
            ("/foobar", "/foo", "/foobar"),
            ("/FOO/bar", "/foo", "/FOO/bar"),
            ("/x", "", "/x"),
            ("/", "/foo", "/"),
        ] {
            assert_eq!(
                path_info(path.as_bytes(), prefix.as_bytes()),
                want.as_bytes(),
                "{path} {prefix}"
            );
        }
    }
}

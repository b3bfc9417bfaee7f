//! Response head tables: hop-by-hop names and Content-Length parsing, re-casing, sorting,
//! Server/Via, Date, lengths, and the framing/keep-alive matrix.
use super::*;
use crate::http::encode::Framing;

const DATE: &[u8] = b"Sat, 21 Nov 2026 04:19:33 GMT";

fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

fn meta(version: Version, keep_alive: bool, is_head: bool) -> RequestMeta {
    RequestMeta {
        version,
        keep_alive,
        is_head,
    }
}

fn head(
    req: RequestMeta,
    status: &str,
    headers: &[(String, String)],
    cl: Option<u64>,
    ident: Option<&str>,
) -> (String, BodyEncoder) {
    let mut out = b"previous".to_vec();
    let enc = ResponseHead {
        request: req,
        status,
        headers,
        content_length: cl,
        ident,
        date: DATE,
    }
    .encode(&mut out)
    .unwrap();
    assert!(out.starts_with(b"previous"), "appends");
    (out[8..].iter().map(|&c| c as char).collect(), enc)
}

/// The hop-by-hop names (any case) the WSGI layer refuses; 3.0.2 allows `Trailer`.
#[test]
fn hop_by_hop_names_in_any_case() {
    for name in [
        "connection",
        "Keep-Alive",
        "Transfer-Encoding",
        "TE",
        "Trailers",
        "Upgrade",
        "Proxy-Authenticate",
        "Proxy-Authorization",
    ] {
        assert!(is_hop_by_hop(name), "{name}");
    }
    for name in ["Trailer", "X", "Content-Length", "Connections"] {
        assert!(!is_hop_by_hop(name), "{name}");
    }
}

/// Content-Length as Python's `int()` reads it, non-negative (the wsgi layer's
/// `content_length_parse_table` has the rest).
#[test]
fn parse_int_reads_content_lengths_as_int_does() {
    assert_eq!(parse_int(" +1_0 "), Some(10));
    assert_eq!(parse_int("abc"), None);
    assert_eq!(parse_int("-1"), None);
}

#[test]
fn header_names_are_recased_and_sorted_stably() {
    let headers = h(&[
        ("x-custom-HEADER", "1"),
        ("Set-Cookie", "b=2"),
        ("WWW-Authenticate", "Basic"),
        ("set-cookie", "a=1"),
        ("ETag", "\"e\""),
        ("content-md5", "m"),
    ]);
    let (s, _) = head(
        meta(Version::Http11, true, false),
        "200 OK",
        &headers,
        Some(0),
        Some("waitress"),
    );
    assert_eq!(
        s,
        "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nContent-Md5: m\r\nDate: Sat, 21 Nov 2026 04:19:33 GMT\r\n\
         Etag: \"e\"\r\nServer: waitress\r\nSet-Cookie: b=2\r\nSet-Cookie: a=1\r\n\
         Www-Authenticate: Basic\r\nX-Custom-Header: 1\r\n\r\n"
    );
}

#[test]
fn more_headers_than_fit_on_the_stack_sort_the_same_way() {
    // 70 app headers: past the stack slots, the same stable order (repeats keep theirs).
    let mut pairs: Vec<(String, String)> = (0..68)
        .map(|i| (format!("x-h{:02}", 67 - i), i.to_string()))
        .collect();
    pairs.push(("Set-Cookie".into(), "b".into()));
    pairs.push(("set-cookie".into(), "a".into()));
    let (s, _) = head(
        meta(Version::Http11, true, false),
        "200 OK",
        &pairs,
        Some(0),
        None,
    );
    let names: Vec<&str> = s
        .lines()
        .skip(1)
        .filter_map(|l| l.split(':').next())
        .collect();
    let mut want = vec!["Content-Length", "Date", "Set-Cookie", "Set-Cookie"];
    let xs: Vec<String> = (0..68).map(|i| format!("X-H{i:02}")).collect();
    want.extend(xs.iter().map(|x| x.as_str()));
    assert_eq!(&names[..want.len()], &want[..]);
    assert!(s.contains("Set-Cookie: b\r\nSet-Cookie: a\r\n"));
    assert!(s.contains("X-H00: 67\r\n"));
}

#[test]
fn server_via_and_date() {
    let m = meta(Version::Http11, true, false);
    let (s, _) = head(m, "200 OK", &h(&[]), Some(0), None);
    assert!(
        !s.contains("Server:") && !s.contains("Via:"),
        "no ident, no Server"
    );
    let (s, _) = head(
        m,
        "200 OK",
        &h(&[("Server", "app/1")]),
        Some(0),
        Some("waitress"),
    );
    assert!(s.contains("Server: app/1\r\n") && s.contains("Via: waitress\r\n"));
    let (s, _) = head(m, "200 OK", &h(&[("server", "app/1")]), Some(0), None);
    assert!(
        s.contains("Via: waitress\r\n"),
        "Via falls back to waitress"
    );
    let (s, _) = head(m, "200 OK", &h(&[("Server", "a")]), Some(0), Some("mine"));
    assert!(s.contains("Via: mine\r\n"));
    // ident goes out as latin-1 (one byte 0xE9), as waitress encodes it, not as UTF-8.
    let (s, _) = head(m, "200 OK", &h(&[]), Some(0), Some("caf\u{e9}"));
    assert!(s.contains("Server: caf\u{e9}\r\n"), "{s:?}");
    let (s, _) = head(
        m,
        "200 OK",
        &h(&[("Server", "a")]),
        Some(0),
        Some("caf\u{e9}"),
    );
    assert!(s.contains("Via: caf\u{e9}\r\n"), "{s:?}");
    let (s, _) = head(m, "200 OK", &h(&[("date", "yesterday")]), Some(0), None);
    assert!(s.contains("Date: yesterday\r\n") && !s.contains(std::str::from_utf8(DATE).unwrap()));
}

#[test]
fn header_names_are_tokens_and_values_have_no_control_bytes() {
    for (name, value) in [
        ("X-A", "b"),
        ("x_a!#$%&'*+-.^`|~", ""),
        ("X", "caf\u{e9} \t\u{20ac}"),
        ("X-caf\u{e9}", "b"),
    ] {
        assert!(header_ok(name, value), "{name:?}: {value:?}");
    }
    for (name, value) in [
        ("", "b"),
        ("Transfer-Encoding ", "chunked"),
        ("Content-Length\t", "3"),
        ("X A", "b"),
        ("X-A: b", "c"),
        ("caf\u{e9} ", "b"),
        ("X", "a\0b"),
        ("X", "a\x7fb"),
        ("X", "a\x0bb"),
        ("X", "a\rb"),
    ] {
        assert!(!header_ok(name, value), "{name:?}: {value:?}");
    }
}

/// The fast check passes only headers that every full check passes (ASCII, no CR or LF,
/// `header_ok`), and every plain ASCII header that `header_ok` passes: every byte in names and
/// values, around common text.
#[test]
fn plain_headers_are_exactly_the_ascii_ones_header_ok_passes() {
    for b in 0..=255u8 {
        let c = char::from(b);
        for (name, value) in [
            (format!("X{c}"), "v".to_string()),
            ("X".to_string(), format!("a{c}b")),
            ("X".to_string(), format!("{}{c}", "y".repeat(40))),
        ] {
            let full = name.is_ascii()
                && value.is_ascii()
                && !name.contains(['\r', '\n'])
                && !value.contains(['\r', '\n'])
                && header_ok(&name, &value);
            assert_eq!(header_plain(&name, &value), full, "{name:?}: {value:?}");
        }
    }
    assert!(!header_plain("", "v"));
}

#[test]
fn status_lines_start_with_a_three_digit_code_and_a_space() {
    for ok in [
        "200 OK",
        "200",
        "999 WHATEVER",
        "100 Continue",
        "404 ",
        "302 Found \u{e9}",
    ] {
        assert!(status_line_ok(ok), "{ok:?}");
    }
    for bad in [
        "",
        "OK",
        "2000 OK",
        "20 OK",
        "200OK",
        "200\tOK",
        " 200 OK",
        "099 Low",
        "2x0 OK",
        "20",
        "\u{e9}00 OK",
    ] {
        assert!(!status_line_ok(bad), "{bad:?}");
    }
}

#[test]
fn status_is_verbatim_and_latin1_is_enforced() {
    let m = meta(Version::Http11, true, false);
    let (s, _) = head(m, "999 WHATEVER", &h(&[]), Some(0), None);
    assert!(s.starts_with("HTTP/1.1 999 WHATEVER\r\n"));
    let (s, _) = head(m, "200", &h(&[("X", "caf\u{e9}")]), Some(0), None);
    assert!(s.starts_with("HTTP/1.1 200\r\n"));
    let mut out = Vec::new();
    let r = ResponseHead {
        request: m,
        status: "200 OK",
        headers: &h(&[("X", "caf\u{e9}")]),
        content_length: Some(0),
        ident: None,
        date: DATE,
    }
    .encode(&mut out);
    assert!(r.is_ok());
    assert!(out.windows(5).any(|w| w == b"caf\xe9\r"), "latin-1 byte");
    let mut out = b"keep".to_vec();
    let e = ResponseHead {
        request: m,
        status: "200 OK",
        headers: &h(&[("X", "\u{20ac}")]),
        content_length: Some(0),
        ident: None,
        date: DATE,
    }
    .encode(&mut out)
    .unwrap_err();
    assert!(matches!(e, ResponseError::NotLatin1 { .. }));
    assert_eq!(out, b"keep", "nothing written on error");
}

#[test]
fn content_length_comes_from_the_app_or_inference_and_is_dropped_without_body() {
    let m = meta(Version::Http11, true, false);
    let (s, e) = head(m, "200 OK", &h(&[("content-length", "5")]), Some(5), None);
    assert!(s.contains("Content-Length: 5\r\n") && !s.contains("content-length"));
    assert_eq!(e.framing(), Framing::Length(5));
    let (s, _) = head(m, "200 OK", &h(&[]), Some(12), None);
    assert!(
        s.contains("Content-Length: 12\r\n"),
        "inferred length is sent"
    );
    for status in [
        "204 No Content",
        "304 Not Modified",
        "101 Switching",
        "100 Continue",
    ] {
        let (s, e) = head(m, status, &h(&[("Content-Length", "5")]), Some(5), None);
        assert!(!s.contains("Content-Length"), "{status}");
        assert!(!s.contains("Transfer-Encoding"), "{status}");
        assert_eq!(e.framing(), Framing::None);
        // A 1xx is interim to the client, which waits on for a final response: closed.
        assert_eq!(e.keep_alive(), !status.starts_with('1'), "{status}");
    }
}

#[path = "response_matrix_tests.rs"]
mod matrix;

#[test]
fn never_panics_on_arbitrary_app_heads() {
    let alphabet = [
        'a', 'Z', '-', ' ', ':', '\r', '\n', '\u{e9}', '\u{20ac}', '0', '1', '_',
    ];
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut word = |n: u64| -> String {
        (0..next() % n)
            .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
            .collect()
    };
    for _ in 0..3000 {
        let status = word(12);
        let headers: Vec<(String, String)> = (0..4).map(|_| (word(10), word(10))).collect();
        // The last Content-Length, as the WSGI layer reads it (it refuses a bad one).
        let cl = headers
            .iter()
            .rev()
            .find(|(name, _)| is_content_length(name))
            .and_then(|(_, value)| parse_int(value));
        for v in [Version::Http10, Version::Http11] {
            let mut out = Vec::new();
            if let Ok(mut e) = (ResponseHead {
                request: meta(v, true, false),
                status: &status,
                headers: &headers,
                content_length: cl,
                ident: Some("w"),
                date: DATE,
            })
            .encode(&mut out)
            {
                let _ = e.encode(b"abc");
                let _ = e.finish(&status);
            }
        }
    }
}

/// The key's re-casing, 16 bytes at once, agrees with the byte loop for every byte value at
/// every position and after a dash, and on pseudo-random names.
#[test]
fn recase_key_agrees_with_the_byte_loop() {
    let check = |b: [u8; 16]| {
        let mut want = b;
        recase_ascii(&mut want);
        assert_eq!(
            recase_key(u128::from_be_bytes(b)).to_be_bytes(),
            want,
            "{b:?}"
        );
    };
    for pos in 0..16 {
        for v in 0..=255u8 {
            let mut b = *b"aB-cD-eFgH-ijKL-";
            b[pos] = v;
            check(b);
        }
    }
    let alphabet = b"aAzZ-_@[`{\x00\x7f\x80\xc3\xa9\xe2\xad";
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..20_000 {
        let mut b = [0u8; 16];
        for c in &mut b {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            *c = alphabet[(seed % alphabet.len() as u64) as usize];
        }
        check(b);
    }
}

/// waitress's head, written the plain way: names re-cased by characters, a stable sort on the
/// re-cased names, latin-1 for status, names and values.
fn reference_lines(headers: &[(String, String)], own: &[(&str, String)]) -> Option<Vec<u8>> {
    let recased = |n: &str| -> String {
        let mut up = true;
        n.chars()
            .map(|c| {
                let r = if up {
                    c.to_ascii_uppercase()
                } else {
                    c.to_ascii_lowercase()
                };
                up = c == '-';
                r
            })
            .collect()
    };
    let mut lines: Vec<(String, String)> = headers
        .iter()
        .filter(|(n, _)| !n.eq_ignore_ascii_case("content-length"))
        .map(|(n, v)| (recased(n), v.clone()))
        .chain(own.iter().map(|(n, v)| (n.to_string(), v.clone())))
        .collect();
    lines.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = Vec::new();
    for (n, v) in lines {
        for c in n.chars().chain(": ".chars()).chain(v.chars()) {
            out.push(u8::try_from(u32::from(c)).ok()?);
        }
        out.extend_from_slice(b"\r\n");
    }
    Some(out)
}

/// The keyed sort and the fast writes agree with [`reference_lines`] on many heads: names that
/// tie in their first 15 bytes, repeats in any case, prefixes, NUL, non-ASCII and non-latin-1
/// characters, more lines than the stack holds.
#[test]
fn encode_agrees_with_a_plain_reference() {
    let parts = [
        "content-",
        "Content-",
        "x",
        "X",
        "-",
        "a",
        "Set-Cookie",
        "set-cookie",
        "\0",
        "\u{e9}",
        "\u{20ac}",
        "date",
        "server",
        "very-long-header-name-",
        "Www",
        "_",
        "e",
        "type",
    ];
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    for round in 0..4000 {
        let n_headers = if round % 50 == 0 { 30 } else { next(8) };
        let headers: Vec<(String, String)> = (0..n_headers)
            .map(|i| {
                let name: String = (0..1 + next(4)).map(|_| parts[next(parts.len())]).collect();
                let value = if next(20) == 0 {
                    "\u{e9}t\u{e9}".to_string()
                } else {
                    i.to_string()
                };
                (name, value)
            })
            .collect();
        let m = meta(Version::Http11, true, false);
        let mut out = Vec::new();
        let r = ResponseHead {
            request: m,
            status: "200 OK",
            headers: &headers,
            content_length: Some(3),
            ident: Some("waitress"),
            date: DATE,
        }
        .encode(&mut out);
        let mut own = vec![("Content-Length", "3".to_string())];
        if headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("server"))
        {
            own.push(("Via", "waitress".into()));
        } else {
            own.push(("Server", "waitress".into()));
        }
        if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("date")) {
            own.push(("Date", String::from_utf8(DATE.to_vec()).unwrap()));
        }
        match reference_lines(&headers, &own) {
            Some(lines) => {
                assert!(r.is_ok(), "{headers:?}");
                let mut want = b"HTTP/1.1 200 OK\r\n".to_vec();
                want.extend_from_slice(&lines);
                want.extend_from_slice(b"\r\n");
                assert_eq!(
                    String::from_utf8_lossy(&out),
                    String::from_utf8_lossy(&want),
                    "{headers:?}"
                );
                assert_eq!(out, want, "{headers:?}");
            }
            None => {
                assert!(r.is_err(), "{headers:?}");
                assert!(out.is_empty(), "nothing written on error");
            }
        }
    }
}

/// The two-word compare is `eq_ignore_ascii_case("content-length")`: every case mix, every
/// byte replaced by each value (CR where the dash is: 0x0d | 0x20 is the dash), other lengths.
#[test]
fn is_content_length_is_eq_ignore_ascii_case() {
    let lower = b"content-length";
    let check = |b: &[u8]| {
        let s = String::from_utf8_lossy(b);
        assert_eq!(
            is_content_length(&s),
            s.eq_ignore_ascii_case("content-length"),
            "{s:?}"
        );
    };
    for mask in 0..1u32 << 14 {
        let b: Vec<u8> = lower
            .iter()
            .enumerate()
            .map(|(i, &c)| {
                if mask >> i & 1 == 1 {
                    c.to_ascii_uppercase()
                } else {
                    c
                }
            })
            .collect();
        assert!(is_content_length(std::str::from_utf8(&b).unwrap()));
    }
    for at in 0..14 {
        for v in 0..=255u8 {
            let mut b = *b"Content-Length";
            b[at] = v;
            check(&b);
        }
    }
    for s in [
        "",
        "content-lengt",
        "content-lengthh",
        "content_length",
        "Content-Length\r",
        "Content-Type",
    ] {
        check(s.as_bytes());
    }
}

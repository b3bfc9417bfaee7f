//! Size limits (431, 413), chunked edge cases and the waitress advisories (§2.11).
use super::*;

fn limits(header: u64, body: u64) -> Limits {
    Limits {
        max_request_header_size: header,
        max_request_body_size: body,
    }
}

#[test]
fn header_size_exactly_at_limit_is_431_one_below_is_accepted() {
    let head: &[u8] = b"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n";
    let n = head.len() as u64;
    let e = run(&[head], limits(n, 100)).pop().unwrap().unwrap_err();
    assert_eq!(
        (e.status(), e.detail().into_owned()),
        (431, format!("exceeds max_header of {n}"))
    );
    assert_eq!(e.version(), Version::Http10);
    assert!(run(&[head], limits(n + 1, 100)).pop().unwrap().is_ok());
    // Body bytes in the same packet do not count.
    let with_body = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 40\r\n\r\n0123456789012345678901234567890123456789";
    assert!(run(&[with_body], limits(49, 100)).pop().unwrap().is_ok());
}

#[test]
fn endless_header_stream_is_cut_off_at_the_limit() {
    let mut p = RequestParser::new(limits(1000, 100));
    let mut req = Request::new();
    let mut body = OverflowableBuffer::new(1024);
    p.feed(b"GET / HTTP/1.1\r\n", &mut req, &mut body).unwrap();
    let flood = b"X-Flood: yyyyyyyyyyyyyyyyyyyyyy\r\n".repeat(10_000);
    let e = p.feed(&flood, &mut req, &mut body).unwrap_err();
    assert_eq!(e.status(), 431);
    assert!(
        req.buf.len() <= 1000,
        "the head buffer stays under the limit"
    );
    // Endless empty lines too.
    let mut p = RequestParser::new(limits(1000, 100));
    let e = p
        .feed(&b"\r\n".repeat(600), &mut req, &mut body)
        .unwrap_err();
    assert_eq!(e.status(), 431);
}

#[test]
fn content_length_at_body_limit_is_413_before_the_body() {
    let req = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n";
    let e = run(&[req], limits(1000, 10)).pop().unwrap().unwrap_err();
    assert_eq!(
        (e.status(), e.detail().as_ref()),
        (413, "exceeds max_body of 10")
    );
    assert_eq!(e.version(), Version::Http11);
    let ok = run(&[req, b"0123456789"], limits(1000, 11)).pop().unwrap();
    assert_eq!(ok.unwrap().body, b"0123456789");
    let huge = b"POST / HTTP/1.0\r\nContent-Length: 99999999999999999999\r\n\r\n";
    let e = run(&[huge], limits(1000, 1 << 30))
        .pop()
        .unwrap()
        .unwrap_err();
    assert_eq!((e.status(), e.version()), (413, Version::Http10));
    // Content-Length: 0 never trips the limit (waitress checks only CL > 0).
    let zero = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n";
    let p = run(&[zero], limits(1000, 0)).pop().unwrap().unwrap();
    assert_eq!(p.content_length, Some(0));
}

#[test]
fn chunked_body_limit_counts_raw_bytes() {
    let head: &[u8] = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
    let body: &[u8] = b"5;ext=1\r\nhello\r\n0\r\nT: x\r\n\r\n";
    let raw = body.len() as u64;
    let e = run(&[head, body], limits(1000, raw))
        .pop()
        .unwrap()
        .unwrap_err();
    assert_eq!(
        (e.status(), e.detail().into_owned()),
        (413, format!("exceeds max_body of {raw}"))
    );
    let p = run(&[head, body], limits(1000, raw + 1))
        .pop()
        .unwrap()
        .unwrap();
    assert_eq!(p.body, b"hello");
    // An endless chunked body stops at the limit.
    let mut parser = RequestParser::new(limits(1000, 4096));
    let mut req = Request::new();
    let mut buf = OverflowableBuffer::new(1 << 20);
    parser.feed(head, &mut req, &mut buf).unwrap();
    let endless = b"10\r\n0123456789abcdef\r\n".repeat(1000);
    let e = parser.feed(&endless, &mut req, &mut buf).unwrap_err();
    assert_eq!(e.status(), 413);
    assert!(buf.len() < 4096);
}

fn chunked(body: &[u8]) -> Result<Parsed, HttpError> {
    let mut input = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    input.extend_from_slice(body);
    let r = run(&[&input], BIG).pop().expect("complete or failed");
    // Byte by byte gives the same outcome.
    let bytes: Vec<&[u8]> = input.chunks(1).collect();
    assert_eq!(run(&bytes, BIG).pop(), Some(r.clone()), "{:?}", s(body));
    r
}

#[test]
fn chunked_decoding_edge_cases() {
    for (body, want) in [
        (&b"0\r\n\r\n"[..], &b""[..]),
        (b"000\r\n\r\n", b""),
        (b"1\r\na\r\n0\r\n\r\n", b"a"),
        (b"A\r\n0123456789\r\n0\r\n\r\n", b"0123456789"),
        (b"a\r\n0123456789\r\n0\r\n\r\n", b"0123456789"),
        (b"0001\r\nz\r\n0\r\n\r\n", b"z"),
        (b"1;a\r\nx\r\n0;b=c;d=\"e f\"\r\n\r\n", b"x"),
        (b"1;a=\"\\\"q\"\r\nx\r\n0\r\n\r\n", b"x"),
        (b"1\r\nx\r\n0\r\nA: 1\r\nB-C: two words\r\n\r\n", b"x"),
        (b"1\r\nx\r\n0\r\nEmpty:\r\n\r\n", b"x"),
    ] {
        assert_eq!(chunked(body).unwrap().body, want, "{:?}", s(body));
    }
    for (body, detail) in [
        (&b"0x20\r\n"[..], "Invalid chunk size"),
        (b"+1\r\nx\r\n", "Invalid chunk size"),
        (b"-1\r\nx\r\n", "Invalid chunk size"),
        (b"1 \r\nx\r\n", "Invalid chunk size"),
        (b";a\r\nx\r\n", "Invalid chunk size"),
        (b"g\r\n", "Invalid chunk size"),
        (b"\r\n", "Invalid chunk size"),
        // waitress skips an empty chunk-size line; RFC 9112 has none: rejected.
        (b"1\r\nx\r\n\r\n1\r\ny\r\n0\r\n\r\n", "Invalid chunk size"),
        (b"1\nx\r\n", "Invalid chunk size"),
        (b"1\rx", "Invalid chunk size"),
        (b"10000000000000000\r\n", "Invalid chunk size"),
        (b"1; a=b\r\nx\r\n", "Invalid chunk extension"),
        (b"1;a =b\r\nx\r\n", "Invalid chunk extension"),
        (b"1;a= b\r\nx\r\n", "Invalid chunk extension"),
        (b"1;a=b c\r\nx\r\n", "Invalid chunk extension"),
        (b"1;\r\nx\r\n", "Invalid chunk extension"),
        (b"1;a=\"x\r\n", "Invalid chunk extension"),
        (b"1;a=\"x\"y\r\n", "Invalid chunk extension"),
        (b"1\r\nxy\r\n", "Chunk not properly terminated"),
        (b"1\r\nx\n", "Chunk not properly terminated"),
        (b"1\r\nx\r\r", "Chunk not properly terminated"),
        (b"0\r\nBad Name: x\r\n\r\n", "Invalid trailer"),
        (b"0\r\nX : x\r\n\r\n", "Invalid trailer"),
        (b"0\r\n folded\r\n\r\n", "Invalid trailer"),
        (b"0\r\nX: a\x01\r\n\r\n", "Invalid trailer"),
        (b"0\r\nX: a\nY: b\r\n\r\n", "Invalid trailer"),
        (b"0\r\n\n", "Invalid trailer"),
    ] {
        let e = chunked(body).unwrap_err();
        assert_eq!(
            (e.status(), e.detail().as_ref()),
            (400, detail),
            "{:?}",
            s(body)
        );
        assert_eq!(e.version(), Version::Http11);
    }
    // The largest size that fits is fine to announce: still waiting for data, no error (the
    // body limit stops it later).
    let mut input = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    input.extend_from_slice(b"FFFFFFFFFFFFFFFF\r\nabc");
    assert_eq!(run(&[&input], BIG), vec![]);
}

#[test]
fn cve_2019_16785_bare_lf_line_endings_are_400() {
    for input in [
        &b"GET / HTTP/1.1\nHost: a\n\n"[..],
        b"GET / HTTP/1.1\r\nHost: a\n\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nX: y\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nX: y\rZ: w\r\n\r\n",
    ] {
        assert_eq!(err(input).status(), 400, "{:?}", s(input));
    }
    let e = chunked(b"1\nx\n0\n\n").unwrap_err();
    assert_eq!(e.status(), 400, "LF-only chunk framing");
}

#[test]
fn cve_2019_16786_transfer_encodings_other_than_chunked_are_501() {
    for te in [
        &b"gzip, chunked"[..],
        b"identity",
        b"chunked, identity",
        b"deflate",
        b"junk",
        b"gzip\r\n chunked",
        b"chunked\r\n\t, identity",
    ] {
        let mut input = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ".to_vec();
        input.extend_from_slice(te);
        input.extend_from_slice(b"\r\n\r\n");
        assert_eq!(err(&input).status(), 501, "{:?}", s(te));
    }
    let p = one(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ChUnKeD\r\n\r\n0\r\n\r\n");
    assert_eq!(
        p.unwrap().content_length,
        Some(0),
        "chunked in any case is fine"
    );
}

#[test]
fn cve_2019_16792_unparsable_or_duplicate_content_length_is_400() {
    for input in [
        &b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello"[..],
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\nhello",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: five\r\n\r\nhello",
    ] {
        assert_eq!(err(input).status(), 400, "{:?}", s(input));
    }
}

#[test]
fn cve_2019_16789_header_whitespace_and_nonprintables_are_not_stripped() {
    for input in [
        &b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n"[..],
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\x0bchunked\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\x0cchunked\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\n Transfer-Encoding: chunked\r\n\r\n",
    ] {
        assert_eq!(err(input).status(), 400, "{:?}", s(input));
    }
    // \x85 is obs-text, not whitespace: the coding is "\x85chunked", which is not chunked.
    let e = err(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \x85chunked\r\n\r\n");
    assert_eq!(e.status(), 501);
    let p = one(b"GET / HTTP/1.1\r\nHost: a\r\nX: \xa0v\xa0 \r\n\r\n").unwrap();
    assert_eq!(p.headers[1].1, "\u{a0}v\u{a0}", "only SP/HTAB are stripped");
}

#[test]
fn cve_2020_5236_long_whitespace_runs_in_values_are_handled_linearly() {
    // The regex of 1.4.2 backtracked on this shape; here every byte is looked at a bounded
    // number of times, so it simply completes (valid) or fails (with a NUL at the end).
    let mut input = b"GET / HTTP/1.1\r\nHost: a\r\nX: a".to_vec();
    input.extend_from_slice(&b" \t".repeat(60_000));
    input.extend_from_slice(b"b\r\n\r\n");
    assert!(one(&input).is_ok());
    let mut bad = input[..input.len() - 5].to_vec();
    bad.extend_from_slice(b"\x00\r\n\r\n");
    assert_eq!(err(&bad).detail(), "Invalid header");
}

#[test]
fn cve_2022_24761_content_length_and_chunk_sizes_are_strict_numbers() {
    for cl in [&b"+10"[..], b"0x01", b"1_0", b" 1 0"] {
        let mut input = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: ".to_vec();
        input.extend_from_slice(cl);
        input.extend_from_slice(b"\r\n\r\n0123456789");
        assert_eq!(
            err(&input).detail(),
            "Content-Length is invalid",
            "{:?}",
            s(cl)
        );
    }
    assert_eq!(
        chunked(b"0x01\r\nx\r\n0\r\n\r\n").unwrap_err().detail(),
        "Invalid chunk size"
    );
    assert_eq!(
        chunked(b"+1\r\nx\r\n0\r\n\r\n").unwrap_err().detail(),
        "Invalid chunk size"
    );
    assert_eq!(
        chunked(b"1;\x00\r\nx\r\n0\r\n\r\n").unwrap_err().detail(),
        "Invalid chunk extension"
    );
}

#[test]
fn cve_2022_31015_and_2024_49769_are_socket_lifecycle_bugs_outside_the_parser() {
    // Both advisories are about closing sockets (server core). The parser's part: it never
    // panics and never keeps state that refers to a connection; a fresh parser after any input
    // behaves as new.
    let mut p = RequestParser::new(BIG);
    let mut req = Request::new();
    let mut body = OverflowableBuffer::new(64);
    let _ = p.feed(b"\x00\xff\r\n\r\n", &mut req, &mut body);
    p.reset();
    req.clear();
    let r = p
        .feed(b"GET / HTTP/1.0\r\n\r\n", &mut req, &mut body)
        .unwrap();
    assert_eq!(r.status, Status::Complete);
}

#[test]
fn cve_2024_49768_nothing_is_parsed_after_an_error() {
    // A pipelined request behind a bad one must not be parsed (the connection closes).
    let r = run(
        &[b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: x\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"],
        BIG,
    );
    assert_eq!(r.len(), 1);
    assert!(r[0].is_err());
}

#[test]
fn never_panics_on_arbitrary_input() {
    // A cheap deterministic fuzz: random bytes biased toward HTTP syntax, every split.
    let alphabet = b"GET /HTP1.0\r\n:;\t \x00\x7f\x80\xffHost: aContent-Length5Transfer-Encodingchunked0123456789abcdef\"\\";
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..3000 {
        let len = (seed % 120) as usize;
        let mut input = Vec::with_capacity(len);
        for _ in 0..len {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            input.push(alphabet[(seed % alphabet.len() as u64) as usize]);
        }
        let k = (seed as usize) % (input.len() + 1);
        let _ = run(&[&input[..k], &input[k..]], limits(64, 32));
        let _ = run(&[&input], BIG);
    }
}

#[test]
fn many_repeated_headers_merge_in_linear_space() {
    // 50k repeats of a one-byte header: a naive merge would copy gigabytes.
    let mut input = b"GET / HTTP/1.1\r\nHost: a\r\n".to_vec();
    input.extend_from_slice(&b"X:a\r\n".repeat(50_000));
    input.extend_from_slice(b"\r\n");
    let p = one(&input).unwrap();
    assert_eq!(p.headers.len(), 2);
    assert_eq!(p.headers[1].1.len(), 50_000 + 2 * 49_999);
    assert!(p.headers[1].1.starts_with("a, a, a"));
}

#[test]
fn many_distinct_headers_keep_order_and_still_catch_repeats() {
    let mut input = b"GET / HTTP/1.1\r\n".to_vec();
    for i in 0..40 {
        input.extend_from_slice(format!("H{i}: {i}\r\n").as_bytes());
    }
    input.extend_from_slice(b"h3: again\r\nHost: a\r\n\r\n");
    let p = one(&input).unwrap();
    assert_eq!(p.headers.len(), 41);
    assert_eq!(p.headers[3], ("H3".into(), "3, again".into()));
    assert_eq!(p.headers[40].0, "Host");
    let mut dup = input[..input.len() - 2].to_vec();
    dup.extend_from_slice(b"HOST: b\r\n\r\n");
    assert_eq!(err(&dup).detail(), "Duplicate header: Host");
}

//! Request generators for the property tests and the differential check: valid requests,
//! smuggling shapes (Content-Length and Transfer-Encoding spelled every way front-ends and
//! back-ends have disagreed on), chunked bodies with bad sizes, extensions and trailers, and
//! byte-level mutations of all of them, pipelined up to three deep.
use proptest::prelude::*;

const METHODS: &[&str] = &[
    "GET", "GET", "POST", "POST", "PUT", "HEAD", "OPTIONS", "DELETE", "CONNECT", "FOO-BAR", "get",
    "G(T", "",
];
const TARGETS: &[&str] = &[
    "/",
    "/a/b?x=1",
    "/a%20b#frag",
    "//x//y",
    "*",
    "http://h.example/p?q",
    "http://h.example",
    "h.example:443",
    "/\u{e9}",
    "/a?b=c d",
    "x",
    "",
];
const VERSIONS: &[&str] = &[
    "HTTP/1.1",
    "HTTP/1.1",
    "HTTP/1.1",
    "HTTP/1.0",
    "HTTP/1.2",
    "HTTP/2.0",
    "http/1.1",
    "HTTP/1.1 ",
    "",
];
/// Framing headers as smugglers write them.
const FRAMING: &[&str] = &[
    "Content-Length: 5",
    "Content-Length: 0",
    "Content-Length:5",
    "Content-Length: 5 ",
    "Content-Length: +5",
    "Content-Length: 05",
    "Content-Length: 5, 5",
    "Content-Length: 5,6",
    "Content-Length: -1",
    "Content-Length: 0x5",
    "Content-Length: ",
    "Content-Length: 99999999999999999999999",
    "Content-Length : 5",
    " Content-Length: 5",
    "Content_Length: 5",
    "Content-Length\t: 5",
    "Transfer-Encoding: chunked",
    "Transfer-Encoding: chunked",
    "Transfer-Encoding: Chunked",
    "Transfer-Encoding:  chunked",
    "Transfer-Encoding: chunked, chunked",
    "Transfer-Encoding: identity, chunked",
    "Transfer-Encoding: chunked, identity",
    "Transfer-Encoding: gzip",
    "Transfer-Encoding: xchunked",
    "Transfer-Encoding: chunked\u{b}",
    "Transfer-Encoding: \"chunked\"",
    "Transfer-Encoding: ",
    "Transfer-Encoding : chunked",
    "Transfer_Encoding: chunked",
    "Transfer-Encoding:\tchunked",
    "Transfer-Encoding: chunked\r\n x",
];
const OTHER: &[&str] = &[
    "Host: h.example",
    "Host: h.example",
    "Host: h.example",
    "Host: h.example:8080",
    "Host: [::1]",
    "Host: a b",
    "Host: ",
    "Connection: close",
    "Connection: keep-alive",
    "Connection: Keep-Alive, Upgrade",
    "Expect: 100-continue",
    "X-A: 1",
    "x-a: 2",
    "X-Folded: a\r\n b",
    "X-Empty:",
    "X-Obs: caf\u{e9}",
    "X-Ctl: a\u{1}b",
    "X Bad: y",
    ": novalue",
    "NoColon",
    "X-Under_Score: z",
];
/// Chunked bodies: the decoded body is not needed (the reference says what it is).
const CHUNKED: &[&str] = &[
    "5\r\nhello\r\n0\r\n\r\n",
    "0\r\n\r\n",
    "5;ext=1\r\nhello\r\n0\r\n\r\n",
    "5 ;ext\r\nhello\r\n0\r\n\r\n",
    "5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n",
    "0x5\r\nhello\r\n0\r\n\r\n",
    "+5\r\nhello\r\n0\r\n\r\n",
    "-5\r\nhello\r\n0\r\n\r\n",
    "5\nhello\n0\n\n",
    "5\r\nhelloXX\r\n0\r\n\r\n",
    "5\r\nhel\r\n0\r\n\r\n",
    "\r\n5\r\nhello\r\n0\r\n\r\n",
    "fffffffffffffffff\r\nx\r\n0\r\n\r\n",
    "00000000000000005\r\nhello\r\n0\r\n\r\n",
    "5\r\nhello\r\n0\r\n",
    "5\r\nhello\r\n0\r\nbad trailer\r\n\r\n",
    "5\r\nhello",
];

fn pick(list: &'static [&'static str]) -> impl Strategy<Value = &'static str> {
    (0..list.len()).prop_map(move |i| list[i])
}

const GOOD_METHODS: &[&str] = &["GET", "POST", "PUT", "HEAD", "OPTIONS", "DELETE", "PATCH"];
const GOOD_TARGETS: &[&str] = &["/", "/a/b?x=1", "/a%20b", "//x//y", "http://h.example/p?q"];
const GOOD_OTHER: &[&str] = &[
    "Connection: close",
    "Connection: keep-alive",
    "Expect: 100-continue",
    "X-A: 1",
    "x-a: 2",
    "X-Obs: caf\u{e9}",
    "Accept: */*",
    "X-Empty:",
];

/// A well-formed request (Host, one framing or none) whose body may still not match its
/// framing, so the rest of the stream is read as the next request: valid shapes with the
/// boundaries that matter.
fn good_request() -> impl Strategy<Value = Vec<u8>> {
    (
        pick(GOOD_METHODS),
        pick(GOOD_TARGETS),
        prop_oneof![4 => Just("HTTP/1.1"), 1 => Just("HTTP/1.0")],
        proptest::collection::vec(pick(GOOD_OTHER), 0..3),
        proptest::collection::vec(any::<u8>(), 0..40),
        0..5u8,
    )
        .prop_map(|(m, t, v, other, body, framing)| {
            let mut r = format!("{m} {t} {v}\r\nHost: h.example\r\n");
            for h in &other {
                r.push_str(h);
                r.push_str("\r\n");
            }
            let mut out: Vec<u8> = r.chars().map(|c| c as u32 as u8).collect();
            match framing {
                0 => out.extend_from_slice(b"\r\n"),
                1 | 2 => {
                    out.extend_from_slice(
                        format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes(),
                    );
                    out.extend_from_slice(&body);
                }
                3 if v == "HTTP/1.1" => {
                    out.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
                    for piece in body.chunks(7) {
                        out.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
                        out.extend_from_slice(piece);
                        out.extend_from_slice(b"\r\n");
                    }
                    out.extend_from_slice(b"0\r\n\r\n");
                }
                _ => {
                    // A length that does not match what follows.
                    let n = body.len() / 2;
                    out.extend_from_slice(format!("Content-Length: {n}\r\n\r\n").as_bytes());
                    out.extend_from_slice(&body);
                }
            }
            out
        })
}

/// Mostly well-formed requests, the rest hostile.
pub fn request() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![2 => good_request(), 1 => hostile_request()]
}

/// One request head plus a body that may or may not match its framing.
fn hostile_request() -> impl Strategy<Value = Vec<u8>> {
    (
        pick(METHODS),
        pick(TARGETS),
        pick(VERSIONS),
        proptest::collection::vec(pick(FRAMING), 0..3),
        proptest::collection::vec(pick(OTHER), 0..4),
        prop_oneof![
            Just(String::new()),
            Just("hello".to_string()),
            pick(CHUNKED).prop_map(str::to_string),
            "[a-z]{0,12}",
        ],
        any::<bool>(),
    )
        .prop_map(|(m, t, v, framing, other, body, host_first)| {
            let mut r = if v.is_empty() {
                format!("{m} {t}\r\n")
            } else {
                format!("{m} {t} {v}\r\n")
            };
            if host_first {
                r.push_str("Host: h.example\r\n");
            }
            for h in other.iter().chain(framing.iter()) {
                r.push_str(h);
                r.push_str("\r\n");
            }
            r.push_str("\r\n");
            r.push_str(&body);
            // Latin-1, as the bytes go on the wire.
            r.chars().map(|c| c as u32 as u8).collect()
        })
}

/// A byte-level mutation.
#[derive(Debug, Clone)]
pub enum Mutation {
    Flip(usize, u8),
    Insert(usize, u8),
    Delete(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let byte = prop_oneof![
        Just(b'\r'),
        Just(b'\n'),
        Just(b' '),
        Just(b'\t'),
        Just(b':'),
        Just(b'0'),
        Just(0u8),
        any::<u8>()
    ];
    prop_oneof![
        (any::<usize>(), byte.clone()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (any::<usize>(), byte).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<usize>().prop_map(Mutation::Delete),
    ]
}

pub fn apply(mut data: Vec<u8>, muts: &[Mutation]) -> Vec<u8> {
    for m in muts {
        let n = data.len();
        match *m {
            Mutation::Flip(i, b) if n > 0 => data[i % n] = b,
            Mutation::Insert(i, b) => data.insert(i % (n + 1), b),
            Mutation::Delete(i) if n > 0 => {
                data.remove(i % n);
            }
            _ => {}
        }
    }
    data
}

/// One to three requests back to back; a third of the streams mutated in 0 to 3 places.
pub fn stream() -> impl Strategy<Value = Vec<u8>> {
    (
        proptest::collection::vec(request(), 1..4),
        proptest::collection::vec(mutation(), 0..4),
        0..3u8,
    )
        .prop_map(|(reqs, muts, mutate)| {
            let data = reqs.concat();
            if mutate == 0 {
                apply(data, &muts)
            } else {
                data
            }
        })
}

//! Property tests (proptest), bounded for CI: no panic on any input; the framing of a request
//! stream never depends on how its bytes were split; the chunked decoder gives back exactly
//! what was encoded; the INI reader and interpolation never panic and read CRLF files as LF
//! ones; the `listen` splitter round-trips; the PROXY header parser answers alike on every
//! prefix of what arrives. The same properties run unbounded as coverage-guided
//! fuzz targets (`tools/fuzz.sh`), and `differential` checks the framing against hyper's.
pub mod gen;
pub mod reference;
pub mod stream;

mod differential;
pub mod proxy;
mod seeds;

use proptest::prelude::*;
use proptest::test_runner::Config;
use stream::{run, split, End, LIMITS};

/// Cases per property: a bounded CI run (`PROPTEST_CASES` overrides it, as proptest does).
fn config(cases: u32) -> Config {
    Config {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(cases),
        failure_persistence: None,
        ..Config::default()
    }
}

proptest! {
    #![proptest_config(config(2000))]

    #[test]
    fn parser_never_panics_on_arbitrary_bytes(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        run(&[&data], LIMITS);
    }

    #[test]
    fn framing_does_not_depend_on_how_bytes_are_split(
        data in gen::stream(),
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
    ) {
        let whole = run(&[&data], LIMITS);
        let pieces = run(&split(&data, &cuts), LIMITS);
        prop_assert_eq!(&whole, &pieces);
        let bytewise: Vec<&[u8]> = data.chunks(1).collect();
        prop_assert_eq!(&whole, &run(&bytewise, LIMITS));
    }

    #[test]
    fn arbitrary_bytes_frame_the_same_however_split(
        data in proptest::collection::vec(any::<u8>(), 0..256),
        cuts in proptest::collection::vec(any::<usize>(), 0..8),
    ) {
        prop_assert_eq!(run(&[&data], LIMITS), run(&split(&data, &cuts), LIMITS));
    }

    #[test]
    fn chunked_bodies_decode_to_what_was_encoded(
        chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..300), 0..6),
        upper in any::<bool>(),
        ext in any::<bool>(),
        trailer in any::<bool>(),
        cuts in proptest::collection::vec(any::<usize>(), 0..10),
    ) {
        let mut raw = b"POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        for c in &chunks {
            let size = if upper { format!("{:X}", c.len()) } else { format!("{:x}", c.len()) };
            raw.extend_from_slice(size.as_bytes());
            if ext {
                raw.extend_from_slice(b";name=\"v\"");
            }
            raw.extend_from_slice(b"\r\n");
            raw.extend_from_slice(c);
            raw.extend_from_slice(b"\r\n");
        }
        raw.extend_from_slice(b"0\r\n");
        if trailer {
            raw.extend_from_slice(b"X-Sum: 1\r\n");
        }
        raw.extend_from_slice(b"\r\nGET /next HTTP/1.1\r\nHost: h\r\n\r\n");
        let ch = run(&split(&raw, &cuts), LIMITS);
        prop_assert_eq!(&ch.end, &End::NeedMore);
        prop_assert_eq!(ch.requests.len(), 2);
        prop_assert_eq!(&ch.requests[0].body, &chunks.concat());
        let cl = ch.requests[0].headers.iter().find(|(n, _)| n == b"Content-Length");
        let want = chunks.concat().len().to_string().into_bytes();
        prop_assert_eq!(cl.map(|(_, v)| v), Some(&want));
        prop_assert_eq!(&ch.requests[1].target, b"/next");
    }

    #[test]
    fn chunked_decoder_never_panics_on_arbitrary_bodies(
        body in proptest::collection::vec(any::<u8>(), 0..512),
        cuts in proptest::collection::vec(any::<usize>(), 0..6),
    ) {
        let mut raw = b"POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        raw.extend_from_slice(&body);
        prop_assert_eq!(run(&[&raw], LIMITS), run(&split(&raw, &cuts), LIMITS));
    }
}

proptest! {
    #![proptest_config(config(1000))]

    #[test]
    fn ini_reader_never_panics_and_reads_crlf_as_lf(text in ini_text()) {
        let abs = std::path::Path::new("/srv/app/production.ini");
        let lf = waitressd::config::ini::Ini::parse(&text, abs, "production.ini");
        let crlf = waitressd::config::ini::Ini::parse(&text.replace('\n', "\r\n"), abs, "production.ini");
        prop_assert_eq!(format!("{lf:?}"), format!("{crlf:?}"));
        if let Ok(ini) = lf {
            for sec in &ini.sections {
                for (key, _) in ini.options(sec) {
                    // Interpolation either succeeds or names the error; never a panic or a hang.
                    let _ = ini.get(Some(&sec.name), &key);
                }
            }
        }
    }

    #[test]
    fn listen_entries_split_as_written(
        host in "[a-z0-9.-]{1,20}|\\[[0-9a-f:]{2,20}\\]|\\*",
        port in "[0-9]{1,5}|[a-z]{1,8}",
        junk in ".{0,40}",
    ) {
        use waitressd::config::listen::split;
        let e = split(&format!("{host}:{port}"), "8080");
        prop_assert_eq!(&e.port, &port);
        let want = match host.as_str() {
            "*" => None,
            h => Some(h.trim_start_matches('[').trim_end_matches(']').to_string()),
        };
        prop_assert_eq!(e.host, want);
        let _ = split(&junk, "8080");
    }
}

proptest! {
    #![proptest_config(config(2000))]

    #[test]
    fn proxy_headers_answer_alike_on_every_prefix(
        ver_cmd in prop_oneof![Just(0x20u8), Just(0x21u8), any::<u8>()],
        family in prop_oneof![Just(0u8), Just(0x11u8), Just(0x21u8), Just(0x31u8), any::<u8>()],
        len in prop_oneof![0u16..300, any::<u16>()],
        v1 in "PROXY (TCP4|TCP6|UNKNOWN|[A-Z]{0,5})( [0-9a-f.:]{0,40}){0,5}(\r\n|\n|\r)?",
        rest in proptest::collection::vec(any::<u8>(), 0..400),
    ) {
        proxy::check(&proxy::v2(ver_cmd, family, len, &rest));
        proxy::check(&[v1.as_bytes(), &rest].concat());
        proxy::check(&rest);
    }
}

/// INI-shaped text: sections, `key = value` / `key: value` lines, continuations, comments,
/// `%(name)s` references (some circular or dangling), stray `%`, and arbitrary lines (no lone
/// CR: configparser's universal newlines count it as a line break, so CRLF would differ).
fn ini_text() -> impl Strategy<Value = String> {
    let line = prop_oneof![
        "\\[(server|app|DEFAULT|pipeline):?[a-z]{0,4}\\]",
        "[a-z_]{1,8} ?[=:] ?[a-z0-9 ]{0,10}",
        "[a-z_]{1,8} = %\\((here|a|b|c|__file__|[a-z]{1,3})\\)s[a-z]{0,3}",
        "(a|b|c) = %\\((a|b|c)\\)s",
        "[a-z]{1,4} = 100%%|50%|%",
        "[ \t]+[a-z0-9 ]{0,10}",
        "[#;][^\r\n]{0,20}",
        "",
        "[^\r\n]{0,30}",
    ];
    proptest::collection::vec(line, 0..24).prop_map(|l| l.join("\n"))
}

//! The differential check (issue 11): every generated stream — valid, smuggling-shaped and
//! mutated — goes through waitressd's parser and through hyper's HTTP/1 server (driven
//! in-process over an in-memory duplex stream). Wherever waitressd frames a request, hyper must
//! have framed the same one: method, target, version, headers and body boundaries. Where they
//! disagree waitressd must be the one that rejected (it may be stricter, never laxer).
//!
//! Why hyper: it is the strict, widely deployed Rust HTTP/1.1 server, with its own framing
//! code (httparse for the head, hyper's own Content-Length/chunked/keep-alive logic) that
//! shares nothing with waitressd's hand-written parser, and it runs in-process on the one
//! stable toolchain. (llhttp has no maintained Rust binding in the registry.)
//!
//! Known, deliberate differences (waitress compatibility), where waitressd accepts what hyper
//! refuses: obs-fold continuation lines (joined, as waitress does, unless the continuation
//! looks like a `name:` field, which is refused); raw bytes >= 0x80 in a
//! target starting with `//` (taken verbatim, as waitress). Resource limits differ too (hyper
//! allows 100 header fields); the generators stay below them.
use proptest::prelude::*;

use super::reference::check;
use super::{config, gen};

proptest! {
    #![proptest_config(config(5000))]

    #[test]
    fn waitressd_frames_nothing_hyper_frames_differently(data in gen::stream()) {
        if let Err(e) = check(&data) {
            prop_assert!(false, "{}", e);
        }
    }
}

/// The hostile corpus's smuggling shapes, unmutated: each one either refused by waitressd or
/// framed exactly as hyper frames it.
#[test]
fn smuggling_corpus_agrees_with_hyper_or_is_refused() {
    let mut failures = Vec::new();
    for cases in [
        crate::hostile::corpus::SMUGGLING,
        crate::hostile::corpus::CHUNKED,
        crate::hostile::corpus::REQUEST_LINE_AND_HOST,
        crate::hostile::corpus::LINES_AND_BYTES,
        crate::hostile::corpus::VALID,
    ] {
        for c in cases {
            let raw = crate::hostile::fill(c.raw, "/p");
            if let Err(e) = check(&raw) {
                failures.push(format!("{}: {e}", c.name));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

//! The chunked decoder: arbitrary bytes after a chunked request head, split at arbitrary
//! points; no panic, split-invariant, and a decoded body never exceeds what was sent.
#![no_main]
mod split;
#[path = "../../tests/it/props/stream.rs"]
mod stream;

const HEAD: &[u8] = b"POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let (cuts, body) = split::cuts(data);
    let raw = [HEAD, body].concat();
    let whole = stream::run(&[&raw], stream::LIMITS);
    let pieces = stream::run(&stream::split(&raw, &cuts), stream::LIMITS);
    assert_eq!(whole, pieces, "chunked framing depends on the split");
    if let Some(first) = whole.requests.first() {
        assert!(first.body.len() <= body.len(), "decoded more than was sent");
    }
});

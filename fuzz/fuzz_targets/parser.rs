//! The request parser fed arbitrary bytes split at arbitrary points: no panic, bounded
//! memory (small limits), and the framing never depends on the split.
#![no_main]
mod split;
#[path = "../../tests/it/props/stream.rs"]
mod stream;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let (cuts, input) = split::cuts(data);
    let whole = stream::run(&[input], stream::LIMITS);
    let pieces = stream::run(&stream::split(input, &cuts), stream::LIMITS);
    assert_eq!(
        whole.requests, pieces.requests,
        "framing depends on the split"
    );
    assert_eq!(whole.end, pieces.end, "the outcome depends on the split");
});

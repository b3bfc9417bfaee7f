//! A whole channel as the server drives it: parser, response framing and the keep-alive
//! decision over a byte stream split at arbitrary points. The bytes written back never depend
//! on the split, nothing is read after a response that closes, and a HEAD answer has no body.
#![no_main]
mod split;
#[path = "../../tests/it/props/stream.rs"]
mod stream;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let (cuts, input) = split::cuts(data);
    let whole = stream::run(&[input], stream::LIMITS);
    let pieces = stream::run(&stream::split(input, &cuts), stream::LIMITS);
    assert_eq!(whole, pieces, "channel output depends on the split");
    if let stream::End::Closed { .. } = whole.end {
        let last = whole.requests.last().expect("closed after a request");
        assert!(
            !last.keep_alive || last.method == b"CONNECT" || last.version == 10,
            "closed although the request asked to stay"
        );
    }
});

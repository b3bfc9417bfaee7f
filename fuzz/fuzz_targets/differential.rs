//! The differential check on arbitrary streams: whatever waitressd frames, hyper's HTTP/1
//! server frames the same way (method, target, version, headers, body boundaries), except the
//! documented waitress-compatible differences (tests/it/props/differential.rs).
#![no_main]
#[path = "../../tests/it/props/reference.rs"]
mod reference;
#[path = "../../tests/it/props/stream.rs"]
mod stream;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(e) = reference::check(data) {
        panic!("{e}");
    }
});

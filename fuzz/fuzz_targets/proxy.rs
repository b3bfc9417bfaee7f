//! The PROXY protocol header (v1 and v2) on arbitrary bytes, parsed on every prefix as they
//! arrive: no panic, an answer never taken back, no waiting past the largest header.
#![no_main]
#[allow(dead_code)] // `v2` builds the tests' inputs
#[path = "../../tests/it/props/proxy.rs"]
mod proxy;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    proxy::check(data);
});

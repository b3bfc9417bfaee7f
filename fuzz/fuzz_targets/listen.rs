//! The `listen` splitter (pure; resolution is getaddrinfo's) on arbitrary entries: no panic,
//! and `host:port` with a plain host and digits always splits back into them.
#![no_main]
use waitressd::config::listen::split;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for entry in text.split_whitespace() {
        let _ = split(entry, "8080");
    }
    if let Some((h, p)) = text.rsplit_once(':') {
        let plain = !h.is_empty() && h.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'.');
        if plain && p.bytes().all(|c| c.is_ascii_digit()) {
            let e = split(text, "8080");
            assert_eq!(e.host.as_deref(), Some(h));
            assert_eq!(e.port, p);
        }
    }
});

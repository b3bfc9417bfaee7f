//! The PROXY protocol header parser looked at as the server uses it: on every prefix of the
//! bytes (what has arrived so far). No panic; once complete or refused, every longer prefix
//! gets the same answer (an answer is never taken back, and a header is self-delimiting); a
//! complete header took no more than it was given; and nothing is waited for past the
//! largest header there can be (a header that never ends is refused, not buffered).
use waitressd::http::proxy_protocol::{parse, Parsed, V1_MAX, V2_MAX, V2_SIGNATURE};

/// Checks the properties on every prefix of `data`.
pub fn check(data: &[u8]) {
    let mut settled: Option<Result<Parsed, ()>> = None;
    for end in 0..=data.len() {
        let got = parse(&data[..end], V2_MAX).map_err(|_| ());
        match (&settled, got) {
            (None, Ok(Parsed::NeedMore)) => {
                assert!(end < V1_MAX.max(V2_MAX), "still waiting after {end} bytes")
            }
            (None, got) => {
                if let Ok(Parsed::Done { consumed, .. }) = got {
                    assert!(consumed <= end && consumed > 0, "took {consumed} of {end}");
                    let alone = parse(&data[..consumed], V2_MAX).map_err(|_| ());
                    assert_eq!(alone, got, "the header alone reads differently");
                }
                settled = Some(got);
            }
            (Some(first), got) => assert_eq!(*first, got, "answer changed at {end} bytes"),
        }
    }
}

/// A v2 header's start: the signature, then version/command, family and length as given.
pub fn v2(ver_cmd: u8, family: u8, len: u16, rest: &[u8]) -> Vec<u8> {
    let mut h = V2_SIGNATURE.to_vec();
    h.extend_from_slice(&[ver_cmd, family]);
    h.extend_from_slice(&len.to_be_bytes());
    h.extend_from_slice(rest);
    h
}

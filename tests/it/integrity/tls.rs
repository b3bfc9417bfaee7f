//! The integrity checks over TLS: the daemon serves with a certificate and the slow clients
//! read through the TLS relay of the hostile tests, so every body (memory, spilled, files
//! copied through the TLS session) is checked by SHA-256 after decryption.
use super::{concurrently, daemon, download, MIB};
use crate::hostile::tls::relay;
use crate::tls::certs;

#[test]
fn every_response_kind_is_intact_over_tls() {
    let _rss = super::rss_lock();
    let dir = tempfile::tempdir().unwrap();
    let ca = certs::ca(dir.path());
    let (cert, key) = certs::issue(dir.path(), "srv", "ecdsa", false);
    let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());
    let routes = ["/stream", "/cl", "/once", "/write", "/file", "/filenocl"];
    for overflow in ["0", "65536", "1073741824"] {
        let d = daemon(&[
            "--threads",
            "4",
            "--outbuf-overflow",
            overflow,
            "--certfile",
            cert,
            "--keyfile",
            key,
        ]);
        let addr = relay(d.addr(), certs::client(&ca, 13, None));
        let bad = concurrently(3, |i| {
            let mut bad = Vec::new();
            for (k, route) in routes.iter().enumerate() {
                let seed = (i * 10 + k) as u64;
                let n = [3 * MIB + 17, 2 * MIB, 1][(seed % 3) as usize];
                let version = ["HTTP/1.1", "HTTP/1.0"][i % 2];
                bad.extend(download(&addr, route, seed, n, version).err());
            }
            bad
        });
        assert!(
            bad.is_empty(),
            "TLS, outbuf_overflow {overflow}:\n{}",
            bad.join("\n")
        );
    }
}

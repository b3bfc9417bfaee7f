//! Test certificates made with the openssl CLI: a CA, server certificates with RSA, ECDSA
//! (P-256) and Ed25519 keys for `localhost`/127.0.0.1, and a client certificate; plus rustls
//! clients that trust the CA.
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

pub const KINDS: [&str; 3] = ["rsa", "ecdsa", "ed25519"];

pub fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl CLI (tools/test.sh installs it)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn genkey(dir: &Path, kind: &str, out: &str) {
    let algo: &[&str] = match kind {
        "rsa" => &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
        "ecdsa" => &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
        _ => &["-algorithm", "ED25519"],
    };
    let mut args = vec!["genpkey"];
    args.extend_from_slice(algo);
    args.extend_from_slice(&["-out", out]);
    openssl(dir, &args);
}

/// Makes `ca.pem` in `dir` (once).
pub fn ca(dir: &Path) -> PathBuf {
    let ca = dir.join("ca.pem");
    if !ca.exists() {
        genkey(dir, "ecdsa", "ca.key");
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-new",
                "-key",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=waitressd test CA",
            ],
        );
    }
    ca
}

/// A certificate signed by the CA: `NAME.pem` and `NAME.key`, for `localhost` (server) or
/// `CN=client` (client). Returns (cert, key).
pub fn issue(dir: &Path, name: &str, kind: &str, client: bool) -> (PathBuf, PathBuf) {
    let cn = if client {
        "/CN=client/O=waitressd tests"
    } else {
        "/CN=localhost"
    };
    issue_as(dir, name, kind, cn, client)
}

/// As `issue`, with the subject `subj` (`openssl req -subj` syntax, `+` for a multi-valued
/// RDN, `\+` for a plus sign).
pub fn issue_as(
    dir: &Path,
    name: &str,
    kind: &str,
    subj: &str,
    client: bool,
) -> (PathBuf, PathBuf) {
    ca(dir);
    let (key, csr, pem) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.pem"),
    );
    genkey(dir, kind, &key);
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-key",
            &key,
            "-multivalue-rdn",
            "-subj",
            subj,
            "-out",
            &csr,
        ],
    );
    let ext = format!("{name}.ext");
    let text = if client {
        "extendedKeyUsage=clientAuth\n"
    } else {
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"
    };
    std::fs::write(dir.join(&ext), text).unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            &pem,
            "-extfile",
            &ext,
        ],
    );
    (dir.join(pem), dir.join(key))
}

fn roots(ca: &Path) -> rustls::RootCertStore {
    let mut r = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).unwrap() {
        r.add(c.unwrap()).unwrap();
    }
    r
}

/// A client trusting `ca`, speaking only `version` (12 or 13), optionally with a client cert.
pub fn client(ca: &Path, version: u8, cert: Option<(&Path, &Path)>) -> Arc<rustls::ClientConfig> {
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let v: &[&rustls::SupportedProtocolVersion] = match version {
        12 => &[&rustls::version::TLS12],
        _ => &[&rustls::version::TLS13],
    };
    let b = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(v)
        .unwrap()
        .with_root_certificates(roots(ca));
    let mut cfg = match cert {
        None => b.with_no_client_auth(),
        Some((c, k)) => b
            .with_client_auth_cert(
                CertificateDer::pem_file_iter(c)
                    .unwrap()
                    .map(|c| c.unwrap())
                    .collect(),
                PrivateKeyDer::from_pem_file(k).unwrap(),
            )
            .unwrap(),
    };
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(cfg)
}

//! TLS material, read by the master (before the privilege drop, and again on SIGHUP): the
//! certificate chain, its private key (RSA, ECDSA P-256/P-384 or Ed25519, PEM), the client
//! CAs, and the rustls server configuration every worker forked afterwards serves with. A file
//! that cannot be used is an error naming it and the fix; at start that is exit 2, at a reload
//! the old one stays.
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::server::WebPkiClientVerifier;
use rustls::sign::{CertifiedKey, SigningKey};
use rustls::ServerConfig;

pub use super::tls_pem::TlsError;
use super::tls_pem::{certs, fail, private_key};

use crate::config::edge::{CertReqs, TlsFiles};

/// A loaded configuration, shared with the workers forked afterwards.
#[derive(Clone)]
pub struct Loaded(pub Arc<ServerConfig>);

impl std::fmt::Debug for Loaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Loaded(..)")
    }
}

/// The TLS configuration `s` asks for, if any.
pub fn load_for(s: &crate::config::Settings) -> Result<Option<Loaded>, TlsError> {
    s.edge.tls.as_ref().map(|f| load(f).map(Loaded)).transpose()
}

/// Reads and checks every file; builds the configuration (ALPN `http/1.1`, `http/1.0`). An
/// error names where the file's setting was given.
pub fn load(files: &TlsFiles) -> Result<Arc<ServerConfig>, TlsError> {
    build(files).map_err(|e| e.given_in(files))
}

fn build(files: &TlsFiles) -> Result<Arc<ServerConfig>, TlsError> {
    // ring: builds with a C compiler alone (CI has no cmake/clang for aws-lc); it offers no
    // post-quantum key exchange, which is why rustls marks this constructor deprecated.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = certs("certfile", &files.certfile)?;
    let key = private_key(&files.keyfile)?;
    let signing = provider
        .key_provider
        .load_private_key(key)
        .map_err(|_| fail("keyfile", &files.keyfile, UNSUPPORTED_KEY))?;
    check_pair(files, &chain, &signing)?;
    let certified = CertifiedKey::new(chain, signing);
    let versions: &[&rustls::SupportedProtocolVersion] = if files.tls13_only {
        &[&rustls::version::TLS13]
    } else {
        &[&rustls::version::TLS12, &rustls::version::TLS13]
    };
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(|e| fail("certfile", &files.certfile, e.to_string()))?;
    let builder = match (files.cert_reqs, &files.ca_certs) {
        (CertReqs::None, _) | (_, None) => builder.with_no_client_auth(),
        (reqs, Some(ca)) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in certs("ca_certs", ca)? {
                roots
                    .add(c)
                    .map_err(|e| fail("ca_certs", ca, format!("bad CA certificate: {e}")))?;
            }
            let v = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let v = match reqs {
                CertReqs::Optional => v.allow_unauthenticated(),
                _ => v,
            };
            builder.with_client_cert_verifier(
                v.build()
                    .map_err(|e| fail("ca_certs", ca, format!("cannot verify with it: {e}")))?,
            )
        }
    };
    let mut cfg = builder.with_cert_resolver(Arc::new(OneCert(Arc::new(certified))));
    // nginx's list: a client offering only http/1.0 is served too, not refused with the
    // `no_application_protocol` alert.
    cfg.alpn_protocols = vec![b"http/1.1".to_vec(), b"http/1.0".to_vec()];
    Ok(Arc::new(cfg))
}

/// Why rustls's key loader refuses a key it has parsed the PEM of, and the fix.
const UNSUPPORTED_KEY: &str = "unsupported key type: the key must be RSA (2048 bits or more), \
     ECDSA on P-256 or P-384, or Ed25519 (not P-521, RSA-PSS or DSA); generate one of those, \
     e.g. `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out KEY`, and a \
     certificate for it";

/// The key belongs to the chain's first certificate, or the error says what is wrong instead:
/// the leaf is not first, the key is another one, or the certificate is one rustls refuses.
fn check_pair(
    files: &TlsFiles,
    chain: &[CertificateDer<'static>],
    signing: &Arc<dyn SigningKey>,
) -> Result<(), TlsError> {
    let matches = |c: &CertificateDer<'static>| {
        CertifiedKey::new(vec![c.clone()], signing.clone()).keys_match()
    };
    let err = match matches(&chain[0]) {
        Ok(()) => return Ok(()),
        Err(e) => e,
    };
    if let Some(i) = chain.iter().skip(1).position(|c| matches(c).is_ok()) {
        return Err(fail(
            "certfile",
            &files.certfile,
            format!(
                "the key in {} belongs to certificate {} of this file, not the first: the \
                 server's own (leaf) certificate must come first, then its intermediates; \
                 reorder the file",
                files.keyfile.display(),
                i + 2
            ),
        ));
    }
    if let rustls::Error::InconsistentKeys(_) = err {
        return Err(fail(
            "keyfile",
            &files.keyfile,
            format!(
                "the key does not match the certificate in {} (set keyfile to that certificate's key)",
                files.certfile.display()
            ),
        ));
    }
    let v1 = x509_parser::parse_x509_certificate(chain[0].as_ref())
        .is_ok_and(|(_, c)| c.version() == x509_parser::x509::X509Version::V1);
    let why = if v1 {
        "the first certificate is an X.509 v1 certificate (no extensions), which rustls does \
         not accept; reissue it as v3 with a subjectAltName, e.g. `openssl x509 -req -in CSR \
         -signkey KEY -days 365 -extfile <(echo subjectAltName=DNS:example.com) -out CERT` or \
         `openssl req -x509 -key KEY -subj /CN=example.com -addext \
         subjectAltName=DNS:example.com -days 365 -out CERT`"
            .to_string()
    } else {
        format!("the first certificate cannot be used: {err}")
    };
    Err(fail("certfile", &files.certfile, why))
}

/// The one certificate, whatever the client asks for (SNI is not used to choose).
#[derive(Debug)]
struct OneCert(Arc<CertifiedKey>);

impl rustls::server::ResolvesServerCert for OneCert {
    fn resolve(&self, _hello: rustls::server::ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

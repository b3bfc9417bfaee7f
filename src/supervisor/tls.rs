//! TLS material, read by the master (before the privilege drop, and again on SIGHUP): the
//! certificate chain, its private key (RSA, ECDSA or Ed25519, PEM), the client CAs, and the
//! rustls server configuration every worker forked afterwards serves with. A file that cannot
//! be used is an error naming it; at start that is exit 2, at a reload the old one stays.
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::ServerConfig;

use crate::config::edge::{CertReqs, TlsFiles};

/// Why the TLS files cannot be used: one line naming the file and the fix.
#[derive(Debug, thiserror::Error)]
#[error("{key} {path}: {reason}")]
pub struct TlsError {
    pub key: &'static str,
    pub path: String,
    pub reason: String,
}

fn fail(key: &'static str, path: &Path, reason: impl Into<String>) -> TlsError {
    TlsError {
        key,
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

fn certs(key: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .map_err(|e| fail(key, path, pem_reason(e)))?
        .collect::<Result<_, _>>()
        .map_err(|e| fail(key, path, pem_reason(e)))?;
    if certs.is_empty() {
        return Err(fail(key, path, "no PEM CERTIFICATE block in the file"));
    }
    Ok(certs)
}

fn pem_reason(e: rustls::pki_types::pem::Error) -> String {
    match e {
        rustls::pki_types::pem::Error::Io(io) => format!("cannot read: {io}"),
        e => format!("not a valid PEM file: {e:?}"),
    }
}

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

/// Reads and checks every file; builds the configuration (ALPN `http/1.1`).
pub fn load(files: &TlsFiles) -> Result<Arc<ServerConfig>, TlsError> {
    // ring: builds with a C compiler alone (CI has no cmake/clang for aws-lc); it offers no
    // post-quantum key exchange, which is why rustls marks this constructor deprecated.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = certs("certfile", &files.certfile)?;
    let key = PrivateKeyDer::from_pem_file(&files.keyfile).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => fail(
            "keyfile",
            &files.keyfile,
            "no PEM PRIVATE KEY block (PKCS#8, PKCS#1 RSA or SEC1 EC) in the file",
        ),
        e => fail("keyfile", &files.keyfile, pem_reason(e)),
    })?;
    let signing = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| fail("keyfile", &files.keyfile, format!("unusable key: {e}")))?;
    let certified = rustls::sign::CertifiedKey::new(chain, signing);
    certified.keys_match().map_err(|_| {
        fail(
            "keyfile",
            &files.keyfile,
            format!(
                "the key does not match the certificate in {} (set keyfile to that certificate's key)",
                files.certfile.display()
            ),
        )
    })?;
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
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// The one certificate, whatever the client asks for (SNI is not used to choose).
#[derive(Debug)]
struct OneCert(Arc<rustls::sign::CertifiedKey>);

impl rustls::server::ResolvesServerCert for OneCert {
    fn resolve(
        &self,
        _hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.clone())
    }
}

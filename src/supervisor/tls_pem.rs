//! Reading the TLS PEM files (certificate chains, the private key), and `TlsError`: a reason
//! and its fix for each way they go wrong (unreadable, cut off, passphrase-protected, no block
//! of the kind wanted).
use std::path::Path;

use rustls::pki_types::pem::{Error as PemError, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::edge::TlsFiles;
use crate::config::ValueError;

/// Why the TLS files cannot be used: one line naming the setting (where it was given, as
/// every other config error does), the file and the fix.
#[derive(Debug, thiserror::Error)]
#[error("{}", self.line())]
pub struct TlsError {
    pub key: &'static str,
    pub path: String,
    pub reason: String,
    /// Where the setting was given (`TlsFiles::given`), when known.
    pub at: Option<Box<ValueError>>,
}

impl TlsError {
    /// `FILE:LINE: [section] certfile = 'value': reason` (the resolved path too when the value
    /// was relative), or `certfile PATH: reason` when where it was set is not known.
    fn line(&self) -> String {
        let Some(at) = &self.at else {
            return format!("{} {}: {}", self.key, self.path, self.reason);
        };
        let mut reason = String::new();
        if at.key != self.key {
            reason.push_str(&format!("as the {0} ({0} is not set): ", self.key));
        }
        if at.value != self.path {
            reason.push_str(&format!("{}: ", self.path));
        }
        reason.push_str(&self.reason);
        ValueError {
            reason,
            ..(**at).clone()
        }
        .to_string()
    }

    /// The same error, pointing at where its setting was given in `files`.
    pub(super) fn given_in(mut self, files: &TlsFiles) -> TlsError {
        self.at = files.given(self.key).cloned().map(Box::new);
        self
    }
}

pub(super) fn fail(key: &'static str, path: &Path, reason: impl Into<String>) -> TlsError {
    TlsError {
        key,
        path: path.display().to_string(),
        reason: reason.into(),
        at: None,
    }
}

fn read(key: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| fail(key, path, format!("cannot read: {e}")))
}

/// Every CERTIFICATE block of the file, in order (at least one).
pub(super) fn certs(
    key: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(key, path)?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|e| fail(key, path, pem_reason(e)))?;
    if certs.is_empty() {
        return Err(fail(
            key,
            path,
            "no PEM CERTIFICATE block in the file: certfile must be the PEM certificate chain \
             (-----BEGIN CERTIFICATE----- blocks, the server's own first), ca_certs the PEM CA \
             certificates",
        ));
    }
    Ok(certs)
}

/// The private key: the file's first PRIVATE KEY block (PKCS#8, PKCS#1 RSA or SEC1 EC).
pub(super) fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read("keyfile", path)?;
    if let Some(kind) = encrypted(&pem) {
        return Err(fail(
            "keyfile",
            path,
            format!(
                "the key is passphrase-protected ({kind}), and waitressd starts unattended: \
                 decrypt it once with `openssl pkey -in {p} -out {p}.plain` and set keyfile to \
                 that file (mode 0600: readable only by the user waitressd starts as)",
                p = path.display()
            ),
        ));
    }
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| match e {
        PemError::NoItemsFound => fail(
            "keyfile",
            path,
            "no PEM PRIVATE KEY block (PKCS#8, PKCS#1 RSA or SEC1 EC) in the file: keyfile must \
             be the PEM file of the certificate's private key (-----BEGIN PRIVATE KEY-----), or \
             certfile must hold it too when keyfile is not set",
        ),
        e => fail("keyfile", path, pem_reason(e)),
    })
}

/// How the key in `pem` is encrypted, if it is: a PKCS#8 `ENCRYPTED PRIVATE KEY` block, or
/// OpenSSL's legacy `Proc-Type: 4,ENCRYPTED` header inside an RSA/EC block.
fn encrypted(pem: &[u8]) -> Option<&'static str> {
    let text = String::from_utf8_lossy(pem);
    if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
        Some("an ENCRYPTED PRIVATE KEY block")
    } else if text
        .lines()
        .any(|l| l.trim_end() == "Proc-Type: 4,ENCRYPTED")
    {
        Some("Proc-Type: 4,ENCRYPTED")
    } else {
        None
    }
}

/// What a PEM parse error means for the user, and the fix.
fn pem_reason(e: PemError) -> String {
    let text = |b: &[u8]| String::from_utf8_lossy(b).trim().to_string();
    match e {
        PemError::Io(io) => format!("cannot read: {io}"),
        PemError::MissingSectionEnd { end_marker } => format!(
            "the file is cut off: a block has no END line (-----END {}-----); copy the whole \
             file again",
            text(&end_marker)
                .trim_matches('-')
                .trim_start_matches("END ")
        ),
        PemError::IllegalSectionStart { line } => format!(
            "not a valid PEM file: a malformed BEGIN line ({})",
            text(&line)
        ),
        PemError::Base64Decode(why) => format!(
            "not a valid PEM file: a block's base64 text is damaged ({why}); copy the file again"
        ),
        PemError::SectionTooLarge => "not a valid PEM file: a block is over 256 MB".into(),
        e => format!("not a valid PEM file: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encrypted_keys_are_recognised_in_both_forms() {
        let pkcs8 =
            b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n";
        assert!(encrypted(pkcs8).is_some());
        let legacy = b"-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nMIIB\n-----END RSA PRIVATE KEY-----\n";
        assert_eq!(encrypted(legacy), Some("Proc-Type: 4,ENCRYPTED"));
        let plain = b"-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n";
        assert_eq!(encrypted(plain), None);
    }

    #[test]
    fn a_cut_off_block_says_so_in_words() {
        let why = pem_reason(PemError::MissingSectionEnd {
            end_marker: b"CERTIFICATE".to_vec(),
        });
        assert_eq!(
            why,
            "the file is cut off: a block has no END line (-----END CERTIFICATE-----); copy the whole file again"
        );
    }
}

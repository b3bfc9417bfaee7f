//! TLS files that cannot be served with, on the real binary: each stops the start with exit 2
//! and one line naming the file, the true cause and the fix (missing, not PEM, the key of
//! another certificate, a passphrase-protected key in either PEM form, a cut-off certificate,
//! an unsupported key type, an X.509 v1 certificate, a chain with the leaf not first);
//! `--check-config` says the same.
use std::path::Path;

use super::{certs, command, p};
use crate::util::Daemon;

/// Runs with `--certfile cert --keyfile key`: the exit status must be 2 and stderr must name
/// `file` and contain every one of `words`; `--check-config` likewise.
fn refused(cert: &Path, key: &Path, file: &Path, words: &[&str]) {
    let args = ["--certfile", p(cert), "--keyfile", p(key)];
    for check in [false, true] {
        let mut c = command(&args);
        if check {
            c.arg("--check-config");
        }
        let out = c.output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?} check={check}: {err}");
        assert!(err.contains(p(file)), "{args:?}: names {file:?}? {err}");
        for w in words {
            assert!(err.contains(w), "{args:?}: {w:?} not in: {err}");
        }
        assert!(!err.contains("Serving on"), "bound before checking: {err}");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    }
}

#[test]
fn a_passphrase_protected_key_says_so_and_how_to_decrypt_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (cert, key) = certs::issue(d, "srv", "rsa", false);
    // PKCS#8 `ENCRYPTED PRIVATE KEY`, and OpenSSL's legacy `Proc-Type: 4,ENCRYPTED` form.
    certs::openssl(
        d,
        &[
            "pkey",
            "-in",
            p(&key),
            "-aes-128-cbc",
            "-passout",
            "pass:x",
            "-out",
            "pkcs8.key",
        ],
    );
    certs::openssl(
        d,
        &[
            "rsa",
            "-in",
            p(&key),
            "-aes128",
            "-traditional",
            "-passout",
            "pass:x",
            "-out",
            "legacy.key",
        ],
    );
    for name in ["pkcs8.key", "legacy.key"] {
        let enc = d.join(name);
        refused(
            &cert,
            &enc,
            &enc,
            &["passphrase-protected", "openssl pkey -in", "0600"],
        );
    }
}

#[test]
fn a_cut_off_certificate_says_it_has_no_end_line() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = certs::issue(dir.path(), "srv", "ecdsa", false);
    let text = std::fs::read_to_string(&cert).unwrap();
    let cut = dir.path().join("cut.pem");
    let lines: Vec<&str> = text.lines().collect();
    std::fs::write(&cut, lines[..lines.len() / 2].join("\n") + "\n").unwrap();
    refused(
        &cut,
        &key,
        &cut,
        &["cut off", "no END line", "-----END CERTIFICATE-----"],
    );
}

#[test]
fn an_unsupported_key_type_names_the_supported_ones() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (cert, _) = certs::issue(d, "srv", "ecdsa", false);
    let algos: [(&str, &[&str]); 2] = [
        (
            "p521.key",
            &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-521"],
        ),
        (
            "pss.key",
            &["-algorithm", "RSA-PSS", "-pkeyopt", "rsa_keygen_bits:2048"],
        ),
    ];
    for (name, algo) in algos {
        let mut args = vec!["genpkey"];
        args.extend_from_slice(algo);
        args.extend_from_slice(&["-out", name]);
        certs::openssl(d, &args);
        let key = d.join(name);
        refused(
            &cert,
            &key,
            &key,
            &[
                "unsupported key type",
                "P-256 or P-384",
                "Ed25519",
                "genpkey",
            ],
        );
    }
}

#[test]
fn an_x509_v1_certificate_is_named_as_such_not_as_a_key_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    certs::genkey(d, "ecdsa", "v1.key");
    certs::openssl(
        d,
        &[
            "req",
            "-new",
            "-key",
            "v1.key",
            "-subj",
            "/CN=localhost",
            "-out",
            "v1.csr",
        ],
    );
    // No -extfile: openssl writes a version 1 certificate.
    certs::openssl(
        d,
        &[
            "x509", "-req", "-in", "v1.csr", "-signkey", "v1.key", "-days", "30", "-out", "v1.pem",
        ],
    );
    let (cert, key) = (d.join("v1.pem"), d.join("v1.key"));
    refused(
        &cert,
        &key,
        &cert,
        &["X.509 v1", "-extfile", "openssl req -x509"],
    );
    let out = command(&["--certfile", p(&cert), "--keyfile", p(&key)])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&out.stderr).contains("does not match"));
}

#[test]
fn a_chain_with_the_leaf_not_first_says_to_reorder_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = certs::ca(d);
    let (leaf, key) = certs::issue(d, "srv", "ecdsa", false);
    let chain = |name: &str, parts: [&Path; 2]| {
        let path = d.join(name);
        let text: String = parts
            .iter()
            .map(|f| std::fs::read_to_string(f).unwrap())
            .collect();
        std::fs::write(&path, text).unwrap();
        path
    };
    let wrong = chain("wrong.pem", [&ca, &leaf]);
    refused(&wrong, &key, &wrong, &["certificate 2", "must come first"]);
    // The same files in the right order are served.
    let right = chain("right.pem", [&leaf, &ca]);
    let d = Daemon::start_with(
        &mut command(&["--certfile", p(&right), "--keyfile", p(&key)]),
        1,
    );
    let s = super::connect(&d.addr(), certs::client(&ca, 13, None)).unwrap();
    assert_eq!(s.conn.peer_certificates().map(|c| c.len()), Some(2));
}

#[test]
fn bad_certificates_at_start_exit_2_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = certs::issue(dir.path(), "a", "rsa", false);
    let (_, other_key) = certs::issue(dir.path(), "b", "ecdsa", false);
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate\n").unwrap();
    let missing = dir.path().join("missing.pem");
    // (arguments, the file the error must name, words of the reason)
    let cases: [(Vec<&str>, &Path, &str); 4] = [
        (
            vec!["--certfile", p(&missing), "--keyfile", p(&key)],
            &missing,
            "cannot read",
        ),
        (
            vec!["--certfile", p(&junk), "--keyfile", p(&key)],
            &junk,
            "no PEM CERTIFICATE block in the file: certfile must be the PEM certificate chain",
        ),
        (
            vec!["--certfile", p(&cert), "--keyfile", p(&junk)],
            &junk,
            "in the file: keyfile must be the PEM file of the certificate's private key",
        ),
        (
            vec!["--certfile", p(&cert), "--keyfile", p(&other_key)],
            &other_key,
            "does not match",
        ),
    ];
    for (args, file, why) in cases {
        let out = command(&args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains(p(file)) && err.contains(why),
            "{args:?}: {err}"
        );
        assert!(!err.contains("Serving on"), "bound before checking: {err}");
        // --check-config gates a deploy on the same check, code and message.
        let check = command(&[&args[..], &["--check-config"]].concat())
            .output()
            .unwrap();
        let check_err = String::from_utf8_lossy(&check.stderr);
        assert_eq!(
            check.status.code(),
            Some(2),
            "{args:?} --check-config: {check_err}"
        );
        assert!(
            check_err.contains(p(file)) && check_err.contains(why),
            "{args:?} --check-config: {check_err}"
        );
    }
}

/// An error about a TLS file points at where its setting was given, like every other config
/// error: `FILE:LINE: [section] key = 'value'` (and the resolved path of a relative value), the
/// environment variable, or the flag.
#[test]
fn a_file_error_names_where_its_setting_was_given() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (cert, _) = certs::issue(d, "srv", "ecdsa", false);
    let ini = d.join("t.ini");
    std::fs::write(
        &ini,
        "[app:main]\nuse = call:tlsenv:app\n\n[server:main]\nuse = egg:waitress#main\n\
         listen = 127.0.0.1:0\ncertfile = missing.pem\n",
    )
    .unwrap();
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let out = std::process::Command::new(crate::util::bin())
            .args(args)
            .envs(env.iter().copied())
            .env("PYTHONPATH", crate::util::root().join("tests/apps/wsgi"))
            .env("VIRTUAL_ENV", crate::util::venv())
            .current_dir(d)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        String::from_utf8_lossy(&out.stderr).trim().to_string()
    };
    let missing = d.join("missing.pem");
    for args in [
        &["--config", "t.ini"][..],
        &["--config", "t.ini", "--check-config"],
    ] {
        let err = run(args, &[]);
        let want = format!(
            "t.ini:7: [server:main] certfile = 'missing.pem': {}: cannot read",
            p(&missing)
        );
        assert!(err.contains(&want), "{args:?}: {err}");
    }
    // Set in the environment; and a certfile that must hold the key too (keyfile unset).
    std::fs::write(
        &ini,
        format!(
            "[app:main]\nuse = call:tlsenv:app\n\n[server:main]\nuse = egg:waitress#main\n\
             listen = 127.0.0.1:0\ncertfile = {}\n",
            p(&cert)
        ),
    )
    .unwrap();
    let err = run(
        &["--config", "t.ini"],
        &[("WAITRESSD_KEYFILE", p(&missing))],
    );
    assert!(
        err.contains(&format!(
            "environment WAITRESSD_KEYFILE='{}': cannot read",
            p(&missing)
        )),
        "{err}"
    );
    let err = run(&["--config", "t.ini"], &[]);
    assert!(
        err.contains(&format!(
            "t.ini:7: [server:main] certfile = '{}': as the keyfile (keyfile is not set): no PEM PRIVATE KEY",
            p(&cert)
        )),
        "{err}"
    );
}

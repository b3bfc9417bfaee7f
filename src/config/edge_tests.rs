//! The edge keys through `settings::build`: accepted forms and each rejection, by table.
use std::path::PathBuf;

use super::super::raw::Raw;
use super::super::settings::build;
use super::super::{AppSpec, Origin, Settings};
use super::CertReqs;

fn build_kv(kv: &[(&str, &str)]) -> Result<Settings, String> {
    let raws: Vec<Raw> = kv
        .iter()
        .enumerate()
        .map(|(i, (k, v))| Raw {
            key: k.to_string(),
            value: v.to_string(),
            origin: Origin::Ini {
                file: "t.ini".into(),
                line: i + 2,
                section: "server:main".into(),
            },
            base: PathBuf::from("/srv/app"),
        })
        .collect();
    let app = AppSpec::Module {
        target: "a:b".into(),
        call: false,
    };
    build(&raws, app, false).map_err(|e| e.to_string())
}

#[test]
fn tls_keys_are_typed_and_relative_to_the_ini() {
    let s = build_kv(&[
        ("certfile", "tls/cert.pem"),
        ("ca_certs", "/etc/ca.pem"),
        ("cert_reqs", "required"),
        ("ssl_min_version", "1.3"),
    ])
    .unwrap();
    let t = s.edge.tls.unwrap();
    assert_eq!(t.certfile, PathBuf::from("/srv/app/tls/cert.pem"));
    assert_eq!(t.keyfile, t.certfile, "keyfile defaults to certfile");
    assert_eq!(t.cert_reqs, CertReqs::Required);
    assert!(t.tls13_only);
    let s = build_kv(&[
        ("status_listen", "127.0.0.1:9090"),
        ("proxy_protocol", "true"),
    ])
    .unwrap();
    assert_eq!(
        s.edge.status_listen,
        Some("127.0.0.1:9090".parse().unwrap())
    );
    assert!(s.edge.proxy_protocol);
}

/// The generated INI's defaults, uncommented, are no mistake: empty means unset, and `none`
/// and `1.2` need no certfile.
#[test]
fn tls_keys_at_their_defaults_need_no_certfile() {
    let s = build_kv(&[
        ("keyfile", ""),
        ("ca_certs", ""),
        ("cert_reqs", "none"),
        ("ssl_min_version", "1.2"),
        ("umask", ""),
    ])
    .unwrap();
    assert_eq!(s.edge.tls, None);
    assert_eq!(s.umask, None);
    let s = build_kv(&[("certfile", "c.pem"), ("keyfile", ""), ("ca_certs", "")]).unwrap();
    let t = s.edge.tls.unwrap();
    assert_eq!(t.keyfile, t.certfile, "an empty keyfile is certfile's");
    assert_eq!(t.ca_certs, None);
}

/// `proxy_allow_ips` is parsed once, from the text as written (commas, spaces and newlines
/// separate items).
#[test]
fn proxy_allow_ips_items_from_the_text_as_written() {
    let table: &[(&str, &[&str])] = &[
        ("127.0.0.1,::1", &["127.0.0.1", "::1"]),
        ("10.0.0.0/8\n  ::1, *", &["10.0.0.0/8", "::1", "*"]),
        ("", &[]),
    ];
    for (text, items) in table {
        let s = build_kv(&[("proxy_allow_ips", text)]).unwrap();
        assert_eq!(s.edge.proxy_allow_ips.items(), *items, "{text:?}");
        assert_eq!(s.edge.proxy_allow_ips.as_str(), *text);
    }
}

#[test]
fn edge_rejections_name_the_fix() {
    // (settings, words the one-line error must contain)
    let table: &[(&[(&str, &str)], &str)] = &[
        (
            &[("keyfile", "k.pem")],
            "t.ini:2: [server:main] keyfile = 'k.pem': keyfile has no meaning without certfile",
        ),
        (
            &[("cert_reqs", "required")],
            "cert_reqs = 'required': cert_reqs has no meaning without certfile",
        ),
        (
            &[("ssl_min_version", "1.3")],
            "ssl_min_version = '1.3': ssl_min_version has no meaning without certfile",
        ),
        (
            &[("certfile", "c.pem"), ("cert_reqs", "sometimes")],
            "must be none, optional or required",
        ),
        (
            &[("certfile", "c.pem"), ("cert_reqs", "required")],
            "need ca_certs",
        ),
        (
            &[("certfile", "c.pem"), ("ssl_min_version", "1.1")],
            "must be 1.2 or 1.3",
        ),
        (
            &[("proxy_allow_ips", "10.0.0.0/99")],
            "not an IP address or CIDR network",
        ),
        (
            &[("proxy_allow_ips", "127.0.0.1 localhost")],
            "proxy_allow_ips = '127.0.0.1 localhost': \"localhost\" is not an IP address or CIDR network",
        ),
        (
            &[("proxy_protocol", "true"), ("proxy_allow_ips", " , ")],
            "proxy_allow_ips = ' , ': is empty while proxy_protocol is on",
        ),
        (&[("status_listen", "9090")], "expected HOST:PORT"),
        (
            &[
                ("listen", "127.0.0.1:9090"),
                ("status_listen", "127.0.0.1:9090"),
            ],
            "needs a port of its own",
        ),
    ];
    for (kv, want) in table {
        let e = build_kv(kv).expect_err("accepted");
        assert!(e.contains(want), "{kv:?}: {e}");
        assert!(!e.contains('\n'), "{e}");
    }
}

//! Tables for `settings::build`: defaults, converters per key, every validation rule and every
//! presence-based exclusion, and waitressd's range rejections.
use std::path::PathBuf;

use super::print::{field, to_json};
use super::raw::Raw;
use super::settings::build;
use super::{defs, AppSpec, Origin, Settings};

type Kv<'a> = &'a [(&'a str, &'a str)];

fn raws(kv: &[(&str, &str)]) -> Vec<Raw> {
    kv.iter()
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
        .collect()
}

fn ok(kv: &[(&str, &str)]) -> Settings {
    build(
        &raws(kv),
        AppSpec::Module {
            target: "a:b".into(),
            call: false,
        },
        false,
    )
    .unwrap_or_else(|e| panic!("{kv:?}: {e}"))
}

fn rejected(kv: &[(&str, &str)]) -> String {
    match build(
        &raws(kv),
        AppSpec::Module {
            target: "a:b".into(),
            call: false,
        },
        false,
    ) {
        Ok(_) => panic!("{kv:?} accepted"),
        Err(e) => e.to_string(),
    }
}

fn j(kv: &[(&str, &str)], key: &str) -> serde_json::Value {
    to_json(&ok(kv))[key].clone()
}

#[test]
fn defaults_are_waitress_defaults() {
    let json = to_json(&ok(&[]));
    let mut want = serde_json::json!({
        "listen": ["0.0.0.0:8080"], "ipv4": true, "ipv6": true, "threads": 4,
        "trusted_proxy": null, "trusted_proxy_count": 1, "trusted_proxy_headers": [],
        "log_untrusted_proxy_headers": false, "clear_untrusted_proxy_headers": true,
        "url_scheme": "http", "url_prefix": "", "backlog": 1024, "recv_bytes": 8192,
        "send_bytes": 1, "outbuf_overflow": 1048576, "outbuf_high_watermark": 16777216,
        "inbuf_overflow": 524288, "connection_limit": 100, "cleanup_interval": 30,
        "channel_timeout": 120, "log_socket_errors": true, "max_request_header_size": 262144,
        "max_request_body_size": 1073741824, "expose_tracebacks": false, "ident": "waitress",
        "asyncore_loop_timeout": 1, "asyncore_use_poll": false, "unix_socket": null,
        "unix_socket_perms": 384, "sockets": [], "channel_request_lookahead": 0,
        "server_name": "waitress.invalid", "workers": 1, "preload_app": false, "user": null,
        "group": null, "umask": null, "pidfile": null, "graceful_timeout": 30,
        "virtualenv": null, "access_log": null, "proc_name": null
    });
    // The worker-lifecycle keys (one json! literal would exceed the macro recursion limit).
    for k in [
        "request_timeout",
        "max_requests",
        "max_requests_jitter",
        "max_worker_memory",
    ] {
        want.as_object_mut().unwrap().insert(k.into(), 0.into());
    }
    let edge = serde_json::json!({
        "proxy_protocol": false, "proxy_allow_ips": ["127.0.0.1", "::1"], "status_listen": null,
        "certfile": null, "keyfile": null, "ca_certs": null, "cert_reqs": "none",
        "ssl_min_version": "1.2"
    });
    want.as_object_mut()
        .unwrap()
        .extend(edge.as_object().unwrap().clone());
    for (k, v) in [
        (
            "access_log_format",
            crate::http::log_format::COMBINED.into(),
        ),
        ("error_log", serde_json::Value::Null),
        ("log_level", "info".into()),
    ] {
        want.as_object_mut().unwrap().insert(k.into(), v);
    }
    assert_eq!(json, want);
    let keys: Vec<&String> = json.as_object().unwrap().keys().collect();
    let table: Vec<&str> = defs::DEFS
        .iter()
        .filter(|d| d.printed)
        .map(|d| d.name)
        .collect();
    assert_eq!(keys, table, "JSON keys in table order");
}

#[test]
fn every_printed_setting_has_a_field() {
    let s = ok(&[]);
    for d in defs::DEFS.iter().filter(|d| d.printed) {
        assert!(field(&s, d.name).is_some(), "{}", d.name);
    }
}

#[test]
fn converters_per_key() {
    let cases: &[(&str, &str, serde_json::Value)] = &[
        ("threads", " +8 ", 8.into()),
        ("threads", "8_0", 80.into()),
        ("ipv6", "no", false.into()),
        ("ipv6", "maybe", false.into()),
        ("expose_tracebacks", "Yes", true.into()),
        ("expose_tracebacks", "2", false.into()),
        ("unix_socket_perms", "0o660", 0o660.into()),
        ("unix_socket_perms", " 0660 ", 0o660.into()),
        ("unix_socket_perms", "777", 0o777.into()),
        ("url_prefix", "//foo//", "/foo".into()),
        ("url_prefix", "/", "/".into()),
        ("ident", "", serde_json::Value::Null),
        ("ident", "mine", "mine".into()),
        ("ident", "caf\u{e9}", "caf\u{e9}".into()),
        ("trusted_proxy", "", serde_json::Value::Null),
        ("unix_socket", "", serde_json::Value::Null),
        ("sockets", "fd://3", serde_json::json!([])),
        ("send_bytes", "0", 0.into()),
        ("backlog", "0", 0.into()),
        ("max_request_body_size", "0", 0.into()),
        ("channel_timeout", "0", 0.into()),
        ("server_name", " spaced ", " spaced ".into()),
        ("pidfile", "run/w.pid", "/srv/app/run/w.pid".into()),
        ("pidfile", "/abs.pid", "/abs.pid".into()),
        ("access_log", "-", "-".into()),
        ("umask", "022", 0o22.into()),
        ("umask", "", serde_json::Value::Null),
        ("workers", "3", 3.into()),
        ("max_worker_memory", "512", 512.into()),
        ("max_worker_memory", " 64k ", (64u64 << 10).into()),
        ("max_worker_memory", "200M", (200u64 << 20).into()),
        ("max_worker_memory", "2g", (2u64 << 30).into()),
        (
            "max_worker_memory",
            "16_000_000_000G",
            (16_000_000_000u64 << 30).into(),
        ),
        ("max_requests", "1000", 1000.into()),
    ];
    for (k, v, want) in cases {
        assert_eq!(&j(&[(k, v)], k), want, "{k} = {v:?}");
    }
    let cpus = std::thread::available_parallelism().unwrap().get();
    assert_eq!(j(&[("workers", "auto")], "workers"), cpus);
}

/// The compiled format the server gets is the one validated, and `--print-config` keeps the
/// text as written.
#[test]
fn access_log_format_is_compiled_with_the_settings() {
    use crate::http::log_format::{Format, COMBINED};
    for (kv, text) in [
        (&[][..], COMBINED),
        (&[("access_log_format", " JSON ")][..], " JSON "),
        (&[("access_log_format", "%(s)s")][..], "%(s)s"),
    ] {
        let s = ok(kv);
        assert_eq!(s.access_log_format, Format::parse(text).unwrap(), "{kv:?}");
        assert_eq!(s.access_log_format.as_str(), text, "{kv:?}");
        assert_eq!(field(&s, "access_log_format"), Some(text.into()), "{kv:?}");
    }
}

#[test]
fn listen_forms() {
    let cases: &[(Kv, &[&str])] = &[
        (
            &[("listen", "127.0.0.1:1 [::1]:2")],
            &["127.0.0.1:1", "[::1]:2"],
        ),
        (
            &[("listen", "127.0.0.1:1\n127.0.0.1:2")],
            &["127.0.0.1:1", "127.0.0.1:2"],
        ),
        (&[("listen", "127.0.0.1")], &["127.0.0.1:8080"]),
        (&[("listen", "[::1]")], &["[::1]:8080"]),
        (&[("listen", "127.0.0.1:http")], &["127.0.0.1:80"]),
        (&[("listen", "127.0.0.1:1 127.0.0.1:1")], &["127.0.0.1:1"]),
        (
            &[("listen", "127.0.0.1:0 127.0.0.1:0")],
            &["127.0.0.1:0", "127.0.0.1:0"],
        ),
        (
            &[("listen", "*:6543"), ("ipv6", "false")],
            &["0.0.0.0:6543"],
        ),
        (&[("port", "6543")], &["0.0.0.0:6543"]),
        (&[("port", " +65_43 ")], &["0.0.0.0:6543"]),
        (&[("host", "127.0.0.1")], &["127.0.0.1:8080"]),
        (&[("host", "::1")], &["[::1]:8080"]),
        (&[("host", "[::1]"), ("port", "81")], &["[::1]:81"]),
        (&[("unix_socket", "/tmp/w.sock")], &[]),
        (&[("unix_socket", "")], &["0.0.0.0:8080"]),
    ];
    for (kv, want) in cases {
        assert_eq!(j(kv, "listen"), serde_json::json!(want), "{kv:?}");
    }
}

/// A unix socket path longer than `sockaddr_un` holds is a config error naming its line, not a
/// bind error at start ("path must be shorter than SUN_LEN"); the longest that fits is taken.
#[test]
fn a_unix_socket_path_too_long_for_bind_is_rejected_at_its_line() {
    let fits = format!("/tmp/{}", "a".repeat(102));
    assert_eq!(fits.len(), 107);
    let s = ok(&[("unix_socket", &fits)]);
    assert_eq!(s.unix_socket.as_deref(), Some(std::path::Path::new(&fits)));
    let long = format!("{fits}b");
    let e = rejected(&[("unix_socket", &long)]);
    assert!(
        e.contains("t.ini:2: [server:main] unix_socket = ")
            && e.contains(
                "the path is 108 bytes; a unix socket path holds at most 107: use a shorter path"
            ),
        "{e}"
    );
}

#[test]
fn each_validation_rule_rejects() {
    let cases: &[(Kv, &str)] = &[
        (
            &[("threads", "four")],
            "t.ini:2: [server:main] threads = 'four': invalid literal for int()",
        ),
        (&[("threads", "4.0")], "invalid literal for int()"),
        (
            &[("unix_socket_perms", "rw")],
            "invalid literal for int() with base 8",
        ),
        (
            &[("thread", "4")],
            "Unknown adjustment 'thread' (did you mean 'threads'?)",
        ),
        (
            &[("socket_options", "x")],
            "Unknown adjustment 'socket_options'",
        ),
        (&[("listen", "::1")], "Invalid host/port specified"),
        (
            &[("listen", "127.0.0.1:nosuchservice")],
            "Invalid host/port specified",
        ),
        (&[("host", "")], "Invalid host/port specified"),
        (
            &[("listen", "127.0.0.1:80"), ("ipv4", "false")],
            "with ipv4 off",
        ),
        (
            &[("trusted_proxy_count", "2")],
            "trusted_proxy_count has no meaning without setting trusted_proxy",
        ),
        (
            &[("trusted_proxy", ""), ("trusted_proxy_count", "2")],
            "no meaning without setting trusted_proxy",
        ),
        (
            &[("trusted_proxy_headers", "x-forwarded-for")],
            "trusted_proxy_headers has no meaning",
        ),
        (
            &[
                ("trusted_proxy", "*"),
                (
                    "trusted_proxy_headers",
                    "x-forwarded-for, x-forwarded-proto",
                ),
            ],
            "unknown trusted_proxy_headers value (x-forwarded-for,)",
        ),
        (
            &[
                ("trusted_proxy", "*"),
                ("trusted_proxy_headers", "forwarded x-forwarded-for"),
            ],
            "mutually exclusive",
        ),
        (&[("threads", "4097")], "must be between 1 and 4096"),
        (
            &[("threads", "3 # four cores")],
            "threads = '3 # four cores': invalid literal for int() (the value includes its '#'/';' comment: INI values take no inline comments, configparser and PasteDeploy keep them; move the comment to its own line)",
        ),
        (
            &[("listen", "127.0.0.1:80 ;public")],
            "move the comment to its own line",
        ),
        (
            &[("listen", "unix:/tmp/x.sock")],
            "(listen takes HOST:PORT entries; for a unix socket set unix_socket = /tmp/x.sock instead)",
        ),
        (
            &[
                ("trusted_proxy", "*"),
                ("trusted_proxy_headers", "x-forwarded-for,x-forwarded-proto"),
            ],
            "(separate the headers with spaces, not commas: trusted_proxy_headers = x-forwarded-for x-forwarded-proto)",
        ),
        (
            &[("ident", "a\r\nX-Injected: 1")],
            "control character '\\r' cannot be in the Server header: use printable characters only",
        ),
        (
            &[("ident", "caf\u{e9} \u{2615}")],
            "ident = 'caf\u{e9} \u{2615}': '\u{2615}' (U+2615) is not latin-1, and the Server header is sent as latin-1 (as waitress sends it): use latin-1 characters only",
        ),
        (
            &[("max_worker_memory", "lots")],
            "invalid literal for int() (a size takes K, M or G)",
        ),
        (&[("max_worker_memory", "1T")], "invalid literal for int()"),
        (&[("max_worker_memory", "-1M")], "must not be negative"),
        (
            &[("max_worker_memory", "16000000000000G")],
            "integer too large",
        ),
        (&[("request_timeout", "-1")], "must not be negative"),
        (
            &[("access_log_format", "%(h)s %(zz)s")],
            "t.ini:2: [server:main] access_log_format = '%(h)s %(zz)s': unknown access log atom %(zz)s (known: %(h)s",
        ),
        (
            &[("access_log_format", "%(h")],
            "access_log_format = '%(h': unterminated %( at byte 0",
        ),
    ];
    for (kv, needle) in cases {
        let e = rejected(kv);
        assert!(e.contains(needle), "{kv:?}: {e}");
    }
}

#[test]
fn each_mutual_exclusion_rejects_on_presence() {
    let cases: &[(Kv, &str)] = &[
        (
            &[("listen", "127.0.0.1:1"), ("host", "x")],
            "host or port may not be set if listen is set",
        ),
        (
            &[("listen", "127.0.0.1:1"), ("port", "1")],
            "host or port may not be set if listen is set",
        ),
        (
            &[("listen", ""), ("sockets", "")],
            "socket may not be set if listen is set",
        ),
        (
            &[("sockets", ""), ("port", "1")],
            "host or port may not be set if sockets is set",
        ),
        (
            &[("sockets", ""), ("unix_socket", "")],
            "unix_socket may not be set if sockets is set",
        ),
        (
            &[("unix_socket", ""), ("host", "")],
            "unix_socket may not be set if host or port is set",
        ),
        (
            &[("unix_socket", "/x"), ("listen", "")],
            "unix_socket may not be set if listen is set",
        ),
    ];
    for (kv, needle) in cases {
        let e = rejected(kv);
        assert!(e.contains(needle), "{kv:?}: {e}");
    }
}

#[test]
fn trusted_proxy_rules() {
    assert_eq!(
        j(&[("trusted_proxy", "127.0.0.1")], "trusted_proxy_headers"),
        serde_json::json!(["x-forwarded-proto"])
    );
    let kv = [
        ("trusted_proxy", "*"),
        (
            "trusted_proxy_headers",
            "X-Forwarded-For\nx-forwarded-host x-forwarded-for",
        ),
        ("trusted_proxy_count", "2"),
    ];
    assert_eq!(
        j(&kv, "trusted_proxy_headers"),
        serde_json::json!(["x-forwarded-for", "x-forwarded-host"])
    );
    assert_eq!(j(&kv, "trusted_proxy_count"), 2);
    assert_eq!(
        j(
            &[
                ("trusted_proxy", "*"),
                ("trusted_proxy_headers", "Forwarded")
            ],
            "trusted_proxy_headers"
        ),
        serde_json::json!(["forwarded"])
    );
    // clear/log without trusted_proxy are accepted, as in waitress.
    assert_eq!(
        j(
            &[("log_untrusted_proxy_headers", "true")],
            "log_untrusted_proxy_headers"
        ),
        true
    );
    assert_eq!(
        j(&[("trusted_proxy_headers", "")], "trusted_proxy_headers"),
        serde_json::json!([])
    );
}

#[test]
fn private_waitress_keys_are_ignored() {
    for k in defs::IGNORED {
        ok(&[(k, "x")]);
    }
}

/// waitress accepts these; they cannot serve, so waitressd refuses them (README lists them).
#[test]
fn range_rejections() {
    let cases: &[(&str, &str)] = &[
        ("threads", "0"),
        ("threads", "-1"),
        ("connection_limit", "0"),
        ("recv_bytes", "0"),
        ("max_request_header_size", "0"),
        ("backlog", "-1"),
        ("backlog", "2147483648"),
        ("port", "65536"),
        ("port", "-1"),
        ("trusted_proxy_count", "-1"),
        ("send_bytes", "-1"),
        ("outbuf_overflow", "-1"),
        ("outbuf_high_watermark", "-1"),
        ("inbuf_overflow", "-1"),
        ("cleanup_interval", "-1"),
        ("channel_timeout", "-1"),
        ("max_request_body_size", "-1"),
        ("asyncore_loop_timeout", "-1"),
        ("channel_request_lookahead", "-1"),
        ("unix_socket_perms", "-1"),
        ("unix_socket_perms", "10000"),
        (
            "max_request_body_size",
            "99999999999999999999999999999999999999999999",
        ),
        ("workers", "0"),
        ("graceful_timeout", "-1"),
        ("umask", "1000"),
    ];
    for (k, v) in cases {
        let e = rejected(&[(k, v)]);
        assert!(e.contains(&format!("{k} = '{v}'")), "{e}");
    }
    let e = rejected(&[("listen", "")]);
    assert!(e.contains("nothing to listen on"), "{e}");
    let e = rejected(&[("listen", "127.0.0.1:65536")]);
    assert!(e.contains("out of range"), "{e}");
}

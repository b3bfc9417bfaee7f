//! Integration tests: config. The real binary on INI files (good ones print the expected JSON,
//! bad ones exit 2 naming file:line, flags win over the file), the CLI, and the generated docs.
//! `corpus` holds the differential tests against Python over `tests/config_corpus`.
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::util::{root, run};

mod corpus;

fn corpus() -> PathBuf {
    root().join("tests/config_corpus")
}

/// `waitressd FILE --print-config ARGS` in the corpus directory.
fn print_config(file: &str, extra: &[&str]) -> (i32, Value, String) {
    print_config_in(&corpus(), file, extra)
}

fn print_config_in(dir: &Path, file: &str, extra: &[&str]) -> (i32, Value, String) {
    let mut args = vec![file, "--print-config"];
    args.extend_from_slice(extra);
    let (code, out, err) = run(&args, dir);
    (code, serde_json::from_str(&out).unwrap_or(Value::Null), err)
}

#[test]
fn good_configs_print_expected_values() {
    let cases: &[(&str, &[&str], &str, Value)] = &[
        ("get_set.ini", &[], "threads", json!(6)),
        ("get_set.ini", &[], "url_scheme", json!("https")),
        (
            "get_port_from_default.ini",
            &[],
            "listen",
            json!(["127.0.0.1:6543"]),
        ),
        (
            "default_key_dropped.ini",
            &[],
            "listen",
            json!(["0.0.0.0:8080"]),
        ),
        ("default_key_dropped.ini", &[], "threads", json!(4)),
        ("use_config_other_file.ini", &[], "threads", json!(2)),
        (
            "use_config_other_file.ini",
            &[],
            "connection_limit",
            json!(50),
        ),
        (
            "use_config_other_file.ini",
            &[],
            "listen",
            json!(["127.0.0.1:6100"]),
        ),
        (
            "use_config_default_leaks.ini",
            &[],
            "connection_limit",
            json!(100),
        ),
        ("use_same_file_section.ini", &[], "threads", json!(3)),
        (
            "pserve_var.ini",
            &["http_port=7001"],
            "listen",
            json!(["127.0.0.1:7001"]),
        ),
        (
            "pserve_var_default_wins.ini",
            &["http_port=7001"],
            "listen",
            json!(["127.0.0.1:6543"]),
        ),
        (
            "pserve_var_drops_key.ini",
            &["threads=5"],
            "threads",
            json!(4),
        ),
        ("server_name_flag.ini", &["-s", "alt"], "threads", json!(11)),
        ("server_section_spaced.ini", &[], "threads", json!(12)),
        (
            "interp_escaped_percent.ini",
            &[],
            "ident",
            json!("100% sure"),
        ),
        ("interp_depth_ok.ini", &[], "threads", json!(3)),
        ("int_quirks.ini", &[], "connection_limit", json!(30)),
        ("int_quirks.ini", &[], "channel_timeout", json!(120)),
        ("octal_0o.ini", &[], "unix_socket_perms", json!(0o660)),
        ("octal_0o.ini", &[], "listen", json!([])),
        (
            "waitress_docs_unix.ini",
            &[],
            "unix_socket",
            json!("/tmp/waitressd-corpus.sock"),
        ),
        (
            "proxy_implicit_proto.ini",
            &[],
            "trusted_proxy_headers",
            json!(["x-forwarded-proto"]),
        ),
        (
            "url_prefix_and_empty_ident.ini",
            &[],
            "url_prefix",
            json!("/app"),
        ),
        ("url_prefix_and_empty_ident.ini", &[], "ident", Value::Null),
        ("sockets_string.ini", &[], "sockets", json!([])),
        (
            "listen_forms.ini",
            &[],
            "listen",
            json!([
                "127.0.0.1:8080",
                "[::1]:8080",
                "127.0.0.1:80",
                "127.0.0.1:0",
                "127.0.0.1:0",
                "[::1]:8081"
            ]),
        ),
        ("egg_waitressd.ini", &[], "threads", json!(2)),
        ("waitressd_keys.ini", &[], "workers", json!(2)),
        (
            "waitressd_keys.ini",
            &[],
            "pidfile",
            json!(corpus().join("run/waitressd.pid").to_string_lossy()),
        ),
        ("waitressd_keys.ini", &[], "umask", json!(0o22)),
        ("waitressd_keys.ini", &[], "access_log", json!("-")),
        (
            "waitress_docs_listen.ini",
            &["--port", "7000"],
            "listen",
            // Only the port: each entry keeps its host (issue 13).
            json!(["127.0.0.1:7000", "[::1]:7000"]),
        ),
        (
            "waitress_docs_hostport.ini",
            &["--threads=9", "--no-ipv6"],
            "threads",
            json!(9),
        ),
    ];
    for (file, extra, key, want) in cases {
        let (code, json, err) = print_config(file, extra);
        assert_eq!(code, 0, "{file}: {err}");
        assert_eq!(&json[key], want, "{file} {extra:?} {key}");
    }
}

#[test]
fn key_shadowed_by_default_warns_with_the_get_fix() {
    let (code, _, err) = print_config("default_key_dropped.ini", &[]);
    assert_eq!(code, 0);
    assert!(
        err.contains("default_key_dropped.ini:10: [server:main] port is ignored"),
        "{err}"
    );
    assert!(err.contains("get port = port"), "{err}");
}

#[test]
fn bad_configs_exit_2_with_file_line_key() {
    let cases: &[(&str, &str)] = &[
        ("int_word.ini", "int_word.ini:8: [server:main] threads = 'four': invalid literal for int()"),
        ("int_float.ini", "int_float.ini:6: [server:main] threads = '4.0'"),
        ("octal_invalid.ini", "octal_invalid.ini:7: [server:main] unix_socket_perms = 'rw-rw----'"),
        ("unknown_key.ini", "unknown_key.ini:6: [server:main] thread = '4': Unknown adjustment 'thread' (did you mean 'threads'?)"),
        ("dup_key.ini", "dup_key.ini:8: [server:main] threads"),
        ("dup_section.ini", "dup_section.ini:8: section [app:main]"),
        ("missing_header.ini", "missing_header.ini:1:"),
        ("parse_error.ini", "parse_error.ini:6: 'threads 4'"),
        ("interp_missing.ini", "interp_missing.ini:6: [server:main] threads = '%(nthreads)s': interpolation"),
        ("interp_bad_percent.ini", "interp_bad_percent.ini:6: [server:main] ident"),
        ("interp_literal_percent.ini", "interp_literal_percent.ini:7: [server:main] access_log_format = '%(h)s %(s)s': interpolation: %(h)s: no 'h' in this section, [DEFAULT], here, __file__ or NAME=VALUE (for a literal %, as in access_log_format's atoms, write %%)"),
        ("interp_unused_bad_default.ini", "interp_unused_bad_default.ini:2: [DEFAULT] broken"),
        ("interp_depth_one_too_deep.ini", "interp_depth_one_too_deep.ini:"),
        ("get_missing.ini", "get_missing.ini:6: [server:main] get threads = 'nope'"),
        ("excl_listen_host.ini", "excl_listen_host.ini:6: [server:main] listen = '127.0.0.1:6001': host or port may not be set if listen is set"),
        ("excl_unix_port.ini", "unix_socket may not be set if host or port is set"),
        ("listen_bare_v6.ini", "listen_bare_v6.ini:6: [server:main] listen = '::1': Invalid host/port specified"),
        ("host_empty.ini", "host_empty.ini:6: [server:main] host = ''"),
        ("proxy_count_without_proxy.ini", "proxy_count_without_proxy.ini:6: [server:main] trusted_proxy_count"),
        ("proxy_headers_comma.ini", "(x-forwarded-for,) expected one of forwarded, x-forwarded-by, x-forwarded-for, x-forwarded-host, x-forwarded-port, x-forwarded-proto (separate the headers with spaces, not commas: trusted_proxy_headers = x-forwarded-for x-forwarded-proto)"),
        ("inline_comment_kept.ini", "inline_comment_kept.ini:6: [server:main] threads = '4 ; four threads': invalid literal for int() (the value includes its '#'/';' comment: INI values take no inline comments, configparser and PasteDeploy keep them; move the comment to its own line)"),
        ("listen_unix_scheme.ini", "(listen takes HOST:PORT entries; for a unix socket set unix_socket = /tmp/waitressd-corpus.sock instead)"),
        ("use_gunicorn.ini", "use_gunicorn.ini:5: [server:main] use = 'egg:gunicorn#main'"),
        ("use_call.ini", "use_call.ini:2: [server:main] use = 'call:waitress:serve_paste'"),
        ("use_missing.ini", "use_missing.ini:1:"),
        ("no_server_section.ini", "no_server_section.ini: no [server:main] section"),
        ("server_section_ambiguous.ini", "server_section_ambiguous.ini:7: ambiguous"),
        ("use_config_missing_file.ini", "cannot read does_not_exist.ini"),
        ("latin1.ini", "latin1.ini:6: file is not valid UTF-8"),
        ("bom.ini", "bom.ini:1:"),
        ("range_threads_zero.ini", "range_threads_zero.ini:7: [server:main] threads = '0': must be at least 1"),
        ("range_listen_port.ini", "out of range"),
        ("range_negative_body.ini", "must not be negative"),
        ("listen_empty.ini", "nothing to listen on"),
        ("ipv4_maybe.ini", "ipv4_maybe.ini:6: [server:main] listen = '127.0.0.1:0': Invalid host/port specified: '127.0.0.1:0' with ipv4 off: Address family for hostname not supported (turned off by ipv4 = 'maybe' at ipv4_maybe.ini:7)"),
        ("waitressd_bad_access_log_format.ini", "waitressd_bad_access_log_format.ini:7: [server:main] access_log_format = '%(h)s %(zz)s': unknown access log atom %(zz)s (known: %(h)s %(l)s %(u)s %(t)s %(r)s %(m)s %(U)s %(q)s %(H)s %(s)s %(B)s %(b)s %(f)s %(a)s %(T)s %(M)s %(D)s %(L)s %(p)s, %({Header}i)s, %({Header}o)s, or json)"),
    ];
    for (file, needle) in cases {
        let (code, out, err) = run(&[file, "--check-config"], &corpus());
        assert_eq!(code, 2, "{file}: {out}{err}");
        let lines: Vec<&str> = err.lines().filter(|l| !l.contains(" WARN ")).collect();
        assert_eq!(lines.len(), 1, "{file}: one line on stderr: {err}");
        assert!(
            lines[0].starts_with("waitressd: ") && lines[0].contains(needle),
            "{file}: {err}"
        );
        assert!(
            !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
            "{err}"
        );
    }
}

#[test]
fn a_boolean_that_is_no_boolean_word_is_warned_about_with_its_line() {
    // waitress's asbool reads `maybe` as false: kept (and the start may then fail elsewhere,
    // as with ipv4 above), but the line is named with the fix.
    let (code, _, err) = run(&["ipv4_maybe.ini", "--check-config"], &corpus());
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(
            "ipv4_maybe.ini:7: [server:main] ipv4 = 'maybe': not a boolean: it reads as false, \
             as in waitress; write true or false"
        ),
        "{err}"
    );
    // Words asbool knows either way, and an empty value, are not warned about.
    let dir = tempfile::tempdir().unwrap();
    for v in ["no", "OFF", "0", "f", "", "Yes", "t"] {
        let ini = dir.path().join("b.ini");
        let text = format!(
            "[app:main]\nuse = egg:myapp\n[server:main]\nuse = egg:waitress#main\nipv6 = {v}\n"
        );
        std::fs::write(&ini, text).unwrap();
        let (code, _, err) = run(&[ini.to_str().unwrap(), "--print-config"], dir.path());
        assert_eq!(code, 0, "{v:?}: {err}");
        assert!(!err.contains("not a boolean"), "{v:?}: {err}");
    }
}

#[test]
fn check_config_help_and_version() {
    // --check-config imports the app (tests/it/switch/check.rs has the failing cases).
    let (code, out, err) = run(
        &["--app", "envapp:app", "--check-config"],
        &root().join("tests/apps/switch"),
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("configuration ok"), "{out}");
    let (code, out, _) = run(&["--help"], &corpus());
    assert_eq!(code, 0);
    for d in waitressd::config::defs::DEFS {
        assert!(
            out.contains(&waitressd::config::render::flag_usage(d)),
            "--help lacks {}",
            d.name
        );
    }
    for word in [
        "Exit status",
        "--check-config",
        "--print-config",
        "--app",
        "NAME=VALUE",
        "  2  ",
        "  3  ",
        "  4  ",
    ] {
        assert!(out.contains(word), "--help lacks {word}");
    }
    let (code, out, _) = run(&["--version"], &corpus());
    assert_eq!(code, 0);
    assert!(out.starts_with("waitressd "), "{out}");
}

#[test]
fn app_mode_takes_waitress_serve_flags() {
    let args = [
        "--app",
        "pkg.mod:app",
        "--call",
        "--listen=127.0.0.1:6001",
        "--listen",
        "[::1]:6002",
        "--thread=3",
        "--no-clear-untrusted-proxy-headers",
        "--trusted-proxy",
        "127.0.0.1",
        "--trusted-proxy-headers",
        "x-forwarded-for",
        "--server-name",
        "example.org",
        "--workers",
        "2",
        "--print-config",
    ];
    let (code, out, err) = run(&args, &corpus());
    assert_eq!(code, 0, "{err}");
    let j: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(j["listen"], json!(["127.0.0.1:6001", "[::1]:6002"]));
    assert_eq!(j["threads"], 3);
    assert_eq!(j["clear_untrusted_proxy_headers"], false);
    assert_eq!(j["trusted_proxy_headers"], json!(["x-forwarded-for"]));
    assert_eq!(j["server_name"], "example.org");
    assert_eq!(j["workers"], 2);
}

#[test]
fn flag_errors_name_the_flag_and_exit_2() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["--app", "a:b", "--threads", "four", "--check-config"],
            "waitressd: --threads 'four': invalid literal for int()",
        ),
        (&["--app", "a:b", "--bogus"], "--bogus not recognized"),
        (
            &["--app", "a:b", "--ipv4=1"],
            "--ipv4 must not have an argument",
        ),
        (
            &[
                "--app",
                "a:b",
                "--listen",
                "127.0.0.1:1",
                "--port",
                "2",
                "--check-config",
            ],
            "--listen '127.0.0.1:1': host or port may not be set if listen is set",
        ),
        (
            &["--app", "a:b", "--access-log-format", "%(h", "--check-config"],
            "waitressd: --access-log-format '%(h': unterminated %( at byte 0: atoms are written %(NAME)s (and %% for a literal %)\n",
        ),
        (&["--check-config"], "no INI file"),
        (&["waitress_docs_listen.ini", "stray"], "NAME=VALUE"),
    ];
    for (args, needle) in cases {
        let (code, _, err) = run(args, &corpus());
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

/// Generated files equal what the settings table renders (`WAITRESSD_BLESS=1` rewrites them).
#[test]
fn generated_docs_match_the_settings_table() {
    use waitressd::config::render;
    let bless = std::env::var_os("WAITRESSD_BLESS").is_some();
    let mut stale = Vec::new();
    let mut check = |rel: &str, want: String| {
        let path = root().join(rel);
        if std::fs::read_to_string(&path).ok().as_deref() != Some(want.as_str()) {
            if bless {
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, want).unwrap();
            } else {
                stale.push(rel.to_string());
            }
        }
    };
    check(
        "man/waitressd.8",
        waitressd::config::manpages::waitressd_8(),
    );
    check(
        "man/waitressd.ini.5",
        waitressd::config::manpages::waitressd_ini_5(),
    );
    check("conf/waitressd.ini", render::example_ini());
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap_or_default();
    let blocks = [
        ("settings-table", render::markdown_table()),
        ("usage", format!("```\n{}```\n", render::help())),
    ];
    let mut new = readme.clone();
    for (name, body) in blocks {
        let (begin, end) = (
            format!("<!-- {name}:begin -->\n"),
            format!("<!-- {name}:end -->"),
        );
        let (Some(b), Some(e)) = (new.find(&begin), new.find(&end)) else {
            stale.push(format!("README.md has no {name} markers"));
            continue;
        };
        new = format!("{}{begin}{body}{}", &new[..b], &new[e..]);
    }
    if new != readme {
        if bless {
            std::fs::write(root().join("README.md"), new).unwrap();
        } else {
            stale.push("README.md".into());
        }
    }
    assert!(stale.is_empty(), "stale generated files (run WAITRESSD_BLESS=1 cargo test --test it config::generated): {stale:?}");
}

/// The example INI loads, and prints exactly the defaults (every key, table order).
#[test]
fn example_ini_prints_every_default() {
    let (code, out, err) = run(&["conf/waitressd.ini", "--print-config"], &root());
    assert_eq!(code, 0, "{err}");
    let (code2, defaults, err2) = run(
        &["--app", "a:b", "--proc-name", "waitressd", "--print-config"],
        &root(),
    );
    assert_eq!(code2, 0, "{err2}");
    let (a, b): (Value, Value) = (
        serde_json::from_str(&out).unwrap(),
        serde_json::from_str(&defaults).unwrap(),
    );
    assert_eq!(a, b);
    let keys: Vec<&str> = a.as_object().unwrap().keys().map(String::as_str).collect();
    let table: Vec<&str> = waitressd::config::defs::DEFS
        .iter()
        .filter(|d| d.printed)
        .map(|d| d.name)
        .collect();
    assert_eq!(keys, table);
    let example = std::fs::read_to_string(root().join("conf/waitressd.ini")).unwrap();
    for d in waitressd::config::defs::DEFS {
        assert!(
            example.contains(&format!("\n#{} =", d.name)),
            "example lacks {}",
            d.name
        );
    }
}

/// The example INI with every setting uncommented (each at its default) still loads and means
/// the same: no key rejects its own documented default or an empty "unset". `host`, `port`,
/// `unix_socket` and `sockets` exclude `listen`; `trusted_proxy_count` needs `trusted_proxy`.
#[test]
fn example_ini_uncommented_prints_the_same_defaults() {
    let example = std::fs::read_to_string(root().join("conf/waitressd.ini")).unwrap();
    let skip = [
        "host",
        "port",
        "unix_socket",
        "sockets",
        "trusted_proxy_count",
    ];
    let mut uncommented = String::new();
    for line in example.lines() {
        let key = line.strip_prefix('#').and_then(|rest| {
            let (k, _) = rest.split_once('=')?;
            let k = k.strip_suffix(' ').unwrap_or(k);
            (!k.is_empty() && k.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')).then_some(k)
        });
        match key {
            Some(k) if skip.contains(&k) => {}
            Some(_) => uncommented.push_str(&line[1..]),
            None => uncommented.push_str(line),
        }
        uncommented.push('\n');
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("waitressd.ini"), &uncommented).unwrap();
    let (code, got, err) = print_config_in(dir.path(), "waitressd.ini", &[]);
    assert_eq!(code, 0, "{err}");
    let (code, want, err) = print_config_in(&root().join("conf"), "waitressd.ini", &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(got, want);
}

/// `ident` goes out in `Server:` as latin-1 (one byte per character, as waitress encodes the
/// head); a character outside latin-1 (which waitress fails on) is a config error.
#[test]
fn ident_is_sent_as_latin1_and_other_characters_are_refused() {
    let apps = root().join("tests/apps/switch");
    let d = crate::util::Daemon::start(
        &["envapp:app", "--listen", "127.0.0.1:0", "--ident=caf\u{e9}"],
        &apps,
        1,
    );
    let raw = crate::util::exchange(&d.addr(), b"GET / HTTP/1.0\r\n\r\n", 10);
    let want = b"\r\nServer: caf\xe9\r\n";
    assert!(
        raw.windows(want.len()).any(|w| w == want),
        "{}",
        String::from_utf8_lossy(&raw)
    );
    let (code, _, err) = run(
        &["envapp:app", "--ident=caf\u{e9}\u{2615}", "--check-config"],
        &apps,
    );
    assert_eq!(code, 2, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("--ident")
            && err.contains("'\u{2615}' (U+2615) is not latin-1")
            && err.contains("use latin-1 characters only"),
        "{err}"
    );
}

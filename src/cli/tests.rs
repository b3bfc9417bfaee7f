//! Tables for argv parsing: INI mode, waitress-serve flags, actions, usage errors.
use super::*;

fn p(args: &[&str]) -> Result<CliArgs, CliError> {
    parse(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
}

#[test]
fn ini_mode_with_vars_and_sections() {
    let a = p(&[
        "production.ini",
        "http_port=1234",
        "x=a=b",
        "-s",
        "alt",
        "-n",
        "web",
    ])
    .unwrap();
    assert_eq!(a.config, Some("production.ini".into()));
    assert_eq!(
        a.vars,
        [
            ("http_port".into(), "1234".into()),
            ("x".into(), "a=b".into())
        ]
    );
    assert_eq!(
        (a.server_name.as_str(), a.app_name.as_str()),
        ("alt", "web")
    );
    let a = p(&["--config", "p.ini", "--server-name=other"]).unwrap();
    assert_eq!(
        (a.config, a.server_name.as_str()),
        (Some("p.ini".into()), "other")
    );
    assert!(a.overrides.is_empty());
    let a = p(&["nonexistent.ini#web"]).unwrap();
    assert_eq!(
        (a.server_name.as_str(), a.app_name.as_str()),
        ("web", "web")
    );
}

#[test]
fn waitress_serve_flags() {
    let a = p(&[
        "--app",
        "pkg.mod:app",
        "--call",
        "--listen",
        "127.0.0.1:1",
        "--listen=[::1]:2",
        "--no-ipv6",
        "--threads=8",
        "--thread",
        "9",
        "--expose-tracebacks",
        "--server-name",
        "example.com",
        "--unix-socket-perms",
        "660",
    ])
    .unwrap();
    assert_eq!(a.app.as_deref(), Some("pkg.mod:app"));
    assert!(a.call);
    let want: Vec<(String, String)> = [
        ("listen", "127.0.0.1:1 [::1]:2"),
        ("ipv6", "false"),
        ("threads", "9"),
        ("expose_tracebacks", "true"),
        ("unix_socket_perms", "660"),
        ("server_name", "example.com"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(a.overrides, want);
}

#[test]
fn actions() {
    assert_eq!(p(&["--help"]).unwrap().action, Action::Help);
    assert_eq!(p(&["-V"]).unwrap().action, Action::Version);
    assert_eq!(
        p(&["x.ini", "--check-config"]).unwrap().action,
        Action::CheckConfig
    );
    assert_eq!(
        p(&["x.ini", "--print-config"]).unwrap().action,
        Action::PrintConfig
    );
    assert!(p(&["x.ini", "--daemon"]).unwrap().daemon);
}

#[test]
fn usage_errors_name_the_flag() {
    let cases: &[(&[&str], &str)] = &[
        (&["--bogus"], "--bogus"),
        (&["--threads"], "--threads"),
        (&["--ipv4=1"], "--ipv4"),
        (&["--no"], "ambiguous"),
        (&["x.ini", "notavar"], "notavar"),
        (&["--app", "a:b", "-s", "x"], "-s"),
        (&["-q"], "-q"),
    ];
    for (args, needle) in cases {
        let e = p(args).unwrap_err().to_string();
        assert!(e.contains(needle), "{args:?}: {e}");
    }
}

#[test]
fn waitress_serve_positional_app_and_factory() {
    let a = p(&["--threads=2", "pkg.mod:app"]).unwrap();
    assert_eq!(
        (a.app.as_deref(), a.call, a.config),
        (Some("pkg.mod:app"), false, None)
    );
    let a = p(&["pkg:create_app()"]).unwrap();
    assert_eq!((a.app.as_deref(), a.call), (Some("pkg:create_app"), true));
    let a = p(&["--app", "pkg:create_app()"]).unwrap();
    assert_eq!((a.app.as_deref(), a.call), (Some("pkg:create_app"), true));
    // Not an app spec: an INI path (existing or not), or pserve's file#name.
    for word in [
        "production.ini",
        "conf/x.ini",
        "c:\\x.ini",
        "x.ini#web",
        "a:b/c",
    ] {
        assert!(p(&[word]).unwrap().app.is_none(), "{word}");
    }
    assert!(p(&["a:b", "c:d"])
        .unwrap_err()
        .to_string()
        .contains("one application"));
}

#[test]
fn development_and_environment_flags() {
    let a = p(&[
        "x.ini",
        "--chdir",
        "/srv",
        "--pythonpath",
        "src,lib",
        "--pythonpath=more",
        "--env",
        "A=1",
        "-e",
        "B=x=y",
        "--reload",
        "--reload-extra-file",
        "a.txt",
        "--log-config",
        "log.ini",
        "-v",
    ])
    .unwrap();
    assert_eq!(a.chdir, Some("/srv".into()));
    assert_eq!(a.pythonpath, ["src", "lib", "more"]);
    assert_eq!(
        a.env,
        [("A".into(), "1".into()), ("B".into(), "x=y".into())]
    );
    assert!(a.reload && a.verbose);
    assert_eq!(a.reload_extra, [std::path::PathBuf::from("a.txt")]);
    assert_eq!(a.log_config, Some("log.ini".into()));
    assert!(p(&["--env", "1A=2"]).is_err());
}

/// Every flag of waitress-serve 3.0.2 (runner.py, the spec's full list) parses, in its own
/// spelling, with a value where it takes one.
#[test]
fn every_waitress_serve_flag_is_accepted() {
    let valued = [
        "host",
        "port",
        "listen",
        "threads",
        "trusted-proxy",
        "trusted-proxy-count",
        "trusted-proxy-headers",
        "url-scheme",
        "url-prefix",
        "backlog",
        "recv-bytes",
        "send-bytes",
        "outbuf-overflow",
        "outbuf-high-watermark",
        "inbuf-overflow",
        "connection-limit",
        "cleanup-interval",
        "channel-timeout",
        "max-request-header-size",
        "max-request-body-size",
        "ident",
        "asyncore-loop-timeout",
        "unix-socket",
        "unix-socket-perms",
        "sockets",
        "channel-request-lookahead",
        "server-name",
    ];
    let flags = [
        "ipv4",
        "ipv6",
        "log-untrusted-proxy-headers",
        "clear-untrusted-proxy-headers",
        "log-socket-errors",
        "expose-tracebacks",
        "asyncore-use-poll",
    ];
    for f in valued {
        let a = p(&[&format!("--{f}=1"), "m:app"]).unwrap_or_else(|e| panic!("--{f}: {e}"));
        assert_eq!(a.app.as_deref(), Some("m:app"), "--{f}");
    }
    for f in flags {
        p(&[&format!("--{f}"), "m:app"]).unwrap_or_else(|e| panic!("--{f}: {e}"));
        p(&[&format!("--no-{f}"), "m:app"]).unwrap_or_else(|e| panic!("--no-{f}: {e}"));
    }
    assert!(p(&["--call", "m:app"]).unwrap().call);
    assert_eq!(p(&["--help"]).unwrap().action, Action::Help);
}

#[test]
fn flags_without_effect_are_named_with_why() {
    let table: &[(&[&str], &str)] = &[
        (
            &["p.ini", "--call"],
            "--call has no effect with an INI file",
        ),
        (
            &["--app", "a:b", "-n", "web"],
            "-n/--app-name has no effect with MODULE:OBJECT",
        ),
        (
            &["a:b", "--reload-extra-file", "x.txt"],
            "--reload-extra-file has no effect without --reload",
        ),
        (
            &["p.ini", "--print-config", "--check-config"],
            "--print-config has no effect: --check-config, given after it, is what runs",
        ),
        (
            &["p.ini", "--check-config", "--print-config"],
            "--check-config has no effect: --print-config, given after it, is what runs",
        ),
    ];
    for (args, want) in table {
        let a = p(args).unwrap();
        assert_eq!(a.ignored.len(), 1, "{args:?}: {:?}", a.ignored);
        assert!(a.ignored[0].starts_with(want), "{args:?}: {:?}", a.ignored);
    }
    for args in [
        &["p.ini", "-n", "web", "--reload", "--reload-extra-file", "x"][..],
        &["a:b()", "--print-config"][..],
        &["--app", "a:b", "--call", "--check-config", "--check-config"][..],
    ] {
        assert_eq!(p(args).unwrap().ignored, Vec::<String>::new(), "{args:?}");
    }
}

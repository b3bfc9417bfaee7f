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

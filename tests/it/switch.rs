//! Integration tests: switching from waitress-serve, pserve and gunicorn (issue 13) — the
//! positional `MODULE:OBJECT` and `factory()`, half-listen flags, `WAITRESSD_<KEY>` precedence,
//! `--print-config --verbose`, `trusted_proxy` lists, `--chdir`/`--pythonpath`/`--env`, and
//! `--check-config` exiting with a start's code and message. The real binary, real apps.
use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

use crate::util::{self, bin, get, root, run, venv, Daemon};

mod check;
mod daemon;
mod logging;
mod reload;

pub fn apps() -> PathBuf {
    root().join("tests/apps/switch")
}

/// GET `path` → the JSON body (asserting 200).
pub fn get_json(addr: &str, path: &str) -> Value {
    let (status, head, body) = get(addr, path);
    assert_eq!(status, 200, "{head}\n{}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).unwrap()
}

/// `waitressd ARGS` with extra environment variables: (exit code, stdout, stderr).
fn run_env(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out = Command::new(bin())
        .args(args)
        .current_dir(apps())
        .env("VIRTUAL_ENV", venv())
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn print_config(args: &[&str], env: &[(&str, &str)]) -> Value {
    let mut a = args.to_vec();
    a.push("--print-config");
    let (code, out, err) = run_env(&a, env);
    assert_eq!(code, 0, "{args:?}: {err}");
    serde_json::from_str(&out).unwrap()
}

#[test]
fn waitress_serve_positional_app_and_factory_call_serve() {
    for spec in ["envapp:app", "envapp:create_app()"] {
        let d = Daemon::start(&[spec, "--listen=127.0.0.1:0"], &apps(), 1);
        let v = get_json(&d.addr(), "/");
        assert_eq!(v["version"], 1, "{spec}");
    }
    // waitress-serve's own order: flags first, then the app; and --app with factory().
    let d = Daemon::start(
        &[
            "--threads=2",
            "--app",
            "envapp:create_app()",
            "--port",
            "0",
            "--host",
            "127.0.0.1",
        ],
        &apps(),
        1,
    );
    assert_eq!(get_json(&d.addr(), "/")["version"], 1);
    // Two applications, as waitress-serve says it.
    let (code, _, err) = run(&["envapp:app", "other:app", "--check-config"], &apps());
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("specify one application only"), "{err}");
    // A word that is neither a file nor MODULE:OBJECT: both readings are offered.
    let (code, _, err) = run(&["envapp", "--check-config"], &apps());
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("cannot read envapp") && err.contains("or MODULE:OBJECT"),
        "{err}"
    );
}

#[test]
fn a_flag_for_only_port_or_host_keeps_the_other_half_of_listen() {
    let v = print_config(&["switch.ini", "--port", "6603"], &[]);
    assert_eq!(v["listen"], serde_json::json!(["127.0.0.1:6603"]));
    let v = print_config(&["switch.ini", "--host", "::1"], &[]);
    assert_eq!(v["listen"], serde_json::json!(["[::1]:6543"]));
    let v = print_config(&["switch.ini"], &[("WAITRESSD_PORT", "6604")]);
    assert_eq!(v["listen"], serde_json::json!(["127.0.0.1:6604"]));
    // listen itself still replaces everything.
    let v = print_config(&["switch.ini", "--listen", "127.0.0.2:1"], &[]);
    assert_eq!(v["listen"], serde_json::json!(["127.0.0.2:1"]));
    let (code, _, err) = run_env(&["switch.ini", "--port", "70000", "--check-config"], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("--port '70000'"), "{err}");
    // The port is merged as the number int() reads (waitress's `port = 8_0` is 80), and an
    // entry the merge made that fails is blamed on the flag with its own value.
    let v = print_config(&["switch.ini", "--port", "8_0"], &[]);
    assert_eq!(v["listen"], serde_json::json!(["127.0.0.1:80"]));
    let (code, _, err) = run_env(
        &["switch.ini", "--port=7", "--no-ipv4", "--print-config"],
        &[],
    );
    assert_eq!(code, 2);
    assert!(
        err.starts_with("waitressd: --port '7': Invalid host/port specified: '127.0.0.1:7'")
            && err
                .trim_end()
                .ends_with("(the file's listen entry with this port)"),
        "{err}"
    );
    // The real daemon binds the INI's host with the flag's port.
    let d = Daemon::start(
        &["switch.ini", "--port", "0", "--pythonpath", "."],
        &apps(),
        1,
    );
    assert!(d.urls[0].starts_with("http://127.0.0.1:"), "{:?}", d.urls);
    assert_eq!(get_json(&d.addr(), "/")["version"], 1);
}

#[test]
fn environment_variables_set_settings_below_flags_above_the_ini() {
    let v = print_config(&["switch.ini"], &[]);
    assert_eq!(v["threads"], 2);
    let v = print_config(&["switch.ini"], &[("WAITRESSD_THREADS", "3")]);
    assert_eq!(v["threads"], 3);
    let v = print_config(
        &["switch.ini", "--threads", "5"],
        &[("WAITRESSD_THREADS", "3")],
    );
    assert_eq!(v["threads"], 5);
    let v = print_config(&["envapp:app"], &[("WAITRESSD_EXPOSE_TRACEBACKS", "yes")]);
    assert_eq!(v["expose_tracebacks"], true);
    let (code, _, err) = run_env(
        &["switch.ini", "--check-config"],
        &[("WAITRESSD_THREADS", "x")],
    );
    assert_eq!(code, 2);
    assert_eq!(
        err.trim(),
        "waitressd: environment WAITRESSD_THREADS='x': invalid literal for int()"
    );
    // Only the upper-case name is read, as documented: another case is named, not ignored
    // silently (and not taken either).
    let (code, out, err) = run_env(
        &["switch.ini", "--print-config"],
        &[("WAITRESSD_threads", "8")],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&out).unwrap()["threads"],
        2
    );
    assert!(
        err.contains("environment WAITRESSD_threads is not a setting and is ignored (did you mean WAITRESSD_THREADS?)"),
        "{err}"
    );
    // A near miss is named, not silently ignored.
    let (code, _, err) = run_env(
        &["switch.ini", "--pythonpath", ".", "--check-config"],
        &[("WAITRESSD_THREAD", "8")],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("environment WAITRESSD_THREAD is not a setting and is ignored (did you mean WAITRESSD_THREADS?)"),
        "{err}"
    );
}

#[test]
fn print_config_verbose_says_where_each_value_came_from() {
    let v = print_config(
        &["switch.ini", "--verbose", "--ident", "x"],
        &[("WAITRESSD_BACKLOG", "7")],
    );
    assert_eq!(
        v["threads"],
        serde_json::json!({"value": 2, "from": "switch.ini:8"})
    );
    assert_eq!(v["listen"]["from"], "switch.ini:7");
    assert_eq!(
        v["backlog"],
        serde_json::json!({"value": 7, "from": "env WAITRESSD_BACKLOG"})
    );
    assert_eq!(
        v["ident"],
        serde_json::json!({"value": "x", "from": "flag --ident"})
    );
    assert_eq!(
        v["channel_timeout"],
        serde_json::json!({"value": 120, "from": "default"})
    );
    assert_eq!(v["proc_name"]["value"], "switch");
    // host from the file, port from a flag: both are named.
    let dir = tempfile::tempdir().unwrap();
    let ini = dir.path().join("hp.ini");
    std::fs::write(
        &ini,
        "[app:main]\nuse = egg:x\n\n[server:main]\nuse = egg:waitress#main\nhost = 127.0.0.1\n",
    )
    .unwrap();
    let v = print_config(&[ini.to_str().unwrap(), "--verbose", "--port", "7"], &[]);
    assert_eq!(v["listen"]["value"], serde_json::json!(["127.0.0.1:7"]));
    assert_eq!(
        v["listen"]["from"],
        format!("{}:6 and flag --port", ini.display())
    );
}

#[test]
fn trusted_proxy_takes_lists_and_cidrs() {
    let v = print_config(
        &["envapp:app", "--trusted-proxy", "10.0.0.0/8 127.0.0.1"],
        &[],
    );
    assert_eq!(v["trusted_proxy"], "10.0.0.0/8 127.0.0.1");
    let (code, _, err) = run(
        &[
            "envapp:app",
            "--trusted-proxy",
            "127.0.0.1 proxy.lan",
            "--check-config",
        ],
        &apps(),
    );
    assert_eq!(code, 2);
    assert!(
        err.contains("--trusted-proxy '127.0.0.1 proxy.lan': \"proxy.lan\" is neither"),
        "{err}"
    );
    // A CIDR that holds the loopback peer: X-Forwarded-Proto is honoured.
    let req = b"GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-Proto: https\r\nConnection: close\r\n\r\n";
    for (proxy, scheme) in [("10.0.0.0/8 127.0.0.0/8", "https"), ("10.0.0.0/8", "http")] {
        let d = Daemon::start(
            &[
                "envapp:app",
                "--listen",
                "127.0.0.1:0",
                "--trusted-proxy",
                proxy,
            ],
            &apps(),
            1,
        );
        let (status, _, body) = util::split_response(&util::exchange(&d.addr(), req, 30));
        assert_eq!(status, 200);
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["url_scheme"], scheme, "{proxy}");
    }
}

#[test]
fn chdir_pythonpath_and_env_reach_the_app() {
    let elsewhere = std::env::temp_dir();
    let dir = apps();
    let d = Daemon::start(
        &[
            "--chdir",
            dir.to_str().unwrap(),
            "envapp:app",
            "--listen",
            "127.0.0.1:0",
            "--env",
            "SWITCH_A=1",
            "-e",
            "SWITCH_B=two words",
        ],
        &elsewhere,
        1,
    );
    let v = get_json(&d.addr(), "/");
    assert_eq!(v["cwd"], dir.to_str().unwrap());
    assert_eq!(
        v["env"],
        serde_json::json!({"SWITCH_A": "1", "SWITCH_B": "two words"})
    );
    // An INI whose app factory module is only importable through --pythonpath.
    let ini = dir.join("switch.ini");
    let d = Daemon::start(
        &[
            ini.to_str().unwrap(),
            "--pythonpath",
            dir.to_str().unwrap(),
            "--port",
            "0",
        ],
        &elsewhere,
        1,
    );
    let v = get_json(&d.addr(), "/");
    assert_eq!(v["sys_path"][0], dir.to_str().unwrap());
    let (code, _, err) = run(
        &["envapp:app", "--chdir", "/nonexistent", "--check-config"],
        &dir,
    );
    assert_eq!(code, 2);
    assert!(err.contains("--chdir /nonexistent"), "{err}");
    let (code, _, err) = run(&["envapp:app", "--env", "NOEQUALS", "--check-config"], &dir);
    assert_eq!(code, 2);
    assert!(err.contains("NAME=VALUE"), "{err}");
}

/// A Django project as Django users run it: `project.wsgi:application`, settings from the
/// environment (`--env`, and `WAITRESSD_<KEY>` for waitressd's own settings).
#[test]
fn django_project_serves_with_env_and_environment_settings() {
    let mut cmd = Command::new(bin());
    cmd.args([
        "djsite.wsgi:application",
        "--env",
        "DJANGO_SETTINGS_MODULE=djsite.settings",
        "--env",
        "DJSITE_GREETING=hi from --env",
    ])
    .current_dir(apps())
    .env("WAITRESSD_LISTEN", "127.0.0.1:0")
    .env("WAITRESSD_WORKERS", "2");
    let d = Daemon::start_with(&mut cmd, 1);
    let (status, _, body) = get(&d.addr(), "/hello/");
    assert_eq!(
        (status, body.as_slice()),
        (200, b"hi from --env".as_slice())
    );
    let v = get_json(&d.addr(), "/info/");
    assert_eq!(
        v["multiprocess"], true,
        "WAITRESSD_WORKERS=2 reached the app"
    );
    assert!(
        v["thread"].as_str().unwrap().starts_with("waitress-"),
        "{v}"
    );
    let (status, _, _) = get(&d.addr(), "/missing/");
    assert_eq!(status, 404);
    drop(d);
    // A settings module that does not exist: --check-config fails as a start would.
    let (code, _, err) = run_env(
        &[
            "djsite.wsgi:application",
            "--env",
            "DJANGO_SETTINGS_MODULE=djsite.nosuch",
            "--check-config",
        ],
        &[],
    );
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("No module named 'djsite.nosuch'"), "{err}");
}

/// Real Flask and Pyramid projects, typed as their users did with waitress-serve and pserve.
#[test]
fn flask_factory_and_pyramid_ini_as_their_users_type_them() {
    let wsgi_apps = root().join("tests/apps/wsgi");
    // waitress-serve --call flaskapp:create_app, spelled both ways.
    for args in [
        &["--listen=127.0.0.1:0", "flaskapp:create_app()"][..],
        &["--listen=127.0.0.1:0", "--call", "flaskapp:create_app"][..],
    ] {
        let d = Daemon::start(args, &wsgi_apps, 1);
        let (status, _, body) = get(&d.addr(), "/");
        assert_eq!(
            (status, body.as_slice()),
            (200, b"hello from flask".as_slice()),
            "{args:?}"
        );
    }
    // pserve production.ini: its [logger_root] is WARN and it has no [logger_waitress], so
    // waitress's INFO "Serving on" is not shown, as under pserve; the master's line is.
    let ini = wsgi_apps.join("pyrapp/production.ini");
    let d = Daemon::start(&[ini.to_str().unwrap()], &wsgi_apps, 1);
    let (status, _, _) = get(&d.addr(), "/");
    assert_eq!(status, 200);
    let mut seen = Vec::new();
    while let Ok(l) = d.stderr.recv_timeout(std::time::Duration::from_millis(500)) {
        seen.push(l);
    }
    assert!(
        seen.iter().any(|l| l.contains("worker(s) ready")),
        "{seen:?}"
    );
    assert!(!seen.iter().any(|l| l.contains("Serving on")), "{seen:?}");
}

/// A flag that has no effect on its command line is warned about once, with why; the command
/// still does what it would without it.
#[test]
fn a_flag_without_effect_is_warned_about_once() {
    let (code, out, err) = run_env(&["switch.ini", "--call", "--print-config"], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with('{'), "{out}");
    let warned: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("--call has no effect with an INI file"))
        .collect();
    assert_eq!(warned.len(), 1, "{err}");
    assert!(warned[0].contains("WARN"), "{err}");
    let (code, out, err) = run_env(
        &[
            "switch.ini",
            "--pythonpath",
            ".",
            "--print-config",
            "--check-config",
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("configuration ok"), "{out}");
    assert!(
        err.contains("--print-config has no effect: --check-config, given after it, is what runs"),
        "{err}"
    );
}

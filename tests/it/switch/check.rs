//! `--check-config` checks what a start checks, short of binding: each case exits with the
//! start's code and message.
use super::apps;
use crate::util::{run, Daemon};

/// (args, exit code, text in the last stderr line) for `--check-config` and for a start.
const CASES: &[(&[&str], i32, &str)] = &[
    (&["missing_egg.ini"], 4, "cannot load the application"),
    (&["no_app_section.ini"], 4, "cannot load the application"),
    (
        &["envapp:app", "--virtualenv", "/nonexistent"],
        2,
        "virtualenv /nonexistent: no readable pyvenv.cfg",
    ),
    (
        &["--app", "nosuchmod:app"],
        4,
        "module 'nosuchmod' is not importable",
    ),
    (
        &["envapp:app", "--user", "no-such-user-x"],
        3,
        "--user 'no-such-user-x': unknown user \"no-such-user-x\" (create the account, or set user = to one that exists)",
    ),
    (
        &["envapp:app", "--access-log=/nonexistent/dir/a.log"],
        3,
        "--access-log '/nonexistent/dir/a.log': cannot open access_log /nonexistent/dir/a.log: No such file or directory",
    ),
    (
        &["envapp:app", "--error-log=/nonexistent/dir/e.log"],
        3,
        "--error-log '/nonexistent/dir/e.log': cannot open error_log /nonexistent/dir/e.log: No such file or directory",
    ),
    (
        &["envapp:app", "--access-log=/"],
        3,
        "cannot open access_log /: Is a directory (os error 21) (it is a directory: point access_log at a file in it)",
    ),
];

#[test]
fn check_config_exits_with_the_starts_code_and_message() {
    for (args, code, needle) in CASES {
        let mut a = args.to_vec();
        a.extend(["--listen", "127.0.0.1:0", "--check-config"]);
        let (got, out, err) = run(&a, &apps());
        assert_eq!(got, *code, "{args:?}: {out}{err}");
        let last = err.lines().last().unwrap_or("");
        assert!(
            last.starts_with("waitressd: ") && last.contains(needle),
            "{args:?}: {err}"
        );
        // A real start says the same and exits with the same code.
        let mut a = args.to_vec();
        a.extend(["--listen", "127.0.0.1:0"]);
        let (got, _, start_err) = run(&a, &apps());
        assert_eq!(got, *code, "start {args:?}: {start_err}");
        assert!(start_err.contains(needle), "start {args:?}: {start_err}");
    }
}

#[test]
fn an_account_or_log_file_from_the_ini_names_its_file_and_line() {
    // Found after validation (the account database, the filesystem), still named like a
    // config error: file:line, key and value, then the fix.
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "user = no-such-user-x",
            "user = 'no-such-user-x': unknown user",
        ),
        (
            "group = no-such-group-x",
            "group = 'no-such-group-x': unknown group",
        ),
        (
            "access_log = /nonexistent/dir/a.log",
            "access_log = '/nonexistent/dir/a.log': cannot open access_log",
        ),
        (
            "error_log = /nonexistent/dir/e.log",
            "error_log = '/nonexistent/dir/e.log': cannot open error_log",
        ),
    ];
    for (line, needle) in cases {
        let ini = dir.path().join("prod.ini");
        std::fs::write(
            &ini,
            format!(
                "[app:main]\nuse = call:envapp:factory\n\n[server:main]\nuse = egg:waitress#main\n\
                 listen = 127.0.0.1:0\n{line}\n"
            ),
        )
        .unwrap();
        let want = format!("{}:7: [server:main] {needle}", ini.display());
        for extra in [&["--check-config"][..], &[]] {
            let mut a = vec![ini.to_str().unwrap()];
            a.extend(extra);
            let (code, out, err) = run(&a, &apps());
            assert_eq!(code, 3, "{line} {extra:?}: {out}{err}");
            let last = err.lines().last().unwrap_or("");
            assert!(
                last.starts_with("waitressd: ") && last.contains(&want),
                "{line} {extra:?}: want {want:?} in: {err}"
            );
        }
    }
}

#[test]
fn check_config_opens_the_log_files_and_leaves_none_behind() {
    let dir = tempfile::tempdir().unwrap();
    let (new, old) = (dir.path().join("new.log"), dir.path().join("old.log"));
    std::fs::write(&old, "kept\n").unwrap();
    let (a, e) = (
        format!("--access-log={}", new.display()),
        format!("--error-log={}", old.display()),
    );
    let (code, out, err) = run(&["envapp:app", &a, &e, "--check-config"], &apps());
    assert_eq!(code, 0, "{out}{err}");
    assert!(!new.exists(), "the check left {} behind", new.display());
    assert_eq!(std::fs::read_to_string(&old).unwrap(), "kept\n");
}

#[test]
fn an_unimportable_module_names_the_fixes_of_its_mode() {
    // INI mode: the cwd is not on sys.path (as with pserve), so --chdir cannot help.
    let (code, _, err) = run(&["missing_module.ini", "--check-config"], &apps());
    assert_eq!(code, 4, "{err}");
    let last = err.lines().last().unwrap_or("");
    assert!(
        last.contains("module 'nosuchmod_ini' is not importable")
            && last.ends_with("add its directory with --pythonpath DIR"),
        "{err}"
    );
    // App mode: the cwd is on sys.path (as with waitress-serve), so --chdir is a fix too.
    let (code, _, err) = run(&["nosuchmod_app:app", "--check-config"], &apps());
    assert_eq!(code, 4, "{err}");
    let last = err.lines().last().unwrap_or("");
    assert!(
        last.ends_with("add its directory with --pythonpath DIR or --chdir DIR"),
        "{err}"
    );
}

#[test]
fn check_config_imports_the_app_without_serving_it() {
    let (code, out, err) = run(&["envapp:create_app()", "--check-config"], &apps());
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with(
            "configuration ok: app envapp:create_app() loads; would listen on 0.0.0.0:8080"
        ),
        "{out}"
    );
    // The same configuration then starts.
    let d = Daemon::start(
        &["envapp:create_app()", "--listen", "127.0.0.1:0"],
        &apps(),
        1,
    );
    assert_eq!(super::get_json(&d.addr(), "/")["version"], 1);
}

#[test]
fn a_factory_given_as_the_app_names_the_call_form() {
    let (code, _, err) = run(&["envapp:create_app", "--check-config"], &apps());
    assert_eq!(code, 4, "{err}");
    assert!(
        err.contains("envapp:create_app is a factory, not a WSGI application (it takes no arguments): call it with envapp:create_app() or --call"),
        "{err}"
    );
}

/// Runs the binary as `nobody` (setpriv, util-linux): (exit code, stderr).
fn as_nobody(args: &[&str]) -> Option<(i32, String)> {
    if !nix::unistd::Uid::effective().is_root() {
        return None; // only root can become nobody; CI runs as root
    }
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(crate::util::bin())
        .args(args)
        .current_dir("/")
        .output()
        .ok()?;
    Some((
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

#[test]
fn not_root_for_a_low_port_or_for_user_names_the_fix() {
    if as_nobody(&["--version"]).is_none() {
        return;
    }
    // Port 80 needs privileges unless the host lowered ip_unprivileged_port_start.
    let unprivileged_start: u32 =
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(1024);
    if unprivileged_start > 80 {
        let (code, err) = as_nobody(&["--app", "x:y", "--listen", "127.0.0.1:80"]).unwrap();
        assert_eq!(code, 3, "{err}");
        assert!(
            err.contains("cannot listen on 127.0.0.1:80: Permission denied")
                && err.contains("ports below 1024 need root"),
            "{err}"
        );
    }
    for extra in [&[][..], &["--check-config"][..]] {
        let mut args = vec!["--app", "x:y", "--listen", "127.0.0.1:0", "--user", "root"];
        args.extend_from_slice(extra);
        let (code, err) = as_nobody(&args).unwrap();
        assert_eq!(code, 3, "{extra:?} {err}");
        assert!(
            err.contains("cannot drop privileges")
                && err.contains("switching to user/group needs root"),
            "{extra:?} {err}"
        );
    }
}

#[test]
fn missing_paste_deploy_names_the_virtualenv_to_use() {
    // An empty virtualenv (no PasteDeploy): the message names it and how to choose another.
    let dir = tempfile::tempdir().unwrap();
    let venv = dir.path().join("empty");
    let base = waitressd::wsgi::interpreter::BASE_PYTHON;
    let made = std::process::Command::new(base)
        .args(["-m", "venv", "--without-pip"])
        .arg(&venv)
        .status()
        .unwrap();
    assert!(made.success());
    let v = venv.to_str().unwrap();
    let (code, _, err) = run(
        &["missing_egg.ini", "--virtualenv", v, "--check-config"],
        &apps(),
    );
    assert_eq!(code, 4, "{err}");
    assert!(
        err.contains(&format!(
            "PasteDeploy is not installed in the virtualenv {v}"
        )) && err.contains("--virtualenv or virtualenv = in [server:main]"),
        "{err}"
    );
    // No virtualenv at all: the base interpreter (without PasteDeploy on CI) is named, and so
    // are VIRTUAL_ENV and --virtualenv.
    let out = std::process::Command::new(crate::util::bin())
        .args(["missing_egg.ini", "--check-config"])
        .current_dir(apps())
        .env_remove("VIRTUAL_ENV")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    if err.contains("PasteDeploy is not installed") {
        assert_eq!(out.status.code(), Some(4));
        assert!(
            err.contains("no virtualenv is in use")
                && err.contains("VIRTUAL_ENV=/path/to/venv, --virtualenv"),
            "{err}"
        );
    }
}

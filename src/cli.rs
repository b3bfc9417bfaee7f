//! Command line → `CliArgs`: INI mode and `--app` mode, waitress-serve flags, and the actions;
//! and `main`, the program's glue (parse → load → act → exit code).
//!
//! CONTRACT (owned by the config work): `parse(argv) -> Result<CliArgs, CliError>`.
use crate::config::{self, defs};

/// What the user asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Serve,
    CheckConfig,
    PrintConfig,
    Help,
    Version,
}

/// Parsed command line; `config::load` turns it into `Settings`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliArgs {
    pub action: Action,
    /// INI file (`--config FILE` or the first positional).
    pub config: Option<std::path::PathBuf>,
    /// `-s/--server-name`, default `main`.
    pub server_name: String,
    /// `-n/--app-name`, default `main`.
    pub app_name: String,
    /// `NAME=VALUE` words after the INI file.
    pub vars: Vec<(String, String)>,
    /// `--app MODULE:CALLABLE`.
    pub app: Option<String>,
    /// `--call`.
    pub call: bool,
    /// waitress-serve style flags as (setting name, raw string value), in order; they win over
    /// the INI.
    pub overrides: Vec<(String, String)>,
    /// `--daemon`: detach from the terminal.
    pub daemon: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Usage(String),
}

/// The version line of `--version`.
pub const VERSION: &str = concat!(
    "waitressd ",
    env!("CARGO_PKG_VERSION"),
    " (waitress 3.0.2 compatible)"
);

/// Options that are not settings: (long name, takes a value, short letter).
pub const GENERAL: &[(&str, bool, Option<char>)] = &[
    ("config", true, None),
    ("server-name", true, Some('s')),
    ("app-name", true, Some('n')),
    ("app", true, None),
    ("call", false, None),
    ("check-config", false, None),
    ("print-config", false, None),
    ("daemon", false, None),
    ("help", false, Some('h')),
    ("version", false, Some('V')),
];

/// Every long option: (name, takes a value).
fn long_options() -> Vec<(String, bool)> {
    let mut out: Vec<(String, bool)> = GENERAL
        .iter()
        .map(|(n, v, _)| (n.to_string(), *v))
        .collect();
    for d in defs::DEFS {
        let name = d.name.replace('_', "-");
        if d.conv == defs::Conv::Bool {
            out.push((format!("no-{name}"), false));
            out.push((name, false));
        } else if name != "server-name" {
            out.push((name, true));
        }
    }
    out
}

/// getopt's long-option lookup: an exact name, or an unambiguous prefix (as waitress-serve).
fn lookup(opts: &[(String, bool)], name: &str) -> Result<(String, bool), CliError> {
    if let Some(o) = opts.iter().find(|(n, _)| n == name) {
        return Ok(o.clone());
    }
    let found: Vec<&(String, bool)> = opts.iter().filter(|(n, _)| n.starts_with(name)).collect();
    match found.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(CliError::Usage(format!("option --{name} not recognized"))),
        many => Err(CliError::Usage(format!(
            "option --{name} is ambiguous ({})",
            many.iter()
                .map(|(n, _)| format!("--{n}"))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// argv (without the program name) → `CliArgs`.
pub fn parse(argv: &[String]) -> Result<CliArgs, CliError> {
    let opts = long_options();
    let mut a = CliArgs {
        action: Action::Serve,
        config: None,
        server_name: "main".into(),
        app_name: "main".into(),
        vars: Vec::new(),
        app: None,
        call: false,
        overrides: Vec::new(),
        daemon: false,
    };
    let mut positionals: Vec<String> = Vec::new();
    // (-s or --server-name, value): a section in INI mode, the SERVER_NAME setting otherwise.
    let mut section_flags: Vec<(bool, String)> = Vec::new();
    let mut app_name_given = false;
    let mut i = 0;
    let mut only_positionals = false;
    while i < argv.len() {
        let arg = &argv[i];
        i += 1;
        if only_positionals || arg == "-" || !arg.starts_with('-') {
            positionals.push(arg.clone());
            continue;
        }
        if arg == "--" {
            only_positionals = true;
            continue;
        }
        let (name, takes, inline) = if let Some(long) = arg.strip_prefix("--") {
            let (n, inline) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (long, None),
            };
            let (name, takes) = lookup(&opts, n)?;
            if !takes && inline.is_some() {
                return Err(CliError::Usage(format!(
                    "option --{name} must not have an argument"
                )));
            }
            (name, takes, inline)
        } else {
            let c = arg[1..].chars().next().unwrap_or('-');
            let Some((name, takes, _)) = GENERAL.iter().find(|g| g.2 == Some(c)) else {
                return Err(CliError::Usage(format!("option {arg} not recognized")));
            };
            let rest = &arg[1 + c.len_utf8()..];
            let inline = (!rest.is_empty()).then(|| rest.trim_start_matches('=').to_string());
            if !takes && inline.is_some() {
                return Err(CliError::Usage(format!(
                    "option -{c} must not have an argument"
                )));
            }
            let name = if c == 's' {
                "-s".to_string()
            } else {
                name.to_string()
            };
            (name, *takes, inline)
        };
        let value = if takes {
            match inline {
                Some(v) => v,
                None if i < argv.len() => {
                    i += 1;
                    argv[i - 1].clone()
                }
                None => {
                    return Err(CliError::Usage(format!(
                        "option --{} requires a value",
                        name.trim_start_matches('-')
                    )))
                }
            }
        } else {
            String::new()
        };
        match name.as_str() {
            "help" => a.action = Action::Help,
            "version" => a.action = Action::Version,
            "check-config" => a.action = Action::CheckConfig,
            "print-config" => a.action = Action::PrintConfig,
            "daemon" => a.daemon = true,
            "call" => a.call = true,
            "app" => a.app = Some(value),
            "config" => a.config = Some(value.into()),
            "app-name" => {
                a.app_name = value;
                app_name_given = true;
            }
            "-s" => section_flags.push((true, value)),
            "server-name" => section_flags.push((false, value)),
            "listen" => match a.overrides.iter_mut().find(|(k, _)| k == "listen") {
                // waitress-serve joins repeated --listen values with spaces.
                Some((_, v)) => *v = format!("{v} {value}"),
                None => a.overrides.push(("listen".into(), value)),
            },
            flag => {
                let (key, v) = match flag.strip_prefix("no-") {
                    Some(k) => (k, "false".to_string()),
                    None if !takes => (flag, "true".to_string()),
                    None => (flag, value),
                };
                let key = key.replace('-', "_");
                a.overrides.retain(|(k, _)| *k != key);
                a.overrides.push((key, v));
            }
        }
    }
    if matches!(a.action, Action::Help | Action::Version) {
        return Ok(a);
    }
    let mut pos = positionals.into_iter();
    if a.config.is_none() {
        a.config = pos.next().map(Into::into);
    }
    for word in pos {
        let Some((k, v)) = word.split_once('=') else {
            return Err(CliError::Usage(format!(
                "unexpected argument {word:?}: after the INI file only NAME=VALUE words are allowed"
            )));
        };
        a.vars.push((k.to_string(), v.to_string()));
    }
    if let Some(cfg) = a.config.clone() {
        // pserve's `file.ini#name` names both the app and the server section.
        let s = cfg.to_string_lossy().into_owned();
        if let Some((file, frag)) = s.split_once('#').filter(|_| !cfg.exists()) {
            a.config = Some(file.into());
            a.server_name = frag.to_string();
            if !app_name_given {
                a.app_name = frag.to_string();
            }
        }
        if let Some((_, v)) = section_flags.pop() {
            a.server_name = v;
        }
    } else {
        for (short, v) in section_flags {
            if short {
                return Err(CliError::Usage(
                    "-s NAME selects a [server:NAME] section of an INI file; there is none".into(),
                ));
            }
            // waitress-serve's --server-name sets SERVER_NAME.
            a.overrides.retain(|(k, _)| k != "server_name");
            a.overrides.push(("server_name".into(), v));
        }
    }
    Ok(a)
}

/// Sets up waitressd's own logging on stderr: level info unless `RUST_LOG` says otherwise.
/// Safe to call more than once.
pub fn init_logging() {
    let env = env_logger::Env::default().default_filter_or("info");
    let _ = env_logger::Builder::from_env(env)
        .format_timestamp_millis()
        .try_init();
}

/// Writes to stdout, ignoring a closed pipe (`waitressd --help | head` is not an error).
fn out(text: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let _ = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush());
}

/// Whole program: returns the process exit code (see `crate::exit`). Errors are one line on
/// stderr, never a panic or a backtrace.
pub fn main(argv: &[String]) -> i32 {
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!("waitressd: internal error: {msg}{at}");
    }));
    init_logging();
    let args = match parse(argv) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("waitressd: {e} (see waitressd --help)");
            return crate::exit::CONFIG;
        }
    };
    match args.action {
        Action::Help => {
            out(&config::render::help());
            return crate::exit::OK;
        }
        Action::Version => {
            out(&format!("{VERSION}\n"));
            return crate::exit::OK;
        }
        _ => {}
    }
    let settings = match config::load(&args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("waitressd: {e}");
            return crate::exit::CONFIG;
        }
    };
    match args.action {
        Action::CheckConfig => {
            out("configuration ok\n");
            crate::exit::OK
        }
        Action::PrintConfig => {
            let json = config::to_json(&settings);
            println!(
                "{}",
                serde_json::to_string_pretty(&json).unwrap_or_default()
            );
            crate::exit::OK
        }
        _ => {
            // SIGHUP re-reads the configuration from the same command line.
            let reload_args = args.clone();
            let opts = crate::supervisor::RunOptions {
                daemon: args.daemon,
                reload: Some(Box::new(move || {
                    config::load(&reload_args).map_err(|e| e.to_string())
                })),
            };
            match crate::supervisor::run_with(settings, opts) {
                Ok(()) => crate::exit::OK,
                Err(e) => {
                    eprintln!("waitressd: {e}");
                    e.exit_code()
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
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
}

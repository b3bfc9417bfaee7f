//! argv → `CliArgs`: getopt-style long options with unambiguous prefixes (as waitress-serve),
//! the short letters of `GENERAL`, INI mode's positionals and `NAME=VALUE` words, and
//! waitress-serve's setting flags as overrides.
use super::{Action, CliArgs};
use crate::config::args::GENERAL;
use crate::config::defs;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Usage(String),
}

/// Every long option: (name, takes a value).
fn long_options() -> Vec<(String, bool)> {
    let mut out: Vec<(String, bool)> = GENERAL
        .iter()
        .map(|g| (g.long.to_string(), g.takes_value()))
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
        verbose: false,
        log_config: None,
        reload: false,
        reload_extra: Vec::new(),
        chdir: None,
        pythonpath: Vec::new(),
        env: Vec::new(),
        ignored: Vec::new(),
    };
    // --check-config / --print-config, in the order given (the last one runs).
    let mut actions: Vec<&str> = Vec::new();
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
            let Some(g) = GENERAL.iter().find(|g| g.short == Some(c)) else {
                return Err(CliError::Usage(format!("option {arg} not recognized")));
            };
            let rest = &arg[1 + c.len_utf8()..];
            let inline = (!rest.is_empty()).then(|| rest.trim_start_matches('=').to_string());
            let takes = g.takes_value();
            if !takes && inline.is_some() {
                return Err(CliError::Usage(format!(
                    "option -{c} must not have an argument"
                )));
            }
            let name = if c == 's' {
                "-s".to_string()
            } else {
                g.long.to_string()
            };
            (name, takes, inline)
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
            "check-config" => {
                a.action = Action::CheckConfig;
                actions.push("--check-config");
            }
            "print-config" => {
                a.action = Action::PrintConfig;
                actions.push("--print-config");
            }
            "daemon" => a.daemon = true,
            "verbose" => a.verbose = true,
            "log-config" => a.log_config = Some(value.into()),
            "reload" => a.reload = true,
            "reload-extra-file" => a.reload_extra.push(value.into()),
            "chdir" => a.chdir = Some(value.into()),
            "pythonpath" => a
                .pythonpath
                .extend(value.split(',').filter(|d| !d.is_empty()).map(String::from)),
            "env" => {
                let Some((k, v)) = value.split_once('=').filter(|(k, _)| valid_env_name(k)) else {
                    return Err(CliError::Usage(format!(
                        "--env {value:?}: expected NAME=VALUE (e.g. --env DJANGO_SETTINGS_MODULE=site.settings)"
                    )));
                };
                a.env.push((k.to_string(), v.to_string()));
            }
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
    let mut pos = positionals.into_iter().peekable();
    if a.config.is_none() && a.app.is_none() {
        // waitress-serve's form: a trailing MODULE:OBJECT that is not a file is the app.
        match pos.peek() {
            Some(first) if looks_like_app(first, a.chdir.as_deref()) => a.app = pos.next(),
            _ => a.config = pos.next().map(Into::into),
        }
    }
    if a.app.is_some() && a.config.is_none() {
        if let Some(word) = pos.next() {
            return Err(CliError::Usage(format!(
                "unexpected argument {word:?}: specify one application only (MODULE:OBJECT or --app), \
                 as waitress-serve; NAME=VALUE words go with an INI file"
            )));
        }
    }
    if let Some(app) = a.app.take() {
        // `MODULE:factory()` is waitress-serve's `--call`, spelled as Python would.
        a.app = Some(match app.strip_suffix("()") {
            Some(target) => {
                a.call = true;
                target.to_string()
            }
            None => app,
        });
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
    a.ignored = ignored_flags(&a, app_name_given, &actions);
    Ok(a)
}

/// The flags of `a` that have no effect on this command line, each with why.
fn ignored_flags(a: &CliArgs, app_name_given: bool, actions: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    if a.call && a.config.is_some() {
        out.push(
            "--call has no effect with an INI file (its [app:NAME] section builds the app; \
             --call goes with MODULE:OBJECT)"
                .to_string(),
        );
    }
    if app_name_given && a.app.is_some() {
        out.push(
            "-n/--app-name has no effect with MODULE:OBJECT (it selects an [app:NAME] section \
             of an INI file)"
                .to_string(),
        );
    }
    if !a.reload_extra.is_empty() && !a.reload {
        out.push(
            "--reload-extra-file has no effect without --reload (it adds a file the reloader \
             watches)"
                .to_string(),
        );
    }
    if let Some(last) = actions.last() {
        if let Some(other) = actions.iter().find(|f| *f != last) {
            out.push(format!(
                "{other} has no effect: {last}, given after it, is what runs (one action at a time)"
            ));
        }
    }
    out
}

/// `pkg.module:object` (optionally `()`) that is not an existing file: waitress-serve's
/// positional application.
fn looks_like_app(word: &str, chdir: Option<&std::path::Path>) -> bool {
    let path = std::path::Path::new(word);
    let exists = match chdir {
        Some(dir) => dir.join(path).exists(),
        None => path.exists(),
    };
    let Some((module, object)) = word.strip_suffix("()").unwrap_or(word).split_once(':') else {
        return false;
    };
    let dotted = |s: &str| {
        !s.is_empty()
            && s.split('.').all(|part| {
                part.chars()
                    .next()
                    .is_some_and(|c| c.is_alphabetic() || c == '_')
                    && part.chars().all(|c| c.is_alphanumeric() || c == '_')
            })
    };
    !exists && dotted(module) && dotted(object)
}

/// A POSIX environment variable name.
fn valid_env_name(name: &str) -> bool {
    name.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

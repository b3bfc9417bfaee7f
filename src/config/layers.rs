//! The layers of raw settings, lowest first: the INI file's server section, then
//! `WAITRESSD_<KEY>` environment variables, then command-line flags; each `Raw` keeps its
//! origin (for messages and `--print-config --verbose`). Bind keys follow their own rule.
use std::path::PathBuf;

use super::raw::{self, Raw};
use super::{defs, ini, listen, paste, values, AppSpec, CliArgs, ConfigError, Origin};

/// Keys that choose where to listen. A flag (or environment variable) for `listen`,
/// `unix_socket` or `sockets` replaces all of them from the layers below; one for only `host`
/// or only `port` keeps the other half of each `listen` entry below it.
const BIND_KEYS: [&str; 5] = ["host", "port", "listen", "unix_socket", "sockets"];

/// The prefix of the environment variables that set settings (`WAITRESSD_THREADS=8`).
pub const ENV_PREFIX: &str = "WAITRESSD_";

/// Every `WAITRESSD_<KEY>` variable of the environment that names a setting, as
/// (key, value, variable name), in table order.
pub fn env_settings() -> Vec<(String, String, String)> {
    defs::DEFS
        .iter()
        .filter_map(|d| {
            let var = format!("{ENV_PREFIX}{}", d.name.to_uppercase());
            let value = std::env::var(&var).ok()?;
            Some((d.name.to_string(), value, var))
        })
        .collect()
}

/// Warns about `WAITRESSD_*` variables that are a likely typo of a setting's (they would be
/// ignored silently otherwise). Variables of waitressd's own tools are not settings either,
/// and are left alone when they are not close to one.
pub fn warn_unknown_env() {
    for (var, _) in std::env::vars_os() {
        let Some(key) = var.to_str().and_then(|v| v.strip_prefix(ENV_PREFIX)) else {
            continue;
        };
        let lower = key.to_lowercase();
        // Only the upper-case name is read (`env_settings`): `WAITRESSD_threads` is a near miss.
        let known = defs::find(&lower).map(|d| d.name);
        if known.is_some() && key == lower.to_uppercase() {
            continue;
        }
        if let Some(s) = known.or_else(|| defs::suggest(&lower)) {
            log::warn!(
                "environment {ENV_PREFIX}{key} is not a setting and is ignored (did you mean {ENV_PREFIX}{}?)",
                s.to_uppercase()
            );
        }
    }
}

/// The raw settings after every layer (INI < environment < flags), each with its origin.
pub fn collect(
    args: &CliArgs,
    env: &[(String, String, String)],
) -> Result<(Vec<Raw>, AppSpec), ConfigError> {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    let (mut raws, app) =
        match (&args.config, &args.app) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::Usage(
                    "--app and an INI file exclude each other (the INI file names the app)".into(),
                ))
            }
            (Some(cfg), None) => {
                let abs = ini::abspath(cfg);
                let display = cfg.to_string_lossy();
                let raws = paste::load_server(&abs, &display, &args.server_name, &args.vars)
                    .map_err(|e| match e {
                        // The command line's own file: say what else the word could have meant.
                        ConfigError::Io { file, source }
                            if file == display && source.kind() == std::io::ErrorKind::NotFound =>
                        {
                            ConfigError::Usage(format!(
                                "cannot read {file}: {source} (give the path of the INI file, or \
                             MODULE:OBJECT to serve an app as waitress-serve does, e.g. \
                             myapp.wsgi:application)"
                            ))
                        }
                        e => e,
                    })?;
                let app = AppSpec::Ini {
                    path: abs,
                    app_name: args.app_name.clone(),
                    vars: args.vars.clone(),
                };
                (raws, app)
            }
            (None, Some(target)) => (
                Vec::new(),
                AppSpec::Module {
                    target: target.clone(),
                    call: args.call,
                },
            ),
            (None, None) => {
                return Err(ConfigError::Usage(
                    "no INI file and no application given: waitressd FILE.ini, or waitressd \
                 MODULE:OBJECT as with waitress-serve (see waitressd --help)"
                        .into(),
                ))
            }
        };
    let env_layer: Vec<Raw> = env
        .iter()
        .map(|(key, value, var)| Raw {
            key: key.clone(),
            value: value.clone(),
            origin: Origin::Env(var.clone()),
            base: cwd.clone(),
        })
        .collect();
    overlay(&mut raws, env_layer)?;
    let flag_layer: Vec<Raw> = args
        .overrides
        .iter()
        .map(|(key, value)| Raw {
            key: key.clone(),
            value: value.clone(),
            origin: Origin::Flag(defs::flag(key)),
            base: cwd.clone(),
        })
        .collect();
    overlay(&mut raws, flag_layer)?;
    Ok((raws, app))
}

/// Puts `layer` over `raws` (a key in `layer` wins), with the bind-key rules of `BIND_KEYS`.
fn overlay(raws: &mut Vec<Raw>, layer: Vec<Raw>) -> Result<(), ConfigError> {
    let given = |k: &str| layer.iter().any(|r| r.key == k);
    let whole = given("listen") || given("unix_socket") || given("sockets");
    let half = given("host") || given("port");
    let mut layer = layer;
    if whole {
        raws.retain(|r| !BIND_KEYS.contains(&r.key.as_str()));
    } else if half {
        raws.retain(|r| r.key != "unix_socket" && r.key != "sockets");
        if let Some(i) = raws.iter().position(|r| r.key == "listen") {
            // Only one half given: keep the other half of each entry below.
            let host = layer
                .iter()
                .position(|r| r.key == "host")
                .map(|i| layer.remove(i));
            let port = layer
                .iter()
                .position(|r| r.key == "port")
                .map(|i| layer.remove(i));
            // The port as waitress's int() reads it (`8_0` is 80): the entries get the number.
            let port_number = port.as_ref().map(check_port).transpose()?;
            let below = &raws[i];
            let entries: Vec<String> = values::as_list(&below.value)
                .iter()
                .map(|e| {
                    let split = listen::split(e, "8080");
                    let h = match &host {
                        Some(h) => h.value.trim().to_string(),
                        None => split.host.unwrap_or_else(|| "*".into()),
                    };
                    let p = port_number.map_or(split.port, |n| n.to_string());
                    if h.contains(':') && !h.starts_with('[') {
                        format!("[{h}]:{p}")
                    } else {
                        format!("{h}:{p}")
                    }
                })
                .collect();
            let mut entries_dedup: Vec<String> = Vec::new();
            for e in entries {
                if !entries_dedup.contains(&e) {
                    entries_dedup.push(e);
                }
            }
            let from = host
                .as_ref()
                .or(port.as_ref())
                .expect("one of them is given");
            let merged = Raw {
                key: "listen".into(),
                value: entries_dedup.join(" "),
                origin: from.origin.clone(),
                base: from.base.clone(),
            };
            log::debug!(
                "{} keeps the other half of listen: {}",
                from.origin,
                merged.value
            );
            raws[i] = merged;
        }
    }
    for raw in layer {
        match raws.iter_mut().find(|r| r.key == raw.key) {
            Some(slot) => *slot = raw,
            None => raws.push(raw),
        }
    }
    Ok(())
}

/// A `port` merged into `listen` entries is checked on its own first, so a bad one is
/// reported as itself; its number.
fn check_port(r: &Raw) -> Result<u16, ConfigError> {
    match values::py_int(&r.value, 10).map(u16::try_from) {
        Ok(Ok(n)) => Ok(n),
        _ => Err(raw::err(r, "must be a port number between 0 and 65535")),
    }
}

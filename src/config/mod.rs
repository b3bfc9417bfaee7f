//! Configuration: the PasteDeploy INI loader, the one settings table, and the typed `Settings`.
//!
//! CONTRACT (owned by the config work; other layers read these names):
//! `Settings` fields below, `AppSpec`, `ConfigError`, and `load(&CliArgs) -> Result<Settings>`.
//!
//! Modules: `args` (the typed command line), `ini` (configparser), `paste` (PasteDeploy's server section), `defs` (the one
//! settings table), `values` (converters), `listen` (parsing + getaddrinfo), `settings`
//! (validation), `print` (`--print-config`), `render` (help, man page, example INI, README table).
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;

pub mod args;
pub mod defs;
pub mod edge;
pub mod error;
pub mod ini;
pub mod interpolate;
pub mod listen;
pub mod manpages;
pub mod paste;
pub mod print;
pub mod render;
pub mod settings;
#[cfg(test)]
mod tests;
pub mod values;

pub use args::{Action, CliArgs};
pub use error::{ConfigError, Origin, ValueError};
pub use print::to_json;

use settings::Raw;

/// Keys that choose where to listen. A command-line flag for any of them replaces all of them
/// from the INI file (so `--port 8000` works on a file that has `listen = *:6543`).
const BIND_KEYS: [&str; 5] = ["host", "port", "listen", "unix_socket", "sockets"];

/// Command line (+ INI file) → validated `Settings`. INI values come from the server section
/// exactly as PasteDeploy would pass them to waitress; flags win over the file.
pub fn load(args: &CliArgs) -> Result<Settings, ConfigError> {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    let (mut raws, app) = match (&args.config, &args.app) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::Usage(
                "--app and an INI file exclude each other (the INI file names the app)".into(),
            ))
        }
        (Some(cfg), None) => {
            let abs = ini::abspath(cfg);
            let display = cfg.to_string_lossy();
            let raws = paste::load_server(&abs, &display, &args.server_name, &args.vars)?;
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
                "no INI file and no --app MODULE:CALLABLE given (see waitressd --help)".into(),
            ))
        }
    };
    if args
        .overrides
        .iter()
        .any(|(k, _)| BIND_KEYS.contains(&k.as_str()))
    {
        raws.retain(|r| !BIND_KEYS.contains(&r.key.as_str()));
    }
    for (key, value) in &args.overrides {
        let raw = Raw {
            key: key.clone(),
            value: value.clone(),
            origin: Origin::Flag(defs::flag(key)),
            base: cwd.clone(),
        };
        match raws.iter_mut().find(|r| r.key == *key) {
            Some(slot) => *slot = raw,
            None => raws.push(raw),
        }
    }
    settings::build(&raws, app, args.daemon)
}

/// Where the application comes from (defined by the layer that loads it).
pub use crate::wsgi::AppSpec;

/// Every setting, typed and validated. Field names are waitress's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    // --- waitress 3.0.2 ---
    /// Resolved listen addresses, in order (host/port folded in, as waitress does); never empty
    /// unless `unix_socket` is set, in which case it is empty (waitress then binds only the
    /// unix socket). Port 0 entries are kept (and may repeat).
    pub listen: Vec<SocketAddr>,
    pub ipv4: bool,
    pub ipv6: bool,
    pub threads: usize,
    pub trusted_proxy: Option<String>,
    /// Trailing hops trusted (waitress slices `[-count:]`, so 0 trusts the whole list).
    pub trusted_proxy_count: usize,
    pub trusted_proxy_headers: BTreeSet<String>,
    pub log_untrusted_proxy_headers: bool,
    pub clear_untrusted_proxy_headers: bool,
    pub url_scheme: String,
    pub url_prefix: String,
    pub backlog: i32,
    pub recv_bytes: usize,
    pub send_bytes: usize,
    pub outbuf_overflow: u64,
    pub outbuf_high_watermark: u64,
    pub inbuf_overflow: u64,
    pub connection_limit: usize,
    /// Seconds.
    pub cleanup_interval: u64,
    /// Seconds.
    pub channel_timeout: u64,
    pub log_socket_errors: bool,
    pub max_request_header_size: u64,
    pub max_request_body_size: u64,
    pub expose_tracebacks: bool,
    pub ident: Option<String>,
    pub asyncore_loop_timeout: u64,
    pub asyncore_use_poll: bool,
    /// As written (relative to the cwd, like waitress); `None` when unset or empty.
    pub unix_socket: Option<PathBuf>,
    pub unix_socket_perms: u32,
    pub channel_request_lookahead: usize,
    pub server_name: String,
    // --- the application ---
    pub app: AppSpec,
    // --- waitressd's own keys ---
    /// Worker processes (`auto` = one per core). Default 1.
    pub workers: usize,
    /// Load the app in the master before forking (copy-on-write). Default false.
    pub preload_app: bool,
    /// Drop to this user after binding (name or uid).
    pub user: Option<String>,
    /// Drop to this group after binding (name or gid); default: the user's primary group.
    pub group: Option<String>,
    /// Process umask (octal), applied before binding unix sockets.
    pub umask: Option<u32>,
    /// Written atomically at start, removed at exit.
    pub pidfile: Option<PathBuf>,
    /// Seconds a graceful stop or reload waits for in-flight requests. Default 30.
    pub graceful_timeout: u64,
    /// Virtualenv whose packages the embedded Python uses (else `$VIRTUAL_ENV`, else the build's
    /// interpreter).
    pub virtualenv: Option<PathBuf>,
    /// Access log file (`-` = stdout); unset = no access log. Reopened on SIGUSR1.
    pub access_log: Option<PathBuf>,
    /// Seconds an app call may run before it is interrupted; 0 = off.
    pub request_timeout: u64,
    /// Requests after which a worker is retired gracefully; 0 = off.
    pub max_requests: u64,
    /// Up to this many extra requests per worker (random), so workers do not retire together.
    pub max_requests_jitter: u64,
    /// Resident bytes above which a worker is retired gracefully; 0 = off.
    pub max_worker_memory: u64,
    /// PROXY protocol, status listener, TLS (config/edge.rs).
    pub edge: edge::Edge,
    /// The access log's line format: gunicorn atoms, or `json` (validated).
    pub access_log_format: String,
    /// waitressd's log and the standard error of master and workers; `None` or `-` = stderr.
    pub error_log: Option<PathBuf>,
    /// `debug`, `info`, `warning`, `error` or `critical` (validated).
    pub log_level: String,
    /// `--daemon`: detach from the terminal (command line only, not an INI key).
    pub daemon: bool,
}

impl Settings {
    /// The request limits the sans-IO parser needs.
    pub fn http_limits(&self) -> crate::http::Limits {
        crate::http::Limits {
            max_request_header_size: self.max_request_header_size,
            max_request_body_size: self.max_request_body_size,
        }
    }
}

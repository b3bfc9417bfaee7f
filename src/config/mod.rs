//! Configuration: the PasteDeploy INI loader, the one settings table, and the typed `Settings`.
//!
//! CONTRACT (owned by the config work; other layers read these names):
//! `Settings` fields below, `AppSpec`, `ConfigError`, and `load(&CliArgs) -> Result<Settings>`.
//!
//! Modules: `args` (the typed command line), `ini` (configparser), `layers` (INI < environment
//! < flags), `paste` (PasteDeploy's server section), `defs` (the one
//! settings table), `values` (converters), `raw` (the given strings, converted by the table),
//! `listen` (parsing + getaddrinfo), `settings` (validation), `edge` (PROXY, status listener and
//! TLS keys), `print` (`--print-config`), `render` (help, man page, example INI, README table).
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;

pub mod args;
pub mod defs;
pub mod edge;
pub mod error;
pub mod given;
pub mod ini;
pub mod interpolate;
pub mod layers;
pub mod listen;
pub mod manpages;
pub mod paste;
pub mod print;
pub mod raw;
pub mod render;
pub mod settings;
#[cfg(test)]
mod tests;
pub mod values;

pub use args::{Action, CliArgs};
pub use error::{ConfigError, Origin, ValueError};
pub use given::Given;
pub use print::{to_json, to_json_verbose};

pub use layers::{collect, env_settings, warn_unknown_env, ENV_PREFIX};
pub use raw::Raw;

/// Command line (+ INI file) → validated `Settings`. INI values come from the server section
/// exactly as PasteDeploy would pass them to waitress; `WAITRESSD_<KEY>` environment variables
/// win over the file, flags over both.
pub fn load(args: &CliArgs) -> Result<Settings, ConfigError> {
    warn_unknown_env();
    let (raws, app) = collect(args, &env_settings())?;
    let mut s = settings::build(&raws, app, args.daemon)?;
    if s.proc_name.is_none() {
        s.proc_name = Some(default_proc_name(args));
    }
    s.log_config = match args.log_config.as_deref() {
        Some(given) => Some(readable_log_config(given)?),
        None => None,
    };
    if args.reload {
        s.reload = true;
        s.reload_files = args
            .config
            .iter()
            .chain(&args.reload_extra)
            .map(|p| ini::abspath(p))
            .collect();
        if s.preload_app {
            // The master's preloaded code would come back unchanged on every reload.
            log::warn!("--reload: preload_app is off (a reload must import the app anew)");
            s.preload_app = false;
        }
    }
    Ok(s)
}

/// `--log-config FILE`, absolute, once it can be read: a missing file is a config error before
/// anything binds, not an app that "could not be imported" after the workers fork.
fn readable_log_config(given: &std::path::Path) -> Result<PathBuf, ConfigError> {
    use std::io::Read as _;
    let abs = ini::abspath(given);
    let readable = std::fs::File::open(&abs).and_then(|mut f| f.read(&mut [0u8; 1]));
    match readable {
        Ok(_) => Ok(abs),
        Err(e) => Err(ValueError {
            origin: Origin::Flag("--log-config".into()),
            key: "log_config".into(),
            value: given.to_string_lossy().into_owned(),
            reason: format!(
                "cannot read {}: {e} (give the path of a readable Python logging config file, \
                 logging.config.fileConfig's format, or leave --log-config out)",
                if abs == given {
                    "it".to_string()
                } else {
                    abs.display().to_string()
                },
            ),
        }
        .into()),
    }
}

/// `proc_name`'s default: the INI file's name without `.ini`, or the `--app` target.
fn default_proc_name(args: &CliArgs) -> String {
    match (&args.config, &args.app) {
        (Some(cfg), _) => cfg
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
        (None, Some(app)) => app.clone(),
        (None, None) => String::new(),
    }
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
    /// Parsed once, here; `as_str()` is the setting as written (what --print-config shows).
    pub trusted_proxy: Option<crate::http::Peers>,
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
    /// The access log's line format: gunicorn atoms, or `json`; compiled once, while
    /// validating (so a bad one is exit 2 at start), and keeping its text for `--print-config`.
    pub access_log_format: crate::http::log_format::Format,
    /// waitressd's log and the standard error of master and workers; `None` or `-` = stderr.
    pub error_log: Option<PathBuf>,
    /// `debug`, `info`, `warning`, `error` or `critical` (validated).
    pub log_level: String,
    /// `--daemon`: detach from the terminal (command line only, not an INI key).
    pub daemon: bool,
    /// The instance's name in process titles, log lines and systemd `STATUS=` (default: the
    /// INI file's name or the app spec).
    pub proc_name: Option<String>,
    /// `--log-config FILE` (absolute): Python logging set up from it before the app loads.
    pub log_config: Option<PathBuf>,
    /// `--reload`: a worker watches the app's Python files and `reload_files`; a change
    /// reloads the workers as SIGHUP does.
    pub reload: bool,
    /// The INI file and every `--reload-extra-file` (absolute), watched with `--reload`.
    pub reload_files: Vec<PathBuf>,
    /// Where each given key came from, for errors found after validation (`Given::blame`).
    pub given: Given,
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

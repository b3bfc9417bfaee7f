//! Raw `key = value` strings → one validated `Settings`, step by step as waitress's
//! `Adjustments.__init__` does it (presence-based exclusions, conversion in order, host/port
//! folded into `listen`, family choice, resolution, trusted-proxy rules), plus waitressd's
//! range checks.
use std::collections::BTreeSet;
use std::path::PathBuf;

use super::listen::{self, Family};
use super::raw::{err, presence_err, Raw, Values};
use super::{AppSpec, ConfigError, Settings};
use crate::http::log_format::Format;
use crate::http::Peers;

/// The six proxy headers waitress knows (`KNOWN_PROXY_HEADERS`).
pub const PROXY_HEADERS: [&str; 6] = [
    "forwarded",
    "x-forwarded-by",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-port",
    "x-forwarded-proto",
];

/// The longest unix socket path bind(2) takes: `sun_path` (108 bytes on Linux) less its NUL.
const UNIX_PATH_MAX: usize = 107;

/// Validates `raws` (unique keys, in order) into `Settings`.
pub fn build(raws: &[Raw], app: AppSpec, daemon: bool) -> Result<Settings, ConfigError> {
    let has = |k: &str| raws.iter().find(|r| r.key == k);
    // Adjustments.__init__ checks presence of keys, not their values, in this order.
    let exclusions: [(&str, &[&str], &str); 6] = [
        (
            "listen",
            &["host", "port"],
            "host or port may not be set if listen is set",
        ),
        (
            "listen",
            &["sockets"],
            "socket may not be set if listen is set",
        ),
        (
            "sockets",
            &["host", "port"],
            "host or port may not be set if sockets is set",
        ),
        (
            "sockets",
            &["unix_socket"],
            "unix_socket may not be set if sockets is set",
        ),
        (
            "unix_socket",
            &["host", "port"],
            "unix_socket may not be set if host or port is set",
        ),
        (
            "unix_socket",
            &["listen"],
            "unix_socket may not be set if listen is set",
        ),
    ];
    for (a, others, msg) in exclusions {
        if let Some(ra) = has(a) {
            if let Some(rb) = others.iter().find_map(|b| has(b)) {
                return Err(presence_err(
                    ra,
                    format!("{msg} ({} is set too)", rb.origin.short(&rb.key)),
                ));
            }
        }
    }
    let vals = Values::from_raws(raws)?;
    if vals.raw("send_bytes").is_some() {
        log::warn!("send_bytes will be removed in a future release (waitress deprecation)");
    }
    let mut listen = resolve_listen(&vals)?;
    if vals.opt("unix_socket").is_some_and(|s| !s.is_empty()) {
        listen.clear();
    }
    let (trusted_proxy, trusted_proxy_headers) = trusted_proxy(&vals)?;
    let listen_for_edge = listen.clone();
    let (access_log_format, log_level) = logging_keys(&vals)?;
    let unix_socket = vals
        .opt("unix_socket")
        .filter(|s| !s.is_empty())
        .map(PathBuf::from);
    if let (Some(p), Some(r)) = (&unix_socket, vals.raw("unix_socket")) {
        // bind(2) takes the path as given (a relative one from the working directory) in
        // sockaddr_un's sun_path, NUL included: caught here, with the line, not at bind.
        let n = p.as_os_str().len();
        if n > UNIX_PATH_MAX {
            return Err(err(
                r,
                format!("the path is {n} bytes; a unix socket path holds at most {UNIX_PATH_MAX}: use a shorter path"),
            ));
        }
    }
    let ident = vals.opt("ident");
    if let (Some(c), Some(r)) = (
        ident
            .iter()
            .flat_map(|i| i.chars())
            .find(|&c| u32::from(c) > 0xff),
        vals.raw("ident"),
    ) {
        return Err(err(
            r,
            format!(
                "{c:?} (U+{:04X}) is not latin-1, and the Server header is sent as latin-1 \
                 (as waitress sends it): use latin-1 characters only",
                u32::from(c)
            ),
        ));
    }
    // A line break (possible from a flag or variable) would end the header: never sent.
    if let (Some(c), Some(r)) = (
        ident
            .iter()
            .flat_map(|i| i.chars())
            .find(|&c| c.is_ascii_control() && c != '\t'),
        vals.raw("ident"),
    ) {
        return Err(err(
            r,
            format!(
                "control character {c:?} cannot be in the Server header: use printable \
                 characters only"
            ),
        ));
    }
    Ok(Settings {
        listen,
        ipv4: vals.boolean("ipv4"),
        ipv6: vals.boolean("ipv6"),
        threads: vals.int("threads") as usize,
        trusted_proxy,
        trusted_proxy_count: vals.int("trusted_proxy_count") as usize,
        trusted_proxy_headers,
        log_untrusted_proxy_headers: vals.boolean("log_untrusted_proxy_headers"),
        clear_untrusted_proxy_headers: vals.boolean("clear_untrusted_proxy_headers"),
        url_scheme: vals.string("url_scheme"),
        url_prefix: vals.string("url_prefix"),
        backlog: vals.int("backlog") as i32,
        recv_bytes: vals.int("recv_bytes") as usize,
        send_bytes: vals.int("send_bytes") as usize,
        outbuf_overflow: vals.int("outbuf_overflow") as u64,
        outbuf_high_watermark: vals.int("outbuf_high_watermark") as u64,
        inbuf_overflow: vals.int("inbuf_overflow") as u64,
        connection_limit: vals.int("connection_limit") as usize,
        cleanup_interval: vals.int("cleanup_interval") as u64,
        channel_timeout: vals.int("channel_timeout") as u64,
        log_socket_errors: vals.boolean("log_socket_errors"),
        max_request_header_size: vals.int("max_request_header_size") as u64,
        max_request_body_size: vals.int("max_request_body_size") as u64,
        expose_tracebacks: vals.boolean("expose_tracebacks"),
        ident,
        asyncore_loop_timeout: vals.int("asyncore_loop_timeout") as u64,
        asyncore_use_poll: vals.boolean("asyncore_use_poll"),
        unix_socket,
        unix_socket_perms: vals.int("unix_socket_perms") as u32,
        channel_request_lookahead: vals.int("channel_request_lookahead") as usize,
        server_name: vals.string("server_name"),
        app,
        workers: vals.int("workers") as usize,
        preload_app: vals.boolean("preload_app"),
        user: vals.opt("user"),
        group: vals.opt("group"),
        umask: vals.int_opt("umask").map(|n| n as u32),
        pidfile: vals.path("pidfile"),
        graceful_timeout: vals.int("graceful_timeout") as u64,
        virtualenv: vals.path("virtualenv"),
        access_log: vals.path("access_log"),
        request_timeout: vals.int("request_timeout") as u64,
        max_requests: vals.int("max_requests") as u64,
        max_requests_jitter: vals.int("max_requests_jitter") as u64,
        max_worker_memory: vals.int("max_worker_memory") as u64,
        edge: super::edge::build(&vals, &listen_for_edge)?,
        access_log_format,
        error_log: vals.path("error_log"),
        log_level,
        daemon,
        proc_name: vals.opt("proc_name"),
        log_config: None,
        reload: false,
        reload_files: Vec::new(),
        given: super::Given::from_raws(raws),
    })
}

/// host/port folding, family choice and resolution (waitress steps 9-11). waitress resolves
/// `listen` even with a `unix_socket` (so a default listen that cannot resolve is an error),
/// but then binds only the unix socket: the effective `listen` is empty.
fn resolve_listen(vals: &Values) -> Result<Vec<std::net::SocketAddr>, ConfigError> {
    let port = vals.int("port").to_string();
    let entries: Vec<String> = if vals.raw("host").is_some() || vals.raw("port").is_some() {
        vec![format!("{}:{}", vals.string("host"), port)]
    } else {
        vals.list("listen")
    };
    if entries.is_empty() {
        // waitress accepts this and then fails to start (AttributeError on no server).
        let r = vals.raw("listen").expect("the default listen is not empty");
        return Err(err(r, "nothing to listen on"));
    }
    let split: Vec<listen::Entry> = entries.iter().map(|e| listen::split(e, &port)).collect();
    let family = Family::from_flags(vals.boolean("ipv4"), vals.boolean("ipv6"));
    listen::resolve(&split, family).map_err(|(i, msg)| {
        let fam = match family {
            Family::Any => "",
            Family::V4 => " with ipv6 off",
            Family::V6 => " with ipv4 off",
        };
        let mut reason = format!(
            "Invalid host/port specified: {}{fam}: {msg}",
            super::values::py_repr(&entries[i])
        );
        let off = match family {
            Family::Any => None,
            Family::V4 => vals.raw("ipv6"),
            Family::V6 => vals.raw("ipv4"),
        };
        if let Some(r) = off {
            // `ipv4 = maybe` reads as false: the line that turned the family off is the fix.
            let by = r.origin.setting(&r.key, &r.value);
            reason.push_str(&format!(" (turned off by {by})"));
        }
        if let Some(path) = entries[i].strip_prefix("unix:") {
            reason.push_str(&format!(
                " (listen takes HOST:PORT entries; for a unix socket set unix_socket = {path} \
                 instead)"
            ));
        }
        match ["listen", "host", "port", "ipv4", "ipv6"]
            .iter()
            .find_map(|k| vals.raw(k))
        {
            Some(r) => match merged_half(r) {
                // A --host/--port (or its variable) merged into the file's listen entries is
                // named with its own value, not the merged listen.
                Some(k) => {
                    let e = listen::split(&entries[i], &port);
                    let value = if k == "port" {
                        e.port
                    } else {
                        e.host.unwrap_or_default()
                    };
                    let r = Raw {
                        key: k.into(),
                        value,
                        ..r.clone()
                    };
                    err(
                        &r,
                        format!("{reason} (the file's listen entry with this {k})"),
                    )
                }
                None => err(r, reason),
            },
            None => ConfigError::Usage(format!("default listen: {reason}")),
        }
    })
}

/// `host` or `port` when `r` is a `listen` that a flag or variable for that half made by
/// merging into the file's entries (`layers::overlay`).
fn merged_half(r: &Raw) -> Option<&'static str> {
    let named = |k: &str| match &r.origin {
        super::Origin::Flag(f) => *f == super::defs::flag(k),
        super::Origin::Env(v) => *v == format!("{}{}", super::ENV_PREFIX, k.to_uppercase()),
        super::Origin::Ini { .. } => false,
    };
    (r.key == "listen")
        .then(|| ["host", "port"].into_iter().find(|k| named(k)))
        .flatten()
}

/// waitressd's `access_log_format` (compiled) and `log_level`, checked here so a typo is exit 2
/// at start.
fn logging_keys(vals: &Values) -> Result<(Format, String), ConfigError> {
    let format = Format::parse(&vals.string("access_log_format")).map_err(|e| {
        match vals.raw("access_log_format") {
            Some(r) => err(r, e.to_string()),
            // Only the default is not set anywhere, and it parses (a unit test says so).
            None => ConfigError::Usage(format!("default access_log_format: {e}")),
        }
    })?;
    let level = vals.string("log_level").trim().to_lowercase();
    if let (None, Some(r)) = (crate::logging::level(&level), vals.raw("log_level")) {
        let names: Vec<&str> = crate::logging::LEVELS.iter().map(|l| l.0).collect();
        return Err(err(
            r,
            format!("not a log level: use one of {}", names.join(", ")),
        ));
    }
    Ok((format, level))
}

/// For a `trusted_proxy_headers` written with commas: the list as it must be written.
fn comma_hint(value: &str) -> String {
    if !value.contains(',') {
        return String::new();
    }
    let items: Vec<&str> = value
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .collect();
    format!(
        " (separate the headers with spaces, not commas: trusted_proxy_headers = {})",
        items.join(" ")
    )
}

/// waitress steps 12-15: the trusted-proxy rules.
fn trusted_proxy(vals: &Values) -> Result<(Option<Peers>, BTreeSet<String>), ConfigError> {
    let proxy = match (vals.opt("trusted_proxy"), vals.raw("trusted_proxy")) {
        (Some(p), Some(r)) => Some(Peers::parse(&p).map_err(|e| err(r, e.to_string()))?),
        // trusted_proxy has no default: a value always comes with its raw.
        _ => None,
    };
    if let (Some(r), None) = (vals.raw("trusted_proxy_count"), &proxy) {
        return Err(err(
            r,
            "trusted_proxy_count has no meaning without setting trusted_proxy",
        ));
    }
    let mut headers: BTreeSet<String> = vals
        .list("trusted_proxy_headers")
        .iter()
        .map(|h| h.to_lowercase())
        .collect();
    if let Some(r) = vals.raw("trusted_proxy_headers") {
        if !headers.is_empty() && proxy.is_none() {
            return Err(err(
                r,
                "trusted_proxy_headers has no meaning without setting trusted_proxy",
            ));
        }
        let unknown: Vec<&str> = headers
            .iter()
            .map(String::as_str)
            .filter(|h| !PROXY_HEADERS.contains(h))
            .collect();
        if !unknown.is_empty() {
            return Err(err(
                r,
                format!(
                    "Received unknown trusted_proxy_headers value ({}) expected one of {}{}",
                    unknown.join(", "),
                    PROXY_HEADERS.join(", "),
                    comma_hint(&r.value)
                ),
            ));
        }
        if headers.contains("forwarded") && headers.len() > 1 {
            return Err(err(
                r,
                "The Forwarded proxy header and the X-Forwarded-{By,Host,Proto,Port,For} headers are mutually exclusive. Can't trust both!",
            ));
        }
    }
    if headers.is_empty() && proxy.is_some() {
        log::warn!(
            "trusted_proxy is set but no trusted_proxy_headers: trusting X-Forwarded-Proto only, \
             as waitress does (set trusted_proxy_headers to silence this)"
        );
        headers.insert("x-forwarded-proto".into());
    }
    Ok((proxy, headers))
}

//! The one settings table: every key waitressd accepts, defined once (name, converter, default,
//! accepted range, one-line doc). The command-line flags, `--help`, the man page, the example
//! INI, the README table and `--print-config` are all derived from it.

/// How a raw string becomes a value (waitress's converter names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conv {
    /// `str`: taken as is.
    Str,
    /// Python `int()`.
    Int,
    /// waitress `asbool`.
    Bool,
    /// waitress `aslist`.
    List,
    /// waitress `asset`.
    Set,
    /// waitress `asoctal` (`int(s, 8)`).
    Octal,
    /// waitress `slash_fixed_str`.
    SlashStr,
    /// waitress `str_iftruthy` (empty → unset).
    StrIfTruthy,
    /// waitress `as_socket_list`: from a string it is always `[]`.
    SocketList,
    /// waitressd: `int()` or `auto`.
    IntOrAuto,
    /// waitressd: a path; relative paths are relative to the INI file's directory (`here`),
    /// or to the current directory for a command-line flag. Empty → unset.
    Path,
    /// waitressd: bytes as `int()`, or with a `K`, `M` or `G` suffix (powers of 1024).
    Size,
}

impl Conv {
    /// The name used in docs.
    pub fn name(self) -> &'static str {
        match self {
            Conv::Str => "str",
            Conv::Int => "int",
            Conv::Bool => "bool",
            Conv::List => "list",
            Conv::Set => "set",
            Conv::Octal => "octal",
            Conv::SlashStr => "path prefix",
            Conv::StrIfTruthy => "str or empty",
            Conv::SocketList => "(ignored)",
            Conv::IntOrAuto => "int or auto",
            Conv::Path => "path",
            Conv::Size => "size",
        }
    }
}

/// Whose key it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    Waitress,
    Waitressd,
}

/// One setting.
#[derive(Debug, Clone, Copy)]
pub struct Def {
    pub name: &'static str,
    pub conv: Conv,
    /// The default, as the INI text that means it (converted like a user value); `None` =
    /// unset.
    pub default: Option<&'static str>,
    /// Accepted integer range (for `Int`, `Octal`, `IntOrAuto`). Where waitress accepts values
    /// that cannot serve (0 threads, negative sizes), waitressd's range is narrower; the README
    /// lists those differences.
    pub range: (i128, i128),
    pub owner: Owner,
    /// Printed by `--print-config` (`host` and `port` are folded into `listen`).
    pub printed: bool,
    pub doc: &'static str,
}

const U64: i128 = u64::MAX as i128;
const NONE: (i128, i128) = (0, 0);

const fn w(
    name: &'static str,
    conv: Conv,
    default: Option<&'static str>,
    range: (i128, i128),
    doc: &'static str,
) -> Def {
    Def {
        name,
        conv,
        default,
        range,
        owner: Owner::Waitress,
        printed: true,
        doc,
    }
}

const fn d(
    name: &'static str,
    conv: Conv,
    default: Option<&'static str>,
    range: (i128, i128),
    doc: &'static str,
) -> Def {
    Def {
        owner: Owner::Waitressd,
        ..w(name, conv, default, range, doc)
    }
}

/// Every setting, in waitress's `_params` order, then waitressd's own keys.
pub static DEFS: &[Def] = &[
    Def { printed: false, ..w("host", Conv::Str, Some("0.0.0.0"), NONE, "Bind host; combined with port into one listen entry (not with listen, unix_socket or sockets).") },
    Def { printed: false, ..w("port", Conv::Int, Some("8080"), (0, 65535), "Bind port; combined with host into one listen entry (not with listen, unix_socket or sockets).") },
    w("ipv4", Conv::Bool, Some("true"), NONE, "Resolve listen hosts to IPv4 addresses (both false means both true)."),
    w("ipv6", Conv::Bool, Some("true"), NONE, "Resolve listen hosts to IPv6 addresses."),
    w("listen", Conv::List, Some("0.0.0.0:8080"), NONE, "Space-separated HOST:PORT entries ([v6]:port, *:port, service names); resolved at start-up."),
    w("threads", Conv::Int, Some("4"), (1, 4096), "Application threads per worker process."),
    w("trusted_proxy", Conv::StrIfTruthy, None, NONE, "Peer address whose proxy headers are trusted (* = any peer); waitressd also takes a list of addresses and CIDRs (127.0.0.1 10.0.0.0/8)."),
    w("trusted_proxy_count", Conv::Int, Some("1"), (0, U64), "How many trailing hops of X-Forwarded-*/Forwarded lists to trust (needs trusted_proxy)."),
    w("trusted_proxy_headers", Conv::Set, Some(""), NONE, "Trusted proxy headers: x-forwarded-for/-host/-proto/-port/-by or forwarded (default with trusted_proxy: x-forwarded-proto)."),
    w("log_untrusted_proxy_headers", Conv::Bool, Some("false"), NONE, "Log a warning naming untrusted proxy headers that were removed."),
    w("clear_untrusted_proxy_headers", Conv::Bool, Some("true"), NONE, "Remove untrusted proxy headers from the environ."),
    w("url_scheme", Conv::Str, Some("http"), NONE, "Default wsgi.url_scheme."),
    w("url_prefix", Conv::SlashStr, Some(""), NONE, "SCRIPT_NAME prefix the app is mounted at."),
    w("backlog", Conv::Int, Some("1024"), (0, i32::MAX as i128), "listen() backlog of each listening socket."),
    w("recv_bytes", Conv::Int, Some("8192"), (1, U64), "Bytes read per recv() call."),
    w("send_bytes", Conv::Int, Some("1"), (0, U64), "Deprecated: buffered output size that triggers a send."),
    w("outbuf_overflow", Conv::Int, Some("1048576"), (0, U64), "Response buffer size above which it spills to a temporary file."),
    w("outbuf_high_watermark", Conv::Int, Some("16777216"), (0, U64), "Buffered response bytes above which the app thread waits for the client."),
    w("inbuf_overflow", Conv::Int, Some("524288"), (0, U64), "Request body buffer size above which it spills to a temporary file."),
    w("connection_limit", Conv::Int, Some("100"), (1, U64), "Open connections per worker above which new ones wait (the soft open-file limit is raised to fit it, up to the hard limit)."),
    w("cleanup_interval", Conv::Int, Some("30"), (0, U64), "Seconds between sweeps for idle connections."),
    w("channel_timeout", Conv::Int, Some("120"), (0, U64), "Seconds a connection may be idle before it is closed; waitressd also cuts a response its client reads none of for this long while an app thread waits on it."),
    w("log_socket_errors", Conv::Bool, Some("true"), NONE, "Log socket errors and accept() failures."),
    w("max_request_header_size", Conv::Int, Some("262144"), (1, U64), "Largest request line plus headers, in bytes (431 above)."),
    w("max_request_body_size", Conv::Int, Some("1073741824"), (0, U64), "Largest request body, in bytes (413 above)."),
    w("expose_tracebacks", Conv::Bool, Some("false"), NONE, "Put the Python traceback into 500 responses."),
    w("ident", Conv::StrIfTruthy, Some("waitress"), NONE, "Server header (sent as latin-1) and SERVER_SOFTWARE (empty: no Server header)."),
    w("asyncore_loop_timeout", Conv::Int, Some("1"), (0, U64), "Accepted and ignored: waitressd's event loop sleeps until its next timer (a 1 s tick)."),
    w("asyncore_use_poll", Conv::Bool, Some("false"), NONE, "waitress: poll() instead of select(); waitressd always uses epoll."),
    w("unix_socket", Conv::Str, None, NONE, "Path of a unix socket to listen on instead of TCP (not with host, port, listen or sockets)."),
    w("unix_socket_perms", Conv::Octal, Some("600"), (0, 0o7777), "Octal permissions of the unix socket file."),
    w("sockets", Conv::SocketList, Some(""), NONE, "Python API only (pre-bound sockets); from an INI file it is always empty."),
    w("channel_request_lookahead", Conv::Int, Some("0"), (0, U64), "Requests a connection may read ahead while one is running."),
    w("server_name", Conv::Str, Some("waitress.invalid"), NONE, "SERVER_NAME in every environ."),
    d("workers", Conv::IntOrAuto, Some("1"), (1, 4096), "Worker processes (auto = one per CPU)."),
    d("preload_app", Conv::Bool, Some("false"), NONE, "Load the app in the master before forking the workers."),
    d("user", Conv::StrIfTruthy, None, NONE, "Drop to this user (name or uid) after binding."),
    d("group", Conv::StrIfTruthy, None, NONE, "Drop to this group (name or gid) after binding; default the user's group."),
    d("umask", Conv::Octal, None, (0, 0o777), "Octal process umask, set before binding (empty: unset)."),
    d("pidfile", Conv::Path, None, NONE, "Write the master's PID here; removed at exit."),
    d("graceful_timeout", Conv::Int, Some("30"), (0, U64), "Seconds a graceful stop or reload waits for in-flight requests."),
    d("virtualenv", Conv::Path, None, NONE, "Virtualenv the embedded Python uses (default $VIRTUAL_ENV)."),
    d("access_log", Conv::Path, None, NONE, "Access log file (- = stdout); reopened on SIGUSR1."),
    d("proc_name", Conv::StrIfTruthy, None, NONE, "Name of this instance in process titles, log lines and systemd STATUS (default: the INI file's name or the app)."),
    d("request_timeout", Conv::Int, Some("0"), (0, U64), "Seconds an app call may run before it is interrupted (504 to the client, stack logged); 0 = off."),
    d("max_requests", Conv::Int, Some("0"), (0, U64), "Requests after which a worker is replaced gracefully (gunicorn's max_requests); 0 = off."),
    d("max_requests_jitter", Conv::Int, Some("0"), (0, U64), "Random extra requests (0 to this) added to max_requests per worker, so workers do not restart together."),
    d("max_worker_memory", Conv::Size, Some("0"), (0, U64), "Resident memory (bytes; K, M, G suffixes) above which a worker is replaced gracefully; 0 = off."),
    d("proxy_protocol", Conv::Bool, Some("false"), NONE, "Every connection starts with a PROXY protocol v1 or v2 header (HAProxy send-proxy); REMOTE_ADDR comes from it."),
    d("proxy_allow_ips", Conv::Str, Some("127.0.0.1 ::1"), NONE, "Peers allowed to send the PROXY header: addresses or CIDR networks, comma or space separated (* = any; not empty while proxy_protocol is on); others are closed, the first refusal a minute logged at WARNING."),
    d("status_listen", Conv::StrIfTruthy, None, NONE, "HOST:PORT of a separate listener serving /ready, /live and /metrics (Prometheus); never on the app's listeners."),
    d("certfile", Conv::Path, None, NONE, "PEM certificate chain: every TCP listener speaks TLS (rustls); re-read on SIGHUP."),
    d("keyfile", Conv::Path, None, NONE, "PEM private key (RSA, ECDSA P-256/P-384 or Ed25519) for certfile (default: certfile itself)."),
    d("ca_certs", Conv::Path, None, NONE, "PEM CA certificates that client certificates are verified against (for cert_reqs)."),
    d("cert_reqs", Conv::Str, Some("none"), NONE, "Client certificates: none, optional (verified when sent) or required."),
    d("ssl_min_version", Conv::Str, Some("1.2"), NONE, "Lowest TLS version accepted: 1.2 or 1.3."),
    d("access_log_format", Conv::Str, Some(crate::http::log_format::COMBINED), NONE, "Access log line in gunicorn's atoms (%(h)s, %(r)s, %({Header}i)s ...; write %% for % in an INI file), or json for one JSON object per line."),
    d("error_log", Conv::Path, None, NONE, "waitressd's own log and the standard error of master and workers (Python tracebacks too); unset or - = stderr; opened before the privilege drop, reopened on SIGUSR1."),
    d("log_level", Conv::Str, Some("info"), NONE, "Level of waitressd's own log: debug, info, warning, error or critical (RUST_LOG, when set, wins)."),
];

/// Keys that waitress's `serve()`/`create_server()` take before `Adjustments` sees them, so an
/// INI file may contain them without an "Unknown adjustment" error. waitressd ignores them.
pub const IGNORED: &[&str] = &[
    "_quiet",
    "_profile",
    "_server",
    "map",
    "_start",
    "_sock",
    "_dispatcher",
];

pub fn find(name: &str) -> Option<&'static Def> {
    DEFS.iter().find(|d| d.name == name)
}

/// The command-line flag of a setting (`max_request_body_size` → `--max-request-body-size`).
pub fn flag(name: &str) -> String {
    format!("--{}", name.replace('_', "-"))
}

/// The known key closest to an unknown one, if it is close enough to be a likely typo.
pub fn suggest(unknown: &str) -> Option<&'static str> {
    let norm = unknown.to_lowercase().replace('-', "_");
    let close = DEFS
        .iter()
        .map(|d| (distance(&norm, d.name), d.name))
        .filter(|&(dist, name)| dist <= 2.max(name.len() / 4))
        .min_by_key(|&(dist, _)| dist)
        .map(|(_, name)| name);
    // Otherwise a key that contains what was typed (`body_size` → `max_request_body_size`),
    // if only one does.
    close.or_else(|| {
        let mut hits = DEFS
            .iter()
            .filter(|d| norm.len() >= 6 && d.name.contains(norm.as_str()));
        match (hits.next(), hits.next()) {
            (Some(d), None) => Some(d.name),
            _ => None,
        }
    })
}

/// Levenshtein distance.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, &cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_documented() {
        for (i, d) in DEFS.iter().enumerate() {
            assert!(
                DEFS[..i].iter().all(|e| e.name != d.name),
                "{} twice",
                d.name
            );
            assert!(d.doc.ends_with('.') && !d.doc.contains('\n'), "{}", d.name);
        }
    }

    #[test]
    fn suggestions_for_typos() {
        let cases = [
            ("thread", Some("threads")),
            ("max-request-body-size", Some("max_request_body_size")),
            ("Threads", Some("threads")),
            ("listne", Some("listen")),
            ("trusted_proxies", Some("trusted_proxy")),
            ("body_size", Some("max_request_body_size")),
            ("timeout", None),
            ("file", None),
            ("zzzzzz", None),
        ];
        for (k, want) in cases {
            assert_eq!(suggest(k), want, "{k}");
        }
    }
}

//! `--print-config`: the effective `Settings` as one JSON object, a key per printed setting of
//! the table, in table order, named as in waitress (host/port folded into `listen`).
use std::path::PathBuf;

use serde_json::{json, Value};

use super::raw::Raw;
use super::{defs, Origin, Settings};

/// `--print-config`: one JSON object, a key per printed setting in table order.
pub fn to_json(s: &Settings) -> Value {
    let mut map = serde_json::Map::new();
    for def in defs::DEFS.iter().filter(|d| d.printed) {
        map.insert(
            def.name.to_string(),
            field(s, def.name).unwrap_or(Value::Null),
        );
    }
    Value::Object(map)
}

/// `--print-config --verbose`: each printed setting as `{"value": ..., "from": ...}`, where
/// `from` is `FILE:LINE`, `env NAME`, `flag --name` or `default`.
pub fn to_json_verbose(s: &Settings, raws: &[Raw]) -> Value {
    let from = |name: &str| -> String {
        let keys: &[&str] = match name {
            // host and port are folded into listen.
            "listen" => &["listen", "host", "port", "unix_socket"],
            _ => &[name],
        };
        // Every source that went into the value (`host` from the file, `port` from a flag).
        let found: Vec<String> = keys
            .iter()
            .filter_map(|k| raws.iter().rev().find(|r| r.key == *k))
            .map(|r| match &r.origin {
                Origin::Ini { file, line, .. } => format!("{file}:{line}"),
                Origin::Env(var) => format!("env {var}"),
                Origin::Flag(flag) => format!("flag {flag}"),
            })
            .collect();
        match found.is_empty() {
            false => found.join(" and "),
            true if name == "proc_name" => "default (the INI file's name or the app)".into(),
            true => "default".into(),
        }
    };
    let plain = to_json(s);
    let mut map = serde_json::Map::new();
    for (name, value) in plain.as_object().into_iter().flatten() {
        map.insert(name.clone(), json!({"value": value, "from": from(name)}));
    }
    Value::Object(map)
}

fn path_json(p: &Option<PathBuf>) -> Value {
    p.as_ref()
        .map_or(Value::Null, |p| json!(p.to_string_lossy()))
}

/// The JSON value of one printed setting; `None` for a name `Settings` has no field for.
pub fn field(s: &Settings, name: &str) -> Option<Value> {
    Some(match name {
        "ipv4" => json!(s.ipv4),
        "ipv6" => json!(s.ipv6),
        "listen" => json!(s.listen.iter().map(|a| a.to_string()).collect::<Vec<_>>()),
        "threads" => json!(s.threads),
        "trusted_proxy" => json!(s.trusted_proxy.as_ref().map(|p| p.as_str())),
        "trusted_proxy_count" => json!(s.trusted_proxy_count),
        "trusted_proxy_headers" => json!(s.trusted_proxy_headers),
        "log_untrusted_proxy_headers" => json!(s.log_untrusted_proxy_headers),
        "clear_untrusted_proxy_headers" => json!(s.clear_untrusted_proxy_headers),
        "url_scheme" => json!(s.url_scheme),
        "url_prefix" => json!(s.url_prefix),
        "backlog" => json!(s.backlog),
        "recv_bytes" => json!(s.recv_bytes),
        "send_bytes" => json!(s.send_bytes),
        "outbuf_overflow" => json!(s.outbuf_overflow),
        "outbuf_high_watermark" => json!(s.outbuf_high_watermark),
        "inbuf_overflow" => json!(s.inbuf_overflow),
        "connection_limit" => json!(s.connection_limit),
        "cleanup_interval" => json!(s.cleanup_interval),
        "channel_timeout" => json!(s.channel_timeout),
        "log_socket_errors" => json!(s.log_socket_errors),
        "max_request_header_size" => json!(s.max_request_header_size),
        "max_request_body_size" => json!(s.max_request_body_size),
        "expose_tracebacks" => json!(s.expose_tracebacks),
        "ident" => json!(s.ident),
        "asyncore_loop_timeout" => json!(s.asyncore_loop_timeout),
        "asyncore_use_poll" => json!(s.asyncore_use_poll),
        "unix_socket" => path_json(&s.unix_socket),
        "unix_socket_perms" => json!(s.unix_socket_perms),
        "sockets" => json!([]),
        "channel_request_lookahead" => json!(s.channel_request_lookahead),
        "server_name" => json!(s.server_name),
        "workers" => json!(s.workers),
        "preload_app" => json!(s.preload_app),
        "user" => json!(s.user),
        "group" => json!(s.group),
        "umask" => json!(s.umask),
        "pidfile" => path_json(&s.pidfile),
        "graceful_timeout" => json!(s.graceful_timeout),
        "virtualenv" => path_json(&s.virtualenv),
        "access_log" => path_json(&s.access_log),
        "proc_name" => json!(s.proc_name),
        "request_timeout" => json!(s.request_timeout),
        "max_requests" => json!(s.max_requests),
        "max_requests_jitter" => json!(s.max_requests_jitter),
        "max_worker_memory" => json!(s.max_worker_memory),
        "proxy_protocol" => json!(s.edge.proxy_protocol),
        "proxy_allow_ips" => json!(s.edge.proxy_allow_ips.items()),
        "status_listen" => json!(s.edge.status_listen.map(|a| a.to_string())),
        "certfile" => path_json(&s.edge.tls.as_ref().map(|t| t.certfile.clone())),
        "keyfile" => path_json(&s.edge.tls.as_ref().map(|t| t.keyfile.clone())),
        "ca_certs" => path_json(&s.edge.tls.as_ref().and_then(|t| t.ca_certs.clone())),
        "cert_reqs" => json!(match s.edge.tls.as_ref().map(|t| t.cert_reqs) {
            Some(super::edge::CertReqs::Optional) => "optional",
            Some(super::edge::CertReqs::Required) => "required",
            _ => "none",
        }),
        "ssl_min_version" => json!(match s.edge.tls.as_ref().is_some_and(|t| t.tls13_only) {
            true => "1.3",
            false => "1.2",
        }),
        "access_log_format" => json!(s.access_log_format.as_str()),
        "error_log" => path_json(&s.error_log),
        "log_level" => json!(s.log_level),
        _ => return None,
    })
}

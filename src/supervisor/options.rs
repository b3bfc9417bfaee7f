//! `Settings` → the sub-structs lower layers get (they never see all of `Settings`).
use crate::config::Settings;
use crate::net::Identity;
use crate::server::ServerOptions;
use crate::wsgi::WsgiOptions;

/// The workers' identity (`user`, `group`), resolved in the master. Err = one line naming
/// where the account was set and the fix.
pub fn identity(s: &Settings) -> Result<Option<Identity>, String> {
    Identity::resolve(s.user.as_deref(), s.group.as_deref()).map_err(|e| {
        let key = e.setting().unwrap_or("user");
        s.given.blame(
            key,
            format!("{e} (create the account, or set {key} = to one that exists)"),
        )
    })
}

pub fn server_options(s: &Settings) -> ServerOptions {
    ServerOptions {
        threads: s.threads,
        limits: s.http_limits(),
        recv_bytes: s.recv_bytes,
        send_bytes: s.send_bytes,
        outbuf_overflow: s.outbuf_overflow,
        outbuf_high_watermark: s.outbuf_high_watermark,
        inbuf_overflow: s.inbuf_overflow,
        connection_limit: s.connection_limit,
        cleanup_interval: s.cleanup_interval,
        channel_timeout: s.channel_timeout,
        graceful_timeout: s.graceful_timeout,
        log_socket_errors: s.log_socket_errors,
        channel_request_lookahead: s.channel_request_lookahead,
        ident: s.ident.clone(),
        url_scheme: s.url_scheme.clone(),
        url_prefix: s.url_prefix.clone(),
        server_name: s.server_name.clone(),
        expose_tracebacks: s.expose_tracebacks,
        trusted_proxy: s.trusted_proxy.clone(),
        trusted_proxy_count: s.trusted_proxy_count,
        trusted_proxy_headers: s.trusted_proxy_headers.clone(),
        log_untrusted_proxy_headers: s.log_untrusted_proxy_headers,
        clear_untrusted_proxy_headers: s.clear_untrusted_proxy_headers,
        access_log: s.access_log.clone(),
        max_requests: with_jitter(s.max_requests, s.max_requests_jitter),
        request_timeout: s.request_timeout,
        proxy_protocol: s
            .edge
            .proxy_protocol
            .then(|| s.edge.proxy_allow_ips.clone()),
        metrics: None,
        tls: None,
        access_log_format: s.access_log_format.clone(),
    }
}

pub fn wsgi_options(s: &Settings) -> WsgiOptions {
    WsgiOptions {
        app: s.app.clone(),
        expose_tracebacks: s.expose_tracebacks,
        ident: s.ident.clone(),
        url_prefix: s.url_prefix.clone(),
        virtualenv: s.virtualenv.clone(),
        multiprocess: s.workers > 1,
        log_config: s.log_config.clone(),
    }
}

/// gunicorn's rule: each worker retires after `max_requests` plus a random 0..=`jitter`
/// requests, so workers started together do not all restart together. 0 stays off.
fn with_jitter(max_requests: u64, jitter: u64) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    if max_requests == 0 || jitter == 0 {
        return max_requests;
    }
    // std's randomly keyed hasher: a fresh random number per call (per worker), no crate.
    let r = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    max_requests.saturating_add(r % jitter.saturating_add(1))
}

#[cfg(test)]
mod tests {
    #[test]
    fn jitter_stays_in_range_and_saturates() {
        assert_eq!(super::with_jitter(0, 10), 0);
        assert_eq!(super::with_jitter(5, 0), 5);
        for _ in 0..100 {
            assert!((100..=110).contains(&super::with_jitter(100, 10)));
        }
        assert!(super::with_jitter(u64::MAX, u64::MAX) == u64::MAX);
        let seen: std::collections::HashSet<u64> =
            (0..50).map(|_| super::with_jitter(100, 1000)).collect();
        assert!(seen.len() > 1, "random per worker");
    }
}

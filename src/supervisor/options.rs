//! `Settings` → the sub-structs lower layers get (they never see all of `Settings`).
use crate::config::Settings;
use crate::server::ServerOptions;
use crate::wsgi::WsgiOptions;

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

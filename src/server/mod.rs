//! One worker's server: the mio event loop, channels, and the app-thread dispatcher.
//!
//! CONTRACT (supervisor calls this): build `ServerOptions` from `Settings`, then
//! `Server::new(opts, listeners, app)` → `(Server, StopHandle)`; `server.run()` blocks until
//! stopped. `StopHandle` is Send + Clone and may be used from a signal thread.
use std::sync::Arc;

use crate::http::app::App;
use crate::net::Listener;

/// What one worker's server needs from `Settings` (never all of it).
#[derive(Debug, Clone)]
pub struct ServerOptions {
    pub threads: usize,
    pub limits: crate::http::Limits,
    pub recv_bytes: usize,
    pub send_bytes: usize,
    pub outbuf_overflow: u64,
    pub outbuf_high_watermark: u64,
    pub inbuf_overflow: u64,
    pub connection_limit: usize,
    pub cleanup_interval: u64,
    pub channel_timeout: u64,
    pub log_socket_errors: bool,
    pub channel_request_lookahead: usize,
    pub ident: Option<String>,
    pub url_scheme: String,
    pub url_prefix: String,
    pub server_name: String,
    pub expose_tracebacks: bool,
    pub trusted_proxy: Option<String>,
    pub trusted_proxy_count: usize,
    pub trusted_proxy_headers: std::collections::BTreeSet<String>,
    pub log_untrusted_proxy_headers: bool,
    pub clear_untrusted_proxy_headers: bool,
}

/// Errors that stop a worker's server.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("event loop: {0}")]
    Io(#[from] std::io::Error),
}

/// Asks a running server to stop, from any thread.
#[derive(Clone)]
pub struct StopHandle {
    _private: (),
}

impl StopHandle {
    /// Stop accepting, finish in-flight and already-received requests, close idle connections,
    /// then return from `run`.
    pub fn graceful(&self) {
        todo!("server core")
    }
    /// Return from `run` now.
    pub fn immediate(&self) {
        todo!("server core")
    }
}

/// One worker's server.
pub struct Server {
    _private: (),
}

impl Server {
    pub fn new(
        _opts: ServerOptions,
        _listeners: Vec<Listener>,
        _app: Arc<dyn App>,
    ) -> Result<(Server, StopHandle), ServerError> {
        todo!("server core")
    }
    /// Runs the event loop until stopped.
    pub fn run(self) -> Result<(), ServerError> {
        todo!("server core")
    }
}

//! One worker's server: the mio event loop, channels, and the app-thread dispatcher.
//!
//! CONTRACT (supervisor calls this): build `ServerOptions` from `Settings`, then
//! `Server::new(opts, listeners, app)` → `(Server, StopHandle)`; `server.run()` blocks until
//! stopped. `StopHandle` is Send + Clone and may be used from a signal thread.
//!
//! Threads: the loop thread (`event_loop`) does all accepting, reading, parsing and timers;
//! `threads` app threads (`dispatch`) run the app, one `Task` per request, and write responses
//! straight to the socket when they can (waitress's `write_soon`), leaving the rest to the loop.
//!
//! Files by job, in import order: each imports only files named after it (no circles). `accept`
//! (admission, `connection_limit`, eviction) · `timers` (idle sweep, head deadline, lingering
//! close) · `event_loop` (poll, tokens, waker, stop/drain; the open connections in a `slab`;
//! one connection's read, send, finish and close in `event_loop/chan_events`) · `opening` (a
//! connection's PROXY header, origin and TLS reads) · `channel` (loop side of a connection:
//! read, parse, `100 Continue`, parser errors) · `dispatch` (the app
//! threads) · `job` (one request start to end) · `task` (the `Exchange` an app thread drives) ·
//! `watchdog` (`request_timeout`'s thread) · `ctx` (what the loop and the app threads share: job
//! queue, completions, request pool; the app-thread hand-off in `ctx/handoff`) · `calls`
//! (`request_timeout`'s records) · `shared` (state shared with app threads, one lock per
//! connection) · `outbuf` (pending output: memory, spill file, sendfile) · `tls` (a connection's
//! rustls session) · `access_log` · `listener` (the listening sockets) · `proxy_header` (the
//! PROXY header's parse state) · `splice` · `sched` · `sock` (send/sendmsg, peek) · `lock` ·
//! `metrics` (counters the master sums for `/metrics`).
//!
//! Hot path, per keep-alive request: one `recv`, one `send` (head + body joined when they add up
//! to 1 KiB or less, else a vectored `sendmsg`) made by the app thread, no allocation once pools are warm, no loop round trip after the response;
//! hand-offs are batched per poll iteration and the loop is woken at most once per batch.
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::http::app::App;
use crate::net::Listener;

mod accept;
mod access_file;
mod access_log;
mod calls;
mod channel;
mod ctx;
mod dispatch;
mod event_loop;
mod job;
mod listener;
mod lock;
pub mod metrics;
mod opening;
mod outbuf;
mod proxy_header;
mod sched;
mod shared;
mod sock;
mod splice;
mod task;
mod throttle;
mod timers;
mod tls;
mod tls_dn;
mod watchdog;

/// What one worker's server needs from `Settings` (never all of it).
#[derive(Debug, Clone)]
pub struct ServerOptions {
    pub threads: usize,
    pub limits: crate::http::Limits,
    pub recv_bytes: usize,
    /// Deprecated in waitress; accepted: output is flushed once this many bytes are pending.
    pub send_bytes: usize,
    pub outbuf_overflow: u64,
    pub outbuf_high_watermark: u64,
    pub inbuf_overflow: u64,
    pub connection_limit: usize,
    pub cleanup_interval: u64,
    pub channel_timeout: u64,
    /// Seconds a graceful stop may take before the master kills the worker: app threads
    /// still leaving after the drain are waited for up to half of it (`event_loop::run`).
    pub graceful_timeout: u64,
    pub log_socket_errors: bool,
    pub channel_request_lookahead: usize,
    pub ident: Option<String>,
    pub url_scheme: String,
    pub url_prefix: String,
    pub server_name: String,
    pub expose_tracebacks: bool,
    pub trusted_proxy: Option<crate::http::Peers>,
    pub trusted_proxy_count: usize,
    pub trusted_proxy_headers: std::collections::BTreeSet<String>,
    pub log_untrusted_proxy_headers: bool,
    pub clear_untrusted_proxy_headers: bool,
    /// Apache combined access log, one line per request (`-` = stdout); None = off.
    pub access_log: Option<PathBuf>,
    /// Requests after which the server asks to be retired (the retire hook); 0 = never. The
    /// supervisor adds the jitter.
    pub max_requests: u64,
    /// Seconds an app call may run before it is interrupted; 0 = off.
    pub request_timeout: u64,
    /// `proxy_protocol`: every connection starts with a PROXY header, accepted only from
    /// these peers (None = off).
    pub proxy_protocol: Option<crate::http::Peers>,
    /// This worker's `/metrics` counters (in memory shared with the master), if enabled.
    pub metrics: Option<&'static metrics::Counters>,
    /// `certfile`: every TCP connection speaks TLS with this configuration.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// The access log's line format (`access_log_format`).
    pub access_log_format: crate::http::log_format::Format,
}

impl Default for ServerOptions {
    /// waitress 3.0.2's defaults (spec §1.3).
    fn default() -> Self {
        ServerOptions {
            threads: 4,
            limits: crate::http::Limits {
                max_request_header_size: 262_144,
                max_request_body_size: 1_073_741_824,
            },
            recv_bytes: 8192,
            send_bytes: 1,
            outbuf_overflow: 1_048_576,
            outbuf_high_watermark: 16_777_216,
            inbuf_overflow: 524_288,
            connection_limit: 100,
            cleanup_interval: 30,
            channel_timeout: 120,
            graceful_timeout: 30,
            log_socket_errors: true,
            channel_request_lookahead: 0,
            ident: Some("waitress".to_string()),
            url_scheme: "http".to_string(),
            url_prefix: String::new(),
            server_name: "waitress.invalid".to_string(),
            expose_tracebacks: false,
            trusted_proxy: None,
            trusted_proxy_count: 1,
            trusted_proxy_headers: Default::default(),
            log_untrusted_proxy_headers: false,
            clear_untrusted_proxy_headers: true,
            access_log: None,
            max_requests: 0,
            request_timeout: 0,
            proxy_protocol: None,
            metrics: None,
            tls: None,
            access_log_format: crate::http::log_format::Format::combined(),
        }
    }
}

impl ServerOptions {
    /// The whole-head deadline, measured from the first byte of a request head: a client
    /// trickling a header byte by byte is cut after this even though it is never idle.
    pub fn header_timeout(&self) -> Duration {
        Duration::from_secs(self.channel_timeout.clamp(1, 30))
    }
}

/// Errors that stop a worker's server.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("event loop: {0}")]
    Io(#[from] std::io::Error),
    #[error("cannot open access log {path}: {source}")]
    AccessLog {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Why a server asks its supervisor to replace it (`Server::on_retire`); it keeps serving
/// until it is told to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetireReason {
    /// `max_requests` requests were served.
    MaxRequests,
    /// An app call outlived `request_timeout` and did not return when interrupted.
    StuckRequest,
}

/// The supervisor's retire hook (called at most once per reason, from any thread).
pub type RetireHook = Box<dyn Fn(RetireReason) + Send + Sync>;

/// What a `StopHandle` asked for.
pub(crate) const RUNNING: u8 = 0;
pub(crate) const GRACEFUL: u8 = 1;
pub(crate) const IMMEDIATE: u8 = 2;

/// Flags shared by the loop and every `StopHandle`.
pub(crate) struct Control {
    pub(crate) stop: AtomicU8,
    pub(crate) reopen: AtomicBool,
    pub(crate) waker: Arc<mio::Waker>,
}

/// Asks a running server to stop, from any thread.
#[derive(Clone)]
pub struct StopHandle {
    ctl: Arc<Control>,
}

impl StopHandle {
    /// Stop accepting, finish in-flight and already-received requests, close idle connections,
    /// then return from `run`.
    pub fn graceful(&self) {
        let _ =
            self.ctl
                .stop
                .compare_exchange(RUNNING, GRACEFUL, Ordering::SeqCst, Ordering::SeqCst);
        let _ = self.ctl.waker.wake();
    }
    /// Return from `run` now: connections are cut, app threads still inside the app are left
    /// to finish on their own (their output is discarded).
    pub fn immediate(&self) {
        self.ctl.stop.store(IMMEDIATE, Ordering::SeqCst);
        let _ = self.ctl.waker.wake();
    }
    /// Reopens the access log (SIGUSR1, after log rotation).
    pub fn reopen_logs(&self) {
        self.ctl.reopen.store(true, Ordering::SeqCst);
        let _ = self.ctl.waker.wake();
    }
}

/// One worker's server.
pub struct Server {
    inner: event_loop::EventLoop,
}

impl Server {
    /// Takes over the (bound, listening) sockets; nothing runs until `run`.
    pub fn new(
        opts: ServerOptions,
        listeners: Vec<Listener>,
        app: Arc<dyn App>,
    ) -> Result<(Server, StopHandle), ServerError> {
        let (inner, ctl) = event_loop::EventLoop::new(opts, listeners, app)?;
        Ok((Server { inner }, StopHandle { ctl }))
    }
    /// Sets the hook called when this server wants to be replaced (`RetireReason`).
    pub fn on_retire(&self, hook: RetireHook) {
        self.inner.ctx.set_retire_hook(hook);
    }
    /// Runs the event loop (and the app threads) until stopped. Ok(n): `n` app threads were
    /// still inside the app when the server gave up waiting for them (0: every one ended).
    pub fn run(self) -> Result<usize, ServerError> {
        self.inner.run()
    }
}

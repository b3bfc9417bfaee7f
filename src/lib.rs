//! waitressd: a pre-forking, multi-core, drop-in replacement for the waitress WSGI server.
//!
//! Layers depend one way: `cli → config → supervisor → server → {http, wsgi}`, with `net` used by
//! supervisor and server. `http` is sans-IO; `wsgi` is the only module that touches pyo3.
// serde_json::json! of the whole settings table (tests) nests deeper than the default 128.
#![recursion_limit = "256"]
pub mod cli;
pub mod config;
pub mod http;
pub mod logbridge;
pub mod logging;
pub mod net;
pub mod server;
pub mod supervisor;
pub mod wsgi;

/// Process exit codes: a protocol shared by the master, its workers and init systems.
pub mod exit {
    /// Clean stop.
    pub const OK: i32 = 0;
    /// Bad command line or configuration.
    pub const CONFIG: i32 = 2;
    /// Could not boot: bind, privileges, pidfile.
    pub const BOOT: i32 = 3;
    /// The application could not be imported or built.
    pub const APP_LOAD: i32 = 4;
}

/// Deadlines that cannot overflow: every duration a setting accepts (up to 2^64-1 seconds) is
/// safe to add to the clock.
pub mod time {
    use std::time::{Duration, Instant};

    /// Far enough to mean "never" (about a century), near enough for every clock.
    pub const NEVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

    /// `now + d`, saturating at `now + NEVER`.
    pub fn later(now: Instant, d: Duration) -> Instant {
        now + d.min(NEVER)
    }
}

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

//! The only pyo3 user: embedded CPython, app loading as pserve does it, and PEP 3333 calls.
//!
//! CONTRACT (supervisor/worker calls this, after fork): `wsgi::init(&WsgiOptions)` once per
//! process, then `wsgi::load(&WsgiOptions)` → `Arc<dyn App>`, served by `server`.
use std::sync::Arc;

use crate::config::AppSpec;
use crate::http::app::App;

/// What the WSGI bridge needs from `Settings`.
#[derive(Debug, Clone)]
pub struct WsgiOptions {
    pub app: AppSpec,
    pub expose_tracebacks: bool,
    pub ident: Option<String>,
    pub url_prefix: String,
}

/// Why the app could not be loaded (exit code 4).
#[derive(Debug, thiserror::Error)]
pub enum WsgiError {
    #[error("{0}")]
    Python(String),
}

/// Starts the interpreter in this process (PEP 587 init, GIL released afterwards).
pub fn init(_opts: &WsgiOptions) -> Result<(), WsgiError> {
    todo!("wsgi")
}

/// Loads the application (logging config first, then PasteDeploy or module:callable).
pub fn load(_opts: &WsgiOptions) -> Result<Arc<dyn App>, WsgiError> {
    todo!("wsgi")
}

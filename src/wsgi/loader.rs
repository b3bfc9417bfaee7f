//! App loading as pserve (INI: logging first, then PasteDeploy's `loadapp`) and waitress-serve
//! (`--app module:attr`, `--call`) do it; failures print the Python traceback to stderr.
use std::io::Write as _;

use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::helper::helper;
use super::task::WsgiApp;
use super::{WsgiError, WsgiOptions};
use crate::wsgi::AppSpec;

/// What the app is, for messages: `config:/abs/app.ini#main` or `pkg.mod:app`.
fn describe(spec: &AppSpec) -> String {
    match spec {
        AppSpec::Ini { path, app_name, .. } => format!("config:{}#{app_name}", path.display()),
        AppSpec::Module { target, .. } => target.clone(),
    }
}

/// Imports/builds the app in the interpreter `init` started.
pub(crate) fn load(opts: &WsgiOptions) -> Result<WsgiApp, WsgiError> {
    let what = describe(&opts.app);
    Python::attach(|py| {
        let ini = matches!(opts.app, AppSpec::Ini { .. });
        let helper = helper(py).map_err(|e| load_error(py, &what, ini, e))?;
        let app = match &opts.app {
            AppSpec::Ini {
                path,
                app_name,
                vars,
            } => {
                let v = PyDict::new(py);
                for (k, val) in vars {
                    v.set_item(k, val)
                        .map_err(|e| load_error(py, &what, ini, e))?;
                }
                helper.call_method1("load_ini", (path, app_name, v, &opts.log_config))
            }
            AppSpec::Module { target, call } => {
                helper.call_method1("load_module", (target, *call, &opts.log_config))
            }
        };
        let app = app.map_err(|e| load_error(py, &what, ini, e))?;
        WsgiApp::new(py, app, helper, opts).map_err(|e| load_error(py, &what, ini, e))
    })
}

/// The one-line error, after printing the traceback to stderr (as pserve would show it).
/// `ini`: the app comes from an INI file (the hint names only the fixes that work there).
fn load_error(py: Python<'_>, what: &str, ini: bool, err: PyErr) -> WsgiError {
    let missing = helper(py)
        .and_then(|h| h.getattr("MissingPasteDeploy"))
        .is_ok_and(|cls| err.value(py).is_instance(&cls).unwrap_or(false));
    if missing {
        return WsgiError::MissingPasteDeploy(err.value(py).to_string());
    }
    let _ = py.run(
        c"import sys; sys.stdout.flush(); sys.stderr.flush()",
        None,
        None,
    );
    let mut message = err.to_string();
    let exc = err.into_value(py);
    if let Some(hint) = helper(py)
        .and_then(|h| h.call_method1("module_hint", (exc.clone_ref(py), ini)))
        .ok()
        .and_then(|h| h.extract::<String>().ok())
    {
        message = format!("{}: {hint}", message.lines().next().unwrap_or(""));
    }
    let tb = helper(py)
        .and_then(|h| h.call_method1("format_exception", (exc,)))
        .and_then(|t| t.extract::<String>())
        .unwrap_or_else(|_| format!("{message}\n"));
    let mut stderr = std::io::stderr().lock();
    let _ = stderr.write_all(tb.as_bytes());
    let _ = stderr.flush();
    let message = message.lines().next().unwrap_or("").to_string();
    WsgiError::AppLoad {
        what: what.to_string(),
        message,
    }
}

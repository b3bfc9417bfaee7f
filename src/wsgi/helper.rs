//! The `_waitressd` helper module: helper.py (app loading as pserve and waitress-serve do it,
//! the logging bridge, `wsgi.errors`, `wsgi.file_wrapper`), compiled once per process and used
//! by the loader, the task and pylog.
use std::ffi::CString;

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyModule;

const HELPER_SOURCE: &str = include_str!("helper.py");
/// The app's `sys.stdout`/`sys.stderr` wrapper, a module of its own that helper.py imports.
const STDIO_SOURCE: &str = include_str!("stdio.py");

static HELPER: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

/// The `_waitressd` helper module (compiled once per process, registered in sys.modules so
/// `wsgi.file_wrapper` objects pickle and print with a real module name).
pub(crate) fn helper(py: Python<'_>) -> PyResult<&Bound<'_, PyModule>> {
    HELPER
        .get_or_try_init(py, || {
            let modules = py.import("sys")?.getattr("modules")?;
            let code = CString::new(STDIO_SOURCE).expect("stdio.py has no NUL");
            let stdio =
                PyModule::from_code(py, &code, c"<waitressd>/stdio.py", c"_waitressd_stdio")?;
            modules.set_item("_waitressd_stdio", &stdio)?;
            let code = CString::new(HELPER_SOURCE).expect("helper.py has no NUL");
            let m = PyModule::from_code(py, &code, c"<waitressd>/helper.py", c"_waitressd")?;
            modules.set_item("_waitressd", &m)?;
            Ok::<_, PyErr>(m.unbind())
        })
        .map(|m| m.bind(py))
}

//! `request_timeout` on the Python side: the stack of a stuck app thread (for the log), then
//! `TimeoutError` raised in it with `PyThreadState_SetAsyncExc`. The eval loop delivers it at
//! the thread's next bytecode: a busy Python loop stops at once; a thread blocked in C (a
//! `time.sleep`, a socket read without timeout) sees it only when that call returns, which is
//! why the server retires a worker whose interrupted call still has not returned.
use std::os::raw::c_long;

use pyo3::exceptions::PyTimeoutError;
use pyo3::prelude::*;
use pyo3::types::PyString;

/// Interrupts the app call running on the thread with ident `thread` (`pthread_self`, which
/// is what CPython uses as `threading.get_ident()` on Linux); returns its stack. Under the
/// GIL, `still_stuck` is asked first: the thread runs no Python until the exception is set, so
/// it lands in the stuck call, not in a request begun after it returned.
pub(crate) fn interrupt(thread: u64, still_stuck: &dyn Fn() -> bool) -> Option<String> {
    Python::attach(|py| {
        let stack = stack_of(py, thread).unwrap_or_else(|e| format!("(no stack: {e})"));
        if !still_stuck() {
            return Some(stack);
        }
        let exc = py.get_type::<PyTimeoutError>();
        // SAFETY: the GIL is held (attach); `exc` is a live exception type, borrowed for the
        // call (SetAsyncExc takes its own reference). An id that names no thread of this
        // interpreter is harmless: the call returns 0 and raises nothing. pyo3 declares the
        // id as `long`, CPython as `unsigned long`: the same bits.
        let n = unsafe { pyo3::ffi::PyThreadState_SetAsyncExc(thread as c_long, exc.as_ptr()) };
        if n == 0 {
            log::warn!(target: "waitress", "request_timeout: the stuck thread is not a Python thread any more");
        }
        Some(stack)
    })
}

/// `traceback.format_stack(sys._current_frames()[thread])`, joined.
fn stack_of(py: Python<'_>, thread: u64) -> PyResult<String> {
    let frames = py.import("sys")?.call_method0("_current_frames")?;
    let frame = frames.get_item(thread)?;
    let lines = py
        .import("traceback")?
        .call_method1("format_stack", (frame,))?;
    PyString::new(py, "")
        .call_method1("join", (lines,))?
        .extract()
}

//! The WSGI `Task` (waitress task.py `WSGITask`): calls the app with the environ and
//! start_response, streams its iterable (or sends a `wsgi.file_wrapper` zero-copy), always
//! closes it, and turns exceptions into waitress's outcomes (spec §3.4-3.6).
use std::cell::{RefCell, RefMut};
use std::os::fd::{BorrowedFd, RawFd};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use pyo3::exceptions::{PyRuntimeError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyList, PyTuple};

use super::ctx::{detached, Ctx};
use super::environ::{Constants, Template, ThreadMemo};
use super::response::{ClientDisconnected, RequestObjects};
use super::turns::Turns;
use super::WsgiOptions;
use crate::http::app::{App, AppFailure, Exchange};

/// waitress's 500 body text when tracebacks are not exposed.
const GENERIC_ERROR: &str = "The server encountered an unexpected internal server error";

/// A loaded WSGI application, shared by the app threads of a worker.
pub(crate) struct WsgiApp {
    app: Py<PyAny>,
    template: Template,
    file_wrapper: Py<PyAny>,
    report_exception: Py<PyAny>,
    report_disconnect: Py<PyAny>,
    expose_tracebacks: bool,
    /// Request-start GIL acquisitions in arrival order (see `turns`).
    turns: Turns,
}

/// What one app thread keeps between requests.
#[derive(Default)]
struct ThreadState {
    ctx: Arc<Ctx>,
    memo: ThreadMemo,
    objects: RequestObjects,
}

thread_local! {
    static THREAD: RefCell<Option<ThreadState>> = const { RefCell::new(None) };
}

/// The thread's state, dropped if a request unwinds through it (the next one starts afresh
/// rather than from whatever the panic left half-updated).
struct DropOnUnwind<'a>(RefMut<'a, Option<ThreadState>>);
impl Drop for DropOnUnwind<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            *self.0 = None;
        }
    }
}

/// Ends the request's context even if the call unwinds.
struct EndGuard<'a>(&'a Ctx);
impl Drop for EndGuard<'_> {
    fn drop(&mut self) {
        self.0.end();
    }
}

impl WsgiApp {
    /// Wraps a WSGI callable; `helper` is the `_waitressd` module.
    pub(crate) fn new(
        py: Python<'_>,
        app: Bound<'_, PyAny>,
        helper: &Bound<'_, PyModule>,
        opts: &WsgiOptions,
    ) -> PyResult<WsgiApp> {
        let file_wrapper = helper.getattr("FileWrapper")?;
        let template = Template::new(
            py,
            Constants {
                url_prefix: &opts.url_prefix,
                ident: opts.ident.as_deref().filter(|s| !s.is_empty()),
                multiprocess: opts.multiprocess,
                errors: helper.getattr("ErrorStream")?.call0()?,
                file_wrapper: file_wrapper.clone(),
            },
        )?;
        Ok(WsgiApp {
            app: app.unbind(),
            template,
            file_wrapper: file_wrapper.unbind(),
            report_exception: helper.getattr("report_exception")?.unbind(),
            report_disconnect: helper.getattr("report_disconnect")?.unbind(),
            expose_tracebacks: opts.expose_tracebacks,
            turns: Turns::default(),
        })
    }

    fn serve(&self, py: Python<'_>, ex: &mut dyn Exchange) -> Result<(), AppFailure> {
        // Used in place: moving the state out and back cost two copies of it per request.
        // Nothing else borrows it while the app runs (only `run_thread`, after the last call).
        THREAD.with(|t| {
            let mut slot = DropOnUnwind(t.borrow_mut());
            let ts = slot.0.get_or_insert_with(ThreadState::default);
            self.serve_with(py, ex, ts)
        })
    }

    fn serve_with(
        &self,
        py: Python<'_>,
        ex: &mut dyn Exchange,
        ts: &mut ThreadState,
    ) -> Result<(), AppFailure> {
        let env = match self.template.build(py, ex.request(), &mut ts.memo) {
            Ok(env) => env,
            Err(e) => return Err(self.internal(py, "building the environ", e)),
        };
        let has_body = ex.request().content_length().is_some_and(|n| n > 0);
        let flag = ex.disconnected();
        let ctx = ts.ctx.clone();
        // From here on the exchange is reached through `ctx` only.
        let gen = ctx.begin(ex);
        let _end = EndGuard(&ctx);
        let run = || -> PyResult<()> {
            let keys = &self.template.keys;
            let (input, gone, sr) = ts.objects.arm(py, &ctx, gen, has_body, flag)?;
            env.set_item(keys.input.bind(py), input)?;
            env.set_item(keys.client_disconnected.bind(py), gone)?;
            let app_iter = self.app.bind(py).call1((env, sr))?;
            self.respond(py, &ctx, gen, &app_iter)
        };
        match run() {
            Ok(()) => Ok(()),
            Err(e) => self.failure(py, &ctx, gen, e),
        }
    }

    /// Sends the app's iterable; closes it in every case (except the file-wrapper fast path,
    /// which closes the file itself), then makes sure the head is handed over.
    fn respond(
        &self,
        py: Python<'_>,
        ctx: &Ctx,
        gen: u64,
        app_iter: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        // Lists (the common case) skip the isinstance call, which goes through
        // type.__instancecheck__.
        let plain = app_iter.is_exact_instance_of::<PyList>();
        if !plain && app_iter.is_instance(self.file_wrapper.bind(py))? {
            match self.send_wrapper(py, ctx, gen, app_iter) {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(e) => {
                    let _ = close(app_iter);
                    return Err(e);
                }
            }
        }
        let r = iterate(py, ctx, gen, app_iter);
        let c = close(app_iter);
        r?;
        c?;
        let mut s = ctx.lock(gen)?;
        if !s.started {
            // waitress finish(): write(b"") before start_response.
            return Err(PyRuntimeError::new_err(
                "start_response was not called before body written",
            ));
        }
        s.hand_over();
        Ok(())
    }

    /// `wsgi.file_wrapper` over a seekable file (waitress task.py + buffers.py): the length is
    /// known, Content-Length fixed up to it, and a real file goes out with sendfile(2).
    /// Returns false when the wrapper must be iterated instead (not seekable, or empty).
    fn send_wrapper(
        &self,
        py: Python<'_>,
        ctx: &Ctx,
        gen: u64,
        w: &Bound<'_, PyAny>,
    ) -> PyResult<bool> {
        let cl = ctx.lock(gen)?.content_length;
        let size: u64 = w.call_method1("prepare", (cl,))?.extract()?;
        if size == 0 {
            return Ok(false);
        }
        {
            let mut s = ctx.lock(gen)?;
            if !s.started {
                return Err(PyRuntimeError::new_err(
                    "start_response was not called before body written",
                ));
            }
            if cl != Some(size) && !s.handed {
                s.headers
                    .retain(|(k, _)| !k.eq_ignore_ascii_case("content-length"));
                s.headers
                    .push(("Content-Length".to_string(), size.to_string()));
                s.content_length = Some(size);
            }
        }
        let at: Option<(RawFd, u64)> = w.call_method0("fileno_at")?.extract()?;
        if let Some(file) = at.and_then(|(fd, off)| regular_file_dup(fd).map(|f| (f, off))) {
            let (file, offset) = file;
            let mut s = ctx.lock(gen)?;
            // waitress: `write(b"")` puts the head out, where a client known to be gone is
            // the request's "Client disconnected"; the file is then the channel's to send,
            // and a client that leaves during it (a download cancelled, a player that read
            // the head) ends the response without that line: the app had returned.
            s.send_head(py)
                .map_err(|_| ClientDisconnected::new_err("client disconnected"))?;
            let ex = s.ex();
            // A failed send has closed the connection; the response ends there.
            let _ = detached(py, || ex.send_file(file, offset, size));
            drop(s);
            w.call_method0("close")?;
            return Ok(true);
        }
        // Seekable but not an OS file (e.g. BytesIO): read `size` bytes in blocks.
        let file = w.getattr("file")?;
        let block: u64 = w.getattr("block_size")?.extract::<u64>()?.max(1);
        let mut remain = size;
        let r = (|| -> PyResult<()> {
            while remain > 0 {
                let chunk = file.call_method1("read", (block.min(remain),))?;
                let data = chunk.cast::<PyBytes>().map_err(PyErr::from)?.as_bytes();
                if data.is_empty() {
                    break;
                }
                let data = &data[..data.len().min(remain as usize)];
                remain -= data.len() as u64;
                ctx.lock(gen)?
                    .write(py, data)
                    .map_err(|_| ClientDisconnected::new_err("client disconnected"))?;
            }
            ctx.lock(gen)?.hand_over();
            Ok(())
        })();
        let c = w.call_method0("close");
        r?;
        c?;
        Ok(true)
    }

    /// waitress channel.service(): log the exception with the request path; the server sends
    /// the 500 (head not sent) or cuts the connection (head sent).
    fn failure(&self, py: Python<'_>, ctx: &Ctx, gen: u64, err: PyErr) -> Result<(), AppFailure> {
        let path = ctx
            .lock(gen)
            .map(|mut s| s.ex().request().path().to_vec())
            .unwrap_or_default();
        let path = super::environ::latin1(py, &path)
            .map(|p| p.unbind().into_any())
            .unwrap_or_else(|_| py.None());
        if err.is_instance_of::<ClientDisconnected>(py) {
            if let Err(e) = self.report_disconnect.bind(py).call1((path,)) {
                log::info!("client disconnected (logging it failed: {e})");
            }
            return Ok(());
        }
        let text = err.to_string();
        // into_value attaches the traceback to the exception (3.11 keeps them apart).
        let exc = err.into_value(py);
        let tb = match self.report_exception.bind(py).call1((path, exc)) {
            Ok(tb) => tb.extract::<String>().unwrap_or(text),
            Err(e) => {
                let tb = text;
                log::error!("exception while serving a request: {tb} (logging it failed: {e})");
                tb
            }
        };
        Err(AppFailure {
            traceback: if self.expose_tracebacks {
                tb
            } else {
                GENERIC_ERROR.to_string()
            },
        })
    }

    /// A fault of this layer, not the app's: error log, 500.
    fn internal(&self, py: Python<'_>, what: &str, err: PyErr) -> AppFailure {
        log::error!("wsgi: {what}: {}", err.value(py));
        AppFailure {
            traceback: GENERIC_ERROR.to_string(),
        }
    }
}

/// Streams the iterable chunk by chunk; the head goes out with the first non-empty chunk.
fn iterate(py: Python<'_>, ctx: &Ctx, gen: u64, app_iter: &Bound<'_, PyAny>) -> PyResult<()> {
    let mut first = true;
    // Taking the next item of a list or tuple cannot block; anything else may (a generator
    // waiting for data), so after each write the server is told, to bound how long bytes it
    // gathered wait for the next one.
    let may_block =
        !app_iter.is_exact_instance_of::<PyList>() && !app_iter.is_exact_instance_of::<PyTuple>();
    for chunk in app_iter.try_iter()? {
        let chunk = chunk?;
        let (copy, view);
        let data: &[u8] = if let Ok(b) = chunk.cast::<PyBytes>() {
            b.as_bytes()
        } else if let Ok(b) = chunk.cast::<PyByteArray>() {
            copy = b.to_vec();
            &copy
        } else if let Some(b) = super::response::memoryview_bytes(&chunk)? {
            view = b;
            view.as_bytes()
        } else {
            // waitress takes the first item's len() before anything goes out: an item without
            // one (an int, from an app that returned bytes instead of a list of them; None)
            // fails with the head unsent, which gives the client a 500.
            let lenless = first && !chunk.hasattr("__len__")?;
            if !chunk.is_truthy()? {
                if lenless {
                    return Err(PyTypeError::new_err(format!(
                        "object of type '{}' has no len()",
                        chunk.get_type().name()?
                    )));
                }
                // Skipped (waitress writes only `if chunk`); a falsy first item with a length
                // ("", []) still sizes a one-item body: Content-Length 0.
                if std::mem::take(&mut first) {
                    one_item_length(ctx, gen, app_iter, 0)?;
                }
                continue;
            }
            let mut s = ctx.lock(gen)?;
            if s.started && !lenless {
                // waitress sends the head, then fails on the data: the connection is cut.
                s.send_head(py)
                    .map_err(|_| ClientDisconnected::new_err("client disconnected"))?;
            }
            return Err(PyTypeError::new_err(format!(
                "WSGI response body items must be bytes, not {}",
                chunk.get_type().name()?
            )));
        };
        if std::mem::take(&mut first) {
            one_item_length(ctx, gen, app_iter, data.len())?;
        }
        if !data.is_empty() {
            let mut s = ctx.lock(gen)?;
            if !s.started {
                return Err(PyRuntimeError::new_err(
                    "start_response was not called before body written",
                ));
            }
            s.write(py, data)
                .map_err(|_| ClientDisconnected::new_err("client disconnected"))?;
            if may_block {
                s.ex().app_may_block();
            }
        }
    }
    Ok(())
}

/// PEP 3333 / waitress: a one-item iterable gives the Content-Length for free (its first and
/// only item is `len` bytes long).
fn one_item_length(ctx: &Ctx, gen: u64, app_iter: &Bound<'_, PyAny>, len: usize) -> PyResult<()> {
    let mut s = ctx.lock(gen)?;
    if s.content_length.is_none() && !s.handed && s.started && len_is_one(app_iter)? {
        s.headers
            .push(("Content-Length".to_string(), len.to_string()));
        s.content_length = Some(len as u64);
    }
    Ok(())
}

/// `hasattr(app_iter, "__len__") and len(app_iter) == 1` (lists and tuples without a lookup).
fn len_is_one(app_iter: &Bound<'_, PyAny>) -> PyResult<bool> {
    if let Ok(l) = app_iter.cast::<PyList>() {
        return Ok(l.len() == 1);
    }
    if let Ok(t) = app_iter.cast::<PyTuple>() {
        return Ok(t.len() == 1);
    }
    if app_iter.hasattr("__len__")? {
        return Ok(app_iter.len()? == 1);
    }
    Ok(false)
}

/// PEP 3333: `close()` is called if the iterable has it.
fn close(app_iter: &Bound<'_, PyAny>) -> PyResult<()> {
    if app_iter.cast::<PyList>().is_ok() {
        return Ok(());
    }
    if app_iter.hasattr("close")? {
        app_iter.call_method0("close")?;
    }
    Ok(())
}

/// A private copy of `fd` when it is a regular file (sendfile(2) needs one).
fn regular_file_dup(fd: RawFd) -> Option<std::fs::File> {
    // SAFETY: the fd belongs to a Python file object that is open and referenced by the caller
    // for the length of this call; it is only borrowed to fstat and duplicate it.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    let owned = fd.try_clone_to_owned().ok()?;
    let file = std::fs::File::from(owned);
    file.metadata().ok().filter(|m| m.is_file())?;
    Some(file)
}

impl App for WsgiApp {
    /// One Python thread state for the thread's whole life; detached while waiting for work.
    fn run_thread(&self, serve: &mut dyn FnMut()) {
        Python::attach(|py| {
            // waitress's app threads are `waitress-N` to Python too (not `Dummy-N`), so
            // `%(threadName)s` in a log format reads as under waitress.
            if let Some(name) = std::thread::current().name() {
                if let Ok(h) = super::helper::helper(py) {
                    let _ = h.call_method1("name_thread", (name,));
                }
            }
            detached(py, serve);
            // Drop the thread's cached Python objects while attached.
            THREAD.with(|t| t.borrow_mut().take());
        })
    }

    fn interrupt(&self, thread: u64, still_stuck: &dyn Fn() -> bool) -> Option<String> {
        super::interrupt::interrupt(thread, still_stuck)
    }

    fn call(&self, ex: &mut dyn Exchange) -> Result<(), AppFailure> {
        let mut turn = Some(self.turns.wait());
        let serve = || {
            Python::attach(|py| {
                // The GIL is ours: the next app thread in line may queue at it.
                drop(turn.take());
                ex.app_running();
                self.serve(py, ex)
            })
        };
        match catch_unwind(AssertUnwindSafe(serve)) {
            Ok(r) => r,
            Err(panic) => {
                let msg = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".to_string());
                log::error!("wsgi: internal error while serving a request: {msg}");
                Err(AppFailure {
                    traceback: GENERIC_ERROR.to_string(),
                })
            }
        }
    }
}

//! `start_response`, the `write` callable and `waitress.client_disconnected` (waitress task.py
//! rules, spec §3.1 and §3.4), and the per-thread reuse of the request objects handed to the app.
//!
//! They work on the running request's state in the thread's [`Ctx`]; each carries the request's
//! generation number, so one kept past its request raises instead of touching the next request.
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, TryLockError};

use pyo3::exceptions::{PyAssertionError, PyRuntimeError, PyTypeError};

use super::checks::{checked_headers, checked_status};
use super::ctx::Ctx;
use super::input::Input;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::pyclass::boolean_struct::True;
use pyo3::types::{PyByteArray, PyBytes, PyMemoryView};
use pyo3::{PyClass, PyClassInitializer};

pyo3::create_exception!(
    waitressd,
    ClientDisconnected,
    pyo3::exceptions::PyException,
    "The client went away while the response was being written."
);

/// `cache`'s object, re-armed for this request by `arm(obj, v)`, if the cache holds its only
/// reference; else a new one from `make(v)`, which replaces it in the cache. An object the app
/// kept past its request is thus never re-armed: it keeps its old generation and stays inert.
/// Saves an allocation, an initialisation and a deallocation per object and request.
fn reuse<'py, T, V>(
    py: Python<'py>,
    cache: &mut Option<Py<T>>,
    v: V,
    arm: impl FnOnce(&T, V),
    make: impl FnOnce(V) -> T,
) -> PyResult<Bound<'py, T>>
where
    T: PyClass<Frozen = True> + Sync + Into<PyClassInitializer<T>>,
{
    if let Some(obj) = cache {
        // SAFETY: `obj` is a live object we hold a reference to, and the GIL is held (`py`).
        if unsafe { ffi::Py_REFCNT(obj.as_ptr()) } == 1 {
            arm(obj.get(), v);
            return Ok(obj.bind(py).clone());
        }
    }
    let obj = Bound::new(py, make(v))?;
    *cache = Some(obj.clone().unbind());
    Ok(obj)
}

/// The request objects handed to the app, kept per app thread and reused (see [`reuse`]).
#[derive(Default)]
pub(crate) struct RequestObjects {
    input: Option<Py<Input>>,
    gone: Option<Py<ClientGone>>,
    start_response: Option<Py<StartResponse>>,
}

/// What [`RequestObjects::arm`] returns: `wsgi.input`, `waitress.client_disconnected` and
/// `start_response`.
type Armed<'py> = (
    Bound<'py, Input>,
    Bound<'py, ClientGone>,
    Bound<'py, StartResponse>,
);

impl RequestObjects {
    /// The objects of request `gen` (running in `ctx`).
    pub(crate) fn arm<'py>(
        &mut self,
        py: Python<'py>,
        ctx: &Arc<Ctx>,
        gen: u64,
        has_body: bool,
        flag: Arc<AtomicBool>,
    ) -> PyResult<Armed<'py>> {
        let input = reuse(
            py,
            &mut self.input,
            (),
            |i, ()| {
                i.gen.store(gen, Ordering::Relaxed);
                i.has_body.store(has_body, Ordering::Relaxed);
                i.closed.store(false, Ordering::Relaxed);
            },
            |()| Input {
                ctx: ctx.clone(),
                gen: AtomicU64::new(gen),
                has_body: AtomicBool::new(has_body),
                closed: AtomicBool::new(false),
            },
        )?;
        let gone = reuse(
            py,
            &mut self.gone,
            flag,
            |g, flag| *g.flag.lock().unwrap_or_else(|e| e.into_inner()) = flag,
            |flag| ClientGone {
                flag: Mutex::new(flag),
            },
        )?;
        let sr = reuse(
            py,
            &mut self.start_response,
            (),
            |s, ()| s.gen.store(gen, Ordering::Relaxed),
            |()| StartResponse {
                ctx: ctx.clone(),
                gen: AtomicU64::new(gen),
                write: Mutex::new(None),
            },
        )?;
        Ok((input, gone, sr))
    }
}

/// The `start_response` callable of one request (reused by the thread's next request when
/// nothing else holds it, see [`reuse`]).
#[pyclass(frozen, module = "waitressd")]
pub(crate) struct StartResponse {
    pub(crate) ctx: Arc<Ctx>,
    pub(crate) gen: AtomicU64,
    /// The `write` callable last returned, reused the same way.
    pub(crate) write: Mutex<Option<Py<Write>>>,
}

#[pymethods]
impl StartResponse {
    #[pyo3(signature = (status, headers, exc_info=None))]
    fn __call__<'py>(
        &self,
        py: Python<'py>,
        status: &Bound<'_, PyAny>,
        headers: &Bound<'_, PyAny>,
        exc_info: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Bound<'py, Write>> {
        let gen = self.gen.load(Ordering::Relaxed);
        let mut s = self.ctx.lock(gen)?;
        let exc_info = match exc_info {
            Some(e) if e.is_truthy()? => Some(e),
            _ => None,
        };
        match exc_info {
            None if s.started => {
                return Err(PyAssertionError::new_err(
                    "start_response called a second time without providing exc_info.",
                ))
            }
            None => {}
            Some(e) => {
                if s.head_sent() {
                    // PEP 3333: too late to change the head; re-raise the app's exception.
                    return Err(PyErr::from_value(e.get_item(1)?));
                }
                // The previous status and headers are discarded (also if already handed over:
                // the exchange replaces them until the head is sent).
                s.headers.clear();
                s.content_length = None;
                s.handed = false;
            }
        }
        s.started = true;
        checked_status(status, &mut s.status)?;
        let spare = s.ex().recycled_headers();
        let (headers, content_length) = checked_headers(py, headers, spare)?;
        s.headers = headers;
        if content_length.is_some() {
            s.content_length = content_length;
        }
        drop(s);
        // try_lock: never wait with the GIL held (a second thread sharing this start_response
        // while the first is in `reuse` gets a fresh, uncached object instead).
        let mut spare = None;
        let mut cache = match self.write.try_lock() {
            Ok(c) => Some(c),
            Err(TryLockError::Poisoned(e)) => Some(e.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        };
        reuse(
            py,
            cache.as_deref_mut().unwrap_or(&mut spare),
            gen,
            |w, gen| w.gen.store(gen, Ordering::Relaxed),
            |gen| Write {
                ctx: self.ctx.clone(),
                gen: AtomicU64::new(gen),
            },
        )
    }
}

/// The `write` callable returned by start_response.
#[pyclass(frozen, module = "waitressd")]
pub(crate) struct Write {
    ctx: Arc<Ctx>,
    gen: AtomicU64,
}

#[pymethods]
impl Write {
    fn __call__(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let mut s = self.ctx.lock(self.gen.load(Ordering::Relaxed))?;
        if !s.started {
            return Err(PyRuntimeError::new_err(
                "start_response was not called before body written",
            ));
        }
        let sent = if let Ok(b) = data.cast::<PyBytes>() {
            s.write(py, b.as_bytes())
        } else if let Ok(b) = data.cast::<PyByteArray>() {
            let copy = b.to_vec();
            s.write(py, &copy)
        } else if let Some(b) = memoryview_bytes(data)? {
            s.write(py, b.as_bytes())
        } else if !data.is_truthy()? {
            // waitress writes only `if data`: a falsy argument ("", None, 0, []) puts the head
            // out and sends nothing, as write(b"") does.
            s.write(py, b"")
        } else {
            // waitress writes the head before it trips over the data.
            s.send_head(py)
                .map_err(|_| ClientDisconnected::new_err("client disconnected"))?;
            return Err(PyTypeError::new_err(format!(
                "write() argument must be bytes, not {}",
                data.get_type().name()?
            )));
        };
        // Back to the app, which may take its time before writing again: what the server
        // gathered must not wait for that.
        s.ex().app_may_block();
        sent.map_err(|_| ClientDisconnected::new_err("client disconnected"))
    }
}

/// `waitress.client_disconnected`: true once the server knows the client is gone.
#[pyclass(frozen, module = "waitressd")]
pub(crate) struct ClientGone {
    /// The flag of the request this object was last armed for.
    pub(crate) flag: Mutex<Arc<AtomicBool>>,
}

#[pymethods]
impl ClientGone {
    fn __call__(&self) -> bool {
        let flag = self.flag.lock().unwrap_or_else(|e| e.into_inner());
        flag.load(Ordering::Relaxed)
    }
}

/// A memoryview's bytes (`tobytes()`, one copy), None for anything else: waitress writes a
/// memoryview as it writes bytes (its buffers take any bytes-like object), so an app may hand
/// one over.
pub(super) fn memoryview_bytes<'py>(
    data: &Bound<'py, PyAny>,
) -> PyResult<Option<Bound<'py, PyBytes>>> {
    if !data.is_instance_of::<PyMemoryView>() {
        return Ok(None);
    }
    let b = data.call_method0("tobytes")?;
    Ok(Some(b.cast_into::<PyBytes>().map_err(PyErr::from)?))
}

//! `start_response`, the `write` callable and the per-request state they share with the
//! driver (waitress task.py rules, spec §3.1 and §3.4).
//!
//! The `Exchange` of the running request is published in a per-thread [`Ctx`] for the length
//! of `App::call` only; Python objects handed to the app carry the request's generation number,
//! so one kept past its request raises instead of touching the next request.
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};

use pyo3::exceptions::{PyAssertionError, PyRuntimeError, PyTypeError, PyValueError};

use super::checks::{checked_headers, checked_status};
use super::input::Input;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::pyclass::boolean_struct::True;
use pyo3::types::{PyByteArray, PyBytes};
use pyo3::{PyClass, PyClassInitializer};

use crate::http::app::{Disconnected, Exchange};

pyo3::create_exception!(
    waitressd,
    ClientDisconnected,
    pyo3::exceptions::PyException,
    "The client went away while the response was being written."
);

/// Runs `f` with the GIL released. `f` must not touch Python objects (it gets Rust data and
/// the Exchange only); it runs on this thread, so the `Send` bound pyo3 asks for is moot.
pub(crate) fn detached<T>(py: Python<'_>, f: impl FnOnce() -> T) -> T {
    struct AssertSend<F>(F);
    // SAFETY: the wrapped value never leaves this thread: `detach` runs the closure inline and
    // returns its result here. The closures passed in touch no Python state.
    unsafe impl<F> Send for AssertSend<F> {}
    impl<F> AssertSend<F> {
        fn into_inner(self) -> F {
            self.0
        }
    }
    let job = AssertSend(f);
    py.detach(move || AssertSend((job.into_inner())()))
        .into_inner()
}

/// The running request's exchange, valid between `Ctx::begin` and `Ctx::end`.
struct ExPtr(*mut (dyn Exchange + 'static));
// SAFETY: only dereferenced under the Ctx mutex while the `App::call` that published it is on
// the stack (it is cleared before that call returns, also on unwind).
unsafe impl Send for ExPtr {}

/// Response state of the running request.
#[derive(Default)]
pub(crate) struct Slot {
    gen: u64,
    ex: Option<ExPtr>,
    /// start_response was called (waitress `complete`).
    pub started: bool,
    pub status: String,
    pub headers: Vec<(String, String)>,
    /// The app's Content-Length header, parsed.
    pub content_length: Option<u64>,
    /// status/headers were passed to `Exchange::start_response`.
    pub handed: bool,
}

impl Slot {
    /// The exchange. Only reachable through a guard that checked the generation.
    pub(crate) fn ex(&mut self) -> &mut dyn Exchange {
        let p = self.ex.as_ref().expect("checked by Ctx::lock").0;
        // SAFETY: see ExPtr; the mutex guard we are borrowed from serialises access.
        unsafe { &mut *p }
    }

    /// Hands the recorded status and headers to the exchange (once per start_response).
    pub(crate) fn hand_over(&mut self) {
        if !self.handed {
            self.handed = true;
            // The status buffer is put back: it is reused by the next request on this thread.
            let status = std::mem::take(&mut self.status);
            let headers = std::mem::take(&mut self.headers);
            let content_length = self.content_length;
            self.ex().start_response(&status, headers, content_length);
            self.status = status;
        }
    }

    pub(crate) fn head_sent(&mut self) -> bool {
        self.handed && self.ex().head_sent()
    }

    /// Writes body bytes (the head first), waiting for back-pressure with the GIL released.
    pub(crate) fn write(&mut self, py: Python<'_>, data: &[u8]) -> Result<(), Disconnected> {
        self.hand_over();
        let ex = self.ex();
        if ex.write_would_block(data.len()) {
            detached(py, || ex.write(data))
        } else {
            ex.write(data)
        }
    }

    /// Puts the head on the wire now (waitress's `write(b"")`), e.g. before raising for a bad
    /// body chunk, so the failure cuts the connection as it does in waitress.
    pub(crate) fn send_head(&mut self, py: Python<'_>) -> Result<(), Disconnected> {
        self.write(py, b"")
    }
}

/// Largest status buffer kept between requests.
const STATUS_KEEP: usize = 256;

/// Per-app-thread request context, reused across requests.
#[derive(Default)]
pub(crate) struct Ctx {
    slot: Mutex<Slot>,
}

/// A checked lock on the slot of one request generation.
pub(crate) struct SlotGuard<'a>(MutexGuard<'a, Slot>);

impl std::ops::Deref for SlotGuard<'_> {
    type Target = Slot;
    fn deref(&self) -> &Slot {
        &self.0
    }
}
impl std::ops::DerefMut for SlotGuard<'_> {
    fn deref_mut(&mut self) -> &mut Slot {
        &mut self.0
    }
}

impl Ctx {
    /// Publishes `ex` as the running request; returns its generation.
    pub(crate) fn begin(&self, ex: &mut dyn Exchange) -> u64 {
        let mut s = self.slot.lock().unwrap_or_else(|e| e.into_inner());
        let gen = s.gen.wrapping_add(1);
        let ptr: *mut (dyn Exchange + '_) = ex;
        // SAFETY: only the lifetime bound is erased; `end` (also run on unwind by the caller's
        // guard) clears the pointer before `ex`'s borrow ends.
        let ptr: *mut (dyn Exchange + 'static) = unsafe { std::mem::transmute(ptr) };
        let mut status = std::mem::take(&mut s.status);
        status.clear();
        *s = Slot {
            gen,
            ex: Some(ExPtr(ptr)),
            status,
            ..Slot::default()
        };
        gen
    }

    /// Ends the running request: every object of it becomes inert.
    pub(crate) fn end(&self) {
        let mut s = self.slot.lock().unwrap_or_else(|e| e.into_inner());
        s.ex = None;
        s.headers = Vec::new();
        // The status buffer is kept for the next request, unless an app made it large.
        s.status.clear();
        if s.status.capacity() > STATUS_KEEP {
            s.status = String::new();
        }
    }

    /// The slot, if `gen` is still the running request and no other thread is using it.
    pub(crate) fn lock(&self, gen: u64) -> PyResult<SlotGuard<'_>> {
        let s = match self.slot.try_lock() {
            Ok(s) => s,
            Err(TryLockError::Poisoned(e)) => e.into_inner(),
            Err(TryLockError::WouldBlock) => {
                return Err(PyRuntimeError::new_err(
                    "WSGI request objects used from two threads at once",
                ))
            }
        };
        if s.gen != gen || s.ex.is_none() {
            return Err(PyValueError::new_err(
                "the WSGI request this object belongs to has ended",
            ));
        }
        Ok(SlotGuard(s))
    }
}

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
            },
            |()| Input {
                ctx: ctx.clone(),
                gen: AtomicU64::new(gen),
                has_body: AtomicBool::new(has_body),
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

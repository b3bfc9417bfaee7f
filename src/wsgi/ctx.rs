//! The per-app-thread request context ([`Ctx`]): the running request's `Exchange`, published
//! for the length of `App::call` only, and the response state (`Slot`) that `start_response`,
//! `write`, `wsgi.input` and the task share. Every access names the request's generation, so an
//! object kept past its request gets an error instead of the next request's exchange. Also
//! [`detached`]: the exchange's blocking calls run with the GIL released.
use std::sync::{Mutex, MutexGuard, TryLockError};

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;

use crate::http::app::{Disconnected, Exchange};

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

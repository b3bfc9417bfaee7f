//! `wsgi.input`: read/readline/readlines/iteration over the request body the server completed
//! (in memory or spilled to a file). Not seekable (PEP 3333 does not ask for it); reads past
//! the end return `b""` as waitress's BytesIO/TemporaryFile do.
use std::io::{BufRead, Read};
use std::mem::MaybeUninit;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use pyo3::exceptions::{PyOSError, PyStopIteration};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};

use super::ctx::{detached, Ctx, SlotGuard};

/// `wsgi.input` of one request; inert once the request has ended (reused by the thread's next
/// request when nothing else holds it, see `response::reuse`).
#[pyclass(frozen, module = "waitressd")]
pub(crate) struct Input {
    pub(crate) ctx: Arc<Ctx>,
    pub(crate) gen: AtomicU64,
    /// The body may hold bytes (a length was given): reads release the GIL, since a spilled body
    /// is read from disk.
    pub(crate) has_body: AtomicBool,
}

/// How much one read takes: `None` = to the end.
fn limit(size: Option<isize>) -> Option<u64> {
    size.filter(|n| *n >= 0).map(|n| n as u64)
}

impl Input {
    fn with_body<T: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut dyn BufRead) -> std::io::Result<T>,
    ) -> PyResult<T> {
        let mut s: SlotGuard<'_> = self.ctx.lock(self.gen.load(Ordering::Relaxed))?;
        let body = s.ex().body();
        let r = if self.has_body.load(Ordering::Relaxed) {
            detached(py, || f(body))
        } else {
            f(body)
        };
        r.map_err(|e| PyOSError::new_err(format!("reading the request body: {e}")))
    }

    fn line(&self, py: Python<'_>, size: Option<isize>) -> PyResult<Vec<u8>> {
        let lim = limit(size);
        self.with_body(py, |body| {
            let mut buf = Vec::new();
            match lim {
                Some(n) => body.take(n).read_until(b'\n', &mut buf)?,
                None => body.read_until(b'\n', &mut buf)?,
            };
            Ok(buf)
        })
    }
}

#[pymethods]
impl Input {
    #[pyo3(signature = (size=None))]
    fn read<'py>(&self, py: Python<'py>, size: Option<isize>) -> PyResult<Bound<'py, PyBytes>> {
        let lim = limit(size);
        if lim == Some(0) {
            return Ok(PyBytes::new(py, b""));
        }
        // The body's length is known: the bytes object is made at its final size and filled
        // in place (no growing buffer, no second copy of the body).
        let mut s: SlotGuard<'_> = self.ctx.lock(self.gen.load(Ordering::Relaxed))?;
        let ex = s.ex();
        let rest = ex.body_remaining();
        let want = usize::try_from(lim.map_or(rest, |n| n.min(rest)))
            .map_err(|_| PyOSError::new_err("reading the request body: too large"))?;
        if want == 0 {
            return Ok(PyBytes::new(py, b""));
        }
        let slow = self.has_body.load(Ordering::Relaxed);
        let len = ffi::Py_ssize_t::try_from(want)
            .map_err(|_| PyOSError::new_err("reading the request body: too large"))?;
        // SAFETY: a NULL source makes CPython allocate a bytes object of `len` bytes without
        // initialising them; the new reference is owned, and NULL (MemoryError) is an error.
        let obj = unsafe {
            Bound::from_owned_ptr_or_err(py, ffi::PyBytes_FromStringAndSize(ptr::null(), len))?
        };
        // SAFETY: `obj` is a fresh bytes object of exactly `want` bytes that no other code has
        // seen; its buffer stays valid while `obj` lives, past the last use of `buf`. It is
        // only returned to Python once `read_body_uninit` wrote every byte.
        let buf = unsafe {
            std::slice::from_raw_parts_mut(
                ffi::PyBytes_AsString(obj.as_ptr()).cast::<MaybeUninit<u8>>(),
                want,
            )
        };
        let r = if slow {
            detached(py, || ex.read_body_uninit(buf))
        } else {
            ex.read_body_uninit(buf)
        };
        r.map_err(|e| PyOSError::new_err(format!("reading the request body: {e}")))?;
        Ok(obj.cast_into::<PyBytes>()?)
    }

    #[pyo3(signature = (size=None))]
    fn readline<'py>(&self, py: Python<'py>, size: Option<isize>) -> PyResult<Bound<'py, PyBytes>> {
        if limit(size) == Some(0) {
            return Ok(PyBytes::new(py, b""));
        }
        Ok(PyBytes::new(py, &self.line(py, size)?))
    }

    /// Lines until the end, or until `hint` bytes have been read (io.IOBase semantics).
    #[pyo3(signature = (hint=None))]
    fn readlines<'py>(&self, py: Python<'py>, hint: Option<isize>) -> PyResult<Bound<'py, PyList>> {
        let hint = limit(hint).filter(|h| *h > 0);
        let out = PyList::empty(py);
        let mut total = 0u64;
        loop {
            let line = self.line(py, None)?;
            if line.is_empty() {
                break;
            }
            total += line.len() as u64;
            out.append(PyBytes::new(py, &line))?;
            if hint.is_some_and(|h| total >= h) {
                break;
            }
        }
        Ok(out)
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let line = self.line(py, None)?;
        if line.is_empty() {
            return Err(PyStopIteration::new_err(()));
        }
        Ok(PyBytes::new(py, &line))
    }
}

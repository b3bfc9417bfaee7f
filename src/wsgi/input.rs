//! `wsgi.input`: read/readline/readlines/iteration over the request body the server completed
//! (in memory or spilled to a file), and the rest of the file API apps use on waitress's
//! `BytesIO` (seek/tell to read the body again, readinto, read1, close, `with`); reads past the
//! end return `b""` as waitress's BytesIO/TemporaryFile do.
use std::io::{BufRead, Read};
use std::mem::MaybeUninit;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use pyo3::exceptions::{PyOSError, PyStopIteration, PyTypeError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyMemoryView};

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
    /// `close()` was called: reads raise ValueError, as on a closed BytesIO.
    pub(crate) closed: AtomicBool,
}

/// How much one read takes: `None` = to the end.
fn limit(size: Option<isize>) -> Option<u64> {
    size.filter(|n| *n >= 0).map(|n| n as u64)
}

impl Input {
    /// The running request's slot, unless this input was closed.
    fn slot(&self) -> PyResult<SlotGuard<'_>> {
        if self.closed.load(Ordering::Relaxed) {
            return Err(PyValueError::new_err("I/O operation on closed file."));
        }
        self.ctx.lock(self.gen.load(Ordering::Relaxed))
    }

    fn with_body<T: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut dyn BufRead) -> std::io::Result<T>,
    ) -> PyResult<T> {
        let mut s: SlotGuard<'_> = self.slot()?;
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
        let mut s: SlotGuard<'_> = self.slot()?;
        if lim == Some(0) {
            return Ok(PyBytes::new(py, b""));
        }
        // The body's length is known: the bytes object is made at its final size and filled
        // in place (no growing buffer, no second copy of the body).
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

    /// `BufferedIOBase.read1`: one read, which here is `read`.
    #[pyo3(signature = (size=None))]
    fn read1<'py>(&self, py: Python<'py>, size: Option<isize>) -> PyResult<Bound<'py, PyBytes>> {
        self.read(py, size)
    }

    /// Reads into a writable bytes-like object; returns how many bytes were read (0 at the end).
    fn readinto(&self, py: Python<'_>, buffer: &Bound<'_, PyAny>) -> PyResult<usize> {
        let view = PyMemoryView::from(buffer)?.call_method1("cast", ("B",))?;
        // Checked before reading, as BytesIO does: failing to store would lose what was read.
        if view.getattr("readonly")?.is_truthy()? {
            return Err(PyTypeError::new_err(format!(
                "readinto() argument must be read-write bytes-like object, not {}",
                buffer.get_type().name()?
            )));
        }
        let want = view.len()?;
        let data = self.read(py, Some(isize::try_from(want).unwrap_or(isize::MAX)))?;
        let n = data.as_bytes().len();
        view.set_item(pyo3::types::PySlice::new(py, 0, n as isize, 1), data)?;
        Ok(n)
    }

    #[pyo3(signature = (size=None))]
    fn readline<'py>(&self, py: Python<'py>, size: Option<isize>) -> PyResult<Bound<'py, PyBytes>> {
        if limit(size) == Some(0) {
            self.slot()?;
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

    /// Moves the read position (io semantics: `whence` 0 from the start, 1 from the current
    /// position, 2 from the end); returns the new position. Past the end reads as the end.
    #[pyo3(signature = (offset, whence=0))]
    fn seek(&self, offset: i64, whence: i32) -> PyResult<u64> {
        let mut s = self.slot()?;
        let ex = s.ex();
        let pos = ex.body_position();
        let len = pos + ex.body_remaining();
        let base = match whence {
            0 if offset < 0 => {
                return Err(PyValueError::new_err(format!(
                    "negative seek value {offset}"
                )))
            }
            0 => 0,
            1 => pos,
            2 => len,
            _ => {
                return Err(PyValueError::new_err(format!(
                    "invalid whence ({whence}, should be 0, 1 or 2)"
                )))
            }
        };
        let to = base.saturating_add_signed(offset).min(len);
        ex.seek_body(to);
        Ok(to)
    }

    fn tell(&self) -> PyResult<u64> {
        Ok(self.slot()?.ex().body_position())
    }

    fn seekable(&self) -> PyResult<bool> {
        self.slot().map(|_| true)
    }

    fn readable(&self) -> PyResult<bool> {
        self.slot().map(|_| true)
    }

    fn writable(&self) -> PyResult<bool> {
        self.slot().map(|_| false)
    }

    fn isatty(&self) -> PyResult<bool> {
        self.slot().map(|_| false)
    }

    fn flush(&self) -> PyResult<()> {
        self.slot().map(|_| ())
    }

    /// The body is not an OS file (a spilled one is private to the server).
    fn fileno(&self, py: Python<'_>) -> PyResult<()> {
        self.slot()?;
        let unsupported = py.import("io")?.getattr("UnsupportedOperation")?;
        Err(PyErr::from_value(unsupported.call1(("fileno",))?))
    }

    /// Further reads raise ValueError (the body itself is the server's, freed after the
    /// request).
    fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
    }

    #[getter]
    fn closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    fn __enter__(slf: PyRef<'_, Self>) -> PyResult<PyRef<'_, Self>> {
        slf.slot()?;
        Ok(slf)
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, _args: &Bound<'_, pyo3::types::PyTuple>) {
        self.close();
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyResult<PyRef<'_, Self>> {
        slf.slot()?;
        Ok(slf)
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let line = self.line(py, None)?;
        if line.is_empty() {
            return Err(PyStopIteration::new_err(()));
        }
        Ok(PyBytes::new(py, &line))
    }
}

//! The WSGI environ (waitress §3.8), built fast: interned keys, a per-app template of the
//! constant entries copied per request, latin-1 values (PEP 3333 "native strings"), and
//! per-thread memos of values that repeat from request to request.
use std::collections::HashMap;
use std::io::Write as _;

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple};

use crate::http::{uri, Request, Version};

/// Latin-1 decoding, as PEP 3333 requires for environ strings (pyo3's `&str` path is UTF-8).
pub(crate) fn latin1<'py>(py: Python<'py>, b: &[u8]) -> PyResult<Bound<'py, PyString>> {
    // SAFETY: the pointer and length describe a live slice; PyUnicode_DecodeLatin1 returns a new
    // reference to a str (or NULL with an exception set, turned into Err).
    unsafe {
        let ptr = ffi::PyUnicode_DecodeLatin1(
            b.as_ptr().cast(),
            b.len() as ffi::Py_ssize_t,
            std::ptr::null(),
        );
        Ok(Bound::from_owned_ptr_or_err(py, ptr)?.cast_into_unchecked())
    }
}

fn intern(py: Python<'_>, s: &str) -> Py<PyString> {
    PyString::intern(py, s).unbind()
}

/// Interned environ keys set per request.
pub(crate) struct Keys {
    request_method: Py<PyString>,
    path_info: Py<PyString>,
    query_string: Py<PyString>,
    request_uri: Py<PyString>,
    server_protocol: Py<PyString>,
    server_name: Py<PyString>,
    server_port: Py<PyString>,
    remote_addr: Py<PyString>,
    remote_host: Py<PyString>,
    remote_port: Py<PyString>,
    content_length: Py<PyString>,
    content_type: Py<PyString>,
    url_scheme: Py<PyString>,
    pub(crate) input: Py<PyString>,
    pub(crate) client_disconnected: Py<PyString>,
    /// TLS connections only: `HTTPS` (and its value `on`), `SSL_CLIENT_VERIFY`, `SSL_CLIENT_S_DN`.
    https: Py<PyString>,
    on: Py<PyString>,
    ssl_client_verify: Py<PyString>,
    ssl_client_s_dn: Py<PyString>,
}

impl Keys {
    /// The keys present in every environ (CONTENT_* only when the request has them).
    fn always(&self) -> [&Py<PyString>; 13] {
        [
            &self.request_method,
            &self.path_info,
            &self.query_string,
            &self.request_uri,
            &self.server_protocol,
            &self.server_name,
            &self.server_port,
            &self.remote_addr,
            &self.remote_host,
            &self.remote_port,
            &self.url_scheme,
            &self.input,
            &self.client_disconnected,
        ]
    }
}

/// The per-app part of every environ.
pub(crate) struct Template {
    dict: Py<PyDict>,
    pub(crate) keys: Keys,
    empty: Py<PyString>,
    http10: Py<PyString>,
    http11: Py<PyString>,
    /// `url_prefix` as latin-1 bytes (None: it has characters no request path can match).
    prefix: Option<Vec<u8>>,
}

/// What the template needs besides the options.
pub(crate) struct Constants<'py> {
    pub url_prefix: &'py str,
    pub ident: Option<&'py str>,
    pub multiprocess: bool,
    pub errors: Bound<'py, PyAny>,
    pub file_wrapper: Bound<'py, PyAny>,
}

impl Template {
    pub(crate) fn new(py: Python<'_>, c: Constants<'_>) -> PyResult<Template> {
        let dict = PyDict::new(py);
        dict.set_item(intern(py, "SCRIPT_NAME"), c.url_prefix)?;
        dict.set_item(intern(py, "SERVER_SOFTWARE"), c.ident)?;
        dict.set_item(intern(py, "wsgi.version"), PyTuple::new(py, [1, 0])?)?;
        dict.set_item(intern(py, "wsgi.errors"), c.errors)?;
        dict.set_item(intern(py, "wsgi.multithread"), true)?;
        dict.set_item(intern(py, "wsgi.multiprocess"), c.multiprocess)?;
        dict.set_item(intern(py, "wsgi.run_once"), false)?;
        dict.set_item(intern(py, "wsgi.file_wrapper"), c.file_wrapper)?;
        dict.set_item(intern(py, "wsgi.input_terminated"), true)?;
        let prefix = c
            .url_prefix
            .chars()
            .map(|ch| u8::try_from(u32::from(ch)).ok())
            .collect();
        let keys = Keys {
            request_method: intern(py, "REQUEST_METHOD"),
            path_info: intern(py, "PATH_INFO"),
            query_string: intern(py, "QUERY_STRING"),
            request_uri: intern(py, "REQUEST_URI"),
            server_protocol: intern(py, "SERVER_PROTOCOL"),
            server_name: intern(py, "SERVER_NAME"),
            server_port: intern(py, "SERVER_PORT"),
            remote_addr: intern(py, "REMOTE_ADDR"),
            remote_host: intern(py, "REMOTE_HOST"),
            remote_port: intern(py, "REMOTE_PORT"),
            content_length: intern(py, "CONTENT_LENGTH"),
            content_type: intern(py, "CONTENT_TYPE"),
            url_scheme: intern(py, "wsgi.url_scheme"),
            input: intern(py, "wsgi.input"),
            client_disconnected: intern(py, "waitress.client_disconnected"),
            https: intern(py, "HTTPS"),
            on: intern(py, "on"),
            ssl_client_verify: intern(py, "SSL_CLIENT_VERIFY"),
            ssl_client_s_dn: intern(py, "SSL_CLIENT_S_DN"),
        };
        // Placeholders for the keys every request sets: the per-request copy of the template is
        // then a flat clone already sized for them (and for the HTTP_* keys that follow), and
        // setting them replaces values instead of inserting and resizing.
        for k in keys.always() {
            dict.set_item(k.bind(py), py.None())?;
        }
        Ok(Template {
            dict: dict.unbind(),
            keys,
            empty: intern(py, ""),
            http10: intern(py, "HTTP/1.0"),
            http11: intern(py, "HTTP/1.1"),
            prefix,
        })
    }

    /// The environ of one request, without `wsgi.input` and `waitress.client_disconnected`
    /// (the caller adds its per-request objects).
    pub(crate) fn build<'py>(
        &self,
        py: Python<'py>,
        req: &Request,
        memo: &mut ThreadMemo,
    ) -> PyResult<Bound<'py, PyDict>> {
        let k = &self.keys;
        // SAFETY: PyDict_Copy of a dict we own returns a new dict reference (or NULL + error).
        let env: Bound<'py, PyDict> = unsafe {
            Bound::from_owned_ptr_or_err(py, ffi::PyDict_Copy(self.dict.as_ptr()))?
                .cast_into_unchecked()
        };
        env.set_item(
            k.request_method.bind(py),
            memo.method.get(py, req.method())?,
        )?;
        env.set_item(k.path_info.bind(py), self.path_info(py, req.path())?)?;
        env.set_item(k.query_string.bind(py), self.str_or_empty(py, req.query())?)?;
        env.set_item(k.request_uri.bind(py), latin1(py, req.target())?)?;
        let proto = match req.version() {
            Version::Http10 => &self.http10,
            Version::Http11 => &self.http11,
        };
        env.set_item(k.server_protocol.bind(py), proto.bind(py))?;
        let o = &req.origin;
        env.set_item(
            k.server_name.bind(py),
            memo.server_name.get(py, o.server_name.as_bytes())?,
        )?;
        env.set_item(
            k.server_port.bind(py),
            memo.server_port.get(py, o.server_port.as_bytes())?,
        )?;
        env.set_item(
            k.url_scheme.bind(py),
            memo.url_scheme.get(py, o.url_scheme.as_bytes())?,
        )?;
        if let Some(t) = &o.tls {
            env.set_item(k.https.bind(py), k.on.bind(py))?;
            env.set_item(k.ssl_client_verify.bind(py), t.client_verify)?;
            if let Some(dn) = &t.client_s_dn {
                env.set_item(k.ssl_client_s_dn.bind(py), dn)?;
            }
        }
        let addr = memo.remote_addr.get(py, o.remote_addr.as_bytes())?;
        env.set_item(k.remote_addr.bind(py), &addr)?;
        env.set_item(k.remote_host.bind(py), &addr)?;
        env.set_item(
            k.remote_port.bind(py),
            latin1(py, o.remote_port.as_bytes())?,
        )?;
        if let Some(n) = req.content_length() {
            let mut buf = [0u8; 20];
            let mut cur = std::io::Cursor::new(&mut buf[..]);
            let _ = write!(cur, "{n}");
            let len = cur.position() as usize;
            env.set_item(k.content_length.bind(py), latin1(py, &buf[..len])?)?;
        }
        for (name, value) in req.headers() {
            if name.eq_ignore_ascii_case(b"content-length") {
                // The (de-chunked) body length above is what the app reads (waitress §3.8).
                continue;
            }
            let value = latin1(py, value)?;
            if name.eq_ignore_ascii_case(b"content-type") {
                env.set_item(k.content_type.bind(py), value)?;
            } else {
                env.set_item(memo.header_key(py, name), value)?;
            }
        }
        Ok(env)
    }

    fn str_or_empty<'py>(&self, py: Python<'py>, b: &[u8]) -> PyResult<Bound<'py, PyString>> {
        if b.is_empty() {
            Ok(self.empty.bind(py).clone())
        } else {
            latin1(py, b)
        }
    }

    /// PATH_INFO after `url_prefix` handling (waitress task.py): equal to the prefix → "";
    /// starting with prefix + "/" → the rest; otherwise unchanged.
    fn path_info<'py>(&self, py: Python<'py>, path: &[u8]) -> PyResult<Bound<'py, PyString>> {
        match self.prefix.as_deref() {
            Some(p) if !p.is_empty() => self.str_or_empty(py, uri::path_info(path, p)),
            _ => self.str_or_empty(py, path),
        }
    }
}

/// Bounded memo of values that repeat across requests on one thread (methods, server names,
/// client addresses): the same str object is reused instead of decoding again.
#[derive(Default)]
pub(crate) struct Memo {
    slots: Vec<(Vec<u8>, Py<PyString>)>,
    next: usize,
}

const MEMO_SLOTS: usize = 8;

impl Memo {
    fn get<'py>(&mut self, py: Python<'py>, bytes: &[u8]) -> PyResult<Bound<'py, PyString>> {
        if let Some((_, s)) = self.slots.iter().find(|(k, _)| k.as_slice() == bytes) {
            return Ok(s.bind(py).clone());
        }
        let s = latin1(py, bytes)?;
        let entry = (bytes.to_vec(), s.clone().unbind());
        if self.slots.len() < MEMO_SLOTS {
            self.slots.push(entry);
        } else {
            self.slots[self.next] = entry;
            self.next = (self.next + 1) % MEMO_SLOTS;
        }
        Ok(s)
    }
}

/// Per-app-thread caches: memos and the `HTTP_*` keys of header names seen so far.
#[derive(Default)]
pub(crate) struct ThreadMemo {
    method: Memo,
    server_name: Memo,
    server_port: Memo,
    url_scheme: Memo,
    remote_addr: Memo,
    headers: HashMap<Vec<u8>, Py<PyString>>,
}

/// Header names cached per thread; more distinct names than this are converted per request
/// (a client sending random names must not grow memory).
const HEADER_KEYS_MAX: usize = 256;

impl ThreadMemo {
    /// `HTTP_<NAME>`: upper-cased, `-` → `_` (waitress), interned and cached by raw name.
    fn header_key<'py>(&mut self, py: Python<'py>, name: &[u8]) -> Bound<'py, PyString> {
        if let Some(k) = self.headers.get(name) {
            return k.bind(py).clone();
        }
        let mut key = String::with_capacity(5 + name.len());
        key.push_str("HTTP_");
        for &b in name {
            key.push(match b {
                b'-' => '_',
                _ => char::from(b.to_ascii_uppercase()),
            });
        }
        let k = PyString::intern(py, &key);
        if self.headers.len() < HEADER_KEYS_MAX {
            self.headers.insert(name.to_vec(), k.clone().unbind());
        }
        k
    }
}

#[cfg(test)]
#[path = "environ_tests.rs"]
mod tests;

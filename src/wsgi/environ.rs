//! The WSGI environ (waitress §3.8), built fast: interned keys, a per-app template of the
//! constant entries copied per request, latin-1 values (PEP 3333 "native strings"), and
//! per-thread memos of values that repeat from request to request.
use std::collections::HashMap;
use std::sync::Arc;

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple};

use crate::http::{uri, Request, TlsInfo, Version};

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
    ///
    /// The copy starts from a per-thread base: the template with the entries that repeat across
    /// clients (method, protocol, server name and port, scheme, TLS) already set, so a request
    /// sets only the entries that change (path, query, client address and port, headers). The
    /// client's address is not part of the base: behind a proxy every end user has their own.
    pub(crate) fn build<'py>(
        &self,
        py: Python<'py>,
        req: &Request,
        memo: &mut ThreadMemo,
    ) -> PyResult<Bound<'py, PyDict>> {
        let k = &self.keys;
        let base = memo.base(py, self, req)?;
        // SAFETY: PyDict_Copy of a dict we own returns a new dict reference (or NULL + error).
        let env: Bound<'py, PyDict> = unsafe {
            Bound::from_owned_ptr_or_err(py, ffi::PyDict_Copy(base.as_ptr()))?.cast_into_unchecked()
        };
        let target = req.target();
        let uri = memo.target.get(py, target)?;
        let path = self.path_info_bytes(req.path());
        if path == target {
            put(&env, &k.path_info, &uri)?;
        } else if path.is_empty() {
            put(&env, &k.path_info, &self.empty)?;
        } else {
            put(&env, &k.path_info, &memo.path.get(py, path)?)?;
        }
        put(&env, &k.request_uri, &uri)?;
        let query = req.query();
        if query.is_empty() {
            put(&env, &k.query_string, &self.empty)?;
        } else {
            put(&env, &k.query_string, &latin1(py, query)?.unbind())?;
        }
        let addr = memo
            .remote_addr
            .get(py, req.origin.remote_addr.as_bytes())?
            .unbind();
        put(&env, &k.remote_addr, &addr)?;
        put(&env, &k.remote_host, &addr)?;
        let port = memo
            .remote_port
            .get(py, req.origin.remote_port.as_bytes())?;
        put(&env, &k.remote_port, &port)?;
        if let Some(n) = req.content_length() {
            let mut digits = [0u8; 20];
            let n = memo
                .content_length
                .get(py, crate::http::parse::decimal(n, &mut digits))?;
            put(&env, &k.content_length, &n)?;
        }
        for (name, value) in req.headers() {
            let h = memo.header(py, name);
            let key = match &h.kind {
                // The (de-chunked) body length above is what the app reads (waitress §3.8).
                HeaderKind::ContentLength => continue,
                HeaderKind::ContentType => &k.content_type,
                HeaderKind::Http(key) => key,
            };
            put(&env, key, &h.value.get(py, value)?)?;
        }
        Ok(env)
    }

    /// The per-connection entries of the environ, set on a copy of the template (what
    /// `ThreadMemo::base` caches).
    fn base(&self, py: Python<'_>, req: &Request, memo: &mut ThreadMemo) -> PyResult<Py<PyDict>> {
        let k = &self.keys;
        // SAFETY: as in `build`.
        let env: Bound<'_, PyDict> = unsafe {
            Bound::from_owned_ptr_or_err(py, ffi::PyDict_Copy(self.dict.as_ptr()))?
                .cast_into_unchecked()
        };
        env.set_item(
            k.request_method.bind(py),
            memo.method.get(py, req.method())?,
        )?;
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
        Ok(env.unbind())
    }

    /// PATH_INFO after `url_prefix` handling (waitress task.py): equal to the prefix → "";
    /// starting with prefix + "/" → the rest; otherwise unchanged.
    fn path_info_bytes<'a>(&self, path: &'a [u8]) -> &'a [u8] {
        match self.prefix.as_deref() {
            Some(p) if !p.is_empty() => uri::path_info(path, p),
            _ => path,
        }
    }
}

/// Adds `item` to a cache of at most `max` entries, replacing the oldest once full (`next`
/// is the oldest's index then).
fn ring_push<T>(v: &mut Vec<T>, next: &mut usize, max: usize, item: T) {
    if v.len() < max {
        v.push(item);
    } else {
        v[*next] = item;
        *next = (*next + 1) % max;
    }
}

/// `env[key] = value` straight through the C API (no conversions, no `Bound` built). The dict
/// takes its own references to `key` and `value`; a value from `LastStr::get` is an owned
/// reference besides (one incref when it is cloned from the memo, one decref when the caller
/// drops it).
fn put(env: &Bound<'_, PyDict>, key: &Py<PyString>, value: &Py<PyString>) -> PyResult<()> {
    // SAFETY: all three are live objects; PyDict_SetItem takes its own references and returns
    // -1 with an exception set on failure.
    if unsafe { ffi::PyDict_SetItem(env.as_ptr(), key.as_ptr(), value.as_ptr()) } < 0 {
        return Err(PyErr::fetch(env.py()));
    }
    Ok(())
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
        ring_push(&mut self.slots, &mut self.next, MEMO_SLOTS, entry);
        Ok(s)
    }
}

/// The last value seen in one place (the request-target, a header's value...) and its str:
/// requests on a connection mostly repeat them, and a hit costs a byte comparison instead of a
/// decode, an allocation and its free.
#[derive(Default)]
pub(crate) struct LastStr {
    bytes: Vec<u8>,
    s: Option<Py<PyString>>,
}

/// Longer values are decoded every time (the memo must not keep big values alive).
const LAST_STR_MAX: usize = 256;

impl LastStr {
    fn get(&mut self, py: Python<'_>, bytes: &[u8]) -> PyResult<Py<PyString>> {
        if let Some(s) = &self.s {
            if self.bytes == bytes {
                return Ok(s.clone_ref(py));
            }
        }
        let s = latin1(py, bytes)?.unbind();
        self.bytes.clear();
        if bytes.len() <= LAST_STR_MAX {
            self.bytes.extend_from_slice(bytes);
            self.s = Some(s.clone_ref(py));
        } else {
            self.s = None;
        }
        Ok(s)
    }
}

/// Where a header goes in the environ, decided once per raw name.
enum HeaderKind {
    /// `Content-Length`: the environ has the decoded body length instead.
    ContentLength,
    ContentType,
    /// `HTTP_<NAME>`.
    Http(Py<PyString>),
}

/// One header name's environ key and its last value.
pub(crate) struct HeaderSlot {
    kind: HeaderKind,
    value: LastStr,
}

/// Per-app-thread caches: memos, the per-connection base dicts and the environ keys of header
/// names seen so far.
#[derive(Default)]
pub(crate) struct ThreadMemo {
    method: Memo,
    server_name: Memo,
    server_port: Memo,
    url_scheme: Memo,
    remote_addr: Memo,
    target: LastStr,
    path: LastStr,
    remote_port: LastStr,
    content_length: LastStr,
    bases: Vec<Base>,
    next_base: usize,
    /// Raw header name → index in `slots`.
    /// foldhash, randomly seeded: std's SipHash cost more than the rest of a lookup for names
    /// this short; the seed and `HEADER_KEYS_MAX` bound what crafted colliding names cost.
    headers: HashMap<Vec<u8>, usize, foldhash::fast::RandomState>,
    slots: Vec<HeaderSlot>,
    /// A name not cached (the cache is full): converted for this request only.
    spare: Option<HeaderSlot>,
}

/// A template copy with the per-connection entries set, and what they were set from.
struct Base {
    /// The template it was copied from (held, so its address is not reused by another).
    template: Py<PyDict>,
    method: Vec<u8>,
    version: Version,
    server_name: String,
    server_port: String,
    url_scheme: String,
    tls: Option<Arc<TlsInfo>>,
    dict: Py<PyDict>,
}

impl Base {
    fn matches(&self, template: &Template, req: &Request) -> bool {
        let o = &req.origin;
        self.template.is(&template.dict)
            && self.version == req.version()
            && self.method == req.method()
            && self.server_port == o.server_port
            && self.server_name == o.server_name
            && self.url_scheme == o.url_scheme
            && self.tls == o.tls
    }
}

/// Base dicts kept per thread (one per listener, scheme and method in use, as a rule).
const BASES_MAX: usize = 4;

/// Header names cached per thread; more distinct names than this are converted per request
/// (a client sending random names must not grow memory).
const HEADER_KEYS_MAX: usize = 256;

/// Longest header name cached: a longer one is converted per request. Real names are short;
/// without this bound, names as long as `max_request_header_size` filled every thread's
/// cache with twice their size each (4 threads: 400 MiB per worker, kept for its life).
const HEADER_NAME_CACHED_MAX: usize = 128;

impl ThreadMemo {
    /// The base dict for `req`: cached, or built now (replacing the oldest).
    fn base(&mut self, py: Python<'_>, t: &Template, req: &Request) -> PyResult<Py<PyDict>> {
        if let Some(b) = self.bases.iter().find(|b| b.matches(t, req)) {
            return Ok(b.dict.clone_ref(py));
        }
        let dict = t.base(py, req, self)?;
        let o = &req.origin;
        let base = Base {
            template: t.dict.clone_ref(py),
            method: req.method().to_vec(),
            version: req.version(),
            server_name: o.server_name.clone(),
            server_port: o.server_port.clone(),
            url_scheme: o.url_scheme.clone(),
            tls: o.tls.clone(),
            dict: dict.clone_ref(py),
        };
        ring_push(&mut self.bases, &mut self.next_base, BASES_MAX, base);
        Ok(dict)
    }

    /// The environ key of header `name` (cached by raw name) and its last value.
    fn header(&mut self, py: Python<'_>, name: &[u8]) -> &mut HeaderSlot {
        if let Some(&i) = self.headers.get(name) {
            return &mut self.slots[i];
        }
        let cached = self.slots.len() < HEADER_KEYS_MAX && name.len() <= HEADER_NAME_CACHED_MAX;
        let kind = if name.eq_ignore_ascii_case(b"content-length") {
            HeaderKind::ContentLength
        } else if name.eq_ignore_ascii_case(b"content-type") {
            HeaderKind::ContentType
        } else {
            HeaderKind::Http(http_key(py, name, cached))
        };
        let slot = HeaderSlot {
            kind,
            value: LastStr::default(),
        };
        if cached {
            self.headers.insert(name.to_vec(), self.slots.len());
            self.slots.push(slot);
            self.slots.last_mut().expect("just pushed")
        } else {
            self.spare.insert(slot)
        }
    }
}

/// `HTTP_<NAME>`: upper-cased, `-` → `_` (waitress); interned when `cached` (kept for the
/// thread's life anyway). A name converted for one request only is never interned: CPython
/// 3.12 makes every interned string immortal, so clients sending new names grew each worker
/// for good (200,000 names of 200 bytes: 58 MiB).
fn http_key(py: Python<'_>, name: &[u8], cached: bool) -> Py<PyString> {
    let mut key = Vec::with_capacity(5 + name.len());
    crate::http::environ_key(name, &mut key);
    // Header names are tokens (ASCII): the conversion never replaces anything.
    let key = String::from_utf8_lossy(&key);
    if cached {
        PyString::intern(py, &key).unbind()
    } else {
        PyString::new(py, &key).unbind()
    }
}

#[cfg(test)]
#[path = "environ_tests.rs"]
mod tests;

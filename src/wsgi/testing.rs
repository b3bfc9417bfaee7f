//! Test support: one interpreter per test process (through the real init path) and an
//! in-memory `Exchange` that records what the bridge asks of the server.
use std::ffi::CString;
use std::io::{Cursor, Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Once};

use pyo3::prelude::*;
use pyo3::types::PyModule;

use super::interpreter;
use super::task::WsgiApp;
use super::WsgiOptions;
use crate::http::app::{App, AppFailure, Disconnected, Exchange};
use crate::http::{Origin, Request, RequestParser};
use crate::wsgi::AppSpec;

static INIT: Once = Once::new();

/// Runs `f` attached to the test process's interpreter (started once, as a worker would).
pub(crate) fn python<R>(f: impl for<'py> FnOnce(Python<'py>) -> R) -> R {
    INIT.call_once(|| {
        interpreter::start(Path::new(interpreter::BASE_PYTHON)).expect("start python");
    });
    Python::attach(f)
}

/// A request as the http layer hands it over (HTTP/1.1, `Host: test`, loopback origin).
pub(crate) fn request(method: &str, target: &str, headers: &[(&str, &str)]) -> Request {
    let mut raw = format!("{method} {target} HTTP/1.1\r\nHost: test\r\n");
    for (k, v) in headers {
        raw.push_str(&format!("{k}: {v}\r\n"));
    }
    raw.push_str("\r\n");
    let (mut req, _, _) =
        RequestParser::parse_complete(raw.as_bytes()).expect("test request parses");
    req.origin = Origin {
        peer_ip: Some(std::net::Ipv4Addr::LOCALHOST.into()),
        remote_addr: "127.0.0.1".into(),
        remote_port: "5555".into(),
        server_name: "waitress.invalid".into(),
        server_port: "8080".into(),
        url_scheme: "http".into(),
        tls: None,
    };
    req
}

/// What the bridge did to one exchange.
#[derive(Default)]
pub(crate) struct Mock {
    pub req: Request,
    pub body: Cursor<Vec<u8>>,
    /// Every `start_response` hand-over.
    pub starts: Vec<(String, Vec<(String, String)>)>,
    /// Every `write`, including empty ones.
    pub writes: Vec<Vec<u8>>,
    pub head_sent: bool,
    /// `send_file` calls: (offset, len, the bytes at that range).
    pub files: Vec<(u64, u64, Vec<u8>)>,
    pub gone: Arc<AtomicBool>,
    /// Writes fail as if the client had gone.
    pub disconnected: bool,
    /// `write_would_block` answer.
    pub would_block: bool,
    /// `write` panics (a bug in the server side must not kill the app thread).
    pub panic_on_write: bool,
    /// What `recycled_headers` hands out (once).
    pub recycled: Vec<(String, String)>,
}

impl Mock {
    pub fn new(req: Request, body: &[u8]) -> Mock {
        let mut req = req;
        if !body.is_empty() {
            req.content_length = Some(body.len() as u64);
        }
        Mock {
            req,
            body: Cursor::new(body.to_vec()),
            ..Mock::default()
        }
    }

    /// The body bytes as a client would see them (writes + sent files).
    pub fn sent(&self) -> Vec<u8> {
        let mut out: Vec<u8> = self.writes.concat();
        for (_, _, data) in &self.files {
            out.extend_from_slice(data);
        }
        out
    }

    /// The last handed-over status and headers.
    pub fn head(&self) -> (&str, &[(String, String)]) {
        let (s, h) = self.starts.last().expect("start_response handed over");
        (s, h)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.head()
            .1
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl Exchange for Mock {
    fn request(&self) -> &Request {
        &self.req
    }
    fn body(&mut self) -> &mut dyn std::io::BufRead {
        &mut self.body
    }
    fn body_remaining(&self) -> u64 {
        (self.body.get_ref().len() as u64).saturating_sub(self.body.position())
    }
    fn seek_body(&mut self, to: u64) {
        let len = self.body.get_ref().len() as u64;
        self.body.set_position(to.min(len));
    }
    fn body_position(&self) -> u64 {
        self.body.position()
    }
    fn start_response(
        &mut self,
        status: &str,
        headers: Vec<(String, String)>,
        _content_length: Option<u64>,
    ) {
        assert!(!self.head_sent, "start_response after the head was sent");
        self.starts.push((status.to_string(), headers));
    }
    fn recycled_headers(&mut self) -> Vec<(String, String)> {
        std::mem::take(&mut self.recycled)
    }
    fn head_sent(&self) -> bool {
        self.head_sent
    }
    fn write(&mut self, data: &[u8]) -> Result<(), Disconnected> {
        assert!(!self.starts.is_empty(), "write before start_response");
        if self.disconnected {
            return Err(Disconnected);
        }
        if self.panic_on_write {
            panic!("mock write panics");
        }
        self.head_sent = true;
        self.writes.push(data.to_vec());
        Ok(())
    }
    fn write_would_block(&self, _len: usize) -> bool {
        self.would_block
    }
    fn send_file(
        &mut self,
        mut file: std::fs::File,
        offset: u64,
        len: u64,
    ) -> Result<(), Disconnected> {
        assert!(!self.starts.is_empty(), "send_file before start_response");
        self.head_sent = true;
        let mut data = vec![0; len as usize];
        file.seek(SeekFrom::Start(offset)).unwrap();
        file.read_exact(&mut data).unwrap();
        self.files.push((offset, len, data));
        Ok(())
    }
    fn disconnected(&self) -> Arc<AtomicBool> {
        self.gone.clone()
    }
}

pub(crate) fn options() -> WsgiOptions {
    WsgiOptions {
        app: AppSpec::Module {
            target: "test:app".into(),
            call: false,
        },
        expose_tracebacks: true,
        ident: Some("waitress".into()),
        url_prefix: String::new(),
        virtualenv: None,
        multiprocess: false,
        log_config: None,
    }
}

/// A bridge over `app` defined in Python `code`, and the module (to inspect its globals).
pub(crate) fn app_from(code: &str, opts: &WsgiOptions) -> (WsgiApp, Py<PyModule>) {
    python(|py| {
        let helper = super::helper::helper(py).unwrap();
        // A fresh module name each time: from_code re-executes into sys.modules[name].
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = CString::new(format!("fixture{n}")).unwrap();
        let file = CString::new(format!("fixture{n}.py")).unwrap();
        let code = CString::new(code).unwrap();
        let m = PyModule::from_code(py, &code, &file, &name).unwrap();
        let app = WsgiApp::new(py, m.getattr("app").unwrap(), helper, opts).unwrap();
        (app, m.unbind())
    })
}

/// `repr()` of a global of a fixture module.
pub(crate) fn global(m: &Py<PyModule>, name: &str) -> String {
    python(|py| {
        m.bind(py)
            .getattr(name)
            .unwrap()
            .repr()
            .unwrap()
            .to_string()
    })
}

/// Runs one request through the bridge on this thread.
pub(crate) fn call(app: &WsgiApp, mock: &mut Mock) -> Result<(), AppFailure> {
    python(|_| ());
    app.call(mock)
}

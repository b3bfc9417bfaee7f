//! Integration tests: wsgi. `conformance`: fixture apps (tests/apps/wsgi) served by the real
//! event loop and the real WSGI bridge in this process over loopback sockets (waitress's
//! functional-test behaviours). `binary`: real Pyramid/Flask apps, the example, load failures
//! and the venv under a bare environment, through the real `waitressd` binary; `shapes`: every
//! response shape × framing × transport on the binary; `status`: an app's 1xx status on the
//! binary; `probed` and `wsgiapi`: what differential
//! probes against waitress 3.0.2 found apps depend on. Shared client helpers below.
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::thread::JoinHandle;
use std::time::Duration;

use waitressd::config::AppSpec;
use waitressd::server::{Server, ServerOptions, StopHandle};
use waitressd::wsgi::{self, WsgiOptions};

use crate::util;

mod binary;
mod conformance;
mod probed;
mod shapes;
mod status;
mod wsgiapi;

/// A server running in this process (event loop thread + app threads) over one fixture app.
struct Served {
    addr: String,
    stop: StopHandle,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.stop.immediate();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Serves `tests.apps.wsgi.<target>` (waitress-serve style: the working directory, the repo
/// root, is on sys.path) with waitress's defaults adjusted by `tweak`.
fn serve(target: &str, tweak: impl FnOnce(&mut ServerOptions)) -> Served {
    let mut so = ServerOptions::default();
    tweak(&mut so);
    let wo = WsgiOptions {
        app: AppSpec::Module {
            target: format!("tests.apps.wsgi.{target}"),
            call: false,
        },
        expose_tracebacks: so.expose_tracebacks,
        ident: so.ident.clone(),
        url_prefix: so.url_prefix.clone(),
        virtualenv: Some(util::venv()),
        multiprocess: false,
        log_config: None,
    };
    wsgi::init(&wo).expect("python starts");
    let app = wsgi::load(&wo).expect("fixture app loads");
    let listener = waitressd::net::bind_tcp("127.0.0.1:0".parse().unwrap(), 64).unwrap();
    let addr = listener
        .url(false)
        .trim_start_matches("http://")
        .to_string();
    let (server, stop) = Server::new(so, vec![listener], app).unwrap();
    let thread = std::thread::spawn(move || {
        let _ = server.run();
    });
    Served {
        addr,
        stop,
        thread: Some(thread),
    }
}

/// One parsed response.
#[derive(Debug)]
struct Resp {
    status: u16,
    version: String,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(|s| s.as_str())
    }
}

fn connect(addr: &str) -> BufReader<TcpStream> {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    BufReader::new(s)
}

fn send(conn: &mut BufReader<TcpStream>, bytes: &[u8]) {
    conn.get_mut().write_all(bytes).unwrap();
}

/// Reads one response (Content-Length, chunked, or until close). None: the connection closed
/// before a status line.
fn read_response(conn: &mut BufReader<TcpStream>) -> Option<Resp> {
    let mut line = String::new();
    if conn.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.trim_end().splitn(3, ' ');
    let version = parts.next()?.to_string();
    let status = parts.next()?.parse().ok()?;
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        conn.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
    }
    let mut body = Vec::new();
    if let Some(cl) = headers.get("content-length") {
        // A short body (the app gave fewer bytes than its Content-Length) ends at the close.
        let cl: u64 = cl.parse().ok()?;
        conn.by_ref().take(cl).read_to_end(&mut body).ok()?;
    } else if headers
        .get("transfer-encoding")
        .is_some_and(|t| t == "chunked")
    {
        loop {
            let mut size = String::new();
            conn.read_line(&mut size).ok()?;
            let n = usize::from_str_radix(size.trim(), 16).ok()?;
            let mut chunk = vec![0; n + 2];
            conn.read_exact(&mut chunk).ok()?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    } else if status != 204 && status != 304 {
        let _ = conn.read_to_end(&mut body);
    }
    Some(Resp {
        status,
        version,
        headers,
        body,
    })
}

/// True when the server closes the connection (EOF) before sending anything more.
fn closed(conn: &mut BufReader<TcpStream>) -> bool {
    let mut buf = [0u8; 1];
    matches!(conn.read(&mut buf), Ok(0) | Err(_))
}

fn request(addr: &str, raw: &[u8]) -> Resp {
    let mut c = connect(addr);
    send(&mut c, raw);
    read_response(&mut c).expect("a response")
}

fn json(body: &[u8]) -> serde_json::Value {
    let text = String::from_utf8_lossy(body);
    let meta = text.split("\r\n\r\n").next().unwrap();
    serde_json::from_str(meta).unwrap_or_else(|e| panic!("{e}: {text}"))
}

//! The Rust test app the server tests run: one route per behaviour (`/hello`, `/echo`,
//! `/slow?MS`, `/big?N`, `/pattern?N`, `/file`, `/panic`, …), counting its calls.
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use waitressd::http::app::{App, AppFailure, Exchange};

pub(super) struct TestApp {
    pub(super) calls: AtomicU64,
    pub(super) saw_disconnect: AtomicBool,
}

fn respond(ex: &mut dyn Exchange, status: &str, body: &[u8]) -> Result<(), AppFailure> {
    let headers = vec![
        ("Content-Type".to_string(), "text/plain".to_string()),
        ("Content-Length".to_string(), body.len().to_string()),
    ];
    ex.start_response(status, headers, Some(body.len() as u64));
    ex.write(body).map_err(|_| AppFailure {
        traceback: "client gone".into(),
    })
}

fn query_num(ex: &dyn Exchange) -> u64 {
    std::str::from_utf8(ex.request().query())
        .ok()
        .and_then(|q| q.parse().ok())
        .unwrap_or(0)
}

impl App for TestApp {
    fn call(&self, ex: &mut dyn Exchange) -> Result<(), AppFailure> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let path = ex.request().path().to_vec();
        let gone = |_| AppFailure {
            traceback: "client gone".into(),
        };
        match &path[..] {
            b"/hello" => respond(ex, "200 OK", b"hello"),
            b"/query" => {
                let q = ex.request().query().to_vec();
                respond(ex, "200 OK", &q)
            }
            b"/echo" => {
                let mut body = Vec::new();
                ex.body().read_to_end(&mut body).map_err(|e| AppFailure {
                    traceback: e.to_string(),
                })?;
                respond(ex, "200 OK", &body)
            }
            b"/count" => {
                let mut n = 0u64;
                loop {
                    let buf = ex.body().fill_buf().map_err(|e| AppFailure {
                        traceback: e.to_string(),
                    })?;
                    if buf.is_empty() {
                        break;
                    }
                    let len = buf.len();
                    n += len as u64;
                    ex.body().consume(len);
                }
                respond(ex, "200 OK", n.to_string().as_bytes())
            }
            b"/chunked" => {
                ex.start_response(
                    "200 OK",
                    vec![("Content-Type".into(), "text/plain".into())],
                    None,
                );
                ex.write(b"ab").map_err(gone)?;
                ex.write(b"cd").map_err(gone)
            }
            b"/origin" => {
                let o = &ex.request().origin;
                let s = format!("{}|{}|{}", o.remote_addr, o.remote_port, o.server_port);
                respond(ex, "200 OK", s.as_bytes())
            }
            b"/slow" => {
                std::thread::sleep(Duration::from_millis(query_num(ex)));
                respond(ex, "200 OK", b"slept")
            }
            b"/big" => {
                let n = query_num(ex);
                ex.start_response(
                    "200 OK",
                    vec![("Content-Length".into(), n.to_string())],
                    Some(n),
                );
                let chunk = vec![b'x'; 256 * 1024];
                let mut left = n;
                while left > 0 {
                    let k = left.min(chunk.len() as u64) as usize;
                    ex.write(&chunk[..k]).map_err(gone)?;
                    left -= k as u64;
                }
                Ok(())
            }
            b"/pattern" => {
                // n bytes of (i % 251), in writes of varying size, no Content-Length.
                let n = query_num(ex);
                ex.start_response("200 OK", vec![], None);
                let (mut i, mut size) = (0u64, 1usize);
                while i < n {
                    let k = (size as u64).min(n - i);
                    let chunk: Vec<u8> = (i..i + k).map(|j| (j % 251) as u8).collect();
                    ex.write(&chunk).map_err(gone)?;
                    i += k;
                    size = size * 7 % 100_003 + 1;
                }
                Ok(())
            }
            b"/file" => {
                let mut f = tempfile::tempfile().unwrap();
                f.write_all(b"0123456789").unwrap();
                ex.start_response(
                    "200 OK",
                    vec![("Content-Length".into(), "6".into())],
                    Some(6),
                );
                ex.send_file(f, 2, 6).map_err(gone)
            }
            b"/wait-disconnect" => {
                // Polls the client-disconnected flag (channel_request_lookahead > 0).
                let flag = ex.disconnected();
                let deadline = Instant::now() + Duration::from_secs(10);
                while !flag.load(Ordering::SeqCst) && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(10));
                }
                self.saw_disconnect
                    .store(flag.load(Ordering::SeqCst), Ordering::SeqCst);
                respond(ex, "200 OK", b"done")
            }
            b"/panic" => panic!("boom in the app"),
            b"/fail" => Err(AppFailure {
                traceback: "Traceback: ValueError: boom".into(),
            }),
            b"/fail-after-head" => {
                ex.start_response("200 OK", vec![], None);
                ex.write(b"partial").map_err(gone)?;
                Err(AppFailure {
                    traceback: "late".into(),
                })
            }
            _ => respond(ex, "404 Not Found", b"not found"),
        }
    }
}

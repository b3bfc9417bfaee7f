//! The reference side of the differential check: hyper's HTTP/1 server driven in-process over
//! an in-memory duplex stream, and the comparison with waitressd's framing. Shared by the
//! proptest check (`differential.rs`) and the `differential` fuzz target (included by path).
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::stream::{run, Framed, LIMITS};

/// A request as hyper framed it.
#[derive(Debug, Clone)]
pub struct Reference {
    method: Vec<u8>,
    target: String,
    version: u8,
    headers: Vec<(Vec<u8>, Vec<u8>)>,
    body: Vec<u8>,
}

/// Runs `data` (then EOF) through a hyper HTTP/1 server connection; returns the requests its
/// service saw, in order, and how the connection ended.
pub fn hyper_frame(data: &[u8]) -> (Vec<Reference>, String) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        let (client, server) = tokio::io::duplex(1 << 20);
        let seen: Arc<Mutex<Vec<Reference>>> = Arc::default();
        let s2 = seen.clone();
        let svc = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            let seen = s2.clone();
            async move {
                let (parts, body) = req.into_parts();
                let body = body.collect().await?.to_bytes();
                seen.lock().unwrap().push(Reference {
                    method: parts.method.as_str().as_bytes().to_vec(),
                    target: parts.uri.to_string(),
                    version: if parts.version == hyper::Version::HTTP_10 {
                        10
                    } else {
                        11
                    },
                    headers: parts
                        .headers
                        .iter()
                        .map(|(n, v)| (n.as_str().as_bytes().to_vec(), v.as_bytes().to_vec()))
                        .collect(),
                    body: body.to_vec(),
                });
                Ok::<_, hyper::Error>(hyper::Response::new(Full::new(Bytes::from_static(b"ok"))))
            }
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .half_close(true)
            .serve_connection(hyper_util::rt::TokioIo::new(server), svc);
        let (mut rd, mut wr) = tokio::io::split(client);
        let writer = async move {
            let _ = wr.write_all(data).await;
            let _ = wr.shutdown().await;
            wr
        };
        let reader = async move {
            let mut out = Vec::new();
            let _ = rd.read_to_end(&mut out).await;
        };
        let (end, _wr, ()) = tokio::join!(
            tokio::time::timeout(Duration::from_secs(5), conn),
            writer,
            reader
        );
        let end = match end {
            Ok(Ok(())) => "ok".to_string(),
            Ok(Err(e)) => format!("error: {e}"),
            Err(_) => "timeout".to_string(),
        };
        let seen = seen.lock().unwrap().clone();
        (seen, end)
    })
}

/// Header list as compared: lower-case names; framing headers left out (waitressd removes
/// Transfer-Encoding and sets Content-Length to the decoded length; the bodies are compared
/// instead); names with `_` left out (waitressd drops them, waitress §2.4); repeats merged with
/// `, ` (waitress); sorted by name.
fn normalize(headers: &[(Vec<u8>, Vec<u8>)]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    for (n, v) in headers {
        let n = n.to_ascii_lowercase();
        if n == b"content-length" || n == b"transfer-encoding" || n.contains(&b'_') {
            continue;
        }
        match out.iter_mut().find(|(m, _)| *m == n) {
            Some((_, old)) => {
                old.extend_from_slice(b", ");
                old.extend_from_slice(v);
            }
            None => out.push((n, v.clone())),
        }
    }
    out.sort();
    out
}

/// hyper drops the fragment and writes an empty absolute-form path as `/` (same resource).
fn same_target(ours: &[u8], theirs: &str) -> bool {
    let mut ours = ours
        .split(|&c| c == b'#')
        .next()
        .unwrap_or_default()
        .to_vec();
    let absolute = ours.first() != Some(&b'/');
    if let Some(p) = ours
        .windows(3)
        .position(|w| w == b"://")
        .filter(|_| absolute)
    {
        let auth = p + 3;
        let end = ours[auth..]
            .iter()
            .position(|&c| c == b'/' || c == b'?')
            .map_or(ours.len(), |e| auth + e);
        if ours.get(end) != Some(&b'/') {
            ours.insert(end, b'/');
        }
    }
    ours == theirs.as_bytes()
}

fn differs(w: &Framed, h: &Reference) -> Option<&'static str> {
    if w.method != h.method {
        return Some("method");
    }
    if !same_target(&w.target, &h.target) {
        return Some("target");
    }
    if w.version != h.version {
        return Some("version");
    }
    if normalize(&w.headers) != normalize(&h.headers) {
        return Some("headers");
    }
    if w.body != h.body {
        return Some("body");
    }
    None
}

/// Inputs where waitressd deliberately accepts what hyper refuses (see the module comment).
fn known_difference(data: &[u8]) -> bool {
    let obs_fold = data.windows(3).any(|w| w == b"\r\n " || w == b"\r\n\t");
    let raw_slashes = data.windows(2).any(|w| w == b" /") && data.iter().any(|&c| c >= 0x80);
    obs_fold || raw_slashes
}

/// `Err` describes the first request waitressd framed that hyper did not frame the same way.
pub fn check(data: &[u8]) -> Result<(), String> {
    let ours = run(&[data], LIMITS);
    if ours.requests.is_empty() {
        return Ok(());
    }
    let (theirs, end) = hyper_frame(data);
    for (i, w) in ours.requests.iter().enumerate() {
        let what = match theirs.get(i) {
            None => "hyper did not frame it",
            Some(h) => match differs(w, h) {
                None => continue,
                Some(what) => what,
            },
        };
        if known_difference(data) {
            return Ok(());
        }
        return Err(format!(
            "request {i}: waitressd framed {w:?} but {what} (hyper: {:?}, {end})\ninput: {:?}",
            theirs.get(i),
            String::from_utf8_lossy(data)
        ));
    }
    Ok(())
}

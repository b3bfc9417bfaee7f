//! The answer to one status request (`answer`): the request line checked, then `/ready` from
//! the published readiness, `/live`, or `/metrics` from the board's snapshot. Part of `status`
//! (a child module: it reads the master's `Board`).
use super::super::prometheus;
use super::{Board, Readiness, MAX_HEAD};

impl Board {
    /// Sums every live worker's block and the retired totals; lists live workers.
    fn snapshot(&self) -> prometheus::Snapshot {
        let mut totals = self.retired.clone();
        for &(_, _, slot) in &self.workers {
            self.slots[slot].add_to(&mut totals);
        }
        prometheus::Snapshot {
            totals,
            workers: self.workers.iter().map(|&(id, pid, _)| (id, pid)).collect(),
            restarts: self.restarts.clone(),
            ready: matches!(self.readiness, Readiness::Ready | Readiness::Degraded),
        }
    }
}

/// The response to a request head received so far, None while it may still be incomplete.
/// Only the request line matters; the head must end within `MAX_HEAD` bytes.
pub(super) fn answer(buf: &[u8], board: &Board) -> Option<Vec<u8>> {
    let bad = || respond("400 Bad Request", "text/plain", "bad request\n", false);
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return (buf.len() >= MAX_HEAD).then(bad);
    };
    let line = buf[..end].split(|&b| b == b'\r').next().unwrap_or(&[]);
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split(' ');
    let (method, path) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(m), Some(target), Some(v), None) if v.starts_with("HTTP/1.") => {
            (m, target.split('?').next().unwrap_or(target))
        }
        _ => return Some(bad()),
    };
    let head = method == "HEAD";
    if method != "GET" && !head {
        // RFC 9110 §15.5.6: a 405 names the methods the resource takes.
        let mut out = respond("405 Method Not Allowed", "text/plain", "GET only\n", false);
        let at = out
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("a status line")
            + 2;
        out.splice(at..at, *b"Allow: GET, HEAD\r\n");
        return Some(out);
    }
    Some(match path {
        "/ready" => {
            let why = match board.readiness {
                Readiness::Ready => return Some(respond("200 OK", "text/plain", "ready\n", head)),
                Readiness::Degraded => {
                    return Some(respond("200 OK", "text/plain", "degraded\n", head))
                }
                Readiness::Starting => "starting\n",
                Readiness::Draining => "draining\n",
            };
            respond("503 Service Unavailable", "text/plain", why, head)
        }
        "/live" => respond("200 OK", "text/plain", "live\n", head),
        "/metrics" => {
            let text = prometheus::render(&board.snapshot());
            respond(
                "200 OK",
                "text/plain; version=0.0.4; charset=utf-8",
                &text,
                head,
            )
        }
        _ => respond("404 Not Found", "text/plain", "not found\n", head),
    })
}

fn respond(status: &str, ctype: &str, body: &str, head: bool) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nConnection: close\r\n\r\n",
        body.len()
    );
    if !head {
        out.push_str(body);
    }
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::server::metrics::Totals;

    fn board(readiness: Readiness) -> Board {
        Board {
            readiness,
            slots: &[],
            workers: Vec::new(),
            retired: Totals::default(),
            restarts: BTreeMap::new(),
        }
    }

    /// (status line, body) of the answer to a complete head.
    fn ask(head: &str, b: &Board) -> (String, String) {
        let out = String::from_utf8(answer(head.as_bytes(), b).expect("complete")).unwrap();
        let (h, body) = out.split_once("\r\n\r\n").unwrap();
        (h.lines().next().unwrap().to_string(), body.to_string())
    }

    #[test]
    fn answers_by_method_and_path() {
        let up = board(Readiness::Ready);
        let starting = board(Readiness::Starting);
        let draining = board(Readiness::Draining);
        let degraded = board(Readiness::Degraded);
        let table: &[(&str, &Board, &str, &str)] = &[
            ("GET /ready HTTP/1.1", &up, "HTTP/1.1 200 OK", "ready\n"),
            (
                "GET /ready HTTP/1.1",
                &degraded,
                "HTTP/1.1 200 OK",
                "degraded\n",
            ),
            ("GET /ready?x=1 HTTP/1.0", &up, "HTTP/1.1 200 OK", "ready\n"),
            ("HEAD /ready HTTP/1.1", &up, "HTTP/1.1 200 OK", ""),
            (
                "GET /ready HTTP/1.1",
                &starting,
                "HTTP/1.1 503 Service Unavailable",
                "starting\n",
            ),
            (
                "GET /ready HTTP/1.1",
                &draining,
                "HTTP/1.1 503 Service Unavailable",
                "draining\n",
            ),
            ("GET /live HTTP/1.1", &draining, "HTTP/1.1 200 OK", "live\n"),
            (
                "GET /nope HTTP/1.1",
                &up,
                "HTTP/1.1 404 Not Found",
                "not found\n",
            ),
            (
                "POST /ready HTTP/1.1",
                &up,
                "HTTP/1.1 405 Method Not Allowed",
                "GET only\n",
            ),
            (
                "GET /ready",
                &up,
                "HTTP/1.1 400 Bad Request",
                "bad request\n",
            ),
            (
                "GET /ready HTTP/2",
                &up,
                "HTTP/1.1 400 Bad Request",
                "bad request\n",
            ),
        ];
        for &(line, b, status, body) in table {
            let got = ask(&format!("{line}\r\nHost: t\r\n\r\n"), b);
            assert_eq!(got, (status.to_string(), body.to_string()), "{line}");
        }
        let out = answer(b"POST /ready HTTP/1.1\r\n\r\n", &up).expect("complete");
        let out = String::from_utf8(out).unwrap();
        assert!(
            out.starts_with("HTTP/1.1 405 Method Not Allowed\r\nAllow: GET, HEAD\r\n"),
            "{out}"
        );
        let (status, body) = ask("GET /metrics HTTP/1.1\r\n\r\n", &up);
        assert_eq!(status, "HTTP/1.1 200 OK");
        assert!(body.contains("waitressd_ready 1"), "{body}");
    }

    #[test]
    fn a_head_split_at_every_byte_is_answered_once_complete() {
        let b = board(Readiness::Ready);
        let req = b"GET /live HTTP/1.1\r\nHost: t\r\n\r\n";
        for n in 0..req.len() {
            assert!(answer(&req[..n], &b).is_none(), "answered at {n}");
        }
        assert!(answer(req, &b).is_some());
    }

    #[test]
    fn a_head_without_end_within_8_kib_is_400() {
        let b = board(Readiness::Ready);
        let mut req = b"GET /live HTTP/1.1\r\nX: ".to_vec();
        req.resize(MAX_HEAD - 1, b'a');
        assert!(answer(&req, &b).is_none());
        req.push(b'a');
        let out = answer(&req, &b).expect("answered");
        assert!(out.starts_with(b"HTTP/1.1 400 Bad Request\r\n"));
    }
}

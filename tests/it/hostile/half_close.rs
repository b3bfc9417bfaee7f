//! A client that half-closes (shuts down its sending side) right after its bytes: waitress
//! closes the channel as soon as recv returns b"" (spec §4.4); waitressd still answers the
//! requests it already has, then closes (server/channel.rs `on_eof`). Either way the client
//! sees EOF promptly, never an open connection held until `channel_timeout`.
use super::{start_recorder, text, Conn};
use std::net::Shutdown;

/// (what, bytes sent before the half-close, response statuses expected before EOF).
const CASES: &[(&str, &[u8], &[u16])] = &[
    (
        "one request",
        b"GET /h0 HTTP/1.1\r\nHost: x\r\n\r\n",
        &[200],
    ),
    (
        "two pipelined requests",
        b"GET /h1/a HTTP/1.1\r\nHost: x\r\n\r\nGET /h1/b HTTP/1.1\r\nHost: x\r\n\r\n",
        &[200, 200],
    ),
    (
        "a request the app takes a while with",
        b"GET /h2/slow HTTP/1.1\r\nHost: x\r\n\r\n",
        &[200],
    ),
    (
        "a request with a body",
        b"POST /h3 HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi",
        &[200],
    ),
    (
        "a request with Connection: close",
        b"GET /h5 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        &[200],
    ),
    (
        "a bad request",
        b"GET /h6 HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
        &[400],
    ),
    (
        "a good request, then a bad one",
        b"GET /h7 HTTP/1.1\r\nHost: x\r\n\r\nGET /h7 HTTP/1.1\r\n\r\n",
        &[200, 400],
    ),
    // An incomplete head can never complete: closed without an answer (waitress), at once.
    ("half a head", b"GET /h4 HTTP/1.1\r\nHost: x\r\n", &[]),
];

#[test]
fn a_half_closed_client_gets_its_answers_then_eof_promptly() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = start_recorder(&dir.path().join("recorder.log"), &[]);
    let mut failures = Vec::new();
    for (what, raw, statuses) in CASES {
        let outcome = Conn::connect(&daemon.addr()).and_then(|mut conn| {
            conn.send(raw);
            conn.s
                .shutdown(Shutdown::Write)
                .map_err(|e| e.to_string())?;
            for &want in *statuses {
                let r = conn.response(false)?;
                if r.status != want {
                    return Err(format!("status {} instead of {want}: {}", r.status, r.head));
                }
            }
            conn.expect_closed()
        });
        if let Err(e) = outcome {
            failures.push(format!("{what}: {e} ({:?})", text(raw)));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

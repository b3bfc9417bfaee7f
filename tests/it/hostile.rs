//! Hostile request corpus: smuggling shapes, framing and line-ending tricks, limits, bad
//! versions and hosts, sent as raw bytes to the real binary serving
//! `tests/apps/conformance/recorder.py`, which logs every request the app receives.
//!
//! For every case: the exact statuses (in order, interim 100 included), `Connection: close` on
//! errors and the connection closed after them (or kept alive and serving, for good requests),
//! the app saw exactly the intended requests (no smuggled one, ever), and a fresh connection is
//! served afterwards. Every read is bounded by a timeout, so "never a hang" is checked too.
mod client;
pub(crate) mod corpus;
mod half_close;
mod proxy;
pub(crate) mod tls;

use crate::util::{root, Daemon};
use client::{text, Conn};
use std::path::{Path, PathBuf};
use std::process::Command;

/// How the connection must end once the expected responses are read.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum End {
    /// Server closes it (after an error, `Connection: close`, or HTTP/1.0).
    Closed,
    /// Kept alive: a further request on it is served, then the server closes on request.
    Open,
}

/// One corpus entry. In `raw`, `then` and `seen`, `{P}` stands for the case's own path prefix
/// (`/c<group><index>`), so the recorder's lines can be attributed to the case.
pub struct Case {
    /// The behaviour, stated.
    pub name: &'static str,
    /// Bytes written on connect (in one write).
    pub raw: &'static [u8],
    /// Bytes written after the first response is read (interactive 100-continue); may be empty.
    pub then: &'static [u8],
    /// Response statuses expected, in order.
    pub statuses: &'static [u16],
    /// The first final response answers a HEAD (no body follows its head).
    pub head: bool,
    pub end: End,
    /// Recorder lines (`METHOD PATH BODYLEN X-CASE`) the app must have produced, in order.
    pub seen: &'static [&'static str],
}

pub(crate) fn fill(template: &[u8], p: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(template.len() + 8);
    let mut rest = template;
    while let Some(i) = rest.windows(3).position(|w| w == b"{P}") {
        out.extend_from_slice(&rest[..i]);
        out.extend_from_slice(p.as_bytes());
        rest = &rest[i + 3..];
    }
    out.extend_from_slice(rest);
    out
}

/// Sends one case and checks statuses, headers on errors, and how the connection ends.
fn run_case(addr: &str, c: &Case, p: &str, delivery: Delivery) -> Result<(), String> {
    let mut conn = Conn::connect(addr)?;
    match delivery {
        Delivery::Whole => conn.send(&fill(c.raw, p)),
        Delivery::Pieces => conn.send_in_pieces(&fill(c.raw, p)),
    }
    let mut head_pending = c.head;
    for (i, &want) in c.statuses.iter().enumerate() {
        let r = conn.response(head_pending && want >= 200)?;
        if want >= 200 {
            head_pending = false;
        }
        if r.status != want {
            return Err(format!(
                "response {i}: status {} instead of {want}\n{}{}",
                r.status,
                r.head,
                text(&r.body)
            ));
        }
        // waitress fabricates an HTTP/1.0 request for an oversize head (spec §2.2).
        if want == 431 && !r.head.starts_with("HTTP/1.0 ") {
            return Err(format!("431 not answered as HTTP/1.0:\n{}", r.head));
        }
        if want >= 400 && !r.head.contains("Connection: close") {
            return Err(format!(
                "error response {want} without Connection: close:\n{}",
                r.head
            ));
        }
        if i == 0 && !c.then.is_empty() {
            conn.send(&fill(c.then, p));
        }
    }
    match c.end {
        End::Closed => conn.expect_closed(),
        End::Open => {
            let again = format!("GET {p}/again HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            conn.send(again.as_bytes());
            let r = conn.response(false)?;
            if r.status != 200 || !text(&r.body).contains(&format!("{p}/again")) {
                return Err(format!(
                    "kept-alive connection did not serve a next request: {}",
                    r.head
                ));
            }
            conn.expect_closed()
        }
    }
}

/// The recorder lines of case `p`, in arrival order.
fn lines_of(log: &str, p: &str) -> Vec<String> {
    log.lines()
        .filter(|l| {
            let mut f = l.split(' ');
            let path = f.nth(1).unwrap_or("");
            let case = f.nth(1).unwrap_or("");
            path == p || path.starts_with(&format!("{p}/")) || case == p
        })
        .map(str::to_string)
        .collect()
}

/// The daemon's own address (plain TCP).
fn direct(addr: &str) -> String {
    addr.to_string()
}

/// How a case's `raw` bytes are written.
#[derive(Clone, Copy, PartialEq)]
enum Delivery {
    /// In one write.
    Whole,
    /// Cut after line-ending bytes (`Conn::send_in_pieces`).
    Pieces,
}

/// Runs one group and fails the test with every failing case.
pub fn run_corpus(group: &str, cases: &[Case]) {
    let failures = corpus_failures(group, cases, Delivery::Whole, &[], &direct);
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

/// Starts the recorder under waitressd (small limits: 4096-byte head, 1000-byte body, plus
/// `extra` arguments), logging to `log`.
pub(crate) fn start_recorder(log: &Path, extra: &[&str]) -> Daemon {
    let mut cmd = Command::new(crate::util::bin());
    cmd.args([
        "--app",
        "recorder:app",
        "--listen",
        "127.0.0.1:0",
        "--threads",
        "2",
    ])
    .args([
        "--max-request-header-size",
        "4096",
        "--max-request-body-size",
        "1000",
    ])
    .args(extra)
    .current_dir(root().join("tests/apps/conformance"))
    .env("RECORDER_LOG", log);
    Daemon::start_with(&mut cmd, 1)
}

/// Runs every case followed by a normal request on a fresh connection, then checks the
/// recorder log.
/// `via` maps the daemon's address to the one the harness connects to (a TLS relay).
fn corpus_failures(
    group: &str,
    cases: &[Case],
    delivery: Delivery,
    extra: &[&str],
    via: &dyn Fn(&str) -> String,
) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let log: PathBuf = dir.path().join("recorder.log");
    let daemon = start_recorder(&log, extra);
    let addr = via(&daemon.addr());
    let mut failures = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        let p = format!("/c{group}{i:02}");
        if let Err(e) = run_case(&addr, c, &p, delivery) {
            failures.push(format!("{} ({p}): {e}", c.name));
        }
        let after = format!("GET {p}/after HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let served = Conn::connect(&addr).and_then(|mut conn| {
            conn.send(after.as_bytes());
            conn.response(false)
        });
        if !matches!(&served, Ok(r) if r.status == 200) {
            failures.push(format!("{} ({p}): server not serving afterwards", c.name));
        }
    }
    let recorded = std::fs::read_to_string(&log).unwrap_or_default();
    for (i, c) in cases.iter().enumerate() {
        let p = format!("/c{group}{i:02}");
        let mut want: Vec<String> = c.seen.iter().map(|s| s.replace("{P}", &p)).collect();
        if c.end == End::Open {
            want.push(format!("GET {p}/again 0 -"));
        }
        want.push(format!("GET {p}/after 0 -"));
        let got = lines_of(&recorded, &p);
        if got != want {
            failures.push(format!(
                "{} ({p}): app saw {got:?}, expected {want:?}",
                c.name
            ));
        }
    }
    if recorded.contains("smuggled") {
        failures.push(format!("a smuggled request reached the app:\n{recorded}"));
    }
    drop(daemon);
    failures
}

#[test]
fn smuggling_shapes_are_rejected_and_never_reach_the_app() {
    run_corpus("s", corpus::SMUGGLING);
}

#[test]
fn bare_line_endings_and_control_bytes_get_a_prompt_400() {
    run_corpus("l", corpus::LINES_AND_BYTES);
}

#[test]
fn oversize_heads_and_bodies_are_431_and_413_and_close() {
    run_corpus("z", corpus::LIMITS);
}

#[test]
fn malformed_chunked_bodies_are_400_and_close() {
    run_corpus("k", corpus::CHUNKED);
}

#[test]
fn request_line_version_and_host_rules() {
    run_corpus("r", corpus::REQUEST_LINE_AND_HOST);
}

#[test]
fn valid_requests_are_served_pipelined_and_kept_alive() {
    run_corpus("v", corpus::VALID);
}

/// Every group, in one list (also sent through the real front-ends, `smuggle.rs`).
pub const GROUPS: [(&str, &[Case]); 6] = [
    ("s", corpus::SMUGGLING),
    ("l", corpus::LINES_AND_BYTES),
    ("z", corpus::LIMITS),
    ("k", corpus::CHUNKED),
    ("r", corpus::REQUEST_LINE_AND_HOST),
    ("v", corpus::VALID),
];

#[test]
fn every_case_behaves_the_same_when_its_bytes_arrive_in_pieces() {
    let mut failures = Vec::new();
    for (group, cases) in GROUPS {
        failures.extend(corpus_failures(
            group,
            cases,
            Delivery::Pieces,
            &[],
            &direct,
        ));
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

#[test]
fn every_case_behaves_the_same_with_channel_request_lookahead() {
    // Reading ahead while a request runs is where CVE-2024-49768 lived: requests read ahead
    // behind an error or a `Connection: close` must still never run.
    let lookahead = ["--channel-request-lookahead", "4"];
    let mut failures = Vec::new();
    for (group, cases) in GROUPS {
        failures.extend(corpus_failures(
            group,
            cases,
            Delivery::Whole,
            &lookahead,
            &direct,
        ));
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

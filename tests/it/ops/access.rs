//! The access log: one line per response, the loop's own error responses (400, 413, 431,
//! 505) included, over IPv4, IPv6 and unix sockets, with trusted proxy headers, in the
//! default (combined), a custom and the JSON format; every line parsed back field by field.
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

use super::{eventually, read, start};
use crate::util::{exchange, split_response};

/// The requests every format test sends, with the status each must get.
const REQUESTS: &[(&[u8], u16)] = &[
    (b"GET /app?x=1 HTTP/1.1\r\nHost: t\r\nReferer: http://ref/\r\nUser-Agent: ua/1\r\nAuthorization: Basic YWxpY2U6cHc=\r\nX-Id: 7\r\nConnection: close\r\n\r\n", 200),
    (b"GET /bad\x01 HTTP/1.1\r\nHost: t\r\n\r\n", 400),
    (b"POST /big HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n", 413),
    (b"GET /long HTTP/1.1\r\nHost: t\r\nX-Pad: PAD\r\n\r\n", 431),
    (b"GET /v12 HTTP/1.2\r\nHost: t\r\n\r\n", 505),
    (b"GET /proxied HTTP/1.1\r\nHost: t\r\nX-Forwarded-For: 203.0.113.9\r\nConnection: close\r\n\r\n", 200),
    (b"GET /boom HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", 500),
];

fn send_all(addr: &str) -> Vec<(Vec<u8>, u16)> {
    let mut sent = Vec::new();
    for (raw, want) in REQUESTS {
        let raw = raw.to_vec();
        let raw = if raw.windows(3).any(|w| w == b"PAD") {
            let s = String::from_utf8(raw).unwrap();
            s.replace("PAD", &"p".repeat(400)).into_bytes()
        } else {
            raw
        };
        let (status, _, _) = split_response(&exchange(addr, &raw, 10));
        assert_eq!(status, *want, "{}", String::from_utf8_lossy(&raw[..20]));
        sent.push((raw, status));
    }
    sent
}

fn args<'a>(log: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec![
        "--listen",
        "127.0.0.1:0 [::1]:0",
        "--access-log",
        log.to_str().unwrap(),
        "--max-request-body-size",
        "10",
        "--max-request-header-size",
        "300",
        "--trusted-proxy",
        "127.0.0.1",
        "--trusted-proxy-headers",
        "x-forwarded-for",
    ];
    a.extend_from_slice(extra);
    a
}

fn lines(log: &Path, n: usize) -> Vec<String> {
    assert!(
        eventually(10, || read(log).lines().count() >= n),
        "want {n} lines, got:\n{}",
        read(log)
    );
    read(log).lines().map(String::from).collect()
}

/// Splits an Apache combined line into its nine fields (quoted ones unquoted).
fn combined(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line;
    while !rest.is_empty() {
        rest = rest.trim_start();
        let (field, tail) = match rest.as_bytes()[0] {
            b'"' => {
                let end = rest[1..].find("\" ").map_or(rest.len() - 1, |i| i + 1);
                (&rest[1..end], &rest[(end + 1).min(rest.len())..])
            }
            b'[' => {
                let end = rest.find(']').unwrap();
                (&rest[1..end], &rest[end + 1..])
            }
            _ => {
                let end = rest.find(' ').unwrap_or(rest.len());
                (&rest[..end], &rest[end..])
            }
        };
        out.push(field.to_string());
        rest = tail;
    }
    out
}

#[test]
fn combined_lines_for_app_and_loop_responses_over_v4_v6_and_proxy() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    let d = start(&args(&log, &[]), 2);
    let (v4, v6) = (
        d.addr(),
        d.urls[1].trim_start_matches("http://").to_string(),
    );
    assert!(v6.starts_with("[::1]"), "{v6}");
    send_all(&v4);
    let (status, _, _) = split_response(&exchange(&v6, b"GET /six HTTP/1.0\r\n\r\n", 10));
    assert_eq!(status, 200);
    let got: Vec<Vec<String>> = lines(&log, REQUESTS.len() + 1)
        .iter()
        .map(|l| combined(l))
        .collect();
    let find = |needle: &str| {
        got.iter()
            .find(|f| f[4].contains(needle))
            .unwrap_or_else(|| panic!("no line for {needle}: {got:?}"))
    };
    // h l u t r s b f a
    let app = find("/app?x=1");
    assert_eq!(app[0], "127.0.0.1");
    assert_eq!(app[1], "-");
    assert_eq!(app[2], "alice");
    assert!(app[3].ends_with(" +0000"), "{}", app[3]);
    assert_eq!(app[4], "GET /app?x=1 HTTP/1.1");
    assert_eq!((app[5].as_str(), app[6].as_str()), ("200", "2"));
    assert_eq!((app[7].as_str(), app[8].as_str()), ("http://ref/", "ua/1"));
    let big = find("POST /big");
    assert_eq!(big[5], "413");
    assert!(
        big[6].parse::<u64>().unwrap() > 0,
        "server-made body counted"
    );
    let long = got.iter().find(|f| f[5] == "431").expect("431 line");
    assert_eq!(long[0], "127.0.0.1");
    assert!(long[6].parse::<u64>().unwrap() > 0);
    let bad = got.iter().find(|f| f[5] == "400").expect("400 line");
    assert_eq!(bad[4], "-", "an unparsed request line logs -");
    assert!(got.iter().any(|f| f[5] == "505"), "505 line");
    assert_eq!(find("/proxied")[0], "203.0.113.9", "trusted proxy client");
    let boom = find("/boom");
    assert_eq!(boom[5], "500");
    assert!(
        boom[6].parse::<u64>().unwrap() > 0,
        "server-made 500 body counted"
    );
    assert_eq!(find("/six")[0], "::1");
}

#[test]
fn custom_and_json_formats() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("custom.log");
    let fmt = "%(s)s|%(m)s|%(U)s|%(q)s|%(H)s|%(B)s|%({x-id}i)s|%({x-out}o)s|%(u)s";
    let d = start(&args(&log, &["--access-log-format", fmt]), 2);
    send_all(&d.addr());
    let got = lines(&log, REQUESTS.len());
    assert!(
        got.contains(&"200|GET|/app|x=1|HTTP/1.1|2|7|o1|alice".to_string()),
        "{got:?}"
    );
    assert!(
        got.iter()
            .any(|l| l.starts_with("413|POST|/big||HTTP/1.1|")),
        "{got:?}"
    );
    assert!(got.iter().any(|l| l.starts_with("505|")), "{got:?}");
    drop(d);

    let log = dir.path().join("json.log");
    let d = start(&args(&log, &["--access-log-format", "json"]), 2);
    send_all(&d.addr());
    let got: Vec<serde_json::Value> = lines(&log, REQUESTS.len())
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let mut statuses: Vec<u64> = got.iter().map(|v| v["status"].as_u64().unwrap()).collect();
    statuses.sort();
    assert_eq!(statuses, [200, 200, 400, 413, 431, 500, 505]);
    let app = got.iter().find(|v| v["path"] == "/app").unwrap();
    assert_eq!(app["remote_addr"], "127.0.0.1");
    assert_eq!(app["user"], "alice");
    assert_eq!(app["query"], "x=1");
    assert_eq!(app["bytes"], 2);
    assert_eq!(app["user_agent"], "ua/1");
    let proxied = got.iter().find(|v| v["path"] == "/proxied").unwrap();
    assert_eq!(proxied["remote_addr"], "203.0.113.9");
}

#[test]
fn unix_socket_lines() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    let sock = dir.path().join("s.sock");
    let _d = start(
        &[
            "--unix-socket",
            sock.to_str().unwrap(),
            "--access-log",
            log.to_str().unwrap(),
        ],
        1,
    );
    for req in [&b"GET /u HTTP/1.0\r\n\r\n"[..], b"GET /u HTTP/1.7\r\n\r\n"] {
        let mut s = UnixStream::connect(&sock).unwrap();
        s.write_all(req).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
    }
    let got: Vec<Vec<String>> = lines(&log, 2).iter().map(|l| combined(l)).collect();
    assert_eq!(got[0][4], "GET /u HTTP/1.0");
    assert_eq!(got[0][5], "200");
    assert_eq!(got[1][5], "505");
    // waitress's REMOTE_ADDR for a unix socket, the same in both lines.
    assert_eq!(got[0][0], got[1][0]);
    assert!(!got[0][0].is_empty());
}

/// An access log that cannot be written (a full disk: `/dev/full` behind a symlink) costs no
/// request and floods no error log: one ERROR naming the file and the fix however many batches
/// fail; once it can be written again (the symlink replaced by a file at USR1), one WARNING
/// with the count of lines dropped, and the new file starts with whole lines.
#[test]
fn an_access_log_on_a_full_disk_is_reported_once_and_so_is_its_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    let err = dir.path().join("error.log");
    std::os::unix::fs::symlink("/dev/full", &log).unwrap();
    let d = start(
        &[
            "--listen",
            "127.0.0.1:0",
            "--access-log",
            log.to_str().unwrap(),
            "--error-log",
            err.to_str().unwrap(),
        ],
        1,
    );
    // Requests spread over more than ten batches (a batch goes 100 ms after its first line).
    for i in 0..15 {
        let (status, _, _) = crate::util::get(&d.addr(), &format!("/app?full={i}"));
        assert_eq!(status, 200);
        std::thread::sleep(std::time::Duration::from_millis(150));
    }
    assert!(
        eventually(10, || read(&err).contains("cannot write access log")),
        "{}",
        read(&err)
    );
    let failing = read(&err);
    let reports = failing.matches("cannot write access log").count()
        + failing.matches("still cannot be written").count();
    assert_eq!(reports, 1, "{failing}");
    let first = failing
        .lines()
        .find(|l| l.contains("cannot write access log"))
        .unwrap();
    assert!(
        first.contains("ERROR")
            && first.contains(log.to_str().unwrap())
            && first.contains("free space"),
        "{first}"
    );
    std::fs::remove_file(&log).unwrap();
    d.signal(libc::SIGUSR1);
    // The workers reopen after the master: retry until the new file gets a line.
    assert!(eventually(10, || {
        crate::util::get(&d.addr(), "/app?after");
        read(&log).contains("/app?after")
    }));
    assert!(
        eventually(10, || read(&err).contains("written again after")),
        "{}",
        read(&err)
    );
    let back = read(&err);
    let back = back
        .lines()
        .find(|l| l.contains("written again after"))
        .unwrap();
    assert!(
        back.contains("WARN") && back.contains("lines were dropped"),
        "{back}"
    );
    for line in read(&log).lines() {
        assert!(line.starts_with("127.0.0.1 - - ["), "{line}");
    }
}

//! Integration tests: wsgi. Fixture apps (tests/apps/wsgi) served by the real event loop and
//! the real WSGI bridge over loopback sockets — waitress's functional-test behaviours — and
//! real Pyramid/Flask apps and the example through the real binary.
// Test tables are tuples of expectations.
#![allow(clippy::type_complexity)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::thread::JoinHandle;
use std::time::Duration;

use waitressd::config::AppSpec;
use waitressd::server::{Server, ServerOptions, StopHandle};
use waitressd::wsgi::{self, WsgiOptions};

use crate::util;

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
    };
    wsgi::init(&wo).expect("python starts");
    let app = wsgi::load(&wo).expect("fixture app loads");
    let listener = waitressd::net::bind_tcp("127.0.0.1:0".parse().unwrap(), 64).unwrap();
    let addr = listener.url().trim_start_matches("http://").to_string();
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

#[test]
fn echo_environ_of_a_get() {
    let s = serve("echo:app", |_| {});
    let r = request(
        &s.addr,
        b"GET /a/%62c?x=1&y=%20 HTTP/1.1\r\nHost: example.com\r\nX-Custom: v\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 200);
    let m = json(&r.body);
    let port = s.addr.rsplit(':').next().unwrap();
    let cases: &[(&str, serde_json::Value)] = &[
        ("method", "GET".into()),
        ("path_info", "/a/bc".into()),
        ("script_name", "".into()),
        ("query_string", "x=1&y=%20".into()),
        ("request_uri", "/a/%62c?x=1&y=%20".into()),
        ("content_length", serde_json::Value::Null),
        ("scheme", "http".into()),
        ("remote_addr", "127.0.0.1".into()),
        ("remote_host", "127.0.0.1".into()),
        ("server_port", port.into()),
        ("server_name", "waitress.invalid".into()),
        ("server_protocol", "HTTP/1.1".into()),
        ("server_software", "waitress".into()),
        ("input_terminated", true.into()),
        ("multithread", true.into()),
        ("multiprocess", false.into()),
        ("run_once", false.into()),
        ("version", serde_json::json!([1, 0])),
        ("client_disconnected", false.into()),
        ("str_keys", true.into()),
    ];
    for (k, want) in cases {
        assert_eq!(&m[k], want, "{k}");
    }
    assert_eq!(m["headers"]["HOST"], "example.com");
    assert_eq!(m["headers"]["X_CUSTOM"], "v");
    assert!(m["remote_port"].as_str().unwrap().parse::<u16>().is_ok());
}

/// (request, CONTENT_LENGTH seen, body echoed) — by length, chunked, and empty.
#[test]
fn echo_request_bodies_table() {
    let s = serve("echo:app", |_| {});
    let cases: &[(&[u8], &str, &[u8])] = &[
        (
            b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello",
            "5",
            b"hello",
        ),
        (
            b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n",
            "7",
            b"abcdefg",
        ),
        (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n", "0", b""),
    ];
    for &(raw, cl, body) in cases {
        let r = request(&s.addr, raw);
        assert_eq!(r.status, 200);
        let m = json(&r.body);
        assert_eq!(m["content_length"], cl, "{}", String::from_utf8_lossy(raw));
        assert!(r.body.ends_with(body));
        assert_eq!(m["body_length"], body.len());
    }
}

/// A body larger than `inbuf_overflow` is spilled to a file by the server; wsgi.input reads
/// it the same (read, readline, iteration).
#[test]
fn spilled_bodies_read_like_small_ones() {
    let s = serve("echo:lines", |o| o.inbuf_overflow = 1000);
    let mut body = Vec::new();
    for i in 0..2000 {
        body.extend_from_slice(format!("line {i:05}\n").as_bytes());
    }
    let mut raw = format!(
        "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    raw.extend_from_slice(&body);
    let r = request(&s.addr, &raw);
    assert_eq!(r.status, 200);
    assert_eq!(
        String::from_utf8_lossy(&r.body),
        format!("11 1999 {}", body.len() - 11)
    );

    let s = serve("echo:app", |o| o.inbuf_overflow = 1000);
    let r = request(&s.addr, &raw);
    assert_eq!(json(&r.body)["body_length"], body.len());
    assert!(r.body.ends_with(&body));
}

#[test]
fn keep_alive_serves_several_requests_with_bodies() {
    let s = serve("echo:app", |_| {});
    let mut c = connect(&s.addr);
    for body in ["one", "second", ""] {
        let raw = format!(
            "POST /k HTTP/1.1\r\nHost: h\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        send(&mut c, raw.as_bytes());
        let r = read_response(&mut c).expect("response on the kept-alive connection");
        assert_eq!(r.status, 200);
        assert!(r.body.ends_with(body.as_bytes()));
        assert_eq!(r.header("connection"), None);
    }
}

/// waitress NoContentLengthTests / BadContentLengthTests / WriteCallbackTests:
/// (request line path, HTTP version, body sent, Content-Length, chunked, closed after).
/// Chunked HTTP/1.1 responses keep the connection (a deliberate waitressd difference).
#[test]
fn content_length_rules_table() {
    let s = serve("responses:app", |_| {});
    let body = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let cases: &[(&str, &str, &[u8], Option<&str>, bool, bool)] = &[
        ("/nocl/list", "1.1", body, Some("36"), false, false),
        ("/nocl/list_lentwo", "1.1", body, None, true, false),
        ("/nocl/gen", "1.1", body, None, true, false),
        ("/nocl/gen", "1.0", body, None, false, true),
        ("/nocl/list", "1.0", body, Some("36"), false, true),
        (
            "/badcl/short_body",
            "1.1",
            b"abcdefghi",
            Some("10"),
            false,
            true,
        ),
        (
            "/badcl/long_body",
            "1.1",
            b"abcdefgh",
            Some("8"),
            false,
            false,
        ),
        (
            "/writecb/short_body",
            "1.1",
            b"abcdefgh",
            Some("9"),
            false,
            true,
        ),
        (
            "/writecb/long_body",
            "1.1",
            b"abcdefghi",
            Some("9"),
            false,
            false,
        ),
        (
            "/writecb/equal_body",
            "1.1",
            b"abcdefghi",
            Some("9"),
            false,
            false,
        ),
        (
            "/writecb/no_content_length",
            "1.1",
            b"abcdefghi",
            None,
            true,
            false,
        ),
    ];
    for &(path, version, want, cl, chunked, close) in cases {
        let mut c = connect(&s.addr);
        let raw = format!(
            "POST {path} HTTP/{version}\r\nHost: h\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        send(&mut c, raw.as_bytes());
        send(&mut c, body);
        let r = read_response(&mut c).unwrap_or_else(|| panic!("{path} {version}"));
        assert_eq!(r.status, 200, "{path} {version}");
        assert_eq!(r.body, want, "{path} {version}");
        assert_eq!(r.header("content-length"), cl, "{path} {version}");
        assert_eq!(
            r.header("transfer-encoding") == Some("chunked"),
            chunked,
            "{path} {version}"
        );
        if close {
            assert!(closed(&mut c), "{path} {version}: connection closed");
        } else {
            send(&mut c, b"GET /badcl/equal HTTP/1.1\r\nHost: h\r\n\r\n");
            let again = read_response(&mut c);
            assert_eq!(
                again.map(|r| r.body),
                Some(b"abcdefghi".to_vec()),
                "{path}: kept alive"
            );
        }
    }
}

#[test]
fn app_exception_before_the_head_is_a_500() {
    for expose in [false, true] {
        let s = serve("error:app", |o| o.expose_tracebacks = expose);
        for version in ["1.0", "1.1"] {
            for path in ["/before_start_response", "/after_start_response"] {
                let mut c = connect(&s.addr);
                send(
                    &mut c,
                    format!("GET {path} HTTP/{version}\r\nHost: h\r\n\r\n").as_bytes(),
                );
                let r = read_response(&mut c).unwrap();
                assert_eq!(r.status, 500, "{path}");
                assert_eq!(r.version, format!("HTTP/{version}"));
                assert_eq!(r.header("connection"), Some("close"));
                let body = String::from_utf8(r.body.clone()).unwrap();
                assert!(body.starts_with("Internal Server Error"), "{body}");
                assert_eq!(
                    body.contains("Traceback (most recent call last)"),
                    expose,
                    "{body}"
                );
                if expose && path == "/before_start_response" {
                    assert!(body.contains("ValueError: wrong \u{20ac}"), "{body}");
                }
                assert!(closed(&mut c));
            }
        }
    }
}

/// waitress InternalServerErrorTests: after the head went out the connection is cut (a
/// chunked body without its terminator).
#[test]
fn app_exception_after_the_head_cuts_the_connection() {
    let s = serve("error:app", |_| {});
    for path in ["/after_write_cb", "/in_generator"] {
        let mut c = connect(&s.addr);
        send(
            &mut c,
            format!("GET {path} HTTP/1.1\r\nHost: h\r\n\r\n").as_bytes(),
        );
        let r = read_response(&mut c).unwrap_or_else(|| panic!("{path}: a head"));
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.body, b"", "{path}");
        assert!(closed(&mut c), "{path}");
    }
    let raw = util::exchange(
        &s.addr,
        b"GET /in_generator_after_bytes HTTP/1.1\r\nHost: h\r\n\r\n",
        30,
    );
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    assert!(text.contains("partial"), "{text}");
    assert!(
        !text.ends_with("0\r\n\r\n"),
        "no chunked terminator: {text}"
    );
}

/// waitress FileWrapperTests: (path, Content-Length, body length) for HTTP/1.1 and 1.0.
#[test]
fn file_wrapper_table() {
    let s = serve("filewrapper:app", |_| {});
    let n = 76800usize;
    let data: Vec<u8> = (0..300).flat_map(|_| 0..=255u8).collect();
    let long = (n + 10).to_string();
    let cases: &[(&str, Option<&str>, usize)] = &[
        ("/filelike", Some("76800"), n),
        ("/filelike_nocl", Some("76800"), n),
        ("/filelike_shortcl", Some("1"), 1),
        ("/filelike_longcl", Some("76800"), n),
        ("/notfilelike", Some("76800"), n),
        ("/notfilelike_iobase", Some("76800"), n),
        ("/notfilelike_nocl", None, n),
        ("/notfilelike_shortcl", Some("1"), 1),
        ("/notfilelike_longcl", Some(&long), n),
    ];
    for version in ["1.1", "1.0"] {
        for &(path, cl, len) in cases {
            let mut c = connect(&s.addr);
            send(
                &mut c,
                format!("GET {path} HTTP/{version}\r\nHost: h\r\n\r\n").as_bytes(),
            );
            let r = read_response(&mut c).unwrap_or_else(|| panic!("{path}"));
            assert_eq!(r.status, 200, "{path} {version}");
            assert_eq!(r.header("content-length"), cl, "{path} {version}");
            assert_eq!(r.body, &data[..len], "{path} {version}");
        }
    }
}

/// waitress SleepyThreadTests without timing: two requests must be inside the app at the same
/// time to pass its barrier, which needs a second app thread while the first one waits.
#[test]
fn a_waiting_request_does_not_block_others() {
    let s = serve("sleepy:app", |o| o.threads = 2);
    let addr = s.addr.clone();
    let waiter =
        std::thread::spawn(move || request(&addr, b"GET /wait HTTP/1.1\r\nHost: h\r\n\r\n"));
    let r = request(&s.addr, b"GET /release HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(r.body, b"released the waiter");
    let w = waiter.join().unwrap();
    assert_eq!(w.body, b"released");
}

#[test]
fn wsgiref_validator_passes_over_the_wire() {
    let s = serve("validated:app", |_| {});
    let r = request(&s.addr, b"GET /v HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!((r.status, r.body.as_slice()), (200, &b"ok:"[..]));
    let r = request(
        &s.addr,
        b"POST /v HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nContent-Type: text/plain\r\n\r\ndata",
    );
    assert_eq!((r.status, r.body.as_slice()), (200, &b"ok:data"[..]));
}

#[test]
fn flask_app_in_process() {
    let s = serve("flaskapp:app", |_| {});
    let r = request(&s.addr, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(
        (r.status, r.body.as_slice()),
        (200, &b"hello from flask"[..])
    );
    let r = request(
        &s.addr,
        b"POST /echo HTTP/1.1\r\nHost: h\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 7\r\n\r\na=1&b=2",
    );
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["form"], serde_json::json!({"a": "1", "b": "2"}));
}

#[test]
fn url_prefix_sets_script_name() {
    let s = serve("echo:app", |o| o.url_prefix = "/pre".into());
    let cases = [
        ("/pre/x", "/pre", "/x"),
        ("/pre", "/pre", ""),
        ("/prefix", "/pre", "/prefix"),
    ];
    for (path, script, info) in cases {
        let r = request(
            &s.addr,
            format!("GET {path} HTTP/1.1\r\nHost: h\r\n\r\n").as_bytes(),
        );
        let m = json(&r.body);
        assert_eq!(
            (m["script_name"].as_str(), m["path_info"].as_str()),
            (Some(script), Some(info)),
            "{path}"
        );
    }
}

// ---- the real binary: INI files, --app, the venv under a bare environment ----

fn apps_dir() -> std::path::PathBuf {
    util::root().join("tests/apps/wsgi")
}

/// Collects the daemon's stderr lines that arrive within `secs` until one contains `needle`.
fn stderr_until(d: &util::Daemon, needle: &str, secs: u64) -> Vec<String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    let mut seen = Vec::new();
    while std::time::Instant::now() < deadline {
        if let Ok(line) = d.stderr.recv_timeout(Duration::from_millis(100)) {
            let hit = line.contains(needle);
            seen.push(line);
            if hit {
                break;
            }
        }
    }
    seen
}

/// A cookiecutter-style production.ini: [loggers] configures Python logging before the app
/// loads (pserve order), `%(here)s` and [DEFAULT] interpolate, the [pipeline:main] filter
/// (an `egg:` filter) wraps the Pyramid app.
#[test]
fn pyramid_app_from_its_production_ini() {
    let ini = apps_dir().join("pyrapp/production.ini");
    let d = util::Daemon::start(&[ini.to_str().unwrap()], &apps_dir(), 1);
    let r = request(&d.addr(), b"GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    assert_eq!(
        r.header("x-stamp"),
        Some("from-ini"),
        "pipeline filter applied"
    );
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["here_dir"], apps_dir().join("pyrapp").to_str().unwrap());
    assert_eq!(v["greeting"], "hello");
    // The app logs through the INI's [formatter_generic].
    let lines = stderr_until(&d, "pyrapp home view called", 10);
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("PYRLOG WARNING [pyrapp] pyrapp home view called")),
        "{lines:?}"
    );
    let r = request(
        &d.addr(),
        b"POST /form HTTP/1.1\r\nHost: h\r\nContent-Type: application/x-www-form-urlencoded\r\n\
          Content-Length: 11\r\n\r\nname=abc%21",
    );
    assert_eq!(r.body, b"name=abc!");
    // An exception in a view: waitress's 500, logged with the path on logger `waitress`
    // through the INI's handler.
    let r = request(&d.addr(), b"GET /boom HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(r.status, 500);
    let lines = stderr_until(&d, "RuntimeError: pyrapp boom", 10);
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("PYRLOG ERROR [waitress] Exception while serving /boom")),
        "{lines:?}"
    );
}

/// Without [loggers], logging.basicConfig() is set up (pserve): app exceptions are logged in
/// its format on logger `waitress`.
#[test]
fn ini_without_loggers_uses_basic_config() {
    let ini = apps_dir().join("pyrapp/plain.ini");
    let d = util::Daemon::start(&[ini.to_str().unwrap()], &apps_dir(), 1);
    let r = request(&d.addr(), b"GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(r.status, 200);
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["greeting"], "plain");
    let r = request(&d.addr(), b"GET /boom HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(r.status, 500);
    let lines = stderr_until(&d, "Exception while serving /boom", 10);
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("ERROR:waitress:Exception while serving /boom")),
        "{lines:?}"
    );
}

/// `NAME=VALUE` words after the INI file are PasteDeploy defaults (pserve's config vars).
#[test]
fn ini_command_line_vars_reach_the_app() {
    let ini = apps_dir().join("pyrapp/production.ini");
    let d = util::Daemon::start(&[ini.to_str().unwrap(), "stamp=cli"], &apps_dir(), 1);
    let r = request(&d.addr(), b"GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    // [DEFAULT] wins over a caller default for interpolation (PasteDeploy, spec §5.1).
    assert_eq!(r.header("x-stamp"), Some("from-ini"));
}

#[test]
fn flask_app_with_app_and_call() {
    for args in [
        &["--app", "flaskapp:app"][..],
        &["--app", "flaskapp:create_app", "--call"][..],
    ] {
        let mut all = args.to_vec();
        all.extend(["--listen", "127.0.0.1:0"]);
        let d = util::Daemon::start(&all, &apps_dir(), 1);
        let r = request(&d.addr(), b"GET / HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(
            (r.status, r.body.as_slice()),
            (200, &b"hello from flask"[..]),
            "{args:?}"
        );
    }
}

/// The README's run command serves the bundled example (installed into the venv by
/// tools/venv.sh) from example/production.ini; here on port 0 via a flag override.
#[test]
fn example_app_from_its_ini() {
    let ini = util::root().join("example/production.ini");
    let d = util::Daemon::start(
        &[ini.to_str().unwrap(), "--listen", "127.0.0.1:0"],
        &util::root(),
        1,
    );
    let r = request(&d.addr(), b"GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(r.status, 200);
    assert!(
        String::from_utf8_lossy(&r.body).starts_with("Hello from waitressd"),
        "{r:?}"
    );
}

/// What the venv's own python says about itself: (sys.prefix, sys.base_prefix, version).
fn venv_facts(venv: &std::path::Path) -> (String, String, String) {
    let out = std::process::Command::new(venv.join("bin/python"))
        .args([
            "-c",
            "import sys; print(sys.prefix); print(sys.base_prefix); print(sys.version.split()[0])",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let mut l = text.lines().map(str::to_string);
    (l.next().unwrap(), l.next().unwrap(), l.next().unwrap())
}

/// Under `env -i PATH=/usr/bin:/bin` (systemd, init scripts) the venv — from `$VIRTUAL_ENV`
/// or the `virtualenv` setting — still gives the right interpreter, stdlib and packages
/// (Flask is only in the venv).
#[test]
fn venv_loads_under_a_bare_environment() {
    let venv = util::venv();
    let (prefix, base_prefix, version) = venv_facts(&venv);
    let by_env = ["--app", "probe:app", "--listen", "127.0.0.1:0"];
    let venv_flag = format!("--virtualenv={}", venv.display());
    let by_setting = [
        "--app",
        "probe:app",
        "--listen",
        "127.0.0.1:0",
        venv_flag.as_str(),
    ];
    for (args, env_venv) in [(&by_env[..], true), (&by_setting[..], false)] {
        let mut cmd = std::process::Command::new(util::bin());
        cmd.env_clear()
            .env("PATH", "/usr/bin:/bin")
            .current_dir(apps_dir())
            .args(args);
        if env_venv {
            cmd.env("VIRTUAL_ENV", &venv);
        } else {
            // Daemon::start_with sets VIRTUAL_ENV when absent; an empty one means "unset".
            cmd.env("VIRTUAL_ENV", "");
        }
        let d = util::Daemon::start_with(&mut cmd, 1);
        let r = request(&d.addr(), b"GET / HTTP/1.1\r\nHost: h\r\n\r\n");
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["prefix"], prefix.as_str(), "{args:?}");
        assert_eq!(v["base_prefix"], base_prefix.as_str(), "{args:?}");
        assert_eq!(v["version"], version.as_str(), "{args:?}");
        assert_eq!(v["flask"], true, "{args:?}");
        assert_eq!(v["math"], true, "{args:?}");
    }
}

/// Load failures: the traceback on stderr and exit code 4 (no respawn loop); a venv of
/// another Python version is refused with a clear message.
#[test]
fn load_failures_exit_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("broken.py"), "import no_such_module_xyz\n").unwrap();
    std::fs::write(dir.path().join("notapp.py"), "app = 42\n").unwrap();
    let cases: &[(&[&str], &str)] = &[
        (
            &["--app", "broken:app"],
            "ModuleNotFoundError: No module named 'no_such_module_xyz'",
        ),
        (&["--app", "notapp:app"], "is not callable"),
        (&["--app", "nosuchmod:app"], "No module named 'nosuchmod'"),
    ];
    for (args, text) in cases {
        let mut all = args.to_vec();
        all.extend(["--listen", "127.0.0.1:0"]);
        let (code, _out, err) = util::run(&all, dir.path());
        assert_eq!(code, 4, "{args:?}: {err}");
        assert!(err.contains(text), "{args:?}: {err}");
    }
    let (code, _, err) = util::run(
        &["--app", "broken:app", "--listen", "127.0.0.1:0"],
        dir.path(),
    );
    assert!(
        err.contains("Traceback (most recent call last)"),
        "{code} {err}"
    );

    let old = dir.path().join("oldvenv");
    std::fs::create_dir_all(old.join("bin")).unwrap();
    std::fs::write(
        old.join("pyvenv.cfg"),
        "home = /usr/bin\nversion = 2.7.18\n",
    )
    .unwrap();
    let flag = format!("--virtualenv={}", old.display());
    let (code, _, err) = util::run(
        &["--app", "x:app", "--listen", "127.0.0.1:0", &flag],
        dir.path(),
    );
    assert_ne!(code, 0);
    assert!(
        err.contains("2.7.18") && err.contains("recreate it"),
        "{err}"
    );
}

/// Without PasteDeploy in the interpreter's packages, one line says how to install it.
#[test]
fn missing_pastedeploy_is_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let bare = dir.path().join("bare");
    let py = venv_facts(&util::venv()).1 + "/bin/python3";
    let ok = std::process::Command::new(py)
        .args(["-m", "venv", "--without-pip"])
        .arg(&bare)
        .status()
        .unwrap();
    assert!(ok.success());
    let ini = apps_dir().join("pyrapp/production.ini");
    let flag = format!("--virtualenv={}", bare.display());
    let (code, _, err) = util::run(&[ini.to_str().unwrap(), &flag], dir.path());
    assert_eq!(code, 4, "{err}");
    assert!(
        err.contains("PasteDeploy is not installed") && err.contains("pip install PasteDeploy"),
        "{err}"
    );
    assert!(!err.contains("Traceback"), "{err}");
}

//! Differential tests over `tests/config_corpus` (plus `WAITRESSD_CORPUS_EXTRA` directories):
//! our INI reader against Python's `configparser`, and `--print-config` against waitress 3.0.2 +
//! PasteDeploy 3.1.0 (`tools/print_config_ref.py`, run in the test virtualenv).
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};
use waitressd::config::ini::{Ini, LoadError};

use super::{corpus, print_config_in};
use crate::util::{root, venv};

fn ini_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "ini"))
        .collect();
    files.sort();
    files
}

/// The repository corpus plus every `*.ini` in the directories listed (colon-separated) in
/// `WAITRESSD_CORPUS_EXTRA`, for checking real and adversarial files beyond the repo's.
fn corpus_files() -> Vec<PathBuf> {
    let mut files = ini_files(&corpus());
    assert!(files.len() >= 40, "corpus too small: {}", files.len());
    if let Some(extra) = std::env::var_os("WAITRESSD_CORPUS_EXTRA") {
        for dir in std::env::split_paths(&extra) {
            files.extend(ini_files(&dir));
        }
    }
    files
}

/// Directives in a corpus file's leading comments: `# args: ...`, `# waitressd-rejects: ...`,
/// `# waitressd-only: ...`.
fn directive(path: &Path, name: &str) -> Option<String> {
    let text = String::from_utf8_lossy(&std::fs::read(path).unwrap()).into_owned();
    text.lines().take(3).find_map(|l| {
        l.strip_prefix(&format!("# {name}:"))
            .map(|v| v.trim().to_string())
    })
}

fn args_of(path: &Path) -> Vec<String> {
    directive(path, "args")
        .map(|a| a.split_whitespace().map(String::from).collect())
        .unwrap_or_default()
}

/// Runs a Python script once; it prints one JSON value per line.
fn python_lines(exe: &Path, args: &[String], stdin: &str) -> Vec<Value> {
    use std::io::Write;
    let mut child = Command::new(exe)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run python");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).expect("python printed JSON"))
        .collect()
}

/// Our reader, dumped in `configparser_dump.py`'s shape.
fn dump(path: &Path) -> Value {
    let ini = match Ini::read(path, "x") {
        Ok(ini) => ini,
        Err(LoadError::Read(e)) if e.kind() == "UnicodeDecodeError" => {
            return json!({"error": e.kind(), "line": null})
        }
        Err(LoadError::Read(e)) => return json!({"error": e.kind(), "line": e.line()}),
        Err(LoadError::Io(e)) => panic!("{}: {e}", path.display()),
    };
    let value = |section: Option<&str>, key: &str| match ini.get(section, key) {
        Ok(v) => json!(v.unwrap()),
        Err(e) => json!({"error": e.kind()}),
    };
    let defaults: Vec<Value> = ini
        .defaults
        .iter()
        .map(|d| json!([d.key, value(None, &d.key)]))
        .collect();
    let sections: Vec<Value> = ini
        .sections
        .iter()
        .map(|s| {
            let opts: Vec<Value> = ini
                .options(s)
                .iter()
                .map(|(k, _)| json!([k, value(Some(&s.name), k)]))
                .collect();
            json!([s.name, opts])
        })
        .collect();
    json!({"defaults": defaults, "sections": sections})
}

#[test]
fn ini_reader_matches_python_configparser_on_corpus() {
    let files = corpus_files();
    let mut args = vec![corpus()
        .join("configparser_dump.py")
        .to_string_lossy()
        .into_owned()];
    args.extend(files.iter().map(|f| f.to_string_lossy().into_owned()));
    let wants = python_lines(Path::new("python3"), &args, "");
    assert_eq!(wants.len(), files.len());
    let mut failures = Vec::new();
    for (f, want) in files.iter().zip(wants) {
        let got = dump(f);
        if got != want {
            failures.push(format!(
                "{}:\n  python: {want}\n  ours:   {got}",
                f.display()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Every corpus file: same JSON as waitress 3.0.2 + PasteDeploy 3.1.0 for waitress's keys, or
/// both reject; files marked `waitressd-rejects` are the documented range rejections.
#[test]
fn print_config_matches_waitress_on_corpus() {
    let py = venv().join("bin/python");
    if !py.exists() {
        eprintln!("\n\n!!! SKIPPED print_config_matches_waitress_on_corpus: no {} (run tools/venv.sh) !!!\n", py.display());
        return;
    }
    let script = root()
        .join("tools/print_config_ref.py")
        .to_string_lossy()
        .into_owned();
    let files: Vec<PathBuf> = corpus_files()
        .into_iter()
        .filter(|f| directive(f, "waitressd-only").is_none())
        .collect();
    let mut batch = String::new();
    for f in &files {
        let mut ref_args = vec![f.to_string_lossy().into_owned()];
        ref_args.extend(args_of(f));
        batch.push_str(&format!("{}\n", json!(ref_args)));
    }
    let references = python_lines(&py, &[script, "--batch".into()], &batch);
    assert_eq!(references.len(), files.len());
    let mut failures = Vec::new();
    for (f, reference) in files.iter().zip(references) {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        let extra = args_of(f);
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let (code, ours, err) = print_config_in(f.parent().unwrap(), &name, &extra);
        let problem = match (reference.get("ok"), code) {
            (Some(_), 2) if directive(f, "waitressd-rejects").is_some() => None,
            (Some(_), _) if directive(f, "waitressd-rejects").is_some() => {
                Some("waitressd should reject".to_string())
            }
            (Some(want), 0) => {
                let diff: Vec<String> = want
                    .as_object()
                    .unwrap()
                    .iter()
                    .filter(|(k, v)| ours.get(k.as_str()) != Some(v))
                    .map(|(k, v)| {
                        format!(
                            "{k}: waitress {v}, ours {}",
                            ours.get(k.as_str()).unwrap_or(&Value::Null)
                        )
                    })
                    .collect();
                (!diff.is_empty()).then(|| diff.join("; "))
            }
            (Some(_), c) => Some(format!(
                "waitress accepts, we exit {c}: {}",
                err.lines().last().unwrap_or("")
            )),
            (None, 2) => None,
            (None, c) => Some(format!(
                "waitress rejects ({}), we exit {c}",
                reference["error"]
            )),
        };
        if let Some(p) = problem {
            failures.push(format!("{name}: {p}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// waitress-serve's flags: `Adjustments.parse_args` + `Adjustments(**kw)` against
/// `waitressd --app x:y FLAGS --print-config` (same JSON, or both reject).
#[test]
fn serve_flags_match_waitress_serve() {
    let py = venv().join("bin/python");
    if !py.exists() {
        eprintln!(
            "\n\n!!! SKIPPED serve_flags_match_waitress_serve: no {} (run tools/venv.sh) !!!\n",
            py.display()
        );
        return;
    }
    let cases: &[&[&str]] = &[
        &[
            "--listen=127.0.0.1:6001",
            "--listen",
            "[::1]:6002",
            "--thread=3",
        ],
        &["--host=127.0.0.1", "--port=6001", "--no-ipv6"],
        &["--port", "6001"],
        &["--host", "::1"],
        &["--unix-socket=/tmp/x.sock", "--unix-socket-perms=660"],
        &[
            "--trusted-proxy=*",
            "--trusted-proxy-headers=x-forwarded-for x-forwarded-proto",
            "--trusted-proxy-count=2",
            "--log-untrusted-proxy-headers",
            "--no-clear-untrusted-proxy-headers",
        ],
        &[
            "--url-scheme=https",
            "--url-prefix=/app/",
            "--ident=",
            "--server-name=example.org",
            "--expose-tracebacks",
            "--asyncore-use-poll",
            "--asyncore-loop-timeout=2",
        ],
        &[
            "--backlog=5",
            "--recv-bytes=1",
            "--send-bytes=2",
            "--outbuf-overflow=3",
            "--outbuf-high-watermark=4",
            "--inbuf-overflow=5",
            "--connection-limit=6",
            "--cleanup-interval=7",
            "--channel-timeout=8",
            "--max-request-header-size=9",
            "--max-request-body-size=10",
            "--channel-request-lookahead=11",
            "--no-log-socket-errors",
            "--ipv4",
            "--listen=127.0.0.1:6001",
        ],
        &["--threads=4", "--threads", "6"],
        &["--threads=four"],
        &["--port=1", "--listen=127.0.0.1:1"],
        &["--sockets=x", "--listen=127.0.0.1:1"],
        &["--sockets=x"],
        &["--ipv4=1"],
        &["--bogus"],
        &["--trusted-proxy-count=1"],
        &["--trusted-proxy=127.0.0.1"],
        &["--listen=::1"],
        &["--listen", "*:6001", "--no-ipv6"],
    ];
    let mut batch = String::new();
    for args in cases {
        let mut v = vec!["--serve-args"];
        v.extend_from_slice(args);
        batch.push_str(&format!("{}\n", json!(v)));
    }
    let script = root()
        .join("tools/print_config_ref.py")
        .to_string_lossy()
        .into_owned();
    let references = python_lines(&py, &[script, "--batch".into()], &batch);
    let mut failures = Vec::new();
    for (args, reference) in cases.iter().zip(references) {
        let mut ours = vec!["--app", "x:y"];
        ours.extend_from_slice(args);
        let (code, json, err) = print_config_in(&corpus(), "--print-config", &ours);
        match (reference.get("ok"), code) {
            (Some(want), 0) => {
                for (k, v) in want.as_object().unwrap() {
                    if json.get(k) != Some(v) {
                        failures.push(format!("{args:?}: {k}: waitress {v}, ours {}", json[k]));
                    }
                }
            }
            (None, 2) => {}
            (r, c) => failures.push(format!("{args:?}: waitress {r:?}, we exit {c}: {err}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

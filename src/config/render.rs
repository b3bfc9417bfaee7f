//! Documents generated from the one settings table (and `args::GENERAL`): `--help`, the man pages
//! (in `manpages`), the example INI (`conf/waitressd.ini`) and the README settings table.
//! A test keeps the committed files equal to these (`WAITRESSD_BLESS=1` rewrites them).
use super::args::GENERAL;
use super::defs::{Conv, Def, DEFS};

pub(super) const EXIT_CODES: &[(u8, &str)] = &[
    (
        0,
        "clean stop; also --check-config (all passed), --print-config, --help, --version",
    ),
    (
        2,
        "bad command line or configuration (one line on stderr naming file:line, key and value)",
    ),
    (3, "boot error: bind, privileges, pidfile"),
    (
        4,
        "the application could not be imported or built (--check-config exits 2, 3, 4 as a start would)",
    ),
];

/// `--threads INT` / `--[no-]ipv4`.
pub fn flag_usage(d: &Def) -> String {
    let flag = d.name.replace('_', "-");
    match d.conv {
        Conv::Bool => format!("--[no-]{flag}"),
        c => format!("--{flag} {}", arg_name(c)),
    }
}

fn arg_name(c: Conv) -> &'static str {
    match c {
        Conv::Int => "INT",
        Conv::Octal => "OCTAL",
        Conv::IntOrAuto => "N|auto",
        Conv::Path => "PATH",
        Conv::Size => "BYTES",
        Conv::List => "HOST:PORT",
        Conv::Set => "HEADERS",
        _ => "STR",
    }
}

/// The type with its accepted range (`int ≥ 1`, `int 0-65535`, `octal 0-7777`).
pub fn type_desc(d: &Def) -> String {
    let (lo, hi) = d.range;
    match d.conv {
        Conv::Int | Conv::IntOrAuto | Conv::Octal | Conv::Size => {
            let show = |x: i128| {
                if d.conv == Conv::Octal {
                    format!("{x:o}")
                } else {
                    x.to_string()
                }
            };
            if hi == u64::MAX as i128 {
                format!("{} ≥ {}", d.conv.name(), show(lo))
            } else {
                format!("{} {}-{}", d.conv.name(), show(lo), show(hi))
            }
        }
        c => c.name().to_string(),
    }
}

pub(super) fn default_desc(d: &Def) -> &'static str {
    match d.default {
        Some("") => "(empty)",
        Some(v) => v,
        None => "(unset)",
    }
}

/// `waitressd --help`.
pub fn help() -> String {
    let mut out = String::from(
        "Usage: waitressd [OPTIONS] [--config] FILE.ini [NAME=VALUE ...]\n       \
         waitressd [OPTIONS] [--app] MODULE:OBJECT [--call]    (also MODULE:factory())\n       \
         waitressd reload [--pid PID | --pidfile PATH] [--timeout SECONDS]\n\n\
         Serves a Python WSGI application; a drop-in replacement for the waitress 3.0.2 server.\n\
         INI mode reads [server:main] of a PasteDeploy INI file as pserve does (NAME=VALUE words\n\
         are defaults for %(NAME)s) and loads [app:main]. MODULE:OBJECT works like waitress-serve.\n\
         Setting flags win over WAITRESSD_<KEY> environment variables, which win over the INI\n\
         file. A flag for listen or unix_socket replaces every listen entry of the file; one for\n\
         only host or only port keeps the other half of each entry.\n\nOptions:\n",
    );
    for g in GENERAL {
        out.push_str(&format!("  {:<37} {}\n", g.usage(), g.help));
    }
    out.push_str("\nSettings (also keys of the [server:NAME] section):\n");
    for d in DEFS {
        let flag = flag_usage(d);
        let line = format!("{} [{}: {}]", d.doc, type_desc(d), default_desc(d));
        out.push_str(&format!("  {flag:<37} {line}\n"));
    }
    out.push_str("\nExit status:\n");
    for (code, text) in EXIT_CODES {
        out.push_str(&format!("  {code}  {text}\n"));
    }
    out.push_str(
        "\nEnvironment:\n  RUST_LOG          waitressd's log filter (e.g. debug); wins over log_level\n  \
         WAITRESSD_<KEY>   any setting, e.g. WAITRESSD_THREADS=8 (flags win over it, it wins over the INI)\n  \
         VIRTUAL_ENV       the virtualenv the embedded Python uses (unless virtualenv is set)\n",
    );
    out
}

pub(super) fn roff(s: &str) -> String {
    let s = s.replace('\\', "\\e").replace('-', "\\-");
    if s.starts_with('.') || s.starts_with('\'') {
        format!("\\&{s}")
    } else {
        s
    }
}

/// `conf/waitressd.ini`: a commented example with every key at its default.
pub fn example_ini() -> String {
    let mut out = String::from(
        "# waitressd example configuration: every setting, commented out at its default.\n\
         # Generated from src/config/defs.rs; do not edit (WAITRESSD_BLESS=1 cargo test --test it\n\
         # config::generated rewrites it). Relative paths are relative to this file (%(here)s).\n\n\
         [app:main]\nuse = egg:myproject\n\n[server:main]\nuse = egg:waitress#main\n",
    );
    for d in DEFS {
        // configparser interpolation: a literal % is %% (access_log_format's atoms).
        let default = d.default.unwrap_or("").replace('%', "%%");
        let sep = if default.is_empty() { "" } else { " " };
        out.push_str(&format!(
            "\n# {} ({})\n#{} ={sep}{default}\n",
            d.doc,
            type_desc(d),
            d.name
        ));
    }
    out
}

/// The README settings table (between `<!-- settings-table:begin/end -->`).
pub fn markdown_table() -> String {
    let mut out =
        String::from("| key | flag | type | default | meaning |\n|---|---|---|---|---|\n");
    for d in DEFS {
        let owner = if d.owner == super::defs::Owner::Waitressd {
            " *(waitressd)*"
        } else {
            ""
        };
        let default = match d.default {
            Some("") => "*(empty)*".to_string(),
            Some(v) => format!("`{v}`"),
            None => "*(unset)*".to_string(),
        };
        out.push_str(&format!(
            "| `{}` | `{}` | {} | {default} | {}{owner} |\n",
            d.name,
            flag_usage(d),
            type_desc(d),
            d.doc
        ));
    }
    out
}

//! The two man pages the package installs, generated from the settings table and `GENERAL`:
//! `waitressd(8)` (synopsis, every flag, signals, files, environment, exit status, examples) and
//! `waitressd.ini(5)` (every key: type, default, meaning, whose key; the access log atoms). A
//! test keeps `man/waitressd.8` and `man/waitressd.ini.5` equal to these; `mandoc -Tlint` checks
//! them.
use super::args::GENERAL;
use super::defs::{Owner, DEFS};
use super::render::{default_desc, flag_usage, roff, type_desc, EXIT_CODES};

/// A fixed date keeps the generated pages reproducible (mandoc wants one).
const DATE: &str = "2026-12-06";

fn th(name: &str, section: u8, title: &str) -> String {
    format!(
        ".TH {name} {section} \"{DATE}\" \"waitressd {}\" \"{title}\"\n",
        env!("CARGO_PKG_VERSION")
    )
}

fn tp(out: &mut String, tag: &str, text: &str) {
    out.push_str(&format!(".TP\n{tag}\n{}\n", text_lines(text)));
}

/// Escaped text broken into input lines of at most 80 bytes (the reader's roff refills them).
fn text_lines(text: &str) -> String {
    let mut lines: Vec<String> = vec![String::new()];
    for word in roff(text)
        .replace('≥', "\\(>=")
        .split(' ')
        .filter(|w| !w.is_empty())
    {
        let cur = lines.last_mut().expect("one line");
        if !cur.is_empty() && cur.len() + 1 + word.len() > 72 {
            lines.push(String::new());
        }
        let cur = lines.last_mut().expect("one line");
        if !cur.is_empty() {
            cur.push(' ');
        }
        if cur.is_empty() && (word.starts_with('.') || word.starts_with('\'')) {
            cur.push_str("\\&");
        }
        cur.push_str(word);
    }
    lines.join("\n")
}

const SIGNALS: &[(&str, &str)] = &[
    ("TERM, INT", "Graceful stop: stop accepting (the listening sockets are closed: new clients are refused), finish in-flight and already received requests, exit 0. What remains after graceful_timeout seconds is killed. A second INT stops at once."),
    ("QUIT", "Immediate stop."),
    ("HUP", "Reload: re-read and validate the configuration; if it is bad or the new workers cannot load the application, log why and keep serving with the old workers; else start new workers and retire the old ones gracefully once the new ones are ready. waitressd reload waits for this outcome."),
    ("USR1", "Reopen the log files (error_log, access_log): the master first, creating them and handing them to user, then the workers. Use after logrotate renamed them."),
    ("USR2", "Upgrade the binary in place: the master re-executes the binary on disk with the same arguments and hands it the listening sockets; once the new master's workers are ready it writes the pidfile, tells systemd its PID (MAINPID=) and stops the old master gracefully. A new binary that fails to start leaves the old master serving. The package's postinst sends it to every running instance on upgrade."),
    ("TTIN, TTOU", "One worker more, one worker less (TTIN stops at 4 per CPU, or workers if higher)."),
];

const FILES: &[(&str, &str)] = &[
    ("/etc/waitressd/NAME.ini", "The configuration of instance NAME (waitressd@NAME.service, or INSTANCES in /etc/default/waitressd)."),
    ("/etc/default/waitressd", "Instances, virtualenvs and options of the init script."),
    ("/var/log/waitressd/", "Conventional place of error_log and access_log, rotated by /etc/logrotate.d/waitressd."),
    ("/run/waitressd/NAME.pid", "The pidfile the init script passes with --pidfile (the INI's pidfile when it sets one)."),
    ("/lib/systemd/system/waitressd@.service, waitressd@.socket", "The templated systemd unit and its optional socket."),
];

const ENVIRONMENT: &[(&str, &str)] = &[
    ("VIRTUAL_ENV", "Virtualenv whose packages the embedded Python uses, unless the virtualenv setting names one."),
    ("NOTIFY_SOCKET", "Set by systemd for Type=notify: waitressd sends READY=1, RELOADING=1, STOPPING=1 and STATUS= lines."),
    ("LISTEN_FDS, LISTEN_PID", "Socket activation: the passed sockets are served instead of binding listen."),
    ("JOURNAL_STREAM", "Set by systemd: while standard error is the journal, each log line starts with its syslog priority."),
    ("RUST_LOG", "waitressd's log filter (e.g. debug); wins over log_level."),
    ("WAITRESSD_<KEY>", "Any setting, e.g. WAITRESSD_THREADS=8: command-line flags win over it, it wins over the INI file."),
];

const EXAMPLES: &str = ".nf\n\
# serve an INI file's [app:main] with the settings of its [server:main]\n\
waitressd /etc/waitressd/example.ini\n\
# like waitress\\-serve\n\
waitressd \\-\\-app myapp.wsgi:application \\-\\-listen 127.0.0.1:8080 \\-\\-threads 8\n\
# check a configuration before a reload\n\
waitressd \\-\\-check\\-config /etc/waitressd/example.ini\n\
# reload and wait until the new workers serve (or the reload is abandoned)\n\
waitressd reload \\-\\-pidfile /run/waitressd/example.pid\n\
systemctl reload waitressd@example\n\
.fi\n";

/// `man/waitressd.8`.
pub fn waitressd_8() -> String {
    let mut out = th("WAITRESSD", 8, "System Manager's Manual");
    out.push_str(
        ".SH NAME\nwaitressd \\- pre\\-forking WSGI server, a drop\\-in replacement for waitress\n\
         .SH SYNOPSIS\n.B waitressd\n[\\fIOPTIONS\\fR] [\\fB\\-\\-config\\fR] \\fIFILE\\fR \
         [\\fINAME\\fR=\\fIVALUE\\fR ...]\n.br\n.B waitressd\n[\\fIOPTIONS\\fR] [\\fB\\-\\-app\\fR] \
         \\fIMODULE\\fR:\\fIOBJECT\\fR [\\fB\\-\\-call\\fR]\n.br\n.B waitressd reload\n\
         [\\fB\\-\\-pid\\fR \\fIPID\\fR | \\fB\\-\\-pidfile\\fR \\fIPATH\\fR]\n[\\fB\\-\\-timeout\\fR \\fISECONDS\\fR]\n",
    );
    out.push_str(&format!(".SH DESCRIPTION\n{}\n", text_lines(
        "waitressd serves a Python WSGI application with pre-forked worker processes. In INI mode it \
         reads the [server:main] section of a PasteDeploy INI file as pserve and waitress do and \
         loads [app:main]; with MODULE:OBJECT (or --app; MODULE:factory() calls a factory) it serves \
         that app like waitress-serve. Flags win over WAITRESSD_<KEY> environment variables, which \
         win over the INI file. The master \
         binds every listener and opens the log files as root, then forks workers that drop to \
         user and group. Every setting is described in waitressd.ini(5); each is also a flag."
    )));
    out.push_str(".SH OPTIONS\n");
    for g in GENERAL {
        tp(&mut out, &format!(".B {}", roff(&g.usage())), g.help);
    }
    out.push_str(
        ".SS Settings\nEach flag sets the key of the same name; see\n.BR waitressd.ini (5).\n",
    );
    for d in DEFS {
        tp(&mut out, &format!(".B {}", roff(&flag_usage(d))), d.doc);
    }
    out.push_str(".SS waitressd reload\n");
    out.push_str(&text_lines(
        "Sends HUP to the master (PID from --pid or --pidfile, or $MAINPID) and waits for the outcome: \
         exit 0 once the new workers serve, 1 when the reload was abandoned (bad configuration, \
         application that fails to load) and the old workers keep serving, 3 when the master \
         cannot be signalled or does not answer within --timeout seconds (default 90). Used as \
         ExecReload of waitressd@.service and by the init script.",
    ));
    out.push_str("\n.SH SIGNALS\n");
    for (sig, text) in SIGNALS {
        tp(&mut out, &format!(".B {sig}"), text);
    }
    out.push_str(".SH FILES\n");
    for (f, text) in FILES {
        out.push_str(&format!(".TP\n.I {}\n{}\n", roff(f), text_lines(text)));
    }
    out.push_str(".SH ENVIRONMENT\n");
    for (v, text) in ENVIRONMENT {
        tp(&mut out, &format!(".B {}", roff(v)), text);
    }
    out.push_str(".SH EXIT STATUS\n");
    for (code, text) in EXIT_CODES {
        tp(&mut out, &format!(".B {code}"), text);
    }
    out.push_str(".SH EXAMPLES\n");
    out.push_str(EXAMPLES);
    out.push_str(".SH SEE ALSO\n.BR waitressd.ini (5),\n.BR systemctl (1),\n.BR logrotate (8)\n");
    out
}

/// The atoms `access_log_format` takes and what each logs, from the parser's own table (the
/// error for an unknown atom only names them), so the page cannot fall behind the parser.
fn access_log_format(out: &mut String) {
    use crate::http::log_format::{ATOMS, OTHER_FORMS};
    out.push_str(&format!(
        ".SH ACCESS LOG FORMAT\n{}\n",
        text_lines(
            "access_log_format is a line of text in which each atom below is replaced by its \
             value for the response (gunicorn's atoms). In an INI file write each % twice \
             (configparser interpolation): access_log_format = %%(h)s \"%%(r)s\" %%(s)s."
        )
    ));
    for (k, meaning) in ATOMS {
        tp(out, &format!(".B {}", roff(&format!("%({k})s"))), meaning);
    }
    for (form, meaning) in OTHER_FORMS {
        tp(out, &format!(".B {}", roff(form)), meaning);
    }
}

/// `man/waitressd.ini.5`.
pub fn waitressd_ini_5() -> String {
    let mut out = th("WAITRESSD.INI", 5, "File Formats Manual");
    out.push_str(".SH NAME\nwaitressd.ini \\- waitressd configuration (PasteDeploy INI)\n");
    out.push_str(&format!(".SH DESCRIPTION\n{}\n", text_lines(
        "waitressd reads the [server:main] section (or [server:NAME] with -s NAME) of a PasteDeploy \
         INI file with Python configparser's rules: %(name)s interpolation with here and __file__, \
         [DEFAULT] values, continuation lines. Write %% for a literal % (access_log_format). \
         [app:main] names the application (use = egg:project, use = call:module:factory). \
         Relative paths are relative to the file's directory. Every key below is also a \
         command-line flag (--key-name); flags win over the file. A bad value stops waitressd \
         with exit status 2 and one line naming file:line, key and value."
    )));
    out.push_str(".SH KEYS\n");
    for d in DEFS {
        let owner = match d.owner {
            Owner::Waitress => "waitress",
            Owner::Waitressd => "waitressd",
        };
        let text = format!(
            "{} Type: {}. Default: {}. Key of {owner}.",
            d.doc,
            type_desc(d),
            default_desc(d)
        );
        tp(&mut out, &format!(".B {}", roff(d.name)), &text);
    }
    access_log_format(&mut out);
    out.push_str(
        ".SH EXAMPLES\n.nf\n[app:main]\nuse = egg:myproject\n\n[server:main]\n\
                  use = egg:waitress#main\nlisten = 0.0.0.0:80\nworkers = auto\nuser = waitressd\n\
                  error_log = /var/log/waitressd/myproject.error.log\n\
                  access_log = /var/log/waitressd/myproject.access.log\n.fi\n",
    );
    out.push_str(".SH SEE ALSO\n.BR waitressd (8)\n");
    out
}

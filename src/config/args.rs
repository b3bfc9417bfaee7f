//! The command line's typed form: `CliArgs` (what `cli::parse` makes of argv and `load` turns
//! into `Settings`) and `GENERAL`, the options that are not settings, defined once for the
//! parser, `--help` and the man page.

/// What the user asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Serve,
    CheckConfig,
    PrintConfig,
    Help,
    Version,
}

/// Parsed command line; `config::load` turns it into `Settings`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliArgs {
    pub action: Action,
    /// INI file (`--config FILE` or the first positional).
    pub config: Option<std::path::PathBuf>,
    /// `-s/--server-name`, default `main`.
    pub server_name: String,
    /// `-n/--app-name`, default `main`.
    pub app_name: String,
    /// `NAME=VALUE` words after the INI file.
    pub vars: Vec<(String, String)>,
    /// `--app MODULE:OBJECT`.
    pub app: Option<String>,
    /// `--call`.
    pub call: bool,
    /// waitress-serve style flags as (setting name, raw string value), in order; they win over
    /// the INI.
    pub overrides: Vec<(String, String)>,
    /// `--daemon`: detach from the terminal.
    pub daemon: bool,
    /// `--verbose` (with `--print-config`: where each value came from).
    pub verbose: bool,
    /// `--log-config FILE`: a Python logging config (`fileConfig`) set up before the app loads.
    pub log_config: Option<std::path::PathBuf>,
    /// `--reload`: restart the workers when the app's Python files or the INI file change.
    pub reload: bool,
    /// `--reload-extra-file FILE` (repeatable): more files `--reload` watches.
    pub reload_extra: Vec<std::path::PathBuf>,
    /// `--chdir DIR`: change to DIR before anything else (relative paths start there).
    pub chdir: Option<std::path::PathBuf>,
    /// `--pythonpath DIRS` (comma-separated, repeatable): put in front of `sys.path`.
    pub pythonpath: Vec<String>,
    /// `--env NAME=VALUE` (repeatable): set in the environment of the daemon and the app.
    pub env: Vec<(String, String)>,
    /// Flags given that have no effect on this command line, each with why (warned once at
    /// start, not on every SIGHUP re-read).
    pub ignored: Vec<String>,
}

/// One option that is not a setting.
pub struct General {
    /// Long name, without `--`.
    pub long: &'static str,
    pub short: Option<char>,
    /// The argument's name in the docs; empty for a flag without a value.
    pub arg: &'static str,
    /// One line for `--help` and the man page.
    pub help: &'static str,
}

impl General {
    pub fn takes_value(&self) -> bool {
        !self.arg.is_empty()
    }

    /// `-s, --server-name NAME` / `--call`, as the docs show it.
    pub fn usage(&self) -> String {
        let flags = match self.short {
            Some(c) => format!("-{c}, --{}", self.long),
            None => format!("--{}", self.long),
        };
        format!("{flags} {}", self.arg).trim_end().to_string()
    }
}

/// Options that are not settings, in `--help` order.
pub const GENERAL: &[General] = &[
    General {
        long: "config",
        short: None,
        arg: "FILE",
        help: "the PasteDeploy INI file (or give it as the first argument)",
    },
    General {
        long: "server-name",
        short: Some('s'),
        arg: "NAME",
        help: "use [server:NAME] (default main); with --app, --server-name sets server_name",
    },
    General {
        long: "app-name",
        short: Some('n'),
        arg: "NAME",
        help: "load [app:NAME] (default main)",
    },
    General {
        long: "app",
        short: None,
        arg: "MODULE:OBJECT",
        help: "serve this WSGI app without an INI file (or give MODULE:OBJECT as the argument)",
    },
    General {
        long: "call",
        short: None,
        arg: "",
        help: "call OBJECT() to get the app (also written MODULE:OBJECT())",
    },
    General {
        long: "check-config",
        short: Some('t'),
        arg: "",
        help: "check everything a start would short of binding (app imported in a throw-away child), exit",
    },
    General {
        long: "print-config",
        short: None,
        arg: "",
        help: "print the effective settings as one JSON object, exit",
    },
    General {
        long: "verbose",
        short: Some('v'),
        arg: "",
        help: "with --print-config: say where each value came from (file:line, env, flag, default)",
    },
    General {
        long: "daemon",
        short: None,
        arg: "",
        help: "detach; the caller returns once every worker is ready, or with the boot error",
    },
    General {
        long: "log-config",
        short: None,
        arg: "FILE",
        help: "configure Python logging from FILE (fileConfig INI), as an INI's [loggers] does",
    },
    General {
        long: "reload",
        short: None,
        arg: "",
        help: "restart the workers when a Python file of the app or the INI file changes (development)",
    },
    General {
        long: "reload-extra-file",
        short: None,
        arg: "FILE",
        help: "with --reload: also watch FILE (repeatable)",
    },
    General {
        long: "chdir",
        short: None,
        arg: "DIR",
        help: "change to DIR first (the INI file, --app modules and relative paths are found from there)",
    },
    General {
        long: "pythonpath",
        short: None,
        arg: "DIRS",
        help: "comma-separated directories put in front of sys.path (repeatable)",
    },
    General {
        long: "env",
        short: Some('e'),
        arg: "NAME=VALUE",
        help: "set an environment variable for the daemon and the app (repeatable)",
    },
    General {
        long: "help",
        short: Some('h'),
        arg: "",
        help: "print this help",
    },
    General {
        long: "version",
        short: Some('V'),
        arg: "",
        help: "print the version",
    },
];

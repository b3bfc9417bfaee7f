//! One worker process's life after fork, in nginx's order: title, privileges, parent-death
//! signal, app (imported here in lazy mode, so a reload picks up new code), server, ready byte,
//! signal thread, serve. Signals stay blocked in every thread (inherited from the master); one
//! thread reads them with sigwait and maps them to the server's `StopHandle`.
//!
//! Workers are not pinned to CPUs: on the 2-core test host (2 workers x 4 threads, wrk -c32,
//! hello app) pinned and unpinned runs were within noise of each other (11.8-17.4k vs
//! 11.9-16.3k req/s with other jobs loading the host), and a pinned worker cannot move off a
//! core that another process is using.
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use nix::sys::signal::{SigSet, Signal};
use nix::unistd::Pid;

use super::retire::Retire;
use super::spawn::ReadySignal;
use super::{log_error, log_info, log_warn, options};
use crate::config::Settings;
use crate::exit;
use crate::http::app::App;
use crate::net::{Identity, Listener};
use crate::server::{RetireReason, Server, StopHandle};

/// Everything a worker gets from the master.
#[derive(Debug)]
pub struct WorkerStart {
    /// 1-based slot number (`worker N` in titles and logs).
    pub id: usize,
    /// Bumped by every reload.
    pub generation: u64,
    pub settings: Settings,
    /// This worker's handles on the shared listening sockets.
    pub listeners: Vec<Listener>,
    pub identity: Option<Identity>,
    pub master: Pid,
    /// Set by the spawner in the child.
    pub ready: Option<ReadySignal>,
    /// `preload_app`: the app the master loaded before forking.
    pub preloaded: Option<Preloaded>,
    /// Say waitress's `Serving on URL` once the app is loaded and the server is built.
    pub announce: bool,
    /// `status_listen`: this worker's block of `/metrics` counters, shared with the master.
    pub metrics: Option<&'static crate::server::metrics::Counters>,
    /// `certfile`: the TLS configuration the master read.
    pub tls: Option<super::tls::Loaded>,
}

/// An app loaded in the master (`preload_app`), shared copy-on-write with the workers.
#[derive(Clone)]
pub struct Preloaded(pub Arc<dyn App>);

impl std::fmt::Debug for Preloaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Preloaded(..)")
    }
}

impl WorkerStart {
    pub fn with_ready(mut self, ready: ReadySignal) -> WorkerStart {
        self.ready = Some(ready);
        self
    }

    /// `worker N (pid P)`, the tag of every log line about this worker.
    pub fn tag(&self) -> String {
        format!("worker {} (pid {})", self.id, std::process::id())
    }

    /// Common first steps of every worker body: title, its generation's umask, privilege drop
    /// (fatal: exit 3), and the parent-death signal (set after setuid, which clears it). Err =
    /// exit code.
    pub fn enter(&self) -> Result<(), i32> {
        super::title::set(Some(self.id));
        // A reload's workers are forked before the master takes their umask.
        crate::net::set_umask(self.settings.umask);
        if let Some(id) = &self.identity {
            if let Err(e) = id.assume() {
                log_error(&format!("{}: {e}", self.tag()));
                return Err(exit::BOOT);
            }
        }
        let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGTERM);
        if nix::unistd::getppid() != self.master {
            return Err(exit::OK); // the master died while we were forking
        }
        Ok(())
    }

    /// Tells the master this worker is ready.
    pub fn signal_ready(&self) {
        if let Some(r) = &self.ready {
            r.send();
        }
    }
}

/// waitress's start-up line: through Python logging (logger `waitress`, INFO) when the app's
/// logging is configured from a file, else on stderr whatever the log level (tests and users
/// look for it).
fn announce(line: &str) {
    if crate::logbridge::forwarding() {
        crate::wsgi::log_now("waitress", log::Level::Info, line);
    } else {
        crate::logbridge::stderr_line(line);
    }
}

/// The signals a worker reacts to (all blocked; read by the signal thread).
fn worker_set() -> SigSet {
    let mut set = SigSet::empty();
    for s in [
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGHUP,
    ] {
        set.add(s);
    }
    set
}

/// Starts the thread that turns signals into server stops. Returns the "stopped immediately"
/// flag.
fn signal_thread(stop: StopHandle, settings: Settings) -> Arc<AtomicBool> {
    let immediate = Arc::new(AtomicBool::new(false));
    let flag = immediate.clone();
    let set = worker_set();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || loop {
            match set.wait() {
                Ok(Signal::SIGTERM) | Ok(Signal::SIGINT) => stop.graceful(),
                Ok(Signal::SIGQUIT) => {
                    flag.store(true, Ordering::SeqCst);
                    stop.immediate();
                }
                Ok(Signal::SIGUSR1) => {
                    // The master reopened (and created) the files before signalling.
                    super::logfiles::redirect(&settings);
                    stop.reopen_logs();
                }
                Ok(_) => {} // HUP goes to the master; a worker ignores it
                Err(_) => return,
            }
        })
        .ok();
    immediate
}

/// The real worker: loads the WSGI app (lazy mode: after fork and privilege drop, so a reload
/// imports new code) or takes the master's (preload), serves until stopped, finalises Python.
pub fn serve(mut start: WorkerStart) -> i32 {
    let preloaded = start.preloaded.take();
    if preloaded.is_some() {
        // First thing after fork: CPython's own child-side reset (PyOS_AfterFork_Child).
        crate::wsgi::after_fork_child();
    }
    if let Err(code) = start.enter() {
        return code;
    }
    let tag = start.tag();
    let loading_since = std::time::SystemTime::now();
    let app = match preloaded {
        Some(p) => p.0,
        None => {
            let wo = options::wsgi_options(&start.settings);
            match crate::wsgi::init(&wo).and_then(|()| crate::wsgi::load(&wo)) {
                Ok(a) => a,
                Err(e) => {
                    // Lazy mode imports after the privilege drop: the interpreter, its stdlib
                    // and the virtualenv must be readable by `user`.
                    let hint = match (&start.identity, &e) {
                        (Some(_), crate::wsgi::WsgiError::AppLoad { .. }) => "",
                        (Some(_), _) => {
                            " (workers start Python after dropping privileges: the Python \
                             installation and the virtualenv must be readable by `user`, or \
                             set preload_app = true to load the app before the drop)"
                        }
                        (None, _) => "",
                    };
                    log_error(&format!("{tag}: {e}{hint}"));
                    return e.exit_code();
                }
            }
        }
    };
    // The INI's [logger_waitress] (or --log-config) now decides about waitress's messages.
    crate::wsgi::forward_waitress_logs();
    if start.settings.reload && start.id == 1 {
        let fixed = start.settings.reload_files.clone();
        let rescan = move || {
            let mut files = crate::wsgi::module_files();
            files.extend(fixed.iter().cloned());
            files
        };
        super::reloader::start(Box::new(rescan), start.master, loading_since);
    }
    let graceful_timeout = start.settings.graceful_timeout;
    let (code, immediate) = serve_until_stopped(start, app);
    if !immediate {
        // Graceful stop: app threads are done; atexit handlers run.
        super::pyexit::finalize(code, graceful_timeout);
    }
    code
}

/// Serves `app` (already loaded) on this worker's listeners until stopped; exit code.
pub fn serve_app(start: WorkerStart, app: Arc<dyn App>) -> i32 {
    serve_until_stopped(start, app).0
}

/// Warns when no temporary file can be made where request bodies and responses spill
/// (`$TMPDIR`, as the worker's user): found at boot, not at the first large upload.
fn check_temp_dir(tag: &str, s: &Settings) {
    if let Some(problem) = temp_dir_problem(s.inbuf_overflow, s.outbuf_overflow) {
        log_warn(&format!("{tag}: {problem}"));
    }
}

/// Why this process (as the worker's user) cannot create the temporary files that bodies over
/// `inbuf_overflow` and responses over `outbuf_overflow` spill to, and what that means; None
/// when it can (`--check-config` asks too).
pub fn temp_dir_problem(inbuf_overflow: u64, outbuf_overflow: u64) -> Option<String> {
    let e = tempfile::tempfile().err()?;
    Some(format!(
        "cannot create temporary files in {} ($TMPDIR): {e}; request bodies over \
         inbuf_overflow ({inbuf_overflow} bytes) will get a 500 and responses over \
         outbuf_overflow ({outbuf_overflow} bytes) will be cut: give the workers a writable \
         TMPDIR",
        std::env::temp_dir().display(),
    ))
}

/// (exit code, stopped immediately).
fn serve_until_stopped(mut start: WorkerStart, app: Arc<dyn App>) -> (i32, bool) {
    let tag = start.tag();
    let listeners = std::mem::take(&mut start.listeners);
    let tls = start.settings.edge.tls.is_some();
    let urls: Vec<String> = listeners.iter().map(|l| l.url(tls)).collect();
    let mut opts = options::server_options(&start.settings);
    opts.metrics = start.metrics;
    opts.tls = start.tls.as_ref().map(|t| t.0.clone());
    let (server, stop) = match Server::new(opts, listeners, app) {
        Ok(s) => s,
        Err(e) => {
            log_error(&format!("{tag}: cannot start the server: {e}"));
            return (exit::BOOT, false);
        }
    };
    if let Some(ready) = start.ready.clone() {
        // The server asks for its replacement over the status pipe (retire.rs).
        server.on_retire(Box::new(move |why| {
            let r = match why {
                RetireReason::MaxRequests => Retire::MaxRequests,
                RetireReason::StuckRequest => Retire::StuckRequest,
            };
            if let Some(b) = r.byte() {
                ready.send_byte(b);
            }
        }));
    }
    let immediate = signal_thread(stop, start.settings.clone());
    if start.announce {
        for url in &urls {
            announce(&format!("Serving on {url}"));
        }
    }
    check_temp_dir(&tag, &start.settings);
    start.signal_ready();
    // --daemon: leave the boot pipe to the caller for the log target (no-op otherwise).
    super::daemon::detach_std_streams();
    log_info(&format!("{tag}: serving"));
    let (code, threads_left) = match server.run() {
        Ok(n) => (exit::OK, n),
        Err(e) => {
            log_error(&format!("{tag}: server failed: {e}"));
            (1, 0)
        }
    };
    log_info(&format!("{tag}: stopped"));
    // Python must not be finalised under a thread still running the app: CPython ends such a
    // thread with pthread_exit when it next wants the GIL, which aborts the process (SIGABRT)
    // as it unwinds through Rust frames. The worker then exits without finalising, as at an
    // immediate stop.
    if threads_left > 0 && !immediate.load(Ordering::SeqCst) {
        log_warn(&format!(
            "{tag}: {threads_left} app thread(s) still inside the app after the stop: Python \
             is not finalised (atexit handlers do not run)"
        ));
        return (code, true);
    }
    (code, immediate.load(Ordering::SeqCst))
}

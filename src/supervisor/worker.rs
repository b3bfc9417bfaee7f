//! One worker process's life after fork, in nginx's order: title, privileges, parent-death
//! signal, app (imported here in lazy mode, so a reload picks up new code), server, ready byte,
//! signal thread, serve. Signals stay blocked in every thread (inherited from the master); one
//! thread reads them with sigwait and maps them to the server's `StopHandle`.
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use nix::sys::signal::{SigSet, Signal};
use nix::unistd::Pid;

use super::spawn::ReadySignal;
use super::{log_error, log_info, options};
use crate::config::Settings;
use crate::exit;
use crate::net::{Identity, Listener};
use crate::server::{Server, StopHandle};

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

    /// Common first steps of every worker body: title, privilege drop (fatal: exit 3), and the
    /// parent-death signal (set after setuid, which clears it). Err = exit code.
    pub fn enter(&self) -> Result<(), i32> {
        super::title::set(Some(self.id));
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
fn signal_thread(stop: StopHandle) -> Arc<AtomicBool> {
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
                Ok(Signal::SIGUSR1) => stop.reopen_logs(),
                Ok(_) => {} // HUP goes to the master; a worker ignores it
                Err(_) => return,
            }
        })
        .ok();
    immediate
}

/// The real worker: loads the WSGI app (lazy mode), builds the server, serves until stopped.
pub fn serve(start: WorkerStart) -> i32 {
    if let Err(code) = start.enter() {
        return code;
    }
    let tag = start.tag();
    let wo = options::wsgi_options(&start.settings);
    if let Err(e) = crate::wsgi::init(&wo) {
        log_error(&format!("{tag}: cannot start Python: {e}"));
        return exit::APP_LOAD;
    }
    let app = match crate::wsgi::load(&wo) {
        Ok(a) => a,
        Err(e) => {
            log_error(&format!("{tag}: cannot load the application: {e}"));
            return exit::APP_LOAD;
        }
    };
    serve_app(start, app)
}

/// Serves `app` (already loaded) on this worker's listeners until stopped; exit code.
pub fn serve_app(mut start: WorkerStart, app: Arc<dyn crate::http::app::App>) -> i32 {
    let tag = start.tag();
    let listeners = std::mem::take(&mut start.listeners);
    let (server, stop) = match Server::new(options::server_options(&start.settings), listeners, app)
    {
        Ok(s) => s,
        Err(e) => {
            log_error(&format!("{tag}: cannot start the server: {e}"));
            return exit::BOOT;
        }
    };
    let _immediate = signal_thread(stop);
    start.signal_ready();
    log_info(&format!("{tag}: serving"));
    let code = match server.run() {
        Ok(()) => exit::OK,
        Err(e) => {
            log_error(&format!("{tag}: server failed: {e}"));
            1
        }
    };
    log_info(&format!("{tag}: stopped"));
    code
}

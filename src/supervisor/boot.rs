//! Start-up of the master in nginx's order: umask, signals, identity, listeners ("Serving
//! on"), detach (`--daemon`), pidfile, title, preload; then the loop (master.rs).
use super::listeners::ListenerSet;
use super::logfiles;
use super::pidfile::PidFile;
use super::signals;
use super::spawn::{self, DaemonStatus};
use super::state::{Master, Phase, WorkerBody};
use super::systemd::{self, Notifier};
use super::upgrade;
use super::worker::Preloaded;
use super::{log_info, RunOptions, SupervisorError};
use crate::config::Settings;
use crate::exit;

fn boot<E: std::fmt::Display>(e: E) -> SupervisorError {
    SupervisorError::Boot(e.to_string())
}

/// Start-up in nginx's order: umask, signals, identity, listeners ("Serving on"), detach,
/// pidfile, title; then the loop.
pub(super) fn run(
    settings: Settings,
    opts: RunOptions,
    body: WorkerBody,
) -> Result<(), SupervisorError> {
    crate::net::set_umask(settings.umask);
    // Certificates are read first: a missing or mismatched file is exit 2, before binding.
    let tls =
        super::tls::load_for(&settings).map_err(|e| SupervisorError::Config(e.to_string()))?;
    let sigfd = signals::block_and_open().map_err(|e| boot(format!("signals: {e}")))?;
    let identity = super::options::identity(&settings).map_err(boot)?;
    let handover = upgrade::take_handover();
    let from = handover.as_ref().map(|h| h.from);
    let handed_status = handover.as_ref().and_then(|h| h.status);
    if let Some(p) = &settings.pidfile {
        // Before binding: a live instance's unix socket file must stay untouched.
        PidFile::check(p, std::process::id() as i32, from).map_err(boot)?;
    }
    let inherited = systemd::take_listen_fds().map_err(boot)?;
    let listeners = match handover {
        Some(h) => ListenerSet::open_handed(&settings, identity.as_ref(), h.fds),
        None => ListenerSet::open(&settings, identity.as_ref(), inherited),
    }
    .map_err(boot)?;
    // Connections wait in the backlog until a worker accepts; the first worker says
    // "Serving on" once it has loaded the app (worker.rs).
    for (_, l) in &listeners.entries {
        log_info(&format!(
            "listening on {}",
            l.url(settings.edge.tls.is_some())
        ));
    }
    // As root, before any worker drops privileges; a failure is a boot error seen in the
    // foreground, before `--daemon` detaches.
    if let Err(e) = logfiles::prepare(&settings, identity.as_ref()) {
        listeners.remove_files_not_in(None);
        return Err(boot(e));
    }
    super::fdlimit::fit(settings.connection_limit);
    let notifier = Notifier::from_env();
    // A USR2 upgrade's new master is already detached (its old master was).
    let detach = (opts.daemon || settings.daemon) && from.is_none();
    let mut daemon = if detach {
        spawn::daemonize(&settings).map_err(|e| boot(format!("daemonize: {e}")))?
    } else {
        DaemonStatus::none()
    };
    // A daemon's streams are the boot pipe, then the log target (`error_log`), already.
    if !detach {
        logfiles::redirect(&settings);
    }
    // After detaching: the daemon serves it, not the foreground parent.
    let status = match settings.edge.status_listen {
        Some(addr) => match super::status::Status::start(addr, handed_status) {
            Ok(s) => {
                crate::logbridge::stderr_line(&format!("Status on {}", s.url()));
                Some(s)
            }
            Err(e) => {
                daemon.report(exit::BOOT);
                listeners.remove_files_not_in(None);
                return Err(boot(format!(
                    "status_listen {addr}: {e}{}",
                    status_bind_hint(addr, &e)
                )));
            }
        },
        None => None,
    };
    let pid = std::process::id() as i32;
    let mut m = Master {
        pid,
        target: settings.workers.max(1),
        settings,
        listeners,
        identity,
        generation: 1,
        workers: Default::default(),
        phase: Phase::Running,
        sigfd,
        notifier,
        reload: opts.reload,
        body,
        booted: false,
        serving: false,
        reload_queued: false,
        upgrade_queued: false,
        next_memory_check: std::time::Instant::now(),
        exec: spawn::Exec::current(),
        upgrade: None,
        handover_from: from,
        pidfile: None,
        daemon,
        exit_code: exit::OK,
        preloaded: None,
        status,
        tls,
    };
    // The new master of a USR2 upgrade takes the pidfile over only once its workers serve
    // (upgrade.rs `finish_takeover`): until then the file names the master that serves, and
    // an init script waiting for it to change sees a failed upgrade as one.
    m.pidfile = match m.settings.pidfile.as_ref().filter(|_| from.is_none()) {
        Some(p) => match PidFile::create(p, pid) {
            Ok(f) => Some(f),
            Err(e) => {
                m.daemon.report(exit::BOOT);
                m.listeners.remove_files_not_in(None);
                return Err(boot(e));
            }
        },
        None => None,
    };
    super::title::set_name(m.settings.proc_name.as_deref().unwrap_or(""));
    super::title::set(None);
    if m.settings.preload_app {
        match preload(&m.settings) {
            Ok(app) => m.preloaded = Some(app),
            Err((code, msg)) => {
                m.daemon.report(code);
                m.listeners.remove_files_not_in(None);
                return Err(error_for(code, msg));
            }
        }
    }
    log_info(&format!("master {pid}: starting {} worker(s)", m.target));
    for id in 1..=m.target {
        m.spawn(id, 1);
    }
    m.run_loop();
    // A new master took over (the unix socket files are its own now), or this one is a new
    // master that never did (they are still the old master's): leave them, say nothing.
    if !m.handing_over() && m.handover_from.is_none() {
        m.notifier.stopping();
        m.listeners.remove_files_not_in(None);
    }
    m.daemon.report(m.exit_code);
    log_info(&format!("master {pid}: exiting with code {}", m.exit_code));
    if m.preloaded.take().is_some() {
        super::pyexit::finalize(m.exit_code, m.settings.graceful_timeout);
    }
    match m.exit_code {
        exit::OK => Ok(()),
        code => Err(error_for(code, worker_failure(code))),
    }
}

fn worker_failure(code: i32) -> String {
    match code {
        exit::CONFIG => "a worker found the configuration unusable".into(),
        exit::APP_LOAD => "a worker could not load the application".into(),
        code => format!("a worker could not boot (exit code {code})"),
    }
}

fn error_for(code: i32, msg: String) -> SupervisorError {
    match code {
        exit::CONFIG => SupervisorError::Config(msg),
        exit::APP_LOAD => SupervisorError::AppLoad(msg),
        _ => SupervisorError::Boot(msg),
    }
}

/// `preload_app`: starts Python and loads the app in the master (as root, before any worker
/// drops privileges), like `gunicorn --preload`. Err = (exit code, message).
fn preload(settings: &Settings) -> Result<Preloaded, (i32, String)> {
    let wo = super::options::wsgi_options(settings);
    crate::wsgi::init(&wo)
        .and_then(|()| crate::wsgi::load(&wo))
        .map(Preloaded)
        .map_err(|e| (e.exit_code(), e.to_string()))
}

/// The fix for the bind errors `status_listen` meets, worded like the app listener's
/// (`net::bind`): a port in use, a privileged port, an address that is not this host's.
fn status_bind_hint(addr: std::net::SocketAddr, e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::EADDRINUSE) => format!(
            " (another process listens there: stop it (ss -ltnp 'sport = :{}' names it) or \
             choose another port with status_listen =)",
            addr.port()
        ),
        Some(libc::EACCES) if addr.port() < 1024 => " (ports below 1024 need root or \
             CAP_NET_BIND_SERVICE: choose a port of 1024 or more with status_listen =)"
            .to_string(),
        Some(libc::EADDRNOTAVAIL) => format!(
            " ({} is not an address of this host: use 127.0.0.1, 0.0.0.0 or one of its \
             addresses in status_listen =)",
            addr.ip()
        ),
        _ => String::new(),
    }
}

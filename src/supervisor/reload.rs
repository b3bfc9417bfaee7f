//! SIGHUP: re-read the config, keep or bind listeners, start a new generation of workers,
//! and retire the old one only once every new worker is ready (or give up and keep serving
//! with the old one).
use std::time::{Duration, Instant};

use super::pending::Pending;
use super::state::{Master, Phase};
use super::{log_error, log_info, log_warn};
use crate::config::Settings;
use crate::net;

/// Keys read only at start: a changed one is named in a WARNING and its running value kept, so
/// the master's settings say what is in effect (and the next reload does not warn again).
fn keep_start_only(old: &Settings, new: &mut Settings, preloaded: bool) {
    fn keep<T: PartialEq + Clone>(key: &str, old: &T, new: &mut T) {
        if new != old {
            log_warn(&format!(
                "a changed {key} takes effect at the next start, not on reload"
            ));
            *new = old.clone();
        }
    }
    keep("pidfile", &old.pidfile, &mut new.pidfile);
    keep(
        "status_listen",
        &old.edge.status_listen,
        &mut new.edge.status_listen,
    );
    // Process titles and log prefixes are set once per process.
    keep("proc_name", &old.proc_name, &mut new.proc_name);
    // The app is loaded in the master at start or never.
    keep("preload_app", &old.preload_app, &mut new.preload_app);
    if preloaded {
        // The master's Python (which the workers inherit) started in this one.
        keep("virtualenv", &old.virtualenv, &mut new.virtualenv);
    }
}

impl Master {
    pub(super) fn begin_reload(&mut self) {
        log_info(&format!("master {}: reloading", self.pid));
        self.notifier.reloading();
        let settings = match &self.reload {
            Some(f) => f(),
            None => Ok(self.settings.clone()),
        };
        let prepared = settings.and_then(|mut s| {
            keep_start_only(&self.settings, &mut s, self.preloaded.is_some());
            // Renewed certificates are read here; a bad one fails the reload (old one kept).
            let tls = super::tls::load_for(&s).map_err(|e| e.to_string())?;
            let id = super::options::identity(&s)?;
            // New log files and unix sockets are made under the new umask, as at start; the
            // master takes it only once the reload commits (its respawns keep the old one).
            let before = net::set_umask(s.umask);
            let made = super::logfiles::prepare(&s, id.as_ref()).and_then(|()| {
                self.listeners
                    .reopen(&s, id.as_ref())
                    .map_err(|e| e.to_string())
            });
            if let Some(mask) = before {
                nix::sys::stat::umask(mask);
            }
            let (set, fresh) = made?;
            Ok((s, id, set, fresh, tls))
        });
        let (settings, identity, listeners, fresh, tls) = match prepared {
            Ok(p) => p,
            Err(e) => {
                log_error(&format!(
                    "reload failed, still serving the old configuration: {e}"
                ));
                super::control::report(false, &e);
                self.notifier.ready("serving (reload failed)");
                return;
            }
        };
        // The new workers inherit the master's standard error: point it at the new error_log.
        super::logfiles::redirect(&settings);
        crate::logging::apply_level(&settings.log_level);
        super::fdlimit::fit(settings.connection_limit);
        let https = settings.edge.tls.is_some();
        for i in fresh {
            let url = listeners.entries[i].1.url(https);
            crate::logbridge::stderr_line(&format!("Serving on {url}"));
        }
        if self.preloaded.is_some() {
            log_warn(
                "preload_app: the application loaded at start is kept; restart to load new code",
            );
        }
        let generation = self.generation + 1;
        let grace = Duration::from_secs(settings.graceful_timeout.max(5));
        // A count changed with TTIN/TTOU survives a reload unless the file changes `workers`.
        let n = if settings.workers == self.settings.workers {
            self.target
        } else {
            settings.workers.max(1)
        };
        let deadline = crate::time::later(Instant::now(), grace);
        self.phase = Phase::Reloading(Box::new(Pending::new(
            generation, n, settings, listeners, identity, tls, deadline,
        )));
        for id in 1..=n {
            self.spawn(id, generation);
        }
    }

    pub(super) fn commit_reload(&mut self) {
        let Phase::Reloading(p) = std::mem::replace(&mut self.phase, Phase::Running) else {
            return;
        };
        let old_gen = self.generation;
        let (generation, target, settings, listeners, identity, tls) = p.commit();
        // The old workers drain with the new file's graceful_timeout: raising it is how an
        // operator lets this reload's long requests finish.
        let grace = Duration::from_secs(settings.graceful_timeout);
        self.workers.stop_generation(old_gen, grace);
        let old = std::mem::replace(&mut self.listeners, listeners);
        old.remove_files_not_in(Some(&self.listeners));
        drop(old);
        self.listeners.refit(&settings, identity.as_ref());
        self.settings = settings;
        net::set_umask(self.settings.umask);
        self.identity = identity;
        self.tls = tls;
        self.generation = generation;
        self.target = target;
        self.serving = true;
        self.workers.generation_committed(self.generation);
        log_info(&format!(
            "master {}: reload complete (generation {})",
            self.pid, self.generation
        ));
        self.notifier.ready(&self.status());
        if !self.reload_queued {
            // A queued HUP starts another reload at once: its outcome is the one to report.
            super::control::report(true, &format!("generation {}", self.generation));
        }
    }

    pub(super) fn abort_reload(&mut self, why: &str) {
        let Phase::Reloading(p) = std::mem::replace(&mut self.phase, Phase::Running) else {
            return;
        };
        log_error(&format!(
            "reload aborted, still serving the old configuration: {why}"
        ));
        if !self.reload_queued {
            super::control::report(false, why);
        }
        self.workers.abandon_generation(p.generation());
        p.remove_socket_files(&self.listeners);
        // Back to the old error_log and log_level (the reload pointed the master at the new
        // ones for its new workers to inherit); respawned old workers inherit these again.
        super::logfiles::redirect(&self.settings);
        crate::logging::apply_level(&self.settings.log_level);
        self.notifier.ready(&self.status());
    }
}

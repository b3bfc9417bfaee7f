//! One job from start to end on an app thread: trusted-proxy processing, the app call under
//! `catch_unwind`, failure logging (waitress §3.6), the access-log line, and recycling the
//! request's buffers.
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::access_log;
use super::ctx::Ctx;
use super::shared::{Job, Shared};
use super::task::{path, Scratch, Task};
use crate::http::app::{AppFailure, Exchange};
use crate::http::proxy::{MalformedProxyHeader, ProxySettings};

/// Serves one job on this app thread, then gives its buffers back to the pool.
pub(crate) fn run(ctx: &Ctx, ch: &Arc<Shared>, mut job: Box<Job>, sc: &mut Scratch) {
    sc.update_date(coarse_now());
    if let Some(m) = ctx.opts.metrics {
        m.in_flight(true);
    }
    let proxy_err = if ctx.opts.trusted_proxy.is_some() || ctx.opts.clear_untrusted_proxy_headers {
        let s = sc.proxy_settings(|| proxy_settings(ctx));
        match crate::http::proxy::apply(&mut job.req, s) {
            Ok(outcome) => {
                for w in outcome.warnings {
                    log::warn!(target: "waitress", "{w}");
                }
                None
            }
            Err(m) => {
                log::warn!(target: "waitress", "{}", m.log_line());
                Some(m.body())
            }
        }
    } else {
        None
    };
    let mut meta = job.req.meta();
    if ctx.draining() && ch.lock().queued() == 0 {
        // Graceful stop: this is the last response on the connection.
        meta.keep_alive = false;
    }
    let received = job.received;
    let Job {
        req,
        body,
        send_continue,
        ..
    } = &mut *job;
    let mut t = Task::new(ctx, ch, req, body, sc, meta, *send_continue);
    match proxy_err {
        // waitress's proxy middleware answers itself, through the normal response path.
        Some(body) => {
            let cl = body.len();
            let mut headers = MalformedProxyHeader::headers();
            headers.push(("Content-Length".into(), cl.to_string()));
            t.start_response(MalformedProxyHeader::STATUS, headers, Some(cl as u64));
            let _ = t.write(&body);
            t.finish();
        }
        None => match catch_unwind(AssertUnwindSafe(|| call_app(ctx, ch, &mut t))) {
            Ok(Ok(())) => t.finish(),
            Ok(Err(AppFailure { traceback })) => {
                if t.client_gone() {
                    log::info!(target: "waitress", "Client disconnected while serving {}", path(t.request()));
                } else {
                    // The app logged it already (the WSGI bridge through Python's `waitress`
                    // logger, so the INI's [loggers] decide where it goes): only a debug trace.
                    log::debug!(target: "waitress", "Exception while serving {}\n{traceback}", path(t.request()));
                }
                t.fail(&traceback);
            }
            Err(panic) => {
                let msg = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "panic".to_string());
                log::error!(target: "waitress", "Exception while serving {}: panic: {msg}", path(t.request()));
                t.fail(&format!("panic: {msg}"));
            }
        },
    }
    let out = t.outcome();
    let code = out.status.get(..3).unwrap_or("500");
    // The request's time, from the moment it was whole (head and body; queueing included) to
    // now: one reading, only when the metrics or the access log need it (the log's time too).
    let done = (ctx.opts.metrics.is_some() || ctx.access_log().is_some()).then(Instant::now);
    let took = done.map_or(Duration::ZERO, |d| d.duration_since(received));
    if let Some(m) = ctx.opts.metrics {
        m.request_done(
            out.req.method(),
            code.parse().unwrap_or(500),
            took,
            out.sent,
        );
        m.in_flight(false);
    }
    if let (Some(pending), Some(done)) = (ctx.access_log(), done) {
        let line = access_log::Line {
            req: Some(out.req),
            remote: &out.req.origin.remote_addr,
            status: code,
            bytes: out.sent,
            elapsed: took,
            at: done,
            resp_headers: out.headers,
        };
        let big = pending.push(out.log_clock, &ctx.opts.access_log_format, line);
        if big {
            ctx.wake_loop();
        }
    }
    t.recycle_headers();
    ctx.recycle(job);
    ctx.request_done();
}

/// The app call for `t` (on `ch`), recorded for `request_timeout`'s watchdog while it runs.
fn call_app(ctx: &Ctx, ch: &Arc<Shared>, t: &mut Task<'_>) -> Result<(), AppFailure> {
    if !ctx.calls.enabled() {
        return ctx.app.call(t);
    }
    let slot = t.slot();
    ch.lock().response_begins();
    ctx.calls.begin(slot, ch, t.request(), t.version());
    let r = ctx.app.call(t);
    ctx.calls.end(slot);
    r
}

/// The wall clock at tick resolution (a few ms): plenty for a `Date` that changes once a
/// second, and it reads the vDSO's copy instead of the TSC (asked once per request).
fn coarse_now() -> SystemTime {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec on our stack; CLOCK_REALTIME_COARSE exists
    // on every Linux we run on, and on failure `ts` stays zeroed (checked below).
    let r = unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut ts) };
    match u64::try_from(ts.tv_sec) {
        Ok(secs) if r == 0 => SystemTime::UNIX_EPOCH + Duration::from_secs(secs),
        _ => SystemTime::now(),
    }
}

fn proxy_settings(ctx: &Ctx) -> ProxySettings {
    let o = &ctx.opts;
    ProxySettings {
        trusted_proxy: o.trusted_proxy.clone(),
        trusted_proxy_count: o.trusted_proxy_count,
        trusted_proxy_headers: o.trusted_proxy_headers.clone(),
        log_untrusted_proxy_headers: o.log_untrusted_proxy_headers,
        clear_untrusted_proxy_headers: o.clear_untrusted_proxy_headers,
    }
}

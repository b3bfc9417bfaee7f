//! The app threads (waitress's `ThreadedTaskDispatcher` workers, `waitress-0`…): started in
//! `App::run_thread` and started again if one dies, each taking channels from `Ctx`'s job queue
//! and running their queued requests in order, one `job` at a time.
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::ctx::Ctx;
use super::job;
use super::shared::Shared;
use super::task::Scratch;

/// Pause before an app thread that died is started again (no spin if it dies at once).
const RESTART_PAUSE: Duration = Duration::from_millis(100);

/// Starts the `threads` app threads (`waitress-0`, `waitress-1`, … as waitress names them);
/// each runs inside `App::run_thread`, where the WSGI bridge attaches its Python thread state
/// once for the thread's life.
pub(crate) fn spawn_threads(ctx: &Arc<Ctx>) -> std::io::Result<Vec<JoinHandle<()>>> {
    let mut v = Vec::new();
    for i in 0..ctx.opts.threads.max(1) {
        let ctx = ctx.clone();
        let h = std::thread::Builder::new()
            .name(format!("waitress-{i}"))
            .spawn(move || {
                super::sched::app_thread();
                let app = ctx.app.clone();
                // A thread that dies (a panic outside the per-request guards) is started
                // again in place, so the worker never runs with fewer app threads.
                loop {
                    let r = catch_unwind(AssertUnwindSafe(|| {
                        app.run_thread(&mut || app_thread(&ctx, i))
                    }));
                    if r.is_ok() || ctx.threads_stopping() {
                        break;
                    }
                    log::error!(target: "waitress", "app thread waitress-{i} died; starting it again");
                    std::thread::sleep(RESTART_PAUSE);
                }
            })?;
        v.push(h);
    }
    Ok(v)
}

/// App thread number `slot`: runs channels' requests until the dispatcher stops.
pub(crate) fn app_thread(ctx: &Ctx, slot: usize) {
    let mut scratch = Scratch::new(slot);
    let mut first = true;
    while let Some(ch) = ctx.take(std::mem::take(&mut first)) {
        scratch.took_job();
        serve_channel(ctx, &ch, &mut scratch);
        // A channel with nothing to run, or an app that never reported running.
        scratch.off_deck(ctx);
    }
}

/// Runs `ch`'s queued requests in order (waitress: the channel is the unit of work, so
/// pipelined requests are answered strictly in order, one at a time).
fn serve_channel(ctx: &Ctx, ch: &Arc<Shared>, scratch: &mut Scratch) {
    loop {
        let job = {
            let mut st = ch.lock();
            if scratch.on_deck() && st.over_watermark(ctx.opts.outbuf_high_watermark) {
                // About to wait for a slow reader: another thread must be free to go on deck.
                drop(st);
                scratch.off_deck(ctx);
                continue;
            }
            // waitress waits for output below the watermark between pipelined requests too.
            let wm = ctx.opts.outbuf_high_watermark;
            st = ch.wait_for_reader(st, wm, false, |on| ctx.stalled(on));
            match st.next_job() {
                Some(job) => job,
                None => {
                    let notify = st.app_done(Instant::now(), || ctx.clients_waiting());
                    drop(st);
                    if notify {
                        ctx.notify_loop(ch.clone());
                    }
                    return;
                }
            }
        };
        if catch_unwind(AssertUnwindSafe(|| job::run(ctx, ch, job, scratch))).is_err() {
            // A bug outside the app call's own guard: the response state is unknown, so the
            // connection is cut (never wrong bytes) and the thread goes on serving.
            log::error!(target: "waitress", "internal error while serving a request; connection closed");
            ch.mark_closed();
        }
    }
}

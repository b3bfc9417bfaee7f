//! One request's response on an app thread (waitress's `Task`): the `Exchange` the app drives,
//! the head going out with the first body bytes, framing through `http`'s encoder, direct
//! vectored writes on the socket (waitress `write_soon`), back-pressure (through
//! `Shared::wait_for_reader`), and the 500 or cut connection when the app fails. The
//! `Exchange` methods the app calls (`start_response`, `write`, `send_file`…) are in
//! `task::exchange`.
use std::sync::Arc;

use super::access_log;
use super::ctx::{socket_error, Ctx};
use super::shared::{ChanState, Shared, CONTINUE, GATHER_BYTES};
use super::sock;
use crate::http::app::Disconnected;
use crate::http::date::DateCache;
use crate::http::encode::{BodyEncoder, Framing};
use crate::http::proxy::ProxySettings;
use crate::http::{OverflowableBuffer, Request, RequestMeta, ResponseHead};
use std::sync::MutexGuard;

mod exchange;

/// Per-app-thread buffers, reused for every request the thread serves.
#[derive(Default)]
pub(crate) struct Scratch {
    head: Vec<u8>,
    date: DateCache,
    status: String,
    /// The last response's headers, handed back to the app layer for reuse
    /// (`Task::recycle_headers`).
    headers: Vec<(String, String)>,
    log: access_log::Clock,
    proxy: Option<ProxySettings>,
    /// This app thread's number (its `request_timeout` record).
    slot: usize,
    /// This thread took a job and has not yet reported running the app (`Ctx::running`).
    on_deck: bool,
}

impl Scratch {
    /// App thread number `slot`'s buffers.
    pub(super) fn new(slot: usize) -> Scratch {
        Scratch {
            slot,
            ..Scratch::default()
        }
    }

    /// This app thread's number (its `request_timeout` record).
    #[inline]
    pub(super) fn slot(&self) -> usize {
        self.slot
    }

    /// This thread took a job (it is on deck until it reports running the app: `off_deck`).
    #[inline]
    pub(super) fn took_job(&mut self) {
        self.on_deck = true;
    }

    /// This thread took a job and has not yet reported running the app.
    #[inline]
    pub(super) fn on_deck(&self) -> bool {
        self.on_deck
    }

    /// This thread runs the app now, or its job ended without reaching it, or it is about to
    /// wait for a slow reader: the next idle thread may go on deck (`Ctx::running`; nothing
    /// to do if this one was not on deck).
    #[inline]
    pub(super) fn off_deck(&mut self, ctx: &Ctx) {
        ctx.running(&mut self.on_deck);
    }

    /// A request begins at `now` (wall clock): the `Date` its response carries.
    #[inline]
    pub(super) fn update_date(&mut self, now: std::time::SystemTime) {
        self.date.update(now);
    }

    /// The trusted-proxy settings, made by `make` on this thread's first request.
    #[inline]
    pub(super) fn proxy_settings(
        &mut self,
        make: impl FnOnce() -> ProxySettings,
    ) -> &ProxySettings {
        self.proxy.get_or_insert_with(make)
    }

    /// The response's status line (`start_response`'s, or the 500's) and the access log's
    /// clock for this thread's lines: the log line carries the status.
    #[inline]
    pub(super) fn status_and_log_clock(&mut self) -> (&str, &mut access_log::Clock) {
        (&self.status, &mut self.log)
    }
}

/// One request's response, as the app drives it (`Exchange`); made and finished by `job`.
pub(super) struct Task<'a> {
    ctx: &'a Ctx,
    ch: &'a Arc<Shared>,
    req: &'a Request,
    body: &'a mut OverflowableBuffer,
    sc: &'a mut Scratch,
    meta: RequestMeta,
    headers: Vec<(String, String)>,
    /// The length `headers` give (`Exchange::start_response`).
    content_length: Option<u64>,
    started: bool,
    enc: Option<BodyEncoder>,
    send_continue: bool,
    /// Body bytes handed to the socket layer (access log `%b`).
    sent: u64,
    /// The client is gone or the socket failed: nothing more can be written.
    gone: bool,
    /// Output was gathered (not sent) since the last send: see `Exchange::app_may_block`.
    gathered: bool,
}

/// What a finished request's metrics and access-log line are made of (`Task::outcome`).
pub(super) struct Outcome<'t> {
    pub(super) req: &'t Request,
    /// The response's status line; "500" when no head went out.
    pub(super) status: &'t str,
    /// Body bytes handed to the socket layer (access log `%b`).
    pub(super) sent: u64,
    pub(super) headers: &'t [(String, String)],
    /// This thread's access-log clock.
    pub(super) log_clock: &'t mut access_log::Clock,
}

/// How `Task::output` treats bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Out {
    /// Send now (the head, files).
    Now,
    /// A streamed chunk: may be gathered with the next ones (up to `GATHER_BYTES`).
    Gather,
    /// The end of the response: send everything.
    Last,
}

pub(super) fn path(req: &Request) -> String {
    String::from_utf8_lossy(req.path()).into_owned()
}

/// Recycled header strings kept per app thread, at most (bytes of capacity).
const HEADERS_KEEP: usize = 4096;

impl<'a> Task<'a> {
    /// The response to `req` (whose body is `body`) on `ch`, on the app thread that owns
    /// `sc`; `send_continue`: a `100 Continue` is owed before the head.
    #[inline]
    pub(super) fn new(
        ctx: &'a Ctx,
        ch: &'a Arc<Shared>,
        req: &'a Request,
        body: &'a mut OverflowableBuffer,
        sc: &'a mut Scratch,
        meta: RequestMeta,
        send_continue: bool,
    ) -> Task<'a> {
        Task {
            ctx,
            ch,
            req,
            body,
            sc,
            meta,
            headers: Vec::new(),
            content_length: None,
            started: false,
            enc: None,
            send_continue,
            sent: 0,
            gone: false,
            gathered: false,
        }
    }

    /// The client is gone or the socket failed: nothing more could be written.
    #[inline]
    pub(super) fn client_gone(&self) -> bool {
        self.gone
    }

    /// The app thread's number (its `request_timeout` record).
    #[inline]
    pub(super) fn slot(&self) -> usize {
        self.sc.slot()
    }

    /// The request's HTTP version.
    #[inline]
    pub(super) fn version(&self) -> crate::http::Version {
        self.meta.version
    }

    /// The finished request as its metrics and access-log line see it.
    #[inline]
    pub(super) fn outcome(&mut self) -> Outcome<'_> {
        // Borrowed together: the log line carries the status.
        let (status, log_clock) = self.sc.status_and_log_clock();
        Outcome {
            req: self.req,
            status: if self.enc.is_some() { status } else { "500" },
            sent: self.sent,
            headers: &self.headers,
            log_clock,
        }
    }

    /// Keeps the response's headers for the thread's next `start_response` (through
    /// `Exchange::recycled_headers`), unless an app made them large.
    pub(super) fn recycle_headers(&mut self) {
        let headers = std::mem::take(&mut self.headers);
        let kept: usize = headers
            .iter()
            .map(|(k, v)| k.capacity() + v.capacity())
            .sum();
        if kept <= HEADERS_KEEP && headers.capacity() <= 64 {
            self.sc.headers = headers;
        }
    }

    /// Encodes the head into `sc.head` (after a owed `100 Continue`). False if the head
    /// cannot be encoded (the app's headers were not checked): handled as an app failure.
    fn encode_head(&mut self) -> bool {
        self.sc.head.clear();
        if self.send_continue {
            self.sc.head.extend_from_slice(CONTINUE);
            self.send_continue = false;
        }
        let head = ResponseHead {
            request: self.meta,
            status: &self.sc.status,
            headers: &self.headers,
            content_length: self.content_length,
            ident: self.ctx.opts.ident.as_deref(),
            date: self.sc.date.get(),
        };
        match head.encode(&mut self.sc.head) {
            Ok(enc) => {
                if enc.framing() == Framing::CloseDelimited {
                    // Before any of the body is out: only a complete body may end in a FIN.
                    sock::reset_on_close(self.ch.fd(), true);
                    self.ch.lock().close_delimited_begins();
                }
                self.enc = Some(enc);
                true
            }
            Err(e) => {
                log::error!(target: "waitress", "Exception while serving {}: {e}", path(self.req));
                false
            }
        }
    }

    /// Sends `parts` after pending output: straight to the socket when possible, else queued
    /// for the loop. Blocks (back-pressure) while more than the watermark is pending.
    fn output(&mut self, parts: &[&[u8]], mode: Out) -> Result<(), Disconnected> {
        let last = mode == Out::Last;
        if self.gone {
            return Err(Disconnected);
        }
        let len: usize = parts.iter().map(|p| p.len()).sum();
        // The end of a response with nothing left to add (a Content-Length body) still sends
        // what was gathered: no timer was armed for it, as the app never paused.
        if len == 0 && !(last && self.gathered) {
            return Ok(());
        }
        let wm = self.ctx.opts.outbuf_high_watermark;
        let mut st = self.ch.lock();
        if !st.start_output() {
            self.gone = true;
            return Err(Disconnected);
        }
        let ctx = self.ctx;
        st = self.ch.wait_for_reader(st, wm, true, |on| ctx.stalled(on));
        if st.is_closed() {
            self.gone = true;
            return Err(Disconnected);
        }
        let send_bytes = self.ctx.opts.send_bytes as u64;
        let r = if !last && st.out().pending() + (len as u64) < send_bytes {
            // `send_bytes` (deprecated): keep small writes until this much is pending.
            parts
                .iter()
                .try_for_each(|p| st.out_mut().push(p))
                .map(|_| true)
        } else if mode == Out::Gather && st.out().pending() + (len as u64) < GATHER_BYTES {
            // A streamed chunk: kept until GATHER_BYTES are pending, the response ends, or the
            // app takes GATHER_DELAY for its next chunk. The loop is told only in that last
            // case (`app_may_block`), so nothing is signalled here.
            let r = parts.iter().try_for_each(|p| st.out_mut().push(p));
            if r.is_ok() {
                self.gathered = true;
                self.ch.note_output(&st);
                return Ok(());
            }
            r.map(|_| true)
        } else if st.out().pending() >= send_bytes.max(1) && !self.gathered {
            // A send is pending: the last attempt found the socket full (a flush stops only
            // there), so its writable edge is coming and the loop sends then. Appending costs
            // no syscall, and these bytes go out with the rest in one vectored write.
            parts
                .iter()
                .try_for_each(|p| st.out_mut().push(p))
                .map(|_| false)
        } else {
            self.gathered = false;
            st.out_mut().send(self.ch.fd(), parts)
        };
        settle(self.ctx, self.ch, st, r, "send").inspect_err(|_| self.gone = true)
    }

    /// The app returned: send what is left (the head if nothing was written, the chunked
    /// terminator) and decide whether the connection stays open.
    pub(super) fn finish(&mut self) {
        if self.gone {
            return self.close_after();
        }
        let mut with_head = false;
        if self.enc.is_none() {
            if !self.started {
                return self.fail("start_response was not called");
            }
            if !self.encode_head() {
                return self.fail("invalid response head");
            }
            with_head = true;
        }
        let Some(enc) = self.enc.as_mut() else { return };
        let fin = enc.finish(&self.sc.status);
        if let Some(w) = fin.warning {
            log::warn!(target: "waitress", "{w}");
        }
        let close = fin.close || !enc.keep_alive();
        let delimited = enc.framing() == Framing::CloseDelimited;
        debug_assert!(close || !delimited, "a close-delimited body closes");
        let head = std::mem::take(&mut self.sc.head);
        let parts: [&[u8]; 2] = [if with_head { &head } else { &[] }, fin.trailer];
        // `output` locks only when it has bytes: for a close-delimited body (no trailer), only
        // when its head goes out here (an empty body).
        let r = self.output(&parts, Out::Last);
        self.sc.head = head;
        if r.is_err() || close {
            // One lock for the body's completion and the close (a close-delimited body always
            // closes: `BodyEncoder::finish`).
            let mut st = self.ch.lock();
            if r.is_ok() && delimited {
                st.close_delimited_complete();
            }
            st.no_more_requests();
        }
    }

    /// The app failed: a 500 if the head is not out yet, else cut the connection
    /// (waitress §3.6). Either way the connection closes.
    pub(super) fn fail(&mut self, traceback: &str) {
        if self.enc.is_none() && !self.gone {
            let tb = self.ctx.opts.expose_tracebacks.then_some(traceback);
            let mut bytes = Vec::new();
            if self.send_continue {
                bytes.extend_from_slice(CONTINUE);
            }
            let resp = crate::http::internal_error_response(
                self.meta.version,
                tb,
                self.ctx.opts.ident.as_deref(),
                self.sc.date.get(),
            );
            self.sent = access_log::body_len(&resp);
            bytes.extend_from_slice(&resp);
            self.sc.status.clear();
            self.sc.status.push_str("500 Internal Server Error");
            let _ = self.output(&[&bytes], Out::Last);
        }
        self.close_after();
    }

    /// No more requests on this connection: close once the output is sent.
    fn close_after(&mut self) {
        self.ch.lock().no_more_requests();
    }
}

/// After a send made under the channel lock: a failed send closes the channel (the client is
/// gone); otherwise, when output is left pending, the loop is told to send it (waitress
/// `write_soon`).
fn settle<T>(
    ctx: &Ctx,
    ch: &Arc<Shared>,
    mut st: MutexGuard<'_, ChanState>,
    r: std::io::Result<T>,
    what: &str,
) -> Result<(), Disconnected> {
    if let Err(e) = r {
        st.send_failed();
        drop(st);
        socket_error(ctx, what, e);
        return Err(Disconnected);
    }
    let tell_loop = ch.note_output(&st);
    drop(st);
    if tell_loop {
        ctx.notify_loop(ch.clone());
    }
    Ok(())
}

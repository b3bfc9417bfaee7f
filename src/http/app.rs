//! The seam between the server and the application: what an app thread sees of one request.
//!
//! The server implements [`Exchange`]; an [`App`] (a Rust test app, or the WSGI bridge in
//! `wsgi`) drives it. Waitress's vocabulary: one call of [`App::call`] is one `Task`.
use std::io::BufRead;
use std::mem::MaybeUninit;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// The client went away; nothing more can be written for this request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("client disconnected")]
pub struct Disconnected;

/// How an application call failed. The server answers 500 if the head is not yet sent, or cuts
/// the connection if it is (waitress §3.6). The app has already logged the failure (waitress's
/// `Exception while serving <path>`); the server only traces it at debug level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppFailure {
    /// Text for the 500 body when `expose_tracebacks` is on (the formatted Python traceback).
    pub traceback: String,
}

/// An application, shared by all app threads of a worker.
pub trait App: Send + Sync + 'static {
    /// Runs one app thread's whole life: `serve` loops over requests until the worker stops.
    /// The WSGI bridge attaches one Python thread state here for the thread's life.
    fn run_thread(&self, serve: &mut dyn FnMut()) {
        serve()
    }
    /// Serves one request on an app thread (inside `run_thread`).
    fn call(&self, ex: &mut dyn Exchange) -> Result<(), AppFailure>;
    /// `request_timeout`: called from another thread when the app thread `thread`
    /// (`pthread_self`) has been inside `call` too long; interrupts that call if the app can
    /// and `still_stuck()` says the same call is still running at that moment (asked where the
    /// interrupt is atomic with the thread's progress, e.g. under the GIL: the call may have
    /// returned meanwhile, and the thread's next request must not get the interrupt), and
    /// returns the thread's stack for the log.
    fn interrupt(&self, _thread: u64, _still_stuck: &dyn Fn() -> bool) -> Option<String> {
        None
    }
}

/// One request/response exchange, as seen from an app thread.
///
/// Response semantics are waitress's: `start_response` records the head; it goes out with the
/// first `write` (an empty one too, as waitress's `write(b"")`) or at the end; framing
/// (Content-Length, chunked, keep-alive/close, HEAD) is decided by the server when the head goes
/// out.
pub trait Exchange {
    /// The parsed request head, after trusted-proxy processing.
    fn request(&self) -> &crate::http::Request;
    /// The request body, complete before the app runs (in memory or spilled to a temp file).
    /// Reads past the end return 0 bytes.
    fn body(&mut self) -> &mut dyn BufRead;
    /// Body bytes not yet read from `body` (so a whole read can be sized up front).
    fn body_remaining(&self) -> u64;
    /// Fills `out` from `body` (`read_exact`), every byte written on success: a whole read is
    /// made straight into a bytes object that was not zeroed first.
    fn read_body_uninit(&mut self, out: &mut [MaybeUninit<u8>]) -> std::io::Result<()> {
        let mut tmp = vec![0u8; out.len()];
        self.body().read_exact(&mut tmp)?;
        for (o, b) in out.iter_mut().zip(tmp) {
            o.write(b);
        }
        Ok(())
    }
    /// Moves the read position of `body` to `to` bytes from its start (`wsgi.input.seek`): the
    /// body is complete and kept whole, so it can be read again. Past the end reads as the end.
    fn seek_body(&mut self, to: u64);
    /// The read position of `body` (`wsgi.input.tell`); plus `body_remaining`, the body's length.
    fn body_position(&self) -> u64;
    /// Records (or, before the head is sent, replaces) the response status and headers.
    /// Status and headers are already validated by the caller (the WSGI layer's start_response
    /// checks); `content_length` is the length they give, as the caller read it (the last
    /// Content-Length, `response::parse_int`), or the one it inferred and added.
    fn start_response(
        &mut self,
        status: &str,
        headers: Vec<(String, String)>,
        content_length: Option<u64>,
    );
    /// The headers of an earlier response of this thread, whose strings the caller may reuse
    /// for the next `start_response` (saves their allocations); empty if there are none.
    fn recycled_headers(&mut self) -> Vec<(String, String)> {
        Vec::new()
    }
    /// True once the head has gone out.
    fn head_sent(&self) -> bool;
    /// Appends body bytes; blocks while more than `outbuf_high_watermark` bytes are pending
    /// (call it with the GIL released).
    fn write(&mut self, data: &[u8]) -> Result<(), Disconnected>;
    /// True when `write` of `len` more bytes would block on back-pressure.
    fn write_would_block(&self, len: usize) -> bool;
    /// Queues `len` bytes of `file` from `offset`, sent zero-copy by the event loop.
    fn send_file(&mut self, file: std::fs::File, offset: u64, len: u64)
        -> Result<(), Disconnected>;
    /// A flag that turns true when the client is known to have gone (WSGI
    /// `waitress.client_disconnected`).
    fn disconnected(&self) -> Arc<AtomicBool>;
    /// The app call is running (the WSGI layer holds the GIL): the server may now wake
    /// another app thread for queued work.
    fn app_running(&mut self) {}
    /// The app is about to produce its next chunk, which may take long: bytes the server
    /// gathered from earlier `write`s must not wait for it (they go out within a bound).
    fn app_may_block(&mut self) {}
}

//! The `Exchange` the app drives on a `Task`: the request body's reads, `start_response`,
//! body writes (the head with the first) and files (`frame_file`), the back-pressure question
//! and the gathered-output hint. Part of `task` (a child module: it reaches the task's state).
use std::io::{BufRead, Seek, SeekFrom};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use super::{settle, Out, Task};
use crate::http::app::{Disconnected, Exchange};
use crate::http::encode::{BodyEncoder, ChunkPrefix, Framing};
use crate::http::Request;

impl Exchange for Task<'_> {
    fn request(&self) -> &Request {
        self.req
    }

    fn body(&mut self) -> &mut dyn BufRead {
        self.body
    }

    fn body_remaining(&self) -> u64 {
        self.body.remaining()
    }

    fn read_body_uninit(&mut self, out: &mut [std::mem::MaybeUninit<u8>]) -> std::io::Result<()> {
        self.body.read_exact_uninit(out)
    }

    fn seek_body(&mut self, to: u64) {
        // From the start: cannot fail (a position past the end is clamped to it).
        let _ = self.body.seek(SeekFrom::Start(to));
    }

    fn body_position(&self) -> u64 {
        self.body.len() - self.body.remaining()
    }

    fn start_response(
        &mut self,
        status: &str,
        headers: Vec<(String, String)>,
        content_length: Option<u64>,
    ) {
        if self.enc.is_some() {
            return; // the head is out; the caller re-raises (waitress §3.1)
        }
        self.sc.status.clear();
        self.sc.status.push_str(status);
        self.headers = headers;
        self.content_length = content_length;
        self.started = true;
    }

    fn recycled_headers(&mut self) -> Vec<(String, String)> {
        std::mem::take(&mut self.sc.headers)
    }

    fn head_sent(&self) -> bool {
        self.enc.is_some()
    }

    fn write(&mut self, data: &[u8]) -> Result<(), Disconnected> {
        if self.gone {
            return Err(Disconnected);
        }
        // An empty write before the head puts the head out (waitress `write(b"")`): the WSGI
        // layer uses it so that a failure right after is a cut connection, as in waitress.
        if data.is_empty() && self.enc.is_some() {
            return Ok(());
        }
        let first = self.enc.is_none();
        if first && (!self.started || !self.encode_head()) {
            // The caller reports this as an app failure; nothing went out yet.
            return Ok(());
        }
        let Some(enc) = self.enc.as_mut() else {
            return Ok(());
        };
        let (chunk, warning) = enc.encode(data);
        if let Some(w) = warning {
            log::warn!(target: "waitress", "{w}");
        }
        self.sent += chunk.data.len() as u64;
        let head = std::mem::take(&mut self.sc.head);
        let [p, d, s] = chunk.slices();
        let parts: [&[u8]; 4] = [if first { &head } else { &[] }, p, d, s];
        let r = self.output(&parts, if first { Out::Now } else { Out::Gather });
        self.sc.head = head;
        r
    }

    fn write_would_block(&self, len: usize) -> bool {
        let wm = self.ctx.opts.outbuf_high_watermark;
        // Asked before every write: nothing pending (the usual case, read without the lock;
        // this thread is the only one that adds output, and the loop only removes it).
        if !self.ch.has_output() {
            return len as u64 > wm;
        }
        let st = self.ch.lock();
        st.out().pending() + len as u64 > wm
    }

    fn send_file(
        &mut self,
        file: std::fs::File,
        offset: u64,
        len: u64,
    ) -> Result<(), Disconnected> {
        if self.gone {
            return Err(Disconnected);
        }
        let first = self.enc.is_none();
        if first && (!self.started || !self.encode_head()) {
            return Ok(());
        }
        let Some(enc) = self.enc.as_mut() else {
            return Ok(());
        };
        let (prefix, len) = frame_file(enc, len);
        let chunked = enc.framing() == Framing::Chunked && len > 0;
        if len == 0 && !first {
            return Ok(());
        }
        self.sent += len;
        let head = std::mem::take(&mut self.sc.head);
        let parts: [&[u8]; 2] = [if first { &head } else { &[] }, prefix.as_bytes()];
        let r = self.output(&parts, Out::Now);
        self.sc.head = head;
        r?;
        let mut st = self.ch.lock();
        st.out_mut().push_file(file, offset, len);
        let r = if chunked {
            st.out_mut().send(self.ch.fd(), &[b"\r\n"])
        } else {
            st.out_mut().flush(self.ch.fd())
        };
        settle(self.ctx, self.ch, st, r, "sendfile").inspect_err(|_| self.gone = true)
    }

    fn disconnected(&self) -> Arc<AtomicBool> {
        self.ch.disconnected_flag()
    }

    fn app_running(&mut self) {
        self.sc.off_deck(self.ctx);
    }

    fn app_may_block(&mut self) {
        if !self.gathered {
            return;
        }
        let mut st = self.ch.lock();
        if !st.arm_flush() {
            return;
        }
        drop(st);
        self.ctx.flush_soon(self.ch.clone());
    }
}

/// Frames `len` bytes of a file the way `BodyEncoder::encode` frames a slice: returns the
/// chunk-size line (empty unless chunked) and how many bytes may be sent (cut at the
/// Content-Length, none for bodiless responses).
// The encoder only offers slice framing; files are accounted through its fields here.
fn frame_file(enc: &mut BodyEncoder, len: u64) -> (ChunkPrefix, u64) {
    match enc.framing {
        Framing::Length(n) => {
            let allowed = len.min(n.saturating_sub(enc.written));
            enc.written += allowed;
            (ChunkPrefix::default(), allowed)
        }
        Framing::Chunked if len > 0 => {
            enc.written += len;
            (ChunkPrefix::new(len), len)
        }
        Framing::Chunked => (ChunkPrefix::default(), 0),
        Framing::CloseDelimited => {
            enc.written += len;
            (ChunkPrefix::default(), len)
        }
        Framing::None => {
            enc.ignored += len;
            (ChunkPrefix::default(), 0)
        }
    }
}

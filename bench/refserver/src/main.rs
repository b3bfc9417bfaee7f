//! The benchmark's no-Python reference server: one thread, one mio poll, edge-triggered,
//! HTTP/1.1 keep-alive, httparse for heads. It answers the benchmark rows only:
//! `GET /` (13-byte hello), `GET /64k` (65,536 bytes), `GET /stream` (100 × 1 KiB chunked) and
//! any `POST` with a Content-Length (the body is read to the end and dropped, then hello).
//! It is the floor: what the rows cost with no Python and no WSGI in the way.
//!
//!     refserver 127.0.0.1:PORT
use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};

const LISTENER: Token = Token(0);
const HELLO: &[u8] = b"Hello, World!";

struct Conn {
    sock: TcpStream,
    inbuf: Vec<u8>,
    out: Vec<u8>,
    sent: usize,
    /// Body bytes of the current POST still to read.
    body_left: usize,
}

fn respond(out: &mut Vec<u8>, path: &[u8]) {
    match path {
        b"/64k" => {
            out.extend_from_slice(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 65536\r\n\r\n",
            );
            out.resize(out.len() + 65536, b'x');
        }
        b"/stream" => {
            out.extend_from_slice(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n",
            );
            for _ in 0..100 {
                out.extend_from_slice(b"400\r\n");
                out.resize(out.len() + 1024, b'x');
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"0\r\n\r\n");
        }
        _ => {
            out.extend_from_slice(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\n",
            );
            out.extend_from_slice(HELLO);
        }
    }
}

impl Conn {
    /// Parses what is buffered; queues responses. Returns false on a bad request.
    fn process(&mut self) -> bool {
        loop {
            if self.body_left > 0 {
                let take = self.body_left.min(self.inbuf.len());
                self.inbuf.drain(..take);
                self.body_left -= take;
                if self.body_left > 0 {
                    return true;
                }
                respond(&mut self.out, b"/");
            }
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut req = httparse::Request::new(&mut headers);
            let n = match req.parse(&self.inbuf) {
                Ok(httparse::Status::Complete(n)) => n,
                Ok(httparse::Status::Partial) => return true,
                Err(_) => return false,
            };
            let post = req.method == Some("POST");
            let path = req.path.unwrap_or("/").as_bytes().to_vec();
            let len = req
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse().ok())
                .unwrap_or(0usize);
            self.inbuf.drain(..n);
            if post && len > 0 {
                self.body_left = len;
                continue;
            }
            respond(&mut self.out, &path);
        }
    }

    /// Sends what is queued; false when the connection failed.
    fn flush(&mut self) -> bool {
        while self.sent < self.out.len() {
            match self.sock.write(&self.out[self.sent..]) {
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        self.out.clear();
        self.sent = 0;
        true
    }

    /// Reads until EAGAIN; false when the connection is over.
    fn read(&mut self, scratch: &mut [u8]) -> bool {
        loop {
            match self.sock.read(scratch) {
                Ok(0) => return false,
                Ok(n) => {
                    if self.body_left >= n && self.inbuf.is_empty() {
                        self.body_left -= n; // body bytes: dropped without a copy
                        if self.body_left == 0 {
                            respond(&mut self.out, b"/");
                        }
                        continue;
                    }
                    self.inbuf.extend_from_slice(&scratch[..n]);
                    if !self.process() {
                        return false;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
    }
}

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8080".into())
        .parse()
        .map_err(|e| std::io::Error::new(ErrorKind::InvalidInput, e))?;
    let mut poll = Poll::new()?;
    let mut listener = TcpListener::bind(addr)?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    eprintln!("refserver on http://{}", listener.local_addr()?);
    let mut conns: HashMap<usize, Conn> = HashMap::new();
    let mut next = 1usize;
    let mut events = Events::with_capacity(1024);
    let mut scratch = vec![0u8; 64 * 1024];
    loop {
        if let Err(e) = poll.poll(&mut events, None) {
            if e.kind() == ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        for ev in events.iter() {
            if ev.token() == LISTENER {
                while let Ok((mut sock, _)) = listener.accept() {
                    let _ = sock.set_nodelay(true);
                    let t = Token(next);
                    next += 1;
                    poll.registry().register(
                        &mut sock,
                        t,
                        Interest::READABLE | Interest::WRITABLE,
                    )?;
                    conns.insert(
                        t.0,
                        Conn {
                            sock,
                            inbuf: Vec::new(),
                            out: Vec::new(),
                            sent: 0,
                            body_left: 0,
                        },
                    );
                }
                continue;
            }
            let Some(c) = conns.get_mut(&ev.token().0) else {
                continue;
            };
            let mut alive = true;
            if ev.is_readable() || ev.is_read_closed() {
                alive = c.read(&mut scratch);
            }
            if alive && !c.out.is_empty() {
                alive = c.flush();
            }
            if !alive {
                if let Some(mut c) = conns.remove(&ev.token().0) {
                    let _ = poll.registry().deregister(&mut c.sock);
                }
            }
        }
    }
}

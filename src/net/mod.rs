//! Sockets and identity: binding listeners (socket2) and dropping privileges.
//!
//! CONTRACT: `Listener` is what the supervisor binds (before forking) and the server polls.
use std::net::TcpListener;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;

/// A bound, listening, non-blocking socket.
#[derive(Debug)]
pub enum Listener {
    Tcp(TcpListener),
    /// A unix socket and its path (removed at exit by whoever bound it).
    Unix(UnixListener, PathBuf),
}

impl Listener {
    /// `http://HOST:PORT` (IPv6 bracketed, real port for port 0) or `http://unix:/path`.
    pub fn url(&self) -> String {
        match self {
            Listener::Tcp(l) => match l.local_addr() {
                Ok(a) => format!("http://{a}"),
                Err(_) => "http://?".to_string(),
            },
            Listener::Unix(_, p) => format!("http://unix:{}", p.display()),
        }
    }
}

//! Sockets and identity: binding listeners (socket2) and dropping privileges.
//!
//! CONTRACT: `Listener` is what the supervisor binds (before forking) and the server polls.
use std::net::TcpListener;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;

pub mod bind;
pub mod privileges;

pub use bind::{bind_tcp, bind_unix, from_inherited_fd, refit, BindError};
pub use privileges::{set_umask, Identity, PrivilegeError};

/// A bound, listening, non-blocking socket.
#[derive(Debug)]
pub enum Listener {
    Tcp(TcpListener),
    /// A unix socket and its path (removed at exit by whoever bound it).
    Unix(UnixListener, PathBuf),
}

impl Listener {
    /// The URL clients use: `http://HOST:PORT` (IPv6 bracketed, the real port for port 0),
    /// `https://` when `tls` (`certfile` is set), or `http://unix:/path` (unix sockets stay
    /// plain).
    pub fn url(&self, tls: bool) -> String {
        match self {
            // `SocketAddr`'s Display brackets IPv6 (`[::1]:8080`), as waitress's multi-listener
            // form does (§4.8); the bound address gives the real port for port 0.
            Listener::Tcp(l) => {
                let scheme = if tls { "https" } else { "http" };
                match l.local_addr() {
                    Ok(a) => format!("{scheme}://{a}"),
                    Err(_) => format!("{scheme}://?"),
                }
            }
            Listener::Unix(_, p) => format!("http://unix:{}", p.display()),
        }
    }

    /// A second handle on the same socket (dup), e.g. for a worker after fork.
    pub fn try_clone(&self) -> std::io::Result<Listener> {
        Ok(match self {
            Listener::Tcp(l) => Listener::Tcp(l.try_clone()?),
            Listener::Unix(l, p) => Listener::Unix(l.try_clone()?, p.clone()),
        })
    }

    /// What identifies this listener across a reload: the TCP address or the unix path.
    pub fn key(&self) -> ListenKey {
        match self {
            Listener::Tcp(l) => match l.local_addr() {
                Ok(a) => ListenKey::Tcp(a),
                Err(_) => ListenKey::Fd(l.as_raw_fd()),
            },
            Listener::Unix(_, p) => ListenKey::Unix(p.clone()),
        }
    }

    pub fn raw_fd(&self) -> RawFd {
        match self {
            Listener::Tcp(l) => l.as_raw_fd(),
            Listener::Unix(l, _) => l.as_raw_fd(),
        }
    }
}

/// A listener's identity, for keeping open sockets across a reload.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ListenKey {
    Tcp(std::net::SocketAddr),
    Unix(PathBuf),
    /// An inherited socket whose address could not be read.
    Fd(RawFd),
}

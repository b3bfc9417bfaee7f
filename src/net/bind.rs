//! Binding listeners the way waitress does (§1.5, §1.6): SO_REUSEADDR, IPV6_V6ONLY, `backlog`,
//! unix sockets replaced when stale and chmod-ed to `unix_socket_perms`; plus inherited sockets
//! (systemd `LISTEN_FDS`).
use std::net::SocketAddr;
use std::os::fd::{FromRawFd, RawFd};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

use socket2::{Domain, SockAddr, Socket, Type};

use super::Listener;

/// Why a listener could not be made (exit code 3).
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("cannot listen on {addr}: {source}{}", bind_hint(*addr, source))]
    Tcp {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot listen on unix socket {}: {source}{}", path.display(), unix_hint(path, source))]
    Unix {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot listen on unix socket {}: a file that is not a socket is in the way", path.display())]
    NotASocket { path: PathBuf },
    #[error("cannot listen on unix socket {}: a running process answers on it (stop it first, or set another unix_socket)", path.display())]
    UnixInUse { path: PathBuf },
    #[error("inherited file descriptor {fd} is not a listening stream socket: {reason}")]
    Inherited { fd: RawFd, reason: String },
}

/// The fix for the two bind errors users meet: a privileged port, a port in use.
fn bind_hint(addr: SocketAddr, e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::EACCES) if addr.port() < 1024 => format!(
            " (ports below 1024 need root: start waitressd as root and set user = to the \
             account the app runs as, or give it CAP_NET_BIND_SERVICE, or use a port of 1024 \
             or more, e.g. --port {})",
            8000 + addr.port()
        ),
        Some(libc::EADDRINUSE) => format!(
            " (another process listens there: stop it (ss -ltnp 'sport = :{}' names it) or \
             choose another port with --port or listen =)",
            addr.port()
        ),
        _ => String::new(),
    }
}

/// The fix for the unix socket errors users meet: a missing or unwritable directory.
fn unix_hint(path: &Path, e: &std::io::Error) -> String {
    let dir = path
        .parent()
        .map(|d| d.display().to_string())
        .unwrap_or_default();
    match e.raw_os_error() {
        Some(libc::ENOENT) => format!(
            " (its directory {dir} does not exist: create it, e.g. RuntimeDirectory= in the \
             systemd unit for one under /run)"
        ),
        Some(libc::EACCES) => format!(
            " (the master cannot write in {dir}: start it as a user that can, or choose \
             another directory)"
        ),
        _ => String::new(),
    }
}

/// Binds and listens on one TCP address (non-blocking, close-on-exec).
pub fn bind_tcp(addr: SocketAddr, backlog: i32) -> Result<Listener, BindError> {
    let err = |source| BindError::Tcp { addr, source };
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, None).map_err(err)?;
    // waitress sets SO_REUSEADDR on every listener (wasyncore `set_reuse_addr`).
    sock.set_reuse_address(true).map_err(err)?;
    if addr.is_ipv6() {
        // waitress: one socket per family, never a dual-stack socket (`*:80` is two sockets).
        sock.set_only_v6(true).map_err(err)?;
    }
    sock.bind(&addr.into()).map_err(err)?;
    sock.listen(backlog).map_err(err)?;
    sock.set_nonblocking(true).map_err(err)?;
    Ok(Listener::Tcp(sock.into()))
}

/// Binds a unix socket: a stale socket file (nothing answers on it) is replaced; a live one
/// (another daemon's) and any other file are errors and left alone. The file is chmod-ed to
/// `perms` and, when `owner` is given, chown-ed so a dropped user can use it.
pub fn bind_unix(
    path: &Path,
    perms: u32,
    backlog: i32,
    owner: Option<(u32, u32)>,
) -> Result<Listener, BindError> {
    let err = |source| BindError::Unix {
        path: path.to_path_buf(),
        source,
    };
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => {
            if answers(path).map_err(err)? {
                return Err(BindError::UnixInUse {
                    path: path.to_path_buf(),
                });
            }
            std::fs::remove_file(path).map_err(err)?
        }
        Ok(_) => {
            return Err(BindError::NotASocket {
                path: path.to_path_buf(),
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(err(e)),
    }
    let sock = Socket::new(Domain::UNIX, Type::STREAM, None).map_err(err)?;
    sock.bind(&SockAddr::unix(path).map_err(err)?)
        .map_err(err)?;
    // waitress creates the file under the umask and then chmods it (§1.6).
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(perms)).map_err(err)?;
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::lchown(path, Some(uid), Some(gid)).map_err(err)?;
    }
    sock.listen(backlog).map_err(err)?;
    sock.set_nonblocking(true).map_err(err)?;
    Ok(Listener::Unix(sock.into(), path.to_path_buf()))
}

/// A socket a reload keeps open gets the reloaded `backlog` (listen(2) again: Linux resizes
/// the accept queue of a listening socket in place) and, for a unix socket whose file is still
/// there, `perms` and `owner`, as `bind_unix` gives a new one.
pub fn refit(
    l: &Listener,
    perms: u32,
    backlog: i32,
    owner: Option<(u32, u32)>,
) -> std::io::Result<()> {
    match l {
        Listener::Tcp(t) => socket2::SockRef::from(t).listen(backlog),
        Listener::Unix(u, path) => {
            match std::fs::symlink_metadata(path) {
                Ok(m) if m.file_type().is_socket() => {
                    std::fs::set_permissions(path, std::fs::Permissions::from_mode(perms))?;
                    if let Some((uid, gid)) = owner {
                        std::os::unix::fs::lchown(path, Some(uid), Some(gid))?;
                    }
                }
                // Removed, or replaced by another kind of file: not ours to change.
                _ => {}
            }
            socket2::SockRef::from(u).listen(backlog)
        }
    }
}

/// True if a process listens on the unix socket at `path` (a non-blocking connect: accepted
/// or queued, or refused only because its backlog is full); false if it is stale.
fn answers(path: &Path) -> std::io::Result<bool> {
    let probe = Socket::new(Domain::UNIX, Type::STREAM, None)?;
    probe.set_nonblocking(true)?;
    match probe.connect(&SockAddr::unix(path)?) {
        Ok(()) => Ok(true),
        Err(e) => match e.raw_os_error() {
            Some(libc::ECONNREFUSED) | Some(libc::ENOENT) => Ok(false),
            Some(libc::EAGAIN) | Some(libc::EINPROGRESS) => Ok(true),
            _ => Err(e),
        },
    }
}

/// Takes over an inherited listening socket (systemd socket activation): it must be a
/// stream socket in the listening state; it is made non-blocking and close-on-exec.
pub fn from_inherited_fd(fd: RawFd) -> Result<Listener, BindError> {
    let bad = |reason: String| BindError::Inherited { fd, reason };
    // SAFETY: fstat only reads the descriptor's metadata; no ownership is taken yet.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is a valid, writable stat buffer.
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return Err(bad(std::io::Error::last_os_error().to_string()));
    }
    if st.st_mode & libc::S_IFMT != libc::S_IFSOCK {
        return Err(bad("not a socket".into()));
    }
    // SAFETY: the fd is open and a socket (checked above); systemd passed it to us and nothing
    // else in this process owns it (LISTEN_PID matched our pid).
    let sock = unsafe { Socket::from_raw_fd(fd) };
    let check = || -> std::io::Result<Option<SocketAddr>> {
        if sock.r#type()? != Type::STREAM {
            return Err(std::io::Error::other("not a stream socket"));
        }
        if !sock.is_listener()? {
            return Err(std::io::Error::other("not listening"));
        }
        sock.set_nonblocking(true)?;
        sock.set_cloexec(true)?;
        Ok(sock.local_addr()?.as_socket())
    };
    match check() {
        Ok(Some(_)) => Ok(Listener::Tcp(sock.into())),
        Ok(None) => {
            let path = sock
                .local_addr()
                .ok()
                .and_then(|a| a.as_pathname().map(Path::to_path_buf))
                .unwrap_or_else(|| PathBuf::from(format!("fd{fd}")));
            Ok(Listener::Unix(sock.into(), path))
        }
        Err(e) => {
            // Give the descriptor back untouched: it is not ours to close.
            std::mem::forget(sock);
            Err(bad(e.to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::fd::IntoRawFd;

    #[test]
    fn tcp_listeners_report_real_port_and_brackets() {
        for (addr, prefix) in [
            ("127.0.0.1:0", "http://127.0.0.1:"),
            ("[::1]:0", "http://[::1]:"),
        ] {
            let Ok(l) = bind_tcp(addr.parse().unwrap(), 16) else {
                continue; // no IPv6 on this host
            };
            let url = l.url(false);
            assert!(url.starts_with(prefix), "{url}");
            assert!(!url.ends_with(":0"), "{url}");
        }
    }

    #[test]
    fn ipv6_listener_is_v6only_and_reuseaddr() {
        let Ok(Listener::Tcp(l)) = bind_tcp("[::1]:0".parse().unwrap(), 16) else {
            return;
        };
        let s = socket2::SockRef::from(&l);
        assert!(s.only_v6().unwrap());
        assert!(s.reuse_address().unwrap());
    }

    #[test]
    fn port_in_use_is_a_bind_error_naming_the_address() {
        let a = bind_tcp("127.0.0.1:0".parse().unwrap(), 16).unwrap();
        let Listener::Tcp(t) = &a else { unreachable!() };
        let addr = t.local_addr().unwrap();
        let e = bind_tcp(addr, 16).unwrap_err();
        assert!(e.to_string().contains(&addr.to_string()), "{e}");
    }

    #[test]
    fn unix_socket_stale_file_replaced_other_file_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        let first = bind_unix(&path, 0o600, 16, None).unwrap();
        drop(first); // leaves a stale socket file behind
        let l = bind_unix(&path, 0o660, 16, None).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o660);
        assert_eq!(l.url(false), format!("http://unix:{}", path.display()));
        let Listener::Unix(ul, _) = &l else {
            unreachable!()
        };
        ul.set_nonblocking(false).unwrap();
        let mut c = std::os::unix::net::UnixStream::connect(&path).unwrap();
        c.write_all(b"x").unwrap();
        let (mut s, _) = ul.accept().unwrap();
        let mut b = [0u8; 1];
        s.read_exact(&mut b).unwrap();

        // A live socket (someone listens) is refused and left in place.
        let again = bind_unix(&path, 0o600, 16, None).unwrap_err();
        assert!(matches!(again, BindError::UnixInUse { .. }), "{again}");
        assert!(path.exists());
        drop(l);
        assert!(
            bind_unix(&path, 0o600, 16, None).is_ok(),
            "stale again: rebound"
        );

        let plain = dir.path().join("plain");
        std::fs::write(&plain, b"data").unwrap();
        assert!(matches!(
            bind_unix(&plain, 0o600, 16, None),
            Err(BindError::NotASocket { .. })
        ));
        assert_eq!(std::fs::read(&plain).unwrap(), b"data");
    }

    #[test]
    fn inherited_fd_must_be_a_listening_socket() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let got = from_inherited_fd(l.into_raw_fd()).unwrap();
        assert_eq!(got.url(false), format!("http://{addr}"));

        let f = std::fs::File::open("/dev/null").unwrap();
        assert!(from_inherited_fd(std::os::fd::AsRawFd::as_raw_fd(&f)).is_err());
        let unbound = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        assert!(from_inherited_fd(std::os::fd::AsRawFd::as_raw_fd(&unbound)).is_err());
    }
}

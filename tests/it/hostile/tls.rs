//! The whole hostile corpus over TLS: the daemon serves with a certificate, and a relay in
//! the test process turns each plain connection of the harness into a TLS connection to it
//! (every read of the harness's bytes becomes its own TLS write, so pieces stay pieces; a
//! close on either side is passed on). Statuses, closes and what the app saw must be the same
//! as over plain TCP.
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::sync::Arc;

use nix::poll::{PollFd, PollFlags, PollTimeout};

use super::{corpus_failures, Delivery, GROUPS};
use crate::tls::certs;

/// Relays plain connections on a local port to TLS connections to `target`.
pub(crate) fn relay(target: String, cfg: Arc<rustls::ClientConfig>) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for plain in l.incoming().flatten() {
            let (t, c) = (target.clone(), cfg.clone());
            std::thread::spawn(move || pump(plain, &t, c));
        }
    });
    addr
}

fn pump(mut plain: TcpStream, target: &str, cfg: Arc<rustls::ClientConfig>) {
    let Ok(mut sock) = TcpStream::connect(target) else {
        return;
    };
    let mut tls = rustls::ClientConnection::new(cfg, "localhost".try_into().unwrap()).unwrap();
    let _ = sock.set_nodelay(true);
    sock.set_nonblocking(true).unwrap();
    plain.set_nonblocking(true).unwrap();
    let mut plain_open = true;
    let mut buf = [0u8; 16384];
    loop {
        while tls.wants_write() {
            match tls.write_tls(&mut sock) {
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(_) => return,
            }
        }
        let (pi, si) = {
            let mut fds = vec![PollFd::new(
                sock.as_fd(),
                if tls.wants_write() {
                    PollFlags::POLLIN | PollFlags::POLLOUT
                } else {
                    PollFlags::POLLIN
                },
            )];
            if plain_open {
                fds.push(PollFd::new(plain.as_fd(), PollFlags::POLLIN));
            }
            if nix::poll::poll(&mut fds, PollTimeout::from(10_000u16)).unwrap_or(0) <= 0 {
                return;
            }
            let ready = |f: &PollFd| f.revents().is_some_and(|r| !r.is_empty());
            (fds.get(1).is_some_and(ready), ready(&fds[0]))
        };
        if pi {
            match plain.read(&mut buf) {
                Ok(0) => {
                    // The harness half-closed: so does the relay, towards the server.
                    tls.send_close_notify();
                    plain_open = false;
                }
                Ok(n) => {
                    let _ = tls.writer().write_all(&buf[..n]);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(_) => return,
            }
        }
        if si {
            match tls.read_tls(&mut sock) {
                Ok(0) => {
                    let _ = plain.shutdown(std::net::Shutdown::Both);
                    return;
                }
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(_) => {
                    let _ = plain.shutdown(std::net::Shutdown::Both);
                    return;
                }
            }
            if tls.process_new_packets().is_err() {
                let _ = plain.shutdown(std::net::Shutdown::Both);
                return;
            }
            loop {
                match tls.reader().read(&mut buf) {
                    Ok(0) => {
                        let _ = plain.shutdown(std::net::Shutdown::Both);
                        return;
                    }
                    Ok(n) => {
                        plain.set_nonblocking(false).unwrap();
                        let ok = plain.write_all(&buf[..n]).is_ok();
                        plain.set_nonblocking(true).unwrap();
                        if !ok {
                            return;
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(_) => {
                        let _ = plain.shutdown(std::net::Shutdown::Both);
                        return;
                    }
                }
            }
        }
    }
}

#[test]
fn every_case_behaves_the_same_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let ca = certs::ca(dir.path());
    let (cert, key) = certs::issue(dir.path(), "srv", "ecdsa", false);
    let cfg = certs::client(&ca, 13, None);
    let args = [
        "--certfile",
        cert.to_str().unwrap(),
        "--keyfile",
        key.to_str().unwrap(),
    ];
    let mut failures = Vec::new();
    for delivery in [Delivery::Whole, Delivery::Pieces] {
        for (group, cases) in GROUPS {
            failures.extend(corpus_failures(group, cases, delivery, &args, &|addr| {
                relay(addr.to_string(), cfg.clone())
            }));
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed over TLS:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

//! One status connection (`Conn`): its head read, its answer written, then its orderly close
//! (the write side shut, what the client still sends discarded until its end of file). Part
//! of `status`, which accepts, polls, evicts and expires these.
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Instant;

use super::answer::answer;
use super::{Board, DRAIN_PER_TURN, IO_TIMEOUT};

/// One status connection.
pub(super) struct Conn {
    pub(super) stream: TcpStream,
    pub(super) stage: Stage,
    /// Accepted at this instant; closed `IO_TIMEOUT` later if not done.
    pub(super) opened: Instant,
}

/// Where a connection is: reading its head, writing its response, then draining.
pub(super) enum Stage {
    /// The request head so far.
    Head(Vec<u8>),
    /// The response and how many of its bytes are written.
    Answer(Vec<u8>, usize),
    /// The response is written and the write side shut: what the client still sends is
    /// discarded until its end of file, then the socket is closed with nothing unread.
    Drain,
}

impl Conn {
    pub(super) fn new(stream: TcpStream, now: Instant) -> Conn {
        Conn {
            stream,
            stage: Stage::Head(Vec::with_capacity(1024)),
            opened: now,
        }
    }

    /// Closed at this instant if not done.
    pub(super) fn deadline(&self) -> Instant {
        self.opened + IO_TIMEOUT
    }

    /// How readily the connection is closed to make room for a new one while the table is
    /// full (lower first; None: never). One still waiting for its request head (idle, or
    /// sending it slowly) goes first; then one answered whose client neither closes nor
    /// stops sending; one whose answer is still being written is kept (its client asked
    /// and reads).
    pub(super) fn eviction_rank(&self) -> Option<u8> {
        match self.stage {
            Stage::Head(_) => Some(0),
            Stage::Drain => Some(1),
            Stage::Answer(..) => None,
        }
    }

    /// Reads what has arrived, answers once the head is complete, writes what the socket
    /// takes, then drains. False: done or failed, to be closed.
    pub(super) fn progress(&mut self, board: &Board) -> bool {
        let mut chunk = [0u8; 1024];
        while let Stage::Head(head) = &mut self.stage {
            match self.stream.read(&mut chunk) {
                Ok(0) => return false,
                Ok(n) => {
                    head.extend_from_slice(&chunk[..n]);
                    if let Some(out) = answer(head, board) {
                        self.stage = Stage::Answer(out, 0);
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        if let Stage::Answer(out, sent) = &mut self.stage {
            while *sent < out.len() {
                match self.stream.write(&out[*sent..]) {
                    Ok(0) => return false,
                    Ok(n) => *sent += n,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(_) => return false,
                }
            }
            // The FIN goes out now, also while a forked child still holds a copy of the
            // descriptor (see Drop).
            if self.stream.shutdown(Shutdown::Write).is_err() {
                return false;
            }
            self.stage = Stage::Drain;
        }
        let mut sink = [0u8; 16 * 1024];
        let mut drained = 0;
        while drained < DRAIN_PER_TURN {
            match self.stream.read(&mut sink) {
                Ok(0) => return false,
                Ok(n) => drained += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        true // more next turn
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        // shutdown, not only close: a process forked while this connection was open holds a
        // copy of its descriptor until it closes it (a worker closes the master's descriptors
        // first thing, the USR2 child at its exec: close-on-exec), and the client would not
        // see the end until then. (Write only: a read shutdown discards nothing and prevents
        // no reset; a connection closed here before its drain ended is a failed, expired or
        // evicted one.)
        let _ = self.stream.shutdown(Shutdown::Write);
    }
}

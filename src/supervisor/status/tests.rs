//! Tests of `status`'s connection table: eviction for a waiting client, and its limits.
use super::*;
use std::io::{Read, Write};

/// Every connection's revents as POLLIN (the listener's too).
fn all_readable(st: &Status) -> Vec<PollFlags> {
    vec![PollFlags::POLLIN; st.conns.len() + 1]
}

#[test]
fn a_full_table_makes_room_for_a_waiting_client_by_closing_the_oldest_idle_connection() {
    let mut st = Status::start("127.0.0.1:0".parse().unwrap(), None).unwrap();
    let connect = || std::net::TcpStream::connect(st.addr).unwrap();
    let mut idle: Vec<std::net::TcpStream> = (0..MAX_ACTIVE).map(|_| connect()).collect();
    let late: Vec<std::net::TcpStream> = (0..3).map(|_| connect()).collect();
    // One turn takes MAX_ACTIVE; the rest wait until a connection is old enough to go.
    let t0 = Instant::now();
    st.serve_at(t0, &[PollFlags::POLLIN]);
    assert_eq!(st.conns.len(), MAX_ACTIVE);
    assert!(
        !st.accepting(t0 + EVICT_MIN_AGE / 2),
        "none is evictable yet"
    );
    assert_eq!(st.next_deadline(t0), Some(t0 + EVICT_MIN_AGE));
    assert!(st.accepting(t0 + EVICT_MIN_AGE));
    // The first idle client asks and is answered (it drains); the next turn takes the
    // three late clients, closing the three oldest connections still waiting for a head.
    idle[0].write_all(b"GET /live HTTP/1.1\r\n\r\n").unwrap();
    let t1 = t0 + EVICT_MIN_AGE;
    st.serve_at(t1, &all_readable(&st));
    assert_eq!(st.conns.len(), MAX_ACTIVE);
    let mut got = String::new();
    idle[0].read_to_string(&mut got).unwrap();
    assert!(got.starts_with("HTTP/1.1 200 OK"), "{got}");
    let closed: Vec<usize> = (1..MAX_ACTIVE)
        .filter(|&i| {
            idle[i].set_nonblocking(true).unwrap();
            matches!(idle[i].read(&mut [0u8; 8]), Ok(0))
        })
        .collect();
    assert_eq!(closed.len(), 3, "{closed:?}");
    for mut s in late {
        s.write_all(b"GET /ready HTTP/1.1\r\n\r\n").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        st.serve_at(t1, &all_readable(&st));
        let mut got = String::new();
        s.read_to_string(&mut got).unwrap();
        assert!(
            got.starts_with("HTTP/1.1 503"),
            "a late client is answered: {got}"
        );
    }
}

#[test]
fn answers_being_written_are_not_evicted_and_stop_accepting_when_they_fill_the_table() {
    let mut st = Status::start("127.0.0.1:0".parse().unwrap(), None).unwrap();
    let _clients: Vec<std::net::TcpStream> = (0..MAX_ACTIVE)
        .map(|_| std::net::TcpStream::connect(st.addr).unwrap())
        .collect();
    let t0 = Instant::now();
    st.serve_at(t0, &[PollFlags::POLLIN]);
    for c in &mut st.conns {
        c.stage = Stage::Answer(b"HTTP/1.1 200 OK\r\n".to_vec(), 0);
    }
    let later = t0 + EVICT_MIN_AGE * 2;
    assert!(!st.accepting(later));
    let _late = std::net::TcpStream::connect(st.addr).unwrap();
    st.accept(later);
    assert_eq!(st.conns.len(), MAX_ACTIVE);
    assert!(st
        .conns
        .iter()
        .all(|c| matches!(c.stage, Stage::Answer(..))));
}

/// A full table of idle connections, all evictable, with no new client: the master sleeps
/// until the first one expires (before: the instants they became evictable, all past, made
/// its poll return at once, and the master spun at full CPU while they stayed open).
#[test]
fn a_full_table_of_evictable_connections_does_not_wake_the_master_at_once() {
    let mut st = Status::start("127.0.0.1:0".parse().unwrap(), None).unwrap();
    let _idle: Vec<std::net::TcpStream> = (0..MAX_ACTIVE)
        .map(|_| std::net::TcpStream::connect(st.addr).unwrap())
        .collect();
    let t0 = Instant::now();
    st.serve_at(t0, &[PollFlags::POLLIN]);
    assert_eq!(st.conns.len(), MAX_ACTIVE);
    let later = t0 + EVICT_MIN_AGE * 2;
    assert!(
        st.accepting(later),
        "the listener is polled for a waiting client"
    );
    assert_eq!(st.next_deadline(later), Some(t0 + IO_TIMEOUT));
}

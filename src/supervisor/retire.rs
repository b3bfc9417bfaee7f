//! Why a worker is retired (`Retire`): a worker that must go while healthy work is still in it
//! (`max_requests` reached, a request stuck past `request_timeout`, RSS over
//! `max_worker_memory`). The worker asks over its status pipe with `Retire::byte`; the master
//! reads `max_worker_memory`'s RSS with `rss` (so does `/metrics`). How a retirement is carried
//! out (replace first, then stop the old one gracefully) is in children.rs.
/// Why a worker is retired. Workers ask over their status pipe with `byte()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retire {
    /// It served `max_requests` (+ jitter) requests.
    MaxRequests,
    /// A request outlived `request_timeout` and did not return when interrupted.
    StuckRequest,
    /// Its resident memory (bytes) exceeded `max_worker_memory`.
    Memory(u64),
}

impl Retire {
    /// The status-pipe byte a worker sends to ask for this (None: decided by the master).
    pub fn byte(self) -> Option<u8> {
        match self {
            Retire::MaxRequests => Some(b'M'),
            Retire::StuckRequest => Some(b'T'),
            Retire::Memory(_) => None,
        }
    }

    pub fn from_byte(b: u8) -> Option<Retire> {
        [Retire::MaxRequests, Retire::StuckRequest]
            .into_iter()
            .find(|r| r.byte() == Some(b))
    }
}

impl std::fmt::Display for Retire {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Retire::MaxRequests => f.write_str("max_requests reached"),
            Retire::StuckRequest => f.write_str("a request is stuck past request_timeout"),
            Retire::Memory(rss) => write!(
                f,
                "resident memory {rss} bytes ({} MiB) exceeds max_worker_memory",
                rss / (1024 * 1024)
            ),
        }
    }
}

/// Resident memory of a process in bytes (`VmRSS` in /proc/PID/status), None if it is gone.
pub fn rss(pid: i32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb.saturating_mul(1024))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rss_of_this_process_is_plausible() {
        let me = rss(std::process::id() as i32).unwrap();
        assert!(me > 1 << 20 && me < 1 << 40, "{me}");
        assert_eq!(rss(i32::MAX), None);
    }

    #[test]
    fn status_bytes_round_trip() {
        for r in [Retire::MaxRequests, Retire::StuckRequest] {
            assert_eq!(Retire::from_byte(r.byte().unwrap()), Some(r));
        }
        assert_eq!(Retire::from_byte(b'R'), None); // READY is not a retirement
        assert_eq!(Retire::Memory(1).byte(), None);
    }
}

//! One worker's counters for `/metrics`, as plain atomics in a block of memory the master
//! shares with the worker (MAP_SHARED, set up before the fork): the worker adds, the master
//! sums every worker's block when scraped. No locks, no messages, one relaxed atomic add per
//! fact on the hot path.
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Methods counted by name; the rest are `other`.
pub const METHODS: [&str; 8] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "other",
];
/// Status classes `1xx` … `5xx`.
pub const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];
/// Latency histogram upper bounds, in seconds (Prometheus client defaults); `+Inf` is the
/// request count.
pub const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// One worker's counters. `repr(C)` and only atomics: valid when zeroed, so an anonymous
/// shared mapping is a ready array of them.
#[repr(C)]
#[derive(Debug, Default)]
pub struct Counters {
    requests: [[AtomicU64; 5]; 8],
    buckets: [AtomicU64; 11],
    latency_micros: AtomicU64,
    /// Gauges (current values).
    in_flight: AtomicU64,
    queued: AtomicU64,
    connections: AtomicU64,
    /// Bytes read from client sockets, and response body bytes handed to them.
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
}

/// A sum over workers (or one worker's values), plain numbers.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Totals {
    pub requests: [[u64; 5]; 8],
    pub buckets: [u64; 11],
    pub latency_seconds: f64,
    pub in_flight: u64,
    pub queued: u64,
    pub connections: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

impl Totals {
    pub fn request_count(&self) -> u64 {
        self.requests.iter().flatten().sum()
    }
}

fn method_index(m: &[u8]) -> usize {
    METHODS[..7]
        .iter()
        .position(|k| k.as_bytes() == m)
        .unwrap_or(7)
}

impl Counters {
    /// A request's response is complete (or failed): its method, status code, time from
    /// being received to done, and the body bytes sent.
    pub fn request_done(&self, method: &[u8], status: u16, took: Duration, body_bytes: u64) {
        let class = (status / 100).clamp(1, 5) as usize - 1;
        self.requests[method_index(method)][class].fetch_add(1, Relaxed);
        let secs = took.as_secs_f64();
        if let Some(b) = BUCKETS.iter().position(|&le| secs <= le) {
            self.buckets[b].fetch_add(1, Relaxed);
        }
        self.latency_micros
            .fetch_add(took.as_micros().min(u64::MAX as u128) as u64, Relaxed);
        self.bytes_out.fetch_add(body_bytes, Relaxed);
    }
    pub fn bytes_in(&self, n: usize) {
        self.bytes_in.fetch_add(n as u64, Relaxed);
    }
    pub fn connection(&self, opened: bool) {
        gauge(&self.connections, opened);
    }
    pub fn in_flight(&self, started: bool) {
        gauge(&self.in_flight, started);
    }
    pub fn queued(&self, n: usize, added: bool) {
        if added {
            self.queued.fetch_add(n as u64, Relaxed);
        } else {
            let _ = self
                .queued
                .fetch_update(Relaxed, Relaxed, |v| Some(v.saturating_sub(n as u64)));
        }
    }

    /// Adds this block to `t`. Buckets are stored per bucket and made cumulative here.
    pub fn add_to(&self, t: &mut Totals) {
        for (m, row) in self.requests.iter().enumerate() {
            for (c, v) in row.iter().enumerate() {
                t.requests[m][c] += v.load(Relaxed);
            }
        }
        let mut run = 0;
        for (b, v) in self.buckets.iter().enumerate() {
            run += v.load(Relaxed);
            t.buckets[b] += run;
        }
        t.latency_seconds += self.latency_micros.load(Relaxed) as f64 / 1e6;
        t.in_flight += self.in_flight.load(Relaxed);
        t.queued += self.queued.load(Relaxed);
        t.connections += self.connections.load(Relaxed);
        t.bytes_in += self.bytes_in.load(Relaxed);
        t.bytes_out += self.bytes_out.load(Relaxed);
    }

    /// The counters only (gauges are zero for a worker that is gone), for keeping a dead
    /// worker's totals; then the block is zeroed for reuse.
    pub fn retire_into(&self, t: &mut Totals) {
        let mut mine = Totals::default();
        self.add_to(&mut mine);
        for m in 0..8 {
            for c in 0..5 {
                t.requests[m][c] += mine.requests[m][c];
            }
        }
        for b in 0..BUCKETS.len() {
            t.buckets[b] += mine.buckets[b];
        }
        t.latency_seconds += mine.latency_seconds;
        t.bytes_in += mine.bytes_in;
        t.bytes_out += mine.bytes_out;
        self.requests
            .iter()
            .flatten()
            .for_each(|v| v.store(0, Relaxed));
        self.buckets.iter().for_each(|v| v.store(0, Relaxed));
        for v in [
            &self.latency_micros,
            &self.in_flight,
            &self.queued,
            &self.connections,
            &self.bytes_in,
            &self.bytes_out,
        ] {
            v.store(0, Relaxed);
        }
    }
}

fn gauge(g: &AtomicU64, up: bool) {
    if up {
        g.fetch_add(1, Relaxed);
    } else {
        let _ = g.fetch_update(Relaxed, Relaxed, |v| Some(v.saturating_sub(1)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_by_method_class_and_bucket() {
        let c = Counters::default();
        c.request_done(b"GET", 200, Duration::from_millis(3), 5);
        c.request_done(b"GET", 404, Duration::from_millis(30), 0);
        c.request_done(b"BREW", 500, Duration::from_secs(60), 1);
        c.request_done(b"POST", 99, Duration::ZERO, 0);
        let mut t = Totals::default();
        c.add_to(&mut t);
        assert_eq!(t.requests[0][1], 1);
        assert_eq!(t.requests[0][3], 1);
        assert_eq!(t.requests[7][4], 1);
        assert_eq!(t.requests[2][0], 1, "a status below 100 counts as 1xx");
        assert_eq!(t.request_count(), 4);
        // cumulative: <=5ms: 2, <=50ms: 3, the 60 s one only in +Inf
        assert_eq!(t.buckets[0], 2);
        assert_eq!(t.buckets[3], 3);
        assert_eq!(t.buckets[10], 3);
        assert_eq!(t.bytes_out, 6);
        let mut kept = Totals::default();
        c.connection(true);
        c.retire_into(&mut kept);
        assert_eq!(kept.request_count(), 4);
        assert_eq!(kept.connections, 0, "gauges are not kept");
        let mut after = Totals::default();
        c.add_to(&mut after);
        assert_eq!(after, Totals::default());
    }
}

//! `/metrics` in the Prometheus text exposition format (version 0.0.4): the workers' counters
//! summed by the master, the master's own facts (workers, restarts) and each worker's RSS.
use std::collections::BTreeMap;
use std::fmt::Write;

use nix::unistd::Pid;

use crate::server::metrics::{Totals, BUCKETS, CLASSES, METHODS};

/// What one scrape shows.
pub(super) struct Snapshot {
    pub(super) totals: Totals,
    /// (worker id, pid) of live workers.
    pub(super) workers: Vec<(usize, Pid)>,
    pub(super) restarts: BTreeMap<&'static str, u64>,
    pub(super) ready: bool,
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

pub(super) fn render(s: &Snapshot) -> String {
    let t = &s.totals;
    let mut o = String::with_capacity(4096);
    family(
        &mut o,
        "waitressd_requests_total",
        "counter",
        "Requests answered (by the app, or refused by the server: 400, 413, 431 ...), by method and status class.",
    );
    for (m, row) in t.requests.iter().enumerate() {
        for (c, n) in row.iter().enumerate() {
            if *n > 0 {
                let _ = writeln!(
                    o,
                    "waitressd_requests_total{{method=\"{}\",code=\"{}\"}} {n}",
                    METHODS[m], CLASSES[c]
                );
            }
        }
    }
    family(
        &mut o,
        "waitressd_request_duration_seconds",
        "histogram",
        "Time from a complete request to its response's end.",
    );
    for (b, le) in BUCKETS.iter().enumerate() {
        let _ = writeln!(
            o,
            "waitressd_request_duration_seconds_bucket{{le=\"{le}\"}} {}",
            t.buckets[b]
        );
    }
    let count = t.request_count();
    let _ = writeln!(
        o,
        "waitressd_request_duration_seconds_bucket{{le=\"+Inf\"}} {count}\n\
         waitressd_request_duration_seconds_sum {}\n\
         waitressd_request_duration_seconds_count {count}",
        t.latency_seconds
    );
    let gauges = [
        (
            "waitressd_requests_in_flight",
            "Requests an app thread is running.",
            t.in_flight,
        ),
        (
            "waitressd_queue_depth",
            "Connections with requests waiting for an app thread.",
            t.queued,
        ),
        (
            "waitressd_open_connections",
            "Open client connections.",
            t.connections,
        ),
        (
            "waitressd_workers",
            "Live worker processes.",
            s.workers.len() as u64,
        ),
        (
            "waitressd_ready",
            "1 while /ready answers 200.",
            s.ready as u64,
        ),
    ];
    for (name, help, v) in gauges {
        family(&mut o, name, "gauge", help);
        let _ = writeln!(o, "{name} {v}");
    }
    let counters = [
        (
            "waitressd_received_bytes_total",
            "Bytes read from client connections.",
            t.bytes_in,
        ),
        (
            "waitressd_response_body_bytes_total",
            "Response body bytes sent to clients.",
            t.bytes_out,
        ),
    ];
    for (name, help, v) in counters {
        family(&mut o, name, "counter", help);
        let _ = writeln!(o, "{name} {v}");
    }
    family(
        &mut o,
        "waitressd_worker_restarts_total",
        "counter",
        "Workers that exited and were replaced, by reason.",
    );
    for (reason, n) in &s.restarts {
        let _ = writeln!(
            o,
            "waitressd_worker_restarts_total{{reason=\"{reason}\"}} {n}"
        );
    }
    family(
        &mut o,
        "waitressd_worker_rss_bytes",
        "gauge",
        "Resident memory of each worker process.",
    );
    for &(id, pid) in &s.workers {
        // The same figure `max_worker_memory` is checked against.
        if let Some(rss) = super::retire::rss(pid.as_raw()) {
            let _ = writeln!(
                o,
                "waitressd_worker_rss_bytes{{worker=\"{id}\",pid=\"{pid}\"}} {rss}"
            );
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sample_belongs_to_a_declared_family() {
        let mut totals = Totals::default();
        totals.requests[0][1] = 3;
        totals.buckets = [3; 11];
        let s = Snapshot {
            totals,
            workers: vec![(1, Pid::this())],
            restarts: [("signal", 2)].into_iter().collect(),
            ready: true,
        };
        let text = render(&s);
        assert!(text.contains("waitressd_requests_total{method=\"GET\",code=\"2xx\"} 3\n"));
        assert!(text.contains("waitressd_request_duration_seconds_count 3\n"));
        assert!(text.contains("waitressd_worker_restarts_total{reason=\"signal\"} 2\n"));
        assert!(text.contains("waitressd_worker_rss_bytes{worker=\"1\""));
        let declared: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .map(|l| l.split(' ').next().unwrap())
            .collect();
        for l in text.lines().filter(|l| !l.starts_with('#')) {
            let name = l.split(['{', ' ']).next().unwrap();
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .unwrap_or(name);
            assert!(declared.contains(&name) || declared.contains(&base), "{l}");
        }
    }
}

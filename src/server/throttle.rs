//! Warnings a client or the system can repeat many times a second (`Throttle`): the first is
//! logged at once, then at most one line a minute with the count since the last. Used for
//! accept(2) failures (`listener::AcceptErrors`), connections the PROXY protocol refuses
//! (`proxy_header::refused`) and refused TLS handshakes (`tls::warn_refused`).
use std::time::{Duration, Instant};

/// Least time between two reports.
pub(super) const REPORT_EVERY: Duration = Duration::from_secs(60);

/// When a repeated warning is next reported.
#[derive(Debug, Default)]
pub(super) struct Throttle {
    /// Occurrences since the last report.
    unreported: u64,
    last_report: Option<Instant>,
}

impl Throttle {
    /// None seen yet (`const`: a `static` may hold one).
    pub(super) const fn new() -> Throttle {
        Throttle {
            unreported: 0,
            last_report: None,
        }
    }

    /// One more occurrence at `now`: Some(n) when it is to be reported now, `n` being the
    /// occurrences since the last report, this one included; None while it is only counted.
    pub(super) fn note(&mut self, now: Instant) -> Option<u64> {
        self.unreported += 1;
        if self
            .last_report
            .is_some_and(|t| now.duration_since(t) < REPORT_EVERY)
        {
            return None;
        }
        self.last_report = Some(now);
        Some(std::mem::take(&mut self.unreported))
    }

    /// A report was made less than `REPORT_EVERY` before `now`.
    pub(super) fn recent(&self, now: Instant) -> bool {
        self.last_report
            .is_some_and(|t| now.duration_since(t) < REPORT_EVERY)
    }

    /// `again` for a report line: " (N times since the last report)" when more than one.
    pub(super) fn again(n: u64, what: &str) -> String {
        if n > 1 {
            format!(" ({n} {what} since the last report)")
        } else {
            String::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_at_once_then_one_a_minute_with_the_count() {
        let mut t = Throttle::default();
        let t0 = Instant::now();
        assert_eq!(t.note(t0), Some(1));
        for s in 1..60 {
            assert_eq!(t.note(t0 + Duration::from_secs(s)), None);
        }
        assert_eq!(t.note(t0 + REPORT_EVERY), Some(60));
        assert_eq!(t.note(t0 + REPORT_EVERY * 3), Some(1));
        assert_eq!(Throttle::again(1, "times"), "");
        assert_eq!(
            Throttle::again(60, "times"),
            " (60 times since the last report)"
        );
    }
}

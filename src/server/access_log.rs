//! The access log (a waitressd addition; waitress has none): one line per response in
//! `access_log_format` (default Apache combined), the loop's own error responses included.
//! App threads format lines into a shared buffer; the loop thread hands the buffer to a writer
//! thread (`access_file`) once `LOG_BATCH` bytes are pending or `LOG_DELAY` after it saw the
//! first line, so logging costs one hand-off and one write(2) per batch, not per request, and a
//! slow disk never stalls the loop.
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::lock::lock;
use crate::http::log_format::{Entry, Format};
use crate::http::Request;

/// Pending lines go to the writer thread once this many bytes are pending...
pub(crate) const LOG_BATCH: usize = 64 * 1024;
/// ...or this long after the loop saw the first of them (a line can also wait for the loop's
/// next turn: at most its 1 s tick when the worker is otherwise idle).
pub(crate) const LOG_DELAY: Duration = Duration::from_millis(100);

/// Formatted lines waiting for the loop to hand them to the writer (`Ctx::access_log`): app
/// threads (and the loop, for its own error responses) append under one lock; the loop takes
/// them in batches.
#[derive(Default)]
pub(crate) struct PendingLines(Mutex<Vec<u8>>);

impl PendingLines {
    /// Appends `line` in `fmt` (the time from `clock`); true when more than `LOG_BATCH` bytes
    /// are pending now (the loop should be woken to hand them over).
    pub(crate) fn push(&self, clock: &mut Clock, fmt: &Format, line: Line) -> bool {
        let mut pending = lock(&self.0);
        clock.line(&mut pending, fmt, line);
        pending.len() > LOG_BATCH
    }

    /// Loop side: the pending lines, once `LOG_BATCH` bytes are pending, `due` has come, or
    /// `force` (an empty buffer of `LOG_BATCH` bytes takes their place). `due` is when the
    /// lines pending now go at the latest: set `LOG_DELAY` after the loop first sees some,
    /// cleared when there are none or they are taken.
    ///
    /// The new buffer is allocated between two holds of the lock, not under it: app threads
    /// appending a line never wait on the loop's allocation. Lines appended in between go with the
    /// batch (only the loop takes, so the buffer cannot empty meanwhile).
    pub(crate) fn take_batch(
        &self,
        now: Instant,
        due: &mut Option<Instant>,
        force: bool,
    ) -> Option<Vec<u8>> {
        {
            let pending = lock(&self.0);
            if pending.is_empty() {
                *due = None;
                return None;
            }
            let until = *due.get_or_insert(now + LOG_DELAY);
            if !force && pending.len() < LOG_BATCH && now < until {
                return None;
            }
        }
        *due = None;
        let fresh = Vec::with_capacity(LOG_BATCH);
        Some(std::mem::replace(&mut *lock(&self.0), fresh))
    }
}

/// How long a wall-clock reading serves as the anchor of later stamps (a step of the system
/// clock shows in the log within this).
const ANCHOR_FOR: Duration = Duration::from_secs(1);

/// `[10/Oct/2000:13:55:36 +0000]` of the moment a line is logged, re-formatted at most once a
/// second (per app thread). The moment comes as the `Instant` the job read for its time; the
/// wall clock is read only to re-anchor, at most once per `ANCHOR_FOR`, not per request.
#[derive(Default)]
pub(crate) struct Clock {
    /// An `Instant` and the wall-clock time (since the epoch) read just after it.
    anchor: Option<(Instant, Duration)>,
    secs: u64,
    buf: Vec<u8>,
    /// This process's id (`%(p)s`), read once: glibc makes every getpid() a syscall.
    pid: Option<u32>,
}

impl Clock {
    fn stamp(&mut self, at: Instant) -> &[u8] {
        let since = self
            .anchor
            .and_then(|(i, w)| Some((at.checked_duration_since(i)?, w)));
        let wall = match since {
            Some((d, w)) if d < ANCHOR_FOR => w + d,
            _ => {
                let w = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default();
                self.anchor = Some((at, w));
                w
            }
        };
        let secs = wall.as_secs();
        if secs != self.secs || self.buf.is_empty() {
            self.secs = secs;
            self.buf = clf_time(secs).into_bytes();
        }
        &self.buf
    }

    /// Appends the line for one response in `fmt` to `out`.
    pub(crate) fn line(&mut self, out: &mut Vec<u8>, fmt: &Format, e: Line) {
        let pid = *self.pid.get_or_insert_with(std::process::id);
        let entry = Entry {
            req: e.req,
            remote: e.remote,
            time: self.stamp(e.at),
            status: e.status,
            bytes: e.bytes,
            elapsed: e.elapsed,
            pid,
            resp_headers: e.resp_headers,
        };
        fmt.write(&entry, out);
    }
}

/// One response's facts (the clock turns `at` into the line's time).
pub(crate) struct Line<'a> {
    pub(crate) req: Option<&'a Request>,
    pub(crate) remote: &'a str,
    pub(crate) status: &'a str,
    pub(crate) bytes: u64,
    pub(crate) elapsed: Duration,
    /// When the response was done: the reading `elapsed` ends at.
    pub(crate) at: Instant,
    pub(crate) resp_headers: &'a [(String, String)],
}

/// The body length of a complete response the server made itself (after the blank line).
pub(crate) fn body_len(response: &[u8]) -> u64 {
    memchr::memmem::find(response, b"\r\n\r\n").map_or(0, |i| (response.len() - i - 4) as u64)
}

/// Common Log Format time in UTC.
fn clf_time(secs: u64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil-from-days (Howard Hinnant).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + (m <= 2) as i64;
    format!(
        "[{d:02}/{}/{y}:{:02}:{:02}:{:02} +0000]",
        MONTHS[(m - 1) as usize],
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clf_time_table() {
        for (secs, want) in [
            (0, "[01/Jan/1970:00:00:00 +0000]"),
            (971_185_336, "[10/Oct/2000:13:42:16 +0000]"),
            (1_795_234_773, "[21/Nov/2026:04:19:33 +0000]"),
            (951_782_400, "[29/Feb/2000:00:00:00 +0000]"),
        ] {
            assert_eq!(clf_time(secs), want, "{secs}");
        }
    }

    #[test]
    fn the_stamp_follows_the_instant_and_reads_the_wall_clock_once_a_second() {
        let t0 = Instant::now();
        let mut c = Clock {
            // 10/Oct/2000:13:42:16.5 at t0.
            anchor: Some((t0, Duration::from_millis(971_185_336_500))),
            ..Clock::default()
        };
        let ms = Duration::from_millis;
        // (moment, stamp) within the anchor's second: derived, the anchor stays.
        for (at, want) in [
            (t0, "[10/Oct/2000:13:42:16 +0000]"),
            (t0 + ms(400), "[10/Oct/2000:13:42:16 +0000]"),
            (t0 + ms(600), "[10/Oct/2000:13:42:17 +0000]"),
            (t0 + ms(999), "[10/Oct/2000:13:42:17 +0000]"),
        ] {
            assert_eq!(c.stamp(at), want.as_bytes(), "{at:?}");
            assert_eq!(c.anchor.unwrap().0, t0);
        }
        // A second on: the wall clock is read again (today, not 2000).
        let later = t0 + ms(1000);
        assert!(!c.stamp(later).starts_with(b"[10/Oct/2000"));
        assert_eq!(c.anchor.unwrap().0, later);
    }

    /// Pending lines go at `LOG_BATCH` bytes, at their due time (`LOG_DELAY` after the loop
    /// first saw them) or when forced; a taken batch leaves an empty buffer of `LOG_BATCH`
    /// bytes behind.
    #[test]
    fn pending_lines_go_in_batches_at_their_size_or_due_time() {
        let t0 = Instant::now();
        let later = t0 + LOG_DELAY;
        // (bytes pending, `due` before, now, force, taken, `due` after)
        type Case = (usize, Option<Instant>, Instant, bool, bool, Option<Instant>);
        let table: &[Case] = &[
            (0, None, t0, false, false, None),
            (0, Some(t0), later, true, false, None),
            (10, None, t0, false, false, Some(later)),
            (10, Some(later), t0, false, false, Some(later)),
            (10, Some(later), later, false, true, None),
            (10, None, t0, true, true, None),
            (LOG_BATCH - 1, None, t0, false, false, Some(later)),
            (LOG_BATCH, None, t0, false, true, None),
        ];
        for &(bytes, due_before, now, force, taken, due_after) in table {
            let case = format!("{bytes} bytes, due {due_before:?}, force {force}");
            let pending = PendingLines::default();
            lock(&pending.0).resize(bytes, b'x');
            let mut due = due_before;
            let batch = pending.take_batch(now, &mut due, force);
            assert_eq!(
                batch.as_ref().map(Vec::len),
                taken.then_some(bytes),
                "{case}"
            );
            assert_eq!(due, due_after, "{case}: due");
            let left = lock(&pending.0);
            if taken {
                assert!(
                    left.is_empty() && left.capacity() >= LOG_BATCH,
                    "{case}: left"
                );
            } else {
                assert_eq!(left.len(), bytes, "{case}: left");
            }
        }
    }

    #[test]
    fn body_len_counts_after_the_head() {
        assert_eq!(body_len(b"HTTP/1.1 400 Bad\r\nA: b\r\n\r\nhello"), 5);
        assert_eq!(body_len(b"HTTP/1.1 400 Bad\r\n\r\n"), 0);
    }
}

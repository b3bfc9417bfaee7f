//! The access log (a waitressd addition; waitress has none): one line per response in
//! `access_log_format` (default Apache combined), the loop's own error responses included.
//! App threads format lines into a shared buffer; the loop thread hands the buffer to a writer
//! thread once `LOG_BATCH` bytes are pending or `LOG_DELAY` after it saw the first line, so
//! logging costs one hand-off and one write(2) per batch, not per request, and a slow disk
//! never stalls the loop.
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::lock::lock;
use crate::http::log_format::{Entry, Format};
use crate::http::Request;

/// Pending lines go to the writer thread once this many bytes are pending...
pub(crate) const LOG_BATCH: usize = 64 * 1024;
/// ...or this long after the loop saw the first of them (a line can also wait for the loop's
/// next turn: at most its 1 s tick when the worker is otherwise idle).
pub(crate) const LOG_DELAY: Duration = Duration::from_millis(100);

/// Where lines go (`-` = stdout). Reopened on SIGUSR1 after rotation. A writer thread owns the
/// file, so a slow disk never blocks the event loop; dropping the log writes what is queued.
pub(crate) struct AccessLog {
    tx: Option<mpsc::Sender<Msg>>,
    writer: Option<std::thread::JoinHandle<()>>,
}

enum Msg {
    Lines(Vec<u8>),
    Reopen,
}

fn open(path: &Path) -> io::Result<Box<dyn Write + Send>> {
    if path == Path::new("-") {
        return Ok(Box::new(io::stdout()));
    }
    let f: File = OpenOptions::new().create(true).append(true).open(path)?;
    Ok(Box::new(f))
}

/// The writer thread: writes batches in order, reopens on request, ends when the log drops.
fn writer(path: PathBuf, out: Box<dyn Write + Send>, rx: mpsc::Receiver<Msg>) {
    let mut sink = Sink::new(out);
    let shown = path.display();
    for msg in rx {
        match msg {
            Msg::Lines(batch) => match sink.write(&batch, Instant::now()) {
                Report::Written => {}
                Report::Failed { first: true, e, .. } => log::error!(
                    target: "waitress",
                    "cannot write access log {shown}: {e}; its lines are dropped until it can \
                     be written again (free space on its filesystem): reported again once a minute"
                ),
                Report::Failed { dropped, e, .. } => log::error!(
                    target: "waitress",
                    "access log {shown} still cannot be written: {e}; {dropped} lines dropped so far"
                ),
                Report::Quiet => {}
                Report::Recovered { dropped, after } => log::warn!(
                    target: "waitress",
                    "access log {shown} written again after {} s; {dropped} lines were dropped",
                    after.as_secs()
                ),
            },
            Msg::Reopen => match open(&path) {
                Ok(o) => sink.reopened(o),
                Err(e) => {
                    log::error!(target: "waitress", "cannot reopen access log {shown}: {e}")
                }
            },
        }
    }
}

/// How often a log file that keeps failing is reported (the error log may be on the same
/// full disk: one line per batch would fill it too).
const FAILING_REPORT_EVERY: Duration = Duration::from_secs(60);

/// The writer thread's file and its failures: a batch that cannot be written (a full disk) is
/// dropped and counted, never left half a line that the next batch would run into.
struct Sink {
    out: Box<dyn Write + Send>,
    /// The file ends inside a line (a batch was cut by a failure): a newline comes first.
    mid_line: bool,
    /// Failing since, last reported, lines dropped since.
    failing: Option<(Instant, Instant, u64)>,
}

/// What one batch's write means for the error log.
#[derive(Debug)]
enum Report {
    Written,
    /// Failing: `first` of this spell, or once `FAILING_REPORT_EVERY` has passed.
    Failed {
        first: bool,
        dropped: u64,
        e: io::Error,
    },
    /// Failing, reported less than `FAILING_REPORT_EVERY` ago.
    Quiet,
    /// Written again after failing for `after`.
    Recovered {
        dropped: u64,
        after: Duration,
    },
}

impl Sink {
    fn new(out: Box<dyn Write + Send>) -> Sink {
        Sink {
            out,
            mid_line: false,
            failing: None,
        }
    }

    /// A new file after USR1 (rotation): it starts at a line's start.
    fn reopened(&mut self, out: Box<dyn Write + Send>) {
        self.out = out;
        self.mid_line = false;
    }

    fn write(&mut self, batch: &[u8], now: Instant) -> Report {
        let (done, r) = self.write_counted(batch);
        if done > 0 {
            self.mid_line = batch[done - 1] != b'\n';
        }
        match (r, self.failing.take()) {
            (Ok(()), None) => Report::Written,
            (Ok(()), Some((since, _, dropped))) => Report::Recovered {
                dropped,
                after: now.saturating_duration_since(since),
            },
            (Err(e), failing) => {
                // Every line not written whole is lost, a cut one too (its newline is in
                // the part not written).
                let lost = bytecount(&batch[done..]);
                let (since, last, dropped) = failing.unwrap_or((now, now, 0));
                let dropped = dropped + lost;
                let first = failing.is_none();
                let due = now.saturating_duration_since(last) >= FAILING_REPORT_EVERY;
                self.failing = Some((since, if first || due { now } else { last }, dropped));
                if first || due {
                    Report::Failed { first, dropped, e }
                } else {
                    Report::Quiet
                }
            }
        }
    }

    /// Writes the newline a cut line owes, then `batch`: (bytes of `batch` written, result).
    fn write_counted(&mut self, batch: &[u8]) -> (usize, io::Result<()>) {
        if self.mid_line {
            if let Err(e) = write_some(&mut self.out, b"\n").and_then(|_| self.out.flush()) {
                return (0, Err(e));
            }
            self.mid_line = false;
        }
        let mut done = 0;
        while done < batch.len() {
            match write_some(&mut self.out, &batch[done..]) {
                Ok(n) => done += n,
                Err(e) => return (done, Err(e)),
            }
        }
        (done, self.out.flush())
    }
}

/// One `write`, retried on EINTR; a write of nothing is an error (the file takes no more).
fn write_some(out: &mut dyn Write, buf: &[u8]) -> io::Result<usize> {
    loop {
        match out.write(buf) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            r => return r,
        }
    }
}

/// Lines in `b` (its newlines).
fn bytecount(b: &[u8]) -> u64 {
    b.iter().filter(|&&c| c == b'\n').count() as u64
}

impl AccessLog {
    /// Opens the file here (so an error stops the worker at start), then starts its writer.
    pub(crate) fn open(path: &Path) -> io::Result<AccessLog> {
        let out = open(path)?;
        let (tx, rx) = mpsc::channel();
        let path = path.to_path_buf();
        let writer = std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || writer(path, out, rx))?;
        Ok(AccessLog {
            tx: Some(tx),
            writer: Some(writer),
        })
    }

    /// Queues one batch of complete lines.
    pub(crate) fn write(&mut self, batch: Vec<u8>) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(Msg::Lines(batch));
        }
    }

    pub(crate) fn reopen(&mut self) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(Msg::Reopen);
        }
    }
}

impl Drop for AccessLog {
    fn drop(&mut self) {
        self.tx = None;
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
    }
}

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

    /// A file that takes `room` more bytes, then fails with ENOSPC until `room` is raised.
    #[derive(Clone, Default)]
    struct Disk(std::sync::Arc<Mutex<(Vec<u8>, usize)>>);

    impl Write for Disk {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let mut d = lock(&self.0);
            let n = buf.len().min(d.1);
            if n == 0 {
                return Err(io::Error::from_raw_os_error(libc::ENOSPC));
            }
            d.1 -= n;
            d.0.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_full_disk_drops_whole_lines_reports_once_a_minute_and_the_recovery() {
        let disk = Disk::default();
        let mut sink = Sink::new(Box::new(disk.clone()));
        let t0 = Instant::now();
        let room = |n: usize| lock(&disk.0).1 = n;
        room(1 << 20);
        assert!(matches!(sink.write(b"one\n", t0), Report::Written));
        // Room for "two\nth": "three" is cut, so it and "four" are lost.
        room(6);
        match sink.write(b"two\nthree\nfour\n", t0) {
            Report::Failed {
                first: true,
                dropped: 2,
                e,
            } => {
                assert_eq!(e.raw_os_error(), Some(libc::ENOSPC))
            }
            r => panic!("{r:?}"),
        }
        // Still full: counted, reported again only once a minute has passed.
        let later = t0 + Duration::from_secs(30);
        assert!(matches!(sink.write(b"five\n", later), Report::Quiet));
        let minute = t0 + FAILING_REPORT_EVERY;
        match sink.write(b"six\nseven\n", minute) {
            Report::Failed {
                first: false,
                dropped: 5,
                ..
            } => {}
            r => panic!("{r:?}"),
        }
        // Space again: the cut line is ended before the next batch, which starts a line.
        room(1 << 20);
        match sink.write(b"eight\n", minute + Duration::from_secs(5)) {
            Report::Recovered { dropped: 5, after } => assert_eq!(after.as_secs(), 65),
            r => panic!("{r:?}"),
        }
        assert!(matches!(sink.write(b"nine\n", minute), Report::Written));
        assert_eq!(lock(&disk.0).0, b"one\ntwo\nth\neight\nnine\n");
    }
}

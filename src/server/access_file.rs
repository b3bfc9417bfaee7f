//! The access log's file (`access_log = PATH`, `-` for stdout): a writer thread that writes the
//! batches the loop hands over (`access_log::PendingLines`) in order, reopens the file on
//! SIGUSR1 after rotation, and outlasts a file that cannot be written (a full disk): such a
//! batch is dropped and counted, never left half a line, and reported once a minute at most.
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

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

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::server::lock::lock;

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

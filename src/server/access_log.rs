//! The access log (a waitressd addition; waitress has none): Apache combined format, one line
//! per request. App threads format lines into a shared buffer; the loop thread writes the
//! buffer once per loop iteration, so logging costs one write(2) per batch, not per request.
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::http::Request;

/// Where lines go (`-` = stdout). Reopened on SIGUSR1 after rotation.
pub(crate) struct AccessLog {
    path: PathBuf,
    out: Box<dyn Write + Send>,
}

fn open(path: &Path) -> io::Result<Box<dyn Write + Send>> {
    if path == Path::new("-") {
        return Ok(Box::new(io::stdout()));
    }
    let f: File = OpenOptions::new().create(true).append(true).open(path)?;
    Ok(Box::new(f))
}

impl AccessLog {
    pub(crate) fn open(path: &Path) -> io::Result<AccessLog> {
        Ok(AccessLog {
            path: path.to_path_buf(),
            out: open(path)?,
        })
    }

    /// Writes one batch of complete lines.
    pub(crate) fn write(&mut self, batch: &[u8]) {
        if let Err(e) = self.out.write_all(batch).and_then(|_| self.out.flush()) {
            log::error!(target: "waitress", "cannot write access log {}: {e}", self.path.display());
        }
    }

    pub(crate) fn reopen(&mut self) {
        match open(&self.path) {
            Ok(out) => self.out = out,
            Err(e) => {
                log::error!(target: "waitress", "cannot reopen access log {}: {e}", self.path.display())
            }
        }
    }
}

/// `[10/Oct/2000:13:55:36 +0000]`, re-formatted at most once a second (per app thread).
#[derive(Default)]
pub(crate) struct Clock {
    secs: u64,
    buf: Vec<u8>,
}

impl Clock {
    fn stamp(&mut self) -> &[u8] {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        if secs != self.secs || self.buf.is_empty() {
            self.secs = secs;
            self.buf = clf_time(secs).into_bytes();
        }
        &self.buf
    }

    /// Appends `%h - - [%t] "%r" %s %b "%{Referer}i" "%{User-Agent}i"\n` to `out`.
    pub(crate) fn line(&mut self, out: &mut Vec<u8>, req: &Request, status: &str, bytes: u64) {
        out.extend_from_slice(req.origin.remote_addr.as_bytes());
        out.extend_from_slice(b" - - ");
        out.extend_from_slice(self.stamp());
        out.extend_from_slice(b" \"");
        escaped(out, req.method());
        out.push(b' ');
        escaped(out, req.target());
        out.push(b' ');
        out.extend_from_slice(req.version().as_str().as_bytes());
        out.extend_from_slice(b"\" ");
        out.extend_from_slice(status.as_bytes());
        out.push(b' ');
        if bytes == 0 {
            out.push(b'-');
        } else {
            out.extend_from_slice(crate::http::parse::decimal(bytes, &mut [0; 20]));
        }
        for name in [&b"referer"[..], b"user-agent"] {
            out.extend_from_slice(b" \"");
            match req.header(name) {
                Some(v) => escaped(out, v),
                None => out.push(b'-'),
            }
            out.push(b'"');
        }
        out.push(b'\n');
    }
}

/// Copies `v`, escaping `"`, `\` and non-printable bytes as Apache does (`\xhh`), so a client
/// cannot forge log lines.
fn escaped(out: &mut Vec<u8>, v: &[u8]) {
    // Usually nothing needs escaping: copy printable runs whole (a hello-world line cost 1.2k
    // instructions per request with a push per byte; callgrind, README "Performance").
    let plain = |b: &u8| matches!(b, 0x20..=0x7e) && *b != b'"' && *b != b'\\';
    let run = v.iter().position(|b| !plain(b)).unwrap_or(v.len());
    out.extend_from_slice(&v[..run]);
    for &b in &v[run..] {
        match b {
            b'"' | b'\\' => {
                out.push(b'\\');
                out.push(b);
            }
            0x20..=0x7e => out.push(b),
            _ => out.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
        }
    }
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
    fn escaping_keeps_lines_unforgeable() {
        let mut out = Vec::new();
        escaped(&mut out, b"a\"b\\c\n\x7f");
        assert_eq!(out, b"a\\\"b\\\\c\\x0a\\x7f");
    }
}

//! RFC 9110 IMF-fixdate (`Sat, 21 Nov 2026 04:19:33 GMT`) for `Date:` headers, with a cache the
//! server refreshes at most once a second.
use std::time::{SystemTime, UNIX_EPOCH};

/// Length of an IMF-fixdate.
pub const DATE_LEN: usize = 29;

/// The formatted date of the current second. `update` is cheap when the second has not changed.
#[derive(Debug, Clone)]
pub struct DateCache {
    secs: u64,
    buf: [u8; DATE_LEN],
}

impl Default for DateCache {
    fn default() -> Self {
        DateCache::new()
    }
}

impl DateCache {
    pub fn new() -> DateCache {
        let mut c = DateCache {
            secs: u64::MAX,
            buf: [b' '; DATE_LEN],
        };
        c.update(SystemTime::now());
        c
    }
    /// Re-formats if `now` is in a different second; true if it changed.
    pub fn update(&mut self, now: SystemTime) -> bool {
        let secs = now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        if secs == self.secs {
            return false;
        }
        self.secs = secs;
        self.buf = http_date(secs);
        true
    }
    /// The formatted date (always 29 bytes).
    pub fn get(&self) -> &[u8] {
        &self.buf
    }
}

/// Formats seconds since the Unix epoch as an IMF-fixdate.
pub fn http_date(secs: u64) -> [u8; DATE_LEN] {
    const DAYS: [&[u8; 3]; 7] = [b"Thu", b"Fri", b"Sat", b"Sun", b"Mon", b"Tue", b"Wed"];
    const MONTHS: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (h, m, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    // Civil-from-days (Howard Hinnant's algorithm), valid for every u64 day count we can see.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = (yoe + era * 400 + i64::from(month <= 2)).clamp(0, 9999) as u64;
    let mut b = [b' '; DATE_LEN];
    b[..3].copy_from_slice(DAYS[(days % 7) as usize]);
    b[3] = b',';
    two(&mut b[5..7], d as u64);
    b[8..11].copy_from_slice(MONTHS[(month - 1) as usize]);
    two(&mut b[12..14], year / 100);
    two(&mut b[14..16], year % 100);
    two(&mut b[17..19], h);
    b[19] = b':';
    two(&mut b[20..22], m);
    b[22] = b':';
    two(&mut b[23..25], s);
    b[26..29].copy_from_slice(b"GMT");
    b
}

fn two(out: &mut [u8], v: u64) {
    out[0] = b'0' + (v / 10 % 10) as u8;
    out[1] = b'0' + (v % 10) as u8;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_dates() {
        for (secs, want) in [
            (0, "Thu, 01 Jan 1970 00:00:00 GMT"),
            (951_782_400, "Tue, 29 Feb 2000 00:00:00 GMT"),
            (1_795_234_773, "Sat, 21 Nov 2026 04:19:33 GMT"),
            (4_102_444_799, "Thu, 31 Dec 2099 23:59:59 GMT"),
        ] {
            assert_eq!(std::str::from_utf8(&http_date(secs)).unwrap(), want);
        }
    }

    #[test]
    fn cache_changes_only_with_the_second() {
        let mut c = DateCache::new();
        let t = UNIX_EPOCH + std::time::Duration::from_millis(1_795_234_773_100);
        assert!(c.update(t));
        assert!(!c.update(t + std::time::Duration::from_millis(800)));
        assert!(c.update(t + std::time::Duration::from_millis(900)));
        assert_eq!(c.get(), b"Sat, 21 Nov 2026 04:19:34 GMT");
    }
}

//! The hostile corpus: one table per group (files under `corpus/`), plus the constructors and
//! the compile-time byte builder they share. Expected behaviour is waitress 3.0.2 (spec §2)
//! with waitressd's deliberate RFC 9112 differences (TEAM.md); a case never encodes a bug.
mod chunked;
mod limits;
mod lines;
mod request_line;
mod smuggling;
mod valid;

pub use chunked::CHUNKED;
pub use limits::LIMITS;
pub use lines::LINES_AND_BYTES;
pub use request_line::REQUEST_LINE_AND_HOST;
pub use smuggling::SMUGGLING;
pub use valid::VALID;

use super::{Case, End};

/// Appends the would-be smuggled request to a string literal head: any server that frames the
/// hostile bytes differently from waitressd would hand `{P}/smuggled` to the app.
macro_rules! smuggle {
    ($($head:literal),+ $(,)?) => {
        concat!($($head),+, "GET {P}/smuggled HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes()
    };
}
pub(crate) use smuggle;

/// Refused with `status`, `Connection: close` and closed; the app sees nothing.
const fn refused(name: &'static str, status: u16, raw: &'static [u8]) -> Case {
    Case {
        name,
        raw,
        then: b"",
        statuses: one(status),
        head: false,
        end: End::Closed,
        seen: &[],
    }
}

/// Answered with `statuses`; the app saw exactly `seen`; the connection ends as `end`.
const fn served(
    name: &'static str,
    raw: &'static [u8],
    statuses: &'static [u16],
    end: End,
    seen: &'static [&'static str],
) -> Case {
    Case {
        name,
        raw,
        then: b"",
        statuses,
        head: false,
        end,
        seen,
    }
}

const fn one(status: u16) -> &'static [u16] {
    match status {
        400 => &[400],
        413 => &[413],
        431 => &[431],
        501 => &[501],
        505 => &[505],
        _ => panic!("refused(): add this status to one()"),
    }
}

/// How much longer a request gets than its template per `{P}` (`{P}` → `/cz00`).
const P_GROWTH: usize = 2;

/// `N` bytes: `head`, then `fill` repeated, then `tail` (for the size-limit cases, whose bytes
/// are too many to spell out). Evaluated at compile time.
const fn build<const N: usize>(head: &[u8], fill: &[u8], tail: &[u8]) -> [u8; N] {
    assert!(head.len() + tail.len() <= N && !fill.is_empty());
    let mut out = [0u8; N];
    let mut i = 0;
    while i < head.len() {
        out[i] = head[i];
        i += 1;
    }
    let fill_end = N - tail.len();
    let mut k = 0;
    while i < fill_end {
        out[i] = fill[k % fill.len()];
        i += 1;
        k += 1;
    }
    let mut j = 0;
    while j < tail.len() {
        out[fill_end + j] = tail[j];
        j += 1;
    }
    out
}

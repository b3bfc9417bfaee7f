//! `listen` entries: pure splitting exactly as waitress does it (last colon, `[v6]`, `*`,
//! default port), then resolution with getaddrinfo at start-up (AI_PASSIVE, SOCK_STREAM,
//! IPPROTO_TCP, service names allowed) and waitress's duplicate suppression.
use std::net::{IpAddr, SocketAddr};

/// One entry after splitting: `host = None` is the wildcard (`*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub host: Option<String>,
    pub port: String,
}

/// Which address families `ipv4`/`ipv6` allow (waitress: both true or both false = both).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Any,
    V4,
    V6,
}

impl Family {
    pub fn from_flags(ipv4: bool, ipv6: bool) -> Family {
        match (ipv4, ipv6) {
            (true, false) => Family::V4,
            (false, true) => Family::V6,
            _ => Family::Any,
        }
    }
}

/// Splits one entry like `Adjustments.__init__`: at the last colon, unless what follows it
/// contains `]` (a bare `[v6]`), in which case the port is `default_port`.
pub fn split(entry: &str, default_port: &str) -> Entry {
    let (mut host, port) = match entry.rsplit_once(':') {
        Some((_, p)) if p.contains(']') => (entry, default_port),
        Some((h, p)) => (h, p),
        None => (entry, default_port),
    };
    // `host.strip("[").rstrip("]")`, only when both brackets occur somewhere.
    if host.contains('[') && host.contains(']') {
        host = host.trim_matches('[').trim_end_matches(']');
    }
    Entry {
        host: (host != "*").then(|| host.to_string()),
        port: port.to_string(),
    }
}

/// Python encodes the host with the `idna` codec before getaddrinfo; for ASCII names that
/// only checks label lengths (every label but the last 1..63 bytes, the last < 64).
fn idna_ok(host: &str) -> Result<(), String> {
    if host.is_empty() {
        return Ok(());
    }
    if !host.is_ascii() {
        return Err("non-ASCII host names are not supported".into());
    }
    let labels: Vec<&str> = host.split('.').collect();
    let (last, rest) = labels.split_last().expect("split yields at least one item");
    if rest.iter().any(|l| l.is_empty() || l.len() > 63) || last.len() > 63 {
        return Err("label empty or too long".into());
    }
    Ok(())
}

/// glibc reads a numeric service with `strtoul` and silently truncates it to 16 bits
/// (`127.0.0.1:65536` binds a random port under waitress). waitressd refuses such ports.
fn port_in_range(port: &str) -> Result<(), String> {
    let t = port.trim_start_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r']);
    let t = t.strip_prefix('+').unwrap_or(t);
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        let n = t.trim_start_matches('0');
        if n.len() > 5 || n.parse::<u32>().unwrap_or(0) > 65535 {
            return Err(format!("port {port} is out of range 0-65535"));
        }
    }
    Ok(())
}

/// Resolves one entry; errors are the resolver's message.
pub fn resolve_entry(e: &Entry, family: Family) -> Result<Vec<SocketAddr>, String> {
    if let Some(h) = &e.host {
        idna_ok(h)?;
    }
    port_in_range(&e.port)?;
    if e.host.as_deref().is_some_and(|h| h.contains('\0')) || e.port.contains('\0') {
        return Err("embedded NUL".into());
    }
    let hints = dns_lookup::AddrInfoHints {
        flags: libc::AI_PASSIVE,
        address: match family {
            Family::Any => libc::AF_UNSPEC,
            Family::V4 => libc::AF_INET,
            Family::V6 => libc::AF_INET6,
        },
        socktype: libc::SOCK_STREAM,
        protocol: libc::IPPROTO_TCP,
    };
    let iter = dns_lookup::getaddrinfo(e.host.as_deref(), Some(&e.port), Some(hints))
        .map_err(|err| gai_message(&err))?;
    let mut out = Vec::new();
    for ai in iter {
        out.push(ai.map_err(|err| err.to_string())?.sockaddr);
    }
    Ok(out)
}

fn gai_message(err: &dns_lookup::LookupError) -> String {
    // SAFETY: gai_strerror returns a pointer to a static, NUL-terminated string.
    let msg = unsafe { std::ffi::CStr::from_ptr(libc::gai_strerror(err.error_num())) };
    msg.to_string_lossy().into_owned()
}

/// Resolves every entry in order, dropping an address whose (ip without zone, port) was
/// already produced — except port 0, which is never de-duplicated (waitress does the same).
pub fn resolve(entries: &[Entry], family: Family) -> Result<Vec<SocketAddr>, (usize, String)> {
    let mut out: Vec<SocketAddr> = Vec::new();
    let mut seen: Vec<(IpAddr, u16)> = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        for addr in resolve_entry(e, family).map_err(|m| (i, m))? {
            let key = (addr.ip(), addr.port());
            if addr.port() == 0 || !seen.contains(&key) {
                out.push(addr);
                seen.push(key);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(host: Option<&str>, port: &str) -> Entry {
        Entry {
            host: host.map(str::to_string),
            port: port.to_string(),
        }
    }

    #[test]
    fn split_like_waitress() {
        let cases = [
            ("127.0.0.1:8080", e(Some("127.0.0.1"), "8080")),
            ("localhost", e(Some("localhost"), "8080")),
            ("*:6543", e(None, "6543")),
            ("*", e(None, "8080")),
            ("[::1]:80", e(Some("::1"), "80")),
            ("[::1]", e(Some("::1"), "8080")),
            ("::1:8080", e(Some("::1"), "8080")),
            ("::1", e(Some(":"), "1")),
            ("localhost:http", e(Some("localhost"), "http")),
            (":8080", e(Some(""), "8080")),
            ("host:", e(Some("host"), "")),
            ("[[::1]]:1", e(Some("::1"), "1")),
            ("[*]:1", e(None, "1")),
        ];
        for (input, want) in cases {
            assert_eq!(split(input, "8080"), want, "{input}");
        }
    }

    #[test]
    fn family_both_false_is_both() {
        assert_eq!(Family::from_flags(false, false), Family::Any);
        assert_eq!(Family::from_flags(true, true), Family::Any);
        assert_eq!(Family::from_flags(true, false), Family::V4);
        assert_eq!(Family::from_flags(false, true), Family::V6);
    }

    #[test]
    fn resolves_literals_service_names_and_wildcard() {
        let r = |s: &str, f| resolve(&[split(s, "8080")], f);
        assert_eq!(
            r("127.0.0.1:80", Family::Any).unwrap(),
            ["127.0.0.1:80".parse().unwrap()]
        );
        assert_eq!(
            r("[::1]:80", Family::Any).unwrap(),
            ["[::1]:80".parse().unwrap()]
        );
        assert_eq!(
            r("127.0.0.1:http", Family::Any).unwrap(),
            ["127.0.0.1:80".parse().unwrap()]
        );
        let wild = r("*:8080", Family::Any).unwrap();
        assert!(wild.contains(&"0.0.0.0:8080".parse().unwrap()), "{wild:?}");
        assert_eq!(
            r("*:8080", Family::V4).unwrap(),
            ["0.0.0.0:8080".parse().unwrap()]
        );
        assert!(r("127.0.0.1:80", Family::V6).is_err());
        assert_eq!(
            r("127.0.0.1:+80", Family::Any).unwrap(),
            ["127.0.0.1:80".parse().unwrap()]
        );
        assert_eq!(
            r("127.0.0.1:080", Family::Any).unwrap(),
            ["127.0.0.1:80".parse().unwrap()]
        );
        for bad in [
            "::1",
            "127.0.0.1:99999",
            "127.0.0.1:65536",
            "127.0.0.1:0x50",
            ":80",
            "127.0.0.1:nosuchservice",
            "a..b:80",
            "127.0.0.1:-1",
        ] {
            assert!(r(bad, Family::Any).is_err(), "{bad}");
        }
    }

    #[test]
    fn duplicates_dropped_except_port_zero() {
        let es = [split("127.0.0.1:80", ""), split("127.0.0.1:80", "")];
        assert_eq!(resolve(&es, Family::Any).unwrap().len(), 1);
        let es = [split("127.0.0.1:0", ""), split("127.0.0.1:0", "")];
        assert_eq!(resolve(&es, Family::Any).unwrap().len(), 2);
    }
}

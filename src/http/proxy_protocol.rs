//! The PROXY protocol, versions 1 (text) and 2 (binary), as HAProxy's `proxy-protocol.txt`
//! defines them: a pure function over the bytes received so far, which says whether the
//! header is complete, what it says, and how many bytes it took. Nothing here reads a socket;
//! the server feeds it what arrived and passes what follows the header to the HTTP parser.
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// v2's 12-byte signature (§2.2).
pub const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// v1's longest line, CRLF included (§2.1: 107 bytes).
pub const V1_MAX: usize = 107;
/// The largest v2 header the server accepts (fixed part, addresses and TLVs). HAProxy's own
/// TLVs (ALPN, authority, SSL facts, unique id) stay far below this.
pub const V2_MAX: usize = 4096;
/// v2: the 16-byte fixed part.
const V2_FIXED: usize = 16;

/// What a complete header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyHeader {
    /// The proxy's own connection (v2 `LOCAL`, v1 `UNKNOWN`, v2 `UNSPEC`): served with the
    /// socket's own addresses (§2.1, §2.2).
    Local,
    /// A relayed TCP connection: the client's address and the address it connected to.
    Proxied {
        source: SocketAddr,
        dest: SocketAddr,
    },
}

/// The result of looking at the bytes received so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed {
    /// Not complete yet; nothing wrong so far.
    NeedMore,
    /// Complete: what it says and how many bytes it took (the rest is the client's data).
    Done {
        header: ProxyHeader,
        consumed: usize,
    },
}

/// Why a connection's PROXY header was refused (the connection is closed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProxyError {
    #[error("no PROXY protocol header (the connection must start with one)")]
    Missing,
    #[error("malformed PROXY v1 header: {0}")]
    BadV1(&'static str),
    #[error("malformed PROXY v2 header: {0}")]
    BadV2(&'static str),
    #[error("PROXY header longer than {0} bytes")]
    TooLong(usize),
}

/// Parses the PROXY header at the start of `buf`. `max_v2` bounds a v2 header (fixed part,
/// addresses and TLVs); v1 is bounded by the spec's 107 bytes. Errors are reported as soon as
/// the bytes so far cannot start a valid header, so a client speaking plain HTTP is refused at
/// its first byte instead of waiting for a deadline.
pub fn parse(buf: &[u8], max_v2: usize) -> Result<Parsed, ProxyError> {
    const V1: &[u8] = b"PROXY ";
    let n = buf.len().min(V2_SIGNATURE.len());
    if buf[..n] == V2_SIGNATURE[..n] {
        if buf.len() < V2_FIXED {
            return Ok(Parsed::NeedMore);
        }
        return parse_v2(buf, max_v2);
    }
    let n = buf.len().min(V1.len());
    if buf[..n] == V1[..n] {
        if buf.len() < V1.len() {
            return Ok(Parsed::NeedMore);
        }
        return parse_v1(buf);
    }
    Err(ProxyError::Missing)
}

/// `PROXY TCP4|TCP6|UNKNOWN src dst sport dport\r\n` (§2.1).
fn parse_v1(buf: &[u8]) -> Result<Parsed, ProxyError> {
    let window = &buf[..buf.len().min(V1_MAX)];
    let Some(cr) = memchr::memchr(b'\r', window) else {
        if buf.len() >= V1_MAX {
            return Err(ProxyError::TooLong(V1_MAX));
        }
        if memchr::memchr(b'\n', window).is_some() {
            return Err(ProxyError::BadV1("line ends without CR"));
        }
        return Ok(Parsed::NeedMore);
    };
    // An LF before the CR is refused however the bytes arrive (on their own, the bytes up to
    // it are refused above; a v1 `UNKNOWN` line ignores the rest of its text, LFs included).
    if memchr::memchr(b'\n', &window[..cr]).is_some() {
        return Err(ProxyError::BadV1("line ends without CR"));
    }
    match buf.get(cr + 1) {
        None => return Ok(Parsed::NeedMore),
        Some(b'\n') => {}
        Some(_) => return Err(ProxyError::BadV1("CR not followed by LF")),
    }
    let consumed = cr + 2;
    if consumed > V1_MAX {
        return Err(ProxyError::TooLong(V1_MAX));
    }
    let line = std::str::from_utf8(&buf[6..cr]).map_err(|_| ProxyError::BadV1("not ASCII text"))?;
    let mut f = line.split(' ');
    let proto = f.next().unwrap_or("");
    if proto == "UNKNOWN" {
        // "the receiver must ignore anything presented before the CRLF".
        return Ok(Parsed::Done {
            header: ProxyHeader::Local,
            consumed,
        });
    }
    let v6 = match proto {
        "TCP4" => false,
        "TCP6" => true,
        _ => return Err(ProxyError::BadV1("protocol is not TCP4, TCP6 or UNKNOWN")),
    };
    let fields: Vec<&str> = f.collect();
    let [src, dst, sport, dport] = fields[..] else {
        return Err(ProxyError::BadV1("expected four fields after the protocol"));
    };
    let ip = |s: &str| -> Result<IpAddr, ProxyError> {
        let a: IpAddr = if v6 {
            s.parse::<Ipv6Addr>().map(IpAddr::V6)
        } else {
            s.parse::<Ipv4Addr>().map(IpAddr::V4)
        }
        .map_err(|_| ProxyError::BadV1("bad address"))?;
        Ok(a)
    };
    let port = |s: &str| -> Result<u16, ProxyError> {
        // Decimal without leading zeros (§2.1); "0" itself is allowed.
        let ok = !s.is_empty()
            && s.len() <= 5
            && s.bytes().all(|b| b.is_ascii_digit())
            && (s == "0" || !s.starts_with('0'));
        ok.then(|| s.parse::<u16>().ok())
            .flatten()
            .ok_or(ProxyError::BadV1("bad port"))
    };
    Ok(Parsed::Done {
        header: ProxyHeader::Proxied {
            source: SocketAddr::new(ip(src)?, port(sport)?),
            dest: SocketAddr::new(ip(dst)?, port(dport)?),
        },
        consumed,
    })
}

/// The binary header (§2.2): signature, version/command, family/protocol, length, addresses,
/// then TLVs (skipped: waitressd uses none of them).
fn parse_v2(buf: &[u8], max: usize) -> Result<Parsed, ProxyError> {
    let ver_cmd = buf[12];
    if ver_cmd >> 4 != 2 {
        return Err(ProxyError::BadV2("version is not 2"));
    }
    let local = match ver_cmd & 0x0f {
        0 => true,
        1 => false,
        _ => return Err(ProxyError::BadV2("command is neither LOCAL nor PROXY")),
    };
    let fam = buf[13];
    let len = u16::from_be_bytes([buf[14], buf[15]]) as usize;
    let total = V2_FIXED + len;
    if total > max {
        return Err(ProxyError::TooLong(max));
    }
    let need = match fam {
        0x00 => 0,
        0x11 => 12,
        0x21 => 36,
        0x31 => 216,
        0x12 | 0x22 | 0x32 => return Err(ProxyError::BadV2("datagram (UDP) connections")),
        _ => return Err(ProxyError::BadV2("unknown address family")),
    };
    if len < need {
        return Err(ProxyError::BadV2("length shorter than its addresses"));
    }
    if buf.len() < total {
        return Ok(Parsed::NeedMore);
    }
    let a = &buf[V2_FIXED..total];
    let be16 = |i: usize| u16::from_be_bytes([a[i], a[i + 1]]);
    let header = match fam {
        // LOCAL: "the receiver must accept this connection as valid and must use the real
        // connection endpoints and discard the protocol block including the family".
        _ if local => ProxyHeader::Local,
        0x11 => {
            let ip = |i: usize| IpAddr::V4(Ipv4Addr::new(a[i], a[i + 1], a[i + 2], a[i + 3]));
            ProxyHeader::Proxied {
                source: SocketAddr::new(ip(0), be16(8)),
                dest: SocketAddr::new(ip(4), be16(10)),
            }
        }
        0x21 => {
            let ip = |i: usize| {
                let mut o = [0u8; 16];
                o.copy_from_slice(&a[i..i + 16]);
                IpAddr::V6(Ipv6Addr::from(o))
            };
            ProxyHeader::Proxied {
                source: SocketAddr::new(ip(0), be16(32)),
                dest: SocketAddr::new(ip(16), be16(34)),
            }
        }
        // UNSPEC or unix sockets: no IP addresses to report; the socket's own are used.
        _ => ProxyHeader::Local,
    };
    Ok(Parsed::Done {
        header,
        consumed: total,
    })
}

#[cfg(test)]
#[path = "proxy_protocol_tests.rs"]
mod tests;

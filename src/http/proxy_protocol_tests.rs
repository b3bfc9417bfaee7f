//! PROXY header tests: every header is also fed split at every byte, and every prefix of a
//! valid header must say `NeedMore`, never an error or a wrong result.
use super::*;

const MAX: usize = 4096;

fn v2(cmd: u8, fam: u8, addrs: &[u8], tlvs: &[u8]) -> Vec<u8> {
    let mut b = V2_SIGNATURE.to_vec();
    b.push(0x20 | cmd);
    b.push(fam);
    b.extend_from_slice(&((addrs.len() + tlvs.len()) as u16).to_be_bytes());
    b.extend_from_slice(addrs);
    b.extend_from_slice(tlvs);
    b
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// Feeds `header + "GET"` one prefix at a time, as the server does with split reads.
fn fed_split(bytes: &[u8]) -> Result<Parsed, ProxyError> {
    let mut data = bytes.to_vec();
    data.extend_from_slice(b"GET / HTTP/1.1\r\n");
    for cut in 0..bytes.len() {
        assert_eq!(
            parse(&data[..cut], MAX),
            Ok(Parsed::NeedMore),
            "prefix of {cut} bytes of {bytes:?}"
        );
    }
    let whole = parse(&data, MAX);
    // The same answer with nothing after the header.
    assert_eq!(parse(bytes, MAX), whole);
    whole
}

fn v4_addrs() -> Vec<u8> {
    let mut a = vec![192, 0, 2, 1, 198, 51, 100, 7];
    a.extend_from_slice(&51234u16.to_be_bytes());
    a.extend_from_slice(&443u16.to_be_bytes());
    a
}

#[test]
fn valid_headers_split_at_every_byte() {
    let proxied = |s: &str, d: &str| ProxyHeader::Proxied {
        source: sa(s),
        dest: sa(d),
    };
    let mut v6 = Vec::new();
    v6.extend_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
    v6.extend_from_slice(&"::1".parse::<Ipv6Addr>().unwrap().octets());
    v6.extend_from_slice(&[0x12, 0x34, 0x00, 0x50]);
    let cases: Vec<(Vec<u8>, ProxyHeader)> = vec![
        (
            b"PROXY TCP4 192.0.2.1 198.51.100.7 51234 443\r\n".to_vec(),
            proxied("192.0.2.1:51234", "198.51.100.7:443"),
        ),
        (
            b"PROXY TCP6 2001:db8::1 ::1 4660 80\r\n".to_vec(),
            proxied("[2001:db8::1]:4660", "[::1]:80"),
        ),
        (b"PROXY UNKNOWN\r\n".to_vec(), ProxyHeader::Local),
        (
            b"PROXY UNKNOWN ffff:f...f:ffff 65535 65535\r\n".to_vec(),
            ProxyHeader::Local,
        ),
        (
            b"PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n".to_vec(),
            proxied("0.0.0.0:0", "255.255.255.255:65535"),
        ),
        (
            v2(1, 0x11, &v4_addrs(), &[]),
            proxied("192.0.2.1:51234", "198.51.100.7:443"),
        ),
        (
            // TLVs (here a PP2_TYPE_ALPN and a NOOP) are skipped.
            v2(1, 0x11, &v4_addrs(), &[0x01, 0, 2, b'h', b'2', 0x04, 0, 0]),
            proxied("192.0.2.1:51234", "198.51.100.7:443"),
        ),
        (
            v2(1, 0x21, &v6, &[]),
            proxied("[2001:db8::1]:4660", "[::1]:80"),
        ),
        (v2(0, 0x00, &[], &[]), ProxyHeader::Local),
        // LOCAL with addresses: they are ignored.
        (v2(0, 0x11, &v4_addrs(), &[]), ProxyHeader::Local),
        (v2(1, 0x00, &[], &[]), ProxyHeader::Local),
        (v2(1, 0x31, &[0u8; 216], &[]), ProxyHeader::Local),
    ];
    for (bytes, want) in cases {
        assert_eq!(
            fed_split(&bytes),
            Ok(Parsed::Done {
                header: want,
                consumed: bytes.len()
            }),
            "{bytes:?}"
        );
    }
}

#[test]
fn bad_headers_are_refused() {
    let long_v1 = {
        let mut b = b"PROXY UNKNOWN ".to_vec();
        b.resize(120, b'x');
        b
    };
    let mut bad_version = v2(1, 0x11, &v4_addrs(), &[]);
    bad_version[12] = 0x11;
    let mut bad_cmd = v2(1, 0x11, &v4_addrs(), &[]);
    bad_cmd[12] = 0x2f;
    let cases: Vec<(&str, Vec<u8>, ProxyError)> = vec![
        (
            "plain http",
            b"GET / HTTP/1.1\r\n\r\n".to_vec(),
            ProxyError::Missing,
        ),
        ("lower case", b"proxy TCP4".to_vec(), ProxyError::Missing),
        ("no CRLF in 107 bytes", long_v1, ProxyError::TooLong(V1_MAX)),
        (
            "bare LF",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n".to_vec(),
            ProxyError::BadV1("line ends without CR"),
        ),
        (
            // Whole, this was an UNKNOWN line (its text ignored) and accepted; cut after the
            // LF, the same bytes were refused.
            "LF before the CRLF",
            b"PROXY UNKNOWN a\nb\r\n".to_vec(),
            ProxyError::BadV1("line ends without CR"),
        ),
        (
            "CR then junk",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX".to_vec(),
            ProxyError::BadV1("CR not followed by LF"),
        ),
        (
            "TCP5",
            b"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n".to_vec(),
            ProxyError::BadV1("protocol is not TCP4, TCP6 or UNKNOWN"),
        ),
        (
            "v6 address in TCP4",
            b"PROXY TCP4 ::1 ::1 1 2\r\n".to_vec(),
            ProxyError::BadV1("bad address"),
        ),
        (
            "octal-looking address",
            b"PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n".to_vec(),
            ProxyError::BadV1("bad address"),
        ),
        (
            "port leading zero",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n".to_vec(),
            ProxyError::BadV1("bad port"),
        ),
        (
            "port too big",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n".to_vec(),
            ProxyError::BadV1("bad port"),
        ),
        (
            "two spaces",
            b"PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n".to_vec(),
            ProxyError::BadV1("expected four fields after the protocol"),
        ),
        (
            "missing port",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n".to_vec(),
            ProxyError::BadV1("expected four fields after the protocol"),
        ),
        (
            "v2 version 1",
            bad_version,
            ProxyError::BadV2("version is not 2"),
        ),
        (
            "v2 command 15",
            bad_cmd,
            ProxyError::BadV2("command is neither LOCAL nor PROXY"),
        ),
        (
            "v2 UDP",
            v2(1, 0x12, &v4_addrs(), &[]),
            ProxyError::BadV2("datagram (UDP) connections"),
        ),
        (
            "v2 family 0x41",
            v2(1, 0x41, &v4_addrs(), &[]),
            ProxyError::BadV2("unknown address family"),
        ),
        (
            "v2 length shorter than IPv6 addresses",
            v2(1, 0x21, &v4_addrs(), &[]),
            ProxyError::BadV2("length shorter than its addresses"),
        ),
        (
            "v2 TLVs past the limit",
            v2(1, 0x11, &v4_addrs(), &[0u8; MAX]),
            ProxyError::TooLong(MAX),
        ),
    ];
    for (what, bytes, want) in cases {
        assert_eq!(parse(&bytes, MAX), Err(want.clone()), "{what}");
        // Split: every prefix is either still incomplete or already the same error.
        for cut in 1..bytes.len() {
            match parse(&bytes[..cut], MAX) {
                Ok(Parsed::NeedMore) => {}
                Err(e) => assert_eq!(e, want, "{what}, prefix {cut}"),
                Ok(done) => panic!("{what}: prefix {cut} parsed as {done:?}"),
            }
        }
    }
}

#[test]
fn truncated_headers_are_never_complete() {
    let full = v2(1, 0x11, &v4_addrs(), &[]);
    for cut in 0..full.len() {
        assert_eq!(parse(&full[..cut], MAX), Ok(Parsed::NeedMore));
    }
    let v1 = b"PROXY TCP4 192.0.2.1 198.51.100.7 51234 443\r\n";
    for cut in 0..v1.len() {
        assert_eq!(parse(&v1[..cut], MAX), Ok(Parsed::NeedMore));
    }
}

#[test]
fn the_longest_v1_line_is_accepted() {
    let mut line =
        b"PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n"
            .to_vec();
    assert_eq!(line.len(), V1_MAX);
    assert!(matches!(
        fed_split(&line),
        Ok(Parsed::Done {
            consumed: V1_MAX,
            ..
        })
    ));
    line.insert(6, b'X');
    assert!(parse(&line, MAX).is_err());
}

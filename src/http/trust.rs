//! `trusted_proxy` matching: waitress compares the peer's address with the setting as one exact
//! string (`*` = any peer); waitressd also takes a list of addresses and CIDRs, separated by
//! spaces or commas (`127.0.0.1 10.0.0.0/8`, gunicorn's `forwarded_allow_ips` habit). A list
//! matched nothing under waitress, so no working configuration changes meaning. CIDRs: ipnet.
use std::net::IpAddr;

use ipnet::IpNet;

/// One item of the list (borrowed from the setting: matching allocates nothing).
enum Item<'a> {
    Any,
    /// An exact string: an address, or `localhost` (waitress's peer name for unix sockets).
    Exact(&'a str),
    Net(IpNet),
}

fn items(setting: &str) -> impl Iterator<Item = &str> {
    setting
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|s| !s.is_empty())
}

fn parse(item: &str) -> Option<Item<'_>> {
    if item == "*" {
        return Some(Item::Any);
    }
    if item == "localhost" || item.parse::<IpAddr>().is_ok() {
        return Some(Item::Exact(item));
    }
    item.parse::<IpNet>().ok().map(Item::Net)
}

/// Checks every item; Err = the first one that is neither an address, a CIDR, `localhost` nor
/// `*`.
pub fn check(setting: &str) -> Result<(), String> {
    match items(setting).find(|i| parse(i).is_none()) {
        Some(bad) => Err(bad.to_string()),
        None => Ok(()),
    }
}

/// Whether `peer` (REMOTE_ADDR as waitress makes it) may send proxy headers.
pub fn peer_trusted(setting: &str, peer: &str) -> bool {
    // waitress's own rule first: one exact string, or `*`.
    if setting == "*" || setting == peer {
        return true;
    }
    let peer_ip = peer.parse::<IpAddr>().ok();
    items(setting).any(|i| match parse(i) {
        Some(Item::Any) => true,
        Some(Item::Exact(s)) => s == peer,
        Some(Item::Net(net)) => peer_ip.is_some_and(|ip| in_net(ip, &net)),
        None => false,
    })
}

fn in_net(ip: IpAddr, net: &IpNet) -> bool {
    let ip = match (ip, net) {
        // A v4 peer on a dual-stack socket shows as ::ffff:a.b.c.d.
        (IpAddr::V6(v6), IpNet::V4(_)) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        _ => ip,
    };
    net.contains(&ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_and_cidrs_match_as_documented() {
        let cases = [
            ("127.0.0.1", "127.0.0.1", true),
            ("127.0.0.1", "127.0.0.2", false),
            ("*", "203.0.113.9", true),
            ("127.0.0.1 10.0.0.0/8", "10.200.3.4", true),
            ("127.0.0.1, 10.0.0.0/8", "11.0.0.1", false),
            ("127.0.0.0/8", "127.9.9.9", true),
            ("127.0.0.0/8", "::ffff:127.0.0.5", true),
            ("0.0.0.0/0", "192.0.2.1", true),
            ("10.0.0.1/32", "10.0.0.1", true),
            ("10.0.0.1/32", "10.0.0.2", false),
            ("::1 fd00::/8", "fd12::1", true),
            ("fd00::/8", "fe80::1", false),
            ("::/0", "2001:db8::1", true),
            ("10.0.0.0/8 localhost", "localhost", true),
        ];
        for (setting, peer, want) in cases {
            assert!(check(setting).is_ok(), "{setting}");
            assert_eq!(peer_trusted(setting, peer), want, "{setting} vs {peer}");
        }
    }

    #[test]
    fn anything_else_is_named() {
        for (setting, bad) in [
            ("proxy.internal", "proxy.internal"),
            ("10.0.0.0/33", "10.0.0.0/33"),
            ("127.0.0.1 10.0.0.0/x", "10.0.0.0/x"),
            ("::1/129", "::1/129"),
        ] {
            assert_eq!(check(setting), Err(bad.to_string()));
        }
    }
}

//! Peer lists, parsed once with the configuration: `trusted_proxy` (whose proxy headers are
//! trusted) and `proxy_allow_ips` (who may send a PROXY protocol header). Items are `*`,
//! addresses and CIDR networks (ipnet), separated by spaces or commas; `trusted_proxy` also
//! takes `localhost`, waitress's peer name for unix sockets. Matching takes the peer's
//! `IpAddr` as the server got it: it parses and allocates nothing.
//!
//! `trusted_proxy`: waitress compares the peer's address with the setting as one exact string
//! (`*` = any peer); waitressd also takes a list (`127.0.0.1 10.0.0.0/8`, gunicorn's
//! `forwarded_allow_ips` habit). A list matched nothing under waitress, so no working
//! configuration changes meaning. One difference, on purpose: addresses are compared as
//! addresses, not strings, so `127.0.0.1` also matches its IPv4-mapped form `::ffff:127.0.0.1`
//! (a v4 peer seen through a dual-stack socket), as the networks always did.
use std::net::IpAddr;

use ipnet::IpNet;

/// Who a peer list lets in: any peer, `localhost`, or the peers in these networks (a single
/// address is a /32 or /128 network).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Peers {
    any: bool,
    localhost: bool,
    nets: Vec<IpNet>,
    /// The setting as written, for `--print-config`.
    text: String,
}

/// An item of a peer list that is none of the forms the setting takes; the message names them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotAPeer {
    #[error(
        "{0:?} is neither an IP address, a CIDR (10.0.0.0/8), localhost (a unix socket peer) \
         nor * (trusted_proxy takes one or more, separated by spaces or commas)"
    )]
    TrustedProxy(String),
    #[error("{0:?} is not an IP address or CIDR network (e.g. 10.0.0.0/8), or *")]
    ProxyAllowIps(String),
}

impl Peers {
    /// `trusted_proxy`: addresses, CIDRs, `localhost` and `*`.
    pub fn parse(text: &str) -> Result<Peers, NotAPeer> {
        Peers::parse_items(text, true)
    }

    /// `proxy_allow_ips`: addresses, CIDRs and `*` (a PROXY header comes over TCP, so a peer
    /// always has an address).
    pub fn parse_ips(text: &str) -> Result<Peers, NotAPeer> {
        Peers::parse_items(text, false)
    }

    fn parse_items(text: &str, names: bool) -> Result<Peers, NotAPeer> {
        let mut p = Peers {
            text: text.to_string(),
            ..Peers::default()
        };
        for item in text
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|s| !s.is_empty())
        {
            if item == "*" {
                p.any = true;
            } else if names && item == "localhost" {
                p.localhost = true;
            } else if let Ok(ip) = item.parse::<IpAddr>() {
                p.nets.push(IpNet::from(ip));
            } else if let Ok(net) = item.parse::<IpNet>() {
                p.nets.push(net);
            } else if names {
                return Err(NotAPeer::TrustedProxy(item.to_string()));
            } else {
                return Err(NotAPeer::ProxyAllowIps(item.to_string()));
            }
        }
        Ok(p)
    }

    /// The setting as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Each item in a canonical form: the networks in order (a single address without its
    /// prefix length), then `localhost` and `*` if given.
    pub fn items(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .nets
            .iter()
            .map(|n| match n.prefix_len() == n.max_prefix_len() {
                true => n.addr().to_string(),
                false => n.to_string(),
            })
            .collect();
        if self.localhost {
            v.push("localhost".into());
        }
        if self.any {
            v.push("*".into());
        }
        v
    }

    /// Whether `peer` is in the list: `Some` address, or `None` for a unix-socket peer (which
    /// waitress names `localhost`).
    pub fn matches(&self, peer: Option<IpAddr>) -> bool {
        self.any
            || match peer {
                Some(ip) => self.nets_contain(ip),
                None => self.localhost,
            }
    }

    fn nets_contain(&self, ip: IpAddr) -> bool {
        // A v4 peer on a dual-stack socket shows as ::ffff:a.b.c.d: it is in the v4 networks
        // of its v4 form, and in the v6 networks (`::/0`) that hold the mapped address.
        let canonical = ip.to_canonical();
        self.nets
            .iter()
            .any(|n| n.contains(&ip) || n.contains(&canonical))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_and_cidrs_match_as_documented() {
        let cases = [
            ("127.0.0.1", "127.0.0.1", true),
            ("127.0.0.1", "127.0.0.2", false),
            // An address matches its IPv4-mapped form too (waitress's string compare did not).
            ("127.0.0.1", "::ffff:127.0.0.1", true),
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
            // A v6 network holding the mapped range holds a v4 peer seen on a v6 socket.
            ("::/0", "::ffff:192.0.2.1", true),
            // "localhost": a unix-socket peer (no address).
            ("10.0.0.0/8 localhost", "localhost", true),
            ("10.0.0.0/8", "localhost", false),
            ("0.0.0.0/0 ::/0", "localhost", false),
            ("*", "localhost", true),
            ("localhost", "127.0.0.1", false),
        ];
        for (setting, peer, want) in cases {
            let p = Peers::parse(setting).unwrap_or_else(|e| panic!("{setting}: {e}"));
            let ip = (peer != "localhost").then(|| peer.parse().unwrap());
            assert_eq!(p.matches(ip), want, "{setting} vs {peer}");
            assert_eq!(p.as_str(), setting);
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
            assert_eq!(
                Peers::parse(setting),
                Err(NotAPeer::TrustedProxy(bad.to_string()))
            );
        }
        // Each setting's message names the forms it takes.
        for (e, want) in [
            (Peers::parse("a b"), "\"a\" is neither an IP address, a CIDR (10.0.0.0/8), localhost (a unix socket peer) nor *"),
            (Peers::parse_ips("a"), "\"a\" is not an IP address or CIDR network (e.g. 10.0.0.0/8), or *"),
        ] {
            assert!(e.unwrap_err().to_string().starts_with(want), "{want}");
        }
    }

    #[test]
    fn proxy_allow_ips_addresses_networks_and_wildcard() {
        let l = Peers::parse_ips;
        let a = l("127.0.0.1,::1 10.0.0.0/8").unwrap();
        // (peer, allowed)
        let table = [
            ("127.0.0.1", true),
            ("127.0.0.2", false),
            ("::1", true),
            ("::ffff:127.0.0.1", true),
            ("10.200.3.4", true),
            ("11.0.0.1", false),
            ("2001:db8::1", false),
        ];
        for (ip, want) in table {
            assert_eq!(a.matches(Some(ip.parse().unwrap())), want, "{ip}");
        }
        assert!(l("*")
            .unwrap()
            .matches(Some("2001:db8::1".parse().unwrap())));
        assert!(!l("").unwrap().matches(Some("127.0.0.1".parse().unwrap())));
        assert_eq!(
            l("localhost"),
            Err(NotAPeer::ProxyAllowIps("localhost".into()))
        );
        assert!(l("10.0.0.0/33").is_err());
    }

    #[test]
    fn items_are_printed_canonically() {
        let p = Peers::parse("* 10.0.0.1/32, localhost ::1 10.0.0.0/8").unwrap();
        assert_eq!(
            p.items(),
            ["10.0.0.1", "::1", "10.0.0.0/8", "localhost", "*"]
        );
    }
}

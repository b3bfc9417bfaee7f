//! `proxy_allow_ips`: which peers may send a PROXY protocol header (gunicorn's meaning:
//! addresses and CIDR networks, `*` for any).
use std::net::IpAddr;

/// Who may send a PROXY header (gunicorn's `proxy_allow_ips`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AllowIps {
    pub any: bool,
    pub nets: Vec<ipnet::IpNet>,
}

impl AllowIps {
    /// Parses `127.0.0.1, ::1 10.0.0.0/8 *` (commas or whitespace between entries).
    pub fn parse(items: &[String]) -> Result<AllowIps, String> {
        let mut a = AllowIps::default();
        for item in items
            .iter()
            .flat_map(|s| s.split(|c: char| c == ',' || c.is_whitespace()))
            .filter(|s| !s.is_empty())
        {
            if item == "*" {
                a.any = true;
            } else if let Ok(net) = item.parse::<ipnet::IpNet>() {
                a.nets.push(net);
            } else if let Ok(ip) = item.parse::<IpAddr>() {
                a.nets.push(ipnet::IpNet::from(ip));
            } else {
                return Err(format!(
                    "{item:?} is not an IP address or CIDR network (e.g. 10.0.0.0/8), or *"
                ));
            }
        }
        Ok(a)
    }

    /// True if `ip` may send a PROXY header (IPv4-mapped IPv6 peers count as IPv4).
    pub fn allows(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.any || self.nets.iter().any(|n| n.contains(&ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_networks_and_wildcard() {
        let l = |s: &str| AllowIps::parse(&[s.to_string()]);
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
            assert_eq!(a.allows(ip.parse().unwrap()), want, "{ip}");
        }
        assert!(l("*").unwrap().allows("2001:db8::1".parse().unwrap()));
        assert!(!l("").unwrap().allows("127.0.0.1".parse().unwrap()));
        assert!(l("localhost").unwrap_err().contains("not an IP address"));
        assert!(l("10.0.0.0/33").is_err());
    }
}

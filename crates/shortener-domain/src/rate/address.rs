//! The partition of the per-address policies: who a client is, as far as counting goes.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

/// A client address as the per-address policies count it: an IPv4 address as it is (also
/// when it arrives IPv4-mapped, `::ffff:a.b.c.d`, from a dual-stack listener), an IPv6
/// address as its /64, because one subscriber is routinely given a whole /64 and could
/// otherwise start afresh from each of its 2^64 addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientAddress(IpAddr);

impl ClientAddress {
    /// The partition `ip` belongs to.
    pub fn new(ip: IpAddr) -> ClientAddress {
        ClientAddress(match ip.to_canonical() {
            IpAddr::V4(v4) => IpAddr::V4(v4),
            IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
        })
    }

    /// The partition's first address: the IPv4 address, or the /64's network address.
    pub fn ip(self) -> IpAddr {
        self.0
    }
}

impl From<IpAddr> for ClientAddress {
    fn from(ip: IpAddr) -> Self {
        ClientAddress::new(ip)
    }
}

/// `192.0.2.1`, or `2001:db8:1:2::/64`: an IPv6 partition shows as the prefix it is.
impl fmt::Display for ClientAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IpAddr::V4(v4) => v4.fmt(f),
            IpAddr::V6(v6) => write!(f, "{v6}/64"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::net::Ipv4Addr;

    use super::*;

    fn addr(s: &str) -> ClientAddress {
        ClientAddress::new(s.parse().unwrap_or_else(|e| panic!("{s}: {e}")))
    }

    #[test]
    fn ipv4_is_counted_as_it_is() {
        assert_eq!(
            addr("192.0.2.7").ip(),
            IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7))
        );
        assert_ne!(addr("192.0.2.7"), addr("192.0.2.8"));
        assert_eq!(addr("192.0.2.7").to_string(), "192.0.2.7");
    }

    #[test]
    fn ipv4_mapped_ipv6_is_the_ipv4_address() {
        assert_eq!(addr("::ffff:192.0.2.7"), addr("192.0.2.7"));
        assert_eq!(addr("::ffff:192.0.2.7").to_string(), "192.0.2.7");
        // Other forms carrying an IPv4 address are IPv6 addresses like any other.
        assert_eq!(addr("64:ff9b::192.0.2.7").to_string(), "64:ff9b::/64");
    }

    #[test]
    fn ipv6_counts_per_64() {
        assert_eq!(
            addr("2001:db8:1:2:aaaa::1"),
            addr("2001:db8:1:2:ffff:ffff:ffff:ffff")
        );
        assert_ne!(addr("2001:db8:1:2::1"), addr("2001:db8:1:3::1"));
        assert_eq!(
            addr("2001:db8:1:2:3:4:5:6").to_string(),
            "2001:db8:1:2::/64"
        );
        assert_eq!(
            addr("2001:db8:1:2:3:4:5:6").ip(),
            "2001:db8:1:2::".parse::<IpAddr>().unwrap()
        );
        assert_eq!(addr("::1").to_string(), "::/64");
        let distinct: HashSet<_> = (0..100u128)
            .map(|i| ClientAddress::new(IpAddr::V6(Ipv6Addr::from(0x2001_0db8_u128 << 96 | i))))
            .collect();
        assert_eq!(distinct.len(), 1);
    }
}

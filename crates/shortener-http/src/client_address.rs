//! Who the client is, for the per-address rate limits: the peer, or, behind a proxy the
//! operator trusts (`server.trusted_proxies`), the address that proxy says it served.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

use crate::Error;

/// A block of addresses (`10.0.0.0/8`, `2001:db8::/32`; a bare address is its own block).
/// Valid by construction: the prefix fits the family and no host bit is set. An IPv4-mapped
/// IPv6 block (`::ffff:10.0.0.0/104`) is held as the IPv4 block it maps, as addresses are
/// compared in their IPv4 form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    net: IpAddr,
    len: u8,
}

impl Cidr {
    /// Whether `ip` lies in the block. An IPv4 address and its IPv4-mapped IPv6 form are
    /// the same address: in an IPv4 block, and in an IPv6 block that holds the mapped form.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let within = |diff: u128, bits: u32| diff.checked_shr(bits).unwrap_or(0) == 0;
        match (self.net, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => within(
                u128::from(u32::from(net) ^ u32::from(ip)),
                32 - u32::from(self.len),
            ),
            (IpAddr::V6(net), ip) => {
                let ip = match ip {
                    IpAddr::V4(v4) => v4.to_ipv6_mapped(),
                    IpAddr::V6(v6) => v6,
                };
                within(u128::from(net) ^ u128::from(ip), 128 - u32::from(self.len))
            }
            (IpAddr::V4(_), IpAddr::V6(_)) => false,
        }
    }

    /// The block's first address.
    pub fn network(&self) -> IpAddr {
        self.net
    }

    /// The prefix length.
    pub fn prefix_len(&self) -> u8 {
        self.len
    }
}

impl FromStr for Cidr {
    type Err = Error;

    /// `address/length` or a bare address; host bits set are refused rather than masked,
    /// as they usually mean a typo in the length or the address.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let invalid = |why: &str| {
            Error::Validation(format!(
                "`{s}` is not a CIDR block (e.g. 10.0.0.0/8, 2001:db8::/32, or one address): {why}"
            ))
        };
        let (addr, len) = match s.split_once('/') {
            Some((addr, len)) => (addr, Some(len)),
            None => (s, None),
        };
        let net: IpAddr = addr.parse().map_err(|_| invalid("not an IP address"))?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let len = match len {
            None => max,
            Some(l) if !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit()) => l
                .parse::<u8>()
                .ok()
                .filter(|&l| l <= max)
                .ok_or_else(|| invalid(&format!("the prefix length is over {max}")))?,
            Some(_) => return Err(invalid("the prefix length is not a number")),
        };
        let cidr = Cidr { net, len };
        let first = cidr.first();
        if first != net {
            return Err(invalid(&format!(
                "host bits are set (the block of that length is {first}/{len})"
            )));
        }
        Ok(cidr.canonical())
    }
}

impl Cidr {
    /// The network address: `net` with the host bits cleared.
    fn first(&self) -> IpAddr {
        match self.net {
            IpAddr::V4(a) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.len)).unwrap_or(0);
                IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask))
            }
            IpAddr::V6(a) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.len))
                    .unwrap_or(0);
                IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask))
            }
        }
    }

    /// An IPv4-mapped block as the IPv4 block; anything else as it is.
    fn canonical(self) -> Cidr {
        match self.net {
            IpAddr::V6(a) if self.len >= 96 => match a.to_ipv4_mapped() {
                Some(v4) => Cidr {
                    net: IpAddr::V4(v4),
                    len: self.len - 96,
                },
                None => self,
            },
            _ => self,
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.net, self.len)
    }
}

/// The address a request counts against: `peer` itself, unless `peer` is a trusted proxy.
/// Then the `X-Forwarded-For` entries (`forwarded_for`: the header's lines in order, read
/// as one comma-separated list) are walked from the right, each appended by the hop
/// before, and the first that is not itself a trusted proxy is the client: everything left
/// of it was written by that client and could be anything. A client that is not a trusted
/// proxy cannot choose its address by sending the header.
///
/// The walk stops short of a client when it meets an entry that is not an address
/// (`unknown`, an obfuscated name, garbage a proxy passed along): then the nearest trusted
/// proxy reached is the answer (the peer, or the last trusted entry passed), as is the
/// left-most entry when every entry is trusted. That puts the requests of such a proxy in
/// one partition: conservative, and never an address a client chose. Empty list elements
/// are skipped, as HTTP lists allow them. A header line that is not valid text is best
/// passed through `String::from_utf8_lossy`, so that only its damaged entries stop the walk.
///
/// No peer (not a TCP connection): `None`; what comes without a peer cannot be checked
/// against the trusted proxies, so the header is not believed either.
///
/// Entries may be `192.0.2.1`, `192.0.2.1:5678`, `2001:db8::1` or `[2001:db8::1]:443`.
pub fn client_address(
    peer: Option<IpAddr>,
    forwarded_for: &[&str],
    trusted: &[Cidr],
) -> Option<IpAddr> {
    let peer = peer?;
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    let mut nearest = peer;
    if !is_trusted(peer) {
        return Some(peer);
    }
    let entries = forwarded_for
        .iter()
        .rev()
        .flat_map(|line| line.rsplit(','))
        .map(str::trim)
        .filter(|e| !e.is_empty());
    for entry in entries {
        let Some(ip) = parse_entry(entry) else {
            break;
        };
        if !is_trusted(ip) {
            return Some(ip);
        }
        nearest = ip;
    }
    Some(nearest)
}

/// One `X-Forwarded-For` entry: an address, with or without a port.
fn parse_entry(entry: &str) -> Option<IpAddr> {
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(sa) = entry.parse::<SocketAddr>() {
        return Some(sa.ip());
    }
    entry
        .strip_prefix('[')?
        .strip_suffix(']')?
        .parse::<Ipv6Addr>()
        .ok()
        .map(IpAddr::V6)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn cidr(s: &str) -> Cidr {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn refused(s: &str) -> String {
        match s.parse::<Cidr>() {
            Ok(c) => panic!("{s} parsed as {c}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn cidrs_parse_and_contain() {
        let ten = cidr("10.0.0.0/8");
        assert!(ten.contains(ip("10.255.0.1")));
        assert!(!ten.contains(ip("11.0.0.1")));
        assert!(ten.contains(ip("::ffff:10.1.2.3")));
        assert!(!ten.contains(ip("::a01:203")));
        // An IPv6 block holding the IPv4-mapped range holds the IPv4 addresses too.
        assert!(cidr("::/0").contains(ip("10.1.2.3")));
        assert!(cidr("::fffe:0:0/95").contains(ip("10.1.2.3")));
        assert!(!cidr("2001:db8::/32").contains(ip("10.1.2.3")));
        let lo6 = cidr("::1/128");
        assert!(lo6.contains(ip("::1")));
        assert!(!lo6.contains(ip("::2")));
        assert!(!lo6.contains(ip("0.0.0.1")));
        assert!(cidr("2001:db8::/32").contains(ip("2001:db8:ffff::1")));
        assert!(!cidr("2001:db8::/32").contains(ip("2001:db9::1")));
        assert!(cidr("0.0.0.0/0").contains(ip("203.0.113.9")));
        assert!(!cidr("0.0.0.0/0").contains(ip("2001:db8::1")));
        assert!(cidr("::/0").contains(ip("2001:db8::1")));
        // A bare address is its own block.
        assert_eq!(cidr("192.0.2.1"), cidr("192.0.2.1/32"));
        assert_eq!(cidr(" 2001:db8::1 ").to_string(), "2001:db8::1/128");
        assert!(cidr("192.0.2.1").contains(ip("192.0.2.1")));
        assert!(!cidr("192.0.2.1").contains(ip("192.0.2.2")));
        // IPv4-mapped blocks are the IPv4 blocks they map.
        assert_eq!(cidr("::ffff:10.0.0.0/104"), ten);
        assert_eq!(cidr("::ffff:192.0.2.1"), cidr("192.0.2.1/32"));
        assert_eq!((ten.network(), ten.prefix_len()), (ip("10.0.0.0"), 8));
    }

    #[test]
    fn bad_cidrs_say_why() {
        assert!(refused("10.0.0.0/33").contains("over 32"));
        assert!(refused("::/129").contains("over 128"));
        assert!(refused("10.0.0.0/x").contains("not a number"));
        assert!(refused("10.0.0.0/+8").contains("not a number"));
        assert!(refused("10.0.0.0/").contains("not a number"));
        assert!(refused("10.0.0/8").contains("not an IP address"));
        assert!(refused("example.com").contains("not an IP address"));
        assert!(refused("").contains("not an IP address"));
        assert!(refused("[::1]/128").contains("not an IP address"));
        assert!(refused("10.1.2.3/8").contains("10.0.0.0/8"));
        assert!(refused("2001:db8::1/32").contains("2001:db8::/32"));
    }

    #[test]
    fn the_peer_unless_it_is_a_trusted_proxy() {
        let trusted = [cidr("10.0.0.0/8")];
        let client = ip("203.0.113.7");
        // Not a proxy: the header is the client's own and means nothing.
        assert_eq!(
            client_address(Some(client), &["192.0.2.1"], &trusted),
            Some(client)
        );
        assert_eq!(client_address(Some(client), &[], &[]), Some(client));
        assert_eq!(client_address(None, &["192.0.2.1"], &trusted), None);
        // Behind the proxy: the entry it appended.
        assert_eq!(
            client_address(Some(ip("10.0.0.2")), &["203.0.113.7"], &trusted),
            Some(client)
        );
        // A proxy with no header: the proxy.
        assert_eq!(
            client_address(Some(ip("10.0.0.2")), &[], &trusted),
            Some(ip("10.0.0.2"))
        );
    }

    #[test]
    fn the_right_most_untrusted_entry_across_lines() {
        let trusted = [cidr("10.0.0.0/8"), cidr("2001:db8:ff::/48")];
        let proxy = Some(ip("10.0.0.2"));
        // The client forged the left part; two proxies appended theirs.
        assert_eq!(
            client_address(proxy, &["1.1.1.1, 203.0.113.7, 10.0.0.9"], &trusted),
            Some(ip("203.0.113.7"))
        );
        assert_eq!(
            client_address(proxy, &["1.1.1.1", "203.0.113.7 ,10.0.0.9", ""], &trusted),
            Some(ip("203.0.113.7"))
        );
        assert_eq!(
            client_address(
                Some(ip("2001:db8:ff::1")),
                &["[2001:db8::7]:443, 2001:db8:ff::2"],
                &trusted
            ),
            Some(ip("2001:db8::7"))
        );
        // Every entry trusted: the left-most, the nearest proxy to the client known.
        assert_eq!(
            client_address(proxy, &["10.0.0.5, 10.0.0.9"], &trusted),
            Some(ip("10.0.0.5"))
        );
        // Empty elements are skipped.
        assert_eq!(
            client_address(proxy, &["203.0.113.7,, ,"], &trusted),
            Some(ip("203.0.113.7"))
        );
    }

    #[test]
    fn garbage_stops_the_walk_at_the_nearest_trusted_proxy() {
        let trusted = [cidr("10.0.0.0/8")];
        let proxy = Some(ip("10.0.0.2"));
        assert_eq!(
            client_address(proxy, &["203.0.113.7, unknown"], &trusted),
            proxy
        );
        assert_eq!(
            client_address(proxy, &["203.0.113.7, garbage, 10.0.0.9"], &trusted),
            Some(ip("10.0.0.9"))
        );
        // Left of the client it does not matter.
        assert_eq!(
            client_address(proxy, &["garbage, 203.0.113.7"], &trusted),
            Some(ip("203.0.113.7"))
        );
    }

    #[test]
    fn entries_with_ports_and_brackets() {
        for (entry, want) in [
            ("192.0.2.1", "192.0.2.1"),
            ("192.0.2.1:5678", "192.0.2.1"),
            ("2001:db8::1", "2001:db8::1"),
            ("[2001:db8::1]:443", "2001:db8::1"),
            ("[2001:db8::1]", "2001:db8::1"),
            ("::ffff:192.0.2.1", "::ffff:192.0.2.1"),
        ] {
            assert_eq!(parse_entry(entry), Some(ip(want)), "{entry}");
        }
        for entry in [
            "unknown",
            "_hidden",
            "192.0.2.1:",
            "[192.0.2.1]",
            "2001:db8::1:443]",
            "",
        ] {
            assert_eq!(parse_entry(entry), None, "{entry}");
        }
    }

    fn any_ip() -> impl Strategy<Value = IpAddr> {
        prop_oneof![
            any::<u32>().prop_map(|a| IpAddr::V4(Ipv4Addr::from(a))),
            any::<u128>().prop_map(|a| IpAddr::V6(Ipv6Addr::from(a))),
        ]
    }

    /// Header lines a client can send: arbitrary bytes (as the edge would read them), or
    /// lists of plausible entries.
    fn header_lines() -> impl Strategy<Value = Vec<String>> {
        let entry = prop_oneof![
            any_ip().prop_map(|ip| ip.to_string()),
            (any_ip(), any::<u16>()).prop_map(|(ip, port)| SocketAddr::new(ip, port).to_string()),
            "[ -~]{0,12}",
        ];
        let line = prop_oneof![
            prop::collection::vec(any::<u8>(), 0..64)
                .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
            prop::collection::vec(entry, 0..6).prop_map(|e| e.join(", ")),
        ];
        prop::collection::vec(line, 0..4)
    }

    fn trusted_blocks() -> impl Strategy<Value = Vec<Cidr>> {
        let block = (any_ip(), any::<u8>()).prop_map(|(ip, len)| {
            let max = if ip.is_ipv4() { 33 } else { 129 };
            let len = len % max;
            let c = Cidr { net: ip, len };
            Cidr {
                net: c.first(),
                len,
            }
            .canonical()
        });
        prop::collection::vec(block, 0..4)
    }

    proptest! {
        #[test]
        fn without_trusted_proxies_it_is_the_peer(peer in any_ip(), lines in header_lines()) {
            let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
            prop_assert_eq!(client_address(Some(peer), &lines, &[]), Some(peer));
        }

        #[test]
        fn never_panics_and_never_passes_over_the_client_a_proxy_saw(
            peer in any_ip(),
            lines in header_lines(),
            trusted in trusted_blocks(),
            client in any_ip(),
            same_line in any::<bool>(),
            hops in 0usize..3,
        ) {
            let borrowed: Vec<&str> = lines.iter().map(String::as_str).collect();
            let _ = client_address(Some(peer), &borrowed, &trusted);
            // The first trusted proxy appended the address it served, on the client's last
            // line or a line of its own, and the proxies after it theirs: whatever the
            // client sent before, that address is the answer (unless it is trusted too).
            let mut trusted = trusted;
            trusted.push(cidr("10.0.0.0/24"));
            let mut lines = lines;
            let appended = std::iter::once(client.to_string())
                .chain((0..hops).map(|i| format!("10.0.0.{i}")))
                .collect::<Vec<_>>()
                .join(", ");
            match lines.last_mut() {
                Some(last) if same_line => *last = format!("{last}, {appended}"),
                _ => lines.push(appended),
            }
            let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
            if !trusted.iter().any(|c| c.contains(client)) {
                prop_assert_eq!(
                    client_address(Some(ip("10.0.0.200")), &lines, &trusted),
                    Some(client)
                );
            }
        }

        #[test]
        fn cidrs_contain_exactly_their_prefix(ip in any_ip(), other in any_ip(), len in any::<u8>()) {
            let max: u8 = if ip.is_ipv4() { 32 } else { 128 };
            let len = len % (max + 1);
            let first = Cidr { net: ip, len }.first();
            let c: Cidr = format!("{first}/{len}")
                .parse()
                .map_err(|e: Error| TestCaseError::fail(e.to_string()))?;
            prop_assert!(c.contains(ip));
            prop_assert_eq!(c.to_string().parse::<Cidr>().ok(), Some(c));
            // The model: everything as IPv6 (IPv4 as IPv4-mapped), compared bit by bit.
            let v6 = |a: IpAddr| match a {
                IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
                IpAddr::V6(v6) => u128::from(v6),
            };
            let bits = u32::from(c.prefix_len()) + if c.network().is_ipv4() { 96 } else { 0 };
            let v4_block_v6_address = c.network().is_ipv4() && other.to_canonical().is_ipv6();
            let inside = (v6(c.network()) ^ v6(other)).leading_zeros() >= bits && !v4_block_v6_address;
            prop_assert_eq!(c.contains(other), inside);
        }
    }
}

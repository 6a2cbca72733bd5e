//! Which IP addresses a target may not point at (unless the operator allows it): the
//! special-purpose blocks of the IANA IPv4 and IPv6 Special-Purpose Address Registries
//! that are not globally reachable, plus multicast and a few neighbours that are no web
//! host either. IPv6 forms that carry an IPv4 address are judged by the address they carry.
//!
//! Registries: <https://www.iana.org/assignments/iana-ipv4-special-registry> and
//! <https://www.iana.org/assignments/iana-ipv6-special-registry>.

use std::net::{Ipv4Addr, Ipv6Addr};

/// An address block (CIDR) and where it is defined.
#[derive(Debug, Clone, Copy)]
pub(super) struct Block<A> {
    /// The first address.
    pub(super) net: A,
    /// The prefix length.
    pub(super) len: u8,
    /// What the block is, and the RFC that defines it.
    #[allow(
        dead_code,
        reason = "for the reader, and for naming a block in a test failure"
    )]
    pub(super) source: &'static str,
}

const fn v4(net: Ipv4Addr, len: u8, source: &'static str) -> Block<Ipv4Addr> {
    Block { net, len, source }
}

const fn v6(net: Ipv6Addr, len: u8, source: &'static str) -> Block<Ipv6Addr> {
    Block { net, len, source }
}

const fn a4(a: u8, b: u8, c: u8, d: u8) -> Ipv4Addr {
    Ipv4Addr::new(a, b, c, d)
}

#[allow(clippy::too_many_arguments)]
const fn a6(a: u16, b: u16, c: u16, d: u16, e: u16, f: u16, g: u16, h: u16) -> Ipv6Addr {
    Ipv6Addr::new(a, b, c, d, e, f, g, h)
}

/// Refused IPv4 blocks.
#[rustfmt::skip]
pub(super) const REFUSED_V4: &[Block<Ipv4Addr>] = &[
    v4(a4(0, 0, 0, 0), 8, "\"this network\" (and 0.0.0.0/32 \"this host\"), RFC 791 §3.2, RFC 1122 §3.2.1.3"),
    v4(a4(10, 0, 0, 0), 8, "private-use, RFC 1918"),
    v4(a4(100, 64, 0, 0), 10, "shared address space (carrier-grade NAT), RFC 6598"),
    v4(a4(127, 0, 0, 0), 8, "loopback, RFC 1122 §3.2.1.3"),
    v4(a4(169, 254, 0, 0), 16, "link-local, RFC 3927"),
    v4(a4(172, 16, 0, 0), 12, "private-use, RFC 1918"),
    // As a whole not globally reachable. Inside: IPv4 service continuity 192.0.0.0/29
    // (RFC 7335), dummy 192.0.0.8 (RFC 7600), NAT64 discovery 192.0.0.170-171 (RFC 8880),
    // and the globally reachable PCP and TURN anycast 192.0.0.9-10 (RFC 7723, RFC 8155),
    // refused too: protocol service addresses, not web hosts.
    v4(a4(192, 0, 0, 0), 24, "IETF protocol assignments, RFC 6890 §2.1"),
    v4(a4(192, 0, 2, 0), 24, "documentation (TEST-NET-1), RFC 5737"),
    v4(a4(192, 88, 99, 0), 24, "deprecated 6to4 relay anycast, RFC 7526"),
    v4(a4(192, 168, 0, 0), 16, "private-use, RFC 1918"),
    v4(a4(198, 18, 0, 0), 15, "benchmarking, RFC 2544"),
    v4(a4(198, 51, 100, 0), 24, "documentation (TEST-NET-2), RFC 5737"),
    v4(a4(203, 0, 113, 0), 24, "documentation (TEST-NET-3), RFC 5737"),
    v4(a4(224, 0, 0, 0), 4, "multicast, RFC 5771 (not in the special-purpose registry)"),
    v4(a4(240, 0, 0, 0), 4, "reserved, RFC 1112 §4"),
    v4(a4(255, 255, 255, 255), 32, "limited broadcast, RFC 919 §7, RFC 8190 (inside 240.0.0.0/4)"),
];

/// Refused IPv6 blocks, for addresses that are not one of the [`EMBEDDINGS`].
#[rustfmt::skip]
pub(super) const REFUSED_V6: &[Block<Ipv6Addr>] = &[
    // `::` and `::1` lie in the IPv4-compatible embedding ::/96 and are refused as 0.0.0.0
    // and 0.0.0.1; listed for the registry.
    v6(a6(0, 0, 0, 0, 0, 0, 0, 0), 128, "unspecified, RFC 4291 §2.5.2"),
    v6(a6(0, 0, 0, 0, 0, 0, 0, 1), 128, "loopback, RFC 4291 §2.5.3"),
    // The local-use NAT64 prefix: the operator chooses where the IPv4 address sits
    // (RFC 6052 §2.2), so it cannot be unpacked; not globally reachable in any case.
    v6(a6(0x64, 0xff9b, 1, 0, 0, 0, 0, 0), 48, "local-use IPv4/IPv6 translation, RFC 8215"),
    v6(a6(0x100, 0, 0, 0, 0, 0, 0, 0), 64, "discard-only, RFC 6666"),
    v6(a6(0x100, 0, 0, 1, 0, 0, 0, 0), 64, "dummy IPv6 prefix, RFC 9780"),
    // As a whole not globally reachable. Inside: Teredo 2001::/32 (RFC 4380, judged by the
    // IPv4 addresses it carries: see EMBEDDINGS), benchmarking 2001:2::/48 (RFC 5180),
    // ORCHID 2001:10::/28 (RFC 4843) and ORCHIDv2 2001:20::/28 (RFC 7343), which are
    // identifiers, not locators; and globally reachable anycast 2001:1::1-3 (RFC 7723,
    // RFC 8155, RFC 9665), AMT 2001:3::/32 (RFC 7450), AS112 2001:4:112::/48 (RFC 7535) and
    // drone DETs 2001:30::/28 (RFC 9374), refused too: protocol addresses and identifiers,
    // not web hosts.
    v6(a6(0x2001, 0, 0, 0, 0, 0, 0, 0), 23, "IETF protocol assignments, RFC 2928"),
    v6(a6(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32, "documentation, RFC 3849"),
    v6(a6(0x3fff, 0, 0, 0, 0, 0, 0, 0), 20, "documentation, RFC 9637"),
    v6(a6(0x5f00, 0, 0, 0, 0, 0, 0, 0), 16, "segment routing (SRv6) SIDs, RFC 9602"),
    v6(a6(0xfc00, 0, 0, 0, 0, 0, 0, 0), 7, "unique-local, RFC 4193"),
    v6(a6(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10, "link-local unicast, RFC 4291 §2.5.6"),
    v6(a6(0xfec0, 0, 0, 0, 0, 0, 0, 0), 10, "site-local (deprecated), RFC 3879 (not in the registry)"),
    v6(a6(0xff00, 0, 0, 0, 0, 0, 0, 0), 8, "multicast, RFC 4291 §2.7 (not in the registry)"),
];

/// Where in an IPv6 address an embedding keeps its IPv4 address(es).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Carries {
    /// Bits 96-127.
    Low32,
    /// Bits 16-47 (6to4: `2002:AABB:CCDD::/48`).
    Bits16To47,
    /// Teredo: the server in bits 32-63, the client in bits 96-127 with every bit inverted.
    Teredo,
}

/// An IPv6 block whose addresses carry an IPv4 address and reach it: judged by it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Embedding {
    /// The block.
    pub(super) block: Block<Ipv6Addr>,
    /// Where the IPv4 address sits.
    pub(super) carries: Carries,
}

const fn embedding(net: Ipv6Addr, len: u8, carries: Carries, source: &'static str) -> Embedding {
    Embedding {
        block: Block { net, len, source },
        carries,
    }
}

/// IPv6 forms carrying an IPv4 address, judged by the IPv4 address(es) they carry. The
/// blocks are disjoint.
#[rustfmt::skip]
pub(super) const EMBEDDINGS: &[Embedding] = &[
    embedding(a6(0, 0, 0, 0, 0, 0xffff, 0, 0), 96, Carries::Low32, "IPv4-mapped, RFC 4291 §2.5.5.2"),
    embedding(a6(0, 0, 0, 0, 0xffff, 0, 0, 0), 96, Carries::Low32, "IPv4-translated (SIIT), RFC 2765 §2.1"),
    embedding(a6(0, 0, 0, 0, 0, 0, 0, 0), 96, Carries::Low32, "IPv4-compatible (deprecated), RFC 4291 §2.5.5.1"),
    embedding(a6(0x64, 0xff9b, 0, 0, 0, 0, 0, 0), 96, Carries::Low32, "NAT64 well-known prefix, RFC 6052 §2.1"),
    embedding(a6(0x2002, 0, 0, 0, 0, 0, 0, 0), 16, Carries::Bits16To47, "6to4, RFC 3056 §2"),
    embedding(a6(0x2001, 0, 0, 0, 0, 0, 0, 0), 32, Carries::Teredo, "Teredo, RFC 4380 §4"),
];

impl Block<Ipv4Addr> {
    pub(super) fn contains(&self, ip: Ipv4Addr) -> bool {
        let diff = u32::from(ip) ^ u32::from(self.net);
        diff.checked_shr(32 - u32::from(self.len)).unwrap_or(0) == 0
    }
}

impl Block<Ipv6Addr> {
    pub(super) fn contains(&self, ip: Ipv6Addr) -> bool {
        let diff = u128::from(ip) ^ u128::from(self.net);
        diff.checked_shr(128 - u32::from(self.len)).unwrap_or(0) == 0
    }
}

impl Carries {
    /// The IPv4 address(es) `ip` carries: one, or Teredo's server and client.
    pub(super) fn unpack(self, ip: Ipv6Addr) -> impl Iterator<Item = Ipv4Addr> {
        let bits = u128::from(ip);
        // Truncation intended: the 32 bits at `shift`.
        let at = |shift: u32| Ipv4Addr::from((bits >> shift) as u32);
        match self {
            Carries::Low32 => [Some(at(0)), None],
            Carries::Bits16To47 => [Some(at(80)), None],
            Carries::Teredo => [Some(at(64)), Some(!at(0))],
        }
        .into_iter()
        .flatten()
    }
}

/// Whether a target may not point at `ip` (unless the operator allows it).
pub(super) fn refused_v4(ip: Ipv4Addr) -> bool {
    REFUSED_V4.iter().any(|b| b.contains(ip))
}

/// Whether a target may not point at `ip`: an embedding by the IPv4 address(es) it
/// carries, any other address by [`REFUSED_V6`].
pub(super) fn refused_v6(ip: Ipv6Addr) -> bool {
    match EMBEDDINGS.iter().find(|e| e.block.contains(ip)) {
        Some(e) => e.carries.unpack(ip).any(refused_v4),
        None => REFUSED_V6.iter().any(|b| b.contains(ip)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_written_without_host_bits() {
        for b in REFUSED_V4 {
            let host = u32::MAX.checked_shr(u32::from(b.len)).unwrap_or(0);
            assert_eq!(
                u32::from(b.net) & host,
                0,
                "{}/{} {}",
                b.net,
                b.len,
                b.source
            );
        }
        for b in REFUSED_V6.iter().chain(EMBEDDINGS.iter().map(|e| &e.block)) {
            let host = u128::MAX.checked_shr(u32::from(b.len)).unwrap_or(0);
            assert_eq!(
                u128::from(b.net) & host,
                0,
                "{}/{} {}",
                b.net,
                b.len,
                b.source
            );
        }
    }

    #[test]
    fn embeddings_are_disjoint() {
        for (i, a) in EMBEDDINGS.iter().enumerate() {
            for b in &EMBEDDINGS[i + 1..] {
                assert!(
                    !a.block.contains(b.block.net) && !b.block.contains(a.block.net),
                    "{} and {} overlap",
                    a.block.source,
                    b.block.source
                );
            }
        }
    }

    #[test]
    fn block_edges() {
        let cgnat = REFUSED_V4[2];
        assert!(cgnat.contains(a4(100, 64, 0, 0)));
        assert!(cgnat.contains(a4(100, 127, 255, 255)));
        assert!(!cgnat.contains(a4(100, 63, 255, 255)));
        assert!(!cgnat.contains(a4(100, 128, 0, 0)));
        let all = v4(a4(0, 0, 0, 0), 0, "everything");
        assert!(all.contains(a4(255, 255, 255, 255)));
        let one = v6(a6(0, 0, 0, 0, 0, 0, 0, 1), 128, "::1");
        assert!(one.contains(Ipv6Addr::LOCALHOST));
        assert!(!one.contains(Ipv6Addr::UNSPECIFIED));
    }

    #[test]
    fn teredo_unpacks_server_and_inverted_client() {
        // RFC 4380 §4's example: server 65.54.227.120, client 192.0.2.45 (obfuscated).
        let ip: Ipv6Addr = "2001:0:4136:e378:8000:63bf:3fff:fdd2"
            .parse()
            .unwrap_or_else(|e| panic!("{e}"));
        let got: Vec<_> = Carries::Teredo.unpack(ip).collect();
        assert_eq!(got, [a4(65, 54, 227, 120), a4(192, 0, 2, 45)]);
        assert!(refused_v6(ip), "the client is documentation space");
    }

    #[test]
    fn six_to_four_unpacks_bits_16_to_47() {
        let ip = a6(0x2002, 0xc000, 0x0201, 0xffff, 0, 0, 0, 1);
        assert_eq!(
            Carries::Bits16To47.unpack(ip).collect::<Vec<_>>(),
            [a4(192, 0, 2, 1)]
        );
    }
}

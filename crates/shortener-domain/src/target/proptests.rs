//! Property tests of [`TargetUrl::parse`]: it never panics, what it accepts is what it
//! would accept again unchanged, and no spelling of a refused address or of the service's
//! own host gets through.

use std::net::{Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;
use url::{Host, Url};

use super::special::{Block, Carries, EMBEDDINGS, REFUSED_V4, REFUSED_V6, refused_v4, refused_v6};
use super::{TargetUrl, UrlPolicy, UrlRule};
use crate::DomainError;

const OWN: &str = "https://sho.test";

fn policy(allow_private: bool) -> UrlPolicy {
    UrlPolicy::new(
        &Url::parse(OWN).unwrap_or_else(|e| panic!("{e}")),
        allow_private,
    )
}

fn rule(input: &str, allow_private: bool) -> Result<TargetUrl, UrlRule> {
    TargetUrl::parse(input, &policy(allow_private)).map_err(|e| match e {
        DomainError::InvalidUrl(r) => r,
        other => panic!("unexpected {other:?}"),
    })
}

/// The address of `block` whose host bits are `bits`.
fn in_v4(block: Block<Ipv4Addr>, bits: u32) -> Ipv4Addr {
    let host = u32::MAX.checked_shr(u32::from(block.len)).unwrap_or(0);
    Ipv4Addr::from(u32::from(block.net) | (bits & host))
}

fn in_v6(block: Block<Ipv6Addr>, bits: u128) -> Ipv6Addr {
    let host = u128::MAX.checked_shr(u32::from(block.len)).unwrap_or(0);
    Ipv6Addr::from(u128::from(block.net) | (bits & host))
}

/// An address inside one of the refused IPv4 blocks.
fn refused_ipv4() -> impl Strategy<Value = Ipv4Addr> {
    (0..REFUSED_V4.len(), any::<u32>()).prop_map(|(i, bits)| in_v4(REFUSED_V4[i], bits))
}

/// An IPv4 address outside every refused block.
fn public_ipv4() -> impl Strategy<Value = Ipv4Addr> {
    any::<u32>()
        .prop_map(Ipv4Addr::from)
        .prop_filter("public", |ip| !refused_v4(*ip))
}

/// An address inside one of the refused IPv6 blocks and in none of the embeddings (which
/// are judged by the IPv4 address they carry instead).
fn refused_ipv6() -> impl Strategy<Value = Ipv6Addr> {
    (0..REFUSED_V6.len(), any::<u128>())
        .prop_map(|(i, bits)| in_v6(REFUSED_V6[i], bits))
        .prop_filter("not an embedding", |ip| {
            !EMBEDDINGS.iter().any(|e| e.block.contains(*ip))
        })
}

/// Every IPv6 address that carries `ip`: one per embedding (two for Teredo, as server and
/// as client, with the public `other` in the other place), and the local-use NAT64 prefix.
/// `noise` fills the bits an embedding leaves free (6to4's subnet and interface id,
/// Teredo's flags and port).
fn embeddings_of(ip: Ipv4Addr, other: Ipv4Addr, noise: u128) -> Vec<Ipv6Addr> {
    let ip = u128::from(u32::from(ip));
    let other = u128::from(u32::from(other));
    let mut out = Vec::new();
    for e in EMBEDDINGS {
        let net = u128::from(e.block.net);
        match e.carries {
            Carries::Low32 => out.push(net | ip),
            Carries::Bits16To47 => out.push(net | (ip << 80) | (noise & ((1 << 80) - 1))),
            Carries::Teredo => {
                let flags_port = (noise & 0xffff_ffff) << 32;
                let obfuscated = |v4: u128| !v4 & 0xffff_ffff;
                out.push(net | (ip << 64) | flags_port | obfuscated(other));
                out.push(net | (other << 64) | flags_port | obfuscated(ip));
            }
        }
    }
    out.push(u128::from(Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, 0, 0)) | ip);
    out.into_iter().map(Ipv6Addr::from).collect()
}

/// Ways to write an IPv4 host: dotted, one decimal number, one hexadecimal number.
fn ipv4_spellings(ip: Ipv4Addr) -> [String; 3] {
    let n = u32::from(ip);
    [ip.to_string(), n.to_string(), format!("0x{n:X}")]
}

/// Ways to write an IPv6 host: canonical, and in full with a dotted IPv4 tail.
fn ipv6_spellings(ip: Ipv6Addr) -> [String; 2] {
    let s = ip.segments();
    let tail = Ipv4Addr::from(u128::from(ip) as u32);
    [
        format!("[{ip}]"),
        format!(
            "[{:X}:{:x}:{:x}:{:x}:{:x}:{:X}:{tail}]",
            s[0], s[1], s[2], s[3], s[4], s[5]
        ),
    ]
}

fn target(scheme: &str, host: &str, port: Option<u16>, path: &str) -> String {
    match port {
        Some(p) => format!("{scheme}://{host}:{p}/{path}"),
        None => format!("{scheme}://{host}/{path}"),
    }
}

/// The target is refused as a special-purpose address, and accepted (and stored as it
/// reparses) when the policy allows those.
fn assert_refused_unless_allowed(url: &str) -> Result<(), TestCaseError> {
    prop_assert_eq!(rule(url, false), Err(UrlRule::PrivateAddress), "{}", url);
    let allowed = rule(url, true);
    prop_assert!(allowed.is_ok(), "{} allowed by policy: {:?}", url, allowed);
    Ok(())
}

/// Whether an accepted target's stored form points where no target may.
fn stored_host_is_refused(stored: &str) -> bool {
    let url = Url::parse(stored).unwrap_or_else(|e| panic!("{stored}: {e}"));
    match url.host() {
        Some(Host::Ipv4(ip)) => refused_v4(ip),
        Some(Host::Ipv6(ip)) => refused_v6(ip),
        Some(Host::Domain(d)) => {
            let d = d.trim_end_matches('.');
            d == "localhost" || d.ends_with(".localhost")
        }
        None => true,
    }
}

/// Something like a URL, often valid, sometimes odd: mixed-case schemes, user-info,
/// Unicode and percent-encoded hosts, IP literals in several spellings, ports, and paths,
/// queries and fragments with characters that need escaping.
fn url_like() -> impl Strategy<Value = String> {
    let scheme = prop_oneof![
        Just("http"),
        Just("https"),
        Just("HtTpS"),
        Just("ftp"),
        Just("javascript"),
        Just("data"),
    ];
    let label =
        "[a-zA-Z0-9-]{1,8}|xn--[a-z0-9]{1,6}|[a-zé\u{00df}\u{3b1}\u{4e2d}]{1,4}|%[0-9a-fA-F]{2}";
    let dot = dot();
    let domain = (
        prop::collection::vec((label, dot.clone()), 0..3),
        label,
        prop::collection::vec(dot, 0..2),
    )
        .prop_map(|(labels, last, trailing)| {
            let mut s: String = labels.into_iter().map(|(l, d)| l + d).collect();
            s += &last;
            s.extend(trailing);
            s
        });
    let host = prop_oneof![
        4 => domain,
        1 => Just("sho.test".to_owned()),
        1 => Just("localhost".to_owned()),
        2 => (any::<u32>(), 0..3usize)
            .prop_map(|(n, i)| ipv4_spellings(Ipv4Addr::from(n))[i].clone()),
        2 => (any::<u128>(), 0..2usize)
            .prop_map(|(n, i)| ipv6_spellings(Ipv6Addr::from(n))[i].clone()),
        1 => "\\PC{0,12}",
    ];
    let userinfo = prop::option::weighted(0.1, "[a-z:]{0,6}@");
    let port = prop::option::weighted(0.3, any::<u16>());
    let rest = "[a-zA-Z0-9/._~!$&'()*+,;=:@%? #\\[\\]\\\\é\u{3000}<>\"{}|^`-]{0,24}";
    (scheme, userinfo, host, port, rest).prop_map(|(scheme, userinfo, host, port, rest)| {
        let port = port.map(|p| format!(":{p}")).unwrap_or_default();
        format!(
            "{scheme}://{}{host}{port}/{rest}",
            userinfo.unwrap_or_default()
        )
    })
}

/// A dot between labels, as URL parsing takes it: `.`, `%2e`, `%2E`, `。`, `．` or `｡`.
fn dot() -> impl Strategy<Value = &'static str> + Clone {
    prop_oneof![
        Just("."),
        Just("%2e"),
        Just("%2E"),
        Just("\u{3002}"),
        Just("\u{ff0e}"),
        Just("\u{ff61}"),
    ]
}

/// `sho.test` in one of its many spellings: any letter case, letters percent-encoded, dots
/// as `.`, `%2e`, `%2E`, `。`, `．` or `｡`, and up to two trailing dots.
fn own_host_spelling() -> impl Strategy<Value = String> {
    let dot = dot();
    let letter = |c: char| {
        prop_oneof![
            Just(c.to_string()),
            Just(c.to_ascii_uppercase().to_string()),
            Just(format!("%{:02x}", u32::from(c))),
            Just(format!("%{:02X}", u32::from(c.to_ascii_uppercase()))),
        ]
    };
    (
        (letter('s'), letter('h'), letter('o')),
        dot.clone(),
        (letter('t'), letter('e'), letter('s'), letter('t')),
        prop::collection::vec(dot, 0..3),
    )
        .prop_map(|((s, h, o), mid, (t, e, s2, t2), trailing)| {
            let mut out = format!("{s}{h}{o}{mid}{t}{e}{s2}{t2}");
            out.extend(trailing);
            out
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_strings_never_panic(s in any::<String>(), allow_private in any::<bool>()) {
        let _ = TargetUrl::parse(&s, &policy(allow_private));
    }

    /// What is accepted is stored exactly as the redirect sends it: parsing the stored form
    /// gives it back unchanged. It breaks no rule, and its host is never a refused address
    /// nor the service itself.
    #[test]
    fn accepted_targets_reparse_to_themselves_and_break_no_rule(
        input in url_like(),
        allow_private in any::<bool>(),
    ) {
        let policy = policy(allow_private);
        if let Ok(t) = TargetUrl::parse(&input, &policy) {
            let stored = t.as_str();
            prop_assert_eq!(TargetUrl::parse(stored, &policy), Ok(t.clone()), "{}", input);
            prop_assert!(stored.len() <= TargetUrl::MAX_LEN);
            prop_assert!(!stored.chars().any(char::is_control), "{}", stored);
            let url = Url::parse(stored).unwrap_or_else(|e| panic!("{stored}: {e}"));
            prop_assert!(matches!(url.scheme(), "http" | "https"), "{}", stored);
            prop_assert!(url.username().is_empty() && url.password().is_none());
            if !allow_private {
                prop_assert!(!stored_host_is_refused(stored), "{} from {}", stored, input);
            }
            let own = url.host_str().map(|h| h.trim_end_matches('.')) == Some("sho.test");
            prop_assert!(!own, "{} from {} points at the service", stored, input);
        }
    }

    /// An address in a refused IPv4 block is refused however it is written: dotted or as a
    /// number, and inside every IPv6 form that carries an IPv4 address.
    #[test]
    fn refused_ipv4_blocks_are_refused_in_every_spelling_and_embedding(
        ip in refused_ipv4(),
        other in public_ipv4(),
        noise in any::<u128>(),
        scheme in prop_oneof![Just("http"), Just("https")],
        port in prop::option::of(1u16..),
        path in "[a-z0-9/]{0,8}",
    ) {
        for host in ipv4_spellings(ip) {
            assert_refused_unless_allowed(&target(scheme, &host, port, &path))?;
        }
        for v6 in embeddings_of(ip, other, noise) {
            for host in ipv6_spellings(v6) {
                assert_refused_unless_allowed(&target(scheme, &host, port, &path))?;
            }
        }
    }

    #[test]
    fn refused_ipv6_blocks_are_refused(
        ip in refused_ipv6(),
        port in prop::option::of(1u16..),
    ) {
        for host in ipv6_spellings(ip) {
            assert_refused_unless_allowed(&target("https", &host, port, ""))?;
        }
    }

    /// A public IPv4 address is accepted, also inside NAT64, 6to4, Teredo and the mapped
    /// forms; only the local-use NAT64 prefix is refused whatever it carries.
    #[test]
    fn public_ipv4_is_accepted_in_every_embedding_but_local_use_nat64(
        ip in public_ipv4(),
        other in public_ipv4(),
        noise in any::<u128>(),
    ) {
        for host in ipv4_spellings(ip) {
            let url = target("http", &host, None, "");
            prop_assert!(rule(&url, false).is_ok(), "{}", url);
        }
        let local_use = Block {
            net: Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, 0, 0),
            len: 48,
            source: "local-use NAT64",
        };
        for v6 in embeddings_of(ip, other, noise) {
            let url = target("http", &format!("[{v6}]"), None, "");
            if local_use.contains(v6) {
                prop_assert_eq!(rule(&url, false), Err(UrlRule::PrivateAddress), "{}", url);
            } else {
                let got = rule(&url, false);
                prop_assert!(got.is_ok(), "{}: {:?}", url, got);
            }
        }
    }

    /// The service's own host, however spelled, on its own port is a loop; on another port
    /// it is another origin.
    #[test]
    fn every_spelling_of_the_own_host_is_a_loop(
        host in own_host_spelling(),
        port in prop::option::of(1u16..),
        allow_private in any::<bool>(),
        path in "[a-z0-9/]{0,8}",
    ) {
        // Whatever the scheme or port: a proxy in front usually sends them all to us.
        for scheme in ["https", "HTTPS", "http", "Http"] {
            let url = target(scheme, &host, port, &path);
            prop_assert_eq!(rule(&url, allow_private), Err(UrlRule::PointsAtService), "{}", url);
        }
    }
}

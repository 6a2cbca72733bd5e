use std::fmt;

use url::{Host, Url};

use crate::DomainError;

mod special;

/// Which URL rule was broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlRule {
    /// Over 2048 bytes.
    TooLong,
    /// Contains a control character.
    ControlCharacter,
    /// Not a parseable absolute URL, or surrounded by whitespace.
    Malformed,
    /// Scheme other than http or https.
    Scheme,
    /// No host.
    MissingHost,
    /// Has `user:pass@`.
    UserInfo,
    /// An IP literal (or `localhost`) that is not globally reachable: loopback, private,
    /// link-local, multicast, reserved or another special-purpose address, also when an
    /// IPv6 form (IPv4-mapped, NAT64, 6to4, Teredo, ...) carries it.
    PrivateAddress,
    /// Points back at this service: a redirect loop.
    PointsAtService,
}

impl fmt::Display for UrlRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UrlRule::TooLong => "must be at most 2048 bytes",
            UrlRule::ControlCharacter => "must not contain control characters",
            UrlRule::Malformed => "must be an absolute URL without surrounding whitespace",
            UrlRule::Scheme => "must use http or https",
            UrlRule::MissingHost => "must have a host",
            UrlRule::UserInfo => "must not contain user-info (user:password@)",
            UrlRule::PrivateAddress => {
                "must not point at a loopback, private, link-local, multicast, reserved or other special-purpose address"
            }
            UrlRule::PointsAtService => "must not point at this service itself",
        })
    }
}

/// What targets are acceptable, from configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlPolicy {
    own_host: Option<Host>,
    allow_private: bool,
}

impl UrlPolicy {
    /// `public_url` is the service's own address: a target on the same host would redirect
    /// to itself, whatever its scheme or port (a proxy in front usually sends port 80 and
    /// 443 to the same service, and the service cannot know which other ports reach it).
    /// `allow_private` permits non-public IP literals (for deployments inside a private
    /// network).
    pub fn new(public_url: &Url, allow_private: bool) -> Self {
        UrlPolicy {
            own_host: public_url.host().map(loop_key),
            allow_private,
        }
    }
}

/// A host as the loop check compares it. It is taken from a parsed URL, so the url crate
/// has already decoded percent-escapes (`%2e`), mapped the other full stops (`。`, `．`,
/// `｡`) to `.` and lower-cased it; what is left is the trailing dot(s) of a fully
/// qualified name, which reach the same host. An IPv4-mapped IPv6 address is its IPv4
/// address.
fn loop_key(host: Host<&str>) -> Host {
    match host {
        Host::Domain(d) => Host::Domain(d.trim_end_matches('.').to_ascii_lowercase()),
        Host::Ipv4(ip) => Host::Ipv4(ip),
        Host::Ipv6(ip) => ip.to_ipv4_mapped().map_or(Host::Ipv6(ip), Host::Ipv4),
    }
}

/// Where a link redirects to: exactly the string the redirect's `Location` carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetUrl(String);

fn non_public(host: &Host<&str>) -> bool {
    match host {
        Host::Ipv4(ip) => special::refused_v4(*ip),
        Host::Ipv6(ip) => special::refused_v6(*ip),
        // `localhost` and its subdomains always resolve to loopback (RFC 6761).
        Host::Domain(d) => {
            let d = d.trim_end_matches('.');
            d == "localhost" || d.ends_with(".localhost")
        }
    }
}

impl TargetUrl {
    /// The longest accepted target, in bytes (before and after normalisation).
    pub const MAX_LEN: usize = 2048;

    /// Validates and normalises a target. Host names are not resolved: that needs I/O and
    /// would still be racy (DNS can change after the check), so only IP literals and
    /// `localhost` are judged here.
    pub fn parse(input: &str, policy: &UrlPolicy) -> Result<Self, DomainError> {
        let fail = |rule| Err(DomainError::InvalidUrl(rule));
        if input.len() > Self::MAX_LEN {
            return fail(UrlRule::TooLong);
        }
        // The url crate silently strips tabs and newlines; refuse them instead, so the
        // stored target is what the caller meant.
        if input.chars().any(char::is_control) {
            return fail(UrlRule::ControlCharacter);
        }
        if input.trim() != input || input.is_empty() {
            return fail(UrlRule::Malformed);
        }
        let Ok(url) = Url::parse(input) else {
            return fail(UrlRule::Malformed);
        };
        if !matches!(url.scheme(), "http" | "https") {
            return fail(UrlRule::Scheme);
        }
        let Some(host) = url.host() else {
            return fail(UrlRule::MissingHost);
        };
        if host.to_string().is_empty() {
            return fail(UrlRule::MissingHost);
        }
        if !url.username().is_empty() || url.password().is_some() {
            return fail(UrlRule::UserInfo);
        }
        let same_host = policy
            .own_host
            .as_ref()
            .is_some_and(|own| *own == loop_key(host.clone()));
        if same_host {
            return fail(UrlRule::PointsAtService);
        }
        if !policy.allow_private && non_public(&host) {
            return fail(UrlRule::PrivateAddress);
        }
        let normalised = url.as_str();
        if normalised.len() > Self::MAX_LEN {
            return fail(UrlRule::TooLong);
        }
        Ok(TargetUrl(normalised.to_owned()))
    }

    /// A target read back from storage. It was validated when written; the policy may have
    /// changed since, and old links must keep working.
    pub fn from_storage(s: String) -> Self {
        TargetUrl(s)
    }

    /// The target.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TargetUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod proptests;

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(allow_private: bool) -> UrlPolicy {
        let own = Url::parse("https://sho.rt").unwrap_or_else(|e| panic!("{e}"));
        UrlPolicy::new(&own, allow_private)
    }

    fn check(input: &str) -> Result<String, UrlRule> {
        check_with(input, false)
    }

    fn check_with(input: &str, allow_private: bool) -> Result<String, UrlRule> {
        match TargetUrl::parse(input, &policy(allow_private)) {
            Ok(t) => Ok(t.0),
            Err(DomainError::InvalidUrl(r)) => Err(r),
            Err(other) => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn accepts_public_http_and_https_exactly_as_normalised() {
        assert_eq!(
            check("https://example.com/a?b=c"),
            Ok("https://example.com/a?b=c".into())
        );
        assert_eq!(
            check("http://Example.COM"),
            Ok("http://example.com/".into())
        );
        assert_eq!(
            check("http://93.184.216.34/x"),
            Ok("http://93.184.216.34/x".into())
        );
        assert_eq!(
            check("http://[2606:2800::1]/"),
            Ok("http://[2606:2800::1]/".into())
        );
        assert_eq!(
            check("https://sho.rt.example:8443/x"),
            Ok("https://sho.rt.example:8443/x".into())
        );
    }

    #[test]
    fn idn_hosts_are_stored_in_punycode() {
        assert_eq!(
            check("https://bücher.example/"),
            Ok("https://xn--bcher-kva.example/".into())
        );
    }

    #[test]
    fn length_is_bounded_before_and_after_normalisation() {
        let base = "https://example.com/";
        let ok = format!("{base}{}", "a".repeat(TargetUrl::MAX_LEN - base.len()));
        assert!(check(&ok).is_ok());
        let long = format!("{base}{}", "a".repeat(TargetUrl::MAX_LEN - base.len() + 1));
        assert_eq!(check(&long), Err(UrlRule::TooLong));
        // Percent-encoding grows a 2000-byte input past the limit.
        let grows = format!("{base}{}", "é".repeat(1000));
        assert!(grows.len() <= TargetUrl::MAX_LEN);
        assert_eq!(check(&grows), Err(UrlRule::TooLong));
    }

    #[test]
    fn control_characters_and_whitespace_are_refused_not_stripped() {
        assert_eq!(
            check("https://example.com/a\tb"),
            Err(UrlRule::ControlCharacter)
        );
        assert_eq!(
            check("https://example.com/\n"),
            Err(UrlRule::ControlCharacter)
        );
        assert_eq!(
            check("https://example.com/\u{7f}"),
            Err(UrlRule::ControlCharacter)
        );
        assert_eq!(
            check("https://example.com/\u{85}"),
            Err(UrlRule::ControlCharacter)
        );
        assert_eq!(check(" https://example.com/"), Err(UrlRule::Malformed));
        assert_eq!(check(""), Err(UrlRule::Malformed));
    }

    #[test]
    fn scheme_host_and_userinfo_rules() {
        assert_eq!(check("ftp://example.com/"), Err(UrlRule::Scheme));
        assert_eq!(check("javascript:alert(1)"), Err(UrlRule::Scheme));
        assert_eq!(check("data:text/html,hi"), Err(UrlRule::Scheme));
        assert_eq!(check("/relative"), Err(UrlRule::Malformed));
        assert_eq!(check("example.com"), Err(UrlRule::Malformed));
        // WHATWG parsing (what browsers do) reads extra slashes as part of the authority.
        assert_eq!(check("http:///host/path"), Ok("http://host/path".into()));
        assert_eq!(check("http://"), Err(UrlRule::Malformed));
        assert_eq!(
            check("https://user:pass@example.com/"),
            Err(UrlRule::UserInfo)
        );
        assert_eq!(check("https://user@example.com/"), Err(UrlRule::UserInfo));
    }

    #[test]
    fn non_public_ip_literals_are_refused_unless_allowed() {
        for bad in [
            "http://127.0.0.1/",
            "http://127.1.2.3:8080/",
            "http://10.0.0.1/",
            "http://172.16.5.4/",
            "http://192.168.1.1/",
            "http://169.254.169.254/latest/meta-data",
            "http://100.64.0.1/",
            "http://100.127.255.254/",
            "http://0.0.0.0/",
            "http://255.255.255.255/",
            "http://2130706433/",
            "http://0x7f.1/",
            "http://[::1]/",
            "http://[::]/",
            "http://[fe80::1]/",
            "http://[fd00::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:10.0.0.1]/",
            "http://[::127.0.0.1]/",
            "http://localhost/",
            "http://api.localhost:3000/",
        ] {
            assert_eq!(check(bad), Err(UrlRule::PrivateAddress), "{bad}");
            assert!(check_with(bad, true).is_ok(), "{bad} allowed by policy");
        }
        assert!(check("http://100.128.0.1/").is_ok(), "just outside CGNAT");
        assert!(
            check("http://172.32.0.1/").is_ok(),
            "just outside 172.16/12"
        );
    }

    #[test]
    fn special_purpose_addresses_are_refused_unless_allowed() {
        for bad in [
            // Found by a hostile test.
            "http://[64:ff9b::7f00:1]/",
            "http://[64:ff9b::a9fe:a9fe]/latest/meta-data",
            "http://[2002:7f00:1::]/",
            "http://[::ffff:0:7f00:1]/",
            "http://224.0.0.1/",
            "http://[ff02::1]/",
            "http://240.0.0.1/",
            "http://198.18.0.1/",
            "http://192.0.0.1/",
            "http://[100::1]/",
            // And their neighbours.
            "http://[64:ff9b::10.0.0.1]/",
            "http://[64:ff9b:1::808:808]/",
            "http://[2002:a9fe:a9fe:1::1]/",
            "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/", // Teredo, client 127.0.0.1
            "http://[2001:0:7f00:1:0:0:f7f7:f7f7]/",          // Teredo, server 127.0.0.1
            "http://[::ffff:0:a9fe:a9fe]/",
            "http://[::169.254.169.254]/",
            "http://239.255.255.250/",
            "http://[ff0e::1]/",
            "http://198.19.255.255/",
            "http://192.0.2.1/",
            "http://198.51.100.1/",
            "http://203.0.113.1/",
            "http://192.88.99.1/",
            "http://192.0.0.9/",
            "http://[2001:db8::1]/",
            "http://[3fff::1]/",
            "http://[2001:2::1]/",
            "http://[2001:10::1]/",
            "http://[2001:20::1]/",
            "http://[100::1:0:0:1]/",
            "http://[5f00::1]/",
            "http://[fec0::1]/",
        ] {
            assert_eq!(check(bad), Err(UrlRule::PrivateAddress), "{bad}");
            assert!(check_with(bad, true).is_ok(), "{bad} allowed by policy");
        }
    }

    #[test]
    fn public_addresses_are_accepted_also_inside_ipv6() {
        for good in [
            "http://8.8.8.8/",
            "http://[2606:4700::1111]/",
            "http://[64:ff9b::808:808]/",
            "http://[2002:808:808::]/",
            "http://[::ffff:8.8.8.8]/",
            "http://[2001:0:4136:e378:8000:63bf:f7f7:f7f7]/", // Teredo, client 8.8.8.8
            "http://192.31.196.1/",                           // AS112, globally reachable
            "http://223.255.255.255/",
            "http://198.20.0.1/",
            "http://[2003::1]/",
        ] {
            assert!(check(good).is_ok(), "{good}: {:?}", check(good));
        }
    }

    #[test]
    fn the_service_itself_is_refused_in_any_spelling_of_its_host() {
        let own = Url::parse("https://sho.test").unwrap_or_else(|e| panic!("{e}"));
        for allow_private in [false, true] {
            let policy = UrlPolicy::new(&own, allow_private);
            for spelling in [
                "https://sho.test/",
                "https://sho.test./",
                "https://sho.test%2e/",
                "https://sho.test%2E/",
                "https://sho.test\u{3002}/",
                "https://sho.test\u{ff0e}/",
                "https://sho.test\u{ff61}/",
                "https://SHO.Test%2E/x",
                "https://sho\u{3002}test\u{ff0e}/",
                "https://sho%2etest../",
                "https://%73ho.test:443/",
                "http://sho.test.:443/",
                // Another scheme or port of the same host is the same service behind
                // most proxies: a loop too.
                "http://sho.test./",
                "http://SHO.TEST/abc",
                "https://sho.test%2e:8443/",
                "http://sho.test:18767/",
            ] {
                assert_eq!(
                    TargetUrl::parse(spelling, &policy),
                    Err(DomainError::InvalidUrl(UrlRule::PointsAtService)),
                    "{spelling}"
                );
            }
            for other_origin in ["https://sho.tests/", "https://www.sho.test./"] {
                assert!(
                    TargetUrl::parse(other_origin, &policy).is_ok(),
                    "{other_origin}"
                );
            }
        }
        // The case: a public URL with a port, a target on the host's default port.
        let ported = UrlPolicy::new(
            &Url::parse("http://sho.test:18767").unwrap_or_else(|e| panic!("{e}")),
            false,
        );
        for target in [
            "http://sho.test/abc",
            "https://Sho.Test./abc",
            "http://sho.test:18767/x",
        ] {
            assert_eq!(
                TargetUrl::parse(target, &ported),
                Err(DomainError::InvalidUrl(UrlRule::PointsAtService)),
                "{target}"
            );
        }
        // The configured public URL may be spelled with a trailing dot, or be an IP address.
        let dotted = UrlPolicy::new(
            &Url::parse("https://Sho.Test./").unwrap_or_else(|e| panic!("{e}")),
            false,
        );
        assert_eq!(
            TargetUrl::parse("https://sho.test/", &dotted),
            Err(DomainError::InvalidUrl(UrlRule::PointsAtService))
        );
        let ip = UrlPolicy::new(
            &Url::parse("http://10.0.0.5:8080/").unwrap_or_else(|e| panic!("{e}")),
            true,
        );
        assert_eq!(
            TargetUrl::parse("http://[::ffff:10.0.0.5]:8080/", &ip),
            Err(DomainError::InvalidUrl(UrlRule::PointsAtService))
        );
    }

    #[test]
    fn the_service_itself_is_refused_even_when_private_is_allowed() {
        assert_eq!(check("https://sho.rt/abc"), Err(UrlRule::PointsAtService));
        assert_eq!(
            check("https://SHO.RT:443/abc"),
            Err(UrlRule::PointsAtService)
        );
        assert_eq!(
            check_with("https://sho.rt/abc", true),
            Err(UrlRule::PointsAtService)
        );
        assert_eq!(
            check("http://sho.rt/abc"),
            Err(UrlRule::PointsAtService),
            "another port of the same host is a loop behind most proxies"
        );
    }
}

//! [`Referrer::parse`] and [`RefHost::parse`]: a `Referer` header down to its host.

use std::net::IpAddr;

use url::{Host, Url};

use super::{RefHost, Referrer};

/// The longest DNS name, in bytes (RFC 1035, without the trailing dot).
const MAX_HOST: usize = 253;

impl RefHost {
    /// `raw` as a referring host, if it is one as [`Referrer::parse`] would keep it: 1 to
    /// 253 bytes of lowercase ASCII letters, digits, '-' and '.', or an IP address in its
    /// canonical text (an IPv6 address without brackets). For rebuilding one from storage.
    pub fn parse(raw: &str) -> Option<RefHost> {
        let ok = (1..=MAX_HOST).contains(&raw.len())
            && (raw
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
                || raw.parse::<IpAddr>().is_ok_and(|ip| ip.to_string() == raw));
        ok.then(|| RefHost(raw.to_owned()))
    }
}

impl Referrer {
    /// The host of a `Referer` header's value, or [`Referrer::Direct`] when there is none to
    /// count: no header, an empty or unparsable one, a relative reference, a scheme other
    /// than http and https (`android-app:`, `file:`, `data:`...), a host longer than 253
    /// bytes or with characters outside [`RefHost`]'s (an underscore, say), or the
    /// service's own host. A visitor who comes from one of our own pages (a link's password
    /// form) was not referred by anyone.
    ///
    /// Only the host is kept: no scheme, port, user info, path or query. A name is
    /// lowercase and, if internationalised, in its punycode form, both as the `url` crate
    /// gives it; a trailing dot is dropped. An IPv6 address is kept without brackets
    /// (`2001:db8::1`), in its canonical text: a `RefHost` never has a port, so brackets
    /// would only add a second spelling.
    ///
    /// `own_host` is the service's public host (`sho.rt`, `Sho.RT:8443` and `[::1]:80`
    /// work too: compared without port or brackets, ASCII case-insensitively); give an
    /// internationalised one in its punycode form.
    pub fn parse(header: Option<&str>, own_host: Option<&str>) -> Referrer {
        let Some(host) = header.and_then(referring_host) else {
            return Referrer::Direct;
        };
        if own_host
            .map(bare_host)
            .is_some_and(|own| own.eq_ignore_ascii_case(host.as_str()))
        {
            return Referrer::Direct;
        }
        Referrer::Host(host)
    }
}

/// The host of `value` if it is an absolute http(s) URL with a host [`RefHost`] accepts.
fn referring_host(value: &str) -> Option<RefHost> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    let url = Url::parse(value).ok()?;
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    match url.host()? {
        Host::Domain(name) => RefHost::parse(name.strip_suffix('.').unwrap_or(name)),
        Host::Ipv4(ip) => RefHost::parse(&ip.to_string()),
        Host::Ipv6(ip) => RefHost::parse(&ip.to_string()),
    }
}

/// `host` without a port, IPv6 brackets or a trailing dot: `Sho.rt:443` is `Sho.rt`,
/// `[::1]:80` is `::1`.
fn bare_host(host: &str) -> &str {
    let host = host.trim();
    let host = if let Some(rest) = host.strip_prefix('[') {
        rest.split_once(']').map_or(rest, |(inside, _)| inside)
    } else {
        match host.rsplit_once(':') {
            // One colon: a port. More: an IPv6 address without brackets.
            Some((name, _)) if !name.contains(':') => name,
            _ => host,
        }
    };
    host.strip_suffix('.').unwrap_or(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWN: Option<&str> = Some("sho.rt");

    /// `header` as the breakdown would show it, the service being `sho.rt`.
    fn shown(header: &str) -> String {
        Referrer::parse(Some(header), OWN).as_str().to_owned()
    }

    #[test]
    fn referrer_table() {
        let long_host = format!("https://{}.example/", "a".repeat(300));
        let longest = format!(
            "https://{}.{}.{}.{}/",
            "a".repeat(63),
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(61)
        );
        let cases: &[(&str, &str)] = &[
            (
                "https://news.ycombinator.com:443/item?id=1",
                "news.ycombinator.com",
            ),
            ("http://news.ycombinator.com:8080/", "news.ycombinator.com"),
            ("https://WWW.Google.COM/search?q=x", "www.google.com"),
            ("https://bücher.example/x", "xn--bcher-kva.example"),
            ("https://BÜCHER.example/x", "xn--bcher-kva.example"),
            ("https://xn--bcher-kva.example/", "xn--bcher-kva.example"),
            ("http://192.0.2.7:8000/path", "192.0.2.7"),
            ("http://0x7f.1/", "127.0.0.1"),
            ("https://[2001:DB8:0:0::1]:8443/x", "2001:db8::1"),
            ("http://[::ffff:192.0.2.1]/", "::ffff:192.0.2.1"),
            ("https://user:secret@example.com/private", "example.com"),
            ("https://example.com./", "example.com"),
            ("  https://example.com/  ", "example.com"),
            ("https://t.co/abc", "t.co"),
            // Not a referral we can name.
            ("", "(direct)"),
            ("   ", "(direct)"),
            ("garbage", "(direct)"),
            ("garbage \u{2603} \u{0}", "(direct)"),
            ("/foo", "(direct)"),
            ("//example.com/foo", "(direct)"),
            ("example.com", "(direct)"),
            ("android-app://com.google.android.gm/", "(direct)"),
            ("file:///etc/passwd", "(direct)"),
            ("data:text/html,hi", "(direct)"),
            ("ftp://example.com/", "(direct)"),
            ("javascript:alert(1)", "(direct)"),
            ("https://", "(direct)"),
            ("https://under_score.example/", "(direct)"),
            ("https://a!b.example/", "(direct)"),
            (&long_host, "(direct)"),
            // The service itself.
            ("https://sho.rt/abc/password", "(direct)"),
            ("https://sho.rt:8443/abc", "(direct)"),
            ("HTTPS://SHO.RT/", "(direct)"),
            ("https://sho.rt./", "(direct)"),
            ("https://www.sho.rt/", "www.sho.rt"),
        ];
        for &(header, want) in cases {
            assert_eq!(shown(header), want, "{header:?}");
        }
        assert_eq!(shown(&longest).len(), 253);
        assert_eq!(Referrer::parse(None, OWN), Referrer::Direct);
        assert_eq!(Referrer::parse(Some(""), None), Referrer::Direct);
    }

    #[test]
    fn own_host_without_port_brackets_or_case() {
        let from = |header: &str, own: &str| Referrer::parse(Some(header), Some(own));
        assert_eq!(from("https://sho.rt/x", "SHO.RT"), Referrer::Direct);
        assert_eq!(from("https://SHO.rt:9/x", "sho.rt:8443"), Referrer::Direct);
        assert_eq!(from("https://sho.rt/x", "sho.rt."), Referrer::Direct);
        assert_eq!(from("http://[::1]:8080/", "[::1]:8080"), Referrer::Direct);
        assert_eq!(from("http://[::1]/", "::1"), Referrer::Direct);
        assert_eq!(
            from("http://127.0.0.1:8080/", "127.0.0.1:8080"),
            Referrer::Direct
        );
        assert_eq!(
            from("https://bücher.example/", "xn--bcher-kva.example"),
            Referrer::Direct
        );
        assert_eq!(from("https://other.rt/", "sho.rt").as_str(), "other.rt");
        assert_eq!(from("https://sho.rt/", "").as_str(), "sho.rt");
    }

    #[test]
    fn ref_host_parse() {
        for ok in [
            "example.com",
            "xn--bcher-kva.example",
            "a",
            "192.0.2.7",
            "2001:db8::1",
            "::1",
        ] {
            assert_eq!(
                RefHost::parse(ok).map(|h| h.as_str().to_owned()),
                Some(ok.to_owned())
            );
        }
        let max = "a".repeat(253);
        assert!(RefHost::parse(&max).is_some());
        for bad in [
            "",
            "Example.com",
            "example.com:443",
            "[::1]",
            "2001:DB8::1",
            "2001:db8:0::1",
            "bücher.example",
            "under_score",
            "a b",
            "example.com/",
            &"a".repeat(254),
        ] {
            assert!(RefHost::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn bare_host_strips_port_and_brackets() {
        for (raw, bare) in [
            ("sho.rt", "sho.rt"),
            ("sho.rt:8443", "sho.rt"),
            ("[::1]:80", "::1"),
            ("[::1]", "::1"),
            ("::1", "::1"),
            ("sho.rt.", "sho.rt"),
            ("[", ""),
            ("", ""),
        ] {
            assert_eq!(bare_host(raw), bare, "{raw:?}");
        }
    }
}

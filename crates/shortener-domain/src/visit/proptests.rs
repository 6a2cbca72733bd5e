//! Property tests: classifying a user agent and parsing a referrer never panic, whatever
//! the client sends, and every referring host kept is one [`RefHost::parse`] accepts, so
//! whatever is stored can be read back.

use proptest::prelude::*;

use super::{Agent, RefHost, Referrer};

/// Strings shaped like referrers: mostly http(s), maybe user info, a host (a name, an IPv4
/// or IPv6 literal, or odd characters: other scripts, escapes, brackets, underscores),
/// maybe a port, and a tail.
fn referrer_like() -> impl Strategy<Value = String> {
    let scheme = prop_oneof![
        4 => "https?|HTTPS?",
        1 => "ftp|file|android-app|data|javascript|[a-z]{1,4}",
    ];
    let userinfo = prop::option::weighted(0.1, "[a-z:]{0,6}@");
    let host = prop_oneof![
        4 => "[a-zA-Z0-9-]{1,12}(\\.[a-zA-Z0-9-]{1,12}){0,3}\\.?",
        1 => "[0-9]{1,4}(\\.[0-9]{1,4}){0,4}",
        1 => "\\[[0-9a-fA-F:.]{0,24}\\]",
        2 => "[a-zA-Z0-9._~!$&'()*+,;=%\\[\\]:\u{e9}\u{df}\u{3b1}\u{4e2d}\u{3000}-]{0,40}",
    ];
    let port = prop::option::weighted(0.3, ":[0-9]{0,6}");
    let rest = prop_oneof![
        4 => "([/?#][a-zA-Z0-9/._~!$&'()*+,;=:@%? #\u{e9}-]{0,16})?",
        1 => "[a-zA-Z0-9/._~!$&'()*+,;=:@%? #\u{e9}-]{0,16}",
    ];
    (scheme, userinfo, host, port, rest).prop_map(|(s, u, h, p, r)| {
        format!(
            "{s}://{}{h}{}{r}",
            u.unwrap_or_default(),
            p.unwrap_or_default()
        )
    })
}

fn check_referrer(header: &str, own: Option<&str>) -> Result<(), TestCaseError> {
    if let Referrer::Host(host) = Referrer::parse(Some(header), own) {
        prop_assert!(
            RefHost::parse(host.as_str()).is_some(),
            "{header:?} kept {host:?}, which RefHost::parse refuses"
        );
        if let Some(own) = own {
            prop_assert!(!host.as_str().eq_ignore_ascii_case(own), "{header:?}");
        }
    }
    Ok(())
}

proptest! {
    #[test]
    fn classify_never_panics(ua in any::<String>()) {
        let agent = Agent::classify(&ua);
        prop_assert_eq!(agent.is_bot(), agent.device == super::Device::Bot);
    }

    #[test]
    fn classify_never_panics_on_agent_like_strings(
        ua in "(Mozilla/5.0 )?(\\([A-Za-z0-9 ;._/-]{0,40}\\) ?)?[A-Za-z]{0,12}(/[0-9.]{0,8})? ?[\u{0}-\u{7f}\u{e9}\u{2603}]{0,20}"
    ) {
        Agent::classify(&ua);
    }

    #[test]
    fn referrer_from_any_string(header in any::<String>()) {
        check_referrer(&header, None)?;
    }

    #[test]
    fn referrer_from_url_like_strings(header in referrer_like(), own in prop::option::of("[a-z]{1,3}\\.[a-z]{1,2}")) {
        check_referrer(&header, own.as_deref())?;
    }

    #[test]
    fn own_host_in_any_case_or_port_is_direct(
        // Names, not numbers: the `url` crate reads "127.1" as 127.0.0.1.
        own in "[a-z][a-z0-9-]{0,9}(\\.[a-z][a-z0-9]{0,9}){1,2}",
        upper in prop::collection::vec(any::<bool>(), 32),
        port in prop::option::of(1u16..),
        path in "(/[a-z0-9?=]{0,8}){0,3}",
    ) {
        prop_assume!(own != "sho.rt");
        let spelled: String = own
            .chars()
            .zip(upper.iter().cycle())
            .map(|(c, &up)| if up { c.to_ascii_uppercase() } else { c })
            .collect();
        let port = port.map(|p| format!(":{p}")).unwrap_or_default();
        let header = format!("https://{spelled}{port}{path}");
        prop_assert_eq!(Referrer::parse(Some(&header), Some(&own)), Referrer::Direct);
        prop_assert_eq!(Referrer::parse(Some(&format!("https://{own}/")), Some(&spelled)), Referrer::Direct);
        // Anyone else is a referrer, by name.
        let other = Referrer::parse(Some(&header), Some("sho.rt"));
        prop_assert_eq!(other.as_str(), own.as_str());
    }
}

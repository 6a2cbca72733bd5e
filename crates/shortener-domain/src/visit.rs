//! What a visit is counted as (visit analytics): the referring host, the country, and the
//! browser, operating system and device class the user agent names, each a small closed
//! set or a validated value, so that nothing else about the visitor can be kept. No IP
//! address, no full user-agent string and no referrer path survives classification.
//!
//! Classifying: [`Agent::classify`] (`visit/agent.rs`) and [`Referrer::parse`]
//! (`visit/referrer.rs`).

use std::fmt;

mod agent;
#[cfg(test)]
mod proptests;
mod referrer;

/// A dimension of the visit breakdowns, in the order the stats list them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dimension {
    /// The referring host, or `(direct)`.
    Referrer,
    /// The visitor's country (ISO 3166-1 alpha-2), or `(unknown)`.
    Country,
    /// The browser family.
    Browser,
    /// The operating system family.
    Os,
    /// The device class.
    Device,
}

impl Dimension {
    /// Every dimension, in order.
    pub const ALL: [Dimension; 5] = [
        Dimension::Referrer,
        Dimension::Country,
        Dimension::Browser,
        Dimension::Os,
        Dimension::Device,
    ];

    /// Its stored code (a `smallint`): stable, never reused.
    pub fn code(self) -> i16 {
        match self {
            Dimension::Referrer => 1,
            Dimension::Country => 2,
            Dimension::Browser => 3,
            Dimension::Os => 4,
            Dimension::Device => 5,
        }
    }

    /// The dimension stored as `code`.
    pub fn from_code(code: i16) -> Option<Dimension> {
        Dimension::ALL.into_iter().find(|d| d.code() == code)
    }

    /// Its name in the stats document.
    pub fn plural(self) -> &'static str {
        match self {
            Dimension::Referrer => "referrers",
            Dimension::Country => "countries",
            Dimension::Browser => "browsers",
            Dimension::Os => "operating_systems",
            Dimension::Device => "devices",
        }
    }
}

/// An ISO 3166-1 alpha-2 country code: two ASCII capital letters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CountryCode([u8; 2]);

impl CountryCode {
    /// `raw` as a country code, if it is two ASCII letters (upper-cased).
    pub fn parse(raw: &str) -> Option<CountryCode> {
        match raw.as_bytes() {
            [a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => Some(CountryCode([
                a.to_ascii_uppercase(),
                b.to_ascii_uppercase(),
            ])),
            _ => None,
        }
    }

    /// The two letters.
    pub fn as_str(&self) -> &str {
        // Two ASCII letters by construction.
        std::str::from_utf8(&self.0).unwrap_or("??")
    }

    /// Its stored code, 1 to 676: 1 + 26 × the first letter's place in the alphabet +
    /// the second's (`AA` is 1, `ZZ` 676).
    pub fn code(self) -> u16 {
        let [a, b] = self.0.map(|l| u16::from(l - b'A'));
        1 + a * 26 + b
    }
}

impl fmt::Debug for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A visitor's country, when the operator configured a GeoIP database and it knew the
/// address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Country {
    /// Known.
    Known(CountryCode),
    /// No database, or the address is not in it.
    #[default]
    Unknown,
}

impl Country {
    /// Its stored code (the visit journal's, migration 000025): 0 when unknown, else
    /// [`CountryCode::code`]. Fits ten bits.
    pub fn code(self) -> u16 {
        match self {
            Country::Known(code) => code.code(),
            Country::Unknown => 0,
        }
    }

    /// Its value in the breakdown.
    pub fn as_str(&self) -> &str {
        match self {
            Country::Known(code) => code.as_str(),
            Country::Unknown => "(unknown)",
        }
    }
}

/// The device class a user agent names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Device {
    /// A desktop or laptop browser.
    Desktop,
    /// A phone.
    Mobile,
    /// A tablet.
    Tablet,
    /// A crawler, bot or other automated client that says so.
    Bot,
    /// Anything else, an empty or unreadable user agent included.
    #[default]
    Other,
}

impl Device {
    /// Every device class.
    pub const ALL: [Device; 5] = [
        Device::Other,
        Device::Desktop,
        Device::Mobile,
        Device::Tablet,
        Device::Bot,
    ];

    /// Its stored code (the visit journal's, migration 000025): stable, never reused; a
    /// new class takes the next free one, and a migration teaches the journal's decoding
    /// its label.
    pub fn code(self) -> u8 {
        match self {
            Device::Other => 0,
            Device::Desktop => 1,
            Device::Mobile => 2,
            Device::Tablet => 3,
            Device::Bot => 4,
        }
    }

    /// Its value in the breakdown.
    pub fn as_str(self) -> &'static str {
        match self {
            Device::Desktop => "desktop",
            Device::Mobile => "mobile",
            Device::Tablet => "tablet",
            Device::Bot => "bot",
            Device::Other => "other",
        }
    }
}

/// The browser family a user agent names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Browser {
    /// Google Chrome and Chromium.
    Chrome,
    /// Mozilla Firefox.
    Firefox,
    /// Apple Safari.
    Safari,
    /// Microsoft Edge.
    Edge,
    /// Opera.
    Opera,
    /// Samsung Internet.
    SamsungInternet,
    /// Yandex Browser.
    YandexBrowser,
    /// Internet Explorer.
    InternetExplorer,
    /// Anything else (bots, libraries, unknown browsers, nothing).
    #[default]
    Other,
}

impl Browser {
    /// Every browser family.
    pub const ALL: [Browser; 9] = [
        Browser::Other,
        Browser::Chrome,
        Browser::Firefox,
        Browser::Safari,
        Browser::Edge,
        Browser::Opera,
        Browser::SamsungInternet,
        Browser::YandexBrowser,
        Browser::InternetExplorer,
    ];

    /// Its stored code, as [`Device::code`].
    pub fn code(self) -> u8 {
        match self {
            Browser::Other => 0,
            Browser::Chrome => 1,
            Browser::Firefox => 2,
            Browser::Safari => 3,
            Browser::Edge => 4,
            Browser::Opera => 5,
            Browser::SamsungInternet => 6,
            Browser::YandexBrowser => 7,
            Browser::InternetExplorer => 8,
        }
    }

    /// Its value in the breakdown.
    pub fn as_str(self) -> &'static str {
        match self {
            Browser::Chrome => "Chrome",
            Browser::Firefox => "Firefox",
            Browser::Safari => "Safari",
            Browser::Edge => "Edge",
            Browser::Opera => "Opera",
            Browser::SamsungInternet => "Samsung Internet",
            Browser::YandexBrowser => "Yandex Browser",
            Browser::InternetExplorer => "Internet Explorer",
            Browser::Other => "Other",
        }
    }
}

/// The operating system family a user agent names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Os {
    /// Microsoft Windows.
    Windows,
    /// Apple macOS.
    MacOs,
    /// Apple iOS and iPadOS.
    Ios,
    /// Android.
    Android,
    /// Linux desktops.
    Linux,
    /// ChromeOS.
    ChromeOs,
    /// Anything else, or nothing.
    #[default]
    Other,
}

impl Os {
    /// Every operating system family.
    pub const ALL: [Os; 7] = [
        Os::Other,
        Os::Windows,
        Os::MacOs,
        Os::Ios,
        Os::Android,
        Os::Linux,
        Os::ChromeOs,
    ];

    /// Its stored code, as [`Device::code`].
    pub fn code(self) -> u8 {
        match self {
            Os::Other => 0,
            Os::Windows => 1,
            Os::MacOs => 2,
            Os::Ios => 3,
            Os::Android => 4,
            Os::Linux => 5,
            Os::ChromeOs => 6,
        }
    }

    /// Its value in the breakdown.
    pub fn as_str(self) -> &'static str {
        match self {
            Os::Windows => "Windows",
            Os::MacOs => "macOS",
            Os::Ios => "iOS",
            Os::Android => "Android",
            Os::Linux => "Linux",
            Os::ChromeOs => "ChromeOS",
            Os::Other => "Other",
        }
    }
}

/// What a user agent says about the client: all that is kept of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Agent {
    /// The browser family.
    pub browser: Browser,
    /// The operating system family.
    pub os: Os,
    /// [`Device::Bot`] exactly when the client identifies as a bot or crawler.
    pub device: Device,
}

impl Agent {
    /// Whether the client identifies as a bot or crawler.
    pub fn is_bot(&self) -> bool {
        self.device == Device::Bot
    }
}

/// A referring host: lowercase ASCII (an internationalised name in its punycode form), a
/// valid DNS name or IP address (IPv6 without brackets), no port, no path. At most 253
/// bytes. Made by [`Referrer::parse`], or by [`RefHost::parse`] from storage.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RefHost(String);

impl RefHost {
    /// The host.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for RefHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a visit came from, as far as is kept.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum Referrer {
    /// No referrer, an unreadable one, or the service's own host.
    #[default]
    Direct,
    /// Another host.
    Host(RefHost),
}

impl Referrer {
    /// Its value in the breakdown.
    pub fn as_str(&self) -> &str {
        match self {
            Referrer::Direct => "(direct)",
            Referrer::Host(host) => host.as_str(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn stored_codes_are_distinct_and_fit_their_bits() {
        let distinct = |codes: Vec<u8>, bits: u32| {
            let n = codes.len();
            assert!(codes.iter().all(|c| u32::from(*c) < 1 << bits), "{codes:?}");
            assert_eq!(codes.into_iter().collect::<HashSet<_>>().len(), n);
        };
        distinct(Browser::ALL.map(Browser::code).to_vec(), 5);
        distinct(Os::ALL.map(Os::code).to_vec(), 5);
        distinct(Device::ALL.map(Device::code).to_vec(), 4);
        assert_eq!(Browser::Other.code(), 0, "the default is 0");
        assert_eq!(Os::Other.code(), 0);
        assert_eq!(Device::Other.code(), 0);
    }

    #[test]
    fn a_country_code_is_its_letters_place_and_unknown_is_zero() {
        let code = |s: &str| Country::Known(CountryCode::parse(s).expect("a code")).code();
        assert_eq!(Country::Unknown.code(), 0);
        assert_eq!(code("AA"), 1);
        assert_eq!(code("AB"), 2);
        assert_eq!(code("BA"), 27);
        assert_eq!(code("de"), code("DE"));
        assert_eq!(code("DE"), 1 + 3 * 26 + 4);
        assert_eq!(code("ZZ"), 676);
        let mut seen = HashSet::new();
        for a in b'A'..=b'Z' {
            for b in b'A'..=b'Z' {
                let c = code(std::str::from_utf8(&[a, b]).expect("ASCII"));
                assert!((1..1024).contains(&c));
                assert!(seen.insert(c), "{c} twice");
            }
        }
    }
}

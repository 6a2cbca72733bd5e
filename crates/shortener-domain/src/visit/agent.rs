//! [`Agent::classify`]: a User-Agent header to browser, OS and device families.
//!
//! Browser and OS tokens are matched case-sensitively: every real browser spells them one
//! way ("Chrome/", "Windows NT"), and an exact `str::contains` costs no allocation. Bot
//! detection is case-insensitive, because crawlers spell themselves every which way.

use std::sync::LazyLock;

use super::{Agent, Browser, Device, Os};

/// Crawlers the isbot list may miss, as isbot patterns (lowercase regular expressions
/// matched against the lowercased user agent): generic self-descriptions, and the link
/// previewers of chat and social apps, which fetch a link when it is posted, not when a
/// person follows it. Most of them the list catches already; naming them keeps them caught
/// if it changes.
const EXTRA_BOTS: &[&str] = &[
    "crawl",
    "spider",
    "slurp",
    "link ?preview",
    "url ?preview",
    "linkexpand",
    "facebookexternalhit",
    "facebookcatalog",
    "meta-externalagent",
    "twitterbot",
    "slackbot",
    "discordbot",
    "telegrambot",
    "linkedinbot",
    "pinterestbot",
    "redditbot",
    "applebot",
    "^whatsapp/",
    "iframely",
];

/// Known crawlers: isbot's maintained list plus [`EXTRA_BOTS`], compiled into one regex the
/// first time a user agent is classified.
static BOTS: LazyLock<isbot::Bots> = LazyLock::new(|| {
    let mut bots = isbot::Bots::default();
    bots.append(EXTRA_BOTS);
    bots
});

impl Agent {
    /// What `user_agent` says about the client. Never fails: an empty, unreadable or
    /// unknown user agent is [`Browser::Other`], [`Os::Other`], [`Device::Other`].
    ///
    /// **Bots.** Crawlers and link previewers (search engines, Slackbot, Twitterbot,
    /// WhatsApp, Discordbot...) are [`Device::Bot`], by the isbot crate's pattern list and
    /// a few tokens of our own (generic ones like "crawl", the previewers by name, and any
    /// word ending in "bot"). HTTP libraries and command-line clients are not bots by our
    /// rule, only by the list's: it names curl, wget, python-requests, Go-http-client,
    /// okhttp, Java/, libwww-perl, axios and node-fetch, so those are bots; one it does not
    /// name (say, reqwest) is [`Device::Other`]. A bot's browser is [`Browser::Other`]
    /// unless it is plainly a browser run by a program (HeadlessChrome: Chrome); its OS is
    /// whatever it names.
    ///
    /// **Browsers**, first match wins, since each embeds the tokens of those after it:
    /// Edge, Opera, Samsung Internet, Yandex, Chrome (CriOS on iOS), Firefox (FxiOS on
    /// iOS), Safari (on Apple systems only, with "Version/"), Internet Explorer.
    ///
    /// **Devices**: a tablet (iPad, Android without "Mobile", "Tablet", Kindle/Silk) or a
    /// phone ("Mobi", iPhone, iPod, Windows Phone, Opera Mini, J2ME's MIDP) when the client
    /// is a browser or a web view ("Mozilla/"), so an Android app's own HTTP client
    /// (Dalvik) is no tablet; a desktop for a known browser on Windows, macOS, Linux or
    /// ChromeOS; else other. An iPad asking for desktop sites (iPadOS's default) says
    /// "Macintosh" and is counted as a Mac.
    ///
    /// Costs one regex match (isbot lowercases a copy of the string: the only allocation)
    /// and a few substring searches; callers cache the result per distinct string.
    pub fn classify(user_agent: &str) -> Agent {
        let ua = user_agent.trim();
        if ua.is_empty() {
            return Agent::default();
        }
        let os = os(ua);
        if is_bot(ua) {
            let browser = if ua.contains("HeadlessChrome/") {
                Browser::Chrome
            } else {
                Browser::Other
            };
            return Agent {
                browser,
                os,
                device: Device::Bot,
            };
        }
        let browser = browser(ua, os);
        Agent {
            browser,
            os,
            device: device(ua, os, browser),
        }
    }
}

/// Whether `ua` (trimmed, not empty) names itself a crawler.
fn is_bot(ua: &str) -> bool {
    ends_a_word_in_bot(ua) || BOTS.is_bot(ua)
}

/// Whether a word in `ua` ends in "bot" ("Googlebot 2.1", "SomeBot,"): the convention
/// crawlers follow, whatever comes after the name. Phones named "Cubot" or "IDbot553" and
/// words that go on ("Botswana", "bottom") do not count.
fn ends_a_word_in_bot(ua: &str) -> bool {
    let bytes = ua.as_bytes();
    bytes.windows(3).enumerate().any(|(i, w)| {
        w.eq_ignore_ascii_case(b"bot")
            && !bytes.get(i + 3).is_some_and(u8::is_ascii_alphanumeric)
            && !(i >= 2 && bytes[i - 2..i].eq_ignore_ascii_case(b"cu"))
    })
}

/// The OS family `ua` names. Windows Phone says "Android" too, and iOS says "like Mac OS
/// X", and Android and ChromeOS say "Linux", so the order matters.
fn os(ua: &str) -> Os {
    if ua.contains("Windows NT") || ua.contains("Windows Phone") {
        Os::Windows
    } else if ua.contains("iPhone") || ua.contains("iPad") || ua.contains("iPod") {
        Os::Ios
    } else if ua.contains("Mac OS X") || ua.contains("Macintosh") {
        // iPadOS 13+ Safari asks for desktop sites by default and then says "Macintosh",
        // exactly like a Mac: such an iPad is counted as a Mac, Safari, desktop. Nothing
        // in the string tells them apart.
        Os::MacOs
    } else if ua.contains("Android") {
        Os::Android
    } else if ua.contains("CrOS") {
        Os::ChromeOs
    } else if ua.contains("Linux") || ua.contains("X11") {
        Os::Linux
    } else {
        Os::Other
    }
}

/// The browser family `ua` (not a bot) names, given its OS.
fn browser(ua: &str, os: Os) -> Browser {
    let has = |tokens: &[&str]| tokens.iter().any(|t| ua.contains(t));
    if has(&["Edg/", "EdgA/", "EdgiOS/", "Edge/"]) {
        Browser::Edge
    } else if has(&["OPR/", "OPiOS/", "Opera"]) {
        Browser::Opera
    } else if has(&["SamsungBrowser/"]) {
        Browser::SamsungInternet
    } else if has(&["YaBrowser/"]) {
        Browser::YandexBrowser
    } else if has(&["Chrome/", "CriOS/", "Chromium/"]) {
        Browser::Chrome
    } else if has(&["Firefox/", "FxiOS/"]) {
        Browser::Firefox
    } else if matches!(os, Os::Ios | Os::MacOs) && has(&["Safari/"]) && has(&["Version/"]) {
        // Without "Version/" it is an app's web view; elsewhere, an old Android browser.
        Browser::Safari
    } else if has(&["MSIE ", "Trident/"]) {
        Browser::InternetExplorer
    } else {
        Browser::Other
    }
}

/// Tokens of a phone, once the tablets are out ("Mobi" is also in iPad user agents).
const PHONE: &[&str] = &[
    "Mobi",
    "iPhone",
    "iPod",
    "Windows Phone",
    "Opera Mini",
    "MIDP",
];

/// The device class of a client that is not a bot.
fn device(ua: &str, os: Os, browser: Browser) -> Device {
    let web = browser != Browser::Other || ua.starts_with("Mozilla/");
    let has = |token: &str| ua.contains(token);
    let tablet = has("iPad")
        || (os == Os::Android && !has("Mobile"))
        || has_tablet_token(ua)
        || has("Kindle")
        || has("Silk/");
    if web && tablet {
        Device::Tablet
    } else if web && PHONE.iter().any(|t| has(t)) {
        Device::Mobile
    } else if browser != Browser::Other
        && matches!(os, Os::Windows | Os::MacOs | Os::Linux | Os::ChromeOs)
    {
        Device::Desktop
    } else {
        Device::Other
    }
}

/// Whether `ua` says "Tablet" (Firefox on Android tablets: "Android 14; Tablet;"), but not
/// as old Windows' "Tablet PC 2.0", which desktops sent too.
fn has_tablet_token(ua: &str) -> bool {
    ua.match_indices("Tablet")
        .any(|(i, _)| !ua[i + "Tablet".len()..].starts_with(" PC"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use Browser as B;
    use Device as D;
    use Os as O;

    /// Real user agents, as their clients send them, and what each is counted as.
    #[rustfmt::skip]
    const AGENTS: &[(&str, Browser, Os, Device)] = &[
        // Desktop browsers.
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", B::Chrome, O::Windows, D::Desktop),
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0", B::Firefox, O::Windows, D::Desktop),
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0", B::Edge, O::Windows, D::Desktop),
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/70.0.3538.102 Safari/537.36 Edge/18.19041", B::Edge, O::Windows, D::Desktop),
        ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", B::Chrome, O::MacOs, D::Desktop),
        ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14.7; rv:133.0) Gecko/20100101 Firefox/133.0", B::Firefox, O::MacOs, D::Desktop),
        ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0", B::Edge, O::MacOs, D::Desktop),
        ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15", B::Safari, O::MacOs, D::Desktop),
        ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", B::Chrome, O::Linux, D::Desktop),
        ("Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0", B::Firefox, O::Linux, D::Desktop),
        ("Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", B::Chrome, O::ChromeOs, D::Desktop),
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 OPR/115.0.0.0", B::Opera, O::Windows, D::Desktop),
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 YaBrowser/24.12.0.0 Safari/537.36", B::YandexBrowser, O::Windows, D::Desktop),
        ("Mozilla/5.0 (Windows NT 10.0; WOW64; Trident/7.0; rv:11.0) like Gecko", B::InternetExplorer, O::Windows, D::Desktop),
        ("Mozilla/4.0 (compatible; MSIE 8.0; Windows NT 6.1; Trident/4.0; SLCC2; .NET CLR 2.0.50727; Media Center PC 6.0; Tablet PC 2.0)", B::InternetExplorer, O::Windows, D::Desktop),
        ("Opera/9.80 (Windows NT 6.1; WOW64) Presto/2.12.388 Version/12.18", B::Opera, O::Windows, D::Desktop),
        ("Opera/9.80 (J2ME/MIDP; Opera Mini/8.0.35626/65.257; U; en) Presto/2.12.423 Version/12.16", B::Opera, O::Other, D::Mobile),
        // Phones and tablets.
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1", B::Safari, O::Ios, D::Mobile),
        ("Mozilla/5.0 (iPad; CPU OS 17_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.7 Mobile/15E148 Safari/604.1", B::Safari, O::Ios, D::Tablet),
        // iPadOS in its default desktop mode: indistinguishable from a Mac.
        ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.7 Safari/605.1.15", B::Safari, O::MacOs, D::Desktop),
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1", B::Chrome, O::Ios, D::Mobile),
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) FxiOS/133.0 Mobile/15E148 Safari/605.1.15", B::Firefox, O::Ios, D::Mobile),
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 EdgiOS/131.2903.68 Mobile/15E148 Safari/605.1.15", B::Edge, O::Ios, D::Mobile),
        // An app's web view (Instagram): a phone, no browser.
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Instagram 355.0.0.37.103 (iPhone14,5; iOS 17_6; en_US; en; scale=3.00; 1170x2532; 658123456)", B::Other, O::Ios, D::Mobile),
        ("Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.81 Mobile Safari/537.36", B::Chrome, O::Android, D::Mobile),
        ("Mozilla/5.0 (Linux; Android 13; SM-X200) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", B::Chrome, O::Android, D::Tablet),
        ("Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36", B::SamsungInternet, O::Android, D::Mobile),
        ("Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36 EdgA/131.0.0.0", B::Edge, O::Android, D::Mobile),
        ("Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Mobile Safari/537.36 OPR/86.0.0.0", B::Opera, O::Android, D::Mobile),
        ("Mozilla/5.0 (Android 14; Mobile; rv:133.0) Gecko/133.0 Firefox/133.0", B::Firefox, O::Android, D::Mobile),
        ("Mozilla/5.0 (Android 14; Tablet; rv:133.0) Gecko/133.0 Firefox/133.0", B::Firefox, O::Android, D::Tablet),
        ("Mozilla/5.0 (Linux; Android 9; KFTRWI) AppleWebKit/537.36 (KHTML, like Gecko) Silk/130.3.1 like Chrome/130.0.6723.102 Safari/537.36", B::Chrome, O::Android, D::Tablet),
        ("Mozilla/5.0 (Windows Phone 10.0; Android 6.0.1; Microsoft; Lumia 950) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/52.0.2743.116 Mobile Safari/537.36 Edge/15.15063", B::Edge, O::Windows, D::Mobile),
        // A phone named Cubot is no bot.
        ("Mozilla/5.0 (Linux; Android 11; CUBOT X50) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36", B::Chrome, O::Android, D::Mobile),
        // Crawlers and link previewers.
        ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", B::Other, O::Other, D::Bot),
        ("Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; Googlebot/2.1; +http://www.google.com/bot.html) Chrome/131.0.6778.69 Safari/537.36", B::Other, O::Other, D::Bot),
        ("Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.69 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", B::Other, O::Android, D::Bot),
        ("Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm) Chrome/116.0.1938.76 Safari/537.36", B::Other, O::Other, D::Bot),
        ("DuckDuckBot/1.1; (+http://duckduckgo.com/duckduckbot.html)", B::Other, O::Other, D::Bot),
        ("Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)", B::Other, O::Other, D::Bot),
        ("Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)", B::Other, O::Other, D::Bot),
        ("Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)", B::Other, O::Other, D::Bot),
        ("facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)", B::Other, O::Other, D::Bot),
        ("Twitterbot/1.0", B::Other, O::Other, D::Bot),
        ("Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)", B::Other, O::Other, D::Bot),
        ("Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)", B::Other, O::Other, D::Bot),
        ("WhatsApp/2.23.20.0 A", B::Other, O::Other, D::Bot),
        ("TelegramBot (like TwitterBot)", B::Other, O::Other, D::Bot),
        ("LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)", B::Other, O::Other, D::Bot),
        ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/13.1.1 Safari/605.1.15 (Applebot/0.1; +http://www.apple.com/go/applebot)", B::Other, O::MacOs, D::Bot),
        ("Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko); compatible; ChatGPT-User/1.0; +https://openai.com/bot", B::Other, O::Other, D::Bot),
        ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36", B::Chrome, O::Linux, D::Bot),
        // HTTP libraries and command-line clients: bots where isbot's list names them.
        ("curl/8.5.0", B::Other, O::Other, D::Bot),
        ("python-requests/2.31.0", B::Other, O::Other, D::Bot),
        ("Wget/1.21.4", B::Other, O::Other, D::Bot),
        ("Go-http-client/2.0", B::Other, O::Other, D::Bot),
        ("reqwest/0.12.9", B::Other, O::Other, D::Other),
        ("Dalvik/2.1.0 (Linux; U; Android 13; SM-A536B Build/TP1A.220624.014)", B::Other, O::Android, D::Other),
        // Nothing, and nonsense.
        ("", B::Other, O::Other, D::Other),
        ("   ", B::Other, O::Other, D::Other),
        ("garbage \u{2603} \u{0}", B::Other, O::Other, D::Other),
        ("Mozilla/5.0", B::Other, O::Other, D::Other),
    ];

    #[test]
    fn real_user_agents() {
        let mut wrong = Vec::new();
        for &(ua, browser, os, device) in AGENTS {
            let want = Agent {
                browser,
                os,
                device,
            };
            let got = Agent::classify(ua);
            if got != want {
                wrong.push(format!("{ua:?}\n   got {got:?}\n  want {want:?}"));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
        assert!(AGENTS.len() >= 30);
    }

    #[test]
    fn is_bot_exactly_for_device_bot() {
        assert!(Agent::classify("Twitterbot/1.0").is_bot());
        assert!(!Agent::classify("").is_bot());
    }

    #[test]
    fn long_and_odd_strings_are_other() {
        let other = Agent::default();
        assert_eq!(Agent::classify(&"A".repeat(2000)), other);
        assert_eq!(Agent::classify(&"\u{2603}".repeat(1000)), other);
        assert_eq!(Agent::classify("\u{0}\u{0}\u{0}"), other);
        // A multi-byte character right before or after "bot" or "cu".
        assert!(Agent::classify("\u{e9}bot").is_bot());
        assert!(!Agent::classify("Mozilla/5.0 (Linux; cubot\u{e9})").is_bot());
    }

    #[test]
    fn words_ending_in_bot() {
        for ua in ["SomeBot 1.0", "x-bot", "MyBot,", "bot", "Foobot_2"] {
            assert!(ends_a_word_in_bot(ua), "{ua}");
        }
        for ua in [
            "Botswana",
            "bottom",
            "CUBOT P30",
            "cubot",
            "IDbot553",
            "bo",
            "",
        ] {
            assert!(!ends_a_word_in_bot(ua), "{ua}");
        }
    }
}

//! Visit analytics on the redirect path: what a counted click is recorded as ([`VisitKey`]:
//! referring host, country, browser, OS, device), worked out per HTTP worker by a
//! [`Classifier`], and the per-dimension counts it becomes ([`VisitCount`]) on its way to
//! the store with the click itself, in the same batch and the same write, so the
//! breakdowns always add up to the clicks.
//!
//! The redirect pays for classification only once per distinct user agent and referrer:
//! each worker keeps the answers in bounded caches keyed by a 64-bit hash of the header
//! (the header itself is not kept, not even in memory). The country comes from the
//! operator's GeoIP database, when there is one ([`crate::Countries`]), and is not cached:
//! an address is looked up and forgotten (without a database, not even worked out). Nothing here keeps an IP address, a user-agent
//! string or a referrer path.

use std::cell::RefCell;
use std::hash::BuildHasher;
use std::sync::Arc;

use chrono::NaiveDate;
use shortener_domain::LinkId;
use shortener_domain::visit::{Agent, Browser, Country, Device, Dimension, Os, RefHost, Referrer};

use crate::{Countries, Visitor};

/// Distinct user agents (and, apart, referrers) each worker keeps classified. User agents
/// repeat (a few hundred make up most traffic), so this holds the working set in a few
/// hundred kilobytes per worker; a flood of made-up ones only evicts.
pub const CLASSIFIED: usize = Recent::<()>::SETS * Recent::<()>::WAYS;

/// What one click is recorded as: everything kept of the visitor.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct VisitKey {
    /// The referring host; `None` for `(direct)`. Shared with the worker's cache, so a
    /// click carries a pointer, not a copy.
    pub referrer: Option<Arc<RefHost>>,
    /// The visitor's country.
    pub country: Country,
    /// Browser, OS and device class.
    pub agent: Agent,
}

impl VisitKey {
    /// The key's value in each dimension, in [`Dimension::ALL`] order.
    pub fn values(&self) -> [VisitValue; 5] {
        [
            VisitValue::Referrer(self.referrer.clone()),
            VisitValue::Country(self.country),
            VisitValue::Browser(self.agent.browser),
            VisitValue::Os(self.agent.os),
            VisitValue::Device(self.agent.device),
        ]
    }
}

/// One dimension's value of a visit.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum VisitValue {
    /// The referring host, or `(direct)`.
    Referrer(Option<Arc<RefHost>>),
    /// The country.
    Country(Country),
    /// The browser family.
    Browser(Browser),
    /// The OS family.
    Os(Os),
    /// The device class.
    Device(Device),
}

impl VisitValue {
    /// Its dimension.
    pub fn dimension(&self) -> Dimension {
        match self {
            VisitValue::Referrer(_) => Dimension::Referrer,
            VisitValue::Country(_) => Dimension::Country,
            VisitValue::Browser(_) => Dimension::Browser,
            VisitValue::Os(_) => Dimension::Os,
            VisitValue::Device(_) => Dimension::Device,
        }
    }

    /// Its value as stored and shown.
    pub fn as_str(&self) -> &str {
        match self {
            // As `Referrer::Direct` shows it.
            VisitValue::Referrer(None) => "(direct)",
            VisitValue::Referrer(Some(host)) => host.as_str(),
            VisitValue::Country(c) => c.as_str(),
            VisitValue::Browser(b) => b.as_str(),
            VisitValue::Os(o) => o.as_str(),
            VisitValue::Device(d) => d.as_str(),
        }
    }
}

/// Clicks of one link on one day that were recorded as one visit: the unit the counter
/// holds and the journal stores, one entry whatever the number of dimensions (the store
/// splits it into its dimensions' values when it folds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VisitCount {
    /// The link followed.
    pub link: LinkId,
    /// The UTC day.
    pub day: NaiveDate,
    /// What the clicks were recorded as.
    pub visit: VisitKey,
    /// How many.
    pub clicks: u64,
}

/// One worker's classifier: its caches, the GeoIP lookup, and the service's own host
/// (a referral from our own pages is `(direct)`). Not shared between threads: each HTTP
/// worker builds its own, so the caches need no lock.
pub struct Classifier {
    agents: RefCell<Recent<Agent>>,
    referrers: RefCell<Recent<Option<Arc<RefHost>>>>,
    hasher: foldhash::quality::RandomState,
    /// `None` without a GeoIP database: then the client's address is not even worked out.
    countries: Option<Arc<dyn Countries>>,
    own_host: Option<Arc<str>>,
}

impl Classifier {
    /// A classifier looking countries up in `countries` (every country unknown without),
    /// treating `own_host` (the public URL's host) as no referral.
    pub fn new(countries: Option<Arc<dyn Countries>>, own_host: Option<Arc<str>>) -> Classifier {
        Classifier {
            agents: RefCell::new(Recent::new()),
            referrers: RefCell::new(Recent::new()),
            hasher: foldhash::quality::RandomState::default(),
            countries,
            own_host,
        }
    }

    /// What `visitor`'s click is recorded as.
    pub fn visit(&self, visitor: &impl Visitor) -> VisitKey {
        VisitKey {
            referrer: self.referrer(visitor.referrer()),
            country: match &self.countries {
                Some(countries) => visitor
                    .address()
                    .map_or(Country::Unknown, |ip| countries.country(ip)),
                None => Country::Unknown,
            },
            agent: self.agent(visitor.user_agent()),
        }
    }

    fn agent(&self, header: Option<&[u8]>) -> Agent {
        // No user agent is classified like an empty one, and cached like any.
        let header = header.unwrap_or_default();
        let key = self.hasher.hash_one(header);
        let mut agents = self.agents.borrow_mut();
        if let Some(agent) = agents.get(key) {
            return *agent;
        }
        let agent = Agent::classify(readable(header).unwrap_or_default());
        agents.insert(key, agent);
        agent
    }

    fn referrer(&self, header: Option<&[u8]>) -> Option<Arc<RefHost>> {
        let header = header?;
        let key = self.hasher.hash_one(header);
        let mut referrers = self.referrers.borrow_mut();
        if let Some(host) = referrers.get(key) {
            return host.clone();
        }
        let host = match Referrer::parse(readable(header), self.own_host.as_deref()) {
            Referrer::Direct => None,
            Referrer::Host(host) => Some(Arc::new(host)),
        };
        referrers.insert(key, host.clone());
        host
    }
}

/// Answers for the headers seen last, by the header's 64-bit hash: a set-associative
/// cache (a set of [`Self::WAYS`] entries per hash, the oldest of a full set replaced).
/// A hit is one probe of one set, where a general-purpose cache (it was `quick_cache`)
/// hashed the hash again and kept order: that cost a redirect about 90 instructions more
/// (callgrind, issue #17). Fixed size, so a flood of new headers only evicts. The hash is
/// keyed per classifier (a random seed), so no one can aim a header at another's entry.
struct Recent<V> {
    /// The hashes held, [`Self::WAYS`] per set, 0 for an empty entry (a header hashing
    /// to 0 is never held: it is classified each time).
    tags: Box<[u64]>,
    values: Box<[Option<V>]>,
    /// Per set, the way its next new entry takes (the oldest).
    next: Box<[u8]>,
}

impl<V> Recent<V> {
    const SETS: usize = 1024;
    const WAYS: usize = 4;

    fn new() -> Recent<V> {
        let n = Self::SETS * Self::WAYS;
        Recent {
            tags: vec![0; n].into_boxed_slice(),
            values: std::iter::repeat_with(|| None).take(n).collect(),
            next: vec![0; Self::SETS].into_boxed_slice(),
        }
    }

    /// `hash`'s set, from the hash's top bits (the low ones pick nothing, so both
    /// halves of the hash count).
    fn set(hash: u64) -> usize {
        (hash >> (64 - Self::SETS.trailing_zeros())) as usize
    }

    fn get(&self, hash: u64) -> Option<&V> {
        let at = Self::set(hash) * Self::WAYS;
        let way = self.tags[at..at + Self::WAYS]
            .iter()
            .position(|&t| t == hash && t != 0)?;
        self.values[at + way].as_ref()
    }

    fn insert(&mut self, hash: u64, value: V) {
        if hash == 0 {
            return;
        }
        let set = Self::set(hash);
        let way = usize::from(self.next[set]);
        self.next[set] = ((way + 1) % Self::WAYS) as u8;
        let at = set * Self::WAYS + way;
        self.tags[at] = hash;
        self.values[at] = Some(value);
    }
}

/// A header's text, if it is text as HTTP allows it (visible ASCII, spaces and tabs);
/// anything else is classified as if the header were not sent. Checked only when a
/// header is first seen: repeats are found by their bytes' hash.
fn readable(header: &[u8]) -> Option<&str> {
    if header
        .iter()
        .all(|&b| b == b'\t' || (b' '..=b'~').contains(&b))
    {
        std::str::from_utf8(header).ok()
    } else {
        None
    }
}

impl std::fmt::Debug for Classifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Classifier")
            .field("own_host", &self.own_host)
            .finish_non_exhaustive()
    }
}

/// Sorts `(value, clicks)` pairs as every ranking of the stats lists them: most clicks
/// first, ties by value (bytewise, as PostgreSQL's `COLLATE "C"`).
pub fn rank(values: &mut [(String, i64)]) {
    values.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
}

/// Breakdowns list this many values, then `(other)`.
pub const TOP_VALUES: usize = 10;

/// One dimension's clicks over a period: its most frequent values, most clicks first
/// (ties by value), and the clicks of every other value together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Breakdown {
    /// The dimension.
    pub dimension: Dimension,
    /// At most [`TOP_VALUES`] values with their clicks.
    pub top: Vec<(String, i64)>,
    /// Clicks of the values not in `top` (0 when there are none).
    pub other: i64,
}

impl Breakdown {
    /// The breakdown of `dimension` from every value's clicks, in any order.
    pub fn of(dimension: Dimension, mut values: Vec<(String, i64)>, top: usize) -> Breakdown {
        rank(&mut values);
        let other = values.iter().skip(top).map(|(_, n)| n).sum();
        values.truncate(top);
        Breakdown {
            dimension,
            top: values,
            other,
        }
    }

    /// All its clicks.
    pub fn total(&self) -> i64 {
        self.top.iter().map(|(_, n)| n).sum::<i64>() + self.other
    }
}

/// What a store reports of visits over a period (a link's or an account's).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VisitReport {
    /// Clicks of bots per day; days without are absent.
    pub bots_daily: Vec<(NaiveDate, i64)>,
    /// One per dimension that has clicks, in [`Dimension::ALL`] order.
    pub breakdowns: Vec<Breakdown>,
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use shortener_domain::visit::{Agent, Browser, CountryCode, Device};

    use super::*;
    use crate::AppError;

    /// A visitor from Germany in Firefox, referred by `referrer`; `address` says whether
    /// its address may be asked for.
    struct Firefox {
        referrer: Option<&'static str>,
        address: bool,
    }

    impl Visitor for Firefox {
        fn address(&self) -> Option<IpAddr> {
            assert!(self.address, "the address was worked out");
            Some(IpAddr::from([81, 1, 1, 1]))
        }
        fn may_look_up(&self) -> Result<(), AppError> {
            Ok(())
        }
        fn user_agent(&self) -> Option<&[u8]> {
            Some(b"Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0")
        }
        fn referrer(&self) -> Option<&[u8]> {
            self.referrer.map(str::as_bytes)
        }
    }

    struct Germany;

    impl Countries for Germany {
        fn country(&self, _: IpAddr) -> Country {
            CountryCode::parse("DE").map_or(Country::Unknown, Country::Known)
        }
    }

    #[test]
    fn without_a_geoip_database_the_address_is_never_asked_for() {
        let classifier = Classifier::new(None, Some(Arc::from("sho.rt")));
        let visitor = Firefox {
            referrer: Some("https://sho.rt/ui"),
            address: false,
        };
        let visit = classifier.visit(&visitor);
        assert_eq!(visit.country, Country::Unknown);
        assert_eq!(visit.referrer, None, "our own host is no referral");
        assert_eq!(visit.agent.browser, Browser::Firefox);
        assert_eq!(visit.agent.device, Device::Desktop);
    }

    /// Headers HTTP does not allow as text, sent as raw bytes.
    struct Garbled;

    impl Visitor for Garbled {
        fn address(&self) -> Option<IpAddr> {
            None
        }
        fn user_agent(&self) -> Option<&[u8]> {
            Some(b"Mozilla/5.0 (Windows NT 10.0) Chrome/131.0 \xff\xfe")
        }
        fn referrer(&self) -> Option<&[u8]> {
            Some(b"https://news.example/\x00")
        }
    }

    #[test]
    fn headers_that_are_not_text_count_as_not_sent_each_time() {
        let classifier = Classifier::new(None, None);
        let empty = Agent::classify("");
        for _ in 0..2 {
            let visit = classifier.visit(&Garbled);
            assert_eq!(visit.agent, empty);
            assert_eq!(visit.referrer, None);
        }
        assert_eq!(readable(b"curl/8.5.0\tx"), Some("curl/8.5.0\tx"));
        assert_eq!(readable("caf\u{e9}".as_bytes()), None);
    }

    #[test]
    fn the_recent_answers_hold_four_a_set_and_replace_the_oldest() {
        let mut recent: Recent<u32> = Recent::new();
        // Five hashes of one set (the same top bits), then one of another.
        let same = |i: u64| (7u64 << 54) | i;
        for i in 1..=4 {
            recent.insert(same(i), i as u32);
        }
        assert_eq!(
            (1..=4)
                .map(|i| recent.get(same(i)).copied())
                .collect::<Vec<_>>(),
            [Some(1), Some(2), Some(3), Some(4)]
        );
        recent.insert(same(5), 5);
        assert_eq!(recent.get(same(1)), None, "the oldest made room");
        assert_eq!(recent.get(same(5)), Some(&5));
        assert_eq!(recent.get(same(2)), Some(&2));
        recent.insert(u64::MAX, 9);
        assert_eq!(recent.get(u64::MAX), Some(&9), "another set, its own room");
        assert_eq!(recent.get(same(6)), None);
        recent.insert(0, 1);
        assert_eq!(recent.get(0), None, "0 marks an empty entry");
    }

    #[test]
    fn with_one_the_country_is_looked_up_and_repeats_come_from_the_caches() {
        let classifier = Classifier::new(Some(Arc::new(Germany)), None);
        let visitor = Firefox {
            referrer: Some("https://News.example:8443/a/path?q=1"),
            address: true,
        };
        let first = classifier.visit(&visitor);
        assert_eq!(first.country.as_str(), "DE");
        assert_eq!(
            first.referrer.as_deref().map(RefHost::as_str),
            Some("news.example")
        );
        // The second answer shares the cached host rather than parsing it again.
        let second = classifier.visit(&visitor);
        assert_eq!(second, first);
        assert!(Arc::ptr_eq(
            first.referrer.as_ref().unwrap(),
            second.referrer.as_ref().unwrap()
        ));
    }
}

//! The visitor's country for visit analytics, from a MaxMind-format (`.mmdb`) country
//! database the operator downloads (DB-IP's "IP to Country Lite" or MaxMind's
//! GeoLite2-Country; a City database works too) and names in `geoip.database`.
//!
//! The file is read whole into memory at start and never again (restart to take a new
//! one); a lookup is then a walk down the in-memory search tree and one short string read,
//! answered on the redirect path without blocking. No address is ever logged here.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use maxminddb::{MaxMindDbError, PathElement, Reader};
use shortener_app::Countries;
use shortener_domain::visit::{Country, CountryCode};

/// Why the configured database cannot be used. Each names the file and what is wrong
/// with it, for the one line that stops the start.
#[derive(Debug, thiserror::Error)]
pub enum GeoIpError {
    /// The file cannot be read: missing, not a file, not readable.
    #[error("cannot open {}", path.display())]
    Unreadable {
        /// The configured path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a MaxMind DB.
    #[error("{} is not a MaxMind DB (.mmdb) file", path.display())]
    NotMmdb {
        /// The configured path.
        path: PathBuf,
        /// What the reader found wrong.
        #[source]
        source: MaxMindDbError,
    },
    /// A MaxMind DB, but not of countries (e.g. an ASN database).
    #[error(
        "{} is a `{database_type}` database, not a country (or city) database such as \
         DBIP-Country-Lite or GeoLite2-Country",
        path.display()
    )]
    NotCountries {
        /// The configured path.
        path: PathBuf,
        /// Its metadata's `database_type`.
        database_type: String,
    },
}

/// The countries of `geoip.database`: a [`GeoIp`] when set, none otherwise (every
/// country unknown, and the redirect does not even work out the client's address).
pub fn countries(setting: Option<&Path>) -> Result<Option<Arc<dyn Countries>>, GeoIpError> {
    match setting {
        None => Ok(None),
        Some(path) => {
            let geoip = GeoIp::open(path)?;
            let metadata = geoip.reader.metadata();
            tracing::info!(
                path = %path.display(),
                database_type = %metadata.database_type,
                build_epoch = metadata.build_epoch,
                bytes = geoip.size,
                "GeoIP database loaded"
            );
            Ok(Some(Arc::new(geoip)))
        }
    }
}

/// A country database, in memory.
pub struct GeoIp {
    reader: Reader<Vec<u8>>,
    size: usize,
}

impl std::fmt::Debug for GeoIp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeoIp")
            .field("database_type", &self.reader.metadata().database_type)
            .field("bytes", &self.size)
            .finish_non_exhaustive()
    }
}

/// Where a record keeps the country code...
const COUNTRY: [PathElement<'static>; 2] =
    [PathElement::Key("country"), PathElement::Key("iso_code")];
/// ...and, for addresses whose country is not known (e.g. anycast), the country the
/// network is registered in.
const REGISTERED_COUNTRY: [PathElement<'static>; 2] = [
    PathElement::Key("registered_country"),
    PathElement::Key("iso_code"),
];

impl GeoIp {
    /// Reads the database at `path` whole and checks that it is one of countries.
    pub fn open(path: &Path) -> Result<GeoIp, GeoIpError> {
        let bytes = std::fs::read(path).map_err(|source| GeoIpError::Unreadable {
            path: path.to_owned(),
            source,
        })?;
        GeoIp::from_bytes(bytes, path)
    }

    /// The database in `bytes`, read from `path` (named in errors).
    pub fn from_bytes(bytes: Vec<u8>, path: &Path) -> Result<GeoIp, GeoIpError> {
        let size = bytes.len();
        let reader = Reader::from_source(bytes).map_err(|source| GeoIpError::NotMmdb {
            path: path.to_owned(),
            source,
        })?;
        // GeoLite2-Country, GeoIP2-Country, DBIP-Country-Lite, DBIP-Country; the City
        // databases carry the same `country` too.
        let database_type = &reader.metadata().database_type;
        if !(database_type.contains("Country") || database_type.contains("City")) {
            return Err(GeoIpError::NotCountries {
                path: path.to_owned(),
                database_type: database_type.clone(),
            });
        }
        Ok(GeoIp { reader, size })
    }
}

impl Countries for GeoIp {
    fn country(&self, address: IpAddr) -> Country {
        // An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, what a dual-stack socket reports
        // for an IPv4 peer) is looked up as the IPv4 address it is.
        let Ok(found) = self.reader.lookup(address.to_canonical()) else {
            return Country::Unknown;
        };
        // Borrowed from the database: no allocation. A missing, mistyped or malformed
        // code is as good as none.
        let code = |path: &[PathElement<'_>]| found.decode_path::<&str>(path).ok().flatten();
        code(&COUNTRY)
            .or_else(|| code(&REGISTERED_COUNTRY))
            .and_then(CountryCode::parse)
            .map_or(Country::Unknown, Country::Known)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::net::{Ipv4Addr, Ipv6Addr};
    use std::time::Instant;

    use shortener_app::Chain;
    use shortener_testing::mmdb::{MmdbWriter, Value, country_db, country_record, net};

    use super::*;
    use crate::ProcessError;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn known(code: &str) -> Country {
        Country::Known(CountryCode::parse(code).unwrap())
    }

    fn geoip(bytes: Vec<u8>) -> GeoIp {
        GeoIp::from_bytes(bytes, Path::new("fixture.mmdb")).unwrap()
    }

    /// A file of its own under the temp directory, removed when dropped.
    struct TempFile(PathBuf);

    impl TempFile {
        fn with(bytes: &[u8]) -> TempFile {
            let path = std::env::temp_dir().join(format!(
                "shortener-geoip-{}.mmdb",
                uuid::Uuid::new_v4().simple()
            ));
            std::fs::write(&path, bytes).unwrap();
            TempFile(path)
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn fixture() -> Vec<u8> {
        country_db(
            &[
                (net("81.0.0.0/8"), "DE"),
                (net("81.2.69.0/24"), "GB"),
                (net("2a02::/16"), "NL"),
                (net("2001:db8::/32"), "FR"),
            ],
            "GeoLite2-Country",
        )
    }

    /// The line `main` prints for a start that `countries` stopped (less `shortener: `).
    fn start_error(setting: &Path) -> String {
        let e = countries(Some(setting)).err().unwrap();
        Chain(&ProcessError::startup("geoip.database", e)).to_string()
    }

    #[test]
    fn ipv4_ipv6_and_ipv4_mapped_addresses_get_their_country() {
        let geoip = geoip(fixture());
        assert_eq!(geoip.country(ip("81.1.1.1")), known("DE"));
        assert_eq!(geoip.country(ip("81.2.69.160")), known("GB"));
        assert_eq!(geoip.country(ip("2a02:1234::1")), known("NL"));
        assert_eq!(geoip.country(ip("2001:db8:ffff::1")), known("FR"));
        // What a dual-stack listener reports for an IPv4 peer.
        let mapped = IpAddr::V6(Ipv4Addr::new(81, 2, 69, 160).to_ipv6_mapped());
        assert_eq!(mapped.to_string(), "::ffff:81.2.69.160");
        assert_eq!(geoip.country(mapped), known("GB"));
        assert_eq!(geoip.country(ip("::ffff:81.9.9.9")), known("DE"));
    }

    #[test]
    fn an_address_outside_every_network_is_unknown() {
        let geoip = geoip(fixture());
        for address in [
            "82.0.0.1",
            "127.0.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "2001:db9::1",
            "::1",
            "::",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "::ffff:8.8.8.8",
        ] {
            assert_eq!(geoip.country(ip(address)), Country::Unknown, "{address}");
        }
    }

    #[test]
    fn the_registered_country_stands_in_and_a_record_without_a_code_is_unknown() {
        let mut db = MmdbWriter::new("GeoIP2-Country");
        db.insert(
            ip("192.0.2.0"),
            24,
            Value::map([(
                "registered_country",
                Value::map([("iso_code", Value::string("US"))]),
            )]),
        )
        .insert(
            ip("198.51.100.0"),
            24,
            Value::map([
                ("country", Value::map([("iso_code", Value::string("ca"))])),
                (
                    "registered_country",
                    Value::map([("iso_code", Value::string("US"))]),
                ),
            ]),
        )
        .insert(
            ip("203.0.113.0"),
            24,
            Value::map([("continent", Value::map([("code", Value::string("EU"))]))]),
        )
        // Not two letters, or not a string at all.
        .insert(ip("203.0.114.0"), 24, country_record("X1Y"))
        .insert(
            ip("203.0.115.0"),
            24,
            Value::map([("country", Value::map([("iso_code", Value::U32(276))]))]),
        )
        .insert(ip("203.0.116.0"), 24, Value::string("not a map"));
        let geoip = geoip(db.build());
        assert_eq!(geoip.country(ip("192.0.2.1")), known("US"));
        assert_eq!(geoip.country(ip("198.51.100.1")), known("CA"));
        for address in ["203.0.113.1", "203.0.114.1", "203.0.115.1", "203.0.116.1"] {
            assert_eq!(geoip.country(ip(address)), Country::Unknown, "{address}");
        }
    }

    #[test]
    fn city_databases_carry_countries_too() {
        for database_type in ["GeoLite2-City", "DBIP-City-Lite", "GeoIP2-City"] {
            let bytes = country_db(&[(net("81.0.0.0/8"), "DE")], database_type);
            assert_eq!(geoip(bytes).country(ip("81.1.1.1")), known("DE"));
        }
    }

    #[test]
    fn without_a_database_there_is_nothing_to_ask() {
        assert!(countries(None).unwrap().is_none());
    }

    #[test]
    fn a_configured_database_is_opened_from_its_file() {
        let file = TempFile::with(&fixture());
        let countries = countries(Some(&file.0)).unwrap().expect("a database");
        assert_eq!(countries.country(ip("81.2.69.160")), known("GB"));
        assert_eq!(
            countries.country(IpAddr::V6(Ipv6Addr::LOCALHOST)),
            Country::Unknown
        );
    }

    #[test]
    fn a_missing_file_is_one_line_naming_the_key_and_the_path() {
        assert_eq!(
            start_error(Path::new("/nope.mmdb")),
            "geoip.database: cannot open /nope.mmdb: No such file or directory (os error 2)"
        );
        let dir = std::env::temp_dir();
        let e = start_error(&dir);
        assert!(
            e.starts_with(&format!("geoip.database: cannot open {}: ", dir.display())),
            "{e}"
        );
    }

    #[test]
    fn a_file_that_is_not_an_mmdb_is_refused() {
        let garbage: Vec<u8> = (0..4096u32).map(|i| (i * 7919 % 251) as u8).collect();
        for bytes in [garbage, Vec::new(), b"\xAB\xCD\xEFMaxMind.com".to_vec()] {
            let file = TempFile::with(&bytes);
            let e = start_error(&file.0);
            assert!(
                e.starts_with(&format!(
                    "geoip.database: {} is not a MaxMind DB (.mmdb) file: ",
                    file.0.display()
                )),
                "{e}"
            );
            assert!(!e.contains('\n'), "{e}");
        }
    }

    #[test]
    fn an_mmdb_that_is_not_of_countries_is_refused() {
        let file = TempFile::with(&MmdbWriter::new("GeoLite2-ASN").build());
        assert_eq!(
            start_error(&file.0),
            format!(
                "geoip.database: {} is a `GeoLite2-ASN` database, not a country (or city) \
                 database such as DBIP-Country-Lite or GeoLite2-Country",
                file.0.display()
            )
        );
    }

    /// The first address of the measurement's IPv4 networks (1.0.0.0)...
    const FIRST: u32 = 0x0100_0000;
    /// ...and of its IPv6 networks (2a00::).
    const V6_FIRST: u128 = 0x2a00 << 112;

    /// Addresses spread over the whole space, found and not, IPv4 mostly (as visitors are).
    fn addresses(n: usize) -> Vec<IpAddr> {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        (0..n)
            .map(|i| {
                // xorshift64
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                match i % 8 {
                    // In 1.0.0.0 to 16.255.255.255, which are all /24s in the fixture.
                    0..=4 => IpAddr::V4(Ipv4Addr::from((x as u32 & 0x0fff_ffff) + FIRST)),
                    5 => IpAddr::V4(Ipv4Addr::from(x as u32)),
                    // In 2a00::/16: 1 in 16 in one of the fixture's /32s.
                    6 => IpAddr::V6(Ipv6Addr::from(V6_FIRST | (u128::from(x) << 48))),
                    _ => IpAddr::V6(Ipv4Addr::from(x as u32).to_ipv6_mapped()),
                }
            })
            .collect()
    }

    /// The lookup's cost, paid once per counted redirect: `geoip-lookup-ns`, the median
    /// of 5 rounds of 1 000 000 lookups. The fixture is about as deep (IPv4 /24s) and as
    /// large (6 MB, past the CPU's caches) as a real country database: every /24
    /// from 1.0.0.0 to 16.255.255.0 (1 048 576 networks), and 4 096 IPv6 /32s.
    /// `cargo test --release -p shortener-http --lib geoip::tests::measure -- --ignored
    /// --nocapture`
    #[test]
    #[ignore = "a measurement: run by hand in release"]
    fn measure_the_lookup_cost() {
        const CODES: [&str; 8] = ["DE", "GB", "FR", "NL", "US", "JP", "BR", "IN"];
        let mut networks = Vec::new();
        for n in 0..(1u32 << 20) {
            let address = IpAddr::V4(Ipv4Addr::from(FIRST + (n << 8)));
            networks.push(((address, 24), CODES[n as usize % CODES.len()]));
        }
        for n in 0..4096u128 {
            let address = IpAddr::V6(Ipv6Addr::from(V6_FIRST | (n << 96)));
            networks.push(((address, 32), CODES[n as usize % CODES.len()]));
        }
        let geoip = geoip(country_db(&networks, "DBIP-Country-Lite"));
        let addresses = addresses(1_000_000);
        let known = addresses
            .iter()
            .filter(|a| geoip.country(**a) != Country::Unknown)
            .count();
        let mut rounds = Vec::new();
        for _ in 0..5 {
            let started = Instant::now();
            for address in &addresses {
                std::hint::black_box(geoip.country(std::hint::black_box(*address)));
            }
            rounds.push(started.elapsed().as_nanos() as f64 / addresses.len() as f64);
        }
        rounds.sort_by(f64::total_cmp);
        println!(
            "geoip-lookup-ns: {:.0} (rounds {:.0?}; {known} of {} known; {} bytes)",
            rounds[2],
            rounds,
            addresses.len(),
            geoip.size
        );
    }
}

//! MaxMind DB (`.mmdb`) files built in code, so that tests of the GeoIP lookup need no
//! binary fixture in the repository and no download: a writer of the format's version 2.0
//! (<https://maxmind.github.io/MaxMind-DB/>) for what a country database holds.
//!
//! What it writes: an IPv6 search tree (`ip_version` 6) with 24-bit records, IPv4
//! networks at `::a.b.c.d/(96 + prefix)`, where readers look an IPv4 address up (they
//! walk 96 zero bits from the root first). Unlike MaxMind's own databases it does not
//! alias `::ffff:0:0/96` (IPv4-mapped) or `2002::/16` (6to4) to the IPv4 networks: a
//! reader that wants IPv4-mapped addresses found must look them up as IPv4. Then the
//! 16-byte data section separator, one data record per distinct value (networks with equal
//! values share it), and the metadata after `\xAB\xCD\xEFMaxMind.com`.
//!
//! The data encoder knows the types a country database and its metadata use: map, UTF-8
//! string, uint16, uint32, uint64 and array.

use std::collections::HashMap;
use std::net::IpAddr;

/// A data section value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Value {
    /// A UTF-8 string (type 2).
    String(String),
    /// An unsigned 16-bit integer (type 5).
    U16(u16),
    /// An unsigned 32-bit integer (type 6).
    U32(u32),
    /// An unsigned 64-bit integer (type 9).
    U64(u64),
    /// A map from string keys to values, in this order (type 7).
    Map(Vec<(String, Value)>),
    /// An array (type 11).
    Array(Vec<Value>),
}

impl Value {
    /// A map of `pairs`.
    pub fn map<'a>(pairs: impl IntoIterator<Item = (&'a str, Value)>) -> Value {
        Value::Map(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
    }

    /// A string.
    pub fn string(s: &str) -> Value {
        Value::String(s.to_owned())
    }
}

/// What a GeoIP2/GeoLite2 Country record holds that a lookup of the country code reads:
/// `{"country": {"iso_code": <iso_code>}}`.
pub fn country_record(iso_code: &str) -> Value {
    Value::map([(
        "country",
        Value::map([("iso_code", Value::string(iso_code))]),
    )])
}

/// `address/prefix` (e.g. `81.2.69.0/24`) as the network [`country_db`] takes; panics on
/// anything else (test input).
pub fn net(s: &str) -> (IpAddr, u8) {
    let parsed = s
        .split_once('/')
        .and_then(|(a, p)| Some((a.parse().ok()?, p.parse().ok()?)));
    parsed.unwrap_or_else(|| panic!("not address/prefix: {s}"))
}

/// A country database of `database_type` (e.g. `GeoLite2-Country`) in which each network
/// `(address, prefix length)` has the country `iso_code`. IPv4 networks are written where
/// an IPv4 lookup finds them; a more specific network overrides the less specific one it
/// lies in.
pub fn country_db(networks: &[((IpAddr, u8), &str)], database_type: &str) -> Vec<u8> {
    let mut db = MmdbWriter::new(database_type);
    for &((address, prefix), iso_code) in networks {
        db.insert(address, prefix, country_record(iso_code));
    }
    db.build()
}

/// Value of a record in the search tree being built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Record {
    /// No data for the addresses below.
    Empty,
    /// Another node.
    Node(usize),
    /// The data record with this index (into `MmdbWriter::values`).
    Data(usize),
}

/// Builds a MaxMind DB: networks with their values, then [`MmdbWriter::build`].
#[derive(Debug)]
pub struct MmdbWriter {
    database_type: String,
    build_epoch: u64,
    /// (network as an IPv6 number, prefix length in the IPv6 tree, value index)
    networks: Vec<(u128, u8, usize)>,
    values: Vec<Value>,
    value_index: HashMap<Value, usize>,
}

/// Bits of a record: every value written must fit.
const RECORD_BITS: u32 = 24;
/// The 16 zero bytes between the search tree and the data section.
const DATA_SECTION_SEPARATOR: usize = 16;
/// What precedes the metadata.
const METADATA_MARKER: &[u8] = b"\xAB\xCD\xEFMaxMind.com";

impl MmdbWriter {
    /// An empty database of `database_type`.
    pub fn new(database_type: &str) -> MmdbWriter {
        MmdbWriter {
            database_type: database_type.to_owned(),
            build_epoch: 1_700_000_000,
            networks: Vec::new(),
            values: Vec::new(),
            value_index: HashMap::new(),
        }
    }

    /// `address/prefix` has `value`. An IPv4 network goes to `::a.b.c.d/(96 + prefix)`.
    ///
    /// # Panics
    /// If the prefix is longer than the address.
    pub fn insert(&mut self, address: IpAddr, prefix: u8, value: Value) -> &mut MmdbWriter {
        let (bits, prefix) = match address {
            IpAddr::V4(v4) => {
                assert!(prefix <= 32, "{address}/{prefix}: prefix longer than 32");
                (u128::from(u32::from(v4)), prefix + 96)
            }
            IpAddr::V6(v6) => {
                assert!(prefix <= 128, "{address}/{prefix}: prefix longer than 128");
                (u128::from(v6), prefix)
            }
        };
        let next = self.values.len();
        let index = *self.value_index.entry(value.clone()).or_insert(next);
        if index == next {
            self.values.push(value);
        }
        self.networks.push((bits, prefix, index));
        self
    }

    /// The database's bytes.
    ///
    /// # Panics
    /// If the tree or the data section outgrows 24-bit records.
    pub fn build(&self) -> Vec<u8> {
        let nodes = self.tree();
        let node_count = nodes.len();

        // The data section: each value once, in index order.
        let mut data = Vec::new();
        let mut offsets = Vec::with_capacity(self.values.len());
        for value in &self.values {
            offsets.push(data.len());
            encode(value, &mut data);
        }

        let record = |r: Record| -> u32 {
            let n = match r {
                Record::Empty => node_count,
                Record::Node(n) => n,
                Record::Data(i) => node_count + DATA_SECTION_SEPARATOR + offsets[i],
            };
            let n = u32::try_from(n).unwrap_or(u32::MAX);
            assert!(n < 1 << RECORD_BITS, "record {n} does not fit in 24 bits");
            n
        };
        let mut out = Vec::with_capacity(node_count * 6 + 16 + data.len() + 256);
        for [left, right] in &nodes {
            out.extend_from_slice(&record(*left).to_be_bytes()[1..]);
            out.extend_from_slice(&record(*right).to_be_bytes()[1..]);
        }
        out.extend_from_slice(&[0; DATA_SECTION_SEPARATOR]);
        out.extend_from_slice(&data);
        out.extend_from_slice(METADATA_MARKER);
        let metadata = Value::map([
            (
                "node_count",
                Value::U32(u32::try_from(node_count).unwrap_or(u32::MAX)),
            ),
            ("record_size", Value::U16(RECORD_BITS as u16)),
            ("ip_version", Value::U16(6)),
            ("database_type", Value::string(&self.database_type)),
            ("languages", Value::Array(vec![Value::string("en")])),
            ("binary_format_major_version", Value::U16(2)),
            ("binary_format_minor_version", Value::U16(0)),
            ("build_epoch", Value::U64(self.build_epoch)),
            (
                "description",
                Value::map([("en", Value::string("shortener test fixture"))]),
            ),
        ]);
        encode(&metadata, &mut out);
        out
    }

    /// The search tree: node 0 is the root; each node is its (left, right) records.
    /// Shorter networks go in first, so a more specific one splits them where it lies.
    fn tree(&self) -> Vec<[Record; 2]> {
        let mut networks = self.networks.clone();
        networks.sort_by_key(|&(_, prefix, _)| prefix);
        let mut nodes = vec![[Record::Empty; 2]];
        for (bits, prefix, value) in networks {
            if prefix == 0 {
                // Everything: both halves of the root, and of every node below it.
                fill(&mut nodes, 0, Record::Data(value));
                continue;
            }
            let mut node = 0;
            for depth in 0..prefix {
                let side = usize::from((bits >> (127 - depth)) & 1 == 1);
                if depth + 1 == prefix {
                    match nodes[node][side] {
                        // More specific networks are inserted later; a subtree here came
                        // from an equal or shorter one's split: fill it all.
                        Record::Node(below) => fill(&mut nodes, below, Record::Data(value)),
                        _ => nodes[node][side] = Record::Data(value),
                    }
                    break;
                }
                node = match nodes[node][side] {
                    Record::Node(below) => below,
                    other => {
                        // Empty, or a less specific network's data: split it in two.
                        nodes.push([other; 2]);
                        let below = nodes.len() - 1;
                        nodes[node][side] = Record::Node(below);
                        below
                    }
                };
            }
        }
        nodes
    }
}

/// Sets every record in the subtree at `node` to `record`.
fn fill(nodes: &mut [[Record; 2]], node: usize, record: Record) {
    for side in 0..2 {
        match nodes[node][side] {
            Record::Node(below) => fill(nodes, below, record),
            _ => nodes[node][side] = record,
        }
    }
}

/// Appends the control byte(s) of a value of type `type_num` and `size`.
fn control(type_num: u8, size: usize, out: &mut Vec<u8>) {
    let (size_bits, extra): (u8, Vec<u8>) = match size {
        0..29 => (size as u8, vec![]),
        29..285 => (29, vec![(size - 29) as u8]),
        285..65_821 => (30, ((size - 285) as u16).to_be_bytes().to_vec()),
        _ => {
            let rest = size - 65_821;
            assert!(
                rest < 1 << 24,
                "value of {size} bytes or items is too large"
            );
            (31, (rest as u32).to_be_bytes()[1..].to_vec())
        }
    };
    if type_num <= 7 {
        out.push((type_num << 5) | size_bits);
    } else {
        // Extended type: 0 in the control byte, the type less 7 in the next.
        out.push(size_bits);
        out.push(type_num - 7);
    }
    out.extend_from_slice(&extra);
}

/// Appends an unsigned integer of `type_num`, big-endian without leading zero bytes.
fn unsigned(type_num: u8, n: u64, out: &mut Vec<u8>) {
    let bytes = n.to_be_bytes();
    let skip = bytes.iter().take_while(|&&b| b == 0).count();
    control(type_num, bytes.len() - skip, out);
    out.extend_from_slice(&bytes[skip..]);
}

/// Appends `value` encoded (no pointers: each value is written whole).
fn encode(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::String(s) => {
            control(2, s.len(), out);
            out.extend_from_slice(s.as_bytes());
        }
        Value::U16(n) => unsigned(5, u64::from(*n), out),
        Value::U32(n) => unsigned(6, u64::from(*n), out),
        Value::U64(n) => unsigned(9, *n, out),
        Value::Map(pairs) => {
            control(7, pairs.len(), out);
            for (k, v) in pairs {
                encode(&Value::String(k.clone()), out);
                encode(v, out);
            }
        }
        Value::Array(items) => {
            control(11, items.len(), out);
            for item in items {
                encode(item, out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::BTreeMap;

    use maxminddb::{Reader, path};

    use super::*;

    fn code(reader: &Reader<Vec<u8>>, ip: &str) -> Option<String> {
        reader
            .lookup(ip.parse().unwrap())
            .unwrap()
            .decode_path(&path!["country", "iso_code"])
            .unwrap()
    }

    #[test]
    fn a_country_database_reads_back_with_the_maxminddb_reader() {
        let bytes = country_db(
            &[
                (net("81.0.0.0/8"), "DE"),
                (net("81.2.69.0/24"), "GB"),
                (net("2a02:0:0:0::/16"), "NL"),
                (net("2001:db8::/32"), "FR"),
            ],
            "GeoLite2-Country",
        );
        let reader = Reader::from_source(bytes).unwrap();
        reader.verify().unwrap();
        let m = reader.metadata();
        assert_eq!(m.database_type, "GeoLite2-Country");
        assert_eq!((m.ip_version, m.record_size), (6, 24));
        assert_eq!(
            (m.binary_format_major_version, m.binary_format_minor_version),
            (2, 0)
        );
        assert_eq!(m.languages, ["en"]);
        assert_eq!(m.build_epoch, 1_700_000_000);
        assert_eq!(
            m.description,
            BTreeMap::from([("en".to_owned(), "shortener test fixture".to_owned())])
        );

        assert_eq!(code(&reader, "81.1.1.1").as_deref(), Some("DE"));
        assert_eq!(code(&reader, "81.2.69.160").as_deref(), Some("GB"));
        assert_eq!(code(&reader, "81.2.70.1").as_deref(), Some("DE"));
        assert_eq!(code(&reader, "2a02:1234::1").as_deref(), Some("NL"));
        assert_eq!(code(&reader, "2001:db8:ffff::1").as_deref(), Some("FR"));
        // Outside every network.
        assert_eq!(code(&reader, "82.0.0.1"), None);
        assert_eq!(code(&reader, "2001:db9::1"), None);
        assert!(
            !reader
                .lookup("8.8.8.8".parse().unwrap())
                .unwrap()
                .has_data()
        );
        // The found network is the one written.
        let found = reader.lookup("81.2.69.160".parse().unwrap()).unwrap();
        assert_eq!(found.network().unwrap().to_string(), "81.2.69.0/24");
    }

    #[test]
    fn the_order_of_networks_does_not_matter_the_most_specific_wins() {
        let nets = [
            (net("10.0.0.0/8"), "AA"),
            (net("10.1.0.0/16"), "BB"),
            (net("10.1.2.0/24"), "CC"),
            (net("10.1.2.3/32"), "DD"),
        ];
        let mut reversed = nets;
        reversed.reverse();
        for nets in [nets, reversed] {
            let reader = Reader::from_source(country_db(&nets, "GeoIP2-Country")).unwrap();
            reader.verify().unwrap();
            for (ip, want) in [
                ("10.9.9.9", "AA"),
                ("10.1.9.9", "BB"),
                ("10.1.2.9", "CC"),
                ("10.1.2.3", "DD"),
            ] {
                assert_eq!(code(&reader, ip).as_deref(), Some(want), "{ip}");
            }
        }
    }

    #[test]
    fn a_default_route_covers_everything_else() {
        let reader = Reader::from_source(country_db(
            &[(net("0.0.0.0/0"), "ZZ"), (net("1.2.3.0/24"), "AU")],
            "GeoLite2-Country",
        ))
        .unwrap();
        assert_eq!(code(&reader, "1.2.3.4").as_deref(), Some("AU"));
        assert_eq!(code(&reader, "200.1.1.1").as_deref(), Some("ZZ"));
        // IPv4's ::/96 only: IPv6 addresses are outside it.
        assert_eq!(code(&reader, "2001:db8::1"), None);
    }

    #[test]
    fn an_empty_database_is_valid_and_knows_nothing() {
        let reader = Reader::from_source(MmdbWriter::new("GeoLite2-ASN").build()).unwrap();
        reader.verify().unwrap();
        assert_eq!(reader.metadata().database_type, "GeoLite2-ASN");
        assert_eq!(code(&reader, "1.1.1.1"), None);
    }

    #[test]
    fn every_size_encoding_and_the_extended_types_read_back() {
        // Strings of each size class (< 29, 29..285, 285..65 821, more), integers of each
        // width, nested maps and arrays.
        let long = |n: usize| "x".repeat(n);
        let value = Value::map([
            ("s0", Value::string("")),
            ("s28", Value::String(long(28))),
            ("s29", Value::String(long(29))),
            ("s284", Value::String(long(284))),
            ("s285", Value::String(long(285))),
            ("s65821", Value::String(long(65_821))),
            ("u16", Value::U16(65_535)),
            ("u32", Value::U32(70_000)),
            ("u64", Value::U64(u64::MAX)),
            ("zero", Value::U32(0)),
            (
                "list",
                Value::Array(vec![Value::U16(1), Value::map([("a", Value::string("b"))])]),
            ),
        ]);
        let mut db = MmdbWriter::new("Test");
        db.insert("192.0.2.0".parse().unwrap(), 24, value);
        let reader = Reader::from_source(db.build()).unwrap();
        reader.verify().unwrap();
        let found = reader.lookup("192.0.2.1".parse().unwrap()).unwrap();
        let len = |key: &str| {
            found
                .decode_path::<String>(&path![key])
                .unwrap()
                .unwrap()
                .len()
        };
        for n in [0, 28, 29, 284, 285, 65_821] {
            assert_eq!(len(&format!("s{n}")), n);
        }
        assert_eq!(
            found.decode_path::<u16>(&path!["u16"]).unwrap(),
            Some(65_535)
        );
        assert_eq!(
            found.decode_path::<u32>(&path!["u32"]).unwrap(),
            Some(70_000)
        );
        assert_eq!(
            found.decode_path::<u64>(&path!["u64"]).unwrap(),
            Some(u64::MAX)
        );
        assert_eq!(found.decode_path::<u32>(&path!["zero"]).unwrap(), Some(0));
        assert_eq!(
            found.decode_path::<u16>(&path!["list", 0]).unwrap(),
            Some(1)
        );
        assert_eq!(
            found
                .decode_path::<String>(&path!["list", 1, "a"])
                .unwrap()
                .as_deref(),
            Some("b")
        );
    }

    #[test]
    fn networks_with_equal_values_share_one_record() {
        let one = country_db(&[(net("1.0.0.0/8"), "DE")], "GeoLite2-Country");
        let many = country_db(
            &[
                (net("1.0.0.0/8"), "DE"),
                (net("2.0.0.0/8"), "DE"),
                (net("3.0.0.0/8"), "DE"),
            ],
            "GeoLite2-Country",
        );
        // Only the tree grows: 2 more nodes of 6 bytes per /8 at most, no new data.
        let data = |bytes: &[u8]| {
            let reader = Reader::from_source(bytes.to_vec()).unwrap();
            bytes.len() - reader.metadata().node_count as usize * 6
        };
        assert_eq!(data(&one), data(&many));
    }
}

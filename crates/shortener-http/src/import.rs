//! `shortener import --account <id> FILE.csv`: links from a CSV file into an account, for
//! operators moving an account in (from another instance's export, or from another
//! shortener), through the bulk create's rules and transactions.
//!
//! The columns are found by name, in any order: this service's export (`code`, `url`,
//! `expires_at`, ...) and Shlink's web-client export (`shortCode`, `longUrl`, ...) map
//! cleanly; see [`Columns`]. Columns that links do not have yet (`title`, `tags`,
//! `max_visits`) are read and reported as ignored; columns that belong to the old service
//! (short URL, clicks, creation time) are skipped silently.

use std::collections::BTreeMap;

/// What a header names, by the names each source uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Url,
    Code,
    ExpiresAt,
    /// A field links will have (title, tags, max visits): noted as not imported yet.
    NotYet,
    /// The old service's own facts (its short URL, clicks, dates, domain): not ours to
    /// carry over.
    Theirs,
}

/// Header names, case-insensitive, and what they hold.
const NAMES: &[(&str, Role)] = &[
    ("url", Role::Url),
    ("longurl", Role::Url),
    ("long_url", Role::Url),
    ("target", Role::Url),
    ("code", Role::Code),
    ("shortcode", Role::Code),
    ("short_code", Role::Code),
    ("expires_at", Role::ExpiresAt),
    ("validuntil", Role::ExpiresAt),
    ("title", Role::NotYet),
    ("tags", Role::NotYet),
    ("max_visits", Role::NotYet),
    ("maxvisits", Role::NotYet),
    ("short_url", Role::Theirs),
    ("shorturl", Role::Theirs),
    ("created_at", Role::Theirs),
    ("createdat", Role::Theirs),
    ("datecreated", Role::Theirs),
    ("clicks", Role::Theirs),
    ("visits", Role::Theirs),
    ("domain", Role::Theirs),
];

/// Where a file keeps each field, found from its header row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Columns {
    url: usize,
    code: Option<usize>,
    expires_at: Option<usize>,
    /// Columns read but not imported, by name: links do not have them yet.
    pub not_yet: Vec<String>,
    /// Columns no source we know of writes: ignored, and said so.
    pub unknown: Vec<String>,
}

/// One row as a create body: what the bulk create is given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The target, as written (the create validates it).
    pub url: String,
    /// A custom code, if the row has one.
    pub code: Option<String>,
    /// An expiry, RFC 3339, if the row has one.
    pub expires_at: Option<String>,
}

impl Columns {
    /// Reads the header row. A file without a URL column cannot be imported; a column
    /// named twice is ambiguous.
    pub fn of(header: &csv::StringRecord) -> Result<Columns, String> {
        let mut found: BTreeMap<&'static str, usize> = BTreeMap::new();
        let (mut not_yet, mut unknown) = (Vec::new(), Vec::new());
        for (i, name) in header.iter().enumerate() {
            let key = name.trim().to_ascii_lowercase();
            let role = NAMES.iter().find(|(n, _)| *n == key).map(|(_, r)| *r);
            let slot = match role {
                Some(Role::Url) => "url",
                Some(Role::Code) => "code",
                Some(Role::ExpiresAt) => "expires_at",
                Some(Role::NotYet) => {
                    not_yet.push(name.to_owned());
                    continue;
                }
                Some(Role::Theirs) => continue,
                None => {
                    unknown.push(name.to_owned());
                    continue;
                }
            };
            if found.insert(slot, i).is_some() {
                return Err(format!("more than one column holds the {slot}"));
            }
        }
        let url = *found.get("url").ok_or(
            "no URL column: name it `url` (this service's export) or `longUrl` (Shlink's)",
        )?;
        Ok(Columns {
            url,
            code: found.get("code").copied(),
            expires_at: found.get("expires_at").copied(),
            not_yet,
            unknown,
        })
    }

    /// A data row as a create body; empty cells are absent fields.
    pub fn row(&self, record: &csv::StringRecord) -> Row {
        let cell = |i: Option<usize>| {
            i.and_then(|i| record.get(i))
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        Row {
            url: record.get(self.url).unwrap_or("").trim().to_owned(),
            code: cell(self.code),
            expires_at: cell(self.expires_at),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(cells: &[&str]) -> csv::StringRecord {
        csv::StringRecord::from(cells.to_vec())
    }

    #[test]
    fn this_services_export_maps_whole() {
        let c = Columns::of(&record(&crate::export::COLUMNS)).unwrap();
        assert_eq!(c.not_yet, ["title", "tags", "max_visits"]);
        assert!(c.unknown.is_empty());
        let row = c.row(&record(&[
            "abc",
            "https://sho.rt/abc",
            "https://example.com/",
            "",
            "",
            "2026-01-01T00:00:00Z",
            "2999-01-01T00:00:00.000000Z",
            "",
            "7",
        ]));
        assert_eq!(
            row,
            Row {
                url: "https://example.com/".into(),
                code: Some("abc".into()),
                expires_at: Some("2999-01-01T00:00:00.000000Z".into()),
            }
        );
    }

    #[test]
    fn shlinks_web_export_maps_by_its_own_names() {
        let header = [
            "createdAt",
            "domain",
            "shortCode",
            "shortUrl",
            "longUrl",
            "title",
            "tags",
            "visits",
        ];
        let c = Columns::of(&record(&header)).unwrap();
        assert_eq!(c.not_yet, ["title", "tags"]);
        let row = c.row(&record(&[
            "2024-05-01T10:00:00+00:00",
            "",
            "promo",
            "https://s.example/promo",
            "https://example.com/p",
            "Promo",
            "a|b",
            "12",
        ]));
        assert_eq!(row.code.as_deref(), Some("promo"));
        assert_eq!(row.url, "https://example.com/p");
        assert_eq!(row.expires_at, None);
    }

    #[test]
    fn a_file_without_urls_or_with_two_code_columns_is_refused() {
        assert!(Columns::of(&record(&["code", "clicks"])).is_err());
        assert!(Columns::of(&record(&["url", "code", "shortCode"])).is_err());
        let c = Columns::of(&record(&["URL", "Notes"])).unwrap();
        assert_eq!(c.unknown, ["Notes"]);
        assert_eq!(c.row(&record(&[" https://a.example/ ", "x"])).code, None);
    }
}

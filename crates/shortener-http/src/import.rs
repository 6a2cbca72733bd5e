//! `shortener import --account <id> FILE.csv`: links from a CSV file into an account, for
//! operators moving an account in (from another instance's export, or from another
//! shortener), through the bulk create's rules and transactions.
//!
//! The columns are found by name, in any order: this service's export (`code`, `url`,
//! `expires_at`, ...) and Shlink's web-client export (`shortCode`, `longUrl`, ...) map
//! cleanly; see [`Columns`]. A `tags` cell holds a link's tags split by commas (this
//! service's export), `|` (Shlink's) or whitespace. A `max_visits` (or Shlink's
//! `maxVisits`) cell is the link's visit limit, which starts afresh: the old service's
//! clicks are not carried over, so none of it is used. Columns that belong to the old
//! service (short URL, clicks, creation time) are skipped silently.
//!
//! Passwords are never imported: no export carries one (this service keeps only hashes
//! and exports neither), and a file of plaintext passwords is not something to invite. A
//! `password` column is reported as unknown like any other; protect imported links
//! afterwards with `PATCH /api/v1/links/{code}`.

use std::collections::BTreeMap;
use std::io::Write;

use chrono::{DateTime, Utc};
use shortener_app::{BULK_LIMIT, LinkService, LinkStore, NewLink, UnitOfWork};
use shortener_domain::AccountId;

use crate::{Error, ProcessError};

/// What a header names, by the names each source uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Url,
    Code,
    ExpiresAt,
    Title,
    Tags,
    MaxVisits,
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
    ("title", Role::Title),
    ("tags", Role::Tags),
    ("max_visits", Role::MaxVisits),
    ("maxvisits", Role::MaxVisits),
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
    title: Option<usize>,
    tags: Option<usize>,
    max_visits: Option<usize>,
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
    /// A title, if the row has one.
    pub title: Option<String>,
    /// Tags, as split from the cell (the create validates them).
    pub tags: Vec<String>,
    /// A visit limit, as written, if the row has one.
    pub max_visits: Option<String>,
}

impl Columns {
    /// Reads the header row. A file without a URL column cannot be imported; a column
    /// named twice is ambiguous.
    pub fn of(header: &csv::StringRecord) -> Result<Columns, String> {
        let mut found: BTreeMap<&'static str, usize> = BTreeMap::new();
        let mut unknown = Vec::new();
        for (i, name) in header.iter().enumerate() {
            let key = name.trim().to_ascii_lowercase();
            let role = NAMES.iter().find(|(n, _)| *n == key).map(|(_, r)| *r);
            let slot = match role {
                Some(Role::Url) => "url",
                Some(Role::Code) => "code",
                Some(Role::ExpiresAt) => "expires_at",
                Some(Role::Title) => "title",
                Some(Role::Tags) => "tags",
                Some(Role::MaxVisits) => "max_visits",
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
            title: found.get("title").copied(),
            tags: found.get("tags").copied(),
            max_visits: found.get("max_visits").copied(),
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
            title: cell(self.title),
            tags: cell(self.tags)
                .map(|tags| {
                    tags.split(|c: char| c == ',' || c == '|' || c.is_whitespace())
                        .filter(|t| !t.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
            max_visits: cell(self.max_visits),
        }
    }
}

/// A row that was not imported, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// Its line in the file (the header is line 1).
    pub line: u64,
    /// Its code, or its URL when it has none.
    pub what: String,
    /// The problem the API would have answered for it.
    pub slug: &'static str,
    /// That problem's detail.
    pub detail: String,
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Data rows read.
    pub rows: u64,
    /// Links created.
    pub created: u64,
    /// Rows not imported.
    pub skipped: Vec<Skipped>,
}

/// A row read and turned into a create, or refused before the create saw it.
enum Read {
    Create(u64, String, NewLink),
    Refused(Skipped),
}

fn read_row(columns: &Columns, record: &csv::StringRecord) -> Read {
    let line = record.position().map_or(0, csv::Position::line);
    let row = columns.row(record);
    let what = row.code.clone().unwrap_or_else(|| row.url.clone());
    let expires_at = match row.expires_at.as_deref().map(DateTime::parse_from_rfc3339) {
        None => None,
        Some(Ok(t)) => Some(t.with_timezone(&Utc)),
        Some(Err(e)) => {
            return Read::Refused(Skipped {
                line,
                what,
                slug: "validation",
                detail: format!("expires_at is not an RFC 3339 time: {e}"),
            });
        }
    };
    let max_visits = match row.max_visits.as_deref().map(str::parse::<i64>) {
        None => None,
        Some(Ok(n)) => Some(n),
        Some(Err(_)) => {
            return Read::Refused(Skipped {
                line,
                what,
                slug: "validation",
                detail: "max_visits is not a whole number".into(),
            });
        }
    };
    Read::Create(
        line,
        what,
        NewLink {
            url: row.url,
            code: row.code,
            expires_at,
            tags: row.tags,
            title: row.title,
            max_visits,
            password: None,
        },
    )
}

/// Imports every row of `input` into `account`, [`BULK_LIMIT`] rows per bulk create (one
/// transaction each), telling `progress` after each. A row the bulk create refuses is
/// skipped with its problem; a refusal of a whole batch (the month's allowance, an
/// inactive subscription, the database) stops the import there, and what was created
/// before stays.
pub async fn import<S: LinkStore + UnitOfWork + Clone>(
    links: &LinkService<S>,
    account: AccountId,
    input: impl std::io::Read,
    progress: &mut impl Write,
) -> Result<Summary, ProcessError> {
    let bad_file =
        |e: csv::Error| ProcessError::Invalid(Error::Validation(format!("the CSV file: {e}")));
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(input);
    let columns = Columns::of(reader.headers().map_err(bad_file)?)
        .map_err(|e| ProcessError::Invalid(Error::Validation(e)))?;
    let say = |progress: &mut dyn Write, text: String| -> Result<(), ProcessError> {
        writeln!(progress, "{text}").map_err(ProcessError::Output)
    };
    if !columns.unknown.is_empty() {
        say(
            progress,
            format!("ignored columns: {}", columns.unknown.join(", ")),
        )?;
    }
    let mut summary = Summary::default();
    let mut records = reader.records();
    loop {
        let mut batch = Vec::with_capacity(BULK_LIMIT);
        for record in records.by_ref().take(BULK_LIMIT) {
            summary.rows += 1;
            match read_row(&columns, &record.map_err(bad_file)?) {
                Read::Create(line, what, create) => batch.push((line, what, create)),
                Read::Refused(skipped) => summary.skipped.push(skipped),
            }
        }
        if batch.is_empty() {
            break;
        }
        let (places, creates): (Vec<(u64, String)>, Vec<NewLink>) =
            batch.into_iter().map(|(l, w, c)| ((l, w), c)).unzip();
        let results = links.create_many(account, creates).await.map_err(|e| {
            let (slug, detail) = Error::from(e.clone()).problem();
            let _ = writeln!(
                progress,
                "stopped at line {}: {} ({detail}); {} created before",
                places.first().map_or(0, |p| p.0),
                slug.as_str(),
                summary.created
            );
            ProcessError::App(e)
        })?;
        for ((line, what), result) in places.into_iter().zip(results) {
            match result {
                Ok(_) => summary.created += 1,
                Err(e) => {
                    let (slug, detail) = Error::from(e).problem();
                    summary.skipped.push(Skipped {
                        line,
                        what,
                        slug: slug.as_str(),
                        detail,
                    });
                }
            }
        }
        say(
            progress,
            format!(
                "{} rows: {} created, {} skipped",
                summary.rows,
                summary.created,
                summary.skipped.len()
            ),
        )?;
    }
    Ok(summary)
}

/// The summary as the command prints it: totals, the reasons counted, and the first
/// skipped rows.
pub fn report(summary: &Summary, out: &mut impl Write) -> std::io::Result<()> {
    writeln!(
        out,
        "imported {} of {} rows; {} skipped",
        summary.created,
        summary.rows,
        summary.skipped.len()
    )?;
    let mut reasons: BTreeMap<&str, u64> = BTreeMap::new();
    for s in &summary.skipped {
        *reasons.entry(s.slug).or_default() += 1;
    }
    for (slug, n) in reasons {
        writeln!(out, "  {n} × {slug}")?;
    }
    for s in summary.skipped.iter().take(20) {
        writeln!(
            out,
            "  line {}: {}: {} ({})",
            s.line, s.what, s.slug, s.detail
        )?;
    }
    if summary.skipped.len() > 20 {
        writeln!(out, "  ... and {} more", summary.skipped.len() - 20)?;
    }
    Ok(())
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
        assert!(c.unknown.is_empty());
        let row = c.row(&record(&[
            "abc",
            "https://sho.rt/abc",
            "https://example.com/",
            "Launch, part 2",
            "launch,q4",
            "2026-01-01T00:00:00Z",
            "2999-01-01T00:00:00.000000Z",
            "10",
            "7",
        ]));
        assert_eq!(
            row,
            Row {
                url: "https://example.com/".into(),
                code: Some("abc".into()),
                expires_at: Some("2999-01-01T00:00:00.000000Z".into()),
                title: Some("Launch, part 2".into()),
                tags: vec!["launch".into(), "q4".into()],
                max_visits: Some("10".into()),
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
        assert!(c.unknown.is_empty());
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
        assert_eq!(row.title.as_deref(), Some("Promo"));
        assert_eq!(row.tags, ["a", "b"]);
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

//! What an owner labels a link with: tags to group and filter by, and a title to
//! recognise it by. Neither changes what the link does.

use std::fmt;

use crate::DomainError;

/// The most tags one link carries.
pub const MAX_TAGS: usize = 10;
/// The longest tag, in characters (tags are ASCII, so also in bytes).
pub const MAX_TAG_LEN: usize = 32;
/// The longest title, in characters (Unicode scalar values, not bytes).
pub const MAX_TITLE_CHARS: usize = 200;

/// One tag: 1 to 32 characters of `[a-z0-9_-]`. Tags are compared and filtered by exact
/// text, so one spelling per tag is kept: input is lower-cased (ASCII letters only; a
/// non-ASCII letter is refused rather than folded, so no two inputs that look different
/// become the same tag by a Unicode rule few people know) and then validated.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(String);

impl Tag {
    /// Lower-cases `s` and validates it.
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        let tag = s.to_ascii_lowercase();
        if !(1..=MAX_TAG_LEN).contains(&tag.len()) {
            return Err(DomainError::InvalidTags(
                "must each be 1 to 32 characters long",
            ));
        }
        if !tag
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        {
            return Err(DomainError::InvalidTags(
                "may only contain a-z, 0-9, '_' and '-' (letters are lower-cased first)",
            ));
        }
        Ok(Tag(tag))
    }

    /// A tag read back from storage, which only ever holds tags that parsed.
    pub fn from_storage(s: String) -> Self {
        Tag(s)
    }

    /// The tag.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A link's tags: at most 10 given, each kept once, in the order first given. Repeats
/// (after lower-casing, so `News` and `news` are one tag) are dropped rather than
/// refused: the owner asked for the tag, and has it. The bound is on what is given, as
/// the API's schema states it (`maxItems: 10`), so a request the schema refuses is never
/// accepted because some of its tags repeat.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tags(Vec<Tag>);

impl Tags {
    /// Checks the count, validates each tag and drops repeats.
    pub fn parse<S: AsRef<str>>(tags: &[S]) -> Result<Self, DomainError> {
        if tags.len() > MAX_TAGS {
            return Err(DomainError::InvalidTags("must be at most 10"));
        }
        let mut kept: Vec<Tag> = Vec::with_capacity(tags.len());
        for tag in tags {
            let tag = Tag::parse(tag.as_ref())?;
            if !kept.contains(&tag) {
                kept.push(tag);
            }
        }
        Ok(Tags(kept))
    }

    /// Tags read back from storage, which only ever holds tags that parsed.
    pub fn from_storage(tags: Vec<String>) -> Self {
        Tags(tags.into_iter().map(Tag::from_storage).collect())
    }

    /// The tags, in order.
    pub fn as_slice(&self) -> &[Tag] {
        &self.0
    }

    /// The tags as text, in order.
    pub fn to_strings(&self) -> Vec<String> {
        self.0.iter().map(|t| t.0.clone()).collect()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `tag` is among them.
    pub fn contains(&self, tag: &Tag) -> bool {
        self.0.contains(tag)
    }
}

/// A link's title: the owner's own label, 1 to 200 characters (Unicode scalar values), no
/// control characters (a title is shown in lists and exported to CSV, where a line break
/// or an escape sequence would mislead). Kept exactly as given otherwise: it is the
/// owner's text, not ours to trim. An empty title is refused: "no title" is `null`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Title(String);

impl Title {
    /// Validates a title as given by the owner.
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        let problem = if s.is_empty() {
            Some("must not be empty (null means no title)")
        } else if s.chars().count() > MAX_TITLE_CHARS {
            Some("must be at most 200 characters")
        } else if s.chars().any(char::is_control) {
            Some("must not contain control characters")
        } else {
            None
        };
        match problem {
            Some(p) => Err(DomainError::InvalidTitle(p)),
            None => Ok(Title(s.to_owned())),
        }
    }

    /// A title read back from storage, which only ever holds titles that parsed.
    pub fn from_storage(s: String) -> Self {
        Title(s)
    }

    /// The title.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Title {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_lower_cased_then_validated() {
        assert_eq!(Tag::parse("News_2026-Q4").unwrap().as_str(), "news_2026-q4");
        assert!(Tag::parse("a").is_ok());
        assert!(Tag::parse(&"a".repeat(32)).is_ok());
        assert!(Tag::parse("").is_err());
        assert!(Tag::parse(&"a".repeat(33)).is_err());
        for bad in ["a b", "a.b", "a,b", "é", "\u{212A}", "a\n"] {
            assert!(Tag::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn tag_lists_drop_repeats_keep_order_and_hold_ten() {
        let tags = Tags::parse(&["b", "A", "a", "B", "c"]).unwrap();
        assert_eq!(tags.to_strings(), ["b", "a", "c"]);
        let ten: Vec<String> = (0..10).map(|i| format!("t{i}")).collect();
        assert!(Tags::parse(&ten).is_ok());
        let mut eleven = ten.clone();
        eleven.push("T0".into());
        assert!(
            Tags::parse(&eleven).is_err(),
            "eleven given, even with a repeat"
        );
        assert!(Tags::parse::<&str>(&[]).unwrap().is_empty());
        assert!(Tags::parse(&["ok", "not ok"]).is_err());
    }

    #[test]
    fn titles_are_bounded_in_characters_and_printable() {
        assert!(Title::parse("Launch post").is_ok());
        assert!(Title::parse(" spaced ").is_ok());
        assert!(Title::parse(&"é".repeat(200)).is_ok());
        assert!(Title::parse(&"é".repeat(201)).is_err());
        assert!(Title::parse("").is_err());
        assert!(Title::parse("a\nb").is_err());
        assert!(Title::parse("a\u{1b}[31m").is_err());
        assert!(Title::parse("a\u{85}").is_err());
    }
}

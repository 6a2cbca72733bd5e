use std::fmt;

use rand::RngExt;
use rand::distr::Alphanumeric;

use crate::DomainError;

/// Words that are, or may become, the service's own top-level paths. A code equal to one
/// of them (in any letter case) would shadow a route or confuse a reader.
pub const RESERVED_WORDS: &[&str] = &[
    "api", "admin", "healthz", "readyz", "metrics", "problems", "docs", "openapi", "static",
    "assets", "favicon", "robots",
];
// (`ui`, the web interface's root, is shorter than any code.)

/// Words that name API paths beside `/api/v1/links/{code}` (`/links/bulk`,
/// `/links/export`) and came after codes could be chosen freely: a new custom code may not
/// be one of them ([`ShortCode::parse_custom`]), but a link that already has one keeps it
/// (it still parses, so it still redirects). [`RESERVED_WORDS`] cannot grow that way: a
/// word there does not parse at all, so links already made with it would stop working.
pub const RESERVED_FOR_NEW_CODES: &[&str] = &["bulk", "export"];

const MIN_LEN: usize = 3;
const MAX_LEN: usize = 64;

/// Which code rule was broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeRule {
    /// Shorter than 3 or longer than 64 characters.
    Length,
    /// A character outside `[A-Za-z0-9_-]`.
    Charset,
    /// One of [`RESERVED_WORDS`].
    Reserved,
}

impl fmt::Display for CodeRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CodeRule::Length => "must be 3 to 64 characters long",
            CodeRule::Charset => "may only contain A-Z, a-z, 0-9, '_' and '-'",
            CodeRule::Reserved => "is a word the service reserves for its own paths",
        })
    }
}

/// A short code: the path segment that redirects. Case-sensitive.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ShortCode(String);

fn is_reserved(s: &str) -> bool {
    RESERVED_WORDS.iter().any(|w| w.eq_ignore_ascii_case(s))
}

impl ShortCode {
    /// Length of generated codes: 62^7 ≈ 3.5 × 10^12 possibilities.
    pub const GENERATED_LEN: usize = 7;

    /// Validates a custom code asked for a new link: [`Self::parse`], and not one of
    /// [`RESERVED_FOR_NEW_CODES`].
    pub fn parse_custom(s: &str) -> Result<Self, DomainError> {
        let code = ShortCode::parse(s)?;
        if RESERVED_FOR_NEW_CODES
            .iter()
            .any(|w| w.eq_ignore_ascii_case(s))
        {
            return Err(DomainError::InvalidCode(CodeRule::Reserved));
        }
        Ok(code)
    }

    /// Validates a code chosen by a user or taken from a request path.
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        if !(MIN_LEN..=MAX_LEN).contains(&s.len()) {
            return Err(DomainError::InvalidCode(CodeRule::Length));
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(DomainError::InvalidCode(CodeRule::Charset));
        }
        if is_reserved(s) {
            return Err(DomainError::InvalidCode(CodeRule::Reserved));
        }
        Ok(ShortCode(s.to_owned()))
    }

    /// Draws a random code from `rng`, which must be cryptographically secure so that codes
    /// cannot be predicted from earlier ones. Draws again in the (vanishingly rare) case of
    /// a reserved word: `healthz` and `metrics` are 7 characters long.
    pub fn generate<R: rand::CryptoRng + ?Sized>(rng: &mut R) -> Self {
        loop {
            let s: String = (&mut *rng)
                .sample_iter(Alphanumeric)
                .take(Self::GENERATED_LEN)
                .map(char::from)
                .collect();
            if !is_reserved(&s) {
                return ShortCode(s);
            }
        }
    }

    /// A random code from the thread-local CSPRNG.
    pub fn random() -> Self {
        Self::generate(&mut rand::rng())
    }

    /// The code.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ShortCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn words_reserved_later_refuse_new_codes_but_existing_ones_still_parse() {
        for w in RESERVED_FOR_NEW_CODES
            .iter()
            .flat_map(|w| [w.to_string(), w.to_uppercase()])
        {
            assert_eq!(
                ShortCode::parse_custom(&w),
                Err(DomainError::InvalidCode(CodeRule::Reserved)),
                "{w}"
            );
            assert!(ShortCode::parse(&w).is_ok(), "{w} is still looked up");
        }
        assert!(ShortCode::parse_custom("bulky").is_ok());
    }

    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    fn rule(s: &str) -> Option<CodeRule> {
        match ShortCode::parse(s) {
            Ok(_) => None,
            Err(DomainError::InvalidCode(r)) => Some(r),
            Err(other) => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn length_bounds_are_3_to_64() {
        assert_eq!(rule("ab"), Some(CodeRule::Length));
        assert_eq!(rule("abc"), None);
        assert_eq!(rule(&"a".repeat(64)), None);
        assert_eq!(rule(&"a".repeat(65)), Some(CodeRule::Length));
        assert_eq!(rule(""), Some(CodeRule::Length));
    }

    #[test]
    fn only_url_safe_characters() {
        assert_eq!(rule("a-b_C9"), None);
        for bad in ["a b", "a.b", "a/b", "ab%", "äbc", "ab\n", "<ab>"] {
            assert_eq!(rule(bad), Some(CodeRule::Charset), "{bad:?}");
        }
    }

    #[test]
    fn reserved_words_in_any_case() {
        for w in [
            "api", "API", "Admin", "healthz", "HEALTHZ", "metrics", "readyz", "problems",
        ] {
            assert_eq!(rule(w), Some(CodeRule::Reserved), "{w}");
        }
        assert_eq!(rule("apis"), None);
        assert!(is_reserved("Metrics"));
        assert!(!is_reserved("metrics2"));
    }

    #[test]
    fn generated_codes_are_7_base62_random_and_valid() {
        let codes: HashSet<String> = (0..1000).map(|_| ShortCode::random().0).collect();
        assert_eq!(codes.len(), 1000, "no repeats in 1000 draws");
        for c in &codes {
            assert_eq!(c.len(), ShortCode::GENERATED_LEN);
            assert!(c.bytes().all(|b| b.is_ascii_alphanumeric()));
            assert!(ShortCode::parse(c).is_ok());
        }
    }

    #[test]
    fn codes_are_case_sensitive() {
        assert_ne!(ShortCode::parse("abcD"), ShortCode::parse("abcd"));
    }

    /// A reserved word with each letter in either case.
    fn reserved_in_any_case() -> impl Strategy<Value = String> {
        (0..RESERVED_WORDS.len(), any::<u64>()).prop_map(|(i, case)| {
            RESERVED_WORDS[i]
                .chars()
                .enumerate()
                .map(|(n, c)| {
                    if case >> n & 1 == 1 {
                        c.to_ascii_uppercase()
                    } else {
                        c
                    }
                })
                .collect()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Never panics, and what it accepts is 3 to 64 of `[A-Za-z0-9_-]`, not reserved,
        /// kept exactly as given.
        #[test]
        fn accepted_codes_keep_every_rule(
            s in prop_oneof![any::<String>(), "[A-Za-z0-9_.~ %/é-]{0,70}"],
        ) {
            if let Ok(code) = ShortCode::parse(&s) {
                let c = code.as_str();
                prop_assert_eq!(c, s.as_str());
                prop_assert!((3..=64).contains(&c.len()), "{:?}", c);
                prop_assert!(
                    c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'),
                    "{:?}", c
                );
                prop_assert!(!RESERVED_WORDS.iter().any(|w| w.eq_ignore_ascii_case(c)), "{:?}", c);
                prop_assert_eq!(ShortCode::parse(c), Ok(code.clone()));
            }
        }

        /// Within the alphabet, length and the reserved words are the only rules.
        #[test]
        fn codes_from_the_alphabet_are_accepted_unless_reserved(
            s in "[A-Za-z0-9_-]{0,70}",
            reserved in reserved_in_any_case(),
        ) {
            let expected = if !(3..=64).contains(&s.len()) {
                Some(CodeRule::Length)
            } else if is_reserved(&s) {
                Some(CodeRule::Reserved)
            } else {
                None
            };
            prop_assert_eq!(rule(&s), expected, "{:?}", s);
            prop_assert_eq!(rule(&reserved), Some(CodeRule::Reserved), "{:?}", reserved);
        }
    }
}

//! A link's password: the text its owner chose ([`Password`], which only exists valid
//! and is never shown), and what is kept of it ([`PasswordHash`], opaque here: hashing
//! and checking are the app's, whose hasher is CPU work this crate does not schedule).

use std::fmt;
use std::sync::Arc;

use crate::DomainError;

/// The shortest password, in characters.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// The longest password, in characters: ample for a passphrase, and a bound on what one
/// guess makes the hasher read.
pub const MAX_PASSWORD_CHARS: usize = 128;

/// A link's password as its owner chose it: 8 to 128 characters, counted as Unicode
/// scalar values (not bytes, so `é` is one character and 128 of them fit). Kept exactly
/// as given: no trimming, no normalisation, so what is typed into the form must be the
/// same text. It never shows itself: `Debug` prints no part of it and there is no
/// `Display`, so it cannot reach a log line or an error message by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// Validates a password as given by the owner.
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        let chars = s.chars().count();
        if !(MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&chars) {
            return Err(DomainError::InvalidPassword(
                "must be 8 to 128 characters long (counted as characters, not bytes)",
            ));
        }
        Ok(Password(s.to_owned()))
    }

    /// Whether `s` has a password's length: a guess that has not cannot be right, so it
    /// need not be hashed to be found wrong.
    pub fn could_be(s: &str) -> bool {
        Password::parse(s).is_ok()
    }

    /// The password's UTF-8 bytes, for the hasher.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(..)")
    }
}

/// What is kept of a password: its hash as a PHC string (`$argon2id$v=19$m=...`), which
/// names its own algorithm, parameters and salt. Shared text (`Arc<str>`): the resolve
/// cache and every redirect that checks it hold one copy. Never shown either: the API
/// says only whether a link has one, and the audit log records no part of it.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(Arc<str>);

impl PasswordHash {
    /// A hash as the hasher wrote it, or as storage gives it back.
    pub fn from_storage(phc: impl Into<Arc<str>>) -> Self {
        PasswordHash(phc.into())
    }

    /// The PHC string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_8_to_128_characters() {
        assert!(Password::parse(&"a".repeat(7)).is_err());
        assert!(Password::parse(&"a".repeat(8)).is_ok());
        assert!(Password::parse(&"a".repeat(128)).is_ok());
        assert!(Password::parse(&"a".repeat(129)).is_err());
        assert!(Password::parse("").is_err());
    }

    #[test]
    fn multibyte_characters_count_once() {
        // 7 characters in 14 bytes: too short, however many bytes.
        assert!(Password::parse(&"é".repeat(7)).is_err());
        // 8 characters in 16 bytes, and 128 in 512: both fit.
        assert!(Password::parse(&"é".repeat(8)).is_ok());
        assert!(Password::parse(&"🔑".repeat(128)).is_ok());
        assert!(Password::parse(&"🔑".repeat(129)).is_err());
        // 4 emoji are 16 bytes but 4 characters.
        assert!(Password::parse(&"🔑".repeat(4)).is_err());
    }

    #[test]
    fn kept_exactly_as_given_and_never_shown() {
        let p = Password::parse(" spaced out ").unwrap();
        assert_eq!(p.as_bytes(), b" spaced out ");
        assert_eq!(format!("{p:?}"), "Password(..)");
        let h = PasswordHash::from_storage("$argon2id$v=19$secret");
        assert_eq!(h.as_str(), "$argon2id$v=19$secret");
        assert!(!format!("{h:?}").contains("argon2"));
        assert!(Password::could_be("12345678"));
        assert!(!Password::could_be("1234567"));
    }
}

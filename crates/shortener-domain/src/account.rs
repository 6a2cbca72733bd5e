use std::fmt;

use chrono::{DateTime, Utc};

use crate::{AccountId, DomainError};

/// The longest account name, in characters.
const MAX_NAME_CHARS: usize = 200;

/// A tenant of the service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// UUIDv7, so accounts sort by creation.
    pub id: AccountId,
    /// Display name chosen by the operator.
    pub name: AccountName,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// An account's display name: 1 to 200 characters, no control characters, no surrounding
/// whitespace (operators see it in lists and logs, where invisible differences mislead).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountName(String);

impl AccountName {
    /// Validates a name as given by an operator.
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        let problem = if s.trim().is_empty() {
            Some("must not be empty")
        } else if s.chars().count() > MAX_NAME_CHARS {
            Some("must be at most 200 characters")
        } else if s.chars().any(char::is_control) {
            Some("must not contain control characters")
        } else if s.trim() != s {
            Some("must not start or end with whitespace")
        } else {
            None
        };
        match problem {
            Some(p) => Err(DomainError::InvalidName(p)),
            None => Ok(AccountName(s.to_owned())),
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AccountName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_bounded_and_printable() {
        assert_eq!(
            AccountName::parse("Acme").map(|n| n.to_string()).ok(),
            Some("Acme".to_owned())
        );
        assert!(AccountName::parse("").is_err());
        assert!(AccountName::parse("   ").is_err());
        assert!(AccountName::parse(" Acme").is_err());
        assert!(AccountName::parse("Ac\u{7}me").is_err());
        assert!(AccountName::parse(&"é".repeat(200)).is_ok());
        assert!(AccountName::parse(&"é".repeat(201)).is_err());
    }
}

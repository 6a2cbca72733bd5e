use crate::{CodeRule, UrlRule};

/// The one error type of the domain: which rule a value broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// A target URL broke a rule.
    #[error("invalid URL: {0}")]
    InvalidUrl(UrlRule),
    /// A short code broke a rule.
    #[error("invalid code: {0}")]
    InvalidCode(CodeRule),
    /// An id is not a UUID.
    #[error("invalid id: {0}")]
    InvalidId(&'static str),
    /// An account name broke a rule.
    #[error("name {0}")]
    InvalidName(&'static str),
    /// A link's tags broke a rule.
    #[error("tags {0}")]
    InvalidTags(&'static str),
    /// A link's title broke a rule.
    #[error("title {0}")]
    InvalidTitle(&'static str),
    /// A visit limit out of its bounds.
    #[error("max_visits must be between 1 and {max}", max = crate::link::MaxVisits::MAX)]
    InvalidMaxVisits,
    /// A link's password broke a rule (the message never holds the password).
    #[error("password {0}")]
    InvalidPassword(&'static str),
}

use shortener_domain::DomainError;
use subscriptions::{Refusal, State, SubscriptionError};

/// Every way a use case can fail. The HTTP edge maps each variant to exactly one problem
/// type; storage adapters convert their own errors into `Unavailable` or `Internal`.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// A value broke a domain rule (URL, code, id).
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// Input that is well-formed but not acceptable (e.g. an expiry in the past).
    #[error("{0}")]
    Validation(String),
    /// No such resource, or not this caller's (tenants cannot probe each other).
    #[error("not found")]
    NotFound,
    /// The requested custom code belongs to another link.
    #[error("code `{0}` is already taken")]
    CodeTaken(String),
    /// The link exists but its expiry has passed.
    #[error("this link has expired")]
    LinkExpired,
    /// Missing, unknown or revoked API key.
    #[error("a valid API key is required")]
    Unauthorized,
    /// The key is valid but may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// The subscription does not allow this transition from its current state.
    #[error("cannot {transition} a subscription that is {from}")]
    InvalidTransition {
        /// What was asked.
        transition: &'static str,
        /// The current (effective) state.
        from: State,
    },
    /// `If-Match` named a version that is no longer current.
    #[error("the subscription is at version {current}, not {expected}")]
    VersionMismatch {
        /// What the caller expected.
        expected: i64,
        /// What is stored now.
        current: i64,
    },
    /// The subscription has ended, so nothing new may be created.
    #[error("{0}")]
    SubscriptionInactive(String),
    /// The plan's monthly allowance is used up.
    #[error("{0}")]
    QuotaExceeded(String),
    /// A dependency (the database) could not answer in time; retrying may help.
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// A bug or a broken invariant; details go to the log, not to the caller.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<SubscriptionError> for AppError {
    fn from(e: SubscriptionError) -> Self {
        match e {
            SubscriptionError::InvalidTransition { transition, from } => {
                AppError::InvalidTransition { transition, from }
            }
            other => AppError::Validation(other.to_string()),
        }
    }
}

impl From<Refusal> for AppError {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::Inactive(_) => AppError::SubscriptionInactive(r.to_string()),
            Refusal::NoCustomCodes(_) => AppError::Forbidden(r.to_string()),
            Refusal::QuotaExceeded(_) => AppError::QuotaExceeded(r.to_string()),
        }
    }
}

use std::borrow::Cow;
use std::sync::Arc;

use shortener_domain::DomainError;
use shortener_domain::rate::Policy;
use subscriptions::{Refusal, State, SubscriptionError};

/// What caused a failure below the use cases (a storage error and its own chain). Shared,
/// so one failed lookup can answer every request of its batch with the same cause.
pub type Cause = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// Every way a use case can fail. The HTTP edge maps each variant to exactly one problem
/// type; storage adapters convert their own errors into `Unavailable` or `Internal`,
/// keeping them as the cause, so the whole chain reaches the log at the edge.
#[derive(Debug, Clone, thiserror::Error)]
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
    /// The link has answered as many GET redirects as its `max_visits` allows.
    #[error("this link has reached its visit limit")]
    VisitLimitReached,
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
    /// A rate-limit policy refuses this request for now.
    #[error("too many requests under the `{policy}` policy; retry in {retry_after_secs} s")]
    RateLimited {
        /// The policy whose window is full.
        policy: Policy,
        /// Whole seconds until it has room again.
        retry_after_secs: u32,
    },
    /// An `Idempotency-Key` was sent again with a different request.
    #[error("this Idempotency-Key was first used with a different request")]
    IdempotencyConflict,
    /// An `Idempotency-Key` was sent again while its first request is still running.
    #[error("a request with this Idempotency-Key is still running; retry when it has answered")]
    IdempotencyInProgress,
    /// A dependency (the database) could not answer in time; retrying may help. Says
    /// only what its cause says.
    #[error(transparent)]
    Unavailable(Cause),
    /// A bug or a broken invariant; details go to the log, not to the caller.
    #[error("{context}")]
    Internal {
        /// What was being done, or what is broken.
        context: Cow<'static, str>,
        /// The failure underneath, if any.
        #[source]
        source: Option<Cause>,
    },
}

/// Shows an error and every cause under it on one line (`outer: inner: innermost`), for
/// the log: the one place a failure's whole story is told. A cause whose text its parent
/// already printed is not printed twice.
pub struct Chain<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut told = self.0.to_string();
        f.write_str(&told)?;
        let mut cause = self.0.source();
        while let Some(e) = cause {
            let text = e.to_string();
            if !told.contains(&text) {
                write!(f, ": {text}")?;
            }
            told = text;
            cause = e.source();
        }
        Ok(())
    }
}

impl AppError {
    /// A dependency is unavailable, because of `cause`.
    pub fn unavailable(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        AppError::Unavailable(Arc::from(cause.into()))
    }

    /// Whether this is the final answer to the request it refuses, the same however often
    /// the request is sent: not a failure of ours or of a dependency (those may pass), so
    /// an idempotency key records it.
    pub fn is_final(&self) -> bool {
        !matches!(
            self,
            AppError::Unavailable(_)
                | AppError::Internal { .. }
                | AppError::RateLimited { .. }
                | AppError::IdempotencyInProgress
        )
    }

    /// A broken invariant with nothing underneath.
    pub fn internal(context: impl Into<Cow<'static, str>>) -> Self {
        AppError::Internal {
            context: context.into(),
            source: None,
        }
    }

    /// `context` failed because of `cause`.
    pub fn internal_from(
        context: impl Into<Cow<'static, str>>,
        cause: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        AppError::Internal {
            context: context.into(),
            source: Some(Arc::new(cause)),
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("connection refused")]
    struct Refused;

    #[derive(Debug, thiserror::Error)]
    #[error("the database did not answer")]
    struct Down(#[source] Refused);

    /// An error that repeats its cause's text in its own, as some libraries' do.
    #[derive(Debug, thiserror::Error)]
    #[error("pool: connection refused")]
    struct Repeats(#[source] Refused);

    #[test]
    fn a_chain_tells_every_cause_once() {
        let e = AppError::Unavailable(Arc::new(Down(Refused)));
        assert_eq!(e.to_string(), "the database did not answer");
        assert_eq!(
            Chain(&e).to_string(),
            "the database did not answer: connection refused"
        );
        let e = AppError::internal_from("storage failed", Repeats(Refused));
        assert_eq!(
            Chain(&e).to_string(),
            "storage failed: pool: connection refused"
        );
        let e = AppError::internal("a broken invariant");
        assert_eq!(Chain(&e).to_string(), "a broken invariant");
    }
}

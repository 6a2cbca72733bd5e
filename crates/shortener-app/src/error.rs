use shortener_domain::DomainError;

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
    /// A dependency (the database) could not answer in time; retrying may help.
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// A bug or a broken invariant; details go to the log, not to the caller.
    #[error("internal error: {0}")]
    Internal(String),
}

use shortener_app::AppError;

/// The HTTP crate's one error type: request failures (mapped to problem+json in
/// `problem.rs`) and start-up failures (printed as one line by `main`).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A use case refused or failed.
    #[error(transparent)]
    App(#[from] AppError),
    /// The request itself is malformed (body, query, header).
    #[error("{0}")]
    Validation(String),
    /// The body is over the limit.
    #[error("request body too large")]
    PayloadTooLarge,
    /// No route matches the path.
    #[error("no such route")]
    RouteNotFound,
    /// The path exists, but not with this method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// A configuration value is wrong; the message names the key.
    #[error("configuration: {0}")]
    Config(String),
    /// The service could not start (database, listener).
    #[error("{0}")]
    Startup(String),
}

impl From<shortener_pg::PgError> for Error {
    fn from(e: shortener_pg::PgError) -> Self {
        Error::Startup(e.to_string())
    }
}

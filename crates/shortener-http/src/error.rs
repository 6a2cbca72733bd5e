use shortener_app::AppError;
use shortener_pg::PgError;

/// A request that failed: mapped to problem+json in exactly one place (`problem.rs`), where
/// a failure the caller cannot fix (5xx) is also logged with its whole cause chain.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A use case refused or failed.
    #[error(transparent)]
    App(#[from] AppError),
    /// The request itself is malformed (body, query, header).
    #[error("{0}")]
    Validation(String),
    /// The body is over the route's limit (in bytes).
    #[error("request body too large")]
    PayloadTooLarge(usize),
    /// No route matches the path.
    #[error("no such route")]
    RouteNotFound,
    /// The path exists, but not with this method; the methods it has, for `Allow`.
    #[error("method not allowed")]
    MethodNotAllowed(String),
}

/// What stops the `shortener` process: bad configuration, a start-up that cannot
/// complete, a command that cannot finish. `main` prints it as one line, with its causes.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// A configuration value is wrong; the message names the key.
    #[error("configuration: {0}")]
    Config(String),
    /// Something the process needs could not be had (the listener, the runtime, a task).
    #[error("{context}")]
    Startup {
        /// What was being done.
        context: String,
        /// Why it failed.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Storage failed (connecting, migrating, provisioning the private PostgreSQL).
    #[error(transparent)]
    Storage(#[from] PgError),
    /// A use case failed (installing the bootstrap key, reading the audit log).
    #[error(transparent)]
    App(#[from] AppError),
    /// A command's arguments were refused, as the API refuses the same values.
    #[error(transparent)]
    Invalid(#[from] Error),
    /// Writing a command's output failed (e.g. the reader of a pipe went away).
    #[error("writing the output")]
    Output(#[source] std::io::Error),
}

impl ProcessError {
    /// `context` failed because of `source`.
    pub fn startup(
        context: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        ProcessError::Startup {
            context: context.into(),
            source: source.into(),
        }
    }
}

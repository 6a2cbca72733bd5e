use std::path::PathBuf;
use std::sync::Arc;

/// What went wrong underneath: a diesel, pool or driver error, or a plain message.
pub type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong in the storage layer. diesel and tokio-postgres errors
/// are kept here as the source, so nothing above this crate depends on them while the
/// log still shows them.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    /// The database could not be reached in time (pool wait timeout, connection refused or
    /// closed, statement timeout).
    #[error("the database did not answer")]
    Unavailable(#[source] Source),
    /// A statement failed for a reason the caller cannot fix by retrying.
    #[error("a database statement failed")]
    Query(#[source] diesel::result::Error),
    /// A stored value breaks the rules it was stored under.
    #[error("stored {what} is invalid: {detail}")]
    Corrupt {
        /// What was read.
        what: &'static str,
        /// What is wrong with it.
        detail: String,
    },
    /// Applying or reverting migrations failed.
    #[error("migrations failed")]
    Migration(#[source] Source),
    /// No `initdb`/`pg_ctl` on `PATH` or under `/usr/lib/postgresql/*/bin`.
    #[error(
        "PostgreSQL server binaries (initdb, pg_ctl) not found on PATH or under {searched}: install the PostgreSQL server package (Debian: `apt-get install postgresql`) or set database.url"
    )]
    BinariesNotFound {
        /// Where we looked, for the operator.
        searched: String,
    },
    /// Provisioning the private PostgreSQL failed (initdb, start, stop).
    #[error("local PostgreSQL: {0}")]
    Provision(String),
    /// A filesystem operation failed while provisioning.
    #[error("{path}: {source}")]
    Io {
        /// The path the operation was on.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
}

impl PgError {
    /// The database did not answer, for this reason.
    pub fn unavailable(source: impl Into<Source>) -> Self {
        PgError::Unavailable(source.into())
    }
}

impl From<diesel::result::Error> for PgError {
    fn from(e: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match &e {
            Error::DatabaseError(DatabaseErrorKind::ClosedConnection, _)
            | Error::BrokenTransactionManager => PgError::Unavailable(Box::new(e)),
            // 57014 query_canceled: our statement_timeout fired. The database is too slow
            // right now; that is unavailability, not a bug.
            Error::DatabaseError(_, info) if info.message().contains("statement timeout") => {
                PgError::Unavailable(Box::new(e))
            }
            _ => PgError::Query(e),
        }
    }
}

impl From<PgError> for shortener_app::AppError {
    fn from(e: PgError) -> Self {
        match e {
            PgError::Unavailable(_) => shortener_app::AppError::Unavailable(Arc::new(e)),
            other => shortener_app::AppError::internal_from("storage failed", other),
        }
    }
}

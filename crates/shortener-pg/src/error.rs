use std::path::PathBuf;

/// Everything that can go wrong in the storage layer. diesel and tokio-postgres errors
/// are converted here so that nothing above this crate ever sees them.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    /// The database could not be reached in time (pool wait timeout, connection refused).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A statement failed for a reason the caller cannot fix by retrying.
    #[error("database error: {0}")]
    Query(String),
    /// Applying or reverting migrations failed.
    #[error("migration failed: {0}")]
    Migration(String),
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

impl From<diesel::result::Error> for PgError {
    fn from(e: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match e {
            Error::DatabaseError(DatabaseErrorKind::ClosedConnection, info) => {
                PgError::Unavailable(info.message().to_owned())
            }
            // 57014 query_canceled: our statement_timeout fired. The database is too slow
            // right now; that is unavailability, not a bug.
            Error::DatabaseError(_, info) if info.message().contains("statement timeout") => {
                PgError::Unavailable(info.message().to_owned())
            }
            Error::BrokenTransactionManager => PgError::Unavailable(e.to_string()),
            other => PgError::Query(other.to_string()),
        }
    }
}

impl From<PgError> for shortener_app::AppError {
    fn from(e: PgError) -> Self {
        match e {
            PgError::Unavailable(msg) => shortener_app::AppError::Unavailable(msg),
            other => shortener_app::AppError::Internal(other.to_string()),
        }
    }
}

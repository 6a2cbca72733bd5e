use diesel::connection::SimpleConnection;
use diesel::sql_types::Text;
use diesel::{Connection, QueryableByName};
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::PgError;

/// Every migration in `migrations/`, compiled into the binary so a deployment is one file.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations");

/// Serialises migration runs across service instances starting at the same moment.
const MIGRATION_LOCK: i64 = 0x5348_4f52_5445_4e45; // "SHORTENE"

/// Applies pending migrations; returns the versions applied. Returns early without locking
/// when nothing is pending, so many instances can start at once cheaply.
pub async fn run_pending_migrations(url: &str) -> Result<Vec<String>, PgError> {
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut conn = <AsyncConnectionWrapper<AsyncPgConnection> as Connection>::establish(&url)
            .map_err(PgError::unavailable)?;
        let migration = PgError::Migration;
        if !conn.has_pending_migration(MIGRATIONS).map_err(migration)? {
            return Ok(Vec::new());
        }
        conn.batch_execute(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"))?;
        let applied = conn
            .run_pending_migrations(MIGRATIONS)
            .map(|versions| versions.iter().map(ToString::to_string).collect())
            .map_err(migration);
        conn.batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"))?;
        applied
    })
    .await
    .map_err(|e| PgError::Migration(Box::new(e)))?
}

#[derive(QueryableByName)]
struct Found {
    #[diesel(sql_type = Text)]
    datname: String,
}

/// Creates database `name` through the maintenance database at `admin_url` unless it
/// exists. Tolerates another process creating it at the same moment.
pub async fn ensure_database(admin_url: &str, name: &str) -> Result<(), PgError> {
    let mut conn = AsyncPgConnection::establish(admin_url)
        .await
        .map_err(PgError::unavailable)?;
    let found: Vec<Found> = diesel::sql_query("SELECT datname FROM pg_database WHERE datname = $1")
        .bind::<Text, _>(name)
        .load(&mut conn)
        .await?;
    if found.iter().any(|f| f.datname == name) {
        return Ok(());
    }
    let quoted = name.replace('"', "\"\"");
    match diesel::sql_query(format!("CREATE DATABASE \"{quoted}\""))
        .execute(&mut conn)
        .await
    {
        Ok(_) => Ok(()),
        Err(diesel::result::Error::DatabaseError(_, info))
            if info.message().contains("already exists") =>
        {
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

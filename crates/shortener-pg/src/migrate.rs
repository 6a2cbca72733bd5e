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

/// The group role that migration `000011_service_role` grants exactly what the service
/// does: rows where the service reads and writes them, no ownership, no DDL; on the audit
/// log only `INSERT` and `SELECT`. `serve` connects as a login role that is its member.
pub const SERVICE_ROLE: &str = "shortener_service";

/// Makes login role `login` exist as a member of [`SERVICE_ROLE`] (creating the group role
/// too when missing, as the migration would), through `owner_url` (a role that may create
/// roles). A new role gets `password` when given (for password authentication); an
/// existing one keeps its own. Roles are cluster-wide and other processes may do the same
/// at once: a statement that lost such a race is tried again.
pub async fn ensure_service_login(
    owner_url: &str,
    login: &str,
    password: Option<&str>,
) -> Result<(), PgError> {
    let literal = |s: &str| format!("'{}'", s.replace('\'', "''"));
    let ident = format!("\"{}\"", login.replace('"', "\"\""));
    let password = password.map_or(String::new(), |p| format!(" PASSWORD {}", literal(p)));
    let login = literal(login);
    let sql = format!(
        "DO $ensure$ BEGIN \
           IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{SERVICE_ROLE}') THEN \
             CREATE ROLE {SERVICE_ROLE} NOLOGIN; \
           END IF; \
           IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {login}) THEN \
             CREATE ROLE {ident} LOGIN{password}; \
           END IF; \
           IF NOT pg_has_role({login}, '{SERVICE_ROLE}', 'MEMBER') THEN \
             GRANT {SERVICE_ROLE} TO {ident}; \
           END IF; \
         END $ensure$"
    );
    let mut conn = AsyncPgConnection::establish(owner_url)
        .await
        .map_err(PgError::unavailable)?;
    let mut tries = 0;
    loop {
        match diesel::sql_query(&sql).execute(&mut conn).await {
            Ok(_) => return Ok(()),
            // Another process created or granted the same a moment ago.
            Err(_) if tries < 5 => {
                tries += 1;
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
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

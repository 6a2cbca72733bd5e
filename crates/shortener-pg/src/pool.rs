use std::time::Duration;

use deadpool::Runtime;
use diesel_async::AsyncPgConnection;
use diesel_async::pooled_connection::deadpool::{Object, Pool, PoolError};
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_async::{AsyncConnection, RunQueryDsl};
use futures_util::FutureExt;

use crate::PgError;

/// How the pool behaves. Timeouts are what turn a sick database into a quick 503 instead
/// of requests piling up.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    /// Most connections open at once.
    pub max_size: usize,
    /// Longest wait for a free connection (and for opening one).
    pub wait_timeout: Duration,
    /// `statement_timeout` set on every connection.
    pub statement_timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        PoolSettings {
            max_size: 16,
            wait_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(10),
        }
    }
}

/// The connection pool. Cheap to clone.
#[derive(Clone)]
pub struct Db {
    pool: Pool<AsyncPgConnection>,
}

impl Db {
    /// Builds the pool. No connection is opened until one is needed, so this succeeds even
    /// while the database is down (readiness reports it).
    pub fn connect(url: &str, settings: &PoolSettings) -> Result<Db, PgError> {
        let statement_timeout_ms = settings.statement_timeout.as_millis();
        let mut config = ManagerConfig::default();
        // `Fast` only checks for an open transaction on checkout; the default (`Verified`)
        // runs an extra query on every checkout, which costs the hot path a round trip.
        config.recycling_method = RecyclingMethod::Fast;
        config.custom_setup = Box::new(move |url| {
            async move {
                let mut conn = AsyncPgConnection::establish(url).await?;
                diesel::sql_query(format!("SET statement_timeout = {statement_timeout_ms}"))
                    .execute(&mut conn)
                    .await
                    .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
                Ok(conn)
            }
            .boxed()
        });
        let manager = AsyncDieselConnectionManager::new_with_config(url, config);
        let pool = Pool::builder(manager)
            .max_size(settings.max_size)
            .wait_timeout(Some(settings.wait_timeout))
            .create_timeout(Some(settings.wait_timeout))
            .recycle_timeout(Some(settings.wait_timeout))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| PgError::unavailable(format!("building the pool: {e}")))?;
        Ok(Db { pool })
    }

    /// A connection from the pool.
    pub async fn conn(&self) -> Result<Object<AsyncPgConnection>, PgError> {
        self.pool.get().await.map_err(|e| match e {
            PoolError::Timeout(_) => PgError::unavailable("timed out waiting for a connection"),
            other => PgError::unavailable(other),
        })
    }

    /// Whether the database answers a trivial query now.
    pub async fn ping(&self) -> Result<(), PgError> {
        let mut conn = self.conn().await?;
        diesel::sql_query("SELECT 1")
            .execute(&mut conn)
            .await
            .map(|_| ())
            .map_err(PgError::from)
    }

    /// Makes sure the audit log has a partition for `months` calendar months starting with
    /// `from`'s month (idempotent); returns how many it created. Run at start and daily,
    /// so an entry never finds its month missing.
    pub async fn ensure_audit_partitions(
        &self,
        from: chrono::NaiveDate,
        months: i32,
    ) -> Result<i32, PgError> {
        use diesel::sql_types::{Date, Integer};

        #[derive(diesel::QueryableByName)]
        struct Created {
            #[diesel(sql_type = Integer)]
            created: i32,
        }
        let mut conn = self.conn().await?;
        let row: Created = diesel::sql_query("SELECT audit.ensure_partitions($1, $2) AS created")
            .bind::<Date, _>(from)
            .bind::<Integer, _>(months)
            .get_result(&mut conn)
            .await?;
        Ok(row.created)
    }
}

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use deadpool::Runtime;
use diesel_async::AsyncPgConnection;
use diesel_async::pooled_connection::deadpool::{Object, Pool, PoolError};
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_async::{AsyncConnection, RunQueryDsl};
use futures_util::FutureExt;
use shortener_app::metrics::{self, Counter, Gauge, Histogram, Meter};

use crate::PgError;

/// A pooled connection.
pub(crate) type Conn = Object<AsyncPgConnection>;

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
    metrics: Arc<DbMetrics>,
}

/// What a pool reports of itself, and of the audit entries its transactions commit.
pub(crate) struct DbMetrics {
    wait: Histogram,
    timeouts: Counter,
    pub(crate) audit_entries: Counter,
}

impl Db {
    /// Builds the pool, measured nowhere. No connection is opened until one is needed, so
    /// this succeeds even while the database is down (readiness reports it).
    pub fn connect(url: &str, settings: &PoolSettings) -> Result<Db, PgError> {
        Db::connect_metered(url, settings, "shared", &Meter::off())
    }

    /// Builds the pool named `name` (the `pool` label: `shared`, `lookup`, `clicks`),
    /// measured on `meter`. Pools of one name add up: each HTTP worker has a `lookup` pool
    /// of its own, and operators see them as one.
    pub fn connect_metered(
        url: &str,
        settings: &PoolSettings,
        name: &'static str,
        meter: &Meter,
    ) -> Result<Db, PgError> {
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
        observe_pool(&pool, name, meter);
        let metrics = Arc::new(DbMetrics {
            wait: meter.histogram(&metrics::POOL_WAIT, &[name]),
            timeouts: meter.counter(&metrics::POOL_TIMEOUTS, &[name]),
            audit_entries: meter.counter(&metrics::AUDIT_ENTRIES, &[]),
        });
        Ok(Db { pool, metrics })
    }

    /// A connection from the pool.
    pub async fn conn(&self) -> Result<Conn, PgError> {
        let started = Instant::now();
        let conn = self.pool.get().await;
        self.metrics.wait.record(started.elapsed());
        conn.map_err(|e| match e {
            PoolError::Timeout(_) => {
                self.metrics.timeouts.increment(1);
                PgError::unavailable("timed out waiting for a connection")
            }
            other => PgError::unavailable(other),
        })
    }

    pub(crate) fn metrics(&self) -> &DbMetrics {
        &self.metrics
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

/// Reports `pool`'s state at every scrape of `meter`, added to that of the other pools of
/// its `name`: each adds the change since its last report, and takes back all it added
/// once the pool is gone (a worker that stopped).
fn observe_pool(pool: &Pool<AsyncPgConnection>, name: &'static str, meter: &Meter) {
    let gauges: [Gauge; 4] = [
        meter.gauge(&metrics::POOL_SIZE, &[name]),
        meter.gauge(&metrics::POOL_IDLE, &[name]),
        meter.gauge(&metrics::POOL_MAX, &[name]),
        meter.gauge(&metrics::POOL_WAITING, &[name]),
    ];
    let pool = pool.weak();
    let reported = Mutex::new([0usize; 4]);
    meter.observe(move || {
        let now = match pool.upgrade() {
            Some(pool) => {
                let s = pool.status();
                [s.size, s.available, s.max_size, s.waiting]
            }
            None => [0; 4],
        };
        let mut reported = reported.lock().unwrap_or_else(PoisonError::into_inner);
        for ((gauge, now), before) in gauges.iter().zip(now).zip(reported.iter_mut()) {
            gauge.increment(now as f64 - *before as f64);
            *before = now;
        }
    });
}

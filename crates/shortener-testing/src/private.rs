//! A PostgreSQL server of one test's own, for the tests that take their database away,
//! and optionally a streaming replica of it, for the tests of reads on replicas.

use shortener_pg::PgStore;
use shortener_pg::local::LocalPostgres;

/// A PostgreSQL of a test's own, which it may stop and start again (the shared test server
/// must stay up for every other test), with one migrated database and a store over it
/// whose pool gives up on a connection after 2 s.
pub struct PrivatePostgres {
    dir: std::path::PathBuf,
    local: Option<LocalPostgres>,
    /// The migrated database, as its owner.
    pub url: String,
    /// The same database as the service connects to it (a member of `shortener_service`).
    pub service_url: String,
    /// A store over it, connected as the service.
    pub store: PgStore,
    replica: Option<Replica>,
}

/// A hot standby streaming from the primary.
struct Replica {
    dir: std::path::PathBuf,
    local: Option<LocalPostgres>,
    /// The migrated database on it, as the service connects (read only).
    service_url: String,
    /// The same, as the superuser (for tests' own queries).
    url: String,
}

impl PrivatePostgres {
    /// Provisions the server, creates the database `name` and migrates it.
    pub async fn start(name: &str) -> PrivatePostgres {
        let dir = std::env::temp_dir().join(format!("shortener-outage-{}", uuid::Uuid::new_v4()));
        let local = launch(&dir).await;
        shortener_pg::ensure_database(&local.url("postgres"), name)
            .await
            .unwrap_or_else(|e| panic!("creating {name}: {e}"));
        let url = local.url(name);
        shortener_pg::run_pending_migrations(&url)
            .await
            .unwrap_or_else(|e| panic!("migrating {name}: {e}"));
        shortener_pg::ensure_service_login(&url, "shortener", None)
            .await
            .unwrap_or_else(|e| panic!("creating the service's login role: {e}"));
        let service_url = local.url_as(name, "shortener");
        let settings = shortener_pg::PoolSettings {
            max_size: 2,
            wait_timeout: std::time::Duration::from_secs(2),
            statement_timeout: std::time::Duration::from_secs(5),
        };
        let db = shortener_pg::Db::connect(&service_url, &settings)
            .unwrap_or_else(|e| panic!("pool for {name}: {e}"));
        PrivatePostgres {
            dir,
            local: Some(local),
            url,
            service_url,
            store: PgStore::new(db),
            replica: None,
        }
    }

    /// [`Self::start`], plus a streaming replica (`pg_basebackup -R` of the migrated
    /// primary, on a private socket of its own) that applies what it receives
    /// `apply_delay` late: zero for an ordinary replica, more to make it lag on purpose.
    pub async fn start_replicated(name: &str, apply_delay: std::time::Duration) -> PrivatePostgres {
        let mut pg = PrivatePostgres::start(name).await;
        let dir = pg.dir.with_extension("replica");
        let standby = {
            let primary = pg
                .local
                .take()
                .unwrap_or_else(|| panic!("the primary runs"));
            let dir = dir.clone();
            let (primary, standby) = tokio::task::spawn_blocking(move || {
                let standby = LocalPostgres::start_standby(&dir, &primary, apply_delay, true);
                (primary, standby)
            })
            .await
            .unwrap_or_else(|e| panic!("starting the replica: {e}"));
            pg.local = Some(primary);
            standby.unwrap_or_else(|e| panic!("starting the replica: {e}"))
        };
        pg.replica = Some(Replica {
            dir,
            service_url: standby.url_as(name, "shortener"),
            url: standby.url(name),
            local: Some(standby),
        });
        pg
    }

    /// The replica's URL as the service connects to it.
    pub fn replica_service_url(&self) -> &str {
        &self.replica().service_url
    }

    /// The replica's URL as the superuser, for a test's own reads.
    pub fn replica_url(&self) -> &str {
        &self.replica().url
    }

    /// Stops the replica (its outage).
    pub async fn stop_replica(&mut self) {
        stop(
            self.replica.as_mut().and_then(|r| r.local.take()),
            "the replica",
        )
        .await;
    }

    fn replica(&self) -> &Replica {
        self.replica
            .as_ref()
            .unwrap_or_else(|| panic!("started without a replica: use start_replicated"))
    }

    /// Stops the server (an outage).
    pub async fn stop(&mut self) {
        stop(self.local.take(), "the private PostgreSQL").await;
    }

    /// Starts it again, on the same data.
    pub async fn restart(&mut self) {
        self.local = Some(launch(&self.dir).await);
    }

    /// Stops the server (and its replica) and removes their files.
    pub async fn remove(mut self) {
        if let Some(mut replica) = self.replica.take() {
            if let Some(local) = replica.local.take() {
                let _ = tokio::task::spawn_blocking(move || local.stop()).await;
            }
            let _ = std::fs::remove_dir_all(&replica.dir);
        }
        self.stop().await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Stops `local`, if any, off the async workers (`pg_ctl stop` waits).
async fn stop(local: Option<LocalPostgres>, what: &str) {
    if let Some(local) = local {
        tokio::task::spawn_blocking(move || local.stop())
            .await
            .unwrap_or_else(|e| panic!("stopping {what}: {e}"))
            .unwrap_or_else(|e| panic!("stopping {what}: {e}"));
    }
}

async fn launch(dir: &std::path::Path) -> LocalPostgres {
    let dir = dir.to_owned();
    tokio::task::spawn_blocking(move || {
        LocalPostgres::start_fast(&dir)
            .unwrap_or_else(|e| panic!("starting PostgreSQL in {}: {e}", dir.display()))
    })
    .await
    .unwrap_or_else(|e| panic!("starting the private PostgreSQL: {e}"))
}

/// A test that panics still stops its servers (they run detached and would outlive it).
impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        if let Some(local) = self.replica.as_mut().and_then(|r| r.local.take()) {
            let _ = local.stop();
        }
        if let Some(local) = self.local.take() {
            let _ = local.stop();
        }
    }
}

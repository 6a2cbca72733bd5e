//! A PostgreSQL server of one test's own, for the tests that take their database away.

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
        }
    }

    /// Stops the server (an outage).
    pub async fn stop(&mut self) {
        if let Some(local) = self.local.take() {
            tokio::task::spawn_blocking(move || {
                local
                    .stop()
                    .unwrap_or_else(|e| panic!("stopping the private PostgreSQL: {e}"))
            })
            .await
            .unwrap_or_else(|e| panic!("stopping the private PostgreSQL: {e}"));
        }
    }

    /// Starts it again, on the same data.
    pub async fn restart(&mut self) {
        self.local = Some(launch(&self.dir).await);
    }

    /// Stops the server and removes its files.
    pub async fn remove(mut self) {
        self.stop().await;
        let _ = std::fs::remove_dir_all(&self.dir);
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

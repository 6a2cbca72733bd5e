//! Test data for the storage tests, made through the use cases as the service makes it:
//! `fixtures.account("Acme").await` is a new account's id,
//! `fixtures.account("Acme").with_links(2).await` that and two links of it.

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::Arc;

use shortener_app::{
    AccountService, ClickCounter, Clock, LinkService, NewLink, Redirects, ResolveCache,
};
use shortener_domain::{AccountId, KeyId, Link, UrlPolicy};
use shortener_pg::PgStore;
use subscriptions::Plans;

type Made<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// Makes accounts and links on one store, at the time one clock tells, under one set of
/// plans; one operator key creates every account.
pub struct Fixtures {
    store: PgStore,
    clock: Arc<dyn Clock>,
    plans: Plans,
    admin: KeyId,
}

impl Fixtures {
    /// Fixtures on `store` at `clock`'s time, under the default plans.
    pub fn new(store: &PgStore, clock: Arc<dyn Clock>) -> Fixtures {
        Fixtures {
            store: store.clone(),
            clock,
            plans: Plans::default(),
            admin: KeyId::new(),
        }
    }

    /// The same under `plans`.
    pub fn with_plans(self, plans: Plans) -> Fixtures {
        Fixtures { plans, ..self }
    }

    /// An account named `name`, in the trial every new account starts in.
    pub fn account<'a>(&'a self, name: &'a str) -> NewAccount<'a> {
        NewAccount {
            fixtures: self,
            name,
        }
    }

    /// The link service as the service wires it (over this store, clock and plans).
    pub fn link_service(&self) -> LinkService<PgStore> {
        let policy = UrlPolicy::new(&url::Url::parse("https://sho.rt").unwrap(), false);
        LinkService::new(
            self.store.clone(),
            self.clock.clone(),
            policy,
            self.plans.clone(),
            Arc::new(ResolveCache::new(100)),
        )
    }

    /// An HTTP worker's redirects as the service wires them (answered from `cache`, misses
    /// looked up through this store), counting clicks into `clicks`.
    pub fn redirects(&self, cache: Arc<ResolveCache>, clicks: ClickCounter) -> Redirects {
        Redirects::start(cache, self.store.clone(), 1, clicks, self.clock.clone())
    }
}

/// An account about to be made; `.await` it for its id.
pub struct NewAccount<'a> {
    fixtures: &'a Fixtures,
    name: &'a str,
}

impl<'a> NewAccount<'a> {
    /// With `n` links to https://example.com/ under generated codes.
    pub fn with_links(self, n: usize) -> WithLinks<'a> {
        WithLinks { account: self, n }
    }
}

impl<'a> IntoFuture for NewAccount<'a> {
    type Output = AccountId;
    type IntoFuture = Made<'a, AccountId>;

    fn into_future(self) -> Self::IntoFuture {
        let f = self.fixtures;
        Box::pin(async move {
            AccountService::new(f.store.clone(), f.clock.clone(), f.plans.clone())
                .create(f.admin, self.name)
                .await
                .unwrap()
                .account
                .id
        })
    }
}

/// An account and its links about to be made; `.await` it for both.
pub struct WithLinks<'a> {
    account: NewAccount<'a>,
    n: usize,
}

impl<'a> IntoFuture for WithLinks<'a> {
    type Output = (AccountId, Vec<Link>);
    type IntoFuture = Made<'a, (AccountId, Vec<Link>)>;

    fn into_future(self) -> Self::IntoFuture {
        let f = self.account.fixtures;
        Box::pin(async move {
            let account = self.account.await;
            let links = f.link_service();
            let mut made = Vec::new();
            for _ in 0..self.n {
                let link = links
                    .create(
                        account,
                        NewLink {
                            url: "https://example.com/".into(),
                            ..NewLink::default()
                        },
                    )
                    .await
                    .unwrap();
                made.push(link);
            }
            (account, made)
        })
    }
}

/// A PostgreSQL of a test's own, which it may stop and start again (the shared test server
/// must stay up for every other test), with one migrated database and a store over it
/// whose pool gives up on a connection after 2 s.
pub struct PrivatePostgres {
    dir: std::path::PathBuf,
    local: Option<shortener_pg::local::LocalPostgres>,
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
            .unwrap();
        let url = local.url(name);
        shortener_pg::run_pending_migrations(&url).await.unwrap();
        shortener_pg::ensure_service_login(&url, "shortener", None)
            .await
            .unwrap();
        let service_url = local.url_as(name, "shortener");
        let settings = shortener_pg::PoolSettings {
            max_size: 2,
            wait_timeout: std::time::Duration::from_secs(2),
            statement_timeout: std::time::Duration::from_secs(5),
        };
        let store = PgStore::new(shortener_pg::Db::connect(&service_url, &settings).unwrap());
        PrivatePostgres {
            dir,
            local: Some(local),
            url,
            service_url,
            store,
        }
    }

    /// Stops the server (an outage).
    pub async fn stop(&mut self) {
        if let Some(local) = self.local.take() {
            tokio::task::spawn_blocking(move || local.stop().unwrap())
                .await
                .unwrap();
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

async fn launch(dir: &std::path::Path) -> shortener_pg::local::LocalPostgres {
    let dir = dir.to_owned();
    tokio::task::spawn_blocking(move || {
        shortener_pg::local::LocalPostgres::start_fast(&dir).unwrap()
    })
    .await
    .unwrap()
}

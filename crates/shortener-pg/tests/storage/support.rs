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
        Redirects::start(
            cache,
            self.store.clone(),
            1,
            clicks,
            self.clock.clone(),
            &shortener_app::metrics::Meter::off(),
        )
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

//! Link use cases: shorten, read, list, edit, delete, resolve a redirect, count and report
//! clicks.

use std::sync::Arc;

use chrono::{DateTime, Datelike, Days, NaiveDate, Utc};
use shortener_domain::{AccountId, Link, LinkId, ShortCode, TargetUrl, UrlPolicy};
use subscriptions::Plans;

use audit::{Action, Actor, Changes, Value};

use crate::resolve::{Answer, Lookups, ResolveCache, Resolved};
use crate::{
    AppError, ClickCounter, Clock, Inserted, LinkStore, Page, PageRequest, UnitOfWork, trail,
};

/// Random codes collide with probability n / 62^7; five draws in a row failing means
/// something other than bad luck is wrong.
const GENERATE_ATTEMPTS: usize = 5;
/// Batched miss queries out at once for the service's own [`Redirects`]: the pool's
/// default size.
const LOOKUPS_IN_FLIGHT: usize = 16;
/// The longest stats window, so one request cannot ask for a century of rows.
pub const MAX_STATS_DAYS: u32 = 366;

/// A request to shorten a URL, as the caller sent it (unvalidated).
#[derive(Debug, Clone, Default)]
pub struct NewLink {
    /// The target URL.
    pub url: String,
    /// A custom code, or `None` for a generated one.
    pub code: Option<String>,
    /// When the link stops redirecting.
    pub expires_at: Option<DateTime<Utc>>,
}

/// A partial edit: `None` leaves a field as it is; `expires_at: Some(None)` removes the
/// expiry.
#[derive(Debug, Clone, Default)]
pub struct LinkPatch {
    /// A new target.
    pub url: Option<String>,
    /// A new expiry, or its removal.
    pub expires_at: Option<Option<DateTime<Utc>>>,
}

/// Clicks of one day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DailyClicks {
    /// The UTC day.
    pub day: NaiveDate,
    /// Clicks counted that day.
    pub clicks: i64,
}

/// A link's click report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkStats {
    /// The link's code.
    pub code: ShortCode,
    /// All clicks ever counted.
    pub clicks: i64,
    /// One entry per day of the window, oldest first, zeros included.
    pub daily: Vec<DailyClicks>,
}

/// The link use cases.
pub struct LinkService<S> {
    store: S,
    clock: Arc<dyn Clock>,
    policy: UrlPolicy,
    plans: Arc<Plans>,
    /// Also holds the cache that edits and deletions invalidate.
    redirects: Redirects,
}

/// Follows links: the redirect's path, cache first, then a batched lookup, then the click
/// to the counter. [`LinkService`] has one; an HTTP worker takes its own
/// ([`LinkService::redirects_through`]), whose lookup task and connections live on the
/// worker's runtime, so that a cache miss is answered without waking another thread
/// (profiled: cross-thread wake-ups and frees were a third of the service's CPU on cold
/// redirects). All of them share one cache and one counter.
#[derive(Clone)]
pub struct Redirects {
    cache: Arc<ResolveCache>,
    lookups: Lookups,
    clicks: ClickCounter,
    clock: Arc<dyn Clock>,
}

/// `link` if it exists and is `account`'s; another account's link is `NotFound`, exactly
/// like a missing one.
fn owned(link: Option<Link>, account: AccountId) -> Result<Link, AppError> {
    link.filter(|l| l.account_id == account)
        .ok_or(AppError::NotFound)
}

/// The first day of `now`'s calendar month (UTC): the allowance's period.
fn month_of(now: DateTime<Utc>) -> NaiveDate {
    let day = now.date_naive();
    day.with_day(1).unwrap_or(day)
}

impl<S: LinkStore + UnitOfWork + Clone> LinkService<S> {
    /// Builds the service; `policy` decides which targets are acceptable, `plans` what
    /// each subscription allows, `clicks` where followed links are counted, `cache` what
    /// redirects are answered from. Starts the task that batches cache misses, so it must
    /// be called inside a tokio runtime.
    pub fn new(
        store: S,
        clock: Arc<dyn Clock>,
        policy: UrlPolicy,
        plans: Plans,
        clicks: ClickCounter,
        cache: Arc<ResolveCache>,
    ) -> Self {
        LinkService {
            redirects: Redirects {
                cache,
                lookups: Lookups::start(store.clone(), LOOKUPS_IN_FLIGHT),
                clicks,
                clock: clock.clone(),
            },
            store,
            clock,
            policy,
            plans: Arc::new(plans),
        }
    }

    /// The service's own redirects (misses looked up on the runtime it was built on).
    pub fn redirects(&self) -> Redirects {
        self.redirects.clone()
    }

    /// Redirects whose cache misses go through `store`, at most `in_flight` queries at
    /// once, from a lookup task started on the current tokio runtime (so `store` should
    /// open its connections lazily, on first use: they are then that runtime's too).
    pub fn redirects_through<L: LinkStore + Clone>(&self, store: L, in_flight: usize) -> Redirects {
        Redirects {
            lookups: Lookups::start(store, in_flight),
            ..self.redirects.clone()
        }
    }

    fn future_expiry(
        &self,
        expires_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, AppError> {
        match expires_at {
            Some(at) if at <= now => Err(AppError::Validation(
                "expires_at must lie in the future".into(),
            )),
            other => Ok(other),
        }
    }

    /// Shortens a URL for `account`. A custom code that is taken is a conflict; a generated
    /// one that collides is silently drawn again.
    ///
    /// One transaction reads the subscription (holding it against a racing transition),
    /// asks the subscription's rules for the allowance, inserts the link, records
    /// `link.created` and takes one unit of the allowance; any refusal rolls all of it
    /// back.
    pub async fn create(&self, account: AccountId, req: NewLink) -> Result<Link, AppError> {
        let now = self.clock.now();
        let target = TargetUrl::parse(&req.url, &self.policy)?;
        let custom = req.code.as_deref().map(ShortCode::parse).transpose()?;
        let expires_at = self.future_expiry(req.expires_at, now)?;
        let attempts = if custom.is_some() {
            1
        } else {
            GENERATE_ATTEMPTS
        };
        for _ in 0..attempts {
            let link = Link {
                id: LinkId::new(),
                code: custom.clone().unwrap_or_else(ShortCode::random),
                account_id: account,
                target: target.clone(),
                created_at: now,
                expires_at,
                clicks: 0,
            };
            let plans = self.plans.clone();
            let custom_code = custom.is_some();
            let created = self
                .store
                .run(move |tx| {
                    Box::pin(async move {
                        let sub = tx.subscription_for_share(account).await?.ok_or_else(|| {
                            AppError::Internal("account without a subscription".into())
                        })?;
                        let allowance = sub.subscription.may_create(now, &plans, custom_code)?;
                        if tx.insert_link(&link).await? == Inserted::CodeTaken {
                            return Err(AppError::CodeTaken(link.code.to_string()));
                        }
                        tx.record(trail::entry(
                            now,
                            Actor::Account(account.as_uuid()),
                            Action::LinkCreated,
                            link.code.as_str(),
                            account,
                            Changes::created(&trail::link_fields(&link)),
                        ))
                        .await?;
                        // Last, so the account's counter row (which every create of the
                        // account queues on) is held only until the commit right after.
                        if !tx.take_allowance(account, month_of(now), allowance).await? {
                            return Err(AppError::QuotaExceeded(format!(
                                "this month's allowance of {allowance} links is used up"
                            )));
                        }
                        Ok(link)
                    })
                })
                .await;
            if let Ok(link) = &created {
                // A miss cached here for this code (a custom one, probed before it existed)
                // is wrong now; other instances stop believing theirs within a second.
                self.redirects.cache.invalidate(link.code.as_str());
            }
            match created {
                Err(AppError::CodeTaken(code)) if custom.is_none() => {
                    tracing::warn!(%code, "generated code collided; drawing again");
                }
                other => return other,
            }
        }
        Err(AppError::Internal(format!(
            "{GENERATE_ATTEMPTS} generated codes in a row were taken"
        )))
    }

    /// One of `account`'s live links. Another account's link is `NotFound`, exactly like a
    /// missing one, so codes of other tenants cannot be probed.
    pub async fn get(&self, account: AccountId, code: &str) -> Result<Link, AppError> {
        let code = ShortCode::parse(code).map_err(|_| AppError::NotFound)?;
        owned(self.store.link_by_code(&code).await?, account)
    }

    /// `account`'s live links, newest first.
    pub async fn list(
        &self,
        account: AccountId,
        page: PageRequest,
    ) -> Result<Page<Link>, AppError> {
        let rows = self.store.list_links(account, page).await?;
        Ok(Page::from_overfetch(rows, page.limit, |l| l.id.as_uuid()))
    }

    /// Changes a link's target and/or expiry, and records what changed. A patch that
    /// changes nothing writes nothing (and records nothing).
    pub async fn update(
        &self,
        account: AccountId,
        code: &str,
        patch: LinkPatch,
    ) -> Result<Link, AppError> {
        let now = self.clock.now();
        let code = ShortCode::parse(code).map_err(|_| AppError::NotFound)?;
        // Validate before opening a transaction: bad input never touches the database.
        let target = patch
            .url
            .map(|url| TargetUrl::parse(&url, &self.policy))
            .transpose()?;
        let expires_at = patch
            .expires_at
            .map(|at| self.future_expiry(at, now))
            .transpose()?;
        let key = code.clone();
        let updated = self
            .store
            .run(move |tx| {
                Box::pin(async move {
                    let before = owned(tx.link_for_update(&code).await?, account)?;
                    let mut after = before.clone();
                    if let Some(target) = target {
                        after.target = target;
                    }
                    if let Some(expires_at) = expires_at {
                        after.expires_at = expires_at;
                    }
                    let changes =
                        Changes::diff(&trail::link_fields(&before), &trail::link_fields(&after));
                    if changes.is_empty() {
                        return Ok(after);
                    }
                    if !tx.update_link(&after).await? {
                        return Err(AppError::NotFound);
                    }
                    tx.record(trail::entry(
                        now,
                        Actor::Account(account.as_uuid()),
                        Action::LinkUpdated,
                        after.code.as_str(),
                        account,
                        changes,
                    ))
                    .await?;
                    Ok(after)
                })
            })
            .await;
        self.redirects.cache.invalidate(key.as_str());
        updated
    }

    /// Deletes a link; its code is never handed out again.
    pub async fn delete(&self, account: AccountId, code: &str) -> Result<(), AppError> {
        let now = self.clock.now();
        let code = ShortCode::parse(code).map_err(|_| AppError::NotFound)?;
        let key = code.clone();
        let deleted = self
            .store
            .run(move |tx| {
                Box::pin(async move {
                    let link = owned(tx.link_for_update(&code).await?, account)?;
                    if !tx.delete_link(link.id, now).await? {
                        return Err(AppError::NotFound);
                    }
                    tx.record(trail::entry(
                        now,
                        Actor::Account(account.as_uuid()),
                        Action::LinkDeleted,
                        link.code.as_str(),
                        account,
                        Changes::diff(
                            &[("deleted_at", Value::Null)],
                            &[("deleted_at", now.into())],
                        ),
                    ))
                    .await?;
                    Ok(())
                })
            })
            .await;
        self.redirects.cache.invalidate(key.as_str());
        deleted
    }

    /// Follows a link for a GET ([`Redirects::follow`]).
    pub async fn follow(&self, code: &str) -> Result<Arc<Resolved>, AppError> {
        self.redirects.follow(code).await
    }

    /// Looks a link up for a HEAD ([`Redirects::peek`]).
    pub async fn peek(&self, code: &str) -> Result<Arc<Resolved>, AppError> {
        self.redirects.peek(code).await
    }

    /// Total clicks and one entry per day for the last `days` UTC days (today included).
    pub async fn stats(
        &self,
        account: AccountId,
        code: &str,
        days: u32,
    ) -> Result<LinkStats, AppError> {
        if !(1..=MAX_STATS_DAYS).contains(&days) {
            return Err(AppError::Validation(format!(
                "days must be between 1 and {MAX_STATS_DAYS}"
            )));
        }
        let link = self.get(account, code).await?;
        let to = self.clock.now().date_naive();
        let from = to
            .checked_sub_days(Days::new(u64::from(days) - 1))
            .unwrap_or(NaiveDate::MIN);
        let counted = self.store.daily_clicks(link.id, from, to).await?;
        let daily = from
            .iter_days()
            .take_while(|d| *d <= to)
            .map(|day| DailyClicks {
                day,
                clicks: counted
                    .iter()
                    .find(|(d, _)| *d == day)
                    .map_or(0, |(_, c)| *c),
            })
            .collect();
        Ok(LinkStats {
            code: link.code,
            clicks: link.clicks,
            daily,
        })
    }
}

impl Redirects {
    /// What `GET /{code}` answers: a target, or `NotFound` / `LinkExpired`. Answered from
    /// the resolve cache when it can; anything that is not a well-formed code cannot
    /// exist, so it is `NotFound` without a lookup (and without filling the cache).
    /// Expiry is checked here, at every request, so it needs no invalidation.
    async fn resolve(&self, code: &str) -> Result<(Arc<Resolved>, DateTime<Utc>), AppError> {
        // Only valid codes are ever cached, so a hit needs no parsing (nor its allocation).
        let answer = match self.cache.get(code) {
            Some(answer) => answer,
            None => {
                let code = ShortCode::parse(code).map_err(|_| AppError::NotFound)?;
                let epoch = self.cache.epoch(code.as_str());
                let answer = Answer::of(self.lookups.resolve(code.clone()).await?);
                self.cache.keep(code.as_str(), answer.clone(), epoch);
                answer
            }
        };
        let link = answer.link().ok_or(AppError::NotFound)?;
        let now = self.clock.now();
        if link.expires_at.is_some_and(|at| now >= at) {
            return Err(AppError::LinkExpired);
        }
        Ok((link, now))
    }

    /// Follows a link for a GET: resolves it and counts the click. Counting never waits:
    /// the click goes to the counter task, which writes clicks in batches.
    pub async fn follow(&self, code: &str) -> Result<Arc<Resolved>, AppError> {
        let (link, now) = self.resolve(code).await?;
        self.clicks.count(link.id, now.date_naive());
        Ok(link)
    }

    /// Looks a link up for a HEAD: same answer as [`Self::follow`], no click.
    pub async fn peek(&self, code: &str) -> Result<Arc<Resolved>, AppError> {
        Ok(self.resolve(code).await?.0)
    }
}

#[cfg(test)]
mod tests {
    use shortener_domain::KeyId;

    use super::*;
    use crate::ManualClock;
    use crate::memory::MemoryStore;
    use crate::{AccountService, ClickSettings};

    #[tokio::test]
    async fn a_workers_redirects_ask_their_own_store_and_share_cache_and_counter() {
        let store = MemoryStore::default();
        let clock = ManualClock::new();
        let policy = UrlPolicy::new(&url::Url::parse("https://sho.rt").unwrap(), false);
        let clicks = ClickCounter::start(store.clone(), ClickSettings::default()).0;
        let links = LinkService::new(
            store.clone(),
            clock.clone(),
            policy,
            Plans::default(),
            clicks.clone(),
            Arc::new(ResolveCache::new(100)),
        );
        let accounts = AccountService::new(store.clone(), clock.clone(), Plans::default());
        let account = accounts.create(KeyId::new(), "Acme").await.unwrap().account;
        let new = |url: &str| NewLink {
            url: url.to_owned(),
            code: None,
            expires_at: None,
        };
        let first = links
            .create(account.id, new("https://a.example/1"))
            .await
            .unwrap();
        let second = links
            .create(account.id, new("https://a.example/2"))
            .await
            .unwrap();
        let (first, second) = (first.code.as_str(), second.code.as_str());

        // Misses go to the worker's own store: an empty one knows no link.
        let elsewhere = links.redirects_through(MemoryStore::default(), 1);
        assert!(matches!(
            elsewhere.follow(first).await,
            Err(AppError::NotFound)
        ));
        // What the service has cached, every worker answers from.
        links.follow(second).await.unwrap();
        let worker = links.redirects_through(MemoryStore::default(), 1);
        assert_eq!(
            worker.follow(second).await.unwrap().target.as_str(),
            "https://a.example/2"
        );

        // An edit made by the service reaches the worker, which looks the link up again
        // through its own store (here the real one).
        let worker = links.redirects_through(store.clone(), 1);
        let patch = LinkPatch {
            url: Some("https://b.example/".into()),
            expires_at: None,
        };
        links.update(account.id, second, patch).await.unwrap();
        assert_eq!(
            worker.follow(second).await.unwrap().target.as_str(),
            "https://b.example/"
        );

        // Every follow went to the one counter: the three GETs count, the HEAD and the
        // unanswered GET do not.
        worker.peek(second).await.unwrap();
        clicks.flush().await;
        assert_eq!(links.get(account.id, second).await.unwrap().clicks, 3);
        assert_eq!(links.get(account.id, first).await.unwrap().clicks, 0);
    }
}

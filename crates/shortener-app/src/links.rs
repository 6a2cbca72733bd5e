//! Link use cases: shorten, read, list, edit, delete, and report clicks. The redirect
//! itself is `redirect.rs`'s; these only invalidate its cache after their writes.

use std::sync::Arc;

use chrono::{DateTime, Datelike, Days, NaiveDate, Utc};
use shortener_domain::{AccountId, Link, LinkId, ShortCode, TargetUrl, UrlPolicy, link};
use subscriptions::Plans;

use audit::{Action, Actor, Changes, Value};

use crate::{
    AppError, Clock, Inserted, LinkStore, Page, PageRequest, ResolveCache, UnitOfWork, audit_log,
};

/// Random codes collide with probability n / 62^7; five draws in a row failing means
/// something other than bad luck is wrong.
const GENERATE_ATTEMPTS: usize = 5;
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
    /// The redirects' cache, which every write of a link invalidates.
    cache: Arc<ResolveCache>,
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

impl<S: LinkStore + UnitOfWork> LinkService<S> {
    /// Builds the service; `policy` decides which targets are acceptable, `plans` what
    /// each subscription allows, `cache` is the redirects' cache that writes invalidate.
    pub fn new(
        store: S,
        clock: Arc<dyn Clock>,
        policy: UrlPolicy,
        plans: Plans,
        cache: Arc<ResolveCache>,
    ) -> Self {
        LinkService {
            store,
            clock,
            policy,
            plans: Arc::new(plans),
            cache,
        }
    }

    /// An expiry a link may be given now: none, or one not yet reached.
    fn future_expiry(
        &self,
        expires_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, AppError> {
        if link::is_expired(expires_at, now) {
            return Err(AppError::Validation(
                "expires_at must lie in the future".into(),
            ));
        }
        Ok(expires_at)
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
                        let sub = tx
                            .subscription_for_share(account)
                            .await?
                            .ok_or_else(|| AppError::internal("account without a subscription"))?;
                        let allowance = sub.subscription.may_create(now, &plans, custom_code)?;
                        if tx.insert_link(&link).await? == Inserted::CodeTaken {
                            return Err(AppError::CodeTaken(link.code.to_string()));
                        }
                        tx.record(audit_log::entry(
                            now,
                            Actor::Account(account.as_uuid()),
                            Action::LinkCreated,
                            link.code.as_str(),
                            account,
                            Changes::created(&audit_log::link_fields(&link)),
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
                self.cache.invalidate(link.code.as_str());
            }
            match created {
                Err(AppError::CodeTaken(code)) if custom.is_none() => {
                    tracing::warn!(%code, "generated code collided; drawing again");
                }
                other => return other,
            }
        }
        Err(AppError::internal(format!(
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
        let rows = self.store.list_links(account, page.overfetch()).await?;
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
                    let changes = Changes::diff(
                        &audit_log::link_fields(&before),
                        &audit_log::link_fields(&after),
                    );
                    if changes.is_empty() {
                        return Ok(after);
                    }
                    if !tx.update_link(&after).await? {
                        return Err(AppError::NotFound);
                    }
                    tx.record(audit_log::entry(
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
        self.cache.invalidate(key.as_str());
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
                    tx.record(audit_log::entry(
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
        self.cache.invalidate(key.as_str());
        deleted
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::{MemoryStore, Services};
    use crate::{Anonymous, ClickCounter, ClickSettings, Followed, Redirects};

    fn target(followed: Followed) -> String {
        match followed {
            Followed::Found(link) => link.target.to_string(),
            other => panic!("not found: {other:?}"),
        }
    }

    #[tokio::test]
    async fn workers_share_the_cache_that_writes_invalidate_and_one_counter() {
        let Services {
            store,
            clock,
            cache,
            accounts,
            links,
            admin,
            ..
        } = Services::new();
        let clicks = ClickCounter::start(store.clone(), ClickSettings::default()).0;
        let worker = |store: MemoryStore| {
            Redirects::start(cache.clone(), store, 1, clicks.clone(), clock.clone())
        };
        let account = accounts.create(admin, "Acme").await.unwrap().account;
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
        let elsewhere = worker(MemoryStore::default());
        assert_eq!(
            elsewhere.follow(first, &Anonymous).await.unwrap(),
            Followed::NotFound
        );
        // What one worker has cached, every worker answers from.
        let real = worker(store.clone());
        assert_eq!(
            target(real.follow(second, &Anonymous).await.unwrap()),
            "https://a.example/2"
        );
        assert_eq!(
            target(elsewhere.follow(second, &Anonymous).await.unwrap()),
            "https://a.example/2"
        );

        // An edit made by the service invalidates the shared cache, so a worker looks the
        // link up again through its own store (here the real one).
        let patch = LinkPatch {
            url: Some("https://b.example/".into()),
            expires_at: None,
        };
        links.update(account.id, second, patch).await.unwrap();
        assert_eq!(
            target(real.follow(second, &Anonymous).await.unwrap()),
            "https://b.example/"
        );

        // Every follow went to the one counter: the three GETs that found a link count,
        // the HEAD and the unanswered GET do not.
        real.peek(second, &crate::Anonymous).await.unwrap();
        clicks.flush().await;
        assert_eq!(links.get(account.id, second).await.unwrap().clicks, 3);
        assert_eq!(links.get(account.id, first).await.unwrap().clicks, 0);
    }
}

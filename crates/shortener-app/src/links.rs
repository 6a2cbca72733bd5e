//! Link use cases: shorten, read, list, edit, delete, and report clicks. The redirect
//! itself is `redirect.rs`'s; these only invalidate its cache after their writes.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Datelike, Days, NaiveDate, Utc};
use shortener_domain::visit::Dimension;
use shortener_domain::{
    AccountId, Link, LinkId, MaxVisits, Password, PasswordHash, ShortCode, Tag, Tags, TargetUrl,
    Title, UrlPolicy, VisitLimit, link,
};
use subscriptions::Plans;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

use audit::{Action, Actor, Changes, Value};

use crate::idempotency;
use crate::{
    Answer, AppError, Breakdown, Clock, IdempotencyKey, Inserted, LinkStore, Page, PageRequest,
    Passwords, Recorded, ResolveCache, TOP_VALUES, Tx, UnitOfWork, audit_log,
};

/// Single creates waiting to be grouped, at most: past it, a create waits to be queued.
const GROUP_QUEUE: usize = 4096;

/// Random codes collide with probability n / 62^7; five draws in a row failing means
/// something other than bad luck is wrong.
const GENERATE_ATTEMPTS: usize = 5;
/// The most links one bulk create may ask for.
pub const BULK_LIMIT: usize = 1000;
/// The longest stats window, so one request cannot ask for a century of rows.
pub const MAX_STATS_DAYS: u32 = 366;

/// A request to shorten a URL, as the caller sent it (unvalidated). Its `Debug` shows
/// whether a password was given, never the password.
#[derive(Clone, Default)]
pub struct NewLink {
    /// The target URL.
    pub url: String,
    /// A custom code, or `None` for a generated one.
    pub code: Option<String>,
    /// When the link stops redirecting.
    pub expires_at: Option<DateTime<Utc>>,
    /// The owner's tags, as given (lower-cased and deduplicated by [`Tags::parse`]).
    pub tags: Vec<String>,
    /// The owner's label.
    pub title: Option<String>,
    /// The most GET redirects it may answer (as given: [`MaxVisits::new`] checks it).
    pub max_visits: Option<i64>,
    /// The password visitors must give (validated by [`Password::parse`], then hashed).
    pub password: Option<String>,
}

impl std::fmt::Debug for NewLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewLink")
            .field("url", &self.url)
            .field("code", &self.code)
            .field("expires_at", &self.expires_at)
            .field("tags", &self.tags)
            .field("title", &self.title)
            .field("max_visits", &self.max_visits)
            .field("password", &self.password.as_ref().map(|_| REDACTED))
            .finish()
    }
}

/// What `Debug` shows of a password given in a request.
const REDACTED: &str = "[redacted]";

/// A partial edit: `None` leaves a field as it is; `expires_at: Some(None)` removes the
/// expiry, `tags: Some(vec![])` every tag, `title: Some(None)` the title,
/// `password: Some(None)` the password. Its `Debug` never shows a password.
#[derive(Clone, Default)]
pub struct LinkPatch {
    /// A new target.
    pub url: Option<String>,
    /// A new expiry, or its removal.
    pub expires_at: Option<Option<DateTime<Utc>>>,
    /// The new tags, all of them (they replace the old ones; empty removes them all).
    pub tags: Option<Vec<String>>,
    /// A new title, or its removal.
    pub title: Option<Option<String>>,
    /// A new visit limit, or its removal. Raising or lowering a limit keeps what was used
    /// of it; a limit put on a link that had none starts from the clicks it already had.
    pub max_visits: Option<Option<i64>>,
    /// A new password (replacing any), or its removal.
    pub password: Option<Option<String>>,
}

impl std::fmt::Debug for LinkPatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkPatch")
            .field("url", &self.url)
            .field("expires_at", &self.expires_at)
            .field("tags", &self.tags)
            .field("title", &self.title)
            .field("max_visits", &self.max_visits)
            .field(
                "password",
                &self.password.as_ref().map(|p| p.as_ref().map(|_| REDACTED)),
            )
            .finish()
    }
}

/// The longest search text, in characters: as long as the longest URL.
pub const MAX_SEARCH_CHARS: usize = 2048;

/// Which links a list keeps: those that pass every filter given (none: all of them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkFilter {
    tag: Option<Tag>,
    text: Option<String>,
}

impl LinkFilter {
    /// A filter from a list request: `tag` keeps links carrying that tag (lower-cased
    /// first, like the tags it is compared with); `text` those whose code, URL or title
    /// contains it, ignoring letter case. An empty text filters nothing. Control
    /// characters are refused: no code, URL or title holds one, and a store may use one
    /// to keep the three apart in a single searchable text.
    pub fn parse(tag: Option<&str>, text: Option<&str>) -> Result<LinkFilter, AppError> {
        let tag = tag
            .map(|t| Tag::parse(t).map_err(|e| AppError::Validation(format!("tag: {e}"))))
            .transpose()?;
        let text = text.filter(|q| !q.is_empty());
        if let Some(q) = text {
            if q.chars().count() > MAX_SEARCH_CHARS {
                return Err(AppError::Validation(format!(
                    "q must be at most {MAX_SEARCH_CHARS} characters"
                )));
            }
            if q.chars().any(char::is_control) {
                return Err(AppError::Validation(
                    "q must not contain control characters".into(),
                ));
            }
        }
        Ok(LinkFilter {
            tag,
            text: text.map(str::to_owned),
        })
    }

    /// The tag a link must carry.
    pub fn tag(&self) -> Option<&Tag> {
        self.tag.as_ref()
    }

    /// The text a link's code, URL or title must contain, ignoring letter case.
    pub fn text(&self) -> Option<&str> {
        self.text.as_deref()
    }

    /// Whether `link` passes: the rule, for stores that filter in memory.
    pub fn keeps(&self, link: &Link) -> bool {
        let tagged = self.tag.as_ref().is_none_or(|t| link.tags.contains(t));
        let found = self.text.as_ref().is_none_or(|q| {
            let q = q.to_lowercase();
            [
                link.code.as_str(),
                link.target.as_str(),
                link.title.as_ref().map_or("", |t| t.as_str()),
            ]
            .iter()
            .any(|field| field.to_lowercase().contains(&q))
        });
        tagged && found
    }
}

/// Clicks of one day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DailyClicks {
    /// The UTC day.
    pub day: NaiveDate,
    /// Clicks counted that day.
    pub clicks: i64,
    /// Those of them from clients that identify as bots.
    pub bots: i64,
}

/// A link's click report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkStats {
    /// The link's code.
    pub code: ShortCode,
    /// All clicks ever counted.
    pub clicks: i64,
    /// Clicks of bots in the period.
    pub bots: i64,
    /// One entry per day of the window, oldest first, zeros included.
    pub daily: Vec<DailyClicks>,
    /// Every dimension's breakdown of the period's clicks, in [`Dimension::ALL`] order
    /// (empty for a period without classified clicks).
    pub breakdowns: Vec<Breakdown>,
}

/// What a store reports of an account's clicks.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AccountClicks {
    /// All clicks ever counted, on every link of the account.
    pub total: i64,
    /// Clicks per day of the period; days without are absent.
    pub daily: Vec<(NaiveDate, i64)>,
    /// The live links with the most clicks in the period, most first (ties by code).
    pub top_links: Vec<(String, i64)>,
}

/// An account's click report: [`LinkStats`] over all its links, with its top links.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountStats {
    /// All clicks ever counted, on every link of the account.
    pub clicks: i64,
    /// Clicks of bots in the period.
    pub bots: i64,
    /// One entry per day of the window, oldest first, zeros included.
    pub daily: Vec<DailyClicks>,
    /// Every dimension's breakdown of the period's clicks, in [`Dimension::ALL`] order.
    pub breakdowns: Vec<Breakdown>,
    /// The [`TOP_VALUES`] live links with the most clicks in the period (code, clicks).
    pub top_links: Vec<(String, i64)>,
}

/// The link use cases.
pub struct LinkService<S> {
    store: S,
    clock: Arc<dyn Clock>,
    policy: UrlPolicy,
    plans: Arc<Plans>,
    /// The redirects' cache, which every write of a link invalidates.
    cache: Arc<ResolveCache>,
    /// Where single creates go to be committed with those of the same account that wait
    /// beside them ([`Grouped`]); `None` outside a Tokio runtime, where each commits alone.
    grouped: Option<mpsc::Sender<Job>>,
    /// Hashes the passwords links are given, off the async workers.
    passwords: Arc<Passwords>,
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
    /// each subscription allows, `cache` is the redirects' cache that writes invalidate.
    /// Inside a Tokio runtime (always, in the service) it starts the task that groups
    /// single creates ([`Grouped`]); it ends when the service is dropped.
    pub fn new(
        store: S,
        clock: Arc<dyn Clock>,
        policy: UrlPolicy,
        plans: Plans,
        cache: Arc<ResolveCache>,
    ) -> Self {
        let plans = Arc::new(plans);
        let grouped = tokio::runtime::Handle::try_current().ok().map(|runtime| {
            let (jobs, queue) = mpsc::channel(GROUP_QUEUE);
            let group = Grouped {
                store: store.clone(),
                clock: clock.clone(),
                plans: plans.clone(),
                cache: cache.clone(),
            };
            runtime.spawn(group.run(queue));
            jobs
        });
        LinkService {
            store,
            clock,
            policy,
            plans,
            cache,
            grouped,
            passwords: Arc::new(Passwords::per_core()),
        }
    }

    /// This service hashing passwords on `passwords`: the instance's one hasher, shared
    /// with the redirects (without it, the service has a hasher of its own).
    pub fn with_passwords(self, passwords: Arc<Passwords>) -> Self {
        LinkService { passwords, ..self }
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

    /// Validates a create request and hashes its password: everything that can be done
    /// without the database, and before a transaction is opened (a hash takes tens of
    /// milliseconds). The single and the bulk create both start here, so their rules
    /// cannot drift.
    async fn prepare(&self, req: NewLink, now: DateTime<Utc>) -> Result<Prepared, AppError> {
        let (prepared, password) = self.validate(req, now)?;
        prepared.hashed(password, &self.passwords).await
    }

    /// [`Self::prepare`] without the hashing: the rules, and the password still to hash.
    fn validate(
        &self,
        req: NewLink,
        now: DateTime<Utc>,
    ) -> Result<(Prepared, Option<Password>), AppError> {
        let password = req.password.as_deref().map(Password::parse).transpose()?;
        let prepared = Prepared {
            target: TargetUrl::parse(&req.url, &self.policy)?,
            custom: req
                .code
                .as_deref()
                .map(ShortCode::parse_custom)
                .transpose()?,
            expires_at: self.future_expiry(req.expires_at, now)?,
            tags: Tags::parse(&req.tags)?,
            title: req.title.as_deref().map(Title::parse).transpose()?,
            max_visits: req.max_visits.map(MaxVisits::new).transpose()?,
            password: None,
        };
        Ok((prepared, password))
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
        let prepared = self.prepare(req, now).await?;
        if let Some(jobs) = &self.grouped {
            let (reply, answer) = oneshot::channel();
            let job = Job {
                account,
                prepared,
                reply,
            };
            jobs.send(job)
                .await
                .map_err(|_| AppError::internal("the create grouping task has stopped"))?;
            return answer
                .await
                .map_err(|_| AppError::internal("the create grouping task dropped a create"))?;
        }
        let plans = self.plans.clone();
        let created = self
            .store
            .run(move |tx| Box::pin(create_in(tx, account, prepared, plans, now)))
            .await;
        if let Ok(link) = &created {
            // A miss cached here for this code (a custom one, probed before it existed)
            // is wrong now; other instances stop believing theirs within a second.
            self.cache.invalidate(link.code.as_str());
        }
        created
    }

    /// [`Self::create`] under an idempotency key: the first request with `key` creates
    /// (or is refused) and `render`'s answer to it is recorded in the same transaction;
    /// a retry with the same request gets that answer back. Validation runs inside, so a
    /// refused request is answered the same way every time.
    pub async fn create_once<R>(
        &self,
        account: AccountId,
        req: NewLink,
        key: IdempotencyKey,
        render: R,
    ) -> Result<Answer, AppError>
    where
        R: FnOnce(&Result<Link, AppError>) -> Recorded + Send + 'static,
    {
        let now = self.clock.now();
        let prepared = self.prepare(req, now).await;
        let plans = self.plans.clone();
        let done = idempotency::once(
            &self.store,
            account,
            key,
            now,
            move |tx| Box::pin(async move { create_in(tx, account, prepared?, plans, now).await }),
            render,
        )
        .await?;
        Ok(done.answer(|link| self.cache.invalidate(link.code.as_str())))
    }

    /// Shortens up to [`BULK_LIMIT`] URLs for `account` in one transaction: one result per
    /// request, in order. An item that breaks a rule (the single create's, plus a custom
    /// code used earlier in the same request) is refused on its own and creates nothing;
    /// the others are created together, each with its `link.created` entry. The request as
    /// a whole is refused (nothing created) when the subscription is inactive, or when the
    /// month's allowance cannot cover every item that would be created.
    pub async fn create_many(
        &self,
        account: AccountId,
        reqs: Vec<NewLink>,
    ) -> Result<Vec<Result<Link, AppError>>, AppError> {
        let now = self.clock.now();
        let prepared = self.prepare_many(reqs, now).await?;
        let plans = self.plans.clone();
        let created = self
            .store
            .run(move |tx| Box::pin(create_many_in(tx, account, prepared, plans, now)))
            .await;
        if let Ok(items) = &created {
            self.invalidate_created(items);
        }
        created
    }

    /// [`Self::create_many`] under an idempotency key, as [`Self::create_once`] is.
    pub async fn create_many_once<R>(
        &self,
        account: AccountId,
        reqs: Vec<NewLink>,
        key: IdempotencyKey,
        render: R,
    ) -> Result<Answer, AppError>
    where
        R: FnOnce(&Result<Vec<Result<Link, AppError>>, AppError>) -> Recorded + Send + 'static,
    {
        let now = self.clock.now();
        let prepared = self.prepare_many(reqs, now).await;
        let plans = self.plans.clone();
        let done = idempotency::once(
            &self.store,
            account,
            key,
            now,
            move |tx| {
                Box::pin(async move { create_many_in(tx, account, prepared?, plans, now).await })
            },
            render,
        )
        .await?;
        Ok(done.answer(|items| self.invalidate_created(items)))
    }

    /// Validates each item of a bulk create on its own (the count is the request's), then
    /// hashes the passwords of the valid ones, as many at once as the hasher allows.
    async fn prepare_many(
        &self,
        reqs: Vec<NewLink>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Result<Prepared, AppError>>, AppError> {
        if !(1..=BULK_LIMIT).contains(&reqs.len()) {
            return Err(AppError::Validation(format!(
                "links must hold 1 to {BULK_LIMIT} items, not {}",
                reqs.len()
            )));
        }
        let mut items: Vec<Result<Prepared, AppError>> = Vec::with_capacity(reqs.len());
        let mut hashing = JoinSet::new();
        for (i, req) in reqs.into_iter().enumerate() {
            match self.validate(req, now) {
                Ok((prepared, Some(password))) => {
                    let passwords = self.passwords.clone();
                    hashing.spawn(async move { (i, passwords.hash(password).await) });
                    items.push(Ok(prepared));
                }
                Ok((prepared, None)) => items.push(Ok(prepared)),
                Err(e) => items.push(Err(e)),
            }
        }
        while let Some(done) = hashing.join_next().await {
            let (i, hash) =
                done.map_err(|e| AppError::internal(format!("a password hash stopped: {e}")))?;
            if let Some(Ok(prepared)) = items.get_mut(i) {
                prepared.password = Some(hash?);
            }
        }
        Ok(items)
    }

    fn invalidate_created(&self, items: &[Result<Link, AppError>]) {
        for link in items.iter().flatten() {
            self.cache.invalidate(link.code.as_str());
        }
    }

    /// One of `account`'s live links. Another account's link is `NotFound`, exactly like a
    /// missing one, so codes of other tenants cannot be probed.
    pub async fn get(&self, account: AccountId, code: &str) -> Result<Link, AppError> {
        let code = ShortCode::parse(code).map_err(|_| AppError::NotFound)?;
        owned(self.store.link_by_code(&code).await?, account)
    }

    /// `account`'s live links that pass `filter`, newest first. The position of a page is
    /// a link's id whatever the filter, so a cursor followed with the same filter walks
    /// the filtered list without gaps or repeats.
    pub async fn list(
        &self,
        account: AccountId,
        filter: &LinkFilter,
        page: PageRequest,
    ) -> Result<Page<Link>, AppError> {
        let rows = self
            .store
            .list_links(account, filter, page.overfetch())
            .await?;
        Ok(Page::from_overfetch(rows, page.limit, |l| l.id.as_uuid()))
    }

    /// Changes a link's target, expiry, tags, title, visit limit and/or password, and
    /// records what changed. A patch that changes nothing writes nothing (and records
    /// nothing); a new password always changes something (it is hashed with a new salt,
    /// and its owner asked for it), and is recorded without any part of it or of its hash.
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
        let tags = patch.tags.as_deref().map(Tags::parse).transpose()?;
        let title = patch
            .title
            .map(|title| title.as_deref().map(Title::parse).transpose())
            .transpose()?;
        let max_visits = patch
            .max_visits
            .map(|max| max.map(MaxVisits::new).transpose())
            .transpose()?;
        let password = patch
            .password
            .map(|p| p.as_deref().map(Password::parse).transpose())
            .transpose()?;
        // Hashed before the transaction opens: the row lock is not held for a hash.
        let password: Option<Option<PasswordHash>> = match password {
            Some(Some(p)) => Some(Some(self.passwords.hash(p).await?)),
            Some(None) => Some(None),
            None => None,
        };
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
                    if let Some(tags) = tags {
                        after.tags = tags;
                    }
                    if let Some(title) = title {
                        after.title = title;
                    }
                    if let Some(max) = max_visits {
                        after.visit_limit = match (max, before.visit_limit) {
                            (None, _) => None,
                            (Some(max), Some(limit)) => Some(limit.with_max(max)),
                            (Some(max), None) => Some(VisitLimit::starting(max, before.clicks)),
                        };
                    }
                    let replaced = matches!(password, Some(Some(_)));
                    if let Some(password) = password {
                        after.password = password;
                    }
                    let changes = audit_log::link_changes(&before, &after, replaced);
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
        let (from, to) = self.period(days)?;
        let link = self.get(account, code).await?;
        let counted = self.store.daily_clicks(link.id, from, to).await?;
        let visits = self
            .store
            .link_visits(link.id, from, to, TOP_VALUES)
            .await?;
        let daily = daily_series(from, to, &counted, &visits.bots_daily);
        Ok(LinkStats {
            code: link.code,
            clicks: link.clicks,
            bots: daily.iter().map(|d| d.bots).sum(),
            daily,
            breakdowns: every_dimension(visits.breakdowns),
        })
    }

    /// [`Self::stats`] over every link of the account, with its top links of the period.
    pub async fn account_stats(
        &self,
        account: AccountId,
        days: u32,
    ) -> Result<AccountStats, AppError> {
        let (from, to) = self.period(days)?;
        let clicks = self
            .store
            .account_clicks(account, from, to, TOP_VALUES)
            .await?;
        let visits = self
            .store
            .account_visits(account, from, to, TOP_VALUES)
            .await?;
        let daily = daily_series(from, to, &clicks.daily, &visits.bots_daily);
        Ok(AccountStats {
            clicks: clicks.total,
            bots: daily.iter().map(|d| d.bots).sum(),
            daily,
            breakdowns: every_dimension(visits.breakdowns),
            top_links: clicks.top_links,
        })
    }

    /// The last `days` UTC days, today included.
    fn period(&self, days: u32) -> Result<(NaiveDate, NaiveDate), AppError> {
        if !(1..=MAX_STATS_DAYS).contains(&days) {
            return Err(AppError::Validation(format!(
                "days must be between 1 and {MAX_STATS_DAYS}"
            )));
        }
        let to = self.clock.now().date_naive();
        let from = to
            .checked_sub_days(Days::new(u64::from(days) - 1))
            .unwrap_or(NaiveDate::MIN);
        Ok((from, to))
    }
}

/// One entry per day of `from..=to`, zeros included, from the days that have clicks.
fn daily_series(
    from: NaiveDate,
    to: NaiveDate,
    clicks: &[(NaiveDate, i64)],
    bots: &[(NaiveDate, i64)],
) -> Vec<DailyClicks> {
    let on = |series: &[(NaiveDate, i64)], day: NaiveDate| {
        series
            .iter()
            .find(|(d, _)| *d == day)
            .map_or(0, |(_, c)| *c)
    };
    from.iter_days()
        .take_while(|d| *d <= to)
        .map(|day| DailyClicks {
            day,
            clicks: on(clicks, day),
            bots: on(bots, day),
        })
        .collect()
}

/// `found` completed with an empty breakdown for each dimension it lacks, in order.
fn every_dimension(found: Vec<Breakdown>) -> Vec<Breakdown> {
    Dimension::ALL
        .into_iter()
        .map(|dimension| {
            found
                .iter()
                .find(|b| b.dimension == dimension)
                .cloned()
                .unwrap_or(Breakdown {
                    dimension,
                    top: Vec::new(),
                    other: 0,
                })
        })
        .collect()
}

/// A create request that passed validation.
#[derive(Debug, Clone)]
struct Prepared {
    target: TargetUrl,
    custom: Option<ShortCode>,
    expires_at: Option<DateTime<Utc>>,
    tags: Tags,
    title: Option<Title>,
    max_visits: Option<MaxVisits>,
    /// The password's hash, once [`Prepared::hashed`].
    password: Option<PasswordHash>,
}

impl Prepared {
    /// This request with `password` hashed into it.
    async fn hashed(
        mut self,
        password: Option<Password>,
        passwords: &Passwords,
    ) -> Result<Prepared, AppError> {
        if let Some(password) = password {
            self.password = Some(passwords.hash(password).await?);
        }
        Ok(self)
    }

    /// The link it makes: its custom code, or a freshly drawn one.
    fn link(&self, account: AccountId, now: DateTime<Utc>) -> Link {
        Link {
            id: LinkId::new(),
            code: self.custom.clone().unwrap_or_else(ShortCode::random),
            account_id: account,
            target: self.target.clone(),
            created_at: now,
            expires_at: self.expires_at,
            clicks: 0,
            tags: self.tags.clone(),
            title: self.title.clone(),
            visit_limit: self.max_visits.map(|max| VisitLimit::starting(max, 0)),
            password: self.password.clone(),
        }
    }
}

/// `link.created` for `link`, made by its account.
fn created_entry(link: &Link, now: DateTime<Utc>) -> audit::AuditEntry {
    audit_log::entry(
        now,
        Actor::Account(link.account_id.as_uuid()),
        Action::LinkCreated,
        link.code.as_str(),
        link.account_id,
        Changes::created(&audit_log::link_fields(link)),
    )
}

/// The single create's transaction. A generated code that collides is drawn again here:
/// the insert that found it taken wrote nothing.
async fn create_in(
    tx: &mut dyn Tx,
    account: AccountId,
    prepared: Prepared,
    plans: Arc<Plans>,
    now: DateTime<Utc>,
) -> Result<Link, AppError> {
    let sub = tx
        .subscription_for_share(account)
        .await?
        .ok_or_else(|| AppError::internal("account without a subscription"))?;
    let allowance = sub
        .subscription
        .may_create(now, &plans, prepared.custom.is_some())?;
    let mut attempts = 0;
    let link = loop {
        let link = prepared.link(account, now);
        if tx.insert_link(&link).await? == Inserted::Created {
            break link;
        }
        if prepared.custom.is_some() {
            return Err(AppError::CodeTaken(link.code.to_string()));
        }
        attempts += 1;
        if attempts == GENERATE_ATTEMPTS {
            return Err(AppError::internal(format!(
                "{GENERATE_ATTEMPTS} generated codes in a row were taken"
            )));
        }
        tracing::warn!(code = %link.code, "generated code collided; drawing again");
    };
    tx.record(created_entry(&link, now)).await?;
    // Last, so the account's counter row (which every create of the account queues on)
    // is held only until the commit right after.
    if !tx
        .take_allowance(account, month_of(now), allowance, 1)
        .await?
    {
        return Err(AppError::QuotaExceeded(format!(
            "this month's allowance of {allowance} links is used up"
        )));
    }
    Ok(link)
}

/// The bulk create's transaction: the subscription once, every valid item's link in one
/// insert (then again for the generated codes that collided), their entries in one
/// more, and the allowance for all of them at once, last.
async fn create_many_in(
    tx: &mut dyn Tx,
    account: AccountId,
    prepared: Vec<Result<Prepared, AppError>>,
    plans: Arc<Plans>,
    now: DateTime<Utc>,
) -> Result<Vec<Result<Link, AppError>>, AppError> {
    let sub = tx
        .subscription_for_share(account)
        .await?
        .ok_or_else(|| AppError::internal("account without a subscription"))?;
    // Inactive (or an allowance of nothing) refuses the whole request.
    let allowance = sub.subscription.may_create(now, &plans, false)?;
    // A plan without custom codes refuses each item that has one.
    let customs = sub
        .subscription
        .may_create(now, &plans, true)
        .map_err(AppError::from);
    let mut seen = std::collections::HashSet::new();
    let mut results: Vec<Result<Option<Link>, AppError>> = Vec::with_capacity(prepared.len());
    let mut pending: Vec<(usize, Link)> = Vec::new();
    for (i, item) in prepared.iter().enumerate() {
        let check = item.clone().and_then(|p| {
            if let Some(code) = &p.custom {
                customs.clone()?;
                if !seen.insert(code.clone()) {
                    return Err(AppError::CodeTaken(code.to_string()));
                }
            }
            Ok(p)
        });
        results.push(check.map(|p| {
            pending.push((i, p.link(account, now)));
            None
        }));
    }
    for attempt in 1..=GENERATE_ATTEMPTS {
        if pending.is_empty() {
            break;
        }
        let links: Vec<Link> = pending.iter().map(|(_, l)| l.clone()).collect();
        let inserted: std::collections::HashSet<LinkId> =
            tx.insert_links(&links).await?.into_iter().collect();
        let mut again = Vec::new();
        for (i, link) in pending {
            let custom = prepared[i].as_ref().is_ok_and(|p| p.custom.is_some());
            if inserted.contains(&link.id) {
                results[i] = Ok(Some(link));
            } else if custom {
                results[i] = Err(AppError::CodeTaken(link.code.to_string()));
            } else if attempt == GENERATE_ATTEMPTS {
                return Err(AppError::internal(format!(
                    "{GENERATE_ATTEMPTS} generated codes in a row were taken"
                )));
            } else {
                tracing::warn!(code = %link.code, "generated code collided; drawing again");
                again.push((
                    i,
                    Link {
                        code: ShortCode::random(),
                        ..link
                    },
                ));
            }
        }
        pending = again;
    }
    let created: Vec<&Link> = results
        .iter()
        .filter_map(|r| r.as_ref().ok()?.as_ref())
        .collect();
    if !created.is_empty() {
        let units = created.len() as u64;
        tx.record_all(created.iter().map(|l| created_entry(l, now)).collect())
            .await?;
        if !tx
            .take_allowance(account, month_of(now), allowance, units)
            .await?
        {
            return Err(AppError::QuotaExceeded(format!(
                "this month's allowance of {allowance} links cannot cover {units} more"
            )));
        }
    }
    results
        .into_iter()
        .map(|r| match r {
            Ok(Some(link)) => Ok(Ok(link)),
            Ok(None) => Err(AppError::internal(
                "a bulk item was neither created nor refused",
            )),
            Err(e) => Ok(Err(e)),
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Single creates, grouped by account.

/// One single create, validated, waiting for its account's next transaction.
struct Job {
    account: AccountId,
    prepared: Prepared,
    reply: oneshot::Sender<Result<Link, AppError>>,
}

/// Commits the single creates of one account that wait at the same moment together, in
/// one transaction, as a bulk create does, and answers each as if it had been alone.
///
/// Every create of an account takes a unit of its monthly allowance, a row update that
/// holds the row until its commit is on disk: alone, the creates of one account queue on
/// that row one commit at a time. This owning task instead runs one transaction per
/// account at a time and gives the next one everything that arrived meanwhile: a lone
/// create starts at once, a crowd shares a commit. Each create's answer is the single
/// create's: its own refusal (a taken code, a plan without custom codes) is its own; a
/// whole-transaction refusal (an inactive subscription, the database away) is everyone's;
/// and when the allowance cannot cover the whole group, the group runs again one create at
/// a time, in arrival order, so exactly the creates the allowance covers succeed.
struct Grouped<S> {
    store: S,
    clock: Arc<dyn Clock>,
    plans: Arc<Plans>,
    cache: Arc<ResolveCache>,
}

impl<S: LinkStore + UnitOfWork + Clone> Grouped<S> {
    async fn run(self, mut queue: mpsc::Receiver<Job>) {
        let group = Arc::new(self);
        let mut waiting: HashMap<AccountId, Vec<Job>> = HashMap::new();
        let mut in_flight = std::collections::HashSet::new();
        let mut running: JoinSet<AccountId> = JoinSet::new();
        let mut open = true;
        while open || !running.is_empty() {
            tokio::select! {
                job = queue.recv(), if open => match job {
                    Some(job) => waiting.entry(job.account).or_default().push(job),
                    None => open = false,
                },
                Some(done) = running.join_next(), if !running.is_empty() => {
                    if let Ok(account) = done {
                        in_flight.remove(&account);
                    }
                }
            }
            // Everything queued by now joins its account's group.
            while let Ok(job) = queue.try_recv() {
                waiting.entry(job.account).or_default().push(job);
            }
            let ready: Vec<AccountId> = waiting
                .keys()
                .filter(|a| !in_flight.contains(*a))
                .copied()
                .collect();
            for account in ready {
                let mut jobs = waiting.remove(&account).unwrap_or_default();
                if jobs.len() > BULK_LIMIT {
                    waiting.insert(account, jobs.split_off(BULK_LIMIT));
                }
                in_flight.insert(account);
                let group = group.clone();
                running.spawn(async move {
                    group.commit(account, jobs).await;
                    account
                });
            }
        }
    }

    /// One transaction for `jobs` (or, past the allowance, one each), and their answers.
    async fn commit(&self, account: AccountId, jobs: Vec<Job>) {
        let now = self.clock.now();
        if jobs.len() > 1 {
            let prepared: Vec<Result<Prepared, AppError>> =
                jobs.iter().map(|j| Ok(j.prepared.clone())).collect();
            let plans = self.plans.clone();
            let outcome = self
                .store
                .run(move |tx| Box::pin(create_many_in(tx, account, prepared, plans, now)))
                .await;
            match outcome {
                Ok(items) => {
                    for (job, item) in jobs.into_iter().zip(items) {
                        self.answer(job, item);
                    }
                    return;
                }
                // Some of them may fit: one at a time, below.
                Err(AppError::QuotaExceeded(_)) => {}
                Err(e) => {
                    for job in jobs {
                        self.answer(job, Err(e.clone()));
                    }
                    return;
                }
            }
        }
        for job in jobs {
            let (prepared, plans) = (job.prepared.clone(), self.plans.clone());
            let outcome = self
                .store
                .run(move |tx| Box::pin(create_in(tx, account, prepared, plans, now)))
                .await;
            self.answer(job, outcome);
        }
    }

    fn answer(&self, job: Job, outcome: Result<Link, AppError>) {
        if let Ok(link) = &outcome {
            // A miss cached here for this code (a custom one, probed before it existed)
            // is wrong now; other instances stop believing theirs within a second.
            self.cache.invalidate(link.code.as_str());
        }
        // The caller may have gone (its request cancelled): the link stands anyway.
        let _ = job.reply.send(outcome);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::{MemoryStore, Services};
    use crate::{Anonymous, ClickCounter, ClickSettings, Followed, Redirects};

    /// An HTTP worker's redirects over `store`, sharing `cache` and `clock`, counting into
    /// `clicks`.
    fn worker(
        cache: &Arc<crate::ResolveCache>,
        clock: &Arc<crate::ManualClock>,
        store: MemoryStore,
        clicks: &ClickCounter,
    ) -> Redirects {
        Redirects::start(
            cache.clone(),
            store,
            4,
            clicks.clone(),
            clock.clone(),
            &crate::metrics::Meter::off(),
        )
    }

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
        let worker = |store: MemoryStore| worker(&cache, &clock, store, &clicks);
        let account = accounts.create(admin, "Acme").await.unwrap().account;
        let new = |url: &str| NewLink {
            url: url.to_owned(),
            code: None,
            expires_at: None,
            ..Default::default()
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
            ..Default::default()
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

    #[tokio::test]
    async fn a_limited_link_redirects_exactly_its_visits_until_its_limit_is_raised() {
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
        // One worker's redirects (not `Sync`), followed concurrently on its own thread.
        let redirects = std::rc::Rc::new(worker(&cache, &clock, store.clone(), &clicks));
        let local = tokio::task::LocalSet::new();
        let account = accounts.create(admin, "Acme").await.unwrap().account;
        let limited = |max: i64| NewLink {
            url: "https://a.example/".into(),
            max_visits: Some(max),
            ..Default::default()
        };
        for bad in [0, -1, 1_000_000_001] {
            let refused = links.create(account.id, limited(bad)).await;
            assert!(
                matches!(refused, Err(AppError::Domain(_))),
                "{bad}: {refused:?}"
            );
        }
        let link = links.create(account.id, limited(10)).await.unwrap();
        assert_eq!(link.visit_limit.map(|l| l.left()), Some(10));
        let code = link.code.as_str().to_owned();
        let follows = |n: usize| {
            let mut all = tokio::task::JoinSet::new();
            for _ in 0..n {
                let (redirects, code) = (redirects.clone(), code.clone());
                all.spawn_local_on(
                    async move { redirects.follow(&code, &Anonymous).await.unwrap() },
                    &local,
                );
            }
            async move {
                let mut outcomes = Vec::new();
                while let Some(followed) = all.join_next().await {
                    outcomes.push(followed.unwrap().outcome());
                }
                let found = outcomes.iter().filter(|o| **o == "found").count();
                let spent = outcomes.iter().filter(|o| **o == "spent").count();
                (found, spent)
            }
        };
        assert_eq!(local.run_until(follows(100)).await, (10, 90));
        // A HEAD takes nothing and tells the truth; a spent link stays spent.
        assert_eq!(
            redirects.peek(&code, &Anonymous).await.unwrap(),
            Followed::Spent
        );
        let read = links.get(account.id, &code).await.unwrap();
        assert_eq!(read.visit_limit.map(|l| (l.used, l.left())), Some((10, 0)));

        // Raised: what was used stays used.
        let raise = |max: Option<i64>| LinkPatch {
            max_visits: Some(max),
            ..Default::default()
        };
        links
            .update(account.id, &code, raise(Some(15)))
            .await
            .unwrap();
        assert!(matches!(
            redirects.peek(&code, &Anonymous).await.unwrap(),
            Followed::Found(_)
        ));
        assert_eq!(local.run_until(follows(8)).await, (5, 3));
        // Removed: the link redirects like any other.
        links.update(account.id, &code, raise(None)).await.unwrap();
        assert_eq!(local.run_until(follows(3)).await, (3, 0));
        // Set again on a link with clicks: they count toward it.
        clicks.flush().await;
        let again = links
            .update(account.id, &code, raise(Some(20)))
            .await
            .unwrap();
        assert_eq!(again.visit_limit.map(|l| l.left()), Some(2));
        assert_eq!(local.run_until(follows(4)).await, (2, 2));
    }

    fn plans(links_per_month: u64) -> Plans {
        let trial = subscriptions::Plan {
            links_per_month,
            custom_codes: true,
            ..subscriptions::Plan::default_for(subscriptions::PlanName::Trial)
        };
        Plans::default().with(trial)
    }

    fn new(url: &str, code: Option<&str>) -> NewLink {
        NewLink {
            url: url.to_owned(),
            code: code.map(str::to_owned),
            expires_at: None,
            ..Default::default()
        }
    }

    fn created(store: &MemoryStore) -> usize {
        let s = store.snapshot();
        let entries = s
            .audit
            .iter()
            .filter(|e| e.action == Action::LinkCreated)
            .count();
        assert_eq!(entries, s.links.len(), "one entry per link");
        s.links.len()
    }

    #[tokio::test]
    async fn bulk_items_are_answered_one_by_one_in_order() {
        let Services {
            store,
            clock,
            accounts,
            links,
            admin,
            ..
        } = Services::with_plans(plans(100));
        let account = accounts.create(admin, "Acme").await.unwrap().account.id;
        links
            .create(account, new("https://a.example/", Some("taken")))
            .await
            .unwrap();
        let past = NewLink {
            expires_at: Some(clock.now() - chrono::Duration::hours(1)),
            ..new("https://a.example/", None)
        };
        let items = links
            .create_many(
                account,
                vec![
                    new("https://a.example/1", None),
                    new("not a url", None),
                    new("https://a.example/2", Some("mine")),
                    new("https://a.example/3", Some("mine")),
                    new("https://a.example/4", Some("taken")),
                    past,
                    new("https://a.example/5", Some("x")),
                ],
            )
            .await
            .unwrap();
        assert!(items[0].is_ok());
        assert!(matches!(items[1], Err(AppError::Domain(_))));
        assert_eq!(items[2].as_ref().unwrap().code.as_str(), "mine");
        assert!(matches!(&items[3], Err(AppError::CodeTaken(c)) if c == "mine"));
        assert!(matches!(&items[4], Err(AppError::CodeTaken(c)) if c == "taken"));
        assert!(matches!(items[5], Err(AppError::Validation(_))));
        assert!(matches!(items[6], Err(AppError::Domain(_))));
        assert_eq!(created(&store), 3);
    }

    #[tokio::test]
    async fn bulk_creates_nothing_when_the_allowance_cannot_cover_it() {
        let Services {
            store,
            accounts,
            links,
            admin,
            ..
        } = Services::with_plans(plans(3));
        let account = accounts.create(admin, "Acme").await.unwrap().account.id;
        links
            .create(account, new("https://a.example/", None))
            .await
            .unwrap();
        let three = (0..3)
            .map(|i| new(&format!("https://a.example/{i}"), None))
            .collect();
        let refused = links.create_many(account, three).await;
        assert!(
            matches!(refused, Err(AppError::QuotaExceeded(_))),
            "{refused:?}"
        );
        assert_eq!(created(&store), 1);
        let two = (0..2)
            .map(|i| new(&format!("https://a.example/{i}"), None))
            .collect();
        assert!(links.create_many(account, two).await.is_ok());
        assert_eq!(created(&store), 3);
        assert!(matches!(
            links.create_many(account, vec![]).await,
            Err(AppError::Validation(_))
        ));
    }

    fn render(outcome: &Result<Link, AppError>) -> Recorded {
        match outcome {
            Ok(link) => Recorded {
                status: 201,
                body: link.code.to_string(),
            },
            Err(e) => Recorded {
                status: 400,
                body: e.to_string(),
            },
        }
    }

    #[tokio::test]
    async fn a_key_answers_its_request_once_and_records_refusals_without_their_writes() {
        let Services {
            store,
            accounts,
            links,
            admin,
            ..
        } = Services::with_plans(plans(1));
        let account = accounts.create(admin, "Acme").await.unwrap().account.id;
        let key = |body: &str| IdempotencyKey::new("k1", body.as_bytes()).unwrap();
        let first = links
            .create_once(account, new("https://a.example/", None), key("a"), render)
            .await
            .unwrap();
        assert!(!first.replayed);
        let again = links
            .create_once(account, new("https://a.example/", None), key("a"), render)
            .await
            .unwrap();
        assert_eq!((again.recorded, again.replayed), (first.recorded, true));
        assert!(matches!(
            links
                .create_once(account, new("https://b.example/", None), key("b"), render)
                .await,
            Err(AppError::IdempotencyConflict)
        ));
        assert_eq!(created(&store), 1);

        // The allowance (one) is used up: the refusal is recorded, the link it inserted
        // before the allowance said no is rewound.
        let other = |body: &str| IdempotencyKey::new("k2", body.as_bytes()).unwrap();
        let refused = links
            .create_once(account, new("https://c.example/", None), other("c"), render)
            .await
            .unwrap();
        assert_eq!(refused.recorded.status, 400);
        assert_eq!(created(&store), 1);
        let replayed = links
            .create_once(account, new("https://c.example/", None), other("c"), render)
            .await
            .unwrap();
        assert_eq!(
            (replayed.recorded, replayed.replayed),
            (refused.recorded, true)
        );
    }

    /// A visitor as a browser or a crawler presents itself.
    struct Browser {
        agent: &'static str,
        referrer: Option<&'static str>,
    }

    impl crate::Visitor for Browser {
        fn address(&self) -> Option<std::net::IpAddr> {
            Some([192, 0, 2, 7].into())
        }
        fn user_agent(&self) -> Option<&[u8]> {
            Some(self.agent.as_bytes())
        }
        fn referrer(&self) -> Option<&[u8]> {
            self.referrer.map(str::as_bytes)
        }
    }

    #[tokio::test]
    async fn stats_break_the_clicks_down_by_what_the_visits_were_recorded_as() {
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
        let classifier = crate::Classifier::new(None, Some(Arc::from("sho.rt")));
        let redirects = worker(&cache, &clock, store.clone(), &clicks).with_visits(classifier);
        let account = accounts.create(admin, "Acme").await.unwrap().account;
        let link = links
            .create(
                account.id,
                NewLink {
                    url: "https://a.example/".into(),
                    code: None,
                    expires_at: None,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
        let iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";
        let google = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
        let visits = [
            (firefox, Some("https://news.ycombinator.com/item?id=1")),
            (firefox, Some("https://NEWS.ycombinator.com:443/")),
            (iphone, None),
            (iphone, Some("https://sho.rt/abc")),
            (google, Some("not a url")),
        ];
        for (agent, referrer) in visits {
            let followed = redirects
                .follow(link.code.as_str(), &Browser { agent, referrer })
                .await
                .unwrap();
            assert!(matches!(followed, Followed::Found(_)));
        }
        // HEAD is not a visit.
        redirects
            .peek(
                link.code.as_str(),
                &Browser {
                    agent: firefox,
                    referrer: None,
                },
            )
            .await
            .unwrap();
        clicks.flush().await;

        let stats = links
            .stats(account.id, link.code.as_str(), 7)
            .await
            .unwrap();
        assert_eq!(stats.clicks, 5);
        assert_eq!(stats.bots, 1);
        assert_eq!(stats.daily.last().map(|d| (d.clicks, d.bots)), Some((5, 1)));
        let of = |d: Dimension| {
            let b = stats.breakdowns.iter().find(|b| b.dimension == d).unwrap();
            assert_eq!(b.total(), 5, "{d:?} adds up to the clicks");
            b.top.clone()
        };
        let pairs = |v: &[(&str, i64)]| -> Vec<(String, i64)> {
            v.iter().map(|(s, n)| ((*s).to_owned(), *n)).collect()
        };
        assert_eq!(
            of(Dimension::Referrer),
            pairs(&[("(direct)", 3), ("news.ycombinator.com", 2)])
        );
        assert_eq!(of(Dimension::Country), pairs(&[("(unknown)", 5)]));
        assert_eq!(
            of(Dimension::Browser),
            pairs(&[("Firefox", 2), ("Safari", 2), ("Other", 1)])
        );
        assert_eq!(
            of(Dimension::Os),
            pairs(&[("Linux", 2), ("iOS", 2), ("Other", 1)])
        );
        assert_eq!(
            of(Dimension::Device),
            pairs(&[("desktop", 2), ("mobile", 2), ("bot", 1)])
        );
    }

    #[test]
    fn a_breakdown_keeps_the_top_values_and_sums_the_rest() {
        let values = (1..=13).map(|n| (format!("v{n:02}"), n)).collect();
        let b = Breakdown::of(Dimension::Referrer, values, 10);
        assert_eq!(b.top.len(), 10);
        assert_eq!(b.top[0], ("v13".to_owned(), 13));
        assert_eq!(b.top[9], ("v04".to_owned(), 4));
        assert_eq!(b.other, 1 + 2 + 3);
        assert_eq!(b.total(), (1..=13).sum::<i64>());
        let tie = Breakdown::of(Dimension::Os, vec![("b".into(), 1), ("a".into(), 1)], 10);
        assert_eq!(tie.top, vec![("a".to_owned(), 1), ("b".to_owned(), 1)]);
    }

    #[test]
    fn a_filter_takes_a_tag_as_tags_are_written_and_refuses_texts_no_link_can_hold() {
        let f = LinkFilter::parse(Some("Launch"), Some("")).unwrap();
        assert_eq!(f.tag().map(|t| t.as_str()), Some("launch"));
        assert_eq!(f.text(), None, "an empty q filters nothing");
        assert_eq!(
            LinkFilter::parse(None, None).unwrap(),
            LinkFilter::default()
        );
        for (tag, q) in [
            (Some(""), None),
            (Some("no way"), None),
            (None, Some("a\tb")),
            (None, Some("a\nb")),
        ] {
            assert!(
                matches!(LinkFilter::parse(tag, q), Err(AppError::Validation(_))),
                "{tag:?} {q:?}"
            );
        }
        let long = "é".repeat(MAX_SEARCH_CHARS);
        assert!(LinkFilter::parse(None, Some(&long)).is_ok());
        assert!(LinkFilter::parse(None, Some(&format!("{long}é"))).is_err());
    }

    #[tokio::test]
    async fn lists_keep_what_the_filter_keeps_page_after_page() {
        let Services {
            accounts,
            links,
            admin,
            ..
        } = Services::with_plans(plans(100));
        let account = accounts.create(admin, "Acme").await.unwrap().account.id;
        for i in 0..9 {
            let tags = if i % 3 == 0 {
                vec!["Odd".to_owned()]
            } else {
                vec![]
            };
            let title = (i % 2 == 0).then(|| format!("Needle {i}"));
            let req = NewLink {
                url: format!("https://example.com/{i}"),
                tags,
                title,
                ..Default::default()
            };
            links.create(account, req).await.unwrap();
        }
        let filter = LinkFilter::parse(Some("odd"), Some("NEEDLE")).unwrap();
        let mut after = None;
        let mut seen = Vec::new();
        loop {
            let page = links
                .list(account, &filter, PageRequest { after, limit: 1 })
                .await
                .unwrap();
            seen.extend(page.items.iter().map(|l| l.target.to_string()));
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        assert_eq!(seen, ["https://example.com/6", "https://example.com/0"]);
    }
}

//! An in-memory implementation of the ports, for unit tests of the use cases only. Storage
//! behaviour is tested against real PostgreSQL in shortener-pg and shortener-http.
//!
//! A unit of work runs on a copy of the state that replaces the original only when the
//! work succeeds: the all-or-nothing of a transaction, for tests that run one use case at
//! a time (there is no isolation between concurrent units).
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use audit::{AuditEntry, AuditLog, AuditQuery, AuditRecorder, BoxFuture};
use chrono::{DateTime, NaiveDate, Utc};
use shortener_domain::visit::{Device, Dimension};
use shortener_domain::{Account, AccountId, KeyId, Link, LinkId, ShortCode};
use subscriptions::{State as SubState, Subscription, Versioned};

use crate::{AccountClicks, Breakdown, Stored, VisitReport};
use crate::{
    AccountStore, AccountView, AccountWrites, AppError, ClickBatch, ClickStore, IdempotencyWrites,
    Inserted, KeyOnFile, KeyOwner, KeyStore, KeyWrites, LinkStore, LinkWrites, NameSearch,
    PageRequest, Recorded, Revoked, Rewind, SessionStore, StoredKey, StoredSession,
    SubscriptionStore, SubscriptionWrites, Tx, Unfolded, UnitOfWork,
};

#[derive(Default, Clone)]
pub struct State {
    pub links: Vec<(Link, bool)>,
    daily: HashMap<(LinkId, NaiveDate), i64>,
    /// Visit counts by link, dimension, day and value.
    visits: HashMap<(LinkId, Dimension, NaiveDate, String), i64>,
    accounts: Vec<AccountView>,
    keys: Vec<StoredKey>,
    pub sessions: Vec<StoredSession>,
    usage: HashMap<(AccountId, NaiveDate), u64>,
    click_batches: std::collections::HashSet<uuid::Uuid>,
    answers: HashMap<(AccountId, String), ([u8; 32], Recorded)>,
    pub audit: Vec<AuditEntry>,
}

#[derive(Clone, Default)]
pub struct MemoryStore(Arc<Mutex<State>>);

impl MemoryStore {
    /// A copy of everything, for assertions.
    pub fn snapshot(&self) -> State {
        self.0.lock().unwrap().clone()
    }

    /// Stores a key directly (test set-up, not a use case).
    pub fn put_key(&self, key: &StoredKey) {
        self.0.lock().unwrap().keys.push(key.clone());
    }
}

/// The state a unit of work changes, committed by swapping it in; and its mark.
pub struct MemoryTx(State, Option<State>);

impl UnitOfWork for MemoryStore {
    async fn run<T, F>(&self, work: F) -> Result<T, AppError>
    where
        T: Send + 'static,
        F: for<'t> FnOnce(&'t mut dyn Tx) -> BoxFuture<'t, Result<T, AppError>> + Send + 'static,
    {
        let mut tx = MemoryTx(self.snapshot(), None);
        let out = work(&mut tx).await?;
        *self.0.lock().unwrap() = tx.0;
        Ok(out)
    }
}

fn ready<'a, T: Send + 'a>(v: T) -> BoxFuture<'a, T> {
    Box::pin(std::future::ready(v))
}

impl LinkWrites for MemoryTx {
    fn insert_link<'a>(&'a mut self, link: &'a Link) -> BoxFuture<'a, Result<Inserted, AppError>> {
        let s = &mut self.0;
        if s.links.iter().any(|(l, _)| l.code == link.code) {
            return ready(Ok(Inserted::CodeTaken));
        }
        s.links.push((link.clone(), false));
        ready(Ok(Inserted::Created))
    }

    fn insert_links<'a>(
        &'a mut self,
        links: &'a [Link],
    ) -> BoxFuture<'a, Result<Vec<LinkId>, AppError>> {
        let mut ids = Vec::new();
        for link in links {
            let s = &mut self.0;
            if !s.links.iter().any(|(l, _)| l.code == link.code) {
                s.links.push((link.clone(), false));
                ids.push(link.id);
            }
        }
        ready(Ok(ids))
    }

    fn link_for_update<'a>(
        &'a mut self,
        code: &'a ShortCode,
    ) -> BoxFuture<'a, Result<Option<Link>, AppError>> {
        ready(Ok(self
            .0
            .links
            .iter()
            .find(|(l, deleted)| &l.code == code && !deleted)
            .map(|(l, _)| l.clone())))
    }

    fn update_link<'a>(&'a mut self, link: &'a Link) -> BoxFuture<'a, Result<bool, AppError>> {
        ready(Ok(
            match self.0.links.iter_mut().find(|(l, d)| l.id == link.id && !d) {
                Some((l, _)) => {
                    l.target = link.target.clone();
                    l.expires_at = link.expires_at;
                    l.tags = link.tags.clone();
                    l.title = link.title.clone();
                    l.visit_limit = link.visit_limit;
                    true
                }
                None => false,
            },
        ))
    }

    fn delete_link(
        &mut self,
        id: LinkId,
        _at: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<bool, AppError>> {
        ready(Ok(
            match self.0.links.iter_mut().find(|(l, d)| l.id == id && !d) {
                Some((_, d)) => {
                    *d = true;
                    true
                }
                None => false,
            },
        ))
    }
}

impl AccountWrites for MemoryTx {
    fn insert_account<'a>(
        &'a mut self,
        account: &'a Account,
        subscription: &'a Versioned,
    ) -> BoxFuture<'a, Result<(), AppError>> {
        self.0.accounts.push(AccountView {
            account: account.clone(),
            subscription: subscription.clone(),
        });
        ready(Ok(()))
    }
}

impl KeyWrites for MemoryTx {
    fn insert_key<'a>(&'a mut self, key: &'a StoredKey) -> BoxFuture<'a, Result<(), AppError>> {
        self.0.keys.push(key.clone());
        ready(Ok(()))
    }

    fn revoke_key(
        &mut self,
        account: AccountId,
        id: KeyId,
        at: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<Revoked, AppError>> {
        let found = self
            .0
            .keys
            .iter_mut()
            .find(|k| k.id == id && k.owner == KeyOwner::Account(account));
        ready(Ok(match found {
            None => Revoked::NoSuchKey,
            Some(k) if k.revoked_at.is_some() => Revoked::Already,
            Some(k) => {
                k.revoked_at = Some(at);
                Revoked::Now
            }
        }))
    }
}

impl SubscriptionWrites for MemoryTx {
    fn subscription_for_share(
        &mut self,
        account: AccountId,
    ) -> BoxFuture<'_, Result<Option<Versioned>, AppError>> {
        self.subscription_for_update(account)
    }

    fn subscription_for_update(
        &mut self,
        account: AccountId,
    ) -> BoxFuture<'_, Result<Option<Versioned>, AppError>> {
        ready(Ok(self
            .0
            .accounts
            .iter()
            .find(|v| v.account.id == account)
            .map(|v| v.subscription.clone())))
    }

    fn replace_subscription<'a>(
        &'a mut self,
        account: AccountId,
        expected: i64,
        next: &'a Subscription,
        _at: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<bool, AppError>> {
        ready(Ok(
            match self
                .0
                .accounts
                .iter_mut()
                .find(|v| v.account.id == account && v.subscription.version == expected)
            {
                Some(v) => {
                    v.subscription = Versioned {
                        subscription: next.clone(),
                        version: expected + 1,
                    };
                    true
                }
                None => false,
            },
        ))
    }

    fn take_allowance(
        &mut self,
        account: AccountId,
        month: NaiveDate,
        allowance: u64,
        units: u64,
    ) -> BoxFuture<'_, Result<bool, AppError>> {
        let used = self.0.usage.entry((account, month)).or_default();
        let taken = *used + units <= allowance;
        if taken {
            *used += units;
        }
        ready(Ok(taken))
    }
}

impl Rewind for MemoryTx {
    fn mark(&mut self) -> BoxFuture<'_, Result<(), AppError>> {
        self.1 = Some(self.0.clone());
        ready(Ok(()))
    }

    fn rewind(&mut self) -> BoxFuture<'_, Result<(), AppError>> {
        match &self.1 {
            Some(marked) => {
                self.0 = marked.clone();
                ready(Ok(()))
            }
            None => ready(Err(AppError::internal("rewind without a mark"))),
        }
    }
}

/// No other unit of work runs beside one here, so every lock is free.
impl IdempotencyWrites for MemoryTx {
    fn try_lock_key<'a>(
        &'a mut self,
        _account: AccountId,
        _key: &'a str,
    ) -> BoxFuture<'a, Result<bool, AppError>> {
        ready(Ok(true))
    }

    fn recorded_answer<'a>(
        &'a mut self,
        account: AccountId,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Stored>, AppError>> {
        ready(Ok(self.0.answers.get(&(account, key.to_owned())).cloned()))
    }

    fn record_answer<'a>(
        &'a mut self,
        account: AccountId,
        key: &'a str,
        hash: &'a [u8; 32],
        answer: &'a Recorded,
        _at: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<(), AppError>> {
        self.0
            .answers
            .insert((account, key.to_owned()), (*hash, answer.clone()));
        ready(Ok(()))
    }
}

impl AuditRecorder for MemoryTx {
    type Error = AppError;

    fn record(&mut self, entry: AuditEntry) -> BoxFuture<'_, Result<(), AppError>> {
        self.0.audit.push(entry);
        ready(Ok(()))
    }
}

impl AuditLog for MemoryStore {
    type Error = AppError;

    async fn entries(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>, AppError> {
        let f = &query.filter;
        let mut rows: Vec<AuditEntry> = self
            .snapshot()
            .audit
            .into_iter()
            .filter(|e| f.entity_type.is_none_or(|t| e.entity.kind == t))
            .filter(|e| f.entity_id.as_ref().is_none_or(|id| &e.entity.id == id))
            .filter(|e| f.actor_id.is_none_or(|id| e.actor.id() == Some(id)))
            .filter(|e| f.action.is_none_or(|a| e.action == a))
            .filter(|e| f.since.is_none_or(|t| e.occurred_at >= t))
            .filter(|e| f.until.is_none_or(|t| e.occurred_at < t))
            .filter(|e| f.account.is_none_or(|a| e.account_id == Some(a)))
            .filter(|e| {
                query
                    .after
                    .is_none_or(|c| (e.occurred_at, e.id) < (c.occurred_at, c.id))
            })
            .collect();
        rows.sort_by_key(|e| std::cmp::Reverse((e.occurred_at, e.id)));
        rows.truncate(query.limit as usize);
        Ok(rows)
    }
}

impl LinkStore for MemoryStore {
    async fn resolve_codes(
        &self,
        codes: &[ShortCode],
    ) -> Result<Vec<(ShortCode, crate::Resolved)>, AppError> {
        let mut found = Vec::new();
        for code in codes {
            if let Some(link) = self.link_by_code(code).await? {
                found.push((code.clone(), crate::Resolved::from(link)));
            }
        }
        Ok(found)
    }

    async fn take_visits(&self, asks: &[(LinkId, u64)]) -> Result<Vec<(LinkId, u64)>, AppError> {
        let mut s = self.0.lock().unwrap();
        let mut left = Vec::new();
        for (id, asked) in asks {
            let limit = s
                .links
                .iter_mut()
                .find(|(l, deleted)| l.id == *id && !deleted)
                .and_then(|(l, _)| l.visit_limit.as_mut());
            if let Some(limit) = limit {
                left.push((*id, limit.left()));
                limit.used += (*asked).min(limit.left());
            }
        }
        Ok(left)
    }

    async fn link_by_code(&self, code: &ShortCode) -> Result<Option<Link>, AppError> {
        let s = self.0.lock().unwrap();
        Ok(s.links
            .iter()
            .find(|(l, deleted)| &l.code == code && !deleted)
            .map(|(l, _)| l.clone()))
    }

    async fn list_links(
        &self,
        account: AccountId,
        filter: &crate::LinkFilter,
        page: PageRequest,
    ) -> Result<Vec<Link>, AppError> {
        let s = self.0.lock().unwrap();
        let mut links: Vec<Link> = s
            .links
            .iter()
            .filter(|(l, deleted)| l.account_id == account && !deleted)
            .filter(|(l, _)| filter.keeps(l))
            .filter(|(l, _)| page.after.is_none_or(|a| l.id.as_uuid() < a))
            .map(|(l, _)| l.clone())
            .collect();
        links.sort_by_key(|l| std::cmp::Reverse(l.id));
        links.truncate(page.limit as usize);
        Ok(links)
    }

    async fn daily_clicks(
        &self,
        id: LinkId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<(NaiveDate, i64)>, AppError> {
        let s = self.0.lock().unwrap();
        Ok(s.daily
            .iter()
            .filter(|((l, d), _)| *l == id && *d >= from && *d <= to)
            .map(|((_, d), c)| (*d, *c))
            .collect())
    }

    async fn link_visits(
        &self,
        id: LinkId,
        from: NaiveDate,
        to: NaiveDate,
        top: usize,
    ) -> Result<VisitReport, AppError> {
        self.visits_of(|l| *l == id, from, to, top)
    }

    async fn account_visits(
        &self,
        account: AccountId,
        from: NaiveDate,
        to: NaiveDate,
        top: usize,
    ) -> Result<VisitReport, AppError> {
        let mine = self.links_of(account);
        self.visits_of(|l| mine.contains(l), from, to, top)
    }

    async fn account_clicks(
        &self,
        account: AccountId,
        from: NaiveDate,
        to: NaiveDate,
        top: usize,
    ) -> Result<AccountClicks, AppError> {
        let mine = self.links_of(account);
        let s = self.0.lock().unwrap();
        let mut daily: BTreeMap<NaiveDate, i64> = BTreeMap::new();
        let mut by_link: HashMap<LinkId, i64> = HashMap::new();
        let mut total = 0;
        for ((l, d), n) in &s.daily {
            if !mine.contains(l) {
                continue;
            }
            total += n;
            if *d >= from && *d <= to {
                *daily.entry(*d).or_default() += n;
                *by_link.entry(*l).or_default() += n;
            }
        }
        let mut top_links: Vec<(String, i64)> = s
            .links
            .iter()
            .filter(|(l, deleted)| !deleted && by_link.contains_key(&l.id))
            .map(|(l, _)| (l.code.as_str().to_owned(), by_link[&l.id]))
            .collect();
        crate::visits::rank(&mut top_links);
        top_links.truncate(top);
        Ok(AccountClicks {
            total,
            daily: daily.into_iter().collect(),
            top_links,
        })
    }
}

impl MemoryStore {
    /// Ids of every link of `account`, deleted ones included.
    fn links_of(&self, account: AccountId) -> Vec<LinkId> {
        let s = self.0.lock().unwrap();
        s.links
            .iter()
            .filter(|(l, _)| l.account_id == account)
            .map(|(l, _)| l.id)
            .collect()
    }

    /// The visit report of the links `of` picks.
    fn visits_of(
        &self,
        of: impl Fn(&LinkId) -> bool,
        from: NaiveDate,
        to: NaiveDate,
        top: usize,
    ) -> Result<VisitReport, AppError> {
        let s = self.0.lock().unwrap();
        let within = |l: &LinkId, d: &NaiveDate| of(l) && *d >= from && *d <= to;
        let mut bots: BTreeMap<NaiveDate, i64> = BTreeMap::new();
        let mut sums: BTreeMap<Dimension, HashMap<String, i64>> = BTreeMap::new();
        for ((l, dim, d, value), n) in &s.visits {
            if !within(l, d) {
                continue;
            }
            if *dim == Dimension::Device && value == Device::Bot.as_str() {
                *bots.entry(*d).or_default() += n;
            }
            *sums
                .entry(*dim)
                .or_default()
                .entry(value.clone())
                .or_default() += n;
        }
        Ok(VisitReport {
            bots_daily: bots.into_iter().collect(),
            breakdowns: sums
                .into_iter()
                .map(|(dim, values)| Breakdown::of(dim, values.into_iter().collect(), top))
                .collect(),
        })
    }
}

impl ClickStore for MemoryStore {
    /// Written in their lasting form at once: nothing is ever held unfolded.
    async fn add_clicks(&self, batch: &ClickBatch) -> Result<Unfolded, AppError> {
        let mut s = self.0.lock().unwrap();
        if !s.click_batches.insert(batch.id) {
            return Ok(Unfolded::default());
        }
        for c in &batch.counts {
            let n = i64::try_from(c.clicks).unwrap();
            if let Some((l, _)) = s.links.iter_mut().find(|(l, _)| l.id == c.link) {
                l.clicks += n;
            }
            *s.daily.entry((c.link, c.day)).or_default() += n;
        }
        for v in &batch.visits {
            for value in v.visit.values() {
                let key = (v.link, value.dimension(), v.day, value.as_str().to_owned());
                *s.visits.entry(key).or_default() += i64::try_from(v.clicks).unwrap();
            }
        }
        Ok(Unfolded::default())
    }

    /// Clicks are written in their lasting form at once: nothing to fold.
    async fn fold_clicks(&self) -> Result<u64, AppError> {
        Ok(0)
    }
}

impl AccountStore for MemoryStore {
    async fn account(&self, id: AccountId) -> Result<Option<AccountView>, AppError> {
        let s = self.0.lock().unwrap();
        Ok(s.accounts.iter().find(|v| v.account.id == id).cloned())
    }

    async fn list_accounts(
        &self,
        name: Option<&NameSearch>,
        page: PageRequest,
    ) -> Result<Vec<AccountView>, AppError> {
        let s = self.0.lock().unwrap();
        Ok(s.accounts
            .iter()
            .filter(|v| page.after.is_none_or(|a| v.account.id.as_uuid() > a))
            .filter(|v| name.is_none_or(|n| n.keeps(&v.account.name)))
            .take(page.limit as usize)
            .cloned()
            .collect())
    }
}

impl KeyStore for MemoryStore {
    async fn key_by_lookup(&self, lookup: &str) -> Result<Option<KeyOnFile>, AppError> {
        let s = self.0.lock().unwrap();
        let key = s.keys.iter().find(|k| k.lookup == lookup).cloned();
        Ok(key.map(|key| MemoryStore::key_on_file(&s, key)))
    }

    async fn keys_of(&self, account: AccountId) -> Result<Vec<StoredKey>, AppError> {
        let s = self.0.lock().unwrap();
        let mut keys: Vec<StoredKey> = s
            .keys
            .iter()
            .filter(|k| k.owner == KeyOwner::Account(account))
            .cloned()
            .collect();
        keys.sort_by_key(|k| std::cmp::Reverse((k.created_at, k.id)));
        Ok(keys)
    }

    async fn put_bootstrap_key(&self, key: &StoredKey) -> Result<(), AppError> {
        let mut s = self.0.lock().unwrap();
        s.keys.retain(|k| k.lookup != key.lookup);
        s.keys.push(key.clone());
        Ok(())
    }
}

impl MemoryStore {
    fn key_on_file(s: &State, key: StoredKey) -> KeyOnFile {
        let plan = match key.owner {
            KeyOwner::Admin => None,
            KeyOwner::Account(id) => Some(
                match s
                    .accounts
                    .iter()
                    .find(|v| v.account.id == id)
                    .map(|v| &v.subscription.subscription)
                {
                    Some(Subscription::Active { plan, .. }) => *plan,
                    _ => subscriptions::PlanName::Trial,
                },
            ),
        };
        KeyOnFile { key, plan }
    }
}

impl SessionStore for MemoryStore {
    async fn insert_session(&self, session: &StoredSession) -> Result<(), AppError> {
        self.0.lock().unwrap().sessions.push(session.clone());
        Ok(())
    }

    async fn session_key(
        &self,
        token_hash: &[u8; 32],
        now: DateTime<Utc>,
    ) -> Result<Option<KeyOnFile>, AppError> {
        let s = self.0.lock().unwrap();
        let key = s
            .sessions
            .iter()
            .find(|x| &x.token_hash == token_hash && x.expires_at > now)
            .and_then(|x| s.keys.iter().find(|k| k.id == x.key_id).cloned());
        Ok(key.map(|key| MemoryStore::key_on_file(&s, key)))
    }

    async fn delete_session(&self, token_hash: &[u8; 32]) -> Result<(), AppError> {
        self.0
            .lock()
            .unwrap()
            .sessions
            .retain(|x| &x.token_hash != token_hash);
        Ok(())
    }

    async fn delete_expired_sessions(&self, now: DateTime<Utc>) -> Result<usize, AppError> {
        let mut s = self.0.lock().unwrap();
        let before = s.sessions.len();
        s.sessions.retain(|x| x.expires_at > now);
        Ok(before - s.sessions.len())
    }
}

impl SubscriptionStore for MemoryStore {
    async fn subscription(&self, account: AccountId) -> Result<Option<Versioned>, AppError> {
        let s = self.0.lock().unwrap();
        Ok(s.accounts
            .iter()
            .find(|v| v.account.id == account)
            .map(|v| v.subscription.clone()))
    }

    async fn list_subscriptions(
        &self,
        state: Option<SubState>,
        now: DateTime<Utc>,
        page: PageRequest,
    ) -> Result<Vec<(AccountId, Versioned)>, AppError> {
        let s = self.0.lock().unwrap();
        Ok(s.accounts
            .iter()
            .filter(|v| page.after.is_none_or(|a| v.account.id.as_uuid() > a))
            .filter(|v| {
                state.is_none_or(|st| v.subscription.subscription.effective_at(now).state() == st)
            })
            .take(page.limit as usize)
            .map(|v| (v.account.id, v.subscription.clone()))
            .collect())
    }

    async fn due_for_expiry(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<(AccountId, Versioned)>, AppError> {
        let s = self.0.lock().unwrap();
        Ok(s.accounts
            .iter()
            .filter(|v| {
                !v.subscription.subscription.state().is_terminal()
                    && v.subscription.subscription.effective_at(now).state() == SubState::Expired
            })
            .take(limit as usize)
            .map(|v| (v.account.id, v.subscription.clone()))
            .collect())
    }
}

/// Every use case over one in-memory store, one manual clock and one resolve cache: what
/// the use cases' unit tests start from.
pub struct Services {
    pub store: MemoryStore,
    pub clock: Arc<crate::ManualClock>,
    pub cache: Arc<crate::ResolveCache>,
    pub accounts: crate::AccountService<MemoryStore>,
    pub subs: crate::SubscriptionService<MemoryStore>,
    pub links: crate::LinkService<MemoryStore>,
    pub log: crate::AuditService<MemoryStore>,
    /// The operator key that administers, in tests that need one.
    pub admin: KeyId,
}

impl Services {
    /// The services under the default plans.
    pub fn new() -> Services {
        Services::with_plans(subscriptions::Plans::default())
    }

    /// The services under `plans`, with targets on `https://sho.rt` refused as loops.
    pub fn with_plans(plans: subscriptions::Plans) -> Services {
        let store = MemoryStore::default();
        let clock = crate::ManualClock::new();
        let cache = Arc::new(crate::ResolveCache::new(100));
        let policy =
            shortener_domain::UrlPolicy::new(&url::Url::parse("https://sho.rt").unwrap(), false);
        Services {
            accounts: crate::AccountService::new(store.clone(), clock.clone(), plans.clone()),
            subs: crate::SubscriptionService::new(store.clone(), clock.clone(), plans.clone()),
            links: crate::LinkService::new(
                store.clone(),
                clock.clone(),
                policy,
                plans,
                cache.clone(),
            ),
            log: crate::AuditService::new(store.clone()),
            admin: KeyId::new(),
            store,
            clock,
            cache,
        }
    }
}

//! [`PgStore`]: the app's ports on PostgreSQL.

use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Date, Nullable, SmallInt, Text, Uuid as SqlUuid};
use diesel_async::RunQueryDsl;
use shortener_app::{
    AccountClicks, AccountStore, AccountView, AppError, Breakdown, KeyOnFile, KeyOwner, KeyStore,
    LinkFilter, LinkStore, NameSearch, PageRequest, Resolved, StoredKey, SubscriptionStore,
    VisitReport,
};
use shortener_domain::visit::{Device, Dimension};
use shortener_domain::{
    Account, AccountId, AccountName, KeyId, Link, LinkId, MaxVisits, PasswordHash, ShortCode, Tags,
    TargetUrl, Title, VisitLimit,
};
use subscriptions::{PlanName, State, Subscription, Versioned};
use uuid::Uuid;

use crate::pool::Conn;
use crate::replicas::Scope;
use crate::schema::{accounts, api_keys, links, subscription_rows};
use crate::{Db, PgError, Replicas};

/// All ports, one pool on the primary, and the replicas reads may go to. Cheap to clone.
#[derive(Clone)]
pub struct PgStore {
    pub(crate) db: Db,
    pub(crate) replicas: Option<Replicas>,
}

impl PgStore {
    /// A store over `db`, every read on it.
    pub fn new(db: Db) -> Self {
        PgStore { db, replicas: None }
    }

    /// This store with reads that need not see the latest writes spread over `replicas`
    /// (see `crate::replicas` for which, and when they stay on the primary).
    pub fn with_replicas(self, replicas: Replicas) -> Self {
        PgStore {
            replicas: Some(replicas),
            ..self
        }
    }

    /// A connection for a read about `scope`: a replica's when one is fit for it.
    pub(crate) async fn read_conn(&self, scope: Scope<'_>) -> Result<Conn, PgError> {
        match &self.replicas {
            Some(r) => r.conn(scope, &self.db).await,
            None => self.db.conn().await,
        }
    }

    /// The pool every adapter of this store takes its connections from (the reads here,
    /// the unit of work, the click journal, the audit log), and tests their SQL.
    pub fn db(&self) -> &Db {
        &self.db
    }
}

pub(crate) fn corrupt(what: &'static str, detail: impl std::fmt::Display) -> PgError {
    PgError::Corrupt {
        what,
        detail: detail.to_string(),
    }
}

#[derive(Queryable, QueryableByName, Selectable, Insertable)]
#[diesel(table_name = links, check_for_backend(diesel::pg::Pg))]
pub(crate) struct LinkRow {
    id: Uuid,
    code: String,
    account_id: Uuid,
    target: String,
    created_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
    tags: Vec<String>,
    title: Option<String>,
    max_visits: Option<i32>,
    visits_used: i64,
    /// The password's PHC string, if the link has one.
    password_hash: Option<String>,
    /// The sum of the link's days: totals are not stored twice.
    #[diesel(skip_insertion)]
    #[diesel(sql_type = BigInt)]
    #[diesel(select_expression = diesel::dsl::sql::<BigInt>(TOTAL_CLICKS))]
    #[diesel(select_expression_type = diesel::expression::SqlLiteral<BigInt>)]
    clicks: i64,
}

/// A link's clicks, folded and journalled (in a query on `shortener.links`).
const TOTAL_CLICKS: &str = "shortener.link_clicks(links.id)";

/// What `?q=` searches: code, target and title in one text, exactly as the trigram index
/// `links_tags_search_idx` (migration `000023`) spells it, so the planner can use the index.
/// The line feeds keep the fields apart: [`LinkFilter`] refuses control characters.
const SEARCH_TEXT: &str = "(code || E'\\n' || target || E'\\n' || coalesce(title, ''))";

/// The newest links (after the page's cursor) a search by text reads one by one before it
/// turns to the trigram index: see [`PgStore::search_links`].
const SEARCH_WALK: i64 = 4096;

/// The columns of a link row, as [`LinkRow`] reads them by name (`clicks` aside).
const LINK_COLUMNS: &str = "id, code, account_id, target, created_at, expires_at, tags, title, max_visits, visits_used, \
     password_hash";

/// `text` as a `LIKE` pattern matching any text that contains it: `%`, `_` and the escape
/// character `\` itself are escaped, so they match only themselves. (Link search and
/// account search both take their text through here.)
fn contains_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

impl LinkRow {
    pub(crate) fn from_link(l: &Link) -> LinkRow {
        LinkRow {
            id: l.id.as_uuid(),
            code: l.code.as_str().to_owned(),
            account_id: l.account_id.as_uuid(),
            target: l.target.as_str().to_owned(),
            created_at: l.created_at,
            expires_at: l.expires_at,
            tags: l.tags.to_strings(),
            title: l.title.as_ref().map(|t| t.as_str().to_owned()),
            max_visits: l.visit_limit.map(|v| v.max.get() as i32),
            visits_used: l
                .visit_limit
                .map_or(0, |v| i64::try_from(v.used).unwrap_or(i64::MAX)),
            password_hash: l.password.as_ref().map(|h| h.as_str().to_owned()),
            clicks: l.clicks,
        }
    }

    pub(crate) fn into_link(self) -> Result<Link, PgError> {
        Ok(Link {
            id: LinkId::from_uuid(self.id),
            code: ShortCode::parse(&self.code).map_err(|e| corrupt("code", e))?,
            account_id: AccountId::from_uuid(self.account_id),
            target: TargetUrl::from_storage(self.target),
            created_at: self.created_at,
            expires_at: self.expires_at,
            clicks: self.clicks,
            tags: Tags::from_storage(self.tags),
            title: self.title.map(Title::from_storage),
            visit_limit: self
                .max_visits
                .map(|max| {
                    Ok::<_, PgError>(VisitLimit {
                        max: MaxVisits::new(max.into()).map_err(|e| corrupt("max_visits", e))?,
                        used: u64::try_from(self.visits_used).unwrap_or(0),
                    })
                })
                .transpose()?,
            password: self.password_hash.map(PasswordHash::from_storage),
        })
    }
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = accounts, check_for_backend(diesel::pg::Pg))]
pub(crate) struct AccountRow {
    pub(crate) id: Uuid,
    pub(crate) name: String,
    pub(crate) created_at: DateTime<Utc>,
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = subscription_rows, check_for_backend(diesel::pg::Pg))]
pub(crate) struct SubscriptionRow {
    pub(crate) account_id: Uuid,
    pub(crate) state: String,
    pub(crate) plan: Option<String>,
    pub(crate) ends_at: DateTime<Utc>,
    pub(crate) reason: Option<String>,
    pub(crate) version: i64,
    pub(crate) updated_at: DateTime<Utc>,
}

impl SubscriptionRow {
    pub(crate) fn from_versioned(
        account: AccountId,
        v: &Versioned,
        now: DateTime<Utc>,
    ) -> SubscriptionRow {
        let (plan, ends_at, reason) = match &v.subscription {
            Subscription::Trial { expires_at } => (None, *expires_at, None),
            Subscription::Active { plan, renews_at } => {
                (Some(plan.as_str().to_owned()), *renews_at, None)
            }
            Subscription::Expired { expired_at } => (None, *expired_at, None),
            Subscription::Cancelled {
                cancelled_at,
                reason,
            } => (None, *cancelled_at, Some(reason.clone())),
        };
        SubscriptionRow {
            account_id: account.as_uuid(),
            state: v.subscription.state().as_str().to_owned(),
            plan,
            ends_at,
            reason,
            version: v.version,
            updated_at: now,
        }
    }

    pub(crate) fn into_versioned(self) -> Result<Versioned, PgError> {
        let subscription = match (self.state.as_str(), self.plan, self.reason) {
            ("trial", None, None) => Subscription::Trial {
                expires_at: self.ends_at,
            },
            ("active", Some(plan), None) => Subscription::Active {
                plan: plan.parse::<PlanName>().map_err(|e| corrupt("plan", e))?,
                renews_at: self.ends_at,
            },
            ("expired", None, None) => Subscription::Expired {
                expired_at: self.ends_at,
            },
            ("cancelled", None, Some(reason)) => Subscription::Cancelled {
                cancelled_at: self.ends_at,
                reason,
            },
            (state, ..) => {
                return Err(corrupt(
                    "subscription",
                    format!("state {state} with wrong columns"),
                ));
            }
        };
        Ok(Versioned {
            subscription,
            version: self.version,
        })
    }
}

fn account_view(row: (AccountRow, SubscriptionRow)) -> Result<AccountView, PgError> {
    let (a, s) = row;
    Ok(AccountView {
        account: Account {
            id: AccountId::from_uuid(a.id),
            name: AccountName::parse(&a.name).map_err(|e| corrupt("account name", e))?,
            created_at: a.created_at,
        },
        subscription: s.into_versioned()?,
    })
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = api_keys, check_for_backend(diesel::pg::Pg))]
pub(crate) struct KeyRow {
    id: Uuid,
    lookup: String,
    secret_hash: Vec<u8>,
    kind: String,
    account_id: Option<Uuid>,
    created_at: DateTime<Utc>,
    revoked_at: Option<DateTime<Utc>>,
}

impl KeyRow {
    pub(crate) fn from_key(k: &StoredKey) -> KeyRow {
        let (kind, account_id) = match k.owner {
            KeyOwner::Admin => ("admin", None),
            KeyOwner::Account(a) => ("account", Some(a.as_uuid())),
        };
        KeyRow {
            id: k.id.as_uuid(),
            lookup: k.lookup.clone(),
            secret_hash: k.secret_hash.to_vec(),
            kind: kind.to_owned(),
            account_id,
            created_at: k.created_at,
            revoked_at: k.revoked_at,
        }
    }

    fn into_key(self) -> Result<StoredKey, PgError> {
        let owner = match (self.kind.as_str(), self.account_id) {
            ("admin", None) => KeyOwner::Admin,
            ("account", Some(a)) => KeyOwner::Account(AccountId::from_uuid(a)),
            (kind, _) => return Err(corrupt("key", format!("kind {kind}"))),
        };
        Ok(StoredKey {
            id: KeyId::from_uuid(self.id),
            lookup: self.lookup,
            secret_hash: self
                .secret_hash
                .try_into()
                .map_err(|_| corrupt("key", "hash is not 32 bytes"))?,
            owner,
            created_at: self.created_at,
            revoked_at: self.revoked_at,
        })
    }
}

impl LinkStore for PgStore {
    async fn resolve_codes(
        &self,
        codes: &[ShortCode],
    ) -> Result<Vec<(ShortCode, Resolved)>, AppError> {
        let wanted: Vec<&str> = codes.iter().map(ShortCode::as_str).collect();
        match &self.replicas {
            None => Ok(Self::resolve_on(&self.db, &wanted).await?),
            Some(replicas) => Ok(self.resolve_with(replicas, wanted).await?),
        }
    }

    async fn take_visits(&self, asks: &[(LinkId, u64)]) -> Result<Vec<(LinkId, u64)>, AppError> {
        #[derive(QueryableByName)]
        struct Left {
            #[diesel(sql_type = SqlUuid)]
            id: Uuid,
            #[diesel(sql_type = BigInt)]
            left_before: i64,
        }
        let ids: Vec<Uuid> = asks.iter().map(|(id, _)| id.as_uuid()).collect();
        let asked: Vec<i64> = asks
            .iter()
            .map(|(_, n)| i64::try_from(*n).unwrap_or(i64::MAX))
            .collect();
        let mut conn = self.db.conn().await?;
        // The rows are locked first (in id order, so two instances' batches cannot
        // deadlock), then each takes what it can give. Under READ COMMITTED a row locked
        // after another instance's take is read again as that take left it, so what is
        // left is never counted twice.
        let left: Vec<Left> = diesel::sql_query(
            "WITH asked AS ( \
                 SELECT id, n FROM unnest($1::uuid[], $2::bigint[]) AS a(id, n) \
             ), held AS ( \
                 SELECT l.id, asked.n, greatest(l.max_visits - l.visits_used, 0) AS left_before \
                 FROM shortener.links l JOIN asked ON asked.id = l.id \
                 WHERE l.deleted_at IS NULL AND l.max_visits IS NOT NULL \
                 ORDER BY l.id \
                 FOR UPDATE OF l \
             ), taken AS ( \
                 UPDATE shortener.links l \
                 SET visits_used = l.visits_used + least(held.n, held.left_before) \
                 FROM held \
                 WHERE l.id = held.id AND held.n > 0 AND held.left_before > 0 \
             ) \
             SELECT id, left_before FROM held",
        )
        .bind::<Array<SqlUuid>, _>(&ids)
        .bind::<Array<BigInt>, _>(&asked)
        .load(&mut conn)
        .await
        .map_err(PgError::from)?;
        Ok(left
            .into_iter()
            .map(|l| {
                (
                    LinkId::from_uuid(l.id),
                    u64::try_from(l.left_before).unwrap_or(0),
                )
            })
            .collect())
    }

    async fn link_by_code(&self, code: &ShortCode) -> Result<Option<Link>, AppError> {
        let read = async |mut conn: Conn| {
            links::table
                .filter(links::code.eq(code.as_str()))
                .filter(links::deleted_at.is_null())
                .select(LinkRow::as_select())
                .first(&mut conn)
                .await
                .optional()
                .map_err(PgError::from)
        };
        let mut row = read(self.read_conn(Scope::Code(code.as_str())).await?).await?;
        // Not on a replica may be not there yet: only the primary can say it is gone.
        if row.is_none() && self.replicas.is_some() {
            row = read(self.db.conn().await?).await?;
        }
        Ok(row.map(LinkRow::into_link).transpose()?)
    }

    async fn list_links(
        &self,
        account: AccountId,
        filter: &LinkFilter,
        page: PageRequest,
    ) -> Result<Vec<Link>, AppError> {
        let mut conn = self.read_conn(Scope::Account(account.as_uuid())).await?;
        if let Some(text) = filter.text() {
            let rows = Self::search_links(&mut conn, account, filter.tag(), text, page)
                .await
                .map_err(PgError::from)?;
            return Ok(rows
                .into_iter()
                .map(LinkRow::into_link)
                .collect::<Result<_, _>>()?);
        }
        // Never a cached prepared statement (the clicks column is SQL text, which diesel
        // does not cache), so each list is planned for its own values: a rare tag through
        // its GIN index, a common one by walking the account's page index newest first
        // until the page is full (PostgreSQL knows how common each tag is: the array's
        // element statistics).
        let mut query = links::table
            .filter(links::account_id.eq(account.as_uuid()))
            .filter(links::deleted_at.is_null())
            .select(LinkRow::as_select())
            .order(links::id.desc())
            .limit(i64::from(page.limit))
            .into_boxed();
        if let Some(after) = page.after {
            query = query.filter(links::id.lt(after));
        }
        if let Some(tag) = filter.tag() {
            query = query.filter(links::tags.contains(vec![tag.as_str().to_owned()]));
        }
        let rows = query.load(&mut conn).await.map_err(PgError::from)?;
        Ok(rows
            .into_iter()
            .map(LinkRow::into_link)
            .collect::<Result<_, _>>()?)
    }

    async fn daily_clicks(
        &self,
        id: LinkId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<(NaiveDate, i64)>, AppError> {
        #[derive(QueryableByName)]
        struct Day {
            #[diesel(sql_type = Date)]
            day: NaiveDate,
            #[diesel(sql_type = BigInt)]
            clicks: i64,
        }
        let mut conn = self.read_conn(Scope::Counts).await?;
        // Folded and journalled clicks, added up per day in one snapshot.
        let days: Vec<Day> = diesel::sql_query(
            "SELECT day, sum(clicks)::bigint AS clicks \
             FROM shortener.link_clicks_between($1, $2, $3) GROUP BY day ORDER BY day",
        )
        .bind::<SqlUuid, _>(id.as_uuid())
        .bind::<Date, _>(from)
        .bind::<Date, _>(to)
        .load(&mut conn)
        .await
        .map_err(PgError::from)?;
        Ok(days.into_iter().map(|d| (d.day, d.clicks)).collect())
    }

    async fn link_visits(
        &self,
        id: LinkId,
        from: NaiveDate,
        to: NaiveDate,
        top: usize,
    ) -> Result<VisitReport, AppError> {
        self.visits(
            Scope::Counts,
            "shortener.link_visits_between",
            id.as_uuid(),
            from,
            to,
            top,
        )
        .await
    }

    async fn account_visits(
        &self,
        account: AccountId,
        from: NaiveDate,
        to: NaiveDate,
        top: usize,
    ) -> Result<VisitReport, AppError> {
        self.visits(
            Scope::Account(account.as_uuid()),
            "shortener.account_visits_between",
            account.as_uuid(),
            from,
            to,
            top,
        )
        .await
    }

    async fn account_clicks(
        &self,
        account: AccountId,
        from: NaiveDate,
        to: NaiveDate,
        top: usize,
    ) -> Result<AccountClicks, AppError> {
        #[derive(QueryableByName)]
        struct Row {
            #[diesel(sql_type = SmallInt)]
            kind: i16,
            #[diesel(sql_type = Nullable<Date>)]
            day: Option<NaiveDate>,
            #[diesel(sql_type = Nullable<Text>)]
            code: Option<String>,
            #[diesel(sql_type = BigInt)]
            clicks: i64,
        }
        let mut conn = self.read_conn(Scope::Account(account.as_uuid())).await?;
        // One snapshot: the total (kind 0), the period's days (1) and top live links (2).
        let rows: Vec<Row> = diesel::sql_query(
            "WITH c AS (SELECT c.link_id, c.day, c.clicks \
                        FROM shortener.links l JOIN shortener.clicks c ON c.link_id = l.id \
                        WHERE l.account_id = $1) \
             SELECT 0::smallint AS kind, NULL::date AS day, NULL::text AS code, \
                    coalesce(sum(clicks), 0)::bigint AS clicks FROM c \
             UNION ALL \
             SELECT 1::smallint, day, NULL, sum(clicks)::bigint FROM c \
             WHERE day BETWEEN $2 AND $3 GROUP BY day \
             UNION ALL \
             (SELECT 2::smallint, NULL, l.code, sum(c.clicks)::bigint \
              FROM c JOIN shortener.links l ON l.id = c.link_id \
              WHERE l.deleted_at IS NULL AND c.day BETWEEN $2 AND $3 \
              GROUP BY l.code ORDER BY 4 DESC, l.code COLLATE \"C\" LIMIT $4)",
        )
        .bind::<SqlUuid, _>(account.as_uuid())
        .bind::<Date, _>(from)
        .bind::<Date, _>(to)
        .bind::<BigInt, _>(i64::try_from(top).unwrap_or(i64::MAX))
        .load(&mut conn)
        .await
        .map_err(PgError::from)?;
        let mut out = AccountClicks::default();
        for row in rows {
            match (row.kind, row.day, row.code) {
                (0, _, _) => out.total = row.clicks,
                (1, Some(day), _) => out.daily.push((day, row.clicks)),
                (2, _, Some(code)) => out.top_links.push((code, row.clicks)),
                _ => {}
            }
        }
        out.daily.sort_unstable();
        shortener_app::rank(&mut out.top_links);
        Ok(out)
    }
}

impl PgStore {
    /// `codes`' live links, read through `db`.
    async fn resolve_on(db: &Db, wanted: &[&str]) -> Result<Vec<(ShortCode, Resolved)>, PgError> {
        let mut conn = db.conn().await?;
        /// id, code, target, expiry, whether it has a visit limit, its password's hash.
        type Row = (
            Uuid,
            String,
            String,
            Option<DateTime<Utc>>,
            bool,
            Option<String>,
        );
        let rows: Vec<Row> = links::table
            .filter(links::code.eq_any(wanted))
            .filter(links::deleted_at.is_null())
            .select((
                links::id,
                links::code,
                links::target,
                links::expires_at,
                links::max_visits.is_not_null(),
                links::password_hash,
            ))
            .load(&mut conn)
            .await?;
        rows.into_iter()
            .map(|(id, code, target, expires_at, limited, password)| {
                Ok((
                    ShortCode::parse(&code).map_err(|e| corrupt("code", e))?,
                    Resolved {
                        id: LinkId::from_uuid(id),
                        target: TargetUrl::from_storage(target),
                        expires_at,
                        limited,
                        password: password.map(PasswordHash::from_storage),
                    },
                ))
            })
            .collect()
    }

    /// Resolves `codes` with replicas configured. Codes a usable replica has seen every
    /// change of are read there; the others, and those it does not have (a link created
    /// a moment ago may not have reached it), are read on the primary, so lag never
    /// serves an old target or a false 404. While the primary is away, everything is
    /// answered from a replica: redirects keep working, as fresh as it is.
    async fn resolve_with<'c>(
        &self,
        replicas: &Replicas,
        codes: Vec<&'c str>,
    ) -> Result<Vec<(ShortCode, Resolved)>, PgError> {
        let mut found = Vec::with_capacity(codes.len());
        let mut on_primary: Vec<&'c str> = Vec::new();
        match replicas.replica_for_codes(codes.iter().copied()) {
            None => on_primary = codes,
            Some((i, seen)) => {
                let (fresh, stale): (Vec<_>, Vec<_>) =
                    codes.into_iter().zip(seen).partition(|(_, seen)| *seen);
                on_primary.extend(stale.into_iter().map(|(c, _)| c));
                let fresh: Vec<&str> = fresh.into_iter().map(|(c, _)| c).collect();
                if !fresh.is_empty() {
                    match Self::resolve_on(replicas.pool(i), &fresh).await {
                        Ok(rows) => {
                            replicas.count(true, 1);
                            let there: std::collections::HashSet<&str> =
                                rows.iter().map(|(c, _)| c.as_str()).collect();
                            on_primary.extend(fresh.into_iter().filter(|c| !there.contains(c)));
                            found.extend(rows);
                        }
                        Err(e) => {
                            replicas.failed(i, &e);
                            on_primary.extend(fresh);
                        }
                    }
                }
            }
        }
        if on_primary.is_empty() {
            return Ok(found);
        }
        let asked = if replicas.primary_up() {
            replicas.count(false, 1);
            Self::resolve_on(&self.db, &on_primary).await
        } else {
            Err(PgError::unavailable("the primary does not answer"))
        };
        match asked {
            Ok(rows) => found.extend(rows),
            Err(e) => {
                let Some(i) = replicas.any_usable() else {
                    return Err(e);
                };
                replicas.count(true, 1);
                found.extend(Self::resolve_on(replicas.pool(i), &on_primary).await?);
            }
        }
        Ok(found)
    }

    /// A page of `account`'s links whose search text contains `text` (and that carry
    /// `tag`), newest first.
    ///
    /// PostgreSQL cannot know how many rows a substring matches (its estimate of `ILIKE
    /// '%...%'` is a fixed rule of the pattern's length, not the data), and a wrong guess
    /// either way is slow: a word on a quarter of the links (`newsletter`) estimated rare
    /// went through the trigram index and re-checked 266 000 rows (1.9 s); a rare text
    /// estimated common walks the whole account. So one statement asks twice, and only
    /// as far as it must:
    ///
    /// 1. the [`SEARCH_WALK`] newest links after the cursor, read one by one newest first
    ///    (the account's page index), kept while they match, stopping at a full page: a
    ///    text on more than one link in 80 fills a page of 50 here;
    /// 2. only when that found less than a page: the links older than all of those, as
    ///    the planner sees fit; these are the texts rare among the newest links, where
    ///    the trigram index is right.
    ///
    /// The rows come back unordered (the two parts may run in either order); they are
    /// sorted here, and every row of the first part is newer than every row of the
    /// second, so the page is the newest matches whichever way they ran.
    async fn search_links(
        conn: &mut diesel_async::AsyncPgConnection,
        account: AccountId,
        tag: Option<&shortener_domain::Tag>,
        text: &str,
        page: PageRequest,
    ) -> QueryResult<Vec<LinkRow>> {
        // $1 account, $2 page size, $3 walk, then the cursor, the tag and the pattern.
        let mut next = 4;
        let mut param = || {
            let p = format!("${next}");
            next += 1;
            p
        };
        let after = page
            .after
            .map(|_| format!(" AND id < {}", param()))
            .unwrap_or_default();
        let mut conditions = Vec::new();
        if tag.is_some() {
            conditions.push(format!("tags @> ARRAY[{}::text]", param()));
        }
        conditions.push(format!("{SEARCH_TEXT} ILIKE {}", param()));
        let matches = conditions.join(" AND ");
        let sql = format!(
            "WITH recent AS ( \
                SELECT {LINK_COLUMNS} FROM shortener.links \
                WHERE account_id = $1 AND deleted_at IS NULL{after} \
                ORDER BY id DESC LIMIT $3) \
             SELECT {LINK_COLUMNS}, shortener.link_clicks(found.id) AS clicks FROM ( \
                (SELECT {LINK_COLUMNS} FROM recent WHERE {matches} LIMIT $2) \
                UNION ALL \
                (SELECT {LINK_COLUMNS} FROM shortener.links \
                 WHERE account_id = $1 AND deleted_at IS NULL \
                   AND id < (SELECT id FROM recent ORDER BY id LIMIT 1) AND {matches} \
                   AND (SELECT count(*) FROM (SELECT FROM recent WHERE {matches} LIMIT $2) \
                        AS first) < $2 \
                 ORDER BY id DESC LIMIT $2)) AS found"
        );
        let mut query = diesel::sql_query(sql)
            .into_boxed::<diesel::pg::Pg>()
            .bind::<SqlUuid, _>(account.as_uuid())
            .bind::<BigInt, _>(i64::from(page.limit))
            .bind::<BigInt, _>(SEARCH_WALK);
        if let Some(after) = page.after {
            query = query.bind::<SqlUuid, _>(after);
        }
        if let Some(tag) = tag {
            query = query.bind::<Text, _>(tag.as_str().to_owned());
        }
        query = query.bind::<Text, _>(contains_pattern(text));
        let mut rows: Vec<LinkRow> = query.load(conn).await?;
        rows.sort_unstable_by_key(|r| std::cmp::Reverse(r.id));
        rows.truncate(page.limit as usize);
        Ok(rows)
    }

    /// The visit report from `source` (a set-returning function of an id and two days,
    /// inlined into the query): in one snapshot and one pass over its rows, each
    /// dimension's values added up, its first `top` (most clicks, ties by value bytewise)
    /// kept and the rest summed into one row (value NULL), and bots per day (dimension 0,
    /// through the key). A stored `(other)` (the tail of capped days, migration `000019`)
    /// always goes to the rest, never among the top values. Top-N per dimension rather than
    /// ranking every value: a year of a link with many referrers adds up to some 10 000
    /// values, and sorting them all cost a quarter of the query.
    async fn visits(
        &self,
        scope: Scope<'_>,
        source: &str,
        id: Uuid,
        from: NaiveDate,
        to: NaiveDate,
        top: usize,
    ) -> Result<VisitReport, AppError> {
        let mut conn = self.read_conn(scope).await?;
        let rows: Vec<VisitRow> = diesel::sql_query(format!(
            "WITH v AS NOT MATERIALIZED \
                    (SELECT dimension, day, value, clicks FROM {source}($1, $2, $3)), \
                  totals AS MATERIALIZED \
                    (SELECT dimension, value, sum(clicks)::bigint AS clicks \
                     FROM v GROUP BY dimension, value), \
                  top AS MATERIALIZED \
                    (SELECT d::smallint AS dimension, t.value, t.clicks \
                     FROM unnest($7::smallint[]) AS d, \
                          LATERAL (SELECT value, clicks FROM totals \
                                   WHERE dimension = d AND value <> '(other)' \
                                   ORDER BY clicks DESC, value COLLATE \"C\" LIMIT $4) AS t) \
             SELECT dimension, NULL::date AS day, value, clicks FROM top \
             UNION ALL \
             SELECT dimension, NULL, NULL, \
                    (sum(clicks) - coalesce((SELECT sum(clicks) FROM top \
                                             WHERE top.dimension = totals.dimension), 0))::bigint \
             FROM totals GROUP BY dimension \
             UNION ALL \
             SELECT 0::smallint, day, NULL, sum(clicks)::bigint FROM v \
             WHERE dimension = $5 AND value = $6 GROUP BY day"
        ))
        .bind::<SqlUuid, _>(id)
        .bind::<Date, _>(from)
        .bind::<Date, _>(to)
        .bind::<BigInt, _>(i64::try_from(top).unwrap_or(i64::MAX))
        .bind::<SmallInt, _>(Dimension::Device.code())
        .bind::<Text, _>(Device::Bot.as_str())
        .bind::<Array<SmallInt>, _>(Dimension::ALL.map(Dimension::code).to_vec())
        .load(&mut conn)
        .await
        .map_err(PgError::from)?;
        Ok(visit_report(rows))
    }
}

/// A row of [`LinkStore::link_visits`]' query.
#[derive(QueryableByName)]
struct VisitRow {
    #[diesel(sql_type = SmallInt)]
    dimension: i16,
    #[diesel(sql_type = Nullable<Date>)]
    day: Option<NaiveDate>,
    #[diesel(sql_type = Nullable<Text>)]
    value: Option<String>,
    #[diesel(sql_type = BigInt)]
    clicks: i64,
}

/// The report from the query's rows: bots per day (dimension 0), each dimension's top
/// values (a value) and the rest (no value).
fn visit_report(rows: Vec<VisitRow>) -> VisitReport {
    let mut report = VisitReport::default();
    let mut breakdowns: Vec<Breakdown> = Vec::new();
    for row in rows {
        if row.dimension == 0 {
            if let Some(day) = row.day {
                report.bots_daily.push((day, row.clicks));
            }
            continue;
        }
        let Some(dimension) = Dimension::from_code(row.dimension) else {
            continue;
        };
        let at = match breakdowns.iter().position(|b| b.dimension == dimension) {
            Some(at) => at,
            None => {
                breakdowns.push(Breakdown {
                    dimension,
                    top: Vec::new(),
                    other: 0,
                });
                breakdowns.len() - 1
            }
        };
        let b = &mut breakdowns[at];
        match row.value {
            Some(value) => b.top.push((value, row.clicks)),
            None => b.other += row.clicks,
        }
    }
    for b in &mut breakdowns {
        shortener_app::rank(&mut b.top);
    }
    breakdowns.sort_by_key(|b| b.dimension);
    report.bots_daily.sort_unstable();
    report.breakdowns = breakdowns;
    report
}

impl AccountStore for PgStore {
    async fn account(&self, id: AccountId) -> Result<Option<AccountView>, AppError> {
        let mut conn = self.read_conn(Scope::Account(id.as_uuid())).await?;
        let row = accounts::table
            .inner_join(subscription_rows::table.on(subscription_rows::account_id.eq(accounts::id)))
            .filter(accounts::id.eq(id.as_uuid()))
            .select((AccountRow::as_select(), SubscriptionRow::as_select()))
            .first(&mut conn)
            .await
            .optional()
            .map_err(PgError::from)?;
        Ok(row.map(account_view).transpose()?)
    }

    async fn list_accounts(
        &self,
        name: Option<&NameSearch>,
        page: PageRequest,
    ) -> Result<Vec<AccountView>, AppError> {
        let mut conn = self.read_conn(Scope::Everything).await?;
        let mut query = accounts::table
            .inner_join(subscription_rows::table.on(subscription_rows::account_id.eq(accounts::id)))
            .select((AccountRow::as_select(), SubscriptionRow::as_select()))
            .order(accounts::id.asc())
            .limit(i64::from(page.limit))
            .into_boxed();
        if let Some(after) = page.after {
            query = query.filter(accounts::id.gt(after));
        }
        // No index serves a substring: the accounts are read in id order and those whose
        // name matches kept, until the page is full.
        if let Some(name) = name {
            query = query.filter(accounts::name.ilike(contains_pattern(name.as_str())));
        }
        let rows = query.load(&mut conn).await.map_err(PgError::from)?;
        Ok(rows
            .into_iter()
            .map(account_view)
            .collect::<Result<_, _>>()?)
    }
}

/// How a key is found: by the lookup part a presented key names, or by the id a session
/// row names.
pub(crate) enum KeyBy<'a> {
    Lookup(&'a str),
    Id(Uuid),
}

impl PgStore {
    /// The key, with its owner's plan read in the same statement: every request
    /// authenticates, and the rate limit needs the plan's rate.
    pub(crate) async fn key_on_file(&self, by: KeyBy<'_>) -> Result<Option<KeyOnFile>, AppError> {
        let mut conn = self.db.conn().await?;
        let query = api_keys::table
            .left_join(
                subscription_rows::table.on(subscription_rows::account_id
                    .nullable()
                    .eq(api_keys::account_id)),
            )
            .select((
                KeyRow::as_select(),
                subscription_rows::state.nullable(),
                subscription_rows::plan.nullable(),
            ))
            .into_boxed();
        let query = match by {
            KeyBy::Lookup(lookup) => query.filter(api_keys::lookup.eq(lookup.to_owned())),
            KeyBy::Id(id) => query.filter(api_keys::id.eq(id)),
        };
        let row: Option<(KeyRow, Option<String>, Option<String>)> = query
            .first(&mut conn)
            .await
            .optional()
            .map_err(PgError::from)?;
        let Some((row, state, plan)) = row else {
            return Ok(None);
        };
        let key = row.into_key()?;
        let plan = match (&key.owner, state.as_deref(), plan) {
            (KeyOwner::Admin, ..) => None,
            (KeyOwner::Account(_), Some("active"), Some(plan)) => Some(
                plan.parse::<PlanName>()
                    .map_err(|_| corrupt("subscription", format!("plan {plan}")))?,
            ),
            // Trial, or ended: the trial's rate.
            (KeyOwner::Account(_), ..) => Some(PlanName::Trial),
        };
        Ok(Some(KeyOnFile { key, plan }))
    }
}

impl KeyStore for PgStore {
    async fn key_by_lookup(&self, lookup: &str) -> Result<Option<KeyOnFile>, AppError> {
        self.key_on_file(KeyBy::Lookup(lookup)).await
    }

    async fn keys_of(&self, account: AccountId) -> Result<Vec<StoredKey>, AppError> {
        let mut conn = self.read_conn(Scope::Account(account.as_uuid())).await?;
        let rows = api_keys::table
            .filter(api_keys::account_id.eq(account.as_uuid()))
            .order((api_keys::created_at.desc(), api_keys::id.desc()))
            .select(KeyRow::as_select())
            .load(&mut conn)
            .await
            .map_err(PgError::from)?;
        Ok(rows
            .into_iter()
            .map(KeyRow::into_key)
            .collect::<Result<_, _>>()?)
    }

    async fn put_bootstrap_key(&self, key: &StoredKey) -> Result<(), AppError> {
        let mut conn = self.db.conn().await?;
        diesel::insert_into(api_keys::table)
            .values(KeyRow::from_key(key))
            .on_conflict(api_keys::lookup)
            .do_update()
            .set((
                api_keys::secret_hash.eq(key.secret_hash.to_vec()),
                api_keys::revoked_at.eq(None::<DateTime<Utc>>),
            ))
            .execute(&mut conn)
            .await
            .map_err(PgError::from)?;
        Ok(())
    }
}

/// The states that end by themselves when their period runs out.
const LIVE: [State; 2] = [State::Trial, State::Active];

fn by_account(rows: Vec<SubscriptionRow>) -> Result<Vec<(AccountId, Versioned)>, PgError> {
    rows.into_iter()
        .map(|r| Ok((AccountId::from_uuid(r.account_id), r.into_versioned()?)))
        .collect()
}

impl SubscriptionStore for PgStore {
    async fn subscription(&self, account: AccountId) -> Result<Option<Versioned>, AppError> {
        let mut conn = self.read_conn(Scope::Account(account.as_uuid())).await?;
        let row = subscription_rows::table
            .filter(subscription_rows::account_id.eq(account.as_uuid()))
            .select(SubscriptionRow::as_select())
            .first(&mut conn)
            .await
            .optional()
            .map_err(PgError::from)?;
        Ok(row.map(SubscriptionRow::into_versioned).transpose()?)
    }

    async fn list_subscriptions(
        &self,
        state: Option<State>,
        now: DateTime<Utc>,
        page: PageRequest,
    ) -> Result<Vec<(AccountId, Versioned)>, AppError> {
        use subscription_rows::dsl as s;
        let mut conn = self.read_conn(Scope::Everything).await?;
        let mut query = s::subscription_rows
            .select(SubscriptionRow::as_select())
            .order(s::account_id.asc())
            .limit(i64::from(page.limit))
            .into_boxed();
        if let Some(after) = page.after {
            query = query.filter(s::account_id.gt(after));
        }
        // The effective state, as `Subscription::effective_at` computes it: a live state
        // holds only until its end, after which the row counts as expired.
        query = match state {
            None => query,
            Some(live @ (State::Trial | State::Active)) => {
                query.filter(s::state.eq(live.as_str()).and(s::ends_at.gt(now)))
            }
            Some(State::Expired) => query.filter(
                s::state.eq(State::Expired.as_str()).or(s::state
                    .eq_any(LIVE.map(State::as_str))
                    .and(s::ends_at.le(now))),
            ),
            Some(State::Cancelled) => query.filter(s::state.eq(State::Cancelled.as_str())),
        };
        let rows = query.load(&mut conn).await.map_err(PgError::from)?;
        Ok(by_account(rows)?)
    }

    async fn due_for_expiry(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<(AccountId, Versioned)>, AppError> {
        use subscription_rows::dsl as s;
        let mut conn = self.db.conn().await?;
        let rows = s::subscription_rows
            .filter(s::state.eq_any(LIVE.map(State::as_str)))
            .filter(s::ends_at.le(now))
            .order(s::ends_at.asc())
            .limit(i64::from(limit))
            .select(SubscriptionRow::as_select())
            .load(&mut conn)
            .await
            .map_err(PgError::from)?;
        Ok(by_account(rows)?)
    }
}

#[cfg(test)]
mod tests {
    use super::contains_pattern;

    #[test]
    fn search_patterns_escape_what_like_would_read_as_wildcards() {
        assert_eq!(contains_pattern("abc"), "%abc%");
        assert_eq!(contains_pattern("50%_off"), "%50\\%\\_off%");
        assert_eq!(contains_pattern("a\\b"), "%a\\\\b%");
    }
}

//! The unit of work on PostgreSQL: each piece of work runs in one transaction on one
//! pooled connection, and every write port, the audit recorder included, writes through
//! that transaction. A change and its audit entry therefore share one commit (one WAL
//! flush), and a failure anywhere rolls both back.

use audit::{AuditEntry, AuditRecorder, BoxFuture};
use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use shortener_app::{
    AccountWrites, AppError, IdempotencyWrites, Inserted, KeyWrites, LinkWrites, Recorded, Revoked,
    Rewind, Stored, StoredKey, SubscriptionWrites, Tx, UnitOfWork,
};
use shortener_domain::{Account, AccountId, KeyId, Link, LinkId, ShortCode};
use subscriptions::{Subscription, Versioned};

use crate::schema::{accounts, api_keys, links, subscription_rows};
use crate::store::{AccountRow, KeyRow, LinkRow, SubscriptionRow};
use crate::{PgError, PgStore};

/// Why a transaction rolled back: the work refused, or the database failed around it.
enum Abort {
    Db(diesel::result::Error),
    App(AppError),
}

impl From<diesel::result::Error> for Abort {
    fn from(e: diesel::result::Error) -> Self {
        Abort::Db(e)
    }
}

fn db<T>(r: Result<T, diesel::result::Error>) -> Result<T, AppError> {
    r.map_err(|e| PgError::from(e).into())
}

impl UnitOfWork for PgStore {
    async fn run<T, F>(&self, work: F) -> Result<T, AppError>
    where
        T: Send + 'static,
        F: for<'t> FnOnce(&'t mut dyn Tx) -> BoxFuture<'t, Result<T, AppError>> + Send + 'static,
    {
        let mut conn = self.db().conn().await?;
        let track = self.replicas.is_some();
        let out = conn
            .transaction(async move |conn| {
                let mut tx = PgTx {
                    conn,
                    audited: 0,
                    touched: track.then(Touched::default),
                };
                let out = work(&mut tx).await.map_err(Abort::App)?;
                Ok((out, tx.audited, tx.touched))
            })
            .await;
        match out {
            Ok((v, audited, touched)) => {
                self.db().metrics().audit_entries.increment(audited);
                if let (Some(replicas), Some(t)) = (&self.replicas, touched) {
                    replicas.written(t.codes.iter().map(String::as_str), t.accounts);
                }
                Ok(v)
            }
            Err(Abort::App(e)) => Err(e),
            Err(Abort::Db(e)) => Err(PgError::from(e).into()),
        }
    }
}

/// One open transaction.
struct PgTx<'c> {
    conn: &'c mut AsyncPgConnection,
    /// Audit entries written, counted once the transaction commits.
    audited: u64,
    /// With replicas: what the work changed, marked once it commits so that reads of
    /// it stay on the primary until a replica has replayed it.
    touched: Option<Touched>,
}

/// What a unit of work changed, as its audit entries name it: every change is audited,
/// so this misses nothing a read must see.
#[derive(Default)]
struct Touched {
    codes: Vec<String>,
    accounts: Vec<uuid::Uuid>,
}

impl Touched {
    fn add(&mut self, entry: &AuditEntry) {
        if entry.entity.kind == audit::EntityType::Link {
            self.codes.push(entry.entity.id.clone());
        }
        if let Some(id) = entry.account_id
            && !self.accounts.contains(&id)
        {
            self.accounts.push(id);
        }
    }
}

impl LinkWrites for PgTx<'_> {
    fn insert_link<'a>(&'a mut self, link: &'a Link) -> BoxFuture<'a, Result<Inserted, AppError>> {
        Box::pin(async move {
            let n = db(diesel::insert_into(links::table)
                .values(LinkRow::from_link(link))
                .on_conflict(links::code)
                .do_nothing()
                .execute(self.conn)
                .await)?;
            Ok(if n == 1 {
                Inserted::Created
            } else {
                Inserted::CodeTaken
            })
        })
    }

    fn insert_links<'a>(
        &'a mut self,
        links: &'a [Link],
    ) -> BoxFuture<'a, Result<Vec<LinkId>, AppError>> {
        Box::pin(async move {
            let rows: Vec<LinkRow> = links.iter().map(LinkRow::from_link).collect();
            // One statement for the lot (9 parameters a row: 1000 rows stay far below
            // PostgreSQL's 65 535); a row whose code is taken, by a stored link or by one
            // earlier in `rows`, is skipped and missing from the ids returned.
            let ids: Vec<uuid::Uuid> = db(diesel::insert_into(links::table)
                .values(&rows)
                .on_conflict(links::code)
                .do_nothing()
                .returning(links::id)
                .get_results(self.conn)
                .await)?;
            Ok(ids.into_iter().map(LinkId::from_uuid).collect())
        })
    }

    fn link_for_update<'a>(
        &'a mut self,
        code: &'a ShortCode,
    ) -> BoxFuture<'a, Result<Option<Link>, AppError>> {
        Box::pin(async move {
            let row = db(links::table
                .filter(links::code.eq(code.as_str()))
                .filter(links::deleted_at.is_null())
                .select(LinkRow::as_select())
                .for_update()
                .first(self.conn)
                .await
                .optional())?;
            Ok(row.map(LinkRow::into_link).transpose()?)
        })
    }

    fn update_link<'a>(&'a mut self, link: &'a Link) -> BoxFuture<'a, Result<bool, AppError>> {
        Box::pin(async move {
            let n = db(diesel::update(links::table)
                .filter(links::id.eq(link.id.as_uuid()))
                .filter(links::deleted_at.is_null())
                .set((
                    links::target.eq(link.target.as_str()),
                    links::expires_at.eq(link.expires_at),
                    links::tags.eq(link.tags.to_strings()),
                    links::title.eq(link.title.as_ref().map(|t| t.as_str())),
                    links::max_visits.eq(link.visit_limit.map(|v| v.max.get() as i32)),
                    links::visits_used.eq(link
                        .visit_limit
                        .map_or(0, |v| i64::try_from(v.used).unwrap_or(i64::MAX))),
                    links::password_hash.eq(link.password.as_ref().map(|h| h.as_str())),
                ))
                .execute(self.conn)
                .await)?;
            Ok(n == 1)
        })
    }

    fn delete_link(
        &mut self,
        id: LinkId,
        at: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<bool, AppError>> {
        Box::pin(async move {
            let n = db(diesel::update(links::table)
                .filter(links::id.eq(id.as_uuid()))
                .filter(links::deleted_at.is_null())
                .set(links::deleted_at.eq(at))
                .execute(self.conn)
                .await)?;
            Ok(n == 1)
        })
    }
}

impl AccountWrites for PgTx<'_> {
    fn insert_account<'a>(
        &'a mut self,
        account: &'a Account,
        subscription: &'a Versioned,
    ) -> BoxFuture<'a, Result<(), AppError>> {
        Box::pin(async move {
            db(diesel::insert_into(accounts::table)
                .values(AccountRow {
                    id: account.id.as_uuid(),
                    name: account.name.as_str().to_owned(),
                    created_at: account.created_at,
                })
                .execute(&mut *self.conn)
                .await)?;
            db(diesel::insert_into(subscription_rows::table)
                .values(SubscriptionRow::from_versioned(
                    account.id,
                    subscription,
                    account.created_at,
                ))
                .execute(self.conn)
                .await)?;
            Ok(())
        })
    }
}

impl KeyWrites for PgTx<'_> {
    fn insert_key<'a>(&'a mut self, key: &'a StoredKey) -> BoxFuture<'a, Result<(), AppError>> {
        Box::pin(async move {
            db(diesel::insert_into(api_keys::table)
                .values(KeyRow::from_key(key))
                .execute(self.conn)
                .await)?;
            Ok(())
        })
    }

    fn revoke_key(
        &mut self,
        account: AccountId,
        id: KeyId,
        at: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<Revoked, AppError>> {
        Box::pin(async move {
            let key = api_keys::table
                .filter(api_keys::id.eq(id.as_uuid()))
                .filter(api_keys::account_id.eq(account.as_uuid()));
            // Revoking twice keeps the first revocation time.
            let revoked = db(diesel::update(key.filter(api_keys::revoked_at.is_null()))
                .set(api_keys::revoked_at.eq(at))
                .execute(&mut *self.conn)
                .await)?;
            if revoked == 1 {
                return Ok(Revoked::Now);
            }
            let existing: i64 = db(key.count().get_result(self.conn).await)?;
            Ok(if existing == 1 {
                Revoked::Already
            } else {
                Revoked::NoSuchKey
            })
        })
    }
}

/// Which row lock a read takes.
enum Lock {
    Share,
    Update,
}

async fn locked_subscription(
    conn: &mut AsyncPgConnection,
    account: AccountId,
    lock: Lock,
) -> Result<Option<Versioned>, AppError> {
    let query = subscription_rows::table
        .filter(subscription_rows::account_id.eq(account.as_uuid()))
        .select(SubscriptionRow::as_select());
    let row = match lock {
        Lock::Share => query.for_share().first(conn).await,
        Lock::Update => query.for_update().first(conn).await,
    };
    Ok(db(row.optional())?
        .map(SubscriptionRow::into_versioned)
        .transpose()?)
}

impl SubscriptionWrites for PgTx<'_> {
    fn subscription_for_share(
        &mut self,
        account: AccountId,
    ) -> BoxFuture<'_, Result<Option<Versioned>, AppError>> {
        // FOR SHARE: concurrent creates proceed together, a transition waits for them.
        Box::pin(locked_subscription(self.conn, account, Lock::Share))
    }

    fn subscription_for_update(
        &mut self,
        account: AccountId,
    ) -> BoxFuture<'_, Result<Option<Versioned>, AppError>> {
        Box::pin(locked_subscription(self.conn, account, Lock::Update))
    }

    fn replace_subscription<'a>(
        &'a mut self,
        account: AccountId,
        expected: i64,
        next: &'a Subscription,
        at: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<bool, AppError>> {
        Box::pin(async move {
            let row = SubscriptionRow::from_versioned(
                account,
                &Versioned {
                    subscription: next.clone(),
                    version: expected + 1,
                },
                at,
            );
            // Conditional on the version read: of two racing writers exactly one matches.
            let n = db(diesel::update(
                subscription_rows::table
                    .filter(subscription_rows::account_id.eq(account.as_uuid()))
                    .filter(subscription_rows::version.eq(expected)),
            )
            .set((
                subscription_rows::state.eq(&row.state),
                subscription_rows::plan.eq(&row.plan),
                subscription_rows::ends_at.eq(row.ends_at),
                subscription_rows::reason.eq(&row.reason),
                subscription_rows::version.eq(row.version),
                subscription_rows::updated_at.eq(row.updated_at),
            ))
            .execute(self.conn)
            .await)?;
            Ok(n == 1)
        })
    }

    fn take_allowance(
        &mut self,
        account: AccountId,
        month: NaiveDate,
        allowance: u64,
        units: u64,
    ) -> BoxFuture<'_, Result<bool, AppError>> {
        Box::pin(async move {
            use crate::schema::link_usage as u;
            if units > allowance {
                return Ok(false);
            }
            // At most `room` may be taken already for `units` more to fit.
            let room = i64::try_from(allowance - units).unwrap_or(i64::MAX);
            let units = i64::try_from(units).unwrap_or(i64::MAX);
            // Concurrent creates queue on this row's lock and each sees the count the
            // previous one committed, so the limit holds exactly; a rolled-back create
            // gives its unit back. Written with the DSL (not raw SQL) so the statement is
            // prepared once per connection: it runs while the row is held.
            let upsert = diesel::insert_into(u::table)
                .values((
                    u::account_id.eq(account.as_uuid()),
                    u::month.eq(month),
                    u::links_created.eq(units),
                ))
                .on_conflict((u::account_id, u::month))
                .do_update()
                .set(u::links_created.eq(u::links_created + units));
            // `ON CONFLICT ... DO UPDATE ... WHERE`: no row is counted once it is full.
            let taken = db(diesel::query_dsl::methods::FilterDsl::filter(
                upsert,
                u::links_created.le(room),
            )
            .execute(self.conn)
            .await)?;
            Ok(taken == 1)
        })
    }
}

impl AuditRecorder for PgTx<'_> {
    type Error = AppError;

    fn record(&mut self, entry: AuditEntry) -> BoxFuture<'_, Result<(), AppError>> {
        Box::pin(async move {
            crate::audit_log::record_at_database_time(self.conn, &entry).await?;
            self.audited += 1;
            if let Some(t) = &mut self.touched {
                t.add(&entry);
            }
            Ok(())
        })
    }

    fn record_all(&mut self, entries: Vec<AuditEntry>) -> BoxFuture<'_, Result<(), AppError>> {
        Box::pin(async move {
            crate::audit_log::record_all_at_database_time(self.conn, &entries).await?;
            self.audited += entries.len() as u64;
            if let Some(t) = &mut self.touched {
                entries.iter().for_each(|e| t.add(e));
            }
            Ok(())
        })
    }
}

/// The one savepoint a unit of work may set (diesel's own are named `diesel_savepoint_N`
/// and are not used inside a unit of work).
const MARK: &str = "unit_of_work_mark";

impl Rewind for PgTx<'_> {
    fn mark(&mut self) -> BoxFuture<'_, Result<(), AppError>> {
        Box::pin(async move {
            db(diesel::sql_query(format!("SAVEPOINT {MARK}"))
                .execute(self.conn)
                .await)?;
            Ok(())
        })
    }

    fn rewind(&mut self) -> BoxFuture<'_, Result<(), AppError>> {
        Box::pin(async move {
            db(diesel::sql_query(format!("ROLLBACK TO SAVEPOINT {MARK}"))
                .execute(self.conn)
                .await)?;
            Ok(())
        })
    }
}

impl IdempotencyWrites for PgTx<'_> {
    fn try_lock_key<'a>(
        &'a mut self,
        account: AccountId,
        key: &'a str,
    ) -> BoxFuture<'a, Result<bool, AppError>> {
        Box::pin(async move { Ok(crate::idempotency::try_lock(self.conn, account, key).await?) })
    }

    fn recorded_answer<'a>(
        &'a mut self,
        account: AccountId,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Stored>, AppError>> {
        Box::pin(async move { Ok(crate::idempotency::recorded(self.conn, account, key).await?) })
    }

    fn record_answer<'a>(
        &'a mut self,
        account: AccountId,
        key: &'a str,
        hash: &'a [u8; 32],
        answer: &'a Recorded,
        at: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<(), AppError>> {
        Box::pin(async move {
            crate::idempotency::record(self.conn, account, key, hash, answer, at).await?;
            Ok(())
        })
    }
}

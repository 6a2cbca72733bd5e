//! Idempotency keys' storage (`shortener.idempotency_keys`, migration `000016`): the
//! per-key lock, the recorded answers, and their pruning.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use shortener_app::{Recorded, Stored};
use shortener_domain::AccountId;

use crate::schema::idempotency_keys as k;
use crate::store::corrupt;
use crate::{Db, PgError};

#[derive(QueryableByName)]
struct Locked {
    #[diesel(sql_type = Bool)]
    locked: bool,
}

/// Takes the transaction-scoped advisory lock of `account`'s `key` if it is free. The lock
/// is on a 64-bit hash: two keys that share one only answer each other's 409s.
pub(crate) async fn try_lock(
    conn: &mut AsyncPgConnection,
    account: AccountId,
    key: &str,
) -> Result<bool, PgError> {
    let row: Locked = diesel::sql_query(
        "SELECT pg_try_advisory_xact_lock(hashtextextended($1::text || '/' || $2, 16)) AS locked",
    )
    .bind::<SqlUuid, _>(account.as_uuid())
    .bind::<Text, _>(key)
    .get_result(conn)
    .await?;
    Ok(row.locked)
}

/// The answer recorded under `account`'s `key`, with its request's hash.
pub(crate) async fn recorded(
    conn: &mut AsyncPgConnection,
    account: AccountId,
    key: &str,
) -> Result<Option<Stored>, PgError> {
    let row: Option<(Vec<u8>, i16, String)> = k::table
        .filter(k::account_id.eq(account.as_uuid()))
        .filter(k::key.eq(key))
        .select((k::request_hash, k::status, k::body))
        .first(conn)
        .await
        .optional()?;
    row.map(|(hash, status, body)| {
        let hash: [u8; 32] = hash
            .try_into()
            .map_err(|h: Vec<u8>| corrupt("request hash", format!("{} bytes", h.len())))?;
        let status = u16::try_from(status).map_err(|e| corrupt("answer status", e))?;
        Ok((hash, Recorded { status, body }))
    })
    .transpose()
}

/// Records the answer to the request hashed `hash` under `account`'s `key`.
pub(crate) async fn record(
    conn: &mut AsyncPgConnection,
    account: AccountId,
    key: &str,
    hash: &[u8; 32],
    answer: &Recorded,
    at: DateTime<Utc>,
) -> Result<(), PgError> {
    let status = i16::try_from(answer.status).map_err(|e| corrupt("answer status", e))?;
    diesel::insert_into(k::table)
        .values((
            k::account_id.eq(account.as_uuid()),
            k::key.eq(key),
            k::request_hash.eq(hash.as_slice()),
            k::status.eq(status),
            k::body.eq(&answer.body),
            k::created_at.eq(at),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

impl Db {
    /// Deletes up to `limit` recorded answers made before `before`; returns how many. A
    /// small batch per statement, so the prune never holds many rows at once; loop until
    /// it comes back short.
    pub async fn prune_idempotency_keys(
        &self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<usize, PgError> {
        let mut conn = self.conn().await?;
        let n = diesel::sql_query(
            "DELETE FROM shortener.idempotency_keys WHERE (account_id, key) IN \
             (SELECT account_id, key FROM shortener.idempotency_keys \
              WHERE created_at < $1 LIMIT $2)",
        )
        .bind::<Timestamptz, _>(before)
        .bind::<BigInt, _>(i64::from(limit))
        .execute(&mut conn)
        .await?;
        Ok(n)
    }
}

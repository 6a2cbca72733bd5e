//! Shared rate-limit budgets: the app's [`RateLedger`] on `shortener.rate_take`
//! (migration `000015` says how the window is counted and why the table is unlogged).

use diesel::sql_types::{BigInt, Integer, Nullable, Text, Uuid as SqlUuid};
use diesel::{QueryableByName, sql_query};
use diesel_async::RunQueryDsl;
use shortener_app::{AppError, RateLedger, Take, Taken};

use crate::{PgError, PgStore};

#[derive(QueryableByName)]
struct Granted {
    #[diesel(sql_type = Integer)]
    granted: i32,
    #[diesel(sql_type = Integer)]
    counted: i32,
    #[diesel(sql_type = Nullable<BigInt>)]
    oldest: Option<i64>,
}

/// Slots are seconds since 1970: far inside `bigint`.
fn slot_sql(slot: u64) -> i64 {
    i64::try_from(slot).unwrap_or(i64::MAX)
}

fn count_sql(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

impl RateLedger for PgStore {
    async fn take(&self, take: &Take) -> Result<Taken, AppError> {
        let mut conn = self.db().conn().await?;
        let (back_slot, back) = take.give_back.unwrap_or((0, 0));
        let row: Granted = sql_query(
            "SELECT granted, counted, oldest FROM shortener.rate_take($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind::<Text, _>(take.policy.as_str())
        .bind::<SqlUuid, _>(take.partition)
        .bind::<Integer, _>(count_sql(take.limit.quota.get()))
        .bind::<Integer, _>(count_sql(take.limit.window_secs.get()))
        .bind::<BigInt, _>(slot_sql(take.slot))
        .bind::<Integer, _>(count_sql(take.want))
        .bind::<BigInt, _>(slot_sql(back_slot))
        .bind::<Integer, _>(count_sql(back))
        .get_result(&mut conn)
        .await
        .map_err(PgError::from)?;
        Ok(Taken {
            granted: u32::try_from(row.granted).unwrap_or(0),
            counted: u32::try_from(row.counted).unwrap_or(0),
            oldest: row.oldest.and_then(|s| u64::try_from(s).ok()),
        })
    }
}

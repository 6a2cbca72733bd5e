//! Cross-instance cache invalidation through PostgreSQL `LISTEN/NOTIFY`: no infrastructure
//! beyond the database. A trigger on `shortener.links` notifies `shortener_links` with the
//! code on every write that changes a redirect, and records the code in
//! `shortener.link_changes`; each instance listens on a connection of its own and drops
//! that code from its resolve cache.
//!
//! Losing the connection does not cost the cache: while nobody listens nothing is dropped
//! (during a database outage nothing can change a link anyway, so the cached answers stay
//! right), and on reconnecting the listener reads from `link_changes` what changed since
//! it last knew itself to be listening, less a margin, and drops exactly those codes.

use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{Text, Timestamptz};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use futures_util::StreamExt;
use shortener_app::metrics::{self, Meter};
use shortener_app::{Chain, ResolveCache};

use crate::{PgError, Replicas};

/// The channel the trigger notifies.
pub const CHANNEL: &str = "shortener_links";
/// `application_name` of the listening connection, so operators (and tests) can find it.
pub const APPLICATION_NAME: &str = "shortener-listener";
/// How often the connection is checked with a query (so a silently dead one is noticed),
/// which also moves forward the instant the listener knows it was listening.
const HEARTBEAT: Duration = Duration::from_secs(5);
/// Wait between reconnection attempts.
const RECONNECT: Duration = Duration::from_secs(1);
/// Caught up from this long before the last instant known to be heard: a change statement
/// that ran before it may commit after it (a unit of work lasts well under this), and a
/// notification sent before it may have been lost in the closing connection.
const MARGIN: chrono::TimeDelta = chrono::TimeDelta::minutes(1);
/// How long `link_changes` rows are kept; an instance away longer clears its whole cache.
const KEEP: chrono::TimeDelta = chrono::TimeDelta::days(1);

#[derive(QueryableByName)]
struct Now {
    #[diesel(sql_type = Timestamptz)]
    now: DateTime<Utc>,
}

#[derive(QueryableByName)]
struct Changed {
    #[diesel(sql_type = Text)]
    code: String,
}

/// Listens for link changes until the task is dropped, reconnecting forever. The first
/// connection clears the cache (whatever was looked up before it could have been changed
/// unheard); every later one drops only what changed while the listener was away.
/// `meter` shows whether it is connected, and how often it had to reconnect.
///
/// With `replicas`, every change heard is marked before its code leaves the cache, so the
/// lookup that refills it reads the new state (see `crate::replicas`).
pub async fn follow_link_changes(
    url: String,
    cache: Arc<ResolveCache>,
    replicas: Option<Replicas>,
    meter: Meter,
) {
    let connected = meter.gauge(&metrics::LISTENER_CONNECTED, &[]);
    let reconnects = meter.counter(&metrics::LISTENER_RECONNECTS, &[]);
    // The database's clock when the listener last knew itself to be listening.
    let mut heard: Option<DateTime<Utc>> = None;
    loop {
        let mut up = false;
        let listened = listen(
            &url,
            &cache,
            replicas.as_ref(),
            &mut heard,
            &connected,
            &mut up,
        )
        .await;
        connected.set(0.0);
        if up {
            reconnects.increment(1);
        }
        if let Err(e) = listened {
            tracing::warn!(
                error = %Chain(&e),
                "link change listener lost; serving from the cache and reconnecting"
            );
        }
        tokio::time::sleep(RECONNECT).await;
    }
}

/// The codes changed since `since`.
async fn changed_since(
    conn: &mut AsyncPgConnection,
    since: DateTime<Utc>,
) -> Result<Vec<Changed>, PgError> {
    Ok(
        diesel::sql_query(
            "SELECT DISTINCT code FROM shortener.link_changes WHERE changed_at >= $1",
        )
        .bind::<Timestamptz, _>(since)
        .load(conn)
        .await?,
    )
}

async fn database_now(conn: &mut AsyncPgConnection) -> Result<DateTime<Utc>, PgError> {
    let row: Now = diesel::sql_query("SELECT clock_timestamp() AS now")
        .get_result(conn)
        .await?;
    Ok(row.now)
}

async fn listen(
    url: &str,
    cache: &ResolveCache,
    replicas: Option<&Replicas>,
    heard: &mut Option<DateTime<Utc>>,
    connected: &metrics::Gauge,
    up: &mut bool,
) -> Result<(), PgError> {
    let mut conn = AsyncPgConnection::establish(url)
        .await
        .map_err(PgError::unavailable)?;
    diesel::sql_query(format!("SET application_name = '{APPLICATION_NAME}'"))
        .execute(&mut conn)
        .await?;
    diesel::sql_query(format!("LISTEN {CHANNEL}"))
        .execute(&mut conn)
        .await?;
    // From here on every change is heard; catch up with what was not.
    let now = database_now(&mut conn).await?;
    match *heard {
        Some(at) if now - at < KEEP - MARGIN => {
            let changed = changed_since(&mut conn, at - MARGIN).await?;
            if let Some(r) = replicas {
                r.links_changed(changed.iter().map(|c| c.code.as_str()));
            }
            for c in &changed {
                cache.invalidate(&c.code);
            }
            tracing::info!(
                dropped = changed.len(),
                "listening for link changes again; dropped what changed meanwhile"
            );
        }
        _ => {
            // What changed within a replica's allowed lag may not be on it yet.
            if let Some(r) = replicas {
                let window = chrono::TimeDelta::from_std(r.max_lag()).unwrap_or(KEEP) + MARGIN;
                let changed = changed_since(&mut conn, now - window).await?;
                r.links_changed(changed.iter().map(|c| c.code.as_str()));
            }
            cache.clear();
            tracing::info!("listening for link changes");
        }
    }
    *heard = Some(now);
    connected.set(1.0);
    *up = true;
    diesel::sql_query("DELETE FROM shortener.link_changes WHERE changed_at < $1")
        .bind::<Timestamptz, _>(now - KEEP)
        .execute(&mut conn)
        .await?;
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    heartbeat.tick().await;
    loop {
        let next = {
            let mut stream = pin!(conn.notifications_stream());
            tokio::select! {
                n = stream.next() => Some(n),
                _ = heartbeat.tick() => None,
            }
        };
        match next {
            Some(Some(Ok(n))) => {
                if let Some(r) = replicas {
                    r.links_changed([n.payload.as_str()]);
                }
                cache.invalidate(&n.payload);
            }
            Some(Some(Err(e))) => return Err(e.into()),
            Some(None) => {
                return Err(PgError::unavailable("the listening connection closed"));
            }
            None => *heard = Some(database_now(&mut conn).await?),
        }
    }
}

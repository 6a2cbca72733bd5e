//! Cross-instance cache invalidation through PostgreSQL `LISTEN/NOTIFY`: no infrastructure
//! beyond the database. A trigger on `shortener.links` notifies `shortener_links` with the
//! code on every write that changes a redirect; each instance listens on a connection of
//! its own and drops that code from its resolve cache.

use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use futures_util::StreamExt;
use shortener_app::{Chain, ResolveCache};

use crate::PgError;

/// The channel the trigger notifies.
pub const CHANNEL: &str = "shortener_links";
/// `application_name` of the listening connection, so operators (and tests) can find it.
pub const APPLICATION_NAME: &str = "shortener-listener";
/// Without notifications for this long, the connection is checked with a query, so a
/// silently dead one is noticed.
const HEARTBEAT: Duration = Duration::from_secs(5);
/// Wait between reconnection attempts.
const RECONNECT: Duration = Duration::from_secs(1);

/// Listens for link changes until the task is dropped, reconnecting forever. Every time
/// listening (re)starts, the cache is cleared: whatever was notified while nobody listened
/// is lost, so nothing cached before can be trusted.
pub async fn follow_link_changes(url: String, cache: Arc<ResolveCache>) {
    loop {
        if let Err(e) = listen(&url, &cache).await {
            tracing::warn!(error = %Chain(&e), "link change listener lost; clearing the resolve cache and reconnecting");
        }
        cache.clear();
        tokio::time::sleep(RECONNECT).await;
    }
}

async fn listen(url: &str, cache: &ResolveCache) -> Result<(), PgError> {
    let mut conn = AsyncPgConnection::establish(url)
        .await
        .map_err(PgError::unavailable)?;
    diesel::sql_query(format!("SET application_name = '{APPLICATION_NAME}'"))
        .execute(&mut conn)
        .await?;
    diesel::sql_query(format!("LISTEN {CHANNEL}"))
        .execute(&mut conn)
        .await?;
    // From here on every change is heard; what was cached before may be stale.
    cache.clear();
    tracing::info!("listening for link changes");
    loop {
        let next = {
            let mut stream = pin!(conn.notifications_stream());
            tokio::time::timeout(HEARTBEAT, stream.next()).await
        };
        match next {
            Ok(Some(Ok(n))) => cache.invalidate(&n.payload),
            Ok(Some(Err(e))) => return Err(e.into()),
            Ok(None) => {
                return Err(PgError::unavailable("the listening connection closed"));
            }
            Err(_quiet) => {
                diesel::sql_query("SELECT 1").execute(&mut conn).await?;
            }
        }
    }
}

//! The web interface's sessions (`shortener.ui_sessions`, migration 000024): a row per
//! open session, found by its token's hash; the key it names is read with it.

use chrono::{DateTime, Utc};
use diesel::sql_types::{Bytea, Timestamptz, Uuid as SqlUuid};
use diesel::{OptionalExtension, QueryableByName, sql_query};
use diesel_async::RunQueryDsl;
use shortener_app::{AppError, KeyOnFile, SessionStore, StoredSession};
use uuid::Uuid;

use crate::PgError;
use crate::store::{KeyBy, PgStore};

#[derive(QueryableByName)]
struct SessionKey {
    #[diesel(sql_type = SqlUuid)]
    key_id: Uuid,
}

impl SessionStore for PgStore {
    async fn insert_session(&self, session: &StoredSession) -> Result<(), AppError> {
        let mut conn = self.db.conn().await?;
        sql_query(
            "INSERT INTO shortener.ui_sessions (token_hash, key_id, created_at, expires_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind::<Bytea, _>(session.token_hash.as_slice())
        .bind::<SqlUuid, _>(session.key_id.as_uuid())
        .bind::<Timestamptz, _>(session.created_at)
        .bind::<Timestamptz, _>(session.expires_at)
        .execute(&mut conn)
        .await
        .map_err(PgError::from)?;
        Ok(())
    }

    async fn session_key(
        &self,
        token_hash: &[u8; 32],
        now: DateTime<Utc>,
    ) -> Result<Option<KeyOnFile>, AppError> {
        let row: Option<SessionKey> = {
            let mut conn = self.db.conn().await?;
            sql_query(
                "SELECT key_id FROM shortener.ui_sessions \
                 WHERE token_hash = $1 AND expires_at > $2",
            )
            .bind::<Bytea, _>(token_hash.as_slice())
            .bind::<Timestamptz, _>(now)
            .get_result(&mut conn)
            .await
            .optional()
            .map_err(PgError::from)?
        };
        match row {
            Some(SessionKey { key_id }) => self.key_on_file(KeyBy::Id(key_id)).await,
            None => Ok(None),
        }
    }

    async fn delete_session(&self, token_hash: &[u8; 32]) -> Result<(), AppError> {
        let mut conn = self.db.conn().await?;
        sql_query("DELETE FROM shortener.ui_sessions WHERE token_hash = $1")
            .bind::<Bytea, _>(token_hash.as_slice())
            .execute(&mut conn)
            .await
            .map_err(PgError::from)?;
        Ok(())
    }

    async fn delete_expired_sessions(&self, now: DateTime<Utc>) -> Result<usize, AppError> {
        let mut conn = self.db.conn().await?;
        let n = sql_query("DELETE FROM shortener.ui_sessions WHERE expires_at <= $1")
            .bind::<Timestamptz, _>(now)
            .execute(&mut conn)
            .await
            .map_err(PgError::from)?;
        Ok(n)
    }
}

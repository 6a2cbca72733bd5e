//! Sessions of the web interface: a person signs in once with an API key, and from then on
//! the browser carries a random session token instead of the key.
//!
//! Only the token's SHA-256 is stored, as with keys. The session row names the key that
//! opened it and every resume reads that key again, so a session ends when its key is
//! revoked, when it expires, or at sign-out (its row is deleted): nothing a stolen cookie
//! could outlive. A session's CSRF token is derived from its token, so it needs no storage
//! and cannot be computed without the cookie, which scripts cannot read (`HttpOnly`).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use shortener_domain::KeyId;
use subtle::ConstantTimeEq;

use crate::keys::{hash, random_base62};
use crate::{AppError, Authenticator, Clock, KeyStore, Principal, SessionStore};

/// 43 base62 characters carry just over 256 bits, like a key's secret.
const TOKEN_LEN: usize = 43;

/// A session as stored: never the token itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSession {
    /// SHA-256 of the token.
    pub token_hash: [u8; 32],
    /// The key that opened it; revoking the key ends the session.
    pub key_id: KeyId,
    /// When it was opened.
    pub created_at: DateTime<Utc>,
    /// When it ends by itself.
    pub expires_at: DateTime<Utc>,
}

/// A session token as the browser presents it: 43 base62 characters, or it is not one.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionToken(String);

impl std::fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionToken([redacted])")
    }
}

impl SessionToken {
    /// The token in `text`, if it has a token's shape (checked before any hashing or
    /// database work).
    pub fn parse(text: &str) -> Option<SessionToken> {
        (text.len() == TOKEN_LEN && text.bytes().all(|b| b.is_ascii_alphanumeric()))
            .then(|| SessionToken(text.to_owned()))
    }

    /// The token, for the cookie.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn hash(&self) -> [u8; 32] {
        hash(&self.0)
    }

    /// The CSRF token every state-changing form of this session carries: a hash of the
    /// session token under its own label, so it tells nothing about the token itself.
    pub fn csrf(&self) -> String {
        let digest = Sha256::new()
            .chain_update(b"shortener ui csrf\0")
            .chain_update(self.0.as_bytes())
            .finalize();
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Whether `presented` is this session's CSRF token (compared in constant time).
    pub fn csrf_matches(&self, presented: &str) -> bool {
        self.csrf().as_bytes().ct_eq(presented.as_bytes()).into()
    }
}

/// A session just opened.
#[derive(Debug, Clone)]
pub struct SignedIn {
    /// For the cookie; exists in the clear only here.
    pub token: SessionToken,
    /// Who signed in.
    pub principal: Principal,
    /// When the session ends by itself.
    pub expires_at: DateTime<Utc>,
}

/// Opens, resumes and ends sessions.
pub struct Sessions<S> {
    store: S,
    auth: Authenticator<S>,
    clock: Arc<dyn Clock>,
    ttl: chrono::Duration,
}

impl<S: KeyStore + SessionStore + Clone> Sessions<S> {
    /// Sessions that last `ttl` from sign-in.
    pub fn new(store: S, clock: Arc<dyn Clock>, ttl: Duration) -> Self {
        Sessions {
            auth: Authenticator::new(store.clone()),
            store,
            clock,
            ttl: chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::hours(12)),
        }
    }

    /// How long a session lasts.
    pub fn ttl(&self) -> Duration {
        self.ttl.to_std().unwrap_or_default()
    }

    /// Opens a session for whoever `key` belongs to. A wrong key is `Unauthorized`, as on
    /// the API: the caller counts it toward the address's `auth-failures`.
    pub async fn sign_in(&self, key: &str) -> Result<SignedIn, AppError> {
        let principal = self.auth.authenticate(key.trim()).await?;
        let key_id = match principal {
            Principal::Admin { key_id } | Principal::Account { key_id, .. } => key_id,
        };
        let token = SessionToken(random_base62(TOKEN_LEN));
        let now = self.clock.now();
        let expires_at = now + self.ttl;
        self.store
            .insert_session(&StoredSession {
                token_hash: token.hash(),
                key_id,
                created_at: now,
                expires_at,
            })
            .await?;
        Ok(SignedIn {
            token,
            principal,
            expires_at,
        })
    }

    /// Who the session acts for now: `Unauthorized` once it has expired, been ended or
    /// its key revoked.
    pub async fn resume(&self, token: &SessionToken) -> Result<Principal, AppError> {
        self.store
            .session_key(&token.hash(), self.clock.now())
            .await?
            .and_then(|key| key.principal())
            .ok_or(AppError::Unauthorized)
    }

    /// Ends the session (whether or not it still existed).
    pub async fn sign_out(&self, token: &SessionToken) -> Result<(), AppError> {
        self.store.delete_session(&token.hash()).await
    }

    /// Deletes sessions that have expired; how many.
    pub async fn prune(&self) -> Result<usize, AppError> {
        self.store.delete_expired_sessions(self.clock.now()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{KeyOwner, issue};
    use crate::memory::MemoryStore;
    use crate::{ManualClock, UnitOfWork};
    use shortener_domain::AccountId;

    fn sessions(store: &MemoryStore, clock: &Arc<ManualClock>) -> Sessions<MemoryStore> {
        Sessions::new(store.clone(), clock.clone(), Duration::from_secs(3600))
    }

    #[tokio::test]
    async fn a_session_acts_for_its_key_until_it_expires() {
        let store = MemoryStore::default();
        let clock = ManualClock::new();
        let account = AccountId::new();
        let key = issue(KeyOwner::Account(account), clock.now());
        store.put_key(&key.stored);
        let sessions = sessions(&store, &clock);

        let signed = sessions.sign_in(&key.plaintext).await.unwrap();
        assert!(
            matches!(signed.principal, Principal::Account { account_id, .. } if account_id == account)
        );
        assert_eq!(signed.expires_at, clock.now() + chrono::Duration::hours(1));
        assert_eq!(
            sessions.resume(&signed.token).await.unwrap(),
            signed.principal
        );

        clock.advance(chrono::Duration::minutes(59));
        assert!(sessions.resume(&signed.token).await.is_ok());
        clock.advance(chrono::Duration::minutes(1));
        assert!(matches!(
            sessions.resume(&signed.token).await,
            Err(AppError::Unauthorized)
        ));
        assert_eq!(sessions.prune().await.unwrap(), 1);
    }

    #[tokio::test]
    async fn sign_out_and_a_revoked_key_end_the_session() {
        let store = MemoryStore::default();
        let clock = ManualClock::new();
        let account = AccountId::new();
        let key = issue(KeyOwner::Account(account), clock.now());
        store.put_key(&key.stored);
        let sessions = sessions(&store, &clock);

        let first = sessions.sign_in(&key.plaintext).await.unwrap();
        let second = sessions.sign_in(&key.plaintext).await.unwrap();
        assert_ne!(first.token, second.token);
        sessions.sign_out(&first.token).await.unwrap();
        assert!(sessions.resume(&first.token).await.is_err());
        assert!(sessions.resume(&second.token).await.is_ok());

        let id = key.stored.id;
        let now = clock.now();
        store
            .run(move |tx| {
                Box::pin(async move { tx.revoke_key(account, id, now).await.map(|_| ()) })
            })
            .await
            .unwrap();
        assert!(matches!(
            sessions.resume(&second.token).await,
            Err(AppError::Unauthorized)
        ));
    }

    #[tokio::test]
    async fn wrong_keys_open_nothing() {
        let store = MemoryStore::default();
        let clock = ManualClock::new();
        let sessions = sessions(&store, &clock);
        for key in ["", "shk_nope", &"x".repeat(600)] {
            assert!(matches!(
                sessions.sign_in(key).await,
                Err(AppError::Unauthorized)
            ));
        }
        assert!(store.snapshot().sessions.is_empty());
    }

    #[test]
    fn tokens_are_checked_for_shape_and_csrf_tokens_for_equality() {
        assert!(SessionToken::parse("short").is_none());
        assert!(SessionToken::parse(&"é".repeat(43)).is_none());
        let token = SessionToken(random_base62(TOKEN_LEN));
        assert_eq!(SessionToken::parse(token.as_str()), Some(token.clone()));
        let csrf = token.csrf();
        assert_eq!(csrf.len(), 64);
        assert!(token.csrf_matches(&csrf));
        assert!(!token.csrf_matches(""));
        assert!(!token.csrf_matches(&csrf[..63]));
        let other = SessionToken(random_base62(TOKEN_LEN));
        assert!(!other.csrf_matches(&csrf));
        assert!(!format!("{token:?}").contains(token.as_str()));
    }
}

//! API keys: issued once in the clear, stored only as a SHA-256 hash.
//!
//! A key looks like `shk_<lookup>_<secret>`. The lookup part is not secret: it finds the row
//! without a scan and is what the API shows as the key's `prefix`. The secret has 256 bits
//! of entropy, so a plain SHA-256 is the right hash (a slow password hash buys nothing and
//! costs every request); it is compared in constant time.

use chrono::{DateTime, Utc};
use rand::RngExt;
use rand::distr::Alphanumeric;
use sha2::{Digest, Sha256};
use shortener_domain::{AccountId, KeyId};
use subscriptions::PlanName;
use subtle::ConstantTimeEq;

use crate::{AppError, KeyStore};

const PREFIX: &str = "shk_";
const LOOKUP_LEN: usize = 12;
/// 43 base62 characters carry just over 256 bits.
const SECRET_LEN: usize = 43;
/// The lookup under which the configured bootstrap admin key is stored. It contains an
/// underscore, which generated lookups (base62) never do, so the two cannot collide.
const BOOTSTRAP_LOOKUP: &str = "bootstrap_admin";
/// Longer tokens are refused before any hashing or database work.
const MAX_TOKEN_LEN: usize = 512;

/// Whom a key belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyOwner {
    /// An operator key: may call `/admin/...`.
    Admin,
    /// An account key: may call `/api/...` for this account only.
    Account(AccountId),
}

/// A key as stored: never the key itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    /// The key's id (the audit actor id of an admin).
    pub id: KeyId,
    /// The non-secret lookup part.
    pub lookup: String,
    /// SHA-256 of the whole key.
    pub secret_hash: [u8; 32],
    /// Admin or account.
    pub owner: KeyOwner,
    /// When it was issued.
    pub created_at: DateTime<Utc>,
    /// When it stopped working, if it did.
    pub revoked_at: Option<DateTime<Utc>>,
}

impl StoredKey {
    /// The prefix shown to users so they can tell keys apart.
    pub fn prefix(&self) -> String {
        format!("{PREFIX}{}", self.lookup)
    }
}

/// A freshly issued key: the plaintext exists only here, to be shown once.
#[derive(Debug, Clone)]
pub struct IssuedKey {
    /// What gets stored.
    pub stored: StoredKey,
    /// The key to hand to the user.
    pub plaintext: String,
}

pub(crate) fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

pub(crate) fn random_base62(len: usize) -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// Issues a new random key for `owner`.
pub fn issue(owner: KeyOwner, now: DateTime<Utc>) -> IssuedKey {
    let lookup = random_base62(LOOKUP_LEN);
    let plaintext = format!("{PREFIX}{lookup}_{}", random_base62(SECRET_LEN));
    IssuedKey {
        stored: StoredKey {
            id: KeyId::new(),
            lookup,
            secret_hash: hash(&plaintext),
            owner,
            created_at: now,
            revoked_at: None,
        },
        plaintext,
    }
}

/// The stored form of the operator-configured bootstrap admin key.
pub fn bootstrap(key: &str, now: DateTime<Utc>) -> StoredKey {
    StoredKey {
        id: KeyId::new(),
        lookup: BOOTSTRAP_LOOKUP.to_owned(),
        secret_hash: hash(key),
        owner: KeyOwner::Admin,
        created_at: now,
        revoked_at: None,
    }
}

/// Which lookup a presented token claims. Tokens not in our format can only be the
/// bootstrap key, which the operator chose freely.
fn lookup_of(token: &str) -> &str {
    token
        .strip_prefix(PREFIX)
        .and_then(|rest| rest.split_once('_'))
        .filter(|(lookup, secret)| {
            lookup.len() == LOOKUP_LEN
                && secret.len() == SECRET_LEN
                && lookup.bytes().all(|b| b.is_ascii_alphanumeric())
        })
        .map_or(BOOTSTRAP_LOOKUP, |(lookup, _)| lookup)
}

/// A key as the store has it, with what authenticating it needs to know of its owner now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyOnFile {
    /// The key.
    pub key: StoredKey,
    /// For an account key, the plan whose request rate applies to it now: the
    /// subscription's plan while it is active, the trial's otherwise (an ended account may
    /// still read and clean up its links). Read with the key, so the rate limit costs no
    /// query of its own.
    pub plan: Option<PlanName>,
}

impl KeyOnFile {
    /// Who acts through this key, unless it has been revoked.
    pub fn principal(self) -> Option<Principal> {
        if self.key.revoked_at.is_some() {
            return None;
        }
        Some(match self.key.owner {
            KeyOwner::Admin => Principal::Admin {
                key_id: self.key.id,
            },
            KeyOwner::Account(account_id) => Principal::Account {
                account_id,
                key_id: self.key.id,
                plan: self.plan.unwrap_or(PlanName::Trial),
            },
        })
    }
}

/// Who is calling, once their key checks out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Principal {
    /// An operator, through the admin key `key_id`.
    Admin {
        /// The key used.
        key_id: KeyId,
    },
    /// An account, through one of its keys.
    Account {
        /// The account acting.
        account_id: AccountId,
        /// The key used.
        key_id: KeyId,
        /// The plan whose request rate applies ([`KeyOnFile::plan`]).
        plan: PlanName,
    },
}

/// Turns a bearer token into a [`Principal`].
#[derive(Debug, Clone)]
pub struct Authenticator<S> {
    store: S,
}

impl<S: KeyStore> Authenticator<S> {
    /// Authenticates against `store`.
    pub fn new(store: S) -> Self {
        Authenticator { store }
    }

    /// Unknown, malformed and revoked keys are all the same `Unauthorized`: a caller learns
    /// nothing about which keys exist.
    pub async fn authenticate(&self, token: &str) -> Result<Principal, AppError> {
        if token.is_empty() || token.len() > MAX_TOKEN_LEN {
            return Err(AppError::Unauthorized);
        }
        let Some(KeyOnFile { key: stored, plan }) =
            self.store.key_by_lookup(lookup_of(token)).await?
        else {
            return Err(AppError::Unauthorized);
        };
        let matches: bool = hash(token).ct_eq(&stored.secret_hash).into();
        if !matches {
            return Err(AppError::Unauthorized);
        }
        KeyOnFile { key: stored, plan }
            .principal()
            .ok_or(AppError::Unauthorized)
    }

    /// Makes the configured bootstrap admin key work (and any previous one stop working).
    pub async fn install_bootstrap_key(
        &self,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<(), AppError> {
        self.store.put_bootstrap_key(&bootstrap(key, now)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::UnitOfWork;
    use crate::memory::MemoryStore;

    #[test]
    fn issued_keys_have_the_documented_shape_and_parse_back() {
        let k = issue(KeyOwner::Admin, Utc::now());
        assert!(k.plaintext.starts_with("shk_"));
        assert_eq!(k.plaintext.len(), 4 + LOOKUP_LEN + 1 + SECRET_LEN);
        assert_eq!(lookup_of(&k.plaintext), k.stored.lookup);
        assert_eq!(k.stored.prefix(), format!("shk_{}", k.stored.lookup));
        assert_ne!(issue(KeyOwner::Admin, Utc::now()).plaintext, k.plaintext);
    }

    #[test]
    fn foreign_tokens_can_only_be_the_bootstrap_key() {
        assert_eq!(
            lookup_of("my-own-very-long-operator-chosen-key"),
            BOOTSTRAP_LOOKUP
        );
        assert_eq!(lookup_of("shk_short_x"), BOOTSTRAP_LOOKUP);
    }

    #[tokio::test]
    async fn authenticate_accepts_live_keys_and_refuses_everything_else() {
        let store = MemoryStore::default();
        let auth = Authenticator::new(store.clone());
        let account = AccountId::new();
        let k = issue(KeyOwner::Account(account), Utc::now());
        store.put_key(&k.stored);

        assert_eq!(
            auth.authenticate(&k.plaintext).await.unwrap(),
            Principal::Account {
                account_id: account,
                key_id: k.stored.id,
                plan: PlanName::Trial,
            }
        );
        // Right lookup, wrong secret.
        let mut forged = k.plaintext.clone();
        forged.pop();
        forged.push(if k.plaintext.ends_with('A') { 'B' } else { 'A' });
        assert!(matches!(
            auth.authenticate(&forged).await,
            Err(AppError::Unauthorized)
        ));
        assert!(matches!(
            auth.authenticate("").await,
            Err(AppError::Unauthorized)
        ));

        let id = k.stored.id;
        store
            .run(move |tx| tx.revoke_key(account, id, Utc::now()))
            .await
            .unwrap();
        assert!(matches!(
            auth.authenticate(&k.plaintext).await,
            Err(AppError::Unauthorized)
        ));
    }

    #[tokio::test]
    async fn bootstrap_key_is_admin_and_replacing_it_retires_the_old_one() {
        let store = MemoryStore::default();
        let auth = Authenticator::new(store.clone());
        let first = "operator-chosen-bootstrap-key-0000000001";
        auth.install_bootstrap_key(first, Utc::now()).await.unwrap();
        assert!(matches!(
            auth.authenticate(first).await,
            Ok(Principal::Admin { .. })
        ));
        let second = "operator-chosen-bootstrap-key-0000000002";
        auth.install_bootstrap_key(second, Utc::now())
            .await
            .unwrap();
        assert!(auth.authenticate(second).await.is_ok());
        assert!(auth.authenticate(first).await.is_err());
    }
}

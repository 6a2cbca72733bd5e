//! Idempotency keys (draft-ietf-httpapi-idempotency-key-header): a create sent again with
//! the key of an earlier one gets the earlier answer back and creates nothing.
//!
//! Everything happens in the create's own transaction, so the link and the answer that
//! reports it commit together, or neither does: the key's lock is taken without waiting
//! (held: another request with the key is running, `IdempotencyInProgress`), then the
//! recorded answer is looked up (found: replayed when the request is the same,
//! `IdempotencyConflict` when not), and only then does the create run and its answer get
//! recorded. A refusal that is final (validation, quota, a taken code) is recorded too,
//! after its writes are rewound; a failure that may pass (the database, a bug) records
//! nothing, so the retry runs again.

use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};
use shortener_domain::AccountId;

use crate::{AppError, Recorded, Tx, UnitOfWork};

/// How long an answer is kept at least; older ones are pruned.
pub const KEEP_KEYS: Duration = Duration::hours(24);

/// The longest key, in characters.
const MAX_KEY_LEN: usize = 255;

/// A valid key and the hash of the request it came with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    key: String,
    request_hash: [u8; 32],
}

impl IdempotencyKey {
    /// `key` (1 to 255 visible ASCII characters) sent with `request`: whatever identifies
    /// the request exactly (the edge gives its path and canonical body), hashed here.
    pub fn new(key: &str, request: &[u8]) -> Result<IdempotencyKey, AppError> {
        let visible = |b: u8| (0x21..=0x7e).contains(&b);
        if key.is_empty() || key.len() > MAX_KEY_LEN || !key.bytes().all(visible) {
            return Err(AppError::Validation(format!(
                "Idempotency-Key must be 1 to {MAX_KEY_LEN} visible ASCII characters"
            )));
        }
        Ok(IdempotencyKey {
            key: key.to_owned(),
            request_hash: Sha256::digest(request).into(),
        })
    }

    /// The key as sent.
    pub fn as_str(&self) -> &str {
        &self.key
    }
}

/// The answer to a create sent with a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// What to send: recorded just now, or earlier.
    pub recorded: Recorded,
    /// Whether it was recorded earlier (this request created nothing).
    pub replayed: bool,
}

/// What the work did, and the answer recorded for it.
pub(crate) enum Once<T> {
    /// The work ran now; its outcome was recorded as `Recorded`.
    Ran(Result<T, AppError>, Recorded),
    /// An earlier request's answer.
    Replayed(Recorded),
}

impl<T> Once<T> {
    /// The answer to send; `ran` sees what a run that happened now made (to invalidate
    /// caches), a replay having made nothing.
    pub(crate) fn answer(self, ran: impl FnOnce(&T)) -> Answer {
        match self {
            Once::Ran(outcome, recorded) => {
                if let Ok(made) = &outcome {
                    ran(made);
                }
                Answer {
                    recorded,
                    replayed: false,
                }
            }
            Once::Replayed(recorded) => Answer {
                recorded,
                replayed: true,
            },
        }
    }
}

/// Runs `work` in one transaction at most once per `account` and `key`; `render` turns its
/// outcome into the answer recorded beside it (the edge knows what the answer looks like).
pub(crate) async fn once<S, T, W, R>(
    store: &S,
    account: AccountId,
    key: IdempotencyKey,
    now: DateTime<Utc>,
    work: W,
    render: R,
) -> Result<Once<T>, AppError>
where
    S: UnitOfWork,
    T: Send + 'static,
    W: for<'t> FnOnce(&'t mut dyn Tx) -> audit::BoxFuture<'t, Result<T, AppError>> + Send + 'static,
    R: FnOnce(&Result<T, AppError>) -> Recorded + Send + 'static,
{
    store
        .run(move |tx| {
            Box::pin(async move {
                if !tx.try_lock_key(account, &key.key).await? {
                    return Err(AppError::IdempotencyInProgress);
                }
                if let Some((hash, recorded)) = tx.recorded_answer(account, &key.key).await? {
                    return if hash == key.request_hash {
                        Ok(Once::Replayed(recorded))
                    } else {
                        Err(AppError::IdempotencyConflict)
                    };
                }
                tx.mark().await?;
                let outcome = match work(&mut *tx).await {
                    Err(e) if !e.is_final() => return Err(e),
                    Err(e) => {
                        tx.rewind().await?;
                        Err(e)
                    }
                    Ok(v) => Ok(v),
                };
                let recorded = render(&outcome);
                tx.record_answer(account, &key.key, &key.request_hash, &recorded, now)
                    .await?;
                Ok(Once::Ran(outcome, recorded))
            })
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_visible_ascii_of_1_to_255() {
        assert!(IdempotencyKey::new("a", b"").is_ok());
        assert!(IdempotencyKey::new(&"k".repeat(255), b"").is_ok());
        assert!(IdempotencyKey::new("~!\"#{}", b"").is_ok());
        for bad in ["", " ", "a b", "é", "a\tb", "\u{7f}"] {
            assert!(IdempotencyKey::new(bad, b"").is_err(), "{bad:?}");
        }
        assert!(IdempotencyKey::new(&"k".repeat(256), b"").is_err());
    }

    #[test]
    fn the_same_request_hashes_the_same() {
        let a = IdempotencyKey::new("k", b"{\"url\":\"x\"}").unwrap();
        let b = IdempotencyKey::new("k", b"{\"url\":\"x\"}").unwrap();
        let c = IdempotencyKey::new("k", b"{\"url\":\"y\"}").unwrap();
        assert_eq!(a, b);
        assert_ne!(a.request_hash, c.request_hash);
    }
}

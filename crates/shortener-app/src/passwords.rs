//! Link passwords: Argon2id hashes, made when an owner sets a password and checked when a
//! visitor gives one ([`Passwords`]).
//!
//! A hash costs tens of milliseconds of one core and 19 MiB of memory, on purpose. So it
//! never runs on an async worker (a worker busy hashing would hold back every redirect
//! queued behind it): each runs on Tokio's blocking pool, and at most one per core at
//! once (a semaphore), so a flood of guesses queues for the hasher instead of taking the
//! whole machine, and redirects of links without a password never wait for it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use argon2::password_hash::Error as HashError;
use argon2::{Algorithm, Argon2, Params, PasswordHasher, PasswordVerifier, Version};
use shortener_domain::{Password, PasswordHash};
use tokio::sync::Semaphore;

use crate::AppError;
use shortener_domain::rate::Policy;

/// The Argon2id memory cost of every new hash, in KiB (19 MiB). With [`ARGON2_T_COST`]
/// and [`ARGON2_P_COST`], OWASP's first recommended Argon2id configuration (Password
/// Storage Cheat Sheet: m = 19 MiB, t = 2, p = 1): a guess costs an attacker who has the
/// hashes as much memory as it costs us, and one hash takes some tens of milliseconds of
/// one core here, which a visitor who types a password does not notice. Each hash keeps
/// the parameters it was made with (in its PHC string), so raising these later leaves
/// every stored password working.
pub const ARGON2_M_COST_KIB: u32 = 19 * 1024;
/// Argon2id passes over the memory (see [`ARGON2_M_COST_KIB`]).
pub const ARGON2_T_COST: u32 = 2;
/// Argon2id lanes: one, as each hash runs on one thread (see [`ARGON2_M_COST_KIB`]).
pub const ARGON2_P_COST: u32 = 1;

/// The parameters above, checked when the crate is compiled (a bad value fails the build,
/// never a request).
const PARAMS: Params = match Params::new(ARGON2_M_COST_KIB, ARGON2_T_COST, ARGON2_P_COST, None) {
    Ok(params) => params,
    Err(_) => panic!("invalid Argon2 parameters"),
};

/// Guesses that may wait for the hasher, per hash it runs at once. Each waits about a
/// hash's time (tens of milliseconds) for every [`GUESSES_WAITING_PER_HASH`] ahead of it
/// per permit, so a full queue is about a second of work: past it, a guess is refused at
/// once (429 `passwords`, retry in a second) instead of queueing without end and holding
/// its connection and body meanwhile. Guesses come from anyone (each address and link
/// has its own budget, but there are many addresses); hashes of passwords that owners
/// set never wait for room, so a flood of guesses cannot stop an owner from setting one.
pub const GUESSES_WAITING_PER_HASH: usize = 32;

/// Makes and checks password hashes off the async workers, a bounded number at once.
/// One per process, shared by the link use cases (which hash) and every worker's
/// redirects (which verify), so the bound holds for the whole instance.
pub struct Passwords {
    argon2: Argon2<'static>,
    /// Hashes running or about to run.
    permits: Arc<Semaphore>,
    /// Guesses waiting or being checked, and how many may be.
    guesses: AtomicUsize,
    max_guesses: usize,
}

impl Passwords {
    /// A hasher that runs at most `at_once` hashes at the same time (at least one).
    pub fn new(at_once: usize) -> Passwords {
        let at_once = at_once.max(1);
        Passwords {
            argon2: Argon2::new(Algorithm::Argon2id, Version::V0x13, PARAMS),
            permits: Arc::new(Semaphore::new(at_once)),
            guesses: AtomicUsize::new(0),
            max_guesses: at_once * GUESSES_WAITING_PER_HASH,
        }
    }

    /// A hasher that runs at most one hash per core of this machine at once.
    pub fn per_core() -> Passwords {
        Passwords::new(std::thread::available_parallelism().map_or(1, usize::from))
    }

    /// The Argon2id hash of `password`, with a fresh random salt.
    pub async fn hash(&self, password: Password) -> Result<PasswordHash, AppError> {
        let argon2 = self.argon2.clone();
        self.run(move || {
            argon2
                .hash_password(password.as_bytes())
                .map(|h| PasswordHash::from_storage(h.to_string()))
                .map_err(|e| AppError::internal(format!("hashing a password: {e}")))
        })
        .await
    }

    /// Whether `guess` is the password `hash` was made from. A guess that is not a
    /// password's length cannot be right, and is found wrong without hashing. The check
    /// uses the parameters the hash records, whatever [`ARGON2_M_COST_KIB`] says now.
    pub async fn verify(&self, guess: String, hash: &PasswordHash) -> Result<bool, AppError> {
        if !Password::could_be(&guess) {
            return Ok(false);
        }
        if self.guesses.fetch_add(1, Ordering::AcqRel) >= self.max_guesses {
            self.guesses.fetch_sub(1, Ordering::AcqRel);
            return Err(AppError::RateLimited {
                policy: Policy::Passwords,
                retry_after_secs: 1,
            });
        }
        // Counted until this guess is answered, however it ends (a dropped request too).
        let _waiting = Waiting(&self.guesses);
        let argon2 = self.argon2.clone();
        let hash = hash.clone();
        self.run(move || {
            match argon2.verify_password(guess.as_bytes(), hash.as_str()) {
                Ok(()) => Ok(true),
                Err(HashError::PasswordInvalid) => Ok(false),
                // A stored hash that does not parse: a broken invariant, not a wrong guess.
                Err(e) => Err(AppError::internal(format!("checking a password: {e}"))),
            }
        })
        .await
    }

    /// Runs `work` on the blocking pool once a permit is free.
    ///
    /// (A guess's place in [`Passwords::verify`]'s count is held by a [`Waiting`].)
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, AppError> + Send + 'static,
    ) -> Result<T, AppError> {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| AppError::internal("the password hasher is closed"))?;
        tokio::task::spawn_blocking(move || {
            let done = work();
            drop(permit);
            done
        })
        .await
        .map_err(|e| AppError::internal(format!("a password hash did not finish: {e}")))?
    }
}

/// A guess counted in [`Passwords`]' `guesses` until it is dropped.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn password(s: &str) -> Password {
        Password::parse(s).unwrap()
    }

    #[tokio::test]
    async fn a_hash_is_argon2id_with_the_chosen_parameters_and_checks_only_its_password() {
        let passwords = Passwords::new(2);
        let hash = passwords.hash(password("correct horse")).await.unwrap();
        assert!(
            hash.as_str().starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{}",
            hash.as_str()
        );
        assert!(!hash.as_str().contains("correct horse"));
        assert!(
            passwords
                .verify("correct horse".into(), &hash)
                .await
                .unwrap()
        );
        assert!(
            !passwords
                .verify("correct horsE".into(), &hash)
                .await
                .unwrap()
        );
        assert!(!passwords.verify("short".into(), &hash).await.unwrap());
        // Salted: the same password twice is two different hashes.
        let again = passwords.hash(password("correct horse")).await.unwrap();
        assert_ne!(hash, again);
        assert!(
            passwords
                .verify("correct horse".into(), &again)
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn a_broken_stored_hash_is_an_error_not_a_wrong_guess() {
        let passwords = Passwords::new(1);
        let broken = PasswordHash::from_storage("$argon2id$nonsense");
        assert!(matches!(
            passwords.verify("whatever you say".into(), &broken).await,
            Err(AppError::Internal { .. })
        ));
    }

    #[tokio::test]
    async fn guesses_past_the_queue_are_refused_at_once_and_owners_hashes_never_are() {
        let passwords = Arc::new(Passwords::new(1));
        let hash = passwords.hash(password("a long passphrase")).await.unwrap();
        // The hasher is busy (its one permit held here) while every guess arrives, so
        // which guesses wait and which are refused depends on nothing but the count.
        let busy = passwords.permits.clone().acquire_owned().await.unwrap();
        let n = GUESSES_WAITING_PER_HASH + 8;
        let mut guesses = tokio::task::JoinSet::new();
        for _ in 0..n {
            let (passwords, hash) = (passwords.clone(), hash.clone());
            guesses
                .spawn(async move { passwords.verify("not the passphrase".into(), &hash).await });
        }
        // The 8 past the queue are answered while the hasher is still busy.
        for _ in 0..8 {
            let next =
                tokio::time::timeout(std::time::Duration::from_secs(10), guesses.join_next());
            let answer = next
                .await
                .expect("8 guesses are refused while the hasher is busy")
                .unwrap()
                .unwrap();
            assert!(
                matches!(
                    answer,
                    Err(AppError::RateLimited {
                        policy: Policy::Passwords,
                        retry_after_secs: 1,
                    })
                ),
                "{answer:?}"
            );
        }
        assert_eq!(
            passwords.guesses.load(Ordering::Acquire),
            GUESSES_WAITING_PER_HASH
        );
        drop(busy);
        let mut wrong = 0;
        while let Some(answer) = guesses.join_next().await {
            assert!(matches!(answer.unwrap(), Ok(false)));
            wrong += 1;
        }
        assert_eq!(wrong, GUESSES_WAITING_PER_HASH);
        // Once they are answered, the queue is empty again; an owner's hash is never held.
        assert_eq!(passwords.guesses.load(Ordering::Acquire), 0);
        assert!(
            passwords
                .verify("a long passphrase".into(), &hash)
                .await
                .unwrap()
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn hashing_leaves_the_async_worker_free() {
        // One async thread: if the hash ran on it, the ticker could not tick meanwhile.
        let passwords = Arc::new(Passwords::new(1));
        let hashing = tokio::spawn({
            let passwords = passwords.clone();
            async move { passwords.hash(password("a long passphrase")).await }
        });
        let mut ticks = 0;
        while !hashing.is_finished() {
            tokio::time::sleep(Duration::from_millis(1)).await;
            ticks += 1;
        }
        hashing.await.unwrap().unwrap();
        assert!(ticks > 3, "the worker was blocked: {ticks} ticks");
    }
}

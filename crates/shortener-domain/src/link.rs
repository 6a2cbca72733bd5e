//! Links, and the rule of when one stops redirecting.

use chrono::{DateTime, Utc};

use crate::{AccountId, LinkId, PasswordHash, ShortCode, Tags, TargetUrl, Title};

/// A short link as its owner sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Stable id (UUIDv7: the keyset order of lists).
    pub id: LinkId,
    /// The code that redirects.
    pub code: ShortCode,
    /// The owning account.
    pub account_id: AccountId,
    /// Where the code redirects to.
    pub target: TargetUrl,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it stops redirecting, if ever.
    pub expires_at: Option<DateTime<Utc>>,
    /// Clicks counted so far.
    pub clicks: i64,
    /// The owner's tags (none: empty).
    pub tags: Tags,
    /// The owner's label for it, if any.
    pub title: Option<Title>,
    /// The hash of the password a visitor must give before being redirected, if any.
    pub password: Option<PasswordHash>,
}

/// The one expiry rule, for the redirect and for the expiry a link may be given: expired
/// from the instant `expires_at` is reached, so "expires at noon" means a request at noon
/// is already refused (and noon is not a future expiry at noon).
pub fn is_expired(expires_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    expires_at.is_some_and(|at| now >= at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[test]
    fn expiry_boundary_is_inclusive() {
        let now = Utc::now();
        assert!(!is_expired(None, now + Duration::days(10_000)));
        assert!(is_expired(Some(now), now));
        assert!(is_expired(Some(now), now + Duration::microseconds(1)));
        assert!(!is_expired(Some(now), now - Duration::microseconds(1)));
    }
}

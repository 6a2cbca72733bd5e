use chrono::{DateTime, Utc};

use crate::{AccountId, LinkId, ShortCode, TargetUrl};

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
}

impl Link {
    /// Expired from the instant `expires_at` is reached, so "expires at noon" means a
    /// request at noon is already refused.
    pub fn is_expired_at(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|at| now >= at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[test]
    fn expiry_boundary_is_inclusive() {
        let now = Utc::now();
        let mut link = Link {
            id: LinkId::new(),
            code: ShortCode::random(),
            account_id: AccountId::new(),
            target: TargetUrl::from_storage("https://example.com/".into()),
            created_at: now,
            expires_at: None,
            clicks: 0,
        };
        assert!(!link.is_expired_at(now + Duration::days(10_000)));
        link.expires_at = Some(now);
        assert!(link.is_expired_at(now));
        assert!(!link.is_expired_at(now - Duration::microseconds(1)));
    }
}

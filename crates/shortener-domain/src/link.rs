//! Links, and the rule of when one stops redirecting.

use chrono::{DateTime, Utc};

use crate::{AccountId, DomainError, LinkId, PasswordHash, ShortCode, Tags, TargetUrl, Title};

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
    /// How many more GET redirects it may answer, if it is limited.
    pub visit_limit: Option<VisitLimit>,
    /// The hash of the password a visitor must give before being redirected, if any.
    pub password: Option<PasswordHash>,
}

/// The most GET redirects a limited link answers: 1 to [`MaxVisits::MAX`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MaxVisits(u32);

impl MaxVisits {
    /// The highest limit (the contract's 10^9: past it, a limit means nothing).
    pub const MAX: u32 = 1_000_000_000;

    /// A limit, if `n` is one. Wide input, so a caller's out-of-range number is refused
    /// here rather than wrapped on the way in.
    pub fn new(n: i64) -> Result<MaxVisits, DomainError> {
        match u32::try_from(n) {
            Ok(n @ 1..=Self::MAX) => Ok(MaxVisits(n)),
            _ => Err(DomainError::InvalidMaxVisits),
        }
    }

    /// The limit.
    pub fn get(self) -> u32 {
        self.0
    }
}

/// A limited link's limit and how much of it is spent. `used` may exceed `max` (a limit
/// lowered below what was used, or put on a link that already had more clicks): the link
/// is then spent, with nothing left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VisitLimit {
    /// The limit.
    pub max: MaxVisits,
    /// The GET redirects it has answered, counted from when the limit was first set
    /// (starting from the clicks the link had then).
    pub used: u64,
}

impl VisitLimit {
    /// A limit put on a link that had none, which has answered `clicks` GET redirects:
    /// they count toward it (a link limited to 10 visits that already had 12 is spent).
    pub fn starting(max: MaxVisits, clicks: i64) -> VisitLimit {
        VisitLimit {
            max,
            used: u64::try_from(clicks).unwrap_or(0),
        }
    }

    /// `max` in place of this limit, keeping what was used.
    pub fn with_max(self, max: MaxVisits) -> VisitLimit {
        VisitLimit { max, ..self }
    }

    /// How many more GET redirects the link may answer.
    pub fn left(&self) -> u64 {
        u64::from(self.max.get()).saturating_sub(self.used)
    }
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

    #[test]
    fn a_visit_limit_is_one_to_a_billion_and_counts_what_was_used_before_it() {
        for bad in [i64::MIN, -1, 0, 1_000_000_001, i64::from(u32::MAX) + 1] {
            assert_eq!(
                MaxVisits::new(bad),
                Err(DomainError::InvalidMaxVisits),
                "{bad}"
            );
        }
        for good in [1, 10, 1_000_000_000] {
            assert_eq!(MaxVisits::new(good).map(MaxVisits::get), Ok(good as u32));
        }
        let ten = MaxVisits::new(10).unwrap();
        assert_eq!(VisitLimit::starting(ten, 0).left(), 10);
        assert_eq!(VisitLimit::starting(ten, 4).left(), 6);
        assert_eq!(
            VisitLimit::starting(ten, 12).left(),
            0,
            "spent, not negative"
        );
        assert_eq!(VisitLimit::starting(ten, -3).left(), 10);
        let lowered = VisitLimit::starting(ten, 7).with_max(MaxVisits::new(5).unwrap());
        assert_eq!((lowered.used, lowered.left()), (7, 0));
        assert_eq!(lowered.with_max(MaxVisits::new(9).unwrap()).left(), 2);
    }
}

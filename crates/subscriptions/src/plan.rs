use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::SubscriptionError;

/// The plans the service knows. A closed set: configuration tunes them, it cannot invent new
/// ones, so a typo in an admin call is a 400 instead of a silently created plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PlanName {
    /// The plan every new account starts on; its period is the trial's length.
    Trial,
    /// Paid plan.
    Pro,
    /// Paid plan with the largest allowance.
    Business,
}

impl PlanName {
    /// The name used in configuration and on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            PlanName::Trial => "trial",
            PlanName::Pro => "pro",
            PlanName::Business => "business",
        }
    }
}

impl fmt::Display for PlanName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PlanName {
    type Err = SubscriptionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "trial" => Ok(PlanName::Trial),
            "pro" => Ok(PlanName::Pro),
            "business" => Ok(PlanName::Business),
            other => Err(SubscriptionError::UnknownPlan(other.to_owned())),
        }
    }
}

/// What a plan grants. `period` is the trial's length for `trial` and the renewal period
/// for paid plans.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Which plan this is.
    pub name: PlanName,
    /// Trial length or renewal period.
    pub period: Duration,
    /// Links an account may create per calendar month (UTC).
    pub links_per_month: u64,
    /// Whether the account may choose its own codes.
    pub custom_codes: bool,
    /// The `requests` rate limit of the account's keys: API requests a minute; `0` means
    /// no limit.
    pub requests_per_minute: u32,
}

impl Plan {
    /// The contract's default for each plan.
    pub fn default_for(name: PlanName) -> Plan {
        const DAY: u64 = 24 * 60 * 60;
        match name {
            PlanName::Trial => Plan {
                name,
                period: Duration::from_secs(14 * DAY),
                links_per_month: 100,
                custom_codes: false,
                requests_per_minute: 60,
            },
            PlanName::Pro => Plan {
                name,
                period: Duration::from_secs(30 * DAY),
                links_per_month: 10_000,
                custom_codes: true,
                requests_per_minute: 600,
            },
            PlanName::Business => Plan {
                name,
                period: Duration::from_secs(30 * DAY),
                links_per_month: 1_000_000,
                custom_codes: true,
                requests_per_minute: 6_000,
            },
        }
    }

    /// Parses a period as configuration writes it (`30d`, `12h`, `5s`). Zero is refused:
    /// a zero-length trial would create accounts that are expired at birth.
    pub fn parse_period(s: &str) -> Result<Duration, SubscriptionError> {
        match humantime::parse_duration(s.trim()) {
            Ok(d) if !d.is_zero() => Ok(d),
            _ => Err(SubscriptionError::InvalidPeriod(s.to_owned())),
        }
    }
}

/// The configured set of plans: always exactly one of each [`PlanName`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plans {
    trial: Plan,
    pro: Plan,
    business: Plan,
}

impl Default for Plans {
    fn default() -> Self {
        Plans {
            trial: Plan::default_for(PlanName::Trial),
            pro: Plan::default_for(PlanName::Pro),
            business: Plan::default_for(PlanName::Business),
        }
    }
}

impl Plans {
    /// Replaces one plan's settings; the plan's name decides which.
    pub fn with(mut self, plan: Plan) -> Plans {
        match plan.name {
            PlanName::Trial => self.trial = plan,
            PlanName::Pro => self.pro = plan,
            PlanName::Business => self.business = plan,
        }
        self
    }

    /// The settings of one plan.
    pub fn get(&self, name: PlanName) -> &Plan {
        match name {
            PlanName::Trial => &self.trial,
            PlanName::Pro => &self.pro,
            PlanName::Business => &self.business,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_names_round_trip_and_unknown_is_refused() {
        for name in [PlanName::Trial, PlanName::Pro, PlanName::Business] {
            assert_eq!(name.as_str().parse::<PlanName>(), Ok(name));
        }
        assert_eq!(
            "gold".parse::<PlanName>(),
            Err(SubscriptionError::UnknownPlan("gold".into()))
        );
    }

    #[test]
    fn periods_parse_humantime_and_refuse_zero_or_junk() {
        assert_eq!(
            Plan::parse_period("30d"),
            Ok(Duration::from_secs(30 * 86_400))
        );
        assert_eq!(Plan::parse_period("5s"), Ok(Duration::from_secs(5)));
        assert!(Plan::parse_period("0s").is_err());
        assert!(Plan::parse_period("soon").is_err());
    }

    #[test]
    fn defaults_match_the_contract() {
        let plans = Plans::default();
        assert_eq!(plans.get(PlanName::Trial).links_per_month, 100);
        assert!(!plans.get(PlanName::Trial).custom_codes);
        assert_eq!(plans.get(PlanName::Pro).links_per_month, 10_000);
        assert_eq!(plans.get(PlanName::Business).links_per_month, 1_000_000);
        assert!(plans.get(PlanName::Business).custom_codes);
        let per_minute = |name| plans.get(name).requests_per_minute;
        assert_eq!(per_minute(PlanName::Trial), 60);
        assert_eq!(per_minute(PlanName::Pro), 600);
        assert_eq!(per_minute(PlanName::Business), 6_000);
    }
}

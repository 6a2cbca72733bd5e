/// Why a subscription rule refused something.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubscriptionError {
    /// A plan name that is not one of `trial`, `pro`, `business`.
    #[error("unknown plan `{0}` (expected trial, pro or business)")]
    UnknownPlan(String),
    /// A plan period that is not a positive humantime duration.
    #[error("invalid period `{0}`: expected a humantime duration such as 30d, 12h or 5s")]
    InvalidPeriod(String),
}

/// Why a subscription rule refused something.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubscriptionError {
    /// A plan name that is not one of `trial`, `pro`, `business`.
    #[error("unknown plan `{0}` (expected trial, pro or business)")]
    UnknownPlan(String),
    /// A state name that is not one of the four.
    #[error("unknown state `{0}` (expected trial, active, expired or cancelled)")]
    UnknownState(String),
    /// The transition is not allowed from the current (effective) state.
    #[error("cannot {transition} a subscription that is {from}")]
    InvalidTransition {
        /// What was asked.
        transition: &'static str,
        /// The state it was asked of.
        from: crate::State,
    },
    /// `activate` names the trial plan, which is not something one pays for.
    #[error("the trial plan cannot be activated; choose a paid plan (pro, business)")]
    NotPaid,
    /// A cancellation reason that is empty or too long.
    #[error("reason must be 1 to {} characters", crate::MAX_REASON_CHARS)]
    InvalidReason,
    /// A plan period that is not a positive humantime duration.
    #[error("invalid period `{0}`: expected a humantime duration such as 30d, 12h or 5s")]
    InvalidPeriod(String),
}

//! The audit module: who changed what, and when.
//!
//! Pure: it owns the entry, actor and action types and must never depend on
//! infrastructure (diesel, actix, tokio, config, tracing) or on the app, pg or http crates.
//! `cargo xtask check-boundaries` enforces this.
//!
//! What is here: the vocabulary (actors, actions, entities), [`AuditEntry`] with its
//! per-field [`Changes`], the query types ([`AuditFilter`], [`AuditCursor`],
//! [`AuditQuery`]) and the two ports: [`AuditRecorder`], which appends inside the
//! transaction of the change it records, and [`AuditLog`], which reads. The app drives
//! them, shortener-pg implements them, shortener-http serves the query API.

use std::fmt;
use std::str::FromStr;

mod entry;
mod ports;
pub use entry::{AuditCursor, AuditEntry, AuditFilter, Change, Changes, Entity, EntityType, Value};
pub use ports::{AuditLog, AuditQuery, AuditRecorder, BoxFuture};

/// Who made a change. The id is the key id for admins, the account id for accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    /// An operator, acting through an admin key (id: the key id).
    Admin(uuid::Uuid),
    /// An account, acting through one of its keys (id: the account id).
    Account(uuid::Uuid),
    /// The service itself (background work such as expiry).
    System,
}

impl Actor {
    /// `admin`, `account` or `system`.
    pub fn kind(self) -> &'static str {
        match self {
            Actor::Admin(_) => "admin",
            Actor::Account(_) => "account",
            Actor::System => "system",
        }
    }

    /// The acting key or account; none for the system.
    pub fn id(self) -> Option<uuid::Uuid> {
        match self {
            Actor::Admin(id) | Actor::Account(id) => Some(id),
            Actor::System => None,
        }
    }

    /// Rebuilds an actor from its stored parts.
    pub fn from_parts(kind: &str, id: Option<uuid::Uuid>) -> Option<Actor> {
        match (kind, id) {
            ("admin", Some(id)) => Some(Actor::Admin(id)),
            ("account", Some(id)) => Some(Actor::Account(id)),
            ("system", None) => Some(Actor::System),
            _ => None,
        }
    }
}

/// Every auditable change. The wire form is `entity.verb`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// A link was created.
    LinkCreated,
    /// A link's target or expiry changed.
    LinkUpdated,
    /// A link was deleted.
    LinkDeleted,
    /// An account was created.
    AccountCreated,
    /// An API key was created.
    KeyCreated,
    /// An API key was revoked.
    KeyRevoked,
    /// Trial to active.
    SubscriptionActivated,
    /// Active period moved on.
    SubscriptionRenewed,
    /// Ended by an operator.
    SubscriptionCancelled,
    /// Ran out.
    SubscriptionExpired,
}

impl Action {
    /// The kind of entity this action changes.
    pub fn entity_type(self) -> EntityType {
        match self {
            Action::LinkCreated | Action::LinkUpdated | Action::LinkDeleted => EntityType::Link,
            Action::AccountCreated => EntityType::Account,
            Action::KeyCreated | Action::KeyRevoked => EntityType::Key,
            Action::SubscriptionActivated
            | Action::SubscriptionRenewed
            | Action::SubscriptionCancelled
            | Action::SubscriptionExpired => EntityType::Subscription,
        }
    }

    /// All actions, in contract order.
    pub const ALL: [Action; 10] = [
        Action::LinkCreated,
        Action::LinkUpdated,
        Action::LinkDeleted,
        Action::AccountCreated,
        Action::KeyCreated,
        Action::KeyRevoked,
        Action::SubscriptionActivated,
        Action::SubscriptionRenewed,
        Action::SubscriptionCancelled,
        Action::SubscriptionExpired,
    ];

    /// The wire name, e.g. `link.created`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::LinkCreated => "link.created",
            Action::LinkUpdated => "link.updated",
            Action::LinkDeleted => "link.deleted",
            Action::AccountCreated => "account.created",
            Action::KeyCreated => "key.created",
            Action::KeyRevoked => "key.revoked",
            Action::SubscriptionActivated => "subscription.activated",
            Action::SubscriptionRenewed => "subscription.renewed",
            Action::SubscriptionCancelled => "subscription.cancelled",
            Action::SubscriptionExpired => "subscription.expired",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an audit value could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuditError {
    /// Not one of [`Action::ALL`].
    #[error("unknown audit action `{0}`")]
    UnknownAction(String),
    /// Not one of link, account, key, subscription.
    #[error("unknown entity type `{0}` (expected link, account, key or subscription)")]
    UnknownEntityType(String),
    /// The action belongs to another kind of entity (e.g. `link.created` on an account).
    #[error("action {action} does not apply to a {entity}")]
    ActionMismatch {
        /// The action.
        action: Action,
        /// The entity type it was recorded against.
        entity: EntityType,
    },
    /// A cursor this module did not issue.
    #[error("invalid cursor")]
    InvalidCursor,
    /// `since` after `until`.
    #[error("since must not be after until")]
    EmptyRange,
}

impl FromStr for Action {
    type Err = AuditError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Action::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| AuditError::UnknownAction(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_round_trips_through_its_wire_name() {
        for a in Action::ALL {
            assert_eq!(a.as_str().parse::<Action>(), Ok(a));
        }
        assert!("link.exploded".parse::<Action>().is_err());
    }
}

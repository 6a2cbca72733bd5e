//! What each change records in the audit log: the fields of each entity as the log shows
//! them. One place, so every use case records the same shape, and no secret (a key's hash
//! or plaintext) can reach an entry: keys are recorded by their public prefix only.

use audit::{Action, Actor, AuditEntry, Changes, Value};
use chrono::{DateTime, Utc};
use shortener_domain::{Account, AccountId, Link};
use subscriptions::{Subscription, Versioned};

use crate::StoredKey;

/// The fields of a link that a change can touch.
pub(crate) fn link_fields(link: &Link) -> [(&'static str, Value); 2] {
    [
        ("url", link.target.as_str().into()),
        ("expires_at", link.expires_at.into()),
    ]
}

/// The fields of a subscription, for whatever state it is in (absent fields diff as null).
pub(crate) fn subscription_fields(v: &Versioned) -> Vec<(&'static str, Value)> {
    let mut fields = vec![
        ("state", v.subscription.state().as_str().into()),
        ("version", Value::Int(v.version)),
    ];
    match &v.subscription {
        Subscription::Trial { expires_at } => fields.push(("expires_at", (*expires_at).into())),
        Subscription::Active { plan, renews_at } => {
            fields.push(("plan", plan.as_str().into()));
            fields.push(("renews_at", (*renews_at).into()));
        }
        Subscription::Expired { expired_at } => fields.push(("expired_at", (*expired_at).into())),
        Subscription::Cancelled {
            cancelled_at,
            reason,
        } => {
            fields.push(("cancelled_at", (*cancelled_at).into()));
            fields.push(("reason", reason.as_str().into()));
        }
    }
    fields
}

/// The entry for one change to something of `account`'s.
pub(crate) fn entry(
    at: DateTime<Utc>,
    actor: Actor,
    action: Action,
    entity_id: impl Into<String>,
    account: AccountId,
    changes: Changes,
) -> AuditEntry {
    AuditEntry::new(
        at,
        actor,
        action,
        entity_id,
        Some(account.as_uuid()),
        changes,
    )
}

/// `account.created`: its name (it always starts in a trial, whose end the account shows).
pub(crate) fn account_created(actor: Actor, account: &Account) -> AuditEntry {
    entry(
        account.created_at,
        actor,
        Action::AccountCreated,
        account.id.as_uuid().to_string(),
        account.id,
        Changes::created(&[("name", account.name.as_str().into())]),
    )
}

/// `key.created`: the public prefix and when; never the key or its hash.
pub(crate) fn key_created(actor: Actor, account: AccountId, key: &StoredKey) -> AuditEntry {
    entry(
        key.created_at,
        actor,
        Action::KeyCreated,
        key.id.as_uuid().to_string(),
        account,
        Changes::created(&[("prefix", key.prefix().into())]),
    )
}

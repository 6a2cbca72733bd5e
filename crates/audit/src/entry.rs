//! Audit entries, their per-field changes, and how they are queried.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{Action, Actor, AuditError};

/// The kinds of thing that are audited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EntityType {
    /// A link; its id is its code.
    Link,
    /// An account; its id is the account id.
    Account,
    /// An API key; its id is the key id.
    Key,
    /// An account's subscription; its id is the account id.
    Subscription,
}

impl EntityType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            EntityType::Link => "link",
            EntityType::Account => "account",
            EntityType::Key => "key",
            EntityType::Subscription => "subscription",
        }
    }
}

impl fmt::Display for EntityType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EntityType {
    type Err = AuditError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            EntityType::Link,
            EntityType::Account,
            EntityType::Key,
            EntityType::Subscription,
        ]
        .into_iter()
        .find(|e| e.as_str() == s)
        .ok_or_else(|| AuditError::UnknownEntityType(s.to_owned()))
    }
}

/// What an entry is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entity {
    /// Its kind.
    pub kind: EntityType,
    /// Its id as the API names it (a link's code, otherwise a UUID).
    pub id: String,
}

/// A recorded field value. Our own small type, so the module stays free of any JSON crate;
/// the edges render it as JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// Absent, or removed.
    Null,
    /// Text (URLs, names, states, plans, reasons).
    Text(String),
    /// A whole number.
    Int(i64),
    /// A flag.
    Bool(bool),
    /// An instant.
    Time(DateTime<Utc>),
    /// Texts in order (a link's tags).
    List(Vec<String>),
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Text(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Text(s)
    }
}

impl From<DateTime<Utc>> for Value {
    fn from(t: DateTime<Utc>) -> Self {
        Value::Time(t)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// One field's before and after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Before the change (`Null` for a creation).
    pub old: Value,
    /// After the change (`Null` for a deletion or removal).
    pub new: Value,
}

/// The fields a change touched, by name. Only fields whose value differs are kept, so an
/// entry says exactly what changed. Never holds secrets: callers pass only the fields they
/// mean to record (a key's hash or plaintext is never one of them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes(BTreeMap<String, Change>);

impl Changes {
    /// The difference between `before` and `after`, given as `(field, value)` lists over
    /// the same fields; a field missing from one side counts as `Null` there.
    pub fn diff(before: &[(&str, Value)], after: &[(&str, Value)]) -> Changes {
        let lookup = |side: &[(&str, Value)], name: &str| {
            side.iter()
                .find(|(n, _)| *n == name)
                .map_or(Value::Null, |(_, v)| v.clone())
        };
        let mut map = BTreeMap::new();
        for name in before.iter().chain(after).map(|(n, _)| *n) {
            let (old, new) = (lookup(before, name), lookup(after, name));
            if old != new {
                map.insert(name.to_owned(), Change { old, new });
            }
        }
        Changes(map)
    }

    /// A creation: every field from `Null` to its value.
    pub fn created(after: &[(&str, Value)]) -> Changes {
        Changes::diff(&[], after)
    }

    /// Rebuilds changes read back from storage.
    pub fn from_map(map: BTreeMap<String, Change>) -> Changes {
        Changes(map)
    }

    /// The changed fields, by name.
    pub fn fields(&self) -> &BTreeMap<String, Change> {
        &self.0
    }

    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// One immutable record of one change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// UUIDv7: sorts by creation within the same instant.
    pub id: Uuid,
    /// When the change happened (the change's own clock reading).
    pub occurred_at: DateTime<Utc>,
    /// Who made it.
    pub actor: Actor,
    /// What kind of change.
    pub action: Action,
    /// What it changed.
    pub entity: Entity,
    /// The account the entity belongs to: whose `/api/v1/audit` view shows the entry.
    pub account_id: Option<Uuid>,
    /// Field by field.
    pub changes: Changes,
}

impl AuditEntry {
    /// A new entry. The action must belong to the entity's type, so `link.created` can
    /// never be filed against an account.
    pub fn new(
        occurred_at: DateTime<Utc>,
        actor: Actor,
        action: Action,
        entity_id: impl Into<String>,
        account_id: Option<Uuid>,
        changes: Changes,
    ) -> AuditEntry {
        AuditEntry {
            id: Uuid::now_v7(),
            occurred_at,
            actor,
            action,
            entity: Entity {
                kind: action.entity_type(),
                id: entity_id.into(),
            },
            account_id,
            changes,
        }
    }

    /// Rebuilds an entry read back from storage, checking that its parts agree.
    pub fn from_parts(
        id: Uuid,
        occurred_at: DateTime<Utc>,
        actor: Actor,
        action: Action,
        entity: Entity,
        account_id: Option<Uuid>,
        changes: Changes,
    ) -> Result<AuditEntry, AuditError> {
        if action.entity_type() != entity.kind {
            return Err(AuditError::ActionMismatch {
                action,
                entity: entity.kind,
            });
        }
        Ok(AuditEntry {
            id,
            occurred_at,
            actor,
            action,
            entity,
            account_id,
            changes,
        })
    }

    /// Where a page that ended with this entry continues.
    pub fn cursor(&self) -> AuditCursor {
        AuditCursor {
            occurred_at: self.occurred_at,
            id: self.id,
        }
    }
}

/// Keyset position in the newest-first order `(occurred_at, id)` descending. Entries that
/// arrive while a client pages are newer than its cursor, so pages never repeat or skip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditCursor {
    /// The last entry's time.
    pub occurred_at: DateTime<Utc>,
    /// The last entry's id.
    pub id: Uuid,
}

impl AuditCursor {
    /// A compact text form; the HTTP edge wraps it to keep it opaque.
    pub fn encode(&self) -> String {
        format!(
            "{}.{}",
            self.occurred_at.timestamp_micros(),
            self.id.simple()
        )
    }

    /// Parses [`AuditCursor::encode`]'s output.
    pub fn decode(s: &str) -> Result<AuditCursor, AuditError> {
        let (micros, id) = s.split_once('.').ok_or(AuditError::InvalidCursor)?;
        let micros: i64 = micros.parse().map_err(|_| AuditError::InvalidCursor)?;
        Ok(AuditCursor {
            occurred_at: DateTime::from_timestamp_micros(micros)
                .ok_or(AuditError::InvalidCursor)?,
            id: Uuid::parse_str(id).map_err(|_| AuditError::InvalidCursor)?,
        })
    }
}

/// The filters the query API offers; every one is optional and they combine with AND.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Only entries about this kind of entity.
    pub entity_type: Option<EntityType>,
    /// Only entries about this entity id.
    pub entity_id: Option<String>,
    /// Only entries by this actor id (key id for admins, account id for accounts).
    pub actor_id: Option<Uuid>,
    /// Only this action.
    pub action: Option<Action>,
    /// At or after this instant.
    pub since: Option<DateTime<Utc>>,
    /// Before this instant.
    pub until: Option<DateTime<Utc>>,
    /// Restricts to one account's own entries (the `/api/v1/audit` view).
    pub account: Option<Uuid>,
}

impl AuditFilter {
    /// Checks that the filter can match anything at all.
    pub fn validate(self) -> Result<AuditFilter, AuditError> {
        match (self.since, self.until) {
            (Some(s), Some(u)) if s > u => Err(AuditError::EmptyRange),
            _ => Ok(self),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_keeps_only_what_changed() {
        let before = [
            ("url", Value::from("https://a/")),
            ("expires_at", Value::Null),
        ];
        let after = [
            ("url", Value::from("https://b/")),
            ("expires_at", Value::Null),
        ];
        let c = Changes::diff(&before, &after);
        assert_eq!(c.fields().len(), 1);
        assert_eq!(
            c.fields()["url"],
            Change {
                old: "https://a/".into(),
                new: "https://b/".into()
            }
        );
        assert!(Changes::diff(&before, &before).is_empty());
        let created = Changes::created(&[("name", "Acme".into())]);
        assert_eq!(created.fields()["name"].old, Value::Null);
    }

    #[test]
    fn entries_belong_to_their_action_s_entity_type() {
        let e = AuditEntry::new(
            Utc::now(),
            Actor::System,
            Action::SubscriptionExpired,
            "x",
            None,
            Changes::default(),
        );
        assert_eq!(e.entity.kind, EntityType::Subscription);
        assert_eq!(e.id.get_version_num(), 7);
        let wrong = AuditEntry::from_parts(
            e.id,
            e.occurred_at,
            e.actor,
            Action::LinkCreated,
            e.entity.clone(),
            None,
            Changes::default(),
        );
        assert!(matches!(wrong, Err(AuditError::ActionMismatch { .. })));
    }

    #[test]
    fn cursors_round_trip_and_foreign_ones_are_refused() {
        let e = AuditEntry::new(
            Utc::now(),
            Actor::System,
            Action::KeyRevoked,
            "k",
            None,
            Changes::default(),
        );
        let c = e.cursor();
        let back = AuditCursor::decode(&c.encode()).unwrap_or_else(|_| panic!("round trip"));
        assert_eq!(back.id, c.id);
        assert_eq!(
            back.occurred_at.timestamp_micros(),
            c.occurred_at.timestamp_micros()
        );
        for bad in ["", "x.y", "12", "12.not-a-uuid", "99999999999999999999.0"] {
            assert_eq!(
                AuditCursor::decode(bad),
                Err(AuditError::InvalidCursor),
                "{bad}"
            );
        }
    }

    #[test]
    fn actors_and_entity_types_round_trip() {
        let id = Uuid::now_v7();
        for a in [Actor::Admin(id), Actor::Account(id), Actor::System] {
            assert_eq!(Actor::from_parts(a.kind(), a.id()), Some(a));
        }
        assert_eq!(Actor::from_parts("system", Some(id)), None);
        for t in ["link", "account", "key", "subscription"] {
            assert_eq!(t.parse::<EntityType>().map(|e| e.as_str()), Ok(t));
        }
        assert!("user".parse::<EntityType>().is_err());
        let f = AuditFilter {
            since: Some(Utc::now()),
            until: Some(Utc::now() - chrono::Duration::seconds(1)),
            ..Default::default()
        };
        assert_eq!(f.validate(), Err(AuditError::EmptyRange));
    }
}

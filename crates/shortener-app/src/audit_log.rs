//! The audit log, from the use cases' side: what each change records (the fields of each
//! entity as the log shows them, in one place, so every use case records the same shape
//! and no secret, a key's hash or plaintext, can reach an entry: keys are recorded by
//! their public prefix only), and reading it back (operators see every entry, an account
//! only its own). Entries are written by the unit of work's `Tx`, in the transaction of
//! their change.

use audit::{
    Action, Actor, AuditCursor, AuditEntry, AuditFilter, AuditLog, AuditQuery, Change, Changes,
    Value,
};
use chrono::{DateTime, Utc};
use shortener_domain::{Account, AccountId, Link};
use subscriptions::{Subscription, Versioned};

use crate::{AppError, Page, PageRequest, StoredKey};

// ---------------------------------------------------------------------------------------
// What each change records.

/// What the log shows of a link's password: this text when it has one (`null` when not),
/// never any part of the password or of its hash.
pub(crate) const REDACTED: &str = "[redacted]";

/// The fields of a link that a change can touch. No tags reads as `null`, like every
/// other absent field, so a link made without tags records no `tags` change. A password
/// reads as [`REDACTED`].
pub(crate) fn link_fields(link: &Link) -> [(&'static str, Value); 6] {
    let tags = if link.tags.is_empty() {
        Value::Null
    } else {
        Value::List(link.tags.to_strings())
    };
    [
        ("url", link.target.as_str().into()),
        ("expires_at", link.expires_at.into()),
        ("tags", tags),
        ("title", link.title.as_ref().map(|t| t.as_str()).into()),
        // The limit, not what is used of it: taking a visit is not a change to the link.
        (
            "max_visits",
            link.visit_limit
                .map_or(Value::Null, |l| Value::Int(i64::from(l.max.get()))),
        ),
        ("password", link.password.as_ref().map(|_| REDACTED).into()),
    ]
}

/// What an edit of a link changed. `password_replaced`: a new password was given to a
/// link that had one, which the fields alone cannot show (both read as [`REDACTED`]), so
/// it is recorded as `[redacted]` to `[redacted]`.
pub(crate) fn link_changes(before: &Link, after: &Link, password_replaced: bool) -> Changes {
    let changes = Changes::diff(&link_fields(before), &link_fields(after));
    if !(password_replaced && before.password.is_some()) {
        return changes;
    }
    let mut fields = changes.fields().clone();
    fields.insert(
        "password".to_owned(),
        Change {
            old: REDACTED.into(),
            new: REDACTED.into(),
        },
    );
    Changes::from_map(fields)
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

// ---------------------------------------------------------------------------------------
// Reading the log.

/// The audit log's query use cases.
pub struct AuditService<S> {
    store: S,
}

impl<S: AuditLog<Error = AppError>> AuditService<S> {
    /// Reads through `store`.
    pub fn new(store: S) -> Self {
        AuditService { store }
    }

    /// Entries matching `filter`, newest first: the operator's view.
    pub async fn page(
        &self,
        filter: AuditFilter,
        page: PageRequest<AuditCursor>,
    ) -> Result<Page<AuditEntry, AuditCursor>, AppError> {
        let filter = filter
            .validate()
            .map_err(|e| AppError::Validation(e.to_string()))?;
        let fetch = page.overfetch();
        let rows = self
            .store
            .entries(&AuditQuery {
                filter,
                after: fetch.after,
                limit: fetch.limit,
            })
            .await?;
        Ok(Page::from_overfetch(rows, page.limit, AuditEntry::cursor))
    }

    /// The same view restricted to `account`'s own entries, whatever the filter says.
    pub async fn account_page(
        &self,
        account: AccountId,
        filter: AuditFilter,
        page: PageRequest<AuditCursor>,
    ) -> Result<Page<AuditEntry, AuditCursor>, AppError> {
        let filter = AuditFilter {
            account: Some(account.as_uuid()),
            ..filter
        };
        self.page(filter, page).await
    }
}

#[cfg(test)]
mod tests {
    use audit::{Action, Actor, Change, EntityType, Value};
    use shortener_domain::KeyId;
    use subscriptions::{PlanName, Transition};

    use super::*;
    use crate::memory::Services;
    use crate::{Clock, LinkPatch, NewLink};

    fn new_link(url: &str, code: Option<&str>) -> NewLink {
        NewLink {
            url: url.into(),
            code: code.map(str::to_owned),
            expires_at: None,
            ..Default::default()
        }
    }

    fn entries(f: &Services) -> Vec<audit::AuditEntry> {
        f.store.snapshot().audit
    }

    fn change(old: impl Into<Value>, new: impl Into<Value>) -> Change {
        Change {
            old: old.into(),
            new: new.into(),
        }
    }

    #[tokio::test]
    async fn every_change_records_one_entry_naming_actor_entity_and_fields() {
        let f = Services::new();
        let account = f.accounts.create(f.admin, "Acme").await.unwrap().account;
        let key = f.accounts.create_key(f.admin, account.id).await.unwrap();
        f.subs
            .transition(
                f.admin,
                account.id,
                Transition::Activate(PlanName::Pro),
                None,
            )
            .await
            .unwrap();
        let link = f
            .links
            .create(account.id, new_link("https://a.example/", Some("mine")))
            .await
            .unwrap();
        let patch = |url: &str| LinkPatch {
            url: Some(url.into()),
            expires_at: None,
            ..Default::default()
        };
        f.links
            .update(account.id, "mine", patch("https://b.example/"))
            .await
            .unwrap();
        // Nothing changes, so nothing is recorded.
        f.links
            .update(account.id, "mine", patch("https://b.example/"))
            .await
            .unwrap();
        f.links.delete(account.id, "mine").await.unwrap();
        f.accounts
            .revoke_key(f.admin, account.id, key.id)
            .await
            .unwrap();
        // A second revocation changes nothing.
        f.accounts
            .revoke_key(f.admin, account.id, key.id)
            .await
            .unwrap();

        let log = entries(&f);
        let actions: Vec<Action> = log.iter().map(|e| e.action).collect();
        assert_eq!(
            actions,
            [
                Action::AccountCreated,
                Action::KeyCreated,
                Action::SubscriptionActivated,
                Action::LinkCreated,
                Action::LinkUpdated,
                Action::LinkDeleted,
                Action::KeyRevoked,
            ]
        );
        let admin = Actor::Admin(f.admin.as_uuid());
        let owner = Actor::Account(account.id.as_uuid());
        let expect = [
            (admin, EntityType::Account, account.id.as_uuid().to_string()),
            (admin, EntityType::Key, key.id.as_uuid().to_string()),
            (
                admin,
                EntityType::Subscription,
                account.id.as_uuid().to_string(),
            ),
            (owner, EntityType::Link, "mine".to_owned()),
            (owner, EntityType::Link, "mine".to_owned()),
            (owner, EntityType::Link, "mine".to_owned()),
            (admin, EntityType::Key, key.id.as_uuid().to_string()),
        ];
        for (e, (actor, kind, id)) in log.iter().zip(expect) {
            assert_eq!((e.actor, e.entity.kind, &e.entity.id), (actor, kind, &id));
            assert_eq!(e.account_id, Some(account.id.as_uuid()));
            assert_eq!(e.id.get_version_num(), 7);
        }
        assert_eq!(log[0].changes.fields()["name"], change(Value::Null, "Acme"));
        assert_eq!(
            log[1].changes.fields()["prefix"],
            change(Value::Null, key.prefix.as_str())
        );
        let activated = log[2].changes.fields();
        assert_eq!(activated["state"], change("trial", "active"));
        assert_eq!(activated["plan"], change(Value::Null, "pro"));
        assert_eq!(activated["version"], change(Value::Int(1), Value::Int(2)));
        assert_eq!(
            log[3].changes.fields()["url"],
            change(Value::Null, "https://a.example/")
        );
        assert_eq!(log[3].occurred_at, link.created_at);
        assert_eq!(
            log[4].changes.fields().keys().collect::<Vec<_>>(),
            ["url"],
            "only what changed"
        );
        assert_eq!(
            log[4].changes.fields()["url"],
            change("https://a.example/", "https://b.example/")
        );
        assert!(log[5].changes.fields().contains_key("deleted_at"));
        assert!(log[6].changes.fields().contains_key("revoked_at"));
        // Key material never reaches the log.
        let secret = &key.plaintext[key.prefix.len()..];
        assert!(!format!("{log:?}").contains(secret));
    }

    #[tokio::test]
    async fn rejected_requests_record_nothing() {
        let f = Services::new();
        let account = f.accounts.create(f.admin, "Acme").await.unwrap().account;
        let before = entries(&f).len();
        let a = account.id;
        assert!(f.links.create(a, new_link("ftp://x/", None)).await.is_err());
        // Trials may not choose codes.
        assert!(
            f.links
                .create(a, new_link("https://a.example/", Some("mine")))
                .await
                .is_err()
        );
        assert!(f.accounts.create(f.admin, "").await.is_err());
        assert!(
            f.subs
                .transition(f.admin, a, Transition::Renew, None)
                .await
                .is_err(),
            "a trial cannot renew"
        );
        assert!(
            f.subs
                .transition(f.admin, a, Transition::Cancel("x".into()), Some(7))
                .await
                .is_err(),
            "stale version"
        );
        assert!(
            f.accounts
                .revoke_key(f.admin, a, KeyId::new())
                .await
                .is_err()
        );
        assert!(f.links.delete(a, "nothere").await.is_err());
        assert_eq!(entries(&f).len(), before);
    }

    #[tokio::test]
    async fn the_sweep_records_expiry_by_the_system() {
        let f = Services::new();
        let a = f.accounts.create(f.admin, "Acme").await.unwrap().account.id;
        f.clock.advance(chrono::Duration::days(15));
        assert_eq!(f.subs.expire_due(10).await.unwrap(), 1);
        let last = entries(&f).pop().unwrap();
        assert_eq!(last.action, Action::SubscriptionExpired);
        assert_eq!(last.actor, Actor::System);
        assert_eq!(last.entity.id, a.as_uuid().to_string());
        assert_eq!(last.changes.fields()["state"], change("trial", "expired"));
    }

    #[tokio::test]
    async fn accounts_see_only_their_own_entries_and_pages_follow_the_cursor() {
        let f = Services::new();
        let a = f.accounts.create(f.admin, "A").await.unwrap().account.id;
        let b = f.accounts.create(f.admin, "B").await.unwrap().account.id;
        for _ in 0..3 {
            f.clock.advance(chrono::Duration::seconds(1));
            f.links
                .create(a, new_link("https://a.example/", None))
                .await
                .unwrap();
        }
        let own = f
            .log
            .account_page(
                b,
                AuditFilter::default(),
                PageRequest {
                    after: None,
                    limit: 50,
                },
            )
            .await
            .unwrap();
        assert_eq!(own.items.len(), 1);
        assert_eq!(own.items[0].action, Action::AccountCreated);

        let first = f
            .log
            .account_page(
                a,
                AuditFilter::default(),
                PageRequest {
                    after: None,
                    limit: 2,
                },
            )
            .await
            .unwrap();
        assert_eq!(first.items.len(), 2);
        let second = f
            .log
            .account_page(
                a,
                AuditFilter::default(),
                PageRequest {
                    after: first.next,
                    limit: 2,
                },
            )
            .await
            .unwrap();
        assert_eq!(second.items.len(), 2);
        assert_eq!(second.next, None);
        let mut seen: Vec<_> = first
            .items
            .iter()
            .chain(&second.items)
            .map(|e| e.id)
            .collect();
        assert!(seen.windows(2).all(|w| w[0] > w[1]), "newest first");
        seen.dedup();
        assert_eq!(seen.len(), 4);
        let bad = AuditFilter {
            since: Some(f.clock.now()),
            until: Some(f.clock.now() - chrono::Duration::seconds(1)),
            ..AuditFilter::default()
        };
        assert!(matches!(
            f.log
                .page(
                    bad,
                    PageRequest {
                        after: None,
                        limit: 10
                    }
                )
                .await,
            Err(AppError::Validation(_))
        ));
    }
}

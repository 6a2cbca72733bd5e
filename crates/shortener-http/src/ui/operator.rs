//! The operator's pages: accounts (search, create), each account's subscription with the
//! changes its state allows, its keys (create, shown once; revoke), and the audit log
//! with its filters.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use audit::{AuditEntry, Value};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use shortener_app::{AccountView, AppError, NameSearch, NewKey};
use shortener_domain::{AccountId, KeyId};
use subscriptions::{PlanName, Subscription, Transition};

use super::session::{Posted, Signed};
use super::{Chrome, UiError, page, see_other, with_query};
use crate::audit_log::AuditParams;
use crate::extract::path_id;
use crate::page::{PageQuery, encode_cursor};
use crate::{Error, State};

/// Accounts or entries on a page.
const PAGE_SIZE: u32 = 25;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/accounts", web::get().to(accounts))
        .route("/accounts", web::post().to(create_account))
        .route("/accounts/{id}", web::get().to(account))
        .route("/accounts/{id}/keys", web::post().to(create_key))
        .route(
            "/accounts/{id}/keys/{key_id}/revoke",
            web::post().to(revoke_key),
        )
        .route(
            "/accounts/{id}/subscription/{change}",
            web::post().to(change_subscription),
        )
        .route("/audit", web::get().to(audit_log));
}

fn minute(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// A subscription as the pages show it, with the changes its state allows.
struct SubscriptionView {
    state: String,
    plan: Option<String>,
    /// What the date means in this state, and the date.
    when: (&'static str, String),
    reason: Option<String>,
    version: i64,
    can_activate: bool,
    can_renew: bool,
    can_cancel: bool,
}

impl SubscriptionView {
    fn new(view: &AccountView) -> SubscriptionView {
        let s = &view.subscription.subscription;
        let (plan, when, reason) = match s {
            Subscription::Trial { expires_at } => (
                Some("trial".to_owned()),
                ("Trial ends", minute(*expires_at)),
                None,
            ),
            Subscription::Active { plan, renews_at } => {
                (Some(plan.to_string()), ("Renews", minute(*renews_at)), None)
            }
            Subscription::Expired { expired_at } => (None, ("Expired", minute(*expired_at)), None),
            Subscription::Cancelled {
                cancelled_at,
                reason,
            } => (
                None,
                ("Cancelled", minute(*cancelled_at)),
                Some(reason.clone()),
            ),
        };
        SubscriptionView {
            state: s.state().to_string(),
            plan,
            when,
            reason,
            version: view.subscription.version,
            can_activate: matches!(s, Subscription::Trial { .. }),
            can_renew: matches!(s, Subscription::Active { .. }),
            can_cancel: matches!(s, Subscription::Trial { .. } | Subscription::Active { .. }),
        }
    }
}

struct AccountRow {
    id: String,
    name: String,
    created: String,
    subscription: SubscriptionView,
}

impl AccountRow {
    fn new(view: &AccountView) -> AccountRow {
        AccountRow {
            id: view.account.id.to_string(),
            name: view.account.name.to_string(),
            created: minute(view.account.created_at),
            subscription: SubscriptionView::new(view),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
struct AccountsQuery {
    q: Option<String>,
    cursor: Option<String>,
}

#[derive(Template)]
#[template(path = "ui/accounts.html")]
struct AccountsPage {
    chrome: Chrome,
    accounts: Vec<AccountRow>,
    q: String,
    next: Option<String>,
    paged: bool,
    /// The create form's name, as typed, and why it was refused.
    name: String,
    name_error: Option<String>,
}

async fn accounts_page(
    state: &State,
    signed: &Signed,
    query: &AccountsQuery,
    status: StatusCode,
    name: String,
    name_error: Option<String>,
) -> Result<HttpResponse, UiError> {
    let q = query.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
    let search = q.map(NameSearch::parse).transpose()?;
    let request = PageQuery {
        limit: Some(PAGE_SIZE),
        cursor: query.cursor.clone().filter(|c| !c.is_empty()),
    }
    .to_request()?;
    let found = state.accounts.list(search.as_ref(), request).await?;
    let next = found.next.as_ref().map(|position| {
        let cursor = encode_cursor(position);
        with_query(
            "/ui/accounts",
            [("q", q), ("cursor", Some(cursor.as_str()))],
        )
    });
    page(
        status,
        &AccountsPage {
            chrome: Chrome::of(state, signed, "accounts").await,
            accounts: found.items.iter().map(AccountRow::new).collect(),
            q: q.unwrap_or_default().to_owned(),
            next,
            paged: query.cursor.is_some(),
            name,
            name_error,
        },
    )
}

/// `GET /ui/accounts?q=&cursor=`: oldest first, as the API lists them.
async fn accounts(
    state: web::Data<State>,
    signed: Signed,
    query: web::Query<AccountsQuery>,
) -> Result<HttpResponse, UiError> {
    signed.admin()?;
    accounts_page(&state, &signed, &query, StatusCode::OK, String::new(), None).await
}

/// `POST /ui/accounts`: a new account, in a trial.
async fn create_account(state: web::Data<State>, posted: Posted) -> Result<HttpResponse, UiError> {
    let admin = posted.signed.admin()?;
    let name = posted.fields.get("name").unwrap_or_default().to_owned();
    match state.accounts.create(admin, &name).await {
        Ok(view) => Ok(see_other(&format!(
            "/ui/accounts/{}?created=1",
            view.account.id
        ))),
        Err(e @ (AppError::Validation(_) | AppError::Domain(_))) => {
            let (slug, detail) = Error::App(e).problem();
            accounts_page(
                &state,
                &posted.signed,
                &AccountsQuery::default(),
                slug.status(),
                name,
                Some(format!("{} ({})", super::sentence(&detail), slug.as_str())),
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

struct KeyRow {
    id: String,
    prefix: String,
    created: String,
    revoked: Option<String>,
}

#[derive(Template)]
#[template(path = "ui/account.html")]
struct AccountPage {
    chrome: Chrome,
    account: AccountRow,
    keys: Vec<KeyRow>,
    plans: Vec<String>,
    notice: Option<String>,
    /// A refusal of the last change, with its slug (a stale version's 412 among them).
    problem: Option<String>,
    /// A key just made: shown this once.
    new_key: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct AccountQuery {
    created: Option<String>,
    changed: Option<String>,
    revoked: Option<String>,
}

struct Shown {
    status: StatusCode,
    notice: Option<String>,
    problem: Option<String>,
    new_key: Option<NewKey>,
}

async fn account_page(
    state: &State,
    signed: &Signed,
    id: AccountId,
    shown: Shown,
) -> Result<HttpResponse, UiError> {
    let view = state.accounts.get(id).await?;
    let keys = state
        .accounts
        .keys(id)
        .await?
        .into_iter()
        .map(|k| KeyRow {
            id: k.id.to_string(),
            prefix: k.prefix(),
            created: minute(k.created_at),
            revoked: k.revoked_at.map(minute),
        })
        .collect();
    page(
        shown.status,
        &AccountPage {
            chrome: Chrome::of(state, signed, "accounts").await,
            account: AccountRow::new(&view),
            keys,
            plans: [PlanName::Pro, PlanName::Business]
                .iter()
                .map(ToString::to_string)
                .collect(),
            notice: shown.notice,
            problem: shown.problem,
            new_key: shown.new_key.map(|k| k.plaintext),
        },
    )
}

/// `GET /ui/accounts/{id}`.
async fn account(
    state: web::Data<State>,
    signed: Signed,
    id: web::Path<String>,
    query: web::Query<AccountQuery>,
) -> Result<HttpResponse, UiError> {
    signed.admin()?;
    let notice = if query.created.is_some() {
        Some(
            "Account created, in a trial. Make it a key so it can sign in and call the API."
                .to_owned(),
        )
    } else if let Some(change) = &query.changed {
        Some(format!("Subscription {change}."))
    } else {
        query
            .revoked
            .as_ref()
            .map(|prefix| format!("Key {prefix} revoked: it stopped working at once."))
    };
    let shown = Shown {
        status: StatusCode::OK,
        notice,
        problem: None,
        new_key: None,
    };
    account_page(&state, &signed, path_id(&id)?, shown).await
}

/// `POST /ui/accounts/{id}/subscription/{activate|renew|cancel}`: the form carries the
/// version it was shown, so a change made meanwhile by someone else is a 412, shown on the
/// page with the current state, and nothing is changed.
async fn change_subscription(
    state: web::Data<State>,
    posted: Posted,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, UiError> {
    let admin = posted.signed.admin()?;
    let (id, change) = path.into_inner();
    let account: AccountId = path_id(&id)?;
    let fields = &posted.fields;
    let transition =
        match change.as_str() {
            "activate" => {
                Transition::Activate(fields.get("plan").unwrap_or_default().parse().map_err(
                    |e: subscriptions::SubscriptionError| Error::Validation(e.to_string()),
                )?)
            }
            "renew" => Transition::Renew,
            "cancel" => Transition::Cancel(fields.get("reason").unwrap_or_default().to_owned()),
            _ => return Err(AppError::NotFound.into()),
        };
    let version = fields
        .get("version")
        .map(|v| v.parse::<i64>())
        .transpose()
        .map_err(|_| Error::Validation("version must be a whole number".into()))?;
    let name = transition.name();
    match state
        .subscriptions
        .transition(admin, account, transition, version)
        .await
    {
        Ok(v) => {
            tracing::info!(admin_key = %admin, %account, transition = name, version = v.version, "subscription transition (web interface)");
            let done = match change.as_str() {
                "activate" => "activated",
                "renew" => "renewed",
                _ => "cancelled",
            };
            Ok(see_other(&format!("/ui/accounts/{account}?changed={done}")))
        }
        Err(
            e @ (AppError::VersionMismatch { .. }
            | AppError::InvalidTransition { .. }
            | AppError::Validation(_)
            | AppError::Domain(_)),
        ) => {
            let (slug, detail) = Error::App(e).problem();
            let shown = Shown {
                status: slug.status(),
                notice: None,
                problem: Some(format!(
                    "Nothing was changed: {detail} ({}). {}",
                    slug.as_str(),
                    super::what_to_do(slug)
                )),
                new_key: None,
            };
            account_page(&state, &posted.signed, account, shown).await
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /ui/accounts/{id}/keys`: the key is on this answer's page only (never cached).
async fn create_key(
    state: web::Data<State>,
    posted: Posted,
    id: web::Path<String>,
) -> Result<HttpResponse, UiError> {
    let admin = posted.signed.admin()?;
    let account: AccountId = path_id(&id)?;
    let key = state.accounts.create_key(admin, account).await?;
    tracing::info!(admin_key = %admin, %account, key = %key.id, "key created (web interface)");
    let shown = Shown {
        status: StatusCode::CREATED,
        notice: Some(format!(
            "Key {} created. Copy it now: it is shown this once.",
            key.prefix
        )),
        problem: None,
        new_key: Some(key),
    };
    account_page(&state, &posted.signed, account, shown).await
}

/// `POST /ui/accounts/{id}/keys/{key_id}/revoke`.
async fn revoke_key(
    state: web::Data<State>,
    posted: Posted,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, UiError> {
    let admin = posted.signed.admin()?;
    let (id, key_id) = path.into_inner();
    let account: AccountId = path_id(&id)?;
    let key_id: KeyId = path_id(&key_id)?;
    state.accounts.revoke_key(admin, account, key_id).await?;
    tracing::info!(admin_key = %admin, %account, key = %key_id, "key revoked (web interface)");
    let prefix = state
        .accounts
        .keys(account)
        .await?
        .into_iter()
        .find(|k| k.id == key_id)
        .map(|k| k.prefix())
        .unwrap_or_default();
    Ok(see_other(&with_query(
        &format!("/ui/accounts/{account}"),
        [("revoked", Some(prefix.as_str()))],
    )))
}

/// The audit log's filters as the form sends them: blanks are "any", times are the
/// browser's `datetime-local`, read as UTC.
#[derive(Debug, Default, Deserialize)]
struct AuditQuery {
    entity_type: Option<String>,
    entity_id: Option<String>,
    actor_id: Option<String>,
    action: Option<String>,
    since: Option<String>,
    until: Option<String>,
    cursor: Option<String>,
}

fn given(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// A `datetime-local` value as RFC 3339 (UTC); anything else is passed on as typed, for
/// the API's own message.
fn rfc3339(value: Option<String>) -> Option<String> {
    value.map(|v| super::datetime_local(&v).map_or(v, |at| at.to_rfc3339()))
}

impl AuditQuery {
    fn params(&self) -> AuditParams {
        AuditParams {
            entity_type: given(&self.entity_type),
            entity_id: given(&self.entity_id),
            actor_id: given(&self.actor_id),
            action: given(&self.action),
            since: rfc3339(given(&self.since)),
            until: rfc3339(given(&self.until)),
            limit: Some(PAGE_SIZE),
            cursor: given(&self.cursor),
        }
    }

    /// The same filters, for the next page's link.
    fn next(&self, cursor: &str) -> String {
        let filters = [
            ("entity_type", given(&self.entity_type)),
            ("entity_id", given(&self.entity_id)),
            ("actor_id", given(&self.actor_id)),
            ("action", given(&self.action)),
            ("since", given(&self.since)),
            ("until", given(&self.until)),
        ];
        with_query(
            "/ui/audit",
            filters
                .iter()
                .map(|(name, value)| (*name, value.as_deref()))
                .chain([("cursor", Some(cursor))]),
        )
    }
}

struct EntryRow {
    at: String,
    actor: String,
    action: &'static str,
    entity: String,
    /// The account page the entry is about, when it is about an account.
    account: Option<String>,
    changes: Vec<(String, String, String)>,
}

fn shown(value: &Value) -> String {
    match value {
        Value::Null => "—".to_owned(),
        Value::Text(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Time(t) => minute(*t),
        Value::List(items) if items.is_empty() => "[]".to_owned(),
        Value::List(items) => items.join(", "),
    }
}

impl EntryRow {
    fn new(e: &AuditEntry) -> EntryRow {
        let kind = e.entity.kind.as_str();
        EntryRow {
            at: e.occurred_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            actor: match e.actor.id() {
                Some(id) => format!("{} {id}", e.actor.kind()),
                None => e.actor.kind().to_owned(),
            },
            action: e.action.as_str(),
            entity: format!("{kind} {}", e.entity.id),
            account: matches!(kind, "account" | "subscription").then(|| e.entity.id.clone()),
            changes: e
                .changes
                .fields()
                .iter()
                .map(|(name, c)| (name.as_str().to_owned(), shown(&c.old), shown(&c.new)))
                .collect(),
        }
    }
}

#[derive(Template)]
#[template(path = "ui/audit.html")]
struct AuditPage {
    chrome: Chrome,
    entries: Vec<EntryRow>,
    filters: AuditQuery,
    filtered: bool,
    next: Option<String>,
    paged: bool,
    /// Each action the filter offers, and whether it is the one chosen.
    actions: Vec<(&'static str, bool)>,
    /// Each kind of entity, and whether it is the one chosen.
    entity_types: Vec<(&'static str, bool)>,
}

/// The actions the filter offers, as the API names them.
const ACTIONS: &[&str] = &[
    "link.created",
    "link.updated",
    "link.deleted",
    "account.created",
    "key.created",
    "key.revoked",
    "subscription.activated",
    "subscription.renewed",
    "subscription.cancelled",
    "subscription.expired",
];

/// `GET /ui/audit`: newest first, with the API's filters.
async fn audit_log(
    state: web::Data<State>,
    signed: Signed,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, UiError> {
    signed.admin()?;
    let (filter, request) = query.params().parse()?;
    let found = state.audit.page(filter, request).await?;
    let next = found
        .next
        .as_ref()
        .map(|position| query.next(&encode_cursor(position)));
    let filters = query.into_inner();
    let chosen = |options: &[&'static str], value: &Option<String>| {
        let value = given(value);
        options
            .iter()
            .map(|o| (*o, value.as_deref() == Some(*o)))
            .collect::<Vec<_>>()
    };
    let actions = chosen(ACTIONS, &filters.action);
    let entity_types = chosen(
        &["link", "account", "key", "subscription"],
        &filters.entity_type,
    );
    let filtered = [
        &filters.entity_type,
        &filters.entity_id,
        &filters.actor_id,
        &filters.action,
        &filters.since,
        &filters.until,
    ]
    .iter()
    .any(|v| given(v).is_some());
    page(
        StatusCode::OK,
        &AuditPage {
            chrome: Chrome::of(&state, &signed, "audit").await,
            entries: found.items.iter().map(EntryRow::new).collect(),
            paged: filters.cursor.is_some(),
            filters,
            filtered,
            next,
            actions,
            entity_types,
        },
    )
}

//! The audit log's query API (`GET /admin/v1/audit`, `GET /api/v1/audit`) and the one
//! rendering of an entry that both the API and `shortener audit tail` print.

use std::collections::BTreeMap;

use actix_web::{HttpResponse, web};
use audit::{AuditCursor, AuditEntry, AuditFilter, Change, Value};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use shortener_app::{Page, PageRequest};
use uuid::Uuid;

use utoipa::{IntoParams, ToSchema};

use crate::auth::{AccountCaller, AdminCaller};
use crate::extract::{self, Query};
use crate::openapi::Operations;
use crate::page::{PageDto, PageQuery};
use crate::problem::Slug;
use crate::{Error, State};

/// The filters the API and the CLI offer, as given (strings, validated in one place).
#[derive(Debug, Clone, Default, Deserialize, clap::Args, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// Only entries about this kind of entity: link, account, key or subscription.
    #[arg(long)]
    #[param(pattern = "^(link|account|key|subscription)$")]
    pub entity_type: Option<String>,
    /// Only entries about this entity (a link's code, or an account or key id).
    #[arg(long)]
    pub entity_id: Option<String>,
    /// Only entries by this actor (an admin key id, or an account id).
    #[arg(long)]
    #[param(format = Uuid)]
    pub actor_id: Option<String>,
    /// Only this action, e.g. link.created.
    #[arg(long)]
    #[param(
        pattern = "^(link\\.(created|updated|deleted)|account\\.created|key\\.(created|revoked)|subscription\\.(activated|renewed|cancelled|expired))$"
    )]
    pub action: Option<String>,
    /// At or after this instant (RFC 3339).
    #[arg(long)]
    #[param(format = DateTime)]
    pub since: Option<String>,
    /// Before this instant (RFC 3339).
    #[arg(long)]
    #[param(format = DateTime)]
    pub until: Option<String>,
    /// How many entries, 1 to 500 (default: 50 a page in the API, 20 lines for tail).
    #[arg(long)]
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// Continue after this `next_cursor` (older entries).
    #[arg(long)]
    #[param(min_length = 1, pattern = "^[A-Za-z0-9_-]+$")]
    pub cursor: Option<String>,
}

fn instant(name: &str, value: Option<&str>) -> Result<Option<DateTime<Utc>>, Error> {
    value
        .map(|v| {
            let at = DateTime::parse_from_rfc3339(v).map_err(|e| {
                Error::Validation(format!("{name} must be an RFC 3339 timestamp: {e}"))
            })?;
            extract::instant(name, at.with_timezone(&Utc))
        })
        .transpose()
}

impl AuditParams {
    /// The filter and the page, or what is wrong with them.
    pub fn parse(&self) -> Result<(AuditFilter, PageRequest<AuditCursor>), Error> {
        let invalid = |e: audit::AuditError| Error::Validation(e.to_string());
        let filter = AuditFilter {
            entity_type: self
                .entity_type
                .as_deref()
                .map(str::parse)
                .transpose()
                .map_err(invalid)?,
            entity_id: self.entity_id.clone(),
            actor_id: self
                .actor_id
                .as_deref()
                .map(|id| {
                    Uuid::parse_str(id)
                        .map_err(|_| Error::Validation("actor_id must be a UUID".into()))
                })
                .transpose()?,
            action: self
                .action
                .as_deref()
                .map(str::parse)
                .transpose()
                .map_err(invalid)?,
            since: instant("since", self.since.as_deref())?,
            until: instant("until", self.until.as_deref())?,
            account: None,
        };
        let page = PageQuery {
            limit: self.limit,
            cursor: self.cursor.clone(),
        }
        .to_request()?;
        Ok((filter, page))
    }
}

/// Who acted, on the wire. The system has no id.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Actor)]
pub struct ActorDto {
    /// `admin`, `account` or `system`.
    #[schema(pattern = "^(admin|account|system)$")]
    kind: &'static str,
    /// The admin key's id, or the account's id; `null` for the system.
    id: Option<Uuid>,
}

/// A recorded value on the wire: JSON's own types; times as RFC 3339 text.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum ValueDto<'a> {
    Null,
    Text(&'a str),
    Int(i64),
    Bool(bool),
    Time(String),
    List(&'a [String]),
}

impl<'a> From<&'a Value> for ValueDto<'a> {
    fn from(v: &'a Value) -> Self {
        match v {
            Value::Null => ValueDto::Null,
            Value::Text(s) => ValueDto::Text(s),
            Value::Int(i) => ValueDto::Int(*i),
            Value::Bool(b) => ValueDto::Bool(*b),
            Value::Time(t) => ValueDto::Time(t.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
            Value::List(items) => ValueDto::List(items),
        }
    }
}

/// One changed field: `{"old": ..., "new": ...}` (`old` is `null` for a creation).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Change)]
struct ChangeDto<'a> {
    /// A string, an integer, a boolean, an RFC 3339 time, an array of strings (tags), or
    /// `null`.
    #[schema(value_type = serde_json::Value)]
    old: ValueDto<'a>,
    /// A string, an integer, a boolean, an RFC 3339 time, an array of strings (tags), or
    /// `null`.
    #[schema(value_type = serde_json::Value)]
    new: ValueDto<'a>,
}

impl<'a> From<&'a Change> for ChangeDto<'a> {
    fn from(c: &'a Change) -> Self {
        ChangeDto {
            old: (&c.old).into(),
            new: (&c.new).into(),
        }
    }
}

/// An entry on the wire, and on the operator's terminal.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = AuditEntry, example = json!({"id": "019ab2c4-5d6e-7f80-9a1b-2c3d4e5f6a7d",
    "occurred_at": "2026-11-23T10:00:05.123456Z",
    "actor": {"kind": "account", "id": "019ab2c4-5d6e-7f80-9a1b-2c3d4e5f6a7b"},
    "action": "link.updated", "entity_type": "link", "entity_id": "aZ3kQ9x",
    "changes": {"url": {"old": "https://example.com/a", "new": "https://example.com/b"}}}))]
pub struct AuditEntryDto<'a> {
    id: Uuid,
    /// The database's clock when the entry was written.
    occurred_at: DateTime<Utc>,
    actor: ActorDto,
    /// E.g. `link.created`, `subscription.expired`.
    action: &'static str,
    /// `link`, `account`, `key` or `subscription`.
    entity_type: &'static str,
    /// A link's code, or an account or key id.
    #[schema(value_type = String)]
    entity_id: &'a str,
    /// Each changed field.
    #[schema(value_type = BTreeMap<String, ChangeDto>)]
    changes: BTreeMap<&'a str, ChangeDto<'a>>,
}

impl<'a> From<&'a AuditEntry> for AuditEntryDto<'a> {
    fn from(e: &'a AuditEntry) -> Self {
        AuditEntryDto {
            id: e.id,
            occurred_at: e.occurred_at,
            actor: ActorDto {
                kind: e.actor.kind(),
                id: e.actor.id(),
            },
            action: e.action.as_str(),
            entity_type: e.entity.kind.as_str(),
            entity_id: &e.entity.id,
            changes: e
                .changes
                .fields()
                .iter()
                .map(|(name, change)| (name.as_str(), change.into()))
                .collect(),
        }
    }
}

fn page_response(page: Page<AuditEntry, AuditCursor>) -> HttpResponse {
    let Page { items, next } = page;
    // The DTOs borrow the entries, which live here until the body is written.
    let borrowed = Page {
        items: items.iter().collect(),
        next,
    };
    HttpResponse::Ok().json(PageDto::new(borrowed, AuditEntryDto::from))
}

/// Every audit entry, newest first.
#[utoipa::path(
    get,
    path = "/admin/v1/audit",
    operation_id = "audit_log",
    tag = "audit",
    params(AuditParams),
    responses((status = 200, description = "A page of entries.", body = PageDto<AuditEntryDto>)),
)]
async fn admin_log(
    state: web::Data<State>,
    _admin: AdminCaller,
    query: Query<AuditParams>,
) -> Result<HttpResponse, Error> {
    let (filter, page) = query.parse()?;
    Ok(page_response(state.audit.page(filter, page).await?))
}

/// The account's own audit entries (its account, keys, subscription and links), newest
/// first.
#[utoipa::path(
    get,
    path = "/api/v1/audit",
    operation_id = "account_audit_log",
    tag = "audit",
    params(AuditParams),
    responses((status = 200, description = "A page of entries.", body = PageDto<AuditEntryDto>)),
)]
async fn account_log(
    state: web::Data<State>,
    caller: AccountCaller,
    query: Query<AuditParams>,
) -> Result<HttpResponse, Error> {
    let (filter, page) = query.parse()?;
    Ok(page_response(
        state
            .audit
            .account_page(caller.account_id, filter, page)
            .await?,
    ))
}

/// `/admin/v1/audit`.
pub fn admin_routes(ops: &mut Operations) {
    ops.add(__path_admin_log, admin_log, &[Slug::Validation]);
}

/// `/api/v1/audit`.
pub fn api_routes(ops: &mut Operations) {
    ops.add(__path_account_log, account_log, &[Slug::Validation]);
}

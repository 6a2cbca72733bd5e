//! The audit log's query API (`GET /admin/v1/audit`, `GET /api/v1/audit`) and the one
//! rendering of an entry that both the API and `shortener audit tail` print.

use std::collections::BTreeMap;

use actix_web::{HttpResponse, web};
use audit::{AuditCursor, AuditEntry, AuditFilter, Change, Value};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use shortener_app::{Page, PageRequest};
use uuid::Uuid;

use crate::auth::{AccountCaller, AdminCaller};
use crate::extract::{self, Query};
use crate::page::{PageDto, PageQuery};
use crate::{Error, State};

/// The filters the API and the CLI offer, as given (strings, validated in one place).
#[derive(Debug, Clone, Default, Deserialize, clap::Args)]
#[serde(deny_unknown_fields)]
pub struct AuditParams {
    /// Only entries about this kind of entity: link, account, key or subscription.
    #[arg(long)]
    pub entity_type: Option<String>,
    /// Only entries about this entity (a link's code, or an account or key id).
    #[arg(long)]
    pub entity_id: Option<String>,
    /// Only entries by this actor (an admin key id, or an account id).
    #[arg(long)]
    pub actor_id: Option<String>,
    /// Only this action, e.g. link.created.
    #[arg(long)]
    pub action: Option<String>,
    /// At or after this instant (RFC 3339).
    #[arg(long)]
    pub since: Option<String>,
    /// Before this instant (RFC 3339).
    #[arg(long)]
    pub until: Option<String>,
    /// How many entries, 1 to 500 (default: 50 a page in the API, 20 lines for tail).
    #[arg(long)]
    pub limit: Option<u32>,
    /// Continue after this `next_cursor` (older entries).
    #[arg(long)]
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
#[derive(Debug, Serialize)]
pub struct ActorDto {
    kind: &'static str,
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
}

impl<'a> From<&'a Value> for ValueDto<'a> {
    fn from(v: &'a Value) -> Self {
        match v {
            Value::Null => ValueDto::Null,
            Value::Text(s) => ValueDto::Text(s),
            Value::Int(i) => ValueDto::Int(*i),
            Value::Bool(b) => ValueDto::Bool(*b),
            Value::Time(t) => ValueDto::Time(t.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
        }
    }
}

/// One changed field: `{"old": ..., "new": ...}`.
#[derive(Debug, Serialize)]
struct ChangeDto<'a> {
    old: ValueDto<'a>,
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
#[derive(Debug, Serialize)]
pub struct AuditEntryDto<'a> {
    id: Uuid,
    occurred_at: DateTime<Utc>,
    actor: ActorDto,
    action: &'static str,
    entity_type: &'static str,
    entity_id: &'a str,
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

async fn admin_log(
    state: web::Data<State>,
    _admin: AdminCaller,
    query: Query<AuditParams>,
) -> Result<HttpResponse, Error> {
    let (filter, page) = query.parse()?;
    Ok(page_response(state.audit.page(filter, page).await?))
}

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
pub fn admin_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/audit").route(web::get().to(admin_log)));
}

/// `/api/v1/audit`.
pub fn api_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/audit").route(web::get().to(account_log)));
}

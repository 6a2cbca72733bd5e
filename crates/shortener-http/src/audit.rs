//! The audit log's query API (`GET /admin/v1/audit`, `GET /api/v1/audit`) and the one
//! rendering of an entry that both the API and `shortener audit tail` print.

use actix_web::{HttpResponse, web};
use audit::{AuditCursor, AuditEntry, AuditFilter};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use shortener_app::Page;
use uuid::Uuid;

use crate::extract::{AccountCaller, AdminCaller, PageQuery};
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
            DateTime::parse_from_rfc3339(v)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| {
                    Error::Validation(format!("{name} must be an RFC 3339 timestamp: {e}"))
                })
        })
        .transpose()
}

impl AuditParams {
    /// The filter, the cursor and the page size, or what is wrong with them.
    pub fn parse(&self) -> Result<(AuditFilter, Option<AuditCursor>, u32), Error> {
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
            cursor: None,
        }
        .to_request()?;
        let cursor = self.cursor.as_deref().map(decode_cursor).transpose()?;
        Ok((filter, cursor, page.limit))
    }
}

/// Opaque to clients; inside, the audit module's own keyset position.
fn encode_cursor(c: AuditCursor) -> String {
    URL_SAFE_NO_PAD.encode(c.encode())
}

fn decode_cursor(s: &str) -> Result<AuditCursor, Error> {
    URL_SAFE_NO_PAD
        .decode(s)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| AuditCursor::decode(&s).ok())
        .ok_or_else(|| Error::Validation("cursor is not one this service issued".into()))
}

/// Who acted, on the wire. The system has no id.
#[derive(Debug, Serialize)]
pub struct ActorDto {
    kind: &'static str,
    id: Option<Uuid>,
}

/// An entry on the wire, and on the operator's terminal.
#[derive(Debug, Serialize)]
pub struct AuditEntryDto {
    id: Uuid,
    occurred_at: DateTime<Utc>,
    actor: ActorDto,
    action: &'static str,
    entity_type: &'static str,
    entity_id: String,
    changes: serde_json::Value,
}

impl From<&AuditEntry> for AuditEntryDto {
    fn from(e: &AuditEntry) -> Self {
        AuditEntryDto {
            id: e.id,
            occurred_at: e.occurred_at,
            actor: ActorDto {
                kind: e.actor.kind(),
                id: e.actor.id(),
            },
            action: e.action.as_str(),
            entity_type: e.entity.kind.as_str(),
            entity_id: e.entity.id.clone(),
            changes: shortener_pg::changes_to_json(&e.changes),
        }
    }
}

#[derive(Debug, Serialize)]
struct AuditPage {
    items: Vec<AuditEntryDto>,
    next_cursor: Option<String>,
}

fn page_response(page: Page<AuditEntry, AuditCursor>) -> HttpResponse {
    HttpResponse::Ok().json(AuditPage {
        items: page.items.iter().map(AuditEntryDto::from).collect(),
        next_cursor: page.next.map(encode_cursor),
    })
}

async fn admin_log(
    state: web::Data<State>,
    _admin: AdminCaller,
    query: web::Query<AuditParams>,
) -> Result<HttpResponse, Error> {
    let (filter, after, limit) = query.parse()?;
    Ok(page_response(state.audit.page(filter, after, limit).await?))
}

async fn account_log(
    state: web::Data<State>,
    caller: AccountCaller,
    query: web::Query<AuditParams>,
) -> Result<HttpResponse, Error> {
    let (filter, after, limit) = query.parse()?;
    Ok(page_response(
        state
            .audit
            .account_page(caller.account_id, filter, after, limit)
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

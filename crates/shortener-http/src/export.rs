//! `GET /api/v1/links/export`: every live link of the account as CSV, streamed a page at a
//! time, so an account of any size is exported in bounded memory (a page of links and two
//! pages of CSV in flight at most).
//!
//! The columns are the contract's: `code, short_url, url, title, tags, created_at,
//! expires_at, max_visits, clicks` (`max_visits` empty for a link without a limit); `tags`
//! are joined by [`TAG_SEPARATOR`] (a tag never holds one), so a link's tags are one
//! cell. `shortener import` reads the same columns back.

use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::HttpResponse;
use actix_web::http::header;
use actix_web::web::{self, Bytes};
use shortener_app::{AppError, Chain, LinkFilter, PageRequest};
use shortener_domain::Link;
use tokio::sync::mpsc;

use crate::auth::AccountCaller;
use crate::openapi::Operations;
use crate::request_id::RequestId;
use crate::{Error, State};

/// The columns, in order.
pub const COLUMNS: [&str; 9] = [
    "code",
    "short_url",
    "url",
    "title",
    "tags",
    "created_at",
    "expires_at",
    "max_visits",
    "clicks",
];

/// Between the tags of a link in its `tags` cell.
pub const TAG_SEPARATOR: &str = ",";

/// Links read per query, and so per chunk of the body.
const PAGE: u32 = 500;
/// Chunks written ahead of the client: a slow reader holds the producer back.
const AHEAD: usize = 2;

/// The chunks of the body, as the producer task sends them.
struct Chunks(mpsc::Receiver<Result<Bytes, Error>>);

impl futures_core::Stream for Chunks {
    type Item = Result<Bytes, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx)
    }
}

/// One page of links as CSV rows (with the header first when `header`).
fn rows(state: &State, links: &[Link], header: bool) -> Result<Bytes, Error> {
    let mut out = csv::Writer::from_writer(Vec::with_capacity(links.len() * 128));
    let fail = |e: csv::Error| Error::from(AppError::internal_from("writing CSV", e));
    if header {
        out.write_record(COLUMNS).map_err(fail)?;
    }
    for link in links {
        let created = link
            .created_at
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let expires = link
            .expires_at
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
            .unwrap_or_default();
        let tags = link.tags.to_strings().join(TAG_SEPARATOR);
        let max_visits = link
            .visit_limit
            .map(|l| l.max.get().to_string())
            .unwrap_or_default();
        out.write_record([
            link.code.as_str(),
            &state.short_url(link.code.as_str()),
            link.target.as_str(),
            link.title.as_ref().map_or("", |t| t.as_str()),
            &tags,
            &created,
            &expires,
            &max_visits,
            &link.clicks.to_string(),
        ])
        .map_err(fail)?;
    }
    let bytes = out
        .into_inner()
        .map_err(|e| AppError::internal_from("writing CSV", e.into_error()))?;
    Ok(Bytes::from(bytes))
}

/// Every live link of the account, as CSV.
#[utoipa::path(
    get,
    path = "/api/v1/links/export",
    operation_id = "export_links",
    tag = "links",
    responses((status = 200, description = "`code, short_url, url, title, tags, created_at, expires_at, max_visits, clicks`, one row a link, streamed; `tags` holds the link's tags joined by commas (`launch,q4`), empty when none; `max_visits` is empty for a link without a limit.",
        content_type = "text/csv", body = String)),
)]
/// The export. The first page is read before answering, so a database that is away is a
/// 503 like anywhere else; a failure after that can only cut the body short (the status
/// is sent), and is logged.
async fn export(state: web::Data<State>, caller: AccountCaller) -> Result<HttpResponse, Error> {
    let account = caller.account_id;
    let page = |after| PageRequest { after, limit: PAGE };
    let all = LinkFilter::default();
    let first = state.links.list(account, &all, page(None)).await?;
    let head = rows(&state, &first.items, true)?;
    let (tx, rx) = mpsc::channel(AHEAD);
    let mut next = first.next;
    let producer = state.clone();
    // The producer's lines (a page that fails) are this request's.
    actix_web::rt::spawn(RequestId::carried(async move {
        if tx.send(Ok(head)).await.is_err() {
            return;
        }
        while let Some(after) = next {
            let chunk = match producer.links.list(account, &all, page(Some(after))).await {
                Ok(p) => {
                    next = p.next;
                    rows(&producer, &p.items, false)
                }
                Err(e) => {
                    next = None;
                    tracing::warn!(error = %Chain(&e), %account, "export cut short");
                    Err(Error::from(e))
                }
            };
            // The client went away: stop reading.
            if tx.send(chunk).await.is_err() {
                return;
            }
        }
    }));
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            "attachment; filename=\"links.csv\"",
        ))
        .streaming(Chunks(rx)))
}

/// Registered before `links::api_routes`: `/links/export` must not be taken for a code
/// (`export` is a reserved word, so no link has it).
pub fn api_routes(ops: &mut Operations) {
    ops.add(__path_export, export, &[]);
}

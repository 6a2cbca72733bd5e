//! `POST /api/v1/links/bulk`: up to [`shortener_app::BULK_LIMIT`] links in one request and one
//! transaction, each item answered on its own (see `LinkService::create_many`).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use shortener_app::{AppError, NewLink};
use shortener_domain::Link;
use utoipa::ToSchema;

use crate::auth::AccountCaller;
use crate::extract::from_object;
use crate::links::{CreateBody, LinkDto};
use crate::openapi::Operations;
use crate::problem::Problem;
use crate::problem::Slug;
use crate::{Error, State, idempotency};

/// The bulk route's body limit: room for [`shortener_app::BULK_LIMIT`] items of long URLs. Every other
/// route keeps [`extract::BODY_LIMIT`].
pub const BULK_BODY_LIMIT: usize = 1024 * 1024;

/// Links to create together.
// No `Debug`: its items may hold passwords.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NewLinks)]
struct BulkBody {
    /// 1 to 1000 create bodies, as `POST /api/v1/links` takes them.
    #[schema(min_items = 1, max_items = 1000)]
    links: Vec<CreateBody>,
}

/// One item's result, at its index in the request: the link made, or the problem the
/// single create would have answered.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = BulkItem)]
struct ItemDto {
    /// The item's position in the request, from 0.
    index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    link: Option<LinkDto>,
    #[serde(skip_serializing_if = "Option::is_none")]
    problem: Option<Problem>,
}

/// Every item's result, in request order.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = BulkResult)]
struct BulkDto {
    items: Vec<ItemDto>,
}

impl BulkDto {
    fn new(public_base: &str, items: &[Result<Link, AppError>]) -> BulkDto {
        let items = items
            .iter()
            .enumerate()
            .map(|(index, item)| match item {
                Ok(link) => ItemDto {
                    index,
                    link: Some(LinkDto::at(public_base, link.clone())),
                    problem: None,
                },
                Err(e) => ItemDto {
                    index,
                    link: None,
                    // The answer's `X-Request-Id` names the request; a copy in each of a
                    // thousand items would say nothing more.
                    problem: Some(Problem {
                        request_id: None,
                        ..Problem::of(e)
                    }),
                },
            })
            .collect();
        BulkDto { items }
    }
}

/// Creates up to 1000 links in one transaction.
#[utoipa::path(
    post,
    path = "/api/v1/links/bulk",
    operation_id = "create_links",
    tag = "links",
    params(idempotency::Header),
    request_body = BulkBody,
    responses((status = 200, description = "Each item's link or problem, in request order.",
        body = BulkDto)),
)]
async fn create_many(
    state: web::Data<State>,
    caller: AccountCaller,
    req: HttpRequest,
    body: web::Json<Value>,
) -> Result<HttpResponse, Error> {
    let value = body.into_inner();
    let key = idempotency::key(&req, &value)?;
    // A malformed item (a wrong type, an unknown field, an instant outside 1970..=9999)
    // makes the whole request malformed; an item that breaks a rule is refused alone.
    let body: BulkBody = from_object(value)?;
    let links = body
        .links
        .into_iter()
        .map(CreateBody::into_new_link)
        .collect::<Result<Vec<NewLink>, Error>>()?;
    let base = state.public_base.clone();
    match key {
        None => {
            let items = state.links.create_many(caller.account_id, links).await?;
            Ok(HttpResponse::Ok().json(BulkDto::new(&base, &items)))
        }
        Some(key) => {
            let answer = state
                .links
                .create_many_once(
                    caller.account_id,
                    links,
                    key,
                    move |outcome| match outcome {
                        Ok(items) => {
                            idempotency::record(StatusCode::OK, &BulkDto::new(&base, items))
                        }
                        Err(e) => idempotency::record_error(e),
                    },
                )
                .await?;
            Ok(idempotency::respond(answer))
        }
    }
}

/// The bulk create's route, with its own body limit. Registered before the single links'
/// routes, and for POST only, so `/links/{code}` still answers GET, PATCH and DELETE of a
/// link whose code is `bulk`.
pub fn api_routes(ops: &mut Operations) {
    use Slug::*;
    ops.add(
        __path_create_many,
        create_many,
        &[
            Validation,
            PayloadTooLarge,
            QuotaExceeded,
            SubscriptionInactive,
            IdempotencyConflict,
            IdempotencyInProgress,
        ],
    )
    .with_body_limit(BULK_BODY_LIMIT);
}

#[cfg(test)]
mod tests {
    use shortener_app::BULK_LIMIT;

    use super::*;

    #[test]
    fn a_thousand_long_items_fit_the_limit() {
        let item = format!(
            r#"{{"url":"https://example.com/{}","code":null}},"#,
            "p".repeat(900)
        );
        assert!(item.len() * BULK_LIMIT < BULK_BODY_LIMIT);
    }
}

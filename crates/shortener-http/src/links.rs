//! `/api/v1/links`: an account's links. (The public redirect is `redirect.rs`'s.)

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use shortener_app::{LinkPatch, LinkStats, NewLink};
use shortener_domain::Link;

use crate::auth::AccountCaller;
use crate::extract::{Body, Query, from_object, instant};
use crate::page::{PageDto, PageQuery};
use crate::{Error, State, idempotency};

/// A link on the wire.
#[derive(Debug, Serialize)]
pub struct LinkDto {
    code: String,
    short_url: String,
    url: String,
    created_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
    clicks: i64,
}

impl LinkDto {
    fn new(state: &State, link: Link) -> LinkDto {
        LinkDto::at(&state.public_base, link)
    }

    /// The link as served from `public_base` (the service's public URL, no trailing slash).
    pub(crate) fn at(public_base: &str, link: Link) -> LinkDto {
        LinkDto {
            short_url: format!("{public_base}/{}", link.code),
            code: link.code.to_string(),
            url: link.target.to_string(),
            created_at: link.created_at,
            expires_at: link.expires_at,
            clicks: link.clicks,
        }
    }
}

/// A create request on the wire (also each item of a bulk create).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateBody {
    url: String,
    code: Option<String>,
    expires_at: Option<DateTime<Utc>>,
}

impl CreateBody {
    /// The use case's request; an instant outside the years the API takes is malformed.
    pub(crate) fn into_new_link(self) -> Result<NewLink, Error> {
        Ok(NewLink {
            url: self.url,
            code: self.code,
            expires_at: self
                .expires_at
                .map(|at| instant("expires_at", at))
                .transpose()?,
        })
    }
}

/// Distinguishes a field that is absent (`None`) from one that is `null` (`Some(None)`).
fn present<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchBody {
    #[serde(default, deserialize_with = "present")]
    url: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    expires_at: Option<Option<DateTime<Utc>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StatsQuery {
    days: Option<u32>,
}

#[derive(Debug, Serialize)]
struct DailyDto {
    day: NaiveDate,
    clicks: i64,
}

#[derive(Debug, Serialize)]
struct StatsDto {
    code: String,
    clicks: i64,
    daily: Vec<DailyDto>,
}

impl From<LinkStats> for StatsDto {
    fn from(s: LinkStats) -> Self {
        StatsDto {
            code: s.code.to_string(),
            clicks: s.clicks,
            daily: s
                .daily
                .into_iter()
                .map(|d| DailyDto {
                    day: d.day,
                    clicks: d.clicks,
                })
                .collect(),
        }
    }
}

async fn create(
    state: web::Data<State>,
    caller: AccountCaller,
    req: HttpRequest,
    body: web::Json<Value>,
) -> Result<HttpResponse, Error> {
    let value = body.into_inner();
    let key = idempotency::key(&req, &value)?;
    let new = from_object::<CreateBody>(value)?.into_new_link()?;
    if let Some(key) = key {
        let base = state.public_base.clone();
        let answer = state
            .links
            .create_once(caller.account_id, new, key, move |outcome| match outcome {
                Ok(link) => {
                    idempotency::record(StatusCode::CREATED, &LinkDto::at(&base, link.clone()))
                }
                Err(e) => idempotency::record_error(e),
            })
            .await?;
        return Ok(idempotency::respond(answer));
    }
    let link = state.links.create(caller.account_id, new).await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/v1/links/{}", link.code)))
        .json(LinkDto::new(&state, link)))
}

async fn list(
    state: web::Data<State>,
    caller: AccountCaller,
    query: Query<PageQuery>,
) -> Result<HttpResponse, Error> {
    let page = state
        .links
        .list(caller.account_id, query.to_request()?)
        .await?;
    Ok(HttpResponse::Ok().json(PageDto::new(page, |l| LinkDto::new(&state, l))))
}

async fn get(
    state: web::Data<State>,
    caller: AccountCaller,
    code: web::Path<String>,
) -> Result<HttpResponse, Error> {
    let link = state.links.get(caller.account_id, &code).await?;
    Ok(HttpResponse::Ok().json(LinkDto::new(&state, link)))
}

async fn update(
    state: web::Data<State>,
    caller: AccountCaller,
    code: web::Path<String>,
    body: Body<PatchBody>,
) -> Result<HttpResponse, Error> {
    let body = body.into_inner();
    let url = match body.url {
        Some(None) => return Err(Error::Validation("url cannot be null".into())),
        Some(Some(url)) => Some(url),
        None => None,
    };
    let patch = LinkPatch {
        url,
        expires_at: body
            .expires_at
            .map(|at| at.map(|at| instant("expires_at", at)).transpose())
            .transpose()?,
    };
    let link = state.links.update(caller.account_id, &code, patch).await?;
    Ok(HttpResponse::Ok().json(LinkDto::new(&state, link)))
}

async fn delete(
    state: web::Data<State>,
    caller: AccountCaller,
    code: web::Path<String>,
) -> Result<HttpResponse, Error> {
    state.links.delete(caller.account_id, &code).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn stats(
    state: web::Data<State>,
    caller: AccountCaller,
    code: web::Path<String>,
    query: Query<StatsQuery>,
) -> Result<HttpResponse, Error> {
    let stats = state
        .links
        .stats(caller.account_id, &code, query.days.unwrap_or(30))
        .await?;
    Ok(HttpResponse::Ok().json(StatsDto::from(stats)))
}

/// The account API's link routes.
pub fn api_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/links")
            .route(web::post().to(create))
            .route(web::get().to(list)),
    )
    .service(
        web::resource("/links/{code}")
            .route(web::get().to(get))
            .route(web::patch().to(update))
            .route(web::delete().to(delete)),
    )
    .service(web::resource("/links/{code}/stats").route(web::get().to(stats)));
}

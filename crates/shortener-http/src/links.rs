//! `/api/v1/links` and the public redirect.

use actix_web::http::header::HeaderValue;
use actix_web::http::{Method, StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use shortener_app::{LinkPatch, LinkStats, NewLink, Redirects};
use shortener_domain::Link;

use crate::extract::{AccountCaller, PageQuery, encode_cursor};
use crate::{Error, State};

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
        LinkDto {
            short_url: state.short_url(link.code.as_str()),
            code: link.code.to_string(),
            url: link.target.to_string(),
            created_at: link.created_at,
            expires_at: link.expires_at,
            clicks: link.clicks,
        }
    }
}

#[derive(Debug, Serialize)]
struct PageDto<T> {
    items: Vec<T>,
    next_cursor: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    url: String,
    code: Option<String>,
    expires_at: Option<DateTime<Utc>>,
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
    body: web::Json<CreateBody>,
) -> Result<HttpResponse, Error> {
    let body = body.into_inner();
    let link = state
        .links
        .create(
            caller.account_id,
            NewLink {
                url: body.url,
                code: body.code,
                expires_at: body.expires_at,
            },
        )
        .await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/v1/links/{}", link.code)))
        .json(LinkDto::new(&state, link)))
}

async fn list(
    state: web::Data<State>,
    caller: AccountCaller,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, Error> {
    let page = state
        .links
        .list(caller.account_id, query.to_request()?)
        .await?;
    Ok(HttpResponse::Ok().json(PageDto {
        items: page
            .items
            .into_iter()
            .map(|l| LinkDto::new(&state, l))
            .collect(),
        next_cursor: page.next.map(encode_cursor),
    }))
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
    body: web::Json<PatchBody>,
) -> Result<HttpResponse, Error> {
    let body = body.into_inner();
    let url = match body.url {
        Some(None) => return Err(Error::Validation("url cannot be null".into())),
        Some(Some(url)) => Some(url),
        None => None,
    };
    let patch = LinkPatch {
        url,
        expires_at: body.expires_at,
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
    query: web::Query<StatsQuery>,
) -> Result<HttpResponse, Error> {
    let stats = state
        .links
        .stats(caller.account_id, &code, query.days.unwrap_or(30))
        .await?;
    Ok(HttpResponse::Ok().json(StatsDto::from(stats)))
}

/// What the redirect route needs, one per HTTP worker: its own [`Redirects`] (whose
/// cache misses are looked up on that worker's runtime) and the configured status.
pub struct Redirector {
    /// This worker's redirects.
    pub redirects: Redirects,
    /// Status used for redirects.
    pub status: StatusCode,
}

/// Private and immediately stale: edits, deletes and expiry take effect at once, and
/// every follow reaches us to be counted.
const NO_STORE_CACHE: HeaderValue = HeaderValue::from_static("private, max-age=0");

fn redirect_to(status: StatusCode, target: &str) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::LOCATION, target))
        .insert_header((header::CACHE_CONTROL, NO_STORE_CACHE))
        .finish()
}

/// Everything no route claims: `GET /{code}` redirects and counts the click, `HEAD /{code}`
/// answers the same without counting (link checkers and previews are not clicks), other
/// methods on one segment are 405, anything else 404. Being the default service, the
/// redirect costs no pattern matching: every other route is tried by its static prefix
/// first, and this only splits the path. Nor does it get a request span (see
/// `startup`): a failure is still logged, by [`Error`]'s response.
pub async fn redirect_or_not_found(
    redirector: web::Data<Redirector>,
    req: HttpRequest,
) -> Result<HttpResponse, Error> {
    let code = match req.path().strip_prefix('/') {
        Some(code) if !code.is_empty() && !code.contains('/') => code,
        _ => return Err(Error::RouteNotFound),
    };
    let redirects = &redirector.redirects;
    let resolved = match *req.method() {
        Method::GET => redirects.follow(code).await?,
        Method::HEAD => redirects.peek(code).await?,
        _ => return Err(Error::MethodNotAllowed),
    };
    Ok(redirect_to(redirector.status, resolved.target.as_str()))
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

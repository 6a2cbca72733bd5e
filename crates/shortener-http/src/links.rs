//! `/api/v1/links`: an account's links. (The public redirect is `redirect.rs`'s.)

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use shortener_app::{
    AccountStats, Breakdown, DailyClicks, LinkFilter, LinkPatch, LinkStats, NewLink,
};
use shortener_domain::Link;
use shortener_domain::visit::Dimension;

use utoipa::{IntoParams, ToSchema};

use crate::auth::AccountCaller;
use crate::extract::{Body, Query, from_object, instant};
use crate::openapi::Operations;
use crate::page::{PageDto, PageQuery};
use crate::problem::Slug;
use crate::{Error, State, idempotency};

/// A link on the wire.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Link, example = json!({"code": "aZ3kQ9x", "short_url": "https://sho.rt/aZ3kQ9x",
    "url": "https://example.com/a?b=c", "created_at": "2026-11-22T10:00:00Z",
    "expires_at": null, "clicks": 0, "tags": ["launch", "q4"], "title": "Launch post",
    "max_visits": 100, "visits_left": 58, "password_protected": false}))]
pub struct LinkDto {
    /// The short code: 7 generated base62 characters, or the custom code.
    code: String,
    /// The public URL that redirects to `url`.
    #[schema(format = "uri")]
    short_url: String,
    /// The target, exactly as the redirect sends it.
    #[schema(format = "uri")]
    url: String,
    created_at: DateTime<Utc>,
    /// From this instant the redirect answers 410; `null`: never.
    expires_at: Option<DateTime<Utc>>,
    /// GET redirects answered so far (counted in batches: up to a second late).
    clicks: i64,
    /// The owner's tags, lower-case, in the order given; `[]` when none.
    tags: Vec<String>,
    /// The owner's label for the link; `null` when none.
    title: Option<String>,
    /// The most GET redirects the link answers; `null`: no limit.
    #[schema(minimum = 1, maximum = 1_000_000_000)]
    max_visits: Option<u32>,
    /// GET redirects it may still answer (exact, unlike `clicks`); after the last, the
    /// redirect answers 410 `link-expired`. `null` when there is no limit.
    visits_left: Option<u64>,
    /// Whether the link asks visitors for a password before it redirects (the password
    /// itself is never shown).
    password_protected: bool,
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
            tags: link.tags.to_strings(),
            title: link.title.map(|t| t.to_string()),
            max_visits: link.visit_limit.map(|l| l.max.get()),
            visits_left: link.visit_limit.map(|l| l.left()),
            password_protected: link.password.is_some(),
        }
    }
}

/// A new link (also each item of a bulk create).
// No `Debug`: it may hold a password.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NewLink, example = json!({"url": "https://example.com/a?b=c", "code": "launch",
    "expires_at": "2027-01-01T00:00:00Z", "tags": ["launch", "q4"], "title": "Launch post"}))]
pub(crate) struct CreateBody {
    /// Absolute `http` or `https` URL with a host, at most 2048 bytes, no user-info, not
    /// this service, not a private address (unless the operator allows it).
    #[schema(
        format = "uri",
        max_length = 2048,
        example = "https://example.com/a?b=c"
    )]
    url: String,
    /// A custom code (plans with custom codes only); generated when absent.
    #[schema(min_length = 3, max_length = 64, pattern = "^[A-Za-z0-9_-]{3,64}$")]
    code: Option<String>,
    /// In the future, in the years 1970 to 9999.
    expires_at: Option<DateTime<Utc>>,
    /// Up to 10 tags of 1 to 32 characters of `[a-z0-9_-]`. Each is lower-cased first
    /// (ASCII letters; any other letter is refused), then validated; a tag given twice
    /// (also in another letter case) is kept once, in the place it was first given (the
    /// 10 count what is given, repeats included).
    /// Absent or `null`: no tags.
    #[schema(max_items = 10, example = json!(["launch", "q4"]))]
    tags: Option<Vec<String>>,
    /// The owner's own label: 1 to 200 characters (Unicode scalar values), no control
    /// characters; kept exactly as given. Absent or `null`: none.
    #[schema(min_length = 1, max_length = 200)]
    title: Option<String>,
    /// The most GET redirects the link answers (1 to 10^9; `1`: a one-time link), exact
    /// across instances; then it answers 410 `link-expired`. Absent or `null`: no limit.
    #[schema(minimum = 1, maximum = 1_000_000_000)]
    max_visits: Option<i64>,
    /// A password visitors must give before they are redirected: 8 to 128 characters
    /// (Unicode scalar values, not bytes), kept exactly as given. Write-only: only its
    /// Argon2id hash is stored, and a Link shows only `password_protected`. Absent or
    /// `null`: none.
    #[schema(min_length = 8, max_length = 128, write_only, format = Password)]
    password: Option<String>,
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
            tags: self.tags.unwrap_or_default(),
            title: self.title,
            max_visits: self.max_visits,
            password: self.password,
        })
    }
}

/// Distinguishes a field that is absent (`None`) from one that is `null` (`Some(None)`).
fn present<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// A change to a link: only the fields present change.
// No `Debug`: it may hold a password.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = LinkPatch, example = json!({"url": "https://example.com/b", "expires_at": null,
    "tags": ["q1"], "title": null}))]
struct PatchBody {
    /// A new target (same rules as at creation); cannot be `null`.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = String, format = "uri", max_length = 2048)]
    url: Option<Option<String>>,
    /// A new expiry in the future, or `null` for none.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<DateTime<Utc>>)]
    expires_at: Option<Option<DateTime<Utc>>>,
    /// The link's tags, all of them: they replace the old ones (same rules as at
    /// creation); `[]` or `null` removes every tag.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Vec<String>>, max_items = 10)]
    tags: Option<Option<Vec<String>>>,
    /// A new title (same rules as at creation), or `null` for none.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 200)]
    title: Option<Option<String>>,
    /// A new visit limit (1 to 10^9), or `null` for none. Raising or lowering a limit
    /// keeps the visits used; a limit put on a link without one counts the clicks it
    /// already has.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 1_000_000_000)]
    max_visits: Option<Option<i64>>,
    /// A new password (same rules as at creation; it replaces any other), or `null` to
    /// remove the password. Write-only.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, min_length = 8, max_length = 128, write_only, format = Password)]
    password: Option<Option<String>>,
}

/// `?limit=&cursor=&tag=&q=`: a page of the account's links, filtered.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Page size.
    #[param(minimum = 1, maximum = 500, default = 50)]
    limit: Option<u32>,
    /// The previous page's `next_cursor`, as it was (opaque). Send the same `tag` and `q`
    /// with it: the cursor holds only a position in the list.
    #[param(min_length = 1, pattern = "^[A-Za-z0-9_-]+$")]
    cursor: Option<String>,
    /// Only links carrying this tag (lower-cased first, then validated as tags are:
    /// 1 to 32 characters of `[a-z0-9_-]`).
    #[param(min_length = 1, max_length = 32, pattern = "^[A-Za-z0-9_-]{1,32}$")]
    tag: Option<String>,
    /// Only links whose code, URL or title contains this text, ignoring letter case (a
    /// plain substring: `%`, `_` and `\` match themselves). Empty: no filter. At most
    /// 2048 characters, no control characters. With `tag`, both must match.
    #[param(max_length = 2048)]
    q: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct StatsQuery {
    /// Days of history, ending today (UTC).
    #[param(minimum = 1, maximum = 366, default = 30)]
    days: Option<u32>,
}

/// One UTC day.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = DailyClicks)]
struct DailyDto {
    day: NaiveDate,
    clicks: i64,
    /// Those of them from clients that identify as bots.
    bots: i64,
}

/// One value of a breakdown and its clicks in the period; `(other)` sums every value
/// after the top 10.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = BreakdownValue)]
struct ValueDto {
    value: String,
    clicks: i64,
}

/// A link's clicks: the total, bots in the period, one entry per UTC day of the period
/// (oldest first, zeros included), and the period's breakdowns: the top 10 values of
/// each, then `(other)`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = LinkStats, example = json!({"code": "aZ3kQ9x", "clicks": 1234, "bots": 56,
    "daily": [{"day": "2026-11-21", "clicks": 30, "bots": 1}, {"day": "2026-11-22", "clicks": 40, "bots": 2}],
    "referrers": [{"value": "news.ycombinator.com", "clicks": 700}, {"value": "(direct)", "clicks": 300}],
    "countries": [{"value": "DE", "clicks": 500}, {"value": "(unknown)", "clicks": 10}],
    "browsers": [{"value": "Firefox", "clicks": 600}], "operating_systems": [{"value": "Linux", "clicks": 600}],
    "devices": [{"value": "desktop", "clicks": 544}, {"value": "bot", "clicks": 56}]}))]
struct StatsDto {
    code: String,
    clicks: i64,
    bots: i64,
    daily: Vec<DailyDto>,
    #[serde(flatten)]
    breakdowns: BreakdownsDto,
}

/// The period's breakdowns: each lists its top 10 values, then `(other)`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Breakdowns)]
struct BreakdownsDto {
    referrers: Vec<ValueDto>,
    countries: Vec<ValueDto>,
    browsers: Vec<ValueDto>,
    operating_systems: Vec<ValueDto>,
    devices: Vec<ValueDto>,
}

impl BreakdownsDto {
    fn of(breakdowns: &[Breakdown]) -> BreakdownsDto {
        let of = |d| values_of(breakdowns, d);
        BreakdownsDto {
            referrers: of(Dimension::Referrer),
            countries: of(Dimension::Country),
            browsers: of(Dimension::Browser),
            operating_systems: of(Dimension::Os),
            devices: of(Dimension::Device),
        }
    }
}

/// The days of a period, as listed.
fn days_of(daily: Vec<DailyClicks>) -> Vec<DailyDto> {
    daily
        .into_iter()
        .map(|d| DailyDto {
            day: d.day,
            clicks: d.clicks,
            bots: d.bots,
        })
        .collect()
}

/// A breakdown's entries as listed: its top values, then `(other)` when there is more.
fn values_of(breakdowns: &[Breakdown], dimension: Dimension) -> Vec<ValueDto> {
    let Some(b) = breakdowns.iter().find(|b| b.dimension == dimension) else {
        return Vec::new();
    };
    let mut out: Vec<ValueDto> = b
        .top
        .iter()
        .map(|(value, clicks)| ValueDto {
            value: value.clone(),
            clicks: *clicks,
        })
        .collect();
    if b.other > 0 {
        out.push(ValueDto {
            value: "(other)".to_owned(),
            clicks: b.other,
        });
    }
    out
}

impl From<LinkStats> for StatsDto {
    fn from(s: LinkStats) -> Self {
        StatsDto {
            code: s.code.to_string(),
            clicks: s.clicks,
            bots: s.bots,
            breakdowns: BreakdownsDto::of(&s.breakdowns),
            daily: days_of(s.daily),
        }
    }
}

/// A link among the account's most clicked in the period.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = TopLink)]
struct TopLinkDto {
    code: String,
    clicks: i64,
}

/// The account's clicks: [`StatsDto`]'s shape over all its links, and its top 10 live
/// links by clicks in the period.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = AccountStats, example = json!({"clicks": 5400, "bots": 210,
    "daily": [{"day": "2026-11-22", "clicks": 180, "bots": 7}],
    "referrers": [{"value": "(direct)", "clicks": 3000}], "countries": [{"value": "(unknown)", "clicks": 5400}],
    "browsers": [{"value": "Chrome", "clicks": 2500}], "operating_systems": [{"value": "Android", "clicks": 2000}],
    "devices": [{"value": "mobile", "clicks": 3100}],
    "top_links": [{"code": "aZ3kQ9x", "clicks": 1234}]}))]
struct AccountStatsDto {
    clicks: i64,
    bots: i64,
    daily: Vec<DailyDto>,
    #[serde(flatten)]
    breakdowns: BreakdownsDto,
    top_links: Vec<TopLinkDto>,
}

impl From<AccountStats> for AccountStatsDto {
    fn from(s: AccountStats) -> Self {
        AccountStatsDto {
            clicks: s.clicks,
            bots: s.bots,
            breakdowns: BreakdownsDto::of(&s.breakdowns),
            daily: days_of(s.daily),
            top_links: s
                .top_links
                .into_iter()
                .map(|(code, clicks)| TopLinkDto { code, clicks })
                .collect(),
        }
    }
}

/// Creates a link.
#[utoipa::path(
    post,
    path = "/api/v1/links",
    operation_id = "create_link",
    tag = "links",
    params(idempotency::Header),
    request_body = CreateBody,
    responses((status = 201, description = "Created.", body = LinkDto,
        headers(("Location" = String, description = "`/api/v1/links/{code}`")))),
)]
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

/// The account's links, newest first; with `tag` and/or `q`, only those that match.
#[utoipa::path(
    get,
    path = "/api/v1/links",
    operation_id = "list_links",
    tag = "links",
    params(ListQuery),
    responses((status = 200, description = "A page of links.", body = PageDto<LinkDto>)),
)]
async fn list(
    state: web::Data<State>,
    caller: AccountCaller,
    query: Query<ListQuery>,
) -> Result<HttpResponse, Error> {
    let filter = LinkFilter::parse(query.tag.as_deref(), query.q.as_deref())?;
    let page = PageQuery {
        limit: query.limit,
        cursor: query.cursor.clone(),
    }
    .to_request()?;
    let page = state.links.list(caller.account_id, &filter, page).await?;
    Ok(HttpResponse::Ok().json(PageDto::new(page, |l| LinkDto::new(&state, l))))
}

/// One link, with its current clicks.
#[utoipa::path(
    get,
    path = "/api/v1/links/{code}",
    operation_id = "get_link",
    tag = "links",
    params(("code" = String, Path, description = "The link's code.")),
    responses((status = 200, description = "The link.", body = LinkDto)),
)]
async fn get(
    state: web::Data<State>,
    caller: AccountCaller,
    code: web::Path<String>,
) -> Result<HttpResponse, Error> {
    let link = state.links.get(caller.account_id, &code).await?;
    Ok(HttpResponse::Ok().json(LinkDto::new(&state, link)))
}

/// Changes a link's target, expiry, tags, title or password.
#[utoipa::path(
    patch,
    path = "/api/v1/links/{code}",
    operation_id = "update_link",
    tag = "links",
    params(("code" = String, Path, description = "The link's code.")),
    request_body = PatchBody,
    responses((status = 200, description = "The changed link.", body = LinkDto)),
)]
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
        tags: body.tags.map(Option::unwrap_or_default),
        title: body.title,
        max_visits: body.max_visits,
        password: body.password,
    };
    let link = state.links.update(caller.account_id, &code, patch).await?;
    Ok(HttpResponse::Ok().json(LinkDto::new(&state, link)))
}

/// Deletes a link: from then on its code is 404 on every instance, and never reused.
#[utoipa::path(
    delete,
    path = "/api/v1/links/{code}",
    operation_id = "delete_link",
    tag = "links",
    params(("code" = String, Path, description = "The link's code.")),
    responses((status = 204, description = "Deleted.")),
)]
async fn delete(
    state: web::Data<State>,
    caller: AccountCaller,
    code: web::Path<String>,
) -> Result<HttpResponse, Error> {
    state.links.delete(caller.account_id, &code).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A link's clicks per day.
#[utoipa::path(
    get,
    path = "/api/v1/links/{code}/stats",
    operation_id = "link_stats",
    tag = "links",
    params(("code" = String, Path, description = "The link's code."), StatsQuery),
    responses((status = 200, description = "The link's statistics.", body = StatsDto)),
)]
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

/// The account's clicks over all its links.
#[utoipa::path(
    get,
    path = "/api/v1/stats",
    operation_id = "account_stats",
    tag = "links",
    params(StatsQuery),
    responses((status = 200, description = "The account's statistics.", body = AccountStatsDto)),
)]
async fn account_stats(
    state: web::Data<State>,
    caller: AccountCaller,
    query: Query<StatsQuery>,
) -> Result<HttpResponse, Error> {
    let stats = state
        .links
        .account_stats(caller.account_id, query.days.unwrap_or(30))
        .await?;
    Ok(HttpResponse::Ok().json(AccountStatsDto::from(stats)))
}

/// The account API's link routes, with the problems each handler can answer besides
/// those every `/api` operation can (see [`Operations::add`]).
pub fn api_routes(ops: &mut Operations) {
    use Slug::*;
    ops.add(
        __path_create,
        create,
        &[
            Validation,
            PayloadTooLarge,
            InvalidUrl,
            InvalidCode,
            CodeTaken,
            QuotaExceeded,
            SubscriptionInactive,
            IdempotencyConflict,
            IdempotencyInProgress,
        ],
    )
    .add(__path_list, list, &[Validation])
    .add(__path_get, get, &[NotFound])
    .add(
        __path_update,
        update,
        &[Validation, PayloadTooLarge, InvalidUrl, NotFound],
    )
    .add(__path_delete, delete, &[NotFound])
    .add(__path_stats, stats, &[Validation, NotFound])
    .add(__path_account_stats, account_stats, &[Validation]);
}

//! The public redirect, `GET /{code}` and `HEAD /{code}`: the edge of the app's redirect
//! path. It turns the request into a code and a [`Visitor`], asks this worker's
//! [`Redirects`], and turns what they found into the answer. It gets no request span and
//! no authentication (see `startup.rs`): every cached redirect pays for nothing it does not
//! use.

use std::net::IpAddr;
use std::sync::Arc;

use actix_web::http::header::HeaderValue;
use actix_web::http::{Method, StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use shortener_app::{AppError, Followed, Redirects, Visitor};

use crate::Error;
use crate::rate_limit::Limits;

/// What the redirect route needs, one per HTTP worker: its own [`Redirects`] (whose
/// cache misses are looked up on that worker's runtime) and the configured status.
pub struct Redirector {
    /// This worker's redirects.
    pub redirects: Redirects,
    /// Status used for redirects.
    pub status: StatusCode,
    /// The rate-limit policies (`unknown-codes` applies here).
    pub limits: Arc<Limits>,
}

/// The visitor as the request shows it, read only when the redirect path asks (Shlink's
/// `Visitor::fromRequest`, made lazy so that nothing is paid while nothing reads it).
pub struct RequestVisitor<'r> {
    req: &'r HttpRequest,
    limits: &'r Limits,
}

impl RequestVisitor<'_> {
    fn header(&self, name: header::HeaderName) -> Option<&[u8]> {
        self.req.headers().get(name).map(HeaderValue::as_bytes)
    }
}

impl Visitor for RequestVisitor<'_> {
    fn address(&self) -> Option<IpAddr> {
        self.limits.client_ip(self.req)
    }
    fn may_look_up(&self) -> Result<(), AppError> {
        self.limits.refuse_lookup(self.address())
    }
    fn user_agent(&self) -> Option<&[u8]> {
        self.header(header::USER_AGENT)
    }
    fn referrer(&self) -> Option<&[u8]> {
        self.header(header::REFERER)
    }
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
/// first, and this only splits the path. A failure is still logged, by [`Error`]'s
/// response.
#[utoipa::path(
    method(get, head),
    path = "/{code}",
    operation_id = "follow",
    tag = "redirect",
    summary = "Follows a short link.",
    description = "Redirects to the link's target (the status is the operator's choice: 302 by default; 301, 307 or 308). GET counts the click; HEAD answers the same without counting. Codes are case-sensitive. An address that asks for too many unknown codes gets 429 for codes that are not cached.",
    params(("code" = String, Path, description = "The short code.")),
    responses(
        (status = 301, description = "Redirect (when configured).", headers(("Location" = String), ("Cache-Control" = String))),
        (status = 302, description = "Redirect (the default).", headers(("Location" = String, description = "The target."), ("Cache-Control" = String, description = "`private, max-age=0`: every follow reaches the service."))),
        (status = 307, description = "Redirect (when configured).", headers(("Location" = String), ("Cache-Control" = String))),
        (status = 308, description = "Redirect (when configured).", headers(("Location" = String), ("Cache-Control" = String))),
    ),
)]
pub async fn redirect_or_not_found(
    redirector: web::Data<Redirector>,
    req: HttpRequest,
) -> Result<HttpResponse, Error> {
    let code = match req.path().strip_prefix('/') {
        Some(code) if !code.is_empty() && !code.contains('/') => code,
        _ => return Err(Error::RouteNotFound),
    };
    let redirects = &redirector.redirects;
    let visitor = RequestVisitor {
        req: &req,
        limits: &redirector.limits,
    };
    let followed = match *req.method() {
        Method::GET => redirects.follow(code, &visitor).await?,
        Method::HEAD => redirects.peek(code, &visitor).await?,
        _ => return Err(Error::MethodNotAllowed("GET, HEAD".into())),
    };
    match followed {
        Followed::Found(link) => Ok(redirect_to(redirector.status, link.target.as_str())),
        // Counted toward `unknown-codes`; past its limit, answered 429.
        Followed::NotFound => Err(redirector.limits.unknown_code(visitor.address()).into()),
        Followed::Expired => Err(AppError::LinkExpired.into()),
        Followed::Spent => Err(AppError::VisitLimitReached.into()),
    }
}

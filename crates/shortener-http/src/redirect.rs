//! The public redirect, `GET /{code}` and `HEAD /{code}`: the edge of the app's redirect
//! path. It turns the request into a code and a [`Visitor`], asks this worker's
//! [`Redirects`], and turns what they found into the answer. It gets no request span and
//! no authentication (see `startup.rs`): every cached redirect pays for nothing it does not
//! use.
//!
//! A password-protected link answers `GET` with a form (`password_form.rs`) instead, and
//! `POST /{code}` with the form's `password`: the redirect when it is right, the form
//! again with 401 when it is wrong. Wrong passwords count toward the `passwords` policy of
//! the client address and the link; past its limit a try is refused (429) before it is
//! hashed. `POST` to a link without a password is 405, as any other method is.

use std::net::IpAddr;
use std::sync::Arc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::HeaderValue;
use actix_web::http::{Method, StatusCode, header};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use shortener_app::{AppError, Followed, Redirects, Resolved, Unlocked, Visitor};
use shortener_domain::ShortCode;

use crate::rate_limit::Limits;
use crate::{Error, password_form};

/// The methods a code's path has (for `Allow`): `POST` only unlocks a link with a
/// password, and a link without one says so in its own 405 ([`LINK_METHODS`]).
const CODE_METHODS: &str = "GET, HEAD, POST";
/// The methods of a link without a password.
const LINK_METHODS: &str = "GET, HEAD";

/// The largest password form body: a 128-character password, each character up to 4
/// bytes of UTF-8 and each byte percent-encoded as 3, is 1.5 KiB.
pub const FORM_LIMIT: usize = 4 * 1024;

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
/// answers the same without counting (link checkers and previews are not clicks), `POST
/// /{code}` unlocks a password-protected link, other methods on one segment are 405,
/// anything else 404. A `GET` or `HEAD` of a valid code does not even get here: it is
/// answered before the router ([`skip_the_router`]), by the same `answer`; what reaches
/// this default service is everything else of one segment (`POST`, other methods, paths
/// that are no code) and the paths no route claims. A failure is still logged, by
/// [`Error`]'s response.
#[utoipa::path(
    method(get, head),
    path = "/{code}",
    operation_id = "follow",
    tag = "redirect",
    summary = "Follows a short link.",
    description = "Redirects to the link's target (the status is the operator's choice: 302 by default; 301, 307 or 308). GET counts the click; HEAD answers the same without counting. Codes are case-sensitive. An address that asks for too many unknown codes gets 429 for codes that are not cached. A password-protected link answers 200 with an HTML form that asks for the password (posted back with `POST /{code}`) and counts nothing; the target is not in it.",
    params(("code" = String, Path, description = "The short code.")),
    responses(
        (status = 200, description = "The link is password-protected: a self-contained HTML form (no script, nothing loaded from elsewhere) that posts the password to `POST /{code}`. Nothing is counted.", content_type = "text/html", body = String,
            headers(("Cache-Control" = String, description = "`no-store`."), ("Content-Security-Policy" = String), ("Referrer-Policy" = String, description = "`no-referrer`."))),
        (status = 301, description = "Redirect (when configured).", headers(("Location" = String), ("Cache-Control" = String))),
        (status = 302, description = "Redirect (the default).", headers(("Location" = String, description = "The target."), ("Cache-Control" = String, description = "`private, max-age=0`: every follow reaches the service."))),
        (status = 307, description = "Redirect (when configured).", headers(("Location" = String), ("Cache-Control" = String))),
        (status = 308, description = "Redirect (when configured).", headers(("Location" = String), ("Cache-Control" = String))),
    ),
)]
pub async fn redirect_or_not_found(
    redirector: web::Data<Redirector>,
    req: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, Error> {
    let code = match req.path().strip_prefix('/') {
        Some(code) if !code.is_empty() && !code.contains('/') => code,
        _ => return Err(Error::RouteNotFound),
    };
    match *req.method() {
        Method::GET | Method::HEAD => answer(&redirector, &req, code).await,
        Method::POST => {
            let visitor = RequestVisitor {
                req: &req,
                limits: &redirector.limits,
            };
            unlock(&redirector, code, &visitor, body).await
        }
        _ => Err(Error::MethodNotAllowed(CODE_METHODS.into())),
    }
}

/// The answer to a `GET` or `HEAD` of `code`.
async fn answer(
    redirector: &Redirector,
    req: &HttpRequest,
    code: &str,
) -> Result<HttpResponse, Error> {
    let redirects = &redirector.redirects;
    let visitor = RequestVisitor {
        req,
        limits: &redirector.limits,
    };
    let followed = if req.method() == Method::HEAD {
        redirects.peek(code, &visitor).await?
    } else {
        redirects.follow(code, &visitor).await?
    };
    match followed {
        Followed::Found(link) => Ok(redirect_to(redirector.status, link.target.as_str())),
        Followed::Protected(_) => Ok(password_form::respond(code, StatusCode::OK)),
        // Counted toward `unknown-codes`; past its limit, answered 429.
        Followed::NotFound => Err(redirector.limits.unknown_code(visitor.address()).into()),
        Followed::Expired => Err(AppError::LinkExpired.into()),
        Followed::Spent => Err(AppError::VisitLimitReached.into()),
    }
}

/// Redirects skip the router. The App's router tries its routes one after the other before
/// it falls back to the redirect (its default service), which cost a cached redirect
/// about 2 500 instructions, a tenth of all it costs, and more with every route added. A
/// `GET` or `HEAD` of one segment that is a valid code can be no other route: every route
/// of one segment is a reserved word or shorter than a code (`shortener_domain`'s
/// `RESERVED_WORDS`), so it is answered here, inside every middleware of the App, exactly
/// as the default service answers it. Everything else (`POST /{code}` too) is routed.
pub async fn skip_the_router(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let direct = matches!(*req.method(), Method::GET | Method::HEAD)
        && req
            .path()
            .strip_prefix('/')
            .is_some_and(|code| ShortCode::parse(code).is_ok());
    if direct && let Some(redirector) = req.app_data::<web::Data<Redirector>>().cloned() {
        let code = &req.path()[1..];
        let res = match answer(&redirector, req.request(), code).await {
            Ok(res) => res,
            // As the default service would: the error kept in the response for any
            // middleware that reads it.
            Err(e) => HttpResponse::from_error(e),
        };
        return Ok(req.into_response(res).map_into_right_body());
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_left_body)
}

/// The password form's body, as a browser posts it.
#[derive(utoipa::ToSchema)]
#[schema(as = PasswordForm)]
#[allow(dead_code)] // read from the body by [`form_password`]; this only documents it
struct PasswordForm {
    /// The link's password, exactly as its owner set it.
    #[schema(format = Password, write_only)]
    password: String,
}

/// `POST /{code}`: the password form's answer. The link is looked up as a HEAD does
/// (nothing counted); an unknown or expired one answers as to a GET, one without a
/// password 405. A client over the `passwords` limit for this link is refused before its
/// password is read or hashed; a wrong password counts toward that limit.
#[utoipa::path(
    post,
    path = "/{code}",
    operation_id = "unlock",
    tag = "redirect",
    summary = "Opens a password-protected link.",
    description = "What the form of a password-protected link posts. The right password answers the redirect, exactly as `GET /{code}` of a link without a password (the status is the operator's choice) and counts the click; a wrong one answers the form again with 401 and counts toward the `passwords` rate-limit policy of the client address and the link (10 wrong passwords a minute by default); past it, tries are refused with 429 before the password is checked. Only wrong passwords count. A link without a password answers 405; an unknown or expired one as `GET /{code}` does.",
    params(("code" = String, Path, description = "The short code.")),
    request_body(content = PasswordForm, content_type = "application/x-www-form-urlencoded",
        description = "The form's one field, `password` (at most 4 KiB of form)."),
    responses(
        (status = 301, description = "The right password: redirect (when configured).", headers(("Location" = String), ("Cache-Control" = String))),
        (status = 302, description = "The right password: redirect (the default).", headers(("Location" = String, description = "The target."), ("Cache-Control" = String, description = "`private, max-age=0`."))),
        (status = 307, description = "The right password: redirect (when configured).", headers(("Location" = String), ("Cache-Control" = String))),
        (status = 308, description = "The right password: redirect (when configured).", headers(("Location" = String), ("Cache-Control" = String))),
        (status = 401, description = "A wrong password: the form again, saying so.", content_type = "text/html", body = String,
            headers(("Cache-Control" = String, description = "`no-store`."), ("Content-Security-Policy" = String), ("Referrer-Policy" = String, description = "`no-referrer`."))),
    ),
)]
async fn unlock(
    redirector: &Redirector,
    code: &str,
    visitor: &RequestVisitor<'_>,
    body: web::Payload,
) -> Result<HttpResponse, Error> {
    let link: Arc<Resolved> = match redirector.redirects.peek(code, visitor).await? {
        Followed::Protected(link) => link,
        Followed::Found(_) => return Err(Error::MethodNotAllowed(LINK_METHODS.into())),
        Followed::NotFound => {
            return Err(redirector.limits.unknown_code(visitor.address()).into());
        }
        Followed::Expired => return Err(AppError::LinkExpired.into()),
        Followed::Spent => return Err(AppError::VisitLimitReached.into()),
    };
    let limits = &redirector.limits;
    let address = visitor.address();
    limits.refuse_password(address, link.id)?;
    let guess = form_password(visitor.req, body).await?;
    match redirector.redirects.unlock(&link, guess, visitor).await? {
        Unlocked::Open => Ok(redirect_to(redirector.status, link.target.as_str())),
        Unlocked::Spent => Err(AppError::VisitLimitReached.into()),
        Unlocked::Wrong => {
            limits.wrong_password(address, link.id);
            Ok(password_form::respond(code, StatusCode::UNAUTHORIZED))
        }
    }
}

/// The `password` field of an `application/x-www-form-urlencoded` body of at most
/// [`FORM_LIMIT`] bytes. Anything else is the client's mistake: 400 (413 when too large).
async fn form_password(req: &HttpRequest, body: web::Payload) -> Result<String, Error> {
    if !req
        .content_type()
        .eq_ignore_ascii_case("application/x-www-form-urlencoded")
    {
        return Err(Error::Validation(
            "the body must be a form sent as Content-Type: application/x-www-form-urlencoded"
                .into(),
        ));
    }
    let bytes = match body.to_bytes_limited(FORM_LIMIT).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(e)) => {
            return Err(Error::Validation(format!(
                "the form could not be read: {e}"
            )));
        }
        Err(_) => return Err(Error::PayloadTooLarge(FORM_LIMIT)),
    };
    let mut passwords = url::form_urlencoded::parse(&bytes)
        .filter(|(name, _)| name == "password")
        .map(|(_, value)| value.into_owned());
    match (passwords.next(), passwords.next()) {
        (Some(password), None) => Ok(password),
        (None, _) => Err(Error::Validation(
            "the form must have a `password` field".into(),
        )),
        (Some(_), Some(_)) => Err(Error::Validation(
            "the form must have one `password` field, not several".into(),
        )),
    }
}

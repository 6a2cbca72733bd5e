//! The web interface for people, under `/ui`: an account's links and their statistics, and
//! the operator's accounts, subscriptions, keys and audit log.
//!
//! Pages are rendered on the server from askama templates (`templates/ui/`), compiled and
//! type-checked with the binary and HTML-escaped by default. Every flow works without
//! JavaScript; the one script (`assets/ui.js`) only adds a copy button and a confirmation.
//! The pages call the same use cases as the API, so the rules and the problem slugs are
//! the API's; an error is shown as a page naming its slug ([`UiError`]). Who is signed in
//! and the CSRF check are `session.rs`'s; what is embedded is `assets.rs`'s.

mod account;
mod assets;
pub(crate) mod charts;
mod operator;
pub mod session;

use actix_web::cookie::time;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, ResponseError, Scope, web};
use askama::Template;
use shortener_app::{AppError, Chain, Principal};

use crate::problem::Slug;
use crate::request_id::RequestId;
use crate::{Error, State};
use session::{Anonymous, Posted, SESSION_COOKIE, SIGN_IN_COOKIE, Signed};

/// Pages load only their own style sheet, script and images; forms post only here; no
/// page may be framed.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; script-src 'self'; \
     img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The `/ui` routes.
pub fn scope() -> Scope {
    web::scope("/ui")
        // A query the pages cannot read is a page, like every other refusal here.
        .app_data(web::QueryConfig::default().error_handler(|e, _| {
            UiError::from(Error::Validation(format!(
                "the address's query is malformed: {e}"
            )))
            .into()
        }))
        .route("", web::get().to(start))
        .route("/", web::get().to(start))
        .route("/assets/{file}", web::get().to(assets::serve))
        .route("/sign-in", web::get().to(sign_in_form))
        .route("/sign-in", web::post().to(sign_in))
        .route("/sign-out", web::post().to(sign_out))
        .configure(account::routes)
        .configure(operator::routes)
        .default_service(web::to(not_found))
}

/// What every page around its content shows: the assets, the navigation of the signed-in
/// role, and the sign-out form with its CSRF token.
pub struct Chrome {
    css: String,
    js: String,
    icon: String,
    /// An account is signed in: its navigation.
    account: bool,
    /// An operator is signed in: theirs.
    operator: bool,
    /// Who is signed in, as the header shows it.
    who: String,
    csrf: String,
    /// The navigation entry of this page.
    section: &'static str,
}

impl Chrome {
    /// For a page nobody needs to be signed in to see.
    pub fn anonymous() -> Chrome {
        Chrome {
            css: assets::CSS.url(),
            js: assets::JS.url(),
            icon: assets::ICON.url(),
            account: false,
            operator: false,
            who: String::new(),
            csrf: String::new(),
            section: "",
        }
    }

    /// For a signed-in person's page in `section`.
    pub async fn of(state: &State, signed: &Signed, section: &'static str) -> Chrome {
        let who = match signed.principal {
            Principal::Admin { .. } => "Operator".to_owned(),
            Principal::Account { account_id, .. } => match state.accounts.get(account_id).await {
                Ok(view) => view.account.name.to_string(),
                Err(_) => "Account".to_owned(),
            },
        };
        Chrome {
            account: matches!(signed.principal, Principal::Account { .. }),
            operator: matches!(signed.principal, Principal::Admin { .. }),
            who,
            csrf: signed.csrf(),
            section,
            ..Chrome::anonymous()
        }
    }
}

/// A rendered page with the headers every page has: never cached (pages show what only
/// the signed-in person may see), the policy above, no referrer outside this service.
pub fn page(status: StatusCode, template: &impl Template) -> Result<HttpResponse, UiError> {
    let body = template
        .render()
        .map_err(|e| UiError::from(AppError::internal_from("rendering a page", e)))?;
    Ok(html(status, body))
}

fn html(status: StatusCode, body: String) -> HttpResponse {
    crate::markup::html_page(status, CONTENT_SECURITY_POLICY, "same-origin", body)
}

/// `path?name=value&...`, form-encoded, with the pairs that have a value: a next page's
/// link keeps its list's filters, a redirect carries its notice.
pub fn with_query<'a>(
    path: &str,
    pairs: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        if let Some(value) = value {
            query.append_pair(name, value);
        }
    }
    format!("{path}?{}", query.finish())
}

/// Adds `cookie` to `res` (actix's own `Set-Cookie`; a cookie built here is always a valid
/// header value, so its error cannot happen).
fn set_cookie(res: &mut HttpResponse, cookie: &actix_web::cookie::Cookie<'_>) {
    let _ = res.add_cookie(cookie);
}

/// `303 See Other` to `location`: where a form's post sends the browser next.
pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .finish()
}

/// Why a page could not be shown.
#[derive(Debug, thiserror::Error)]
pub enum UiError {
    /// Nobody is signed in, or the session has ended (`ended`): to the sign-in page.
    #[error("not signed in")]
    SignIn {
        /// A session existed and has ended (expired, signed out, key revoked).
        ended: bool,
    },
    /// What the API would answer as a problem, shown as a page.
    #[error(transparent)]
    Page(#[from] Error),
}

impl From<AppError> for UiError {
    fn from(e: AppError) -> Self {
        UiError::Page(Error::App(e))
    }
}

/// The error page.
#[derive(Template)]
#[template(path = "ui/error.html")]
struct ErrorPage {
    chrome: Chrome,
    status: u16,
    slug: &'static str,
    title: &'static str,
    detail: String,
    what_to_do: &'static str,
    request_id: Option<String>,
}

/// What a `datetime-local` field holds (`2027-01-31T18:00`, or with seconds), read as UTC:
/// the pages say so beside every such field.
pub fn datetime_local(text: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]
        .iter()
        .find_map(|format| chrono::NaiveDateTime::parse_from_str(text, format).ok())
        .map(|at| at.and_utc())
}

/// A problem's detail as the start of a sentence (the API's details start in lower case).
pub fn sentence(detail: &str) -> String {
    let mut chars = detail.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}

/// What a person can do about a problem, in a sentence.
fn what_to_do(slug: Slug) -> &'static str {
    match slug {
        Slug::NotFound => "Check the address, or go back to the list and pick the item from there.",
        Slug::Forbidden => {
            "Sign in with the right kind of key, or reload the page you came from and try again."
        }
        Slug::RateLimited => "Wait a minute, then try again.",
        Slug::ServiceUnavailable => {
            "The service cannot reach its database right now. Try again in a moment; nothing was changed."
        }
        Slug::Internal => {
            "Something went wrong on our side. Try again; if it keeps happening, give the request id below to the operator."
        }
        Slug::VersionMismatch => {
            "Someone changed this while you were looking at it. Reload the page to see the current state, then decide again."
        }
        Slug::InvalidTransition => {
            "Reload the page to see the current state and the changes it allows."
        }
        _ => "Go back, correct what the message names, and try again.",
    }
}

impl ResponseError for UiError {
    fn status_code(&self) -> StatusCode {
        match self {
            UiError::SignIn { .. } => StatusCode::SEE_OTHER,
            UiError::Page(e) => e.status_code(),
        }
    }

    fn error_response(&self) -> HttpResponse {
        let e = match self {
            UiError::SignIn { ended } => {
                let mut res = see_other(if *ended {
                    "/ui/sign-in?ended=1"
                } else {
                    "/ui/sign-in"
                });
                if *ended {
                    set_cookie(&mut res, &session::removal(SESSION_COOKIE));
                }
                return res;
            }
            UiError::Page(e) => e,
        };
        let (slug, detail) = e.problem();
        if slug.status().is_server_error() {
            tracing::error!(error = %Chain(e), "page failed");
        }
        let page = ErrorPage {
            chrome: Chrome::anonymous(),
            status: slug.status().as_u16(),
            slug: slug.as_str(),
            title: slug.title(),
            detail: sentence(&detail),
            what_to_do: what_to_do(slug),
            request_id: RequestId::current().map(|id| id.to_string()),
        };
        let body = page.render().unwrap_or_else(|_| slug.title().to_owned());
        let mut res = html(slug.status(), body);
        if let Error::App(AppError::RateLimited {
            retry_after_secs, ..
        }) = e
        {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
        }
        res
    }
}

async fn not_found() -> Result<HttpResponse, UiError> {
    Err(UiError::from(AppError::NotFound))
}

/// `/ui`: where the signed-in role starts, or the sign-in page.
async fn start(signed: Signed) -> HttpResponse {
    match signed.principal {
        Principal::Account { .. } => see_other("/ui/links"),
        Principal::Admin { .. } => see_other("/ui/accounts"),
    }
}

/// The sign-in page.
#[derive(Template)]
#[template(path = "ui/sign_in.html")]
struct SignInPage {
    chrome: Chrome,
    token: String,
    notice: Option<&'static str>,
    error: Option<String>,
}

#[derive(Debug, serde::Deserialize)]
struct SignInQuery {
    ended: Option<String>,
    signed_out: Option<String>,
}

/// The form, with a fresh sign-in token in it and in its cookie.
fn sign_in_page(
    state: &State,
    status: StatusCode,
    notice: Option<&'static str>,
    error: Option<String>,
) -> Result<HttpResponse, UiError> {
    let token = session::sign_in_token();
    let cookie = session::cookie(
        state,
        SIGN_IN_COOKIE,
        token.clone(),
        time::Duration::hours(1),
    );
    let mut res = page(
        status,
        &SignInPage {
            chrome: Chrome::anonymous(),
            token,
            notice,
            error,
        },
    )?;
    set_cookie(&mut res, &cookie);
    Ok(res)
}

/// `GET /ui/sign-in`; someone already signed in goes on to their start page.
async fn sign_in_form(
    req: HttpRequest,
    state: web::Data<State>,
    query: web::Query<SignInQuery>,
) -> Result<HttpResponse, UiError> {
    if session::signed(&req).await.is_ok() {
        return Ok(see_other("/ui"));
    }
    let notice = if query.ended.is_some() {
        Some("Your session has ended. Sign in again.")
    } else if query.signed_out.is_some() {
        Some("You are signed out.")
    } else {
        None
    };
    sign_in_page(&state, StatusCode::OK, notice, None)
}

/// `POST /ui/sign-in`: a wrong key counts toward the address's `auth-failures`, as a 401
/// of the API does, and an address over that limit is refused before its key is looked
/// up.
async fn sign_in(
    req: HttpRequest,
    state: web::Data<State>,
    Anonymous(fields): Anonymous,
) -> Result<HttpResponse, UiError> {
    if !session::sign_in_token_matches(&req, fields.get("token").unwrap_or_default()) {
        return Err(UiError::from(AppError::Forbidden(
            "the sign-in form's token is missing or does not match its cookie, so nobody was signed in; reload the sign-in page and try again".into(),
        )));
    }
    if let Some(refused) = state.limits.refuse_authentication(&req) {
        return Err(refused.into());
    }
    let key = fields.get("key").unwrap_or_default();
    match state.sessions.sign_in(key).await {
        Ok(signed) => {
            tracing::info!(principal = ?signed.principal, "signed in to the web interface");
            let ttl = time::Duration::seconds(
                i64::try_from(state.sessions.ttl().as_secs()).unwrap_or(i64::MAX),
            );
            let mut res = see_other("/ui");
            for cookie in [
                session::cookie(
                    &state,
                    SESSION_COOKIE,
                    signed.token.as_str().to_owned(),
                    ttl,
                ),
                session::removal(SIGN_IN_COOKIE),
            ] {
                set_cookie(&mut res, &cookie);
            }
            Ok(res)
        }
        Err(AppError::Unauthorized) => {
            state.limits.failed_authentication(&req);
            sign_in_page(
                &state,
                StatusCode::UNAUTHORIZED,
                None,
                Some("That key is not valid: it is unknown, mistyped or revoked (unauthorized). Paste the whole key, starting with shk_.".into()),
            )
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /ui/sign-out`: ends the session everywhere, not only in this browser.
async fn sign_out(state: web::Data<State>, posted: Posted) -> Result<HttpResponse, UiError> {
    state.sessions.sign_out(posted.signed.token()).await?;
    let mut res = see_other("/ui/sign-in?signed_out=1");
    set_cookie(&mut res, &session::removal(SESSION_COOKIE));
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetime_local_values_are_read_as_utc_whole_hours_included() {
        let at = |text| datetime_local(text).map(|t| t.to_rfc3339());
        assert_eq!(
            at("2027-01-31T18:00").as_deref(),
            Some("2027-01-31T18:00:00+00:00")
        );
        assert_eq!(
            at("2027-01-31T18:30:15").as_deref(),
            Some("2027-01-31T18:30:15+00:00")
        );
        assert_eq!(
            at("2027-01-31T00:00").as_deref(),
            Some("2027-01-31T00:00:00+00:00")
        );
        for bad in [
            "",
            "yesterday",
            "2027-01-31",
            "2027-13-01T00:00",
            "2027-01-31 18:00",
        ] {
            assert_eq!(at(bad), None, "{bad}");
        }
    }
}

//! Who is signed in to the web interface, and the CSRF check of every form that changes
//! something.
//!
//! The session cookie carries only a random token (`shortener_app::Sessions` keeps its
//! hash and ends it at sign-out, expiry or the key's revocation). It is `HttpOnly` (no
//! script reads it), `SameSite=Strict` (no other site's page sends it), `Path=/ui` and
//! `Secure` when the public URL is https. Every form that changes something also carries
//! the session's CSRF token ([`Posted`]); one without it changes nothing and gets a 403.
//! The sign-in form, posted before there is a session, carries a token of its own that a
//! cookie set with the form must match (double submit), so another site cannot sign a
//! browser in with its own key.

use std::future::Future;
use std::pin::Pin;

use actix_web::cookie::{Cookie, SameSite, time};
use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use shortener_app::{AppError, Principal, SessionToken};
use shortener_domain::{AccountId, KeyId};
use subtle::ConstantTimeEq;

use super::UiError;
use crate::State;

/// The session's cookie.
pub const SESSION_COOKIE: &str = "shortener_session";
/// The sign-in form's own token, set with the form (double submit).
pub const SIGN_IN_COOKIE: &str = "shortener_sign_in";
/// Where the cookies are sent: the web interface only, never the API or a redirect.
const COOKIE_PATH: &str = "/ui";

/// A cookie of the web interface, with the attributes every one of them has.
pub fn cookie(
    state: &State,
    name: &'static str,
    value: String,
    max_age: time::Duration,
) -> Cookie<'static> {
    Cookie::build(name, value)
        .path(COOKIE_PATH)
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(state.https)
        .max_age(max_age)
        .finish()
}

/// The cookie that deletes `name` in the browser (a deletion matches by name and path, so
/// it needs no other attribute, and no state: an error page can send it too).
pub fn removal(name: &'static str) -> Cookie<'static> {
    let mut gone = Cookie::build(name, "").path(COOKIE_PATH).finish();
    gone.make_removal();
    gone
}

/// A random token for the sign-in form (128 bits, hex).
pub fn sign_in_token() -> String {
    let bytes: [u8; 16] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether the sign-in form's token matches the cookie set with the form.
pub fn sign_in_token_matches(req: &HttpRequest, presented: &str) -> bool {
    req.cookie(SIGN_IN_COOKIE).is_some_and(|c| {
        !presented.is_empty() && bool::from(c.value().as_bytes().ct_eq(presented.as_bytes()))
    })
}

/// A signed-in person: who they act for, and their session (for its CSRF token).
#[derive(Debug, Clone)]
pub struct Signed {
    /// Who the session acts for.
    pub principal: Principal,
    token: SessionToken,
}

impl Signed {
    /// The CSRF token every form of this session carries.
    pub fn csrf(&self) -> String {
        self.token.csrf()
    }

    /// The session's token (for sign-out).
    pub fn token(&self) -> &SessionToken {
        &self.token
    }

    /// The account, if an account signed in; otherwise the page is not for them.
    pub fn account(&self) -> Result<AccountId, UiError> {
        match self.principal {
            Principal::Account { account_id, .. } => Ok(account_id),
            Principal::Admin { .. } => Err(UiError::from(AppError::Forbidden(
                "you are signed in with an admin key; this page is an account's (sign in with one of its keys)".into(),
            ))),
        }
    }

    /// The operator's admin key, if an operator signed in.
    pub fn admin(&self) -> Result<KeyId, UiError> {
        match self.principal {
            Principal::Admin { key_id } => Ok(key_id),
            Principal::Account { .. } => Err(UiError::from(AppError::Forbidden(
                "you are signed in with an account key; this page is the operator's (sign in with an admin key)".into(),
            ))),
        }
    }
}

/// The session behind `req`, if one is open.
pub async fn signed(req: &HttpRequest) -> Result<Signed, UiError> {
    let state = req
        .app_data::<web::Data<State>>()
        .ok_or_else(|| UiError::from(AppError::internal("the application state is missing")))?;
    let token = req
        .cookie(SESSION_COOKIE)
        .and_then(|c| SessionToken::parse(c.value()));
    let Some(token) = token else {
        return Err(UiError::SignIn { ended: false });
    };
    match state.sessions.resume(&token).await {
        Ok(principal) => Ok(Signed { principal, token }),
        Err(AppError::Unauthorized) => Err(UiError::SignIn { ended: true }),
        Err(e) => Err(e.into()),
    }
}

impl FromRequest for Signed {
    type Error = UiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, UiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { signed(&req).await })
    }
}

/// A form's fields, as posted (`application/x-www-form-urlencoded`), in order.
#[derive(Debug, Default, Clone)]
pub struct Fields(Vec<(String, String)>);

impl Fields {
    /// The first value of `name`, trimmed; `None` when absent or blank.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// The value of `name` exactly as posted (a password keeps its spaces).
    pub fn raw(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    /// Whether a checkbox named `name` was ticked.
    pub fn checked(&self, name: &str) -> bool {
        self.0.iter().any(|(k, _)| k == name)
    }
}

async fn fields(req: &HttpRequest, payload: &mut Payload) -> Result<Fields, UiError> {
    web::Form::<Vec<(String, String)>>::from_request(req, payload)
        .await
        .map(|form| Fields(form.into_inner()))
        .map_err(|e| {
            UiError::from(crate::Error::Validation(format!(
                "the form could not be read: {e}"
            )))
        })
}

/// A form posted by a signed-in person, its CSRF token checked: the only way a handler of
/// the web interface gets what it changes, so none can forget the check.
#[derive(Debug)]
pub struct Posted {
    /// Who posted it.
    pub signed: Signed,
    /// What was posted.
    pub fields: Fields,
}

impl FromRequest for Posted {
    type Error = UiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, UiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let mut payload = payload.take();
        Box::pin(async move {
            let fields = fields(&req, &mut payload).await?;
            let signed = signed(&req).await?;
            let csrf = fields.get("csrf").unwrap_or_default();
            if !signed.token.csrf_matches(csrf) {
                return Err(UiError::from(AppError::Forbidden(
                    "this form's CSRF token is missing or is not this session's, so nothing was changed; reload the page and try again".into(),
                )));
            }
            Ok(Posted { signed, fields })
        })
    }
}

/// A form posted without a session (the sign-in form).
#[derive(Debug)]
pub struct Anonymous(pub Fields);

impl FromRequest for Anonymous {
    type Error = UiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, UiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let mut payload = payload.take();
        Box::pin(async move { fields(&req, &mut payload).await.map(Anonymous) })
    }
}

//! Authentication, as a step of the `/api` and `/admin` middleware chain (after the
//! request span, before rate limiting): [`authenticate`] resolves the bearer key once and
//! puts the outcome into the request, where later middleware and handlers read it. An
//! address over the `auth-failures` limit is refused here, before its key is looked up. The
//! handlers' extractors ([`AccountCaller`], [`AdminCaller`]) then only check the role;
//! 401 and 403 are answered there, so a path no route claims is still a 404.

use std::future::{Ready, ready};

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use shortener_app::{AppError, Principal};
use shortener_domain::{AccountId, KeyId};

use crate::{Error, State};

/// What authentication concluded for this request: who is calling, or why nobody is.
/// Later middleware (rate limiting) reads it from the request's extensions too.
#[derive(Debug, Clone)]
pub struct Authentication(pub Result<Principal, AppError>);

fn bearer(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
}

/// The middleware: resolves `Authorization: Bearer <key>` and records the
/// [`Authentication`] in the request's extensions. Never answers by itself.
pub async fn authenticate(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let state = req.app_data::<web::Data<State>>();
    // An address over `auth-failures` is refused before its key costs a lookup.
    let refused = state.and_then(|s| s.limits.refuse_authentication(req.request()));
    let outcome = match (state, bearer(req.request()), refused) {
        (_, _, Some(refused)) => Err(refused),
        (_, None, None) => Err(AppError::Unauthorized),
        (None, Some(_), None) => Err(AppError::internal("the application state is missing")),
        (Some(state), Some(token), None) => state.auth.authenticate(&token).await,
    };
    req.extensions_mut().insert(Authentication(outcome));
    next.call(req).await
}

/// The caller behind the request, if `role` admits them: the one check both extractors
/// make.
fn caller<T>(
    req: &HttpRequest,
    role: impl FnOnce(Principal) -> Result<T, AppError>,
) -> Result<T, Error> {
    let outcome = match req.extensions().get::<Authentication>() {
        Some(Authentication(outcome)) => outcome.clone(),
        None => Err(AppError::internal(
            "the route is not behind the authentication middleware",
        )),
    };
    Ok(role(outcome?)?)
}

/// The caller of an `/api/...` route: an account, through one of its keys.
#[derive(Debug, Clone, Copy)]
pub struct AccountCaller {
    /// The account acting.
    pub account_id: AccountId,
}

impl FromRequest for AccountCaller {
    type Error = Error;
    type Future = Ready<Result<Self, Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(caller(req, |principal| match principal {
            Principal::Account { account_id, .. } => Ok(AccountCaller { account_id }),
            Principal::Admin { .. } => Err(AppError::Forbidden(
                "admin keys cannot call /api; use an account key".into(),
            )),
        }))
    }
}

/// The caller of an `/admin/...` route: an operator, through an admin key.
#[derive(Debug, Clone, Copy)]
pub struct AdminCaller {
    /// The admin key used.
    pub key_id: KeyId,
}

impl FromRequest for AdminCaller {
    type Error = Error;
    type Future = Ready<Result<Self, Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(caller(req, |principal| match principal {
            Principal::Admin { key_id } => Ok(AdminCaller { key_id }),
            Principal::Account { .. } => Err(AppError::Forbidden(
                "account keys cannot call /admin; use an admin key".into(),
            )),
        }))
    }
}

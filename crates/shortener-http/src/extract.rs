//! Request extraction: authentication, bodies, query strings and cursors, with every
//! failure turned into our problem documents rather than actix's plain-text defaults.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::error::{JsonPayloadError, QueryPayloadError};
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use shortener_app::{AppError, PageRequest, Principal};
use shortener_domain::{AccountId, KeyId};

use crate::{Error, State};

/// Request bodies larger than this are refused with 413.
pub const BODY_LIMIT: usize = 64 * 1024;
const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 500;

/// JSON body settings: size limit and problem+json errors.
pub fn json_config() -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(BODY_LIMIT)
        .error_handler(|err, _req| {
            match err {
                JsonPayloadError::Overflow { .. }
                | JsonPayloadError::OverflowKnownLength { .. } => Error::PayloadTooLarge,
                JsonPayloadError::ContentType => Error::Validation(
                    "the body must be JSON sent as Content-Type: application/json".into(),
                ),
                JsonPayloadError::Deserialize(e) => {
                    Error::Validation(format!("invalid JSON body: {e}"))
                }
                other => Error::Validation(format!("invalid body: {other}")),
            }
            .into()
        })
}

/// Query-string settings: problem+json errors.
pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err, _req| {
        let QueryPayloadError::Deserialize(e) = err else {
            return Error::Validation("invalid query string".into()).into();
        };
        Error::Validation(format!("invalid query string: {e}")).into()
    })
}

/// `?limit=&cursor=`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// Page size, 1..=500 (default 50).
    pub limit: Option<u32>,
    /// The previous page's `next_cursor`.
    pub cursor: Option<String>,
}

impl PageQuery {
    /// Validates the limit and decodes the cursor.
    pub fn to_request(&self) -> Result<PageRequest, Error> {
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(Error::Validation(format!(
                "limit must be between 1 and {MAX_LIMIT}"
            )));
        }
        let after = self.cursor.as_deref().map(decode_cursor).transpose()?;
        Ok(PageRequest { after, limit })
    }
}

/// Cursors are opaque to clients: today the last item's id, tomorrow maybe more.
pub fn encode_cursor(id: uuid::Uuid) -> String {
    URL_SAFE_NO_PAD.encode(id.as_bytes())
}

fn decode_cursor(s: &str) -> Result<uuid::Uuid, Error> {
    URL_SAFE_NO_PAD
        .decode(s)
        .ok()
        .and_then(|b| uuid::Uuid::from_slice(&b).ok())
        .ok_or_else(|| Error::Validation("cursor is not one this service issued".into()))
}

/// A path id that is not a UUID cannot name anything: 404, like any unknown id.
pub fn path_id<T: std::str::FromStr>(s: &str) -> Result<T, Error> {
    s.parse().map_err(|_| Error::App(AppError::NotFound))
}

fn bearer(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
}

type Authenticated<T> = Pin<Box<dyn Future<Output = Result<T, Error>>>>;

fn authenticate(req: &HttpRequest) -> Authenticated<Principal> {
    let state = req.app_data::<web::Data<State>>().cloned();
    let token = bearer(req);
    Box::pin(async move {
        let state = state.ok_or_else(|| Error::App(AppError::Internal("state missing".into())))?;
        let token = token.ok_or(Error::App(AppError::Unauthorized))?;
        Ok(state.auth.authenticate(&token).await?)
    })
}

/// The caller of an `/api/...` route: an account, through one of its keys.
#[derive(Debug, Clone, Copy)]
pub struct AccountCaller {
    /// The account acting.
    pub account_id: AccountId,
}

impl FromRequest for AccountCaller {
    type Error = Error;
    type Future = Authenticated<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let principal = authenticate(req);
        Box::pin(async move {
            match principal.await? {
                Principal::Account { account_id, .. } => Ok(AccountCaller { account_id }),
                Principal::Admin { .. } => Err(Error::App(AppError::Forbidden(
                    "admin keys cannot call /api; use an account key".into(),
                ))),
            }
        })
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
    type Future = Authenticated<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let principal = authenticate(req);
        Box::pin(async move {
            match principal.await? {
                Principal::Admin { key_id } => Ok(AdminCaller { key_id }),
                Principal::Account { .. } => Err(Error::App(AppError::Forbidden(
                    "account keys cannot call /admin; use an admin key".into(),
                ))),
            }
        })
    }
}

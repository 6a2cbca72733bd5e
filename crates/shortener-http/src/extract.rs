//! Request extraction: bodies, query strings and path ids, with every failure turned into
//! our problem documents rather than actix's plain-text defaults. (Callers are
//! `auth.rs`'s, pages `page.rs`'s.)
//!
//! Text that enters through a body or a query string never carries a NUL: PostgreSQL
//! cannot store one, so it would fail there as our error (500) instead of the caller's.
//! (Paths only ever name codes and ids, which refuse it by their own rules, and header
//! values cannot hold one.)

use std::future::{Future, Ready, ready};
use std::ops::Deref;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::error::JsonPayloadError;
use actix_web::{FromRequest, HttpRequest, web};
use chrono::{DateTime, Datelike, Utc};
use serde::de::DeserializeOwned;
use serde_json::Value;
use shortener_app::AppError;

use crate::Error;

const NUL: &str = "text must not contain NUL characters (\\u0000)";

/// Request bodies larger than this are refused with 413.
pub const BODY_LIMIT: usize = 64 * 1024;

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

/// A JSON body: always an object (an array is not read by position into a struct), with
/// no NUL anywhere in it, deserialised as `T`. Size, content type and their errors are
/// [`json_config`]'s.
pub struct Body<T>(pub T);

impl<T> Body<T> {
    /// The body.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> Deref for Body<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for Body<T> {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, actix_web::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let json = web::Json::<Value>::from_request(req, payload);
        Box::pin(async move { Ok(Body(from_object(json.await?.into_inner())?)) })
    }
}

/// `T` from a JSON value that must be an object without a NUL in any key or string.
pub fn from_object<T: DeserializeOwned>(value: Value) -> Result<T, Error> {
    if !value.is_object() {
        return Err(Error::Validation("the body must be a JSON object".into()));
    }
    if has_nul(&value) {
        return Err(Error::Validation(NUL.into()));
    }
    serde_json::from_value(value).map_err(|e| Error::Validation(format!("invalid JSON body: {e}")))
}

fn has_nul(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(has_nul),
        Value::Object(fields) => fields.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
    }
}

/// A query string without a NUL in it, deserialised as `T`.
pub struct Query<T>(pub T);

impl<T> Query<T> {
    /// The query.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> Deref for Query<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: DeserializeOwned> FromRequest for Query<T> {
    type Error = Error;
    type Future = Ready<Result<Self, Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(from_query(req.query_string()))
    }
}

fn from_query<T: DeserializeOwned>(query: &str) -> Result<Query<T>, Error> {
    // Decoding yields a NUL only from `%00` (case makes no difference to a digit pair).
    if query.contains("%00") || query.contains('\0') {
        return Err(Error::Validation(NUL.into()));
    }
    web::Query::<T>::from_query(query)
        .map(|q| Query(q.into_inner()))
        .map_err(|e| Error::Validation(format!("invalid query string: {e}")))
}

/// An instant the API takes: in the years 1970 to 9999, so that every one it stores is
/// written back as RFC 3339 (which has four-digit years only).
pub fn instant(name: &str, at: DateTime<Utc>) -> Result<DateTime<Utc>, Error> {
    if (1970..=9999).contains(&at.year()) {
        Ok(at)
    } else {
        Err(Error::Validation(format!(
            "{name} must lie in the years 1970 to 9999"
        )))
    }
}

/// A path id that is not a UUID cannot name anything: 404, like any unknown id.
pub fn path_id<T: std::str::FromStr>(s: &str) -> Result<T, Error> {
    s.parse().map_err(|_| Error::App(AppError::NotFound))
}

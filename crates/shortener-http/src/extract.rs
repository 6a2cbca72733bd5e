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

/// Request bodies larger than this are refused with 413 (on every route but those that
/// set a limit of their own: see [`json_config_with`]).
pub const BODY_LIMIT: usize = 64 * 1024;

/// JSON body settings: size limit and problem+json errors.
pub fn json_config() -> web::JsonConfig {
    json_config_with(BODY_LIMIT)
}

/// [`json_config`] with a limit of `limit` bytes, for a route that takes larger bodies
/// (given to its resource, whose settings come before the app's).
pub fn json_config_with(limit: usize) -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(limit)
        .error_handler(move |err, _req| {
            match err {
                JsonPayloadError::Overflow { .. }
                | JsonPayloadError::OverflowKnownLength { .. } => Error::PayloadTooLarge(limit),
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

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Sample {
        url: String,
        code: Option<String>,
    }

    fn json() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            ".{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map("(url|code|.{0,6})", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        /// Any JSON is read or refused, never with a panic, and what is read came from an
        /// object without a NUL.
        #[test]
        fn any_body_is_read_or_refused(value in json()) {
            if from_object::<Sample>(value.clone()).is_ok() {
                proptest::prop_assert!(value.is_object() && !has_nul(&value));
            }
        }

        /// Any query string is read or refused, never with a panic, and a NUL is never let
        /// through.
        #[test]
        fn any_query_is_read_or_refused(query in ".{0,40}", nul in proptest::bool::ANY) {
            let query = if nul { format!("url=a%00{query}") } else { query };
            let read = from_query::<Sample>(&query);
            if let Ok(Query(sample)) = &read {
                let code = sample.code.as_deref().unwrap_or_default();
                proptest::prop_assert!(!sample.url.contains('\0') && !code.contains('\0'));
            }
            if nul {
                proptest::prop_assert!(read.is_err());
            }
        }

        /// Instants outside 1970..=9999 are refused, inside are kept as they are.
        #[test]
        fn instants_are_bounded(secs in -70_000_000_000i64..300_000_000_000) {
            if let Some(at) = DateTime::from_timestamp(secs, 0) {
                let kept = instant("at", at);
                proptest::prop_assert_eq!(kept.is_ok(), (1970..=9999).contains(&at.year()));
            }
        }
    }
}

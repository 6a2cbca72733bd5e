//! Request extraction: bodies, query strings and path ids, with every failure turned into
//! our problem documents rather than actix's plain-text defaults. (Callers are
//! `auth.rs`'s, pages `page.rs`'s.)

use actix_web::error::{JsonPayloadError, QueryPayloadError};
use actix_web::web;
use shortener_app::AppError;

use crate::Error;

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

/// Query-string settings: problem+json errors.
pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err, _req| {
        let QueryPayloadError::Deserialize(e) = err else {
            return Error::Validation("invalid query string".into()).into();
        };
        Error::Validation(format!("invalid query string: {e}")).into()
    })
}

/// A path id that is not a UUID cannot name anything: 404, like any unknown id.
pub fn path_id<T: std::str::FromStr>(s: &str) -> Result<T, Error> {
    s.parse().map_err(|_| Error::App(AppError::NotFound))
}

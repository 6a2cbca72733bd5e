//! Lists on the wire, one way for all of them (links, accounts, subscriptions, the audit
//! log): the query `?limit=&cursor=` ([`PageQuery`]), one opaque cursor codec over the
//! list's keyset position ([`Position`]), and one page shape ([`PageDto`]). The over-fetch
//! that finds the next page is the app's ([`shortener_app::PageRequest::overfetch`]).

use audit::AuditCursor;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use shortener_app::{Page, PageRequest};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::Error;

/// Items on a page when `limit` is not given.
pub const DEFAULT_LIMIT: u32 = 50;
/// Most items on a page.
pub const MAX_LIMIT: u32 = 500;

/// A list's keyset position, as the bytes inside its opaque cursor.
pub trait Position: Sized {
    /// The bytes the cursor carries.
    fn to_bytes(&self) -> Vec<u8>;
    /// The position, if these are bytes [`Position::to_bytes`] made.
    fn from_bytes(bytes: &[u8]) -> Option<Self>;
}

/// Every id the service pages by is a UUIDv7 it made, so anything else cannot be a
/// position it handed out.
impl Position for Uuid {
    fn to_bytes(&self) -> Vec<u8> {
        self.as_bytes().to_vec()
    }
    fn from_bytes(bytes: &[u8]) -> Option<Self> {
        Uuid::from_slice(bytes)
            .ok()
            .filter(|id| id.get_version() == Some(uuid::Version::SortRand))
    }
}

impl Position for AuditCursor {
    fn to_bytes(&self) -> Vec<u8> {
        self.encode().into_bytes()
    }
    fn from_bytes(bytes: &[u8]) -> Option<Self> {
        AuditCursor::decode(std::str::from_utf8(bytes).ok()?).ok()
    }
}

/// Cursors are opaque to clients: what is inside may change without notice.
pub fn encode_cursor(position: &impl Position) -> String {
    URL_SAFE_NO_PAD.encode(position.to_bytes())
}

/// The position inside a cursor this service issued.
pub fn decode_cursor<P: Position>(cursor: &str) -> Result<P, Error> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| P::from_bytes(&bytes))
        .ok_or_else(|| Error::Validation("cursor is not one this service issued".into()))
}

/// `?limit=&cursor=`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Page size.
    #[param(minimum = 1, maximum = 500, default = 50)]
    pub limit: Option<u32>,
    /// The previous page's `next_cursor`, as it was (opaque).
    #[param(min_length = 1, pattern = "^[A-Za-z0-9_-]+$")]
    pub cursor: Option<String>,
}

impl PageQuery {
    /// Validates the limit and decodes the cursor.
    pub fn to_request<P: Position>(&self) -> Result<PageRequest<P>, Error> {
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

/// A page on the wire: `{"items": [...], "next_cursor": "..." | null}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct PageDto<T> {
    /// This page's items, in the list's order.
    items: Vec<T>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    next_cursor: Option<String>,
}

impl<T> PageDto<T> {
    /// Renders each item of `page` with `render`.
    pub fn new<U, P: Position>(page: Page<U, P>, render: impl FnMut(U) -> T) -> PageDto<T> {
        PageDto {
            items: page.items.into_iter().map(render).collect(),
            next_cursor: page.next.as_ref().map(encode_cursor),
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;

    #[test]
    fn every_position_survives_its_cursor_and_foreign_cursors_are_refused() {
        let id = Uuid::now_v7();
        assert_eq!(decode_cursor::<Uuid>(&encode_cursor(&id)).ok(), Some(id));
        let at = AuditCursor {
            occurred_at: Utc::now(),
            id,
        };
        let decoded: AuditCursor = decode_cursor(&encode_cursor(&at)).unwrap();
        assert_eq!(decoded.id, at.id);
        assert_eq!(
            decoded.occurred_at.timestamp_micros(),
            at.occurred_at.timestamp_micros()
        );
        // A link cursor is not an audit cursor, and junk is neither.
        assert!(decode_cursor::<AuditCursor>(&encode_cursor(&id)).is_err());
        assert!(decode_cursor::<Uuid>("not a cursor!").is_err());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        /// Whatever a client sends as a cursor, decoding answers (never panics), and what
        /// it accepts is a position this service could have issued.
        #[test]
        fn any_cursor_decodes_or_is_refused(cursor in ".{0,64}", bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..40)) {
            if let Ok(id) = decode_cursor::<Uuid>(&cursor) {
                proptest::prop_assert_eq!(id.get_version(), Some(uuid::Version::SortRand));
            }
            let _ = decode_cursor::<AuditCursor>(&cursor);
            let encoded = URL_SAFE_NO_PAD.encode(&bytes);
            if let Ok(id) = decode_cursor::<Uuid>(&encoded) {
                proptest::prop_assert_eq!(id.get_version(), Some(uuid::Version::SortRand));
            }
            let _ = decode_cursor::<AuditCursor>(&encoded);
        }

        /// Every position survives its cursor.
        #[test]
        fn issued_cursors_decode_to_their_position(micros in 0i64..253_402_300_799_000_000, raw in proptest::num::u128::ANY) {
            let id = uuid::Builder::from_random_bytes(raw.to_le_bytes()).into_uuid();
            let v7 = uuid::Uuid::now_v7();
            proptest::prop_assert_eq!(decode_cursor::<Uuid>(&encode_cursor(&v7)).ok(), Some(v7));
            let at = AuditCursor {
                occurred_at: chrono::DateTime::from_timestamp_micros(micros).unwrap(),
                id,
            };
            proptest::prop_assert_eq!(decode_cursor::<AuditCursor>(&encode_cursor(&at)).ok(), Some(at));
        }
    }

    #[test]
    fn limits_outside_one_to_five_hundred_are_refused() {
        let query = |limit| PageQuery {
            limit: Some(limit),
            cursor: None,
        };
        assert!(query(0).to_request::<Uuid>().is_err());
        assert!(query(501).to_request::<Uuid>().is_err());
        assert_eq!(query(500).to_request::<Uuid>().unwrap().limit, 500);
        assert_eq!(
            PageQuery::default().to_request::<Uuid>().unwrap().limit,
            DEFAULT_LIMIT
        );
    }
}

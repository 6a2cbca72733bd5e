//! The one place where errors become HTTP: every failure is an RFC 9457
//! `application/problem+json` document with a stable slug.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use shortener_app::{AppError, Chain, Throttle};
use shortener_domain::DomainError;
use shortener_domain::rate::Policy;

use crate::Error;
use crate::request_id::RequestId;

/// Declares [`Slug`] and its table from one list, so [`Slug::ALL`] is complete by
/// construction: a slug cannot exist without its status, title, explanation and place in
/// `ALL`.
macro_rules! slugs {
    ($(
        $(#[$doc:meta])*
        $variant:ident = ($slug:literal, $status:ident, $generic:literal, $title:literal, $text:literal),
    )*) => {
        /// Every problem type the API can answer with. The slug is part of the contract:
        /// clients branch on it, so it never changes once published.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Slug {
            $($(#[$doc])* $variant,)*
        }

        impl Slug {
            /// Every slug, in declaration order.
            pub const ALL: &'static [Slug] = &[$(Slug::$variant,)*];

            fn info(self) -> Info {
                match self {
                    $(Slug::$variant => Info {
                        slug: $slug,
                        status: StatusCode::$status,
                        generic: $generic,
                        title: $title,
                        explanation: $text,
                    },)*
                }
            }
        }
    };
}

/// What the table says of one slug.
struct Info {
    slug: &'static str,
    status: StatusCode,
    /// Whether the slug says no more than its status does, so that a response of that
    /// status from outside our handlers may be answered as it.
    generic: bool,
    title: &'static str,
    explanation: &'static str,
}

slugs! {
    /// 400: the target URL breaks a rule.
    InvalidUrl = ("invalid-url", BAD_REQUEST, false, "Invalid URL",
        "The target URL must be an absolute http or https URL with a host, at most 2048 bytes, without user-info or control characters. It may not point at this service, nor, unless the operator allows it, at localhost or a loopback, private, link-local, multicast, reserved or other special-purpose IP address (also inside IPv6)."),
    /// 400: the custom code breaks a rule.
    InvalidCode = ("invalid-code", BAD_REQUEST, false, "Invalid code",
        "A custom code is 3 to 64 characters of A-Z, a-z, 0-9, '_' and '-', and may not be a word the service uses for its own paths (api, admin, healthz, readyz, metrics, ...)."),
    /// 409: the custom code is taken.
    CodeTaken = ("code-taken", CONFLICT, false, "Code taken",
        "Another link already uses this code. Codes are never reused, not even after the link is deleted. Choose another code or let the service generate one."),
    /// 404: no such resource (or not yours).
    NotFound = ("not-found", NOT_FOUND, true, "Not found",
        "There is no such resource, or it belongs to another account."),
    /// 410: the link has expired.
    LinkExpired = ("link-expired", GONE, false, "Link expired",
        "The link existed but its expiry time has passed. Its owner can set a new expiry."),
    /// 401: missing, unknown or revoked key.
    Unauthorized = ("unauthorized", UNAUTHORIZED, true, "Unauthorized",
        "Send a valid, unrevoked API key as `Authorization: Bearer <key>`."),
    /// 403: the key may not do this.
    Forbidden = ("forbidden", FORBIDDEN, true, "Forbidden",
        "The key is valid but may not do this: admin keys call /admin/..., account keys call /api/... for their own account."),
    /// 403: the plan's monthly link allowance is used up.
    QuotaExceeded = ("quota-exceeded", FORBIDDEN, false, "Quota exceeded",
        "The account has created as many links this calendar month (UTC) as its plan allows. Existing links keep working; the allowance resets on the 1st, or a larger plan raises it."),
    /// 403: the subscription has expired or was cancelled.
    SubscriptionInactive = ("subscription-inactive", FORBIDDEN, false, "Subscription inactive",
        "The account's subscription has expired or was cancelled, so it cannot create links. Existing links keep redirecting."),
    /// 409: the subscription cannot make this transition from its current state.
    InvalidTransition = ("invalid-transition", CONFLICT, false, "Invalid transition",
        "The subscription cannot make this change from its current state (activate: from trial; renew: from active; cancel: from trial or active; nothing leaves expired or cancelled). `detail` names the current state."),
    /// 412: `If-Match` named a stale version.
    VersionMismatch = ("version-mismatch", PRECONDITION_FAILED, false, "Version mismatch",
        "`If-Match` named a version of the subscription that is no longer current. Read it again and decide on the fresh state."),
    /// 429: a rate-limit policy refuses the request for now.
    RateLimited = ("rate-limited", TOO_MANY_REQUESTS, false, "Too many requests",
        "A rate-limit policy refuses this request for now: `violated-policies` names it, `Retry-After` says when to try again, and the `RateLimit-Policy` and `RateLimit` fields of every /api and /admin answer show how much is left. Policies: `requests` per account key (the plan's rate), `admin` per admin key, `auth-failures` (401s) and `unknown-codes` (404s of GET /{code}) per client address, `passwords` per address and link."),
    /// 413: body over the route's limit.
    PayloadTooLarge = ("payload-too-large", PAYLOAD_TOO_LARGE, true, "Payload too large",
        "Request bodies are limited to 64 KiB, except POST /api/v1/links/bulk's, which may be 1 MiB."),
    /// 422: an `Idempotency-Key` was used before with a different request.
    IdempotencyConflict = ("idempotency-conflict", UNPROCESSABLE_ENTITY, false, "Idempotency conflict",
        "This Idempotency-Key was used before, by this account, with a different request (path or body). A key names one request: send a retry with exactly the body of the first, or use a new key for a new request. Keys are kept at least 24 hours."),
    /// 409: the first request with this `Idempotency-Key` is still running.
    IdempotencyInProgress = ("idempotency-in-progress", CONFLICT, false, "Idempotency key in use",
        "A request with this Idempotency-Key is still being processed. Retry after a moment: once it has answered, the retry gets its answer."),
    /// 400: malformed body, unknown field, wrong type, bad parameter.
    Validation = ("validation", BAD_REQUEST, true, "Validation failed",
        "The request is malformed: invalid JSON, an unknown field, a wrong type, a missing required field, or a parameter out of range. `detail` says which."),
    /// 405: the path exists but not with this method.
    MethodNotAllowed = ("method-not-allowed", METHOD_NOT_ALLOWED, true, "Method not allowed",
        "This path exists, but not with this HTTP method."),
    /// 503: the database did not answer in time.
    ServiceUnavailable = ("service-unavailable", SERVICE_UNAVAILABLE, true, "Service unavailable",
        "The service cannot reach its database right now. Retry later; nothing was changed."),
    /// 500: a bug; details are in the service log.
    Internal = ("internal", INTERNAL_SERVER_ERROR, true, "Internal error",
        "Something went wrong inside the service. The operator's log has the details."),
}

impl Slug {
    /// The slug as it appears in `type`.
    pub fn as_str(self) -> &'static str {
        self.info().slug
    }

    /// The status that goes with it.
    pub fn status(self) -> StatusCode {
        self.info().status
    }

    /// The short, fixed title.
    pub fn title(self) -> &'static str {
        self.info().title
    }

    /// What `GET /problems/<slug>` explains.
    pub fn explanation(self) -> &'static str {
        self.info().explanation
    }

    /// The slug for a string, for `/problems/{slug}`.
    pub fn from_str_opt(s: &str) -> Option<Slug> {
        Slug::ALL.iter().copied().find(|slug| slug.as_str() == s)
    }

    /// The slug for an error response that did not come from our handlers (actix's own
    /// 405, a payload error): the generic slug of its status, never a specific one (a
    /// stray 409 is not `code-taken`). A status without a generic slug is answered as a
    /// 400 `validation` when it is the client's, a 500 `internal` otherwise.
    pub fn for_stray(status: StatusCode) -> Slug {
        Slug::ALL
            .iter()
            .copied()
            .find(|s| s.info().generic && s.status() == status)
            .unwrap_or(if status.is_client_error() {
                Slug::Validation
            } else {
                Slug::Internal
            })
    }
}

/// The problem document (RFC 9457).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"type": "/problems/not-found", "title": "Not found", "status": 404,
    "detail": "no such resource", "request_id": "3f2b8c0e9a7d4e61b5c2a8f0d1e9b7c4"}))]
pub struct Problem {
    /// `/problems/<slug>`, relative to the service's public URL, where a page explains it.
    /// The slug is stable: branch on it.
    #[serde(rename = "type")]
    #[schema(example = "/problems/not-found")]
    pub kind: String,
    /// Fixed per slug.
    pub title: &'static str,
    /// Same as the response status.
    pub status: u16,
    /// What went wrong this time.
    pub detail: String,
    /// For `rate-limited`: the policies whose windows are full (`requests`, `admin`,
    /// `auth-failures`, `unknown-codes`, `passwords`).
    #[serde(rename = "violated-policies", skip_serializing_if = "Option::is_none")]
    pub violated_policies: Option<Vec<&'static str>>,
    /// The id of the request that got this answer, as in its `X-Request-Id` (the client's
    /// own, when it sent a sane one): quote it to the operator, whose log lines of that
    /// request carry it. A replayed idempotent answer names the request that first got it;
    /// a bulk create's items have none (the answer's header names the request).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, required = false, example = "3f2b8c0e9a7d4e61b5c2a8f0d1e9b7c4")]
    pub request_id: Option<RequestId>,
}

/// Builds the response for `slug`.
pub fn respond(slug: Slug, detail: impl Into<String>) -> HttpResponse {
    respond_with(slug, detail.into(), None)
}

/// Builds the response for `slug`; `limited` is the policy and the seconds to wait of a
/// `rate-limited` answer.
fn respond_with(slug: Slug, detail: String, limited: Option<(Policy, u32)>) -> HttpResponse {
    let status = slug.status();
    let mut res = HttpResponse::build(status);
    res.insert_header((
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    ));
    if slug == Slug::Unauthorized {
        res.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
    }
    if slug == Slug::ServiceUnavailable {
        res.insert_header((header::RETRY_AFTER, HeaderValue::from_static("1")));
    }
    if let Some((policy, retry_after)) = limited {
        res.insert_header((header::RETRY_AFTER, retry_after.to_string()));
        // For the metrics middleware, which counts 429s by policy.
        res.extensions_mut().insert(policy);
    }
    let body = Problem {
        violated_policies: limited.map(|(policy, _)| vec![policy.as_str()]),
        ..Problem::new(slug, detail)
    };
    // Serialising a struct of strings cannot fail; fall back to an empty object anyway.
    res.body(serde_json::to_string(&body).unwrap_or_else(|_| "{}".into()))
}

impl Problem {
    /// The document for `slug`, naming the current request (if any: outside one, such as
    /// `shortener import`, there is none to name).
    pub fn new(slug: Slug, detail: String) -> Problem {
        Problem {
            kind: format!("/problems/{}", slug.as_str()),
            title: slug.title(),
            status: slug.status().as_u16(),
            detail,
            violated_policies: None,
            request_id: RequestId::current(),
        }
    }

    /// The document for a use case's refusal, as its own response would carry it: a bulk
    /// item's, or one an idempotency key records.
    pub fn of(error: &AppError) -> Problem {
        let (slug, detail) = Error::App(error.clone()).problem();
        Problem::new(slug, detail)
    }
}

impl Error {
    /// The problem slug and detail for this error.
    pub fn problem(&self) -> (Slug, String) {
        match self {
            Error::App(e) => match e {
                AppError::Domain(DomainError::InvalidUrl(rule)) => {
                    (Slug::InvalidUrl, format!("url {rule}"))
                }
                AppError::Domain(DomainError::InvalidCode(rule)) => {
                    (Slug::InvalidCode, format!("code {rule}"))
                }
                AppError::Domain(other) => (Slug::Validation, other.to_string()),
                AppError::Validation(m) => (Slug::Validation, m.clone()),
                AppError::NotFound => (Slug::NotFound, "no such resource".into()),
                AppError::CodeTaken(code) => {
                    (Slug::CodeTaken, format!("code `{code}` is already taken"))
                }
                AppError::LinkExpired => (Slug::LinkExpired, "this link has expired".into()),
                AppError::VisitLimitReached => (Slug::LinkExpired, e.to_string()),
                AppError::Unauthorized => (Slug::Unauthorized, e.to_string()),
                AppError::Forbidden(m) => (Slug::Forbidden, m.clone()),
                AppError::QuotaExceeded(m) => (Slug::QuotaExceeded, m.clone()),
                AppError::RateLimited { .. } => (Slug::RateLimited, e.to_string()),
                AppError::SubscriptionInactive(m) => (Slug::SubscriptionInactive, m.clone()),
                AppError::InvalidTransition { .. } => (Slug::InvalidTransition, e.to_string()),
                AppError::VersionMismatch { .. } => (Slug::VersionMismatch, e.to_string()),
                AppError::IdempotencyConflict => (Slug::IdempotencyConflict, e.to_string()),
                AppError::IdempotencyInProgress => (Slug::IdempotencyInProgress, e.to_string()),
                AppError::Unavailable(_) => (
                    Slug::ServiceUnavailable,
                    "the database is not answering; retry shortly".into(),
                ),
                AppError::Internal { .. } => {
                    (Slug::Internal, "internal error; see the service log".into())
                }
            },
            Error::Validation(m) => (Slug::Validation, m.clone()),
            Error::PayloadTooLarge(limit) => (
                Slug::PayloadTooLarge,
                format!("request body is larger than {} KiB", limit / 1024),
            ),
            Error::RouteNotFound => (Slug::NotFound, "no such resource".into()),
            Error::MethodNotAllowed(_) => (
                Slug::MethodNotAllowed,
                "this path exists, but not with this method".into(),
            ),
        }
    }
}

impl ResponseError for Error {
    fn status_code(&self) -> StatusCode {
        self.problem().0.status()
    }

    fn error_response(&self) -> HttpResponse {
        let (slug, detail) = self.problem();
        // The one place a failed request's whole cause chain is logged, a line a second at
        // most per kind: an outage fails every redirect that misses the cache.
        static UNAVAILABLE: Throttle = Throttle::new();
        static INTERNAL: Throttle = Throttle::new();
        match slug {
            Slug::ServiceUnavailable => {
                if let Some(suppressed) = UNAVAILABLE.admit() {
                    tracing::warn!(error = %Chain(self), suppressed, "request failed: a dependency is unavailable");
                }
            }
            _ if slug.status().is_server_error() => {
                if let Some(suppressed) = INTERNAL.admit() {
                    tracing::error!(error = %Chain(self), suppressed, "request failed");
                }
            }
            _ => {}
        }
        let mut res = self.response(slug, detail);
        // RFC 9110: a 405 names the methods the path has.
        if let Error::MethodNotAllowed(allow) = self
            && let Ok(allow) = HeaderValue::from_str(allow)
        {
            res.headers_mut().insert(header::ALLOW, allow);
        }
        res
    }
}

impl Error {
    fn response(&self, slug: Slug, detail: String) -> HttpResponse {
        let limited = match self {
            Error::App(AppError::RateLimited {
                policy,
                retry_after_secs,
            }) => Some((*policy, *retry_after_secs)),
            _ => None,
        };
        respond_with(slug, detail, limited)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_unique_and_each_page_names_itself() {
        for (i, a) in Slug::ALL.iter().enumerate() {
            assert_eq!(Slug::from_str_opt(a.as_str()), Some(*a));
            for b in &Slug::ALL[i + 1..] {
                assert_ne!(a.as_str(), b.as_str());
            }
        }
    }

    #[test]
    fn a_stray_status_gets_its_generic_slug_never_a_specific_one() {
        for slug in Slug::ALL {
            let stray = Slug::for_stray(slug.status());
            assert!(stray.info().generic, "{slug:?} -> {stray:?}");
        }
        assert_eq!(Slug::for_stray(StatusCode::BAD_REQUEST), Slug::Validation);
        assert_eq!(Slug::for_stray(StatusCode::NOT_FOUND), Slug::NotFound);
        assert_eq!(Slug::for_stray(StatusCode::FORBIDDEN), Slug::Forbidden);
        assert_eq!(
            Slug::for_stray(StatusCode::PAYLOAD_TOO_LARGE),
            Slug::PayloadTooLarge
        );
        // No generic slug for these: a client's mistake or ours, never a specific one.
        assert_eq!(Slug::for_stray(StatusCode::CONFLICT), Slug::Validation);
        assert_eq!(Slug::for_stray(StatusCode::GONE), Slug::Validation);
        assert_eq!(Slug::for_stray(StatusCode::BAD_GATEWAY), Slug::Internal);
    }
}

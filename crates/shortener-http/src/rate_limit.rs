//! Rate limiting at the edge (`../shared/API.md`, "Rate limits"): where each policy
//! applies, and the IETF `RateLimit-Policy` / `RateLimit` fields.
//!
//! - `auth-failures` is checked by authentication, before the key is looked up (so a flood
//!   of bad keys costs the database nothing past the limit), and counted here on every 401;
//! - `requests` (account keys, `q` from the plan) and `admin` (admin keys) are the third
//!   step of the `/api` and `/admin` chain ([`limit`]), after authentication; every answer
//!   of those carries the key's fields;
//! - `unknown-codes` is asked by the redirect only on a cache miss (before the lookup) and
//!   counted on each 404 of `GET /{code}`: a found, cached code pays nothing;
//! - `passwords` is asked by `POST /{code}` of a password-protected link before the
//!   password is hashed, and counted on each wrong one: only wrong tries count, so a
//!   visitor who types the right password is never held back by it.
//!
//! Time is the app's clock, in whole-second slots, so tests move windows by moving it.

use std::net::IpAddr;
use std::sync::Arc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpRequest, ResponseError, web};
use shortener_app::{AddressLimiter, AppError, Clock, KeyLimiter, Principal};
use shortener_domain::LinkId;
use shortener_domain::rate::{ClientAddress, Decision, Limit, Policy};
use shortener_pg::PgStore;
use subscriptions::{PlanName, Plans};

use crate::auth::Authentication;
use crate::client_address::{Cidr, client_address};
use crate::config::RateLimits;
use crate::{Error, State};

/// Distinct addresses each per-address policy remembers, at most: a window holds at most
/// 61 slots of 16 bytes, so about 10 MB per policy in the worst case.
const ADDRESSES: usize = 10_000;

/// `RateLimit-Policy`.
pub const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
/// `RateLimit`.
pub const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");

/// Every policy's state in this instance.
pub struct Limits {
    keys: KeyLimiter<PgStore>,
    plans: Plans,
    admin: Option<Limit>,
    auth_failures: Option<AddressLimiter<ClientAddress>>,
    unknown_codes: Option<AddressLimiter<ClientAddress>>,
    /// Wrong passwords per address and link.
    passwords: Option<AddressLimiter<(ClientAddress, LinkId)>>,
    trusted_proxies: Vec<Cidr>,
    clock: Arc<dyn Clock>,
}

impl Limits {
    /// The configured policies; key budgets kept in `ledger`.
    pub fn new(
        settings: &RateLimits,
        plans: Plans,
        trusted_proxies: Vec<Cidr>,
        ledger: PgStore,
        clock: Arc<dyn Clock>,
    ) -> Limits {
        let per_address = |limit: Option<Limit>| limit.map(|l| AddressLimiter::new(l, ADDRESSES));
        Limits {
            keys: KeyLimiter::new(ledger),
            plans,
            admin: settings.admin,
            auth_failures: per_address(settings.auth_failures),
            unknown_codes: per_address(settings.unknown_codes),
            passwords: settings
                .password_tries
                .map(|l| AddressLimiter::new(l, ADDRESSES)),
            trusted_proxies,
            clock,
        }
    }

    /// The current slot: whole seconds since the Unix epoch.
    pub fn slot(&self) -> u64 {
        u64::try_from(self.clock.now().timestamp()).unwrap_or(0)
    }

    /// The client's address: the peer, or behind a trusted proxy the forwarded one.
    pub fn client_ip(&self, req: &HttpRequest) -> Option<IpAddr> {
        let forwarded: Vec<&str> = req
            .headers()
            .get_all("x-forwarded-for")
            .filter_map(|v| v.to_str().ok())
            .collect();
        client_address(
            req.peer_addr().map(|a| a.ip()),
            &forwarded,
            &self.trusted_proxies,
        )
    }

    fn client(&self, req: &HttpRequest) -> Option<ClientAddress> {
        self.client_ip(req).map(ClientAddress::new)
    }

    /// Authentication asks first: an address over `auth-failures` is refused before its
    /// key is looked up.
    pub fn refuse_authentication(&self, req: &HttpRequest) -> Option<AppError> {
        let (limiter, client) = (self.auth_failures.as_ref()?, self.client(req)?);
        let retry_after_secs = limiter.over(&client, self.slot())?;
        Some(AppError::RateLimited {
            policy: Policy::AuthFailures,
            retry_after_secs,
        })
    }

    /// A sign-in to the web interface with a wrong key counts as the 401 of an API call
    /// would (the API's are counted by [`limit`]).
    pub fn failed_authentication(&self, req: &HttpRequest) {
        if let (Some(limiter), Some(client)) = (&self.auth_failures, self.client(req)) {
            limiter.record(client, self.slot());
        }
    }

    /// The redirect asks on a cache miss: an address over `unknown-codes` costs no lookup.
    pub fn refuse_lookup(&self, ip: Option<IpAddr>) -> Result<(), AppError> {
        let (Some(limiter), Some(ip)) = (&self.unknown_codes, ip) else {
            return Ok(());
        };
        match limiter.over(&ClientAddress::new(ip), self.slot()) {
            Some(retry_after_secs) => Err(AppError::RateLimited {
                policy: Policy::UnknownCodes,
                retry_after_secs,
            }),
            None => Ok(()),
        }
    }

    /// Counts a 404 of `GET /{code}`; the error to answer: `not-found` within the limit,
    /// `rate-limited` past it.
    pub fn unknown_code(&self, ip: Option<IpAddr>) -> AppError {
        let (Some(limiter), Some(ip)) = (&self.unknown_codes, ip) else {
            return AppError::NotFound;
        };
        match limiter.check(ClientAddress::new(ip), self.slot()) {
            Decision::Admitted { .. } => AppError::NotFound,
            Decision::Limited { retry_after_secs } => AppError::RateLimited {
                policy: Policy::UnknownCodes,
                retry_after_secs,
            },
        }
    }

    /// `POST /{code}` asks before it checks a password: an address over `passwords` for
    /// this link is refused without a hash being computed. (An address that is not known,
    /// which only happens outside a real connection, is not limited.)
    pub fn refuse_password(&self, ip: Option<IpAddr>, link: LinkId) -> Result<(), AppError> {
        let (Some(limiter), Some(ip)) = (&self.passwords, ip) else {
            return Ok(());
        };
        match limiter.over(&(ClientAddress::new(ip), link), self.slot()) {
            Some(retry_after_secs) => Err(AppError::RateLimited {
                policy: Policy::Passwords,
                retry_after_secs,
            }),
            None => Ok(()),
        }
    }

    /// Counts a wrong password for `link` from `ip` toward `passwords`.
    pub fn wrong_password(&self, ip: Option<IpAddr>, link: LinkId) {
        if let (Some(limiter), Some(ip)) = (&self.passwords, ip) {
            limiter.record((ClientAddress::new(ip), link), self.slot());
        }
    }

    /// The `requests` limit of a plan.
    fn requests(&self, plan: PlanName) -> Option<Limit> {
        Limit::per_minute(self.plans.get(plan).requests_per_minute)
    }
}

/// The fields of one policy's state, for one answer.
struct Fields {
    policy: Policy,
    limit: Limit,
    remaining: u32,
    reset_secs: u32,
}

impl Fields {
    fn of(policy: Policy, limit: Limit, decision: Decision) -> Fields {
        let (remaining, reset_secs) = match decision {
            Decision::Admitted {
                remaining,
                reset_secs,
            } => (remaining, reset_secs),
            Decision::Limited { retry_after_secs } => (0, retry_after_secs),
        };
        Fields {
            policy,
            limit,
            remaining,
            reset_secs,
        }
    }

    /// Sets `RateLimit-Policy: "<name>";q=<q>;w=<w>` and `RateLimit: "<name>";r=<r>;t=<t>`
    /// (draft-ietf-httpapi-ratelimit-headers, structured fields).
    fn apply(&self, headers: &mut actix_web::http::header::HeaderMap) {
        let name = self.policy.as_str();
        let policy = format!("\"{name}\";q={};w={}", self.limit.q(), self.limit.w());
        let state = format!("\"{name}\";r={};t={}", self.remaining, self.reset_secs);
        // Policy names and numbers only: always valid header values.
        if let (Ok(p), Ok(s)) = (
            HeaderValue::from_str(&policy),
            HeaderValue::from_str(&state),
        ) {
            headers.insert(RATELIMIT_POLICY, p);
            headers.insert(RATELIMIT, s);
        }
    }
}

/// The third step of the `/api` and `/admin` chain: the key's policy (`requests` or
/// `admin`) lets the request through or answers 429; a request whose authentication
/// failed counts toward its address's `auth-failures` when it ends in 401, or is refused
/// here when authentication already found the address over that limit. Every answer
/// carries the fields of the policy that applied.
pub async fn limit(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<State>>().cloned() else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    let limits = &state.limits;
    let authentication = req
        .extensions()
        .get::<Authentication>()
        .map(|a| a.0.clone());
    let key = match authentication {
        Some(Ok(Principal::Account { key_id, plan, .. })) => {
            limits.requests(plan).map(|l| (Policy::Requests, key_id, l))
        }
        Some(Ok(Principal::Admin { key_id })) => limits.admin.map(|l| (Policy::Admin, key_id, l)),
        Some(Err(AppError::RateLimited {
            policy,
            retry_after_secs,
        })) => {
            let limit = limits.auth_failures.as_ref().map(AddressLimiter::limit);
            let fields =
                limit.map(|l| Fields::of(policy, l, Decision::Limited { retry_after_secs }));
            return Ok(refuse(req, policy, retry_after_secs, fields));
        }
        _ => {
            // Not authenticated (or the database is away): the handler answers; a 401
            // counts toward the address's failures, whose state the answer carries.
            let client = limits.client(req.request());
            let mut res = next.call(req).await?;
            if res.status() == StatusCode::UNAUTHORIZED
                && let (Some(limiter), Some(client)) = (&limits.auth_failures, client)
            {
                let decision = limiter.check(client, limits.slot());
                Fields::of(Policy::AuthFailures, limiter.limit(), decision)
                    .apply(res.headers_mut());
            }
            return Ok(res.map_into_left_body());
        }
    };
    let Some((policy, key_id, limit)) = key else {
        // The policy is off (0): nothing to count, no fields.
        return Ok(next.call(req).await?.map_into_left_body());
    };
    let decision = limits
        .keys
        .admit(policy, key_id.as_uuid(), limit, limits.slot())
        .await;
    let fields = Fields::of(policy, limit, decision);
    if let Decision::Limited { retry_after_secs } = decision {
        return Ok(refuse(req, policy, retry_after_secs, Some(fields)));
    }
    let mut res = next.call(req).await?;
    fields.apply(res.headers_mut());
    Ok(res.map_into_left_body())
}

/// The 429 of `policy`, without calling the handler.
fn refuse<B>(
    req: ServiceRequest,
    policy: Policy,
    retry_after_secs: u32,
    fields: Option<Fields>,
) -> ServiceResponse<EitherBody<B>> {
    let mut answer = Error::from(AppError::RateLimited {
        policy,
        retry_after_secs,
    })
    .error_response();
    if let Some(fields) = fields {
        fields.apply(answer.headers_mut());
    }
    req.into_response(answer).map_into_right_body()
}

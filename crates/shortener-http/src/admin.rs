//! `/admin/v1`: accounts, their keys and their subscriptions.

use actix_web::HttpRequest;
use actix_web::http::header;
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use shortener_app::AccountView;
use shortener_domain::AccountId;
use subscriptions::{PlanName, State as SubState, Subscription, Transition, Versioned};
use uuid::Uuid;

use crate::auth::AdminCaller;
use crate::extract::{Body, Query, path_id};
use crate::page::{PageDto, PageQuery};
use crate::{Error, State};

/// A subscription on the wire: tagged by `state`, each state with only its own fields.
#[derive(Debug, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum SubscriptionDto {
    /// In trial.
    Trial {
        /// Trial end.
        expires_at: DateTime<Utc>,
        /// Optimistic-concurrency version.
        version: i64,
    },
    /// Paid.
    Active {
        /// Plan name.
        plan: String,
        /// Period end.
        renews_at: DateTime<Utc>,
        /// Optimistic-concurrency version.
        version: i64,
    },
    /// Ran out.
    Expired {
        /// When.
        expired_at: DateTime<Utc>,
        /// Optimistic-concurrency version.
        version: i64,
    },
    /// Ended by an operator.
    Cancelled {
        /// When.
        cancelled_at: DateTime<Utc>,
        /// Why.
        reason: String,
        /// Optimistic-concurrency version.
        version: i64,
    },
}

impl SubscriptionDto {
    fn new(s: subscriptions::Versioned) -> SubscriptionDto {
        let version = s.version;
        match s.subscription {
            Subscription::Trial { expires_at } => SubscriptionDto::Trial {
                expires_at,
                version,
            },
            Subscription::Active { plan, renews_at } => SubscriptionDto::Active {
                plan: plan.to_string(),
                renews_at,
                version,
            },
            Subscription::Expired { expired_at } => SubscriptionDto::Expired {
                expired_at,
                version,
            },
            Subscription::Cancelled {
                cancelled_at,
                reason,
            } => SubscriptionDto::Cancelled {
                cancelled_at,
                reason,
                version,
            },
        }
    }
}

#[derive(Debug, Serialize)]
struct AccountDto {
    id: Uuid,
    name: String,
    created_at: DateTime<Utc>,
    subscription: SubscriptionDto,
}

impl From<AccountView> for AccountDto {
    fn from(v: AccountView) -> Self {
        AccountDto {
            id: v.account.id.as_uuid(),
            name: v.account.name.to_string(),
            created_at: v.account.created_at,
            subscription: SubscriptionDto::new(v.subscription),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateAccount {
    name: String,
}

#[derive(Debug, Serialize)]
struct KeyDto {
    id: Uuid,
    key: String,
    prefix: String,
    created_at: DateTime<Utc>,
}

async fn create_account(
    state: web::Data<State>,
    admin: AdminCaller,
    body: Body<CreateAccount>,
) -> Result<HttpResponse, Error> {
    let view = state.accounts.create(admin.key_id, &body.name).await?;
    tracing::info!(admin_key = %admin.key_id, account = %view.account.id, "account created");
    Ok(HttpResponse::Created()
        .insert_header((
            header::LOCATION,
            format!("/admin/v1/accounts/{}", view.account.id),
        ))
        .json(AccountDto::from(view)))
}

async fn list_accounts(
    state: web::Data<State>,
    _admin: AdminCaller,
    query: Query<PageQuery>,
) -> Result<HttpResponse, Error> {
    let page = state.accounts.list(query.to_request()?).await?;
    Ok(HttpResponse::Ok().json(PageDto::new(page, AccountDto::from)))
}

async fn get_account(
    state: web::Data<State>,
    _admin: AdminCaller,
    id: web::Path<String>,
) -> Result<HttpResponse, Error> {
    let view = state.accounts.get(path_id(&id)?).await?;
    Ok(HttpResponse::Ok().json(AccountDto::from(view)))
}

async fn create_key(
    state: web::Data<State>,
    admin: AdminCaller,
    id: web::Path<String>,
) -> Result<HttpResponse, Error> {
    let key = state
        .accounts
        .create_key(admin.key_id, path_id(&id)?)
        .await?;
    tracing::info!(admin_key = %admin.key_id, account = %id, key = %key.id, "key created");
    Ok(HttpResponse::Created()
        // The one and only time the key is shown: keep it out of every cache.
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(KeyDto {
            id: key.id.as_uuid(),
            key: key.plaintext,
            prefix: key.prefix,
            created_at: key.created_at,
        }))
}

async fn revoke_key(
    state: web::Data<State>,
    admin: AdminCaller,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, Error> {
    let (account, key) = path.into_inner();
    state
        .accounts
        .revoke_key(admin.key_id, path_id(&account)?, path_id(&key)?)
        .await?;
    tracing::info!(admin_key = %admin.key_id, %account, %key, "key revoked");
    Ok(HttpResponse::NoContent().finish())
}

/// `If-Match: "<version>"` (the ETag we send), or `*` / absent for "whatever is current".
fn if_match(req: &HttpRequest) -> Result<Option<i64>, Error> {
    let Some(value) = req.headers().get(header::IF_MATCH) else {
        return Ok(None);
    };
    let bad = || Error::Validation("If-Match must be a version in quotes, like \"3\"".into());
    let value = value.to_str().map_err(|_| bad())?.trim();
    if value == "*" {
        return Ok(None);
    }
    value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .and_then(|v| v.parse::<i64>().ok())
        .filter(|v| *v >= 1)
        .map(Some)
        .ok_or_else(bad)
}

fn subscription_response(status: actix_web::http::StatusCode, v: Versioned) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::ETAG, format!("\"{}\"", v.version)))
        .json(SubscriptionDto::new(v))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ActivateBody {
    plan: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CancelBody {
    reason: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EmptyBody {}

async fn get_subscription(
    state: web::Data<State>,
    _admin: AdminCaller,
    id: web::Path<String>,
) -> Result<HttpResponse, Error> {
    let v = state.subscriptions.get(path_id(&id)?).await?;
    Ok(subscription_response(actix_web::http::StatusCode::OK, v))
}

async fn transition(
    state: &State,
    admin: &AdminCaller,
    req: &HttpRequest,
    id: &str,
    transition: Transition,
) -> Result<HttpResponse, Error> {
    let account: AccountId = path_id(id)?;
    let expected = if_match(req)?;
    let name = transition.name();
    let v = state
        .subscriptions
        .transition(admin.key_id, account, transition, expected)
        .await?;
    tracing::info!(admin_key = %admin.key_id, %account, transition = name, version = v.version, "subscription transition");
    Ok(subscription_response(actix_web::http::StatusCode::OK, v))
}

async fn activate(
    state: web::Data<State>,
    admin: AdminCaller,
    req: HttpRequest,
    id: web::Path<String>,
    body: Body<ActivateBody>,
) -> Result<HttpResponse, Error> {
    let plan: PlanName = body
        .plan
        .parse()
        .map_err(|e: subscriptions::SubscriptionError| Error::Validation(e.to_string()))?;
    transition(&state, &admin, &req, &id, Transition::Activate(plan)).await
}

async fn renew(
    state: web::Data<State>,
    admin: AdminCaller,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, Error> {
    // Renew takes no options: no body, or `{}`. Anything else is refused, not ignored.
    if !body.trim_ascii().is_empty() {
        let value = serde_json::from_slice(&body)
            .map_err(|e| Error::Validation(format!("renew takes no fields: {e}")))?;
        crate::extract::from_object::<EmptyBody>(value)?;
    }
    transition(&state, &admin, &req, &id, Transition::Renew).await
}

async fn cancel(
    state: web::Data<State>,
    admin: AdminCaller,
    req: HttpRequest,
    id: web::Path<String>,
    body: Body<CancelBody>,
) -> Result<HttpResponse, Error> {
    let reason = body.into_inner().reason;
    transition(&state, &admin, &req, &id, Transition::Cancel(reason)).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SubscriptionQuery {
    state: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

#[derive(Debug, Serialize)]
struct SubscriptionItem {
    account_id: Uuid,
    #[serde(flatten)]
    subscription: SubscriptionDto,
}

async fn list_subscriptions(
    state: web::Data<State>,
    _admin: AdminCaller,
    query: Query<SubscriptionQuery>,
) -> Result<HttpResponse, Error> {
    let q = query.into_inner();
    let filter = q
        .state
        .as_deref()
        .map(str::parse::<SubState>)
        .transpose()
        .map_err(|e| Error::Validation(e.to_string()))?;
    let page = PageQuery {
        limit: q.limit,
        cursor: q.cursor,
    }
    .to_request()?;
    let page = state.subscriptions.list(filter, page).await?;
    Ok(
        HttpResponse::Ok().json(PageDto::new(page, |(account, v)| SubscriptionItem {
            account_id: account.as_uuid(),
            subscription: SubscriptionDto::new(v),
        })),
    )
}

/// The admin routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/accounts")
            .route(web::post().to(create_account))
            .route(web::get().to(list_accounts)),
    )
    .service(web::resource("/accounts/{id}").route(web::get().to(get_account)))
    .service(web::resource("/accounts/{id}/keys").route(web::post().to(create_key)))
    .service(web::resource("/accounts/{id}/keys/{key_id}").route(web::delete().to(revoke_key)))
    .service(web::resource("/accounts/{id}/subscription").route(web::get().to(get_subscription)))
    .service(web::resource("/accounts/{id}/subscription/activate").route(web::post().to(activate)))
    .service(web::resource("/accounts/{id}/subscription/renew").route(web::post().to(renew)))
    .service(web::resource("/accounts/{id}/subscription/cancel").route(web::post().to(cancel)))
    .service(web::resource("/subscriptions").route(web::get().to(list_subscriptions)));
}

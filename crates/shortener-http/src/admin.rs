//! `/admin/v1`: accounts, their keys and their subscriptions.

use actix_web::HttpRequest;
use actix_web::http::header;
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use shortener_app::{AccountView, NameSearch, StoredKey};
use shortener_domain::AccountId;
use subscriptions::{PlanName, State as SubState, Subscription, Transition, Versioned};
use uuid::Uuid;

use utoipa::{IntoParams, ToSchema};

use crate::auth::AdminCaller;
use crate::extract::{Body, Query, path_id};
use crate::openapi::Operations;
use crate::page::{PageDto, PageQuery};
use crate::problem::Slug;
use crate::{Error, State};

/// A subscription on the wire: tagged by `state`, each state with only its own fields.
#[derive(Debug, Serialize, ToSchema)]
#[serde(tag = "state", rename_all = "snake_case")]
#[schema(as = Subscription, example = json!({"state": "active", "plan": "pro",
    "renews_at": "2026-12-22T10:00:00Z", "version": 2}))]
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

/// An account and its subscription.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Account, example = json!({"id": "019ab2c4-5d6e-7f80-9a1b-2c3d4e5f6a7b",
    "name": "Acme", "created_at": "2026-11-22T10:00:00Z",
    "subscription": {"state": "trial", "expires_at": "2026-12-06T10:00:00Z", "version": 1}}))]
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

/// A new account.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NewAccount, example = json!({"name": "Acme"}))]
struct CreateAccount {
    name: String,
}

/// A new account key: `key` is shown this once (it is stored hashed).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = NewKey, example = json!({"id": "019ab2c4-5d6e-7f80-9a1b-2c3d4e5f6a7c",
    "key": "shk_3hT9...", "prefix": "shk_3hT9", "created_at": "2026-11-22T10:00:00Z"}))]
struct KeyDto {
    id: Uuid,
    key: String,
    prefix: String,
    created_at: DateTime<Utc>,
}

/// One of an account's keys as listed: the prefix tells it apart, never the key or its
/// hash.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Key, example = json!({"id": "019ab2c4-5d6e-7f80-9a1b-2c3d4e5f6a7c",
    "prefix": "shk_3hT9", "created_at": "2026-11-22T10:00:00Z",
    "revoked_at": "2026-11-30T08:00:00Z"}))]
struct KeyItem {
    id: Uuid,
    prefix: String,
    created_at: DateTime<Utc>,
    /// When it stopped working; `null` while it works.
    #[schema(required = true)]
    revoked_at: Option<DateTime<Utc>>,
}

impl From<StoredKey> for KeyItem {
    fn from(k: StoredKey) -> Self {
        KeyItem {
            id: k.id.as_uuid(),
            prefix: k.prefix(),
            created_at: k.created_at,
            revoked_at: k.revoked_at,
        }
    }
}

/// An account's keys, newest first (not paged: an account has few).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = KeyList)]
struct KeyList {
    items: Vec<KeyItem>,
}

/// `?q=&limit=&cursor=`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct AccountQuery {
    /// Only accounts whose name contains this text, ignoring letter case (a plain
    /// substring: `%`, `_` and `\` match themselves). Trimmed, then 1 to 100 characters.
    #[param(min_length = 1, max_length = 100)]
    q: Option<String>,
    /// Page size.
    #[param(minimum = 1, maximum = 500, default = 50)]
    limit: Option<u32>,
    /// The previous page's `next_cursor`, as it was (opaque). Send the same `q` with it:
    /// the cursor holds only a position in the list.
    #[param(min_length = 1, pattern = "^[A-Za-z0-9_-]+$")]
    cursor: Option<String>,
}

/// Creates an account; it starts in a trial.
#[utoipa::path(
    post,
    path = "/admin/v1/accounts",
    tag = "accounts",
    request_body = CreateAccount,
    responses((status = 201, description = "Created.", body = AccountDto,
        headers(("Location" = String, description = "`/admin/v1/accounts/{id}`")))),
)]
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

/// Every account, oldest first; with `q`, only those whose name contains it.
#[utoipa::path(
    get,
    path = "/admin/v1/accounts",
    tag = "accounts",
    params(AccountQuery),
    responses((status = 200, description = "A page of accounts.", body = PageDto<AccountDto>)),
)]
async fn list_accounts(
    state: web::Data<State>,
    _admin: AdminCaller,
    query: Query<AccountQuery>,
) -> Result<HttpResponse, Error> {
    let q = query.into_inner();
    let name = q.q.as_deref().map(NameSearch::parse).transpose()?;
    let page = PageQuery {
        limit: q.limit,
        cursor: q.cursor,
    }
    .to_request()?;
    let page = state.accounts.list(name.as_ref(), page).await?;
    Ok(HttpResponse::Ok().json(PageDto::new(page, AccountDto::from)))
}

/// One account.
#[utoipa::path(
    get,
    path = "/admin/v1/accounts/{id}",
    tag = "accounts",
    params(("id" = Uuid, Path, description = "The account's id.")),
    responses((status = 200, description = "The account.", body = AccountDto)),
)]
async fn get_account(
    state: web::Data<State>,
    _admin: AdminCaller,
    id: web::Path<String>,
) -> Result<HttpResponse, Error> {
    let view = state.accounts.get(path_id(&id)?).await?;
    Ok(HttpResponse::Ok().json(AccountDto::from(view)))
}

/// Makes a key for the account. The key is in this answer only.
#[utoipa::path(
    post,
    path = "/admin/v1/accounts/{id}/keys",
    tag = "accounts",
    params(("id" = Uuid, Path, description = "The account's id.")),
    responses((status = 201, description = "Created; kept out of caches.", body = KeyDto,
        headers(("Cache-Control" = String, description = "`no-store`")))),
)]
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

/// The account's keys, newest first, revoked ones included: never the keys themselves.
#[utoipa::path(
    get,
    path = "/admin/v1/accounts/{id}/keys",
    tag = "accounts",
    params(("id" = Uuid, Path, description = "The account's id.")),
    responses((status = 200, description = "The account's keys.", body = KeyList)),
)]
async fn list_keys(
    state: web::Data<State>,
    _admin: AdminCaller,
    id: web::Path<String>,
) -> Result<HttpResponse, Error> {
    let keys = state.accounts.keys(path_id(&id)?).await?;
    Ok(HttpResponse::Ok().json(KeyList {
        items: keys.into_iter().map(KeyItem::from).collect(),
    }))
}

/// Revokes a key: it stops working at once.
#[utoipa::path(
    delete,
    path = "/admin/v1/accounts/{id}/keys/{key_id}",
    tag = "accounts",
    params(("id" = Uuid, Path, description = "The account's id."),
        ("key_id" = Uuid, Path, description = "The key's id.")),
    responses((status = 204, description = "Revoked (also when it already was).")),
)]
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

/// Trial to active on a paid plan.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Activation, example = json!({"plan": "pro"}))]
struct ActivateBody {
    /// A paid plan.
    #[schema(pattern = "^(pro|business)$", example = "pro")]
    plan: String,
}

/// Trial or active to cancelled.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Cancellation, example = json!({"reason": "customer asked"}))]
struct CancelBody {
    #[schema(min_length = 1, max_length = 500)]
    reason: String,
}

/// No options: an empty object, `null`, or no body at all.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Renewal)]
struct EmptyBody {}

/// The account's subscription, as of now.
#[utoipa::path(
    get,
    path = "/admin/v1/accounts/{id}/subscription",
    tag = "subscriptions",
    params(("id" = Uuid, Path, description = "The account's id.")),
    responses((status = 200, description = "The subscription.", body = SubscriptionDto,
        headers(("ETag" = String, description = "`\"<version>\"`, for `If-Match`")))),
)]
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

/// Trial to active on a paid plan; `renews_at` is now plus the plan's period.
#[utoipa::path(
    post,
    path = "/admin/v1/accounts/{id}/subscription/activate",
    tag = "subscriptions",
    params(("id" = Uuid, Path, description = "The account's id."),
        ("If-Match" = Option<String>, Header, pattern = r#"^("[1-9][0-9]{0,17}"|\*)$"#, description = "`\"<version>\"`: change only this version (412 otherwise); `*` or absent: whatever is current.")),
    request_body = ActivateBody,
    responses((status = 200, description = "The changed subscription.", body = SubscriptionDto,
        headers(("ETag" = String, description = "`\"<version>\"`")))),
)]
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

/// Active to active, `renews_at` one period on.
#[utoipa::path(
    post,
    path = "/admin/v1/accounts/{id}/subscription/renew",
    tag = "subscriptions",
    params(("id" = Uuid, Path, description = "The account's id."),
        ("If-Match" = Option<String>, Header, pattern = r#"^("[1-9][0-9]{0,17}"|\*)$"#, description = "`\"<version>\"`: change only this version (412 otherwise); `*` or absent: whatever is current.")),
    request_body = Option<EmptyBody>,
    responses((status = 200, description = "The changed subscription.", body = SubscriptionDto,
        headers(("ETag" = String, description = "`\"<version>\"`")))),
)]
async fn renew(
    state: web::Data<State>,
    admin: AdminCaller,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, Error> {
    // Renew takes no options: no body, `{}` or `null` (the document's optional body).
    // Anything else is refused, not ignored.
    if !body.trim_ascii().is_empty() {
        let value: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| Error::Validation(format!("renew takes no fields: {e}")))?;
        if !value.is_null() {
            crate::extract::from_object::<EmptyBody>(value)?;
        }
    }
    transition(&state, &admin, &req, &id, Transition::Renew).await
}

/// Trial or active to cancelled.
#[utoipa::path(
    post,
    path = "/admin/v1/accounts/{id}/subscription/cancel",
    tag = "subscriptions",
    params(("id" = Uuid, Path, description = "The account's id."),
        ("If-Match" = Option<String>, Header, pattern = r#"^("[1-9][0-9]{0,17}"|\*)$"#, description = "`\"<version>\"`: change only this version (412 otherwise); `*` or absent: whatever is current.")),
    request_body = CancelBody,
    responses((status = 200, description = "The changed subscription.", body = SubscriptionDto,
        headers(("ETag" = String, description = "`\"<version>\"`")))),
)]
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

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct SubscriptionQuery {
    /// Only subscriptions in this state (as of now: a trial past its end is `expired`).
    #[param(pattern = "^(trial|active|expired|cancelled)$")]
    state: Option<String>,
    /// Page size.
    #[param(minimum = 1, maximum = 500, default = 50)]
    limit: Option<u32>,
    /// The previous page's `next_cursor`, as it was (opaque).
    #[param(min_length = 1, pattern = "^[A-Za-z0-9_-]+$")]
    cursor: Option<String>,
}

/// A subscription with its account.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = AccountSubscription)]
struct SubscriptionItem {
    account_id: Uuid,
    #[serde(flatten)]
    subscription: SubscriptionDto,
}

/// Every subscription, optionally in its effective state, by account (oldest first).
#[utoipa::path(
    get,
    path = "/admin/v1/subscriptions",
    tag = "subscriptions",
    params(SubscriptionQuery),
    responses((status = 200, description = "A page of subscriptions.", body = PageDto<SubscriptionItem>)),
)]
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

/// The admin routes, with the problems each handler can answer besides those every
/// `/admin` operation can (see [`Operations::add`]).
pub fn routes(ops: &mut Operations) {
    use Slug::*;
    let transition = [
        Validation,
        PayloadTooLarge,
        NotFound,
        InvalidTransition,
        VersionMismatch,
    ];
    ops.add(
        __path_create_account,
        create_account,
        &[Validation, PayloadTooLarge],
    )
    .add(__path_list_accounts, list_accounts, &[Validation])
    .add(__path_get_account, get_account, &[NotFound])
    .add(__path_list_keys, list_keys, &[NotFound])
    .add(__path_create_key, create_key, &[NotFound])
    .add(__path_revoke_key, revoke_key, &[NotFound])
    .add(__path_get_subscription, get_subscription, &[NotFound])
    .add(__path_activate, activate, &transition)
    .add(__path_renew, renew, &transition)
    .add(__path_cancel, cancel, &transition)
    .add(__path_list_subscriptions, list_subscriptions, &[Validation]);
}

//! `/admin/v1`: accounts and their keys.

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use shortener_app::AccountView;
use subscriptions::Subscription;
use uuid::Uuid;

use crate::extract::{AdminCaller, PageQuery, encode_cursor, path_id};
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

#[derive(Debug, Serialize)]
struct AccountPage {
    items: Vec<AccountDto>,
    next_cursor: Option<String>,
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
    body: web::Json<CreateAccount>,
) -> Result<HttpResponse, Error> {
    let view = state.accounts.create(&body.name).await?;
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
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, Error> {
    let page = state.accounts.list(query.to_request()?).await?;
    Ok(HttpResponse::Ok().json(AccountPage {
        items: page.items.into_iter().map(AccountDto::from).collect(),
        next_cursor: page.next.map(encode_cursor),
    }))
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
    let key = state.accounts.create_key(path_id(&id)?).await?;
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
        .revoke_key(path_id(&account)?, path_id(&key)?)
        .await?;
    tracing::info!(admin_key = %admin.key_id, %account, %key, "key revoked");
    Ok(HttpResponse::NoContent().finish())
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
    .service(web::resource("/accounts/{id}/keys/{key_id}").route(web::delete().to(revoke_key)));
}

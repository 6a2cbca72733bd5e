//! Wiring: the one place where concrete adapters meet the use cases and the routes.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::middleware::{DefaultHeaders, ErrorHandlers, from_fn};
use actix_web::{App, HttpServer, Scope, web};
use secrecy::ExposeSecret;
use shortener_app::metrics::{self as instruments, Meter};
use shortener_app::{
    AccountService, AuditService, Authenticator, Chain, Classifier, ClickCounter, ClickSettings,
    Clock, KEEP_KEYS, LinkService, Passwords, Redirects, ResolveCache, Sessions,
    SubscriptionService,
};
use shortener_domain::UrlPolicy;
use shortener_pg::{Db, PgStore, PoolSettings, Replicas};
use url::Url;

use crate::config::{MetricsEndpoint, Settings};
use crate::metrics::{Exposition, Observe, Registry};
use crate::openapi::{self, Operations, Part, Routes};
use crate::problem::Slug;
use crate::rate_limit::{self, Limits};
use crate::redirect::{self, Redirector};
use crate::request_id::RequestIds;
use crate::request_span::RequestSpan;
use crate::{
    ProcessError, admin, audit_log, auth, bulk, export, extract, geoip, links, metrics, ops, qr, ui,
};

/// What every handler shares. Built once at start.
pub struct State {
    /// Link use cases.
    pub links: LinkService<PgStore>,
    /// Account and key administration.
    pub accounts: AccountService<PgStore>,
    /// Subscription administration.
    pub subscriptions: SubscriptionService<PgStore>,
    /// Bearer-key authentication.
    pub auth: Authenticator<PgStore>,
    /// Audit log queries.
    pub audit: AuditService<PgStore>,
    /// The shared pool: readiness, audit partition upkeep.
    pub db: Db,
    /// The read replicas, if any: readiness while the primary is away.
    pub replicas: Option<Replicas>,
    /// Public base URL without a trailing slash.
    pub public_base: String,
    /// Rate-limit policies (also held by each worker's [`Redirector`]).
    pub limits: Arc<Limits>,
    /// The web interface's sessions.
    pub sessions: Sessions<PgStore>,
    /// Whether the public URL is https: then the web interface's cookies are `Secure`.
    pub https: bool,
}

impl State {
    /// The short URL of `code`.
    pub fn short_url(&self, code: &str) -> String {
        format!("{}/{code}", self.public_base)
    }
}

/// A started server: its address, and the future that runs it until shutdown.
pub struct Running {
    /// The bound address (useful with port 0).
    pub addr: SocketAddr,
    /// Resolves when the server has stopped (SIGINT/SIGTERM or a stop via its handle).
    pub server: Server,
    /// The expiry sweep, audit-partition upkeep and the cache's invalidation listener, run
    /// as one task; they stop when this is dropped.
    pub background: Background,
    /// The click counter: after the server has stopped, `shutdown` writes every click.
    pub clicks: ClickCounter,
    /// The metrics listener (`metrics.listen`), if any: its address, and it stops when
    /// this is dropped.
    pub metrics: Option<MetricsListener>,
}

/// The listener that serves only `/metrics`, stopped when its owner lets go of it.
pub struct MetricsListener {
    /// The bound address.
    pub addr: SocketAddr,
    handle: actix_web::dev::ServerHandle,
}

impl Drop for MetricsListener {
    fn drop(&mut self) {
        // Sends the stop at once; nothing needs to wait for it.
        drop(self.handle.stop(false));
    }
}

/// A background task that is cancelled when its owner lets go of it.
pub struct Background(tokio::task::JoinHandle<()>);

impl Drop for Background {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Keeps audit partitions ready for this month and the next two: at start, then daily,
/// retrying every minute while the database cannot be reached (the service still starts).
async fn keep_audit_partitions(db: Db, clock: Arc<dyn Clock>) {
    loop {
        let today = clock.now().date_naive();
        let wait = match db.ensure_audit_partitions(today, 3).await {
            Ok(created) => {
                if created > 0 {
                    tracing::info!(created, "audit partitions created ahead");
                }
                std::time::Duration::from_secs(24 * 60 * 60)
            }
            Err(e) => {
                tracing::warn!(error = %Chain(&e), "could not prepare audit partitions; retrying");
                std::time::Duration::from_secs(60)
            }
        };
        tokio::time::sleep(wait).await;
    }
}

/// Expiries written per query; the sweep loops until a batch comes back short.
const SWEEP_BATCH: u32 = 500;

/// Writes down due expiries every `every`, so the audit trail records them close to when
/// they happened. Reads never wait for this: they compute the effective state themselves.
/// Several instances may sweep at once; conditional writes make each expiry happen once.
/// The same tick prunes idempotency keys older than [`KEEP_KEYS`], expired web sessions
/// and visit days past the retention, and caps the visit days two days old ([`compact_visit_days`]).
async fn sweep_expiries(
    state: web::Data<State>,
    clock: Arc<dyn Clock>,
    every: std::time::Duration,
    retention: std::time::Duration,
    meter: Meter,
) {
    let expired = meter.counter(&instruments::EXPIRIES, &[]);
    let failures = meter.counter(&instruments::SWEEP_FAILURES, &[]);
    let last_success = meter.gauge(&instruments::SWEEP_LAST_SUCCESS, &[]);
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        loop {
            match state.subscriptions.expire_due(SWEEP_BATCH).await {
                Ok(n) => {
                    expired.increment(n as u64);
                    if n < SWEEP_BATCH as usize {
                        last_success.set(clock.now().timestamp() as f64);
                        break;
                    }
                }
                Err(e) => {
                    failures.increment(1);
                    tracing::warn!(error = %Chain(&e), "expiry sweep failed; retrying next tick");
                    break;
                }
            }
        }
        prune_idempotency_keys(&state.db, clock.now() - KEEP_KEYS).await;
        if let Some(first_kept) = first_day_kept(clock.now(), retention) {
            prune_visits(&state.db, first_kept).await;
        }
        if let Some(last) = last_day_capped(clock.now()) {
            compact_visit_days(&state.db, last).await;
        }
        if let Err(e) = state.sessions.prune().await {
            tracing::warn!(error = %Chain(&e), "pruning expired web sessions failed; retrying next tick");
        }
    }
}

/// The last day whose visit rows are capped at `now` (migration `000019`): two days
/// before today (UTC), so a day is capped once its clicks have long been folded (a late
/// fold is capped again on a later tick).
pub fn last_day_capped(now: chrono::DateTime<chrono::Utc>) -> Option<chrono::NaiveDate> {
    now.date_naive().checked_sub_days(chrono::Days::new(2))
}

/// (link, day) pairs capped per statement: a pair is at most a few hundred rows on most
/// links, a few thousand on the busiest.
const CAP_BATCH: u32 = 50;

/// Caps the queued visit days up to `last_day`, [`CAP_BATCH`] pairs a statement, until
/// none is due; a failure is logged and left for the next tick. Returns the pairs capped.
pub async fn compact_visit_days(db: &Db, last_day: chrono::NaiveDate) -> usize {
    in_batches("visit day cap", CAP_BATCH, |limit| {
        db.compact_visit_days(last_day, limit)
    })
    .await
}

/// The first day whose visit rows `retention` keeps at `now`: whole days, today counted.
pub fn first_day_kept(
    now: chrono::DateTime<chrono::Utc>,
    retention: std::time::Duration,
) -> Option<chrono::NaiveDate> {
    let days = retention.as_secs() / 86_400;
    now.date_naive()
        .checked_sub_days(chrono::Days::new(days.saturating_sub(1)))
}

/// Deletes visit rows of days before `before`, [`SWEEP_BATCH`] a statement.
pub async fn prune_visits(db: &Db, before: chrono::NaiveDate) -> usize {
    in_batches("visit retention prune", SWEEP_BATCH, |limit| {
        db.prune_visits(before, limit)
    })
    .await
}

/// Deletes the idempotency keys recorded before `before`, [`SWEEP_BATCH`] a statement.
pub async fn prune_idempotency_keys(db: &Db, before: chrono::DateTime<chrono::Utc>) -> usize {
    in_batches("idempotency key prune", SWEEP_BATCH, |limit| {
        db.prune_idempotency_keys(before, limit)
    })
    .await
}

/// Runs `step` (`batch` rows a statement) until it comes back short, so a prune or a cap
/// holds few rows at a time however many are due; several instances may run it at once
/// (a row is deleted once, a queued day capped by one). A failure is logged and left for
/// the next tick. Returns the rows (or days) done.
async fn in_batches<F>(what: &str, batch: u32, step: impl Fn(u32) -> F) -> usize
where
    F: std::future::Future<Output = Result<usize, shortener_pg::PgError>>,
{
    let mut done = 0;
    loop {
        match step(batch).await {
            Ok(n) => {
                done += n;
                if n < batch as usize {
                    return done;
                }
            }
            Err(e) => {
                let e = shortener_app::AppError::from(e);
                tracing::warn!(error = %Chain(&e), "{what} failed; retrying next tick");
                return done;
            }
        }
    }
}

/// The middleware chain of `/api` and `/admin`, outermost first: the request span (method
/// and route; the request id is the App's, outside this), then authentication, then rate
/// limiting, then the handler. `wrap` puts each layer outside those before it, so they
/// are listed here innermost first. Redirects get none of it: with the default `info`
/// filter the span alone cost a third of the cached redirect rate (measured with wrk).
fn api_chain(
    scope: Scope,
) -> Scope<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    scope
        .wrap(from_fn(rate_limit::limit))
        .wrap(from_fn(auth::authenticate))
        .wrap(RequestSpan)
}

/// What each part of the service serves: routing (below) and the OpenAPI document
/// ([`openapi::document`]) are both made from these tables.
pub const PARTS: &[(Part, Routes)] = &[
    (Part::Public, public_routes),
    (Part::Account, api_routes),
    (Part::Admin, admin_routes),
];

/// No chain: health, problem pages, the document, and the redirect (the default service,
/// documented here but routed by `default_service` below).
fn public_routes(ops: &mut Operations) {
    ops::routes(ops);
    metrics::routes(ops);
    openapi::routes(ops);
    ops.document_default_service(
        redirect::__path_redirect_or_not_found,
        &[
            Slug::NotFound,
            Slug::LinkExpired,
            Slug::RateLimited,
            Slug::ServiceUnavailable,
            Slug::Internal,
        ],
    )
    .document_default_service(
        redirect::__path_unlock,
        &[
            Slug::Validation,
            Slug::PayloadTooLarge,
            Slug::MethodNotAllowed,
            Slug::NotFound,
            Slug::LinkExpired,
            Slug::RateLimited,
            Slug::ServiceUnavailable,
            Slug::Internal,
        ],
    );
}

/// `/api/v1`, behind [`api_chain`], for account keys.
fn api_routes(ops: &mut Operations) {
    export::api_routes(ops);
    bulk::api_routes(ops);
    links::api_routes(ops);
    qr::api_routes(ops);
    audit_log::api_routes(ops);
}

/// `/admin/v1`, behind [`api_chain`], for admin keys.
fn admin_routes(ops: &mut Operations) {
    admin::routes(ops);
    audit_log::admin_routes(ops);
}

/// The routes of `part`, registered on `cfg`.
fn serve(part: Part, routes: Routes) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        let mut ops = Operations::new(part);
        routes(&mut ops);
        ops.register(cfg);
    }
}

fn public_url(settings: &Settings, addr: SocketAddr) -> Result<Url, ProcessError> {
    match &settings.public_url {
        Some(url) => Ok(url.clone()),
        None => Url::parse(&format!("http://{addr}")).map_err(|e| {
            ProcessError::Config(format!("server.public_url: cannot derive from {addr}: {e}"))
        }),
    }
}

/// The two connections to the database: the service's, and the migrations'.
#[derive(Clone)]
pub struct DatabaseUrls {
    /// What the service connects with (`database.url`): every pool, the listener.
    pub url: String,
    /// What migrations connect with (`database.owner_url`; `database.url` when unset).
    pub owner_url: String,
}

impl DatabaseUrls {
    /// One role for both: migrations and the service connect with `url`.
    pub fn single(url: &str) -> DatabaseUrls {
        DatabaseUrls {
            url: url.to_owned(),
            owner_url: url.to_owned(),
        }
    }
}

/// Connects to the database (migrated here first through `urls.owner_url` when the
/// settings say so; already migrated otherwise) as `urls.url`, installs the bootstrap key,
/// and starts serving on `listener`.
pub async fn start(
    settings: &Settings,
    urls: &DatabaseUrls,
    listener: TcpListener,
    clock: Arc<dyn Clock>,
) -> Result<Running, ProcessError> {
    // First: a wrong path stops the start before anything touches the database.
    let countries = geoip::countries(settings.geoip.as_deref())
        .map_err(|e| ProcessError::startup("geoip.database", e))?;
    if settings.migrate_on_start {
        let applied = shortener_pg::run_pending_migrations(&urls.owner_url).await?;
        if !applied.is_empty() {
            tracing::info!(?applied, "applied migrations");
        }
    }
    let registry = match settings.metrics {
        MetricsEndpoint::Off => None,
        MetricsEndpoint::Main | MetricsEndpoint::Own(_) => Some(Arc::new(Registry::new())),
    };
    let meter = registry
        .as_ref()
        .map_or_else(Meter::off, |r| r.meter().clone());
    metrics::announce(&meter);
    let database_url = urls.url.as_str();
    let db = Db::connect_metered(database_url, &settings.pool, "shared", &meter)?;
    // Reads that need not see the latest writes go to the replicas, when there are any
    // (`shortener_pg::Replicas` says which, and when they stay on the primary).
    let replicas = match settings.replicas.as_slice() {
        [] => None,
        urls => {
            let urls: Vec<String> = urls.iter().map(|u| u.expose_secret().to_owned()).collect();
            Some(Replicas::connect(
                &urls,
                settings.replica_max_lag,
                &settings.pool,
                "replica",
                &meter,
            )?)
        }
    };
    let store = match &replicas {
        Some(r) => PgStore::new(db.clone()).with_replicas(r.clone()),
        None => PgStore::new(db.clone()),
    };
    let auth = Authenticator::new(store.clone());
    if let Some(key) = &settings.bootstrap_key {
        auth.install_bootstrap_key(key.expose_secret(), clock.now())
            .await
            .map_err(|e| ProcessError::startup("installing admin.bootstrap_key", e))?;
    }
    let addr = listener
        .local_addr()
        .map_err(|e| ProcessError::startup("reading the listener's address", e))?;
    let public = public_url(settings, addr)?;
    let policy = UrlPolicy::new(&public, settings.allow_private_targets);
    // Runs until `Running::clicks.shutdown()`; the handle is not needed to stop it.
    let clicks = if settings.count_clicks {
        // A pool of its own, whose connections are opened by the counter's task on this
        // runtime: connections opened inside an HTTP worker die with the worker at
        // shutdown, which is exactly when the last clicks are written.
        let pool = PoolSettings {
            max_size: 2,
            ..settings.pool.clone()
        };
        let click_store = PgStore::new(Db::connect_metered(database_url, &pool, "clicks", &meter)?);
        let clicks = ClickSettings {
            max_pending: settings.click_backlog,
            ..ClickSettings::default()
        };
        ClickCounter::start_metered(click_store, clicks, &meter).0
    } else {
        ClickCounter::off()
    };
    let cache = Arc::new(ResolveCache::metered(settings.cache_entries, &meter));
    cache.observe_size(&meter);
    let limits = Arc::new(Limits::new(
        &settings.rate_limits,
        settings.plans.clone(),
        settings.trusted_proxies.clone(),
        store.clone(),
        clock.clone(),
    ));
    // One password hasher for the instance: the creates and edits that hash and every
    // worker's redirects that verify share its bound of one hash per core at once.
    let passwords = Arc::new(Passwords::per_core());
    let state = web::Data::new(State {
        links: LinkService::new(
            store.clone(),
            clock.clone(),
            policy,
            settings.plans.clone(),
            cache.clone(),
        )
        .with_passwords(passwords.clone()),
        accounts: AccountService::new(store.clone(), clock.clone(), settings.plans.clone()),
        subscriptions: SubscriptionService::new(
            store.clone(),
            clock.clone(),
            settings.plans.clone(),
        ),
        audit: AuditService::new(store.clone()),
        auth,
        db,
        replicas: replicas.clone(),
        public_base: public.as_str().trim_end_matches('/').to_owned(),
        limits: limits.clone(),
        sessions: Sessions::new(store.clone(), clock.clone(), settings.session_ttl),
        https: public.scheme() == "https",
    });
    let partitions = keep_audit_partitions(state.db.clone(), clock.clone());
    let expiries = sweep_expiries(
        state.clone(),
        clock.clone(),
        settings.expiry_sweep,
        settings.analytics.retention,
        meter.clone(),
    );
    let invalidations = shortener_pg::listen::follow_link_changes(
        database_url.to_owned(),
        cache.clone(),
        replicas.clone(),
        meter.clone(),
    );
    let watch = {
        let (replicas, url) = (replicas.clone(), database_url.to_owned());
        async move {
            if let Some(r) = replicas {
                r.watch(url).await;
            }
        }
    };
    let upkeep = fold_samples(registry.clone());
    let background = Background(tokio::spawn(async move {
        tokio::join!(partitions, expiries, invalidations, watch, upkeep);
    }));
    let (main_registry, metrics) = match settings.metrics {
        MetricsEndpoint::Own(at) => (None, Some(serve_metrics(at, registry.clone())?)),
        _ => (registry.clone(), None),
    };
    let exposition = web::Data::new(Exposition(main_registry));
    // Each HTTP worker looks up its cache misses through a pool of its own, opened by the
    // worker's lookup task on the worker's runtime (see `shortener_app::Redirects`), and
    // queries at most as many batches at once as that pool has connections. The shared
    // pool was built above from the same URL, so building these cannot fail but for a
    // bug; should one fail, that worker looks up through the shared pool rather than not
    // starting.
    let lookup_pool = PoolSettings {
        max_size: settings.lookup_connections,
        ..settings.pool.clone()
    };
    let database_url = database_url.to_owned();
    let redirect_status = settings.redirect_status;
    let shared_pool_size = settings.pool.max_size;
    let worker_clicks = clicks.clone();
    // Visit analytics: each worker classifies its own clicks (see `Classifier`), the
    // countries from `geoip.database`; a referral from our own public host is no referral.
    let analytics = settings.analytics.enabled;
    let own_host: Option<Arc<str>> = public.host_str().map(Arc::from);
    let mut server = HttpServer::new(move || {
        let lookup_db = Db::connect_metered(&database_url, &lookup_pool, "lookup", &meter);
        let lookup_replicas = replicas
            .as_ref()
            .map(|r| r.with_own_pools(&lookup_pool, "replica_lookup", &meter))
            .transpose();
        let (lookup_store, in_flight) = match (lookup_db, lookup_replicas) {
            (Ok(db), Ok(Some(r))) => (PgStore::new(db).with_replicas(r), lookup_pool.max_size),
            (Ok(db), Ok(None)) => (PgStore::new(db), lookup_pool.max_size),
            (Err(e), _) | (_, Err(e)) => {
                tracing::error!(
                    error = %Chain(&e),
                    "no lookup pool for this worker; its redirects use the shared one"
                );
                (store.clone(), shared_pool_size)
            }
        };
        let redirects = Redirects::start(
            cache.clone(),
            lookup_store,
            in_flight,
            worker_clicks.clone(),
            clock.clone(),
            &meter,
        )
        .with_passwords(passwords.clone());
        let redirects = if analytics {
            redirects.with_visits(Classifier::new(countries.clone(), own_host.clone()))
        } else {
            redirects
        };
        App::new()
            .app_data(state.clone())
            .app_data(exposition.clone())
            .app_data(web::Data::new(Redirector {
                redirects,
                status: redirect_status,
                limits: limits.clone(),
            }))
            .app_data(extract::json_config())
            .app_data(web::PayloadConfig::default().limit(extract::BODY_LIMIT))
            // Innermost: a redirect is answered before the router, inside every
            // middleware below.
            .wrap(from_fn(redirect::skip_the_router))
            .wrap(ErrorHandlers::new().default_handler(ops::ensure_problem))
            .wrap(DefaultHeaders::new().add(("X-Content-Type-Options", "nosniff")))
            .wrap(Observe(registry.clone()))
            // Outermost: every response carries the request's id, and everything inside
            // (problem documents, log lines) runs with it current.
            .wrap(RequestIds)
            .configure(serve(Part::Public, public_routes))
            .service(
                api_chain(web::scope(Part::Account.prefix()))
                    .configure(serve(Part::Account, api_routes)),
            )
            .service(
                api_chain(web::scope(Part::Admin.prefix()))
                    .configure(serve(Part::Admin, admin_routes)),
            )
            .service(ui::scope())
            .default_service(web::to(redirect::redirect_or_not_found))
    })
    .shutdown_timeout(10);
    if let Some(workers) = settings.workers {
        server = server.workers(workers);
    }
    let server = server
        .listen(listener)
        .map_err(|e| ProcessError::startup(format!("listening on {addr}"), e))?
        .run();
    tracing::info!(%addr, public_url = %public, "serving");
    Ok(Running {
        addr,
        server,
        background,
        clicks,
        metrics,
    })
}

/// Folds histogram samples into their buckets every second, so that memory stays flat
/// however long Prometheus waits between scrapes.
async fn fold_samples(registry: Option<Arc<Registry>>) {
    let Some(registry) = registry else { return };
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    loop {
        tick.tick().await;
        registry.upkeep();
    }
}

/// Serves `/metrics`, and nothing else, on `at` (`metrics.listen`), with one worker.
fn serve_metrics(
    at: SocketAddr,
    registry: Option<Arc<Registry>>,
) -> Result<MetricsListener, ProcessError> {
    let exposition = web::Data::new(Exposition(registry));
    let server = HttpServer::new(move || {
        App::new()
            .app_data(exposition.clone())
            .configure(serve(Part::Public, metrics::routes))
            .wrap(ErrorHandlers::new().default_handler(ops::ensure_problem))
    })
    .workers(1)
    .disable_signals()
    .bind(at)
    .map_err(|e| ProcessError::startup(format!("listening on {at} (metrics.listen)"), e))?;
    let addr =
        server.addrs().first().copied().ok_or_else(|| {
            ProcessError::Config(format!("metrics.listen: nothing bound at {at}"))
        })?;
    let server = server.run();
    let handle = server.handle();
    tokio::spawn(server);
    tracing::info!(%addr, "serving metrics");
    Ok(MetricsListener { addr, handle })
}

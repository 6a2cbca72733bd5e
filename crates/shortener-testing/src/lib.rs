//! Test support: every test gets its own PostgreSQL database, cloned from a template that
//! is migrated once, so tests run in parallel without sharing state and without a
//! PostgreSQL started by hand.
//!
//! The server is `DATABASE_URL` when set (it must allow `CREATE DATABASE`); otherwise a
//! private server is provisioned under the system temp directory with
//! [`shortener_pg::local::LocalPostgres`] and left running for the next test process.
//! A test that must take PostgreSQL away (stop it, start it again) gets a server of its
//! own instead: [`PrivatePostgres`].
//!
//! [`mmdb`] builds MaxMind DB (GeoIP) files in code for the GeoIP lookup's tests.
//!
//! Used only from `[dev-dependencies]`; production crates never depend on it.

use std::path::PathBuf;
use std::sync::OnceLock;

use diesel::QueryableByName;
use diesel::sql_types::Text;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use shortener_pg::local::LocalPostgres;

pub mod mmdb;
mod private;
pub use private::PrivatePostgres;

/// Advisory lock key serialising template creation across test processes.
const TEMPLATE_LOCK: i64 = 0x5445_5354_5450_4c00;

/// The login role tests run the service as: a member of [`shortener_pg::SERVICE_ROLE`],
/// so the service's every statement runs with exactly the privileges it has in production.
pub const SERVICE_LOGIN: &str = "shortener_test_service";
/// Its password, for servers (`DATABASE_URL`) that authenticate by password.
const SERVICE_PASSWORD: &str = "shortener-test-service";

/// A database of one's own for one test; dropped when the value is.
pub struct TestDb {
    /// Connection URL of this test's database, as the role that owns what the migrations
    /// made (the server's superuser, or `DATABASE_URL`'s user): for migrations and for
    /// tests' own SQL.
    pub url: String,
    /// The same database as the service connects to it: as [`SERVICE_LOGIN`], which may
    /// do what the service needs and nothing more.
    pub service_url: String,
    name: String,
    admin_url: String,
}

/// The server all test databases live on: its maintenance-database URL and a URL builder.
struct Server {
    admin_url: String,
    url_for: Box<dyn Fn(&str) -> String + Send + Sync>,
    service_url_for: Box<dyn Fn(&str) -> String + Send + Sync>,
}

fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(
        || match std::env::var("DATABASE_URL").ok().filter(|u| !u.is_empty()) {
            Some(url) => {
                let base = url::Url::parse(&url)
                    .unwrap_or_else(|e| panic!("DATABASE_URL is not a URL: {e}"));
                let as_service = base.clone();
                let with_db = move |db: &str| {
                    let mut u = base.clone();
                    u.set_path(db);
                    u.to_string()
                };
                let as_service = move |db: &str| {
                    let mut u = as_service.clone();
                    u.set_path(db);
                    let _ = u.set_username(SERVICE_LOGIN);
                    let _ = u.set_password(Some(SERVICE_PASSWORD));
                    u.to_string()
                };
                Server {
                    admin_url: url,
                    url_for: Box::new(with_db),
                    service_url_for: Box::new(as_service),
                }
            }
            None => {
                let dir = std::env::temp_dir().join("shortener-test-pg");
                let local = LocalPostgres::start_fast(&dir).unwrap_or_else(|e| {
                    panic!("provisioning the test PostgreSQL in {}: {e}", dir.display())
                });
                let admin_url = local.url("postgres");
                let local = std::sync::Arc::new(local);
                let as_service = local.clone();
                Server {
                    admin_url,
                    url_for: Box::new(move |db| local.url(db)),
                    service_url_for: Box::new(move |db| as_service.url_as(db, SERVICE_LOGIN)),
                }
            }
        },
    )
}

/// The template's name: a hash of every migration file, so an edited migration gets a
/// freshly migrated template instead of a stale one.
fn template_name() -> String {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../migrations");
    let mut files: Vec<PathBuf> = files_under(&dir);
    files.sort();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for f in files {
        let bytes = std::fs::read(&f).unwrap_or_default();
        for b in f.to_string_lossy().bytes().chain(bytes) {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x100_0000_01b3);
        }
    }
    format!("shortener_tpl_{hash:016x}")
}

/// Every file below `dir`, recursively (unreadable directories are skipped).
pub fn files_under(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files_under(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    datname: String,
}

async fn admin_conn() -> AsyncPgConnection {
    AsyncPgConnection::establish(&server().admin_url)
        .await
        .unwrap_or_else(|e| panic!("connecting to the test PostgreSQL: {e}"))
}

async fn ensure_template() -> String {
    static TEMPLATE: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    TEMPLATE
        .get_or_init(|| async {
            let name = template_name();
            let mut conn = admin_conn().await;
            conn.batch_execute(&format!("SELECT pg_advisory_lock({TEMPLATE_LOCK})"))
                .await
                .unwrap_or_else(|e| panic!("template lock: {e}"));
            let existing: Vec<Name> =
                diesel::sql_query("SELECT datname FROM pg_database WHERE datname = $1")
                    .bind::<Text, _>(&name)
                    .load(&mut conn)
                    .await
                    .unwrap_or_else(|e| panic!("listing databases: {e}"));
            if existing.iter().all(|n| n.datname != name) {
                // Build under a temporary name and rename at the end, so a run that dies
                // half way never leaves a half-migrated template behind.
                let building = format!("{name}_building");
                conn.batch_execute(&format!(
                    "DROP DATABASE IF EXISTS \"{building}\" WITH (FORCE)"
                ))
                .await
                .unwrap_or_else(|e| panic!("dropping stale template: {e}"));
                conn.batch_execute(&format!("CREATE DATABASE \"{building}\""))
                    .await
                    .unwrap_or_else(|e| panic!("creating template: {e}"));
                shortener_pg::run_pending_migrations(&(server().url_for)(&building))
                    .await
                    .unwrap_or_else(|e| panic!("migrating template: {e}"));
                conn.batch_execute(&format!(
                    "ALTER DATABASE \"{building}\" RENAME TO \"{name}\""
                ))
                .await
                .unwrap_or_else(|e| panic!("renaming template: {e}"));
            }
            conn.batch_execute(&format!("SELECT pg_advisory_unlock({TEMPLATE_LOCK})"))
                .await
                .unwrap_or_else(|e| panic!("template unlock: {e}"));
            name
        })
        .await
        .clone()
}

/// Makes [`SERVICE_LOGIN`] exist. Roles are the cluster's: once per process is enough,
/// and harmless when another process does it at the same moment.
async fn ensure_service_login() {
    static DONE: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    DONE.get_or_init(|| async {
        shortener_pg::ensure_service_login(
            &server().admin_url,
            SERVICE_LOGIN,
            Some(SERVICE_PASSWORD),
        )
        .await
        .unwrap_or_else(|e| panic!("creating the service's login role: {e}"));
    })
    .await;
}

impl TestDb {
    /// A fresh, fully migrated database for one test.
    pub async fn new() -> TestDb {
        let template = ensure_template().await;
        TestDb::create(&format!(" TEMPLATE \"{template}\"")).await
    }

    /// An empty database with no migrations applied, for migration tests.
    pub async fn empty() -> TestDb {
        TestDb::create("").await
    }

    async fn create(options: &str) -> TestDb {
        ensure_service_login().await;
        let name = format!("t_{}", uuid::Uuid::new_v4().simple());
        let mut conn = admin_conn().await;
        conn.batch_execute(&format!("CREATE DATABASE \"{name}\"{options}"))
            .await
            .unwrap_or_else(|e| panic!("creating test database: {e}"));
        TestDb {
            url: (server().url_for)(&name),
            service_url: (server().service_url_for)(&name),
            name,
            admin_url: server().admin_url.clone(),
        }
    }

    /// The service's store over a small pool on this test's database, connected as the
    /// service is ([`TestDb::service_url`]).
    pub fn store(&self) -> shortener_pg::PgStore {
        let settings = shortener_pg::PoolSettings {
            max_size: 4,
            wait_timeout: std::time::Duration::from_secs(5),
            statement_timeout: std::time::Duration::from_secs(5),
        };
        let db = shortener_pg::Db::connect(&self.service_url, &settings)
            .unwrap_or_else(|e| panic!("pool for {}: {e}", self.name));
        shortener_pg::PgStore::new(db)
    }

    /// A direct connection to this test's database as its owner (for assertions and
    /// set-up in raw SQL).
    pub async fn conn(&self) -> AsyncPgConnection {
        AsyncPgConnection::establish(&self.url)
            .await
            .unwrap_or_else(|e| panic!("connecting to {}: {e}", self.name))
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // Drop runs inside an async test's runtime; do the async work on a thread of its own.
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let mut conn = AsyncPgConnection::establish(&admin_url).await.ok()?;
                conn.batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .await
                    .ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(()))) {
            eprintln!("note: could not drop test database {}", self.name);
        }
    }
}

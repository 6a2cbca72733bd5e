//! `shortener`: run the service, apply migrations, read the audit log, import links.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use secrecy::ExposeSecret;
use shortener_app::{AuditService, Chain, LinkService, ResolveCache, SystemClock};
use shortener_domain::{AccountId, UrlPolicy};
use shortener_http::audit_log::AuditParams;
use shortener_http::config::{self, DatabaseTarget, Settings};
use shortener_http::{DatabaseUrls, ProcessError, import, tail, telemetry};
use shortener_pg::local::LocalPostgres;
use shortener_pg::{Db, PgStore};

/// A self-hosted URL shortener.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Configuration file (default: ./shortener.toml when it exists). Environment
    /// variables `SHORTENER__<SECTION>__<KEY>` override it.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the service. Without database.url, provisions a private PostgreSQL under
    /// database.data_dir and stops it again on shutdown.
    Serve {
        /// Do not apply pending migrations at start.
        #[arg(long)]
        no_migrate: bool,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Read the audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Create an account's links from a CSV file (this service's export, or Shlink's),
    /// through the bulk create's rules, 1000 rows a transaction; prints progress, then what
    /// was created and what was skipped and why.
    Import {
        /// The account's id.
        #[arg(long)]
        account: uuid::Uuid,
        /// The CSV file, with a header row.
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Print the newest entries (oldest of them first), one JSON object per line, exactly
    /// as the API renders them. Filters combine with AND, like the API's.
    Tail {
        #[command(flatten)]
        params: AuditParams,
        /// Keep printing new entries as they are committed (stop with Ctrl-C).
        #[arg(short, long)]
        follow: bool,
    },
}

/// The database's name inside a provisioned private server.
const LOCAL_DATABASE: &str = "shortener";
/// The login role `serve` connects to a provisioned private server as: a member of
/// `shortener_service`, while migrations run as the cluster's superuser, as they always
/// have (so clusters provisioned before the roles were split keep upgrading).
const LOCAL_SERVICE_LOGIN: &str = "shortener";

/// Resolves the database URLs, provisioning a private PostgreSQL when none is configured.
async fn database(
    settings: &Settings,
) -> Result<(DatabaseUrls, Option<LocalPostgres>), ProcessError> {
    match &settings.database {
        DatabaseTarget::Url { url, owner_url } => {
            let url = url.expose_secret();
            let owner_url = owner_url.as_ref().map_or(url, ExposeSecret::expose_secret);
            Ok((
                DatabaseUrls {
                    url: url.to_owned(),
                    owner_url: owner_url.to_owned(),
                },
                None,
            ))
        }
        DatabaseTarget::Local(dir) => {
            let dir = dir.clone();
            tracing::info!(data_dir = %dir.display(), "no database.url: provisioning a private PostgreSQL");
            let local = tokio::task::spawn_blocking(move || LocalPostgres::start(&dir))
                .await
                .map_err(|e| ProcessError::startup("provisioning the private PostgreSQL", e))??;
            shortener_pg::ensure_database(&local.url("postgres"), LOCAL_DATABASE).await?;
            let owner_url = local.url(LOCAL_DATABASE);
            // Trust authentication on the private socket: no password.
            shortener_pg::ensure_service_login(&owner_url, LOCAL_SERVICE_LOGIN, None).await?;
            let urls = DatabaseUrls {
                url: local.url_as(LOCAL_DATABASE, LOCAL_SERVICE_LOGIN),
                owner_url,
            };
            Ok((urls, Some(local)))
        }
    }
}

fn stop_local(local: Option<LocalPostgres>) {
    if let Some(local) = local
        && let Err(e) = local.stop()
    {
        tracing::error!(error = %Chain(&e), "stopping the private PostgreSQL");
    }
}

async fn run(cli: Cli) -> Result<(), ProcessError> {
    let mut settings = config::load(cli.config.as_deref())?;
    telemetry::init(settings.log_format, &settings.log_filter);
    let (urls, local) = database(&settings).await?;
    let result = match cli.command {
        Command::Migrate => shortener_pg::run_pending_migrations(&urls.owner_url)
            .await
            .map(|applied| println!("applied {} migration(s)", applied.len()))
            .map_err(ProcessError::from),
        Command::Audit {
            command: AuditCommand::Tail { params, follow },
        } => {
            let log = AuditService::new(PgStore::new(Db::connect(&urls.url, &settings.pool)?));
            let tailed = tail::tail(&log, &params, follow, &mut std::io::stdout().lock()).await;
            match tailed {
                // The reader went away (`| head`): that is how tail ends, not a failure.
                Err(ProcessError::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                    Ok(())
                }
                other => other,
            }
        }
        Command::Import { account, file } => import(&settings, &urls, account, &file).await,
        Command::Serve { no_migrate } => {
            settings.migrate_on_start &= !no_migrate;
            serve(&settings, &urls).await
        }
    };
    stop_local(local);
    result
}

async fn import(
    settings: &Settings,
    urls: &DatabaseUrls,
    account: uuid::Uuid,
    file: &std::path::Path,
) -> Result<(), ProcessError> {
    let input = std::fs::File::open(file)
        .map_err(|e| ProcessError::startup(format!("reading {}", file.display()), e))?;
    let public = match &settings.public_url {
        Some(url) => url.clone(),
        None => url::Url::parse(&format!("http://{}", settings.listen)).map_err(|e| {
            ProcessError::Config(format!("server.public_url: cannot derive it: {e}"))
        })?,
    };
    let links = LinkService::new(
        PgStore::new(Db::connect(&urls.url, &settings.pool)?),
        Arc::new(SystemClock),
        UrlPolicy::new(&public, settings.allow_private_targets),
        settings.plans.clone(),
        // Nothing is cached here; running instances hear of the new links from the
        // database, as of any other write.
        Arc::new(ResolveCache::new(1)),
    );
    let summary = import::import(
        &links,
        AccountId::from_uuid(account),
        std::io::BufReader::new(input),
        &mut std::io::stderr().lock(),
    )
    .await?;
    import::report(&summary, &mut std::io::stdout().lock()).map_err(ProcessError::Output)
}

async fn serve(settings: &Settings, urls: &DatabaseUrls) -> Result<(), ProcessError> {
    let listener = TcpListener::bind(settings.listen).map_err(|e| {
        ProcessError::startup(format!("server.listen: cannot bind {}", settings.listen), e)
    })?;
    let running = shortener_http::start(settings, urls, listener, Arc::new(SystemClock)).await?;
    // Runs until SIGINT/SIGTERM, then drains in-flight requests...
    let served = running
        .server
        .await
        .map_err(|e| ProcessError::startup("running the server", e));
    // ...and only then writes every click those requests counted.
    let lost = running.clicks.shutdown().await;
    if lost > 0 {
        tracing::error!(lost, "clicks not written at shutdown");
    }
    served?;
    tracing::info!("stopped");
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("shortener: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, naming what is wrong and why; the operator should not need a
            // backtrace.
            eprintln!("shortener: {}", Chain(&e));
            ExitCode::FAILURE
        }
    }
}

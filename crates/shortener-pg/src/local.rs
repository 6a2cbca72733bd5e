//! A private PostgreSQL for machines where none is configured: the service on a fresh
//! machine, and the test suite. It needs only the server binaries (`initdb`, `pg_ctl`),
//! listens on a unix socket in a private directory and never on TCP, and is stopped again
//! by whoever started it.
//!
//! `initdb` refuses to run as root, and CI runs as root: then the cluster is initialised
//! and run as the unprivileged `postgres` system user.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::PgError;

const SEARCH_ROOT: &str = "/usr/lib/postgresql";
/// Environment variable that replaces [`SEARCH_ROOT`].
pub const SEARCH_ROOT_VAR: &str = "SHORTENER_PG_SEARCH_ROOT";

/// Where a new cluster's files come from.
#[derive(Clone, Copy)]
enum Origin<'a> {
    /// `initdb`: a new primary.
    Init,
    /// `pg_basebackup` of a running primary: a streaming standby applying this late.
    StandbyOf(&'a LocalPostgres, std::time::Duration),
}

/// A running private PostgreSQL.
#[derive(Debug)]
pub struct LocalPostgres {
    bin_dir: PathBuf,
    data_dir: PathBuf,
    socket_dir: PathBuf,
    log_file: PathBuf,
    run_as: Option<(u32, u32)>,
    started_here: bool,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PgError + '_ {
    move |source| PgError::Io {
        path: path.to_owned(),
        source,
    }
}

/// FNV-1a: a stable short name for a path (std's hasher is randomly seeded per process).
fn fnv(s: &str) -> u32 {
    s.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// The bin directory holding `initdb` and `pg_ctl`: `PATH` first, then the highest
/// version under `/usr/lib/postgresql/*/bin`. A `PATH` hit is followed through symlinks
/// (distributions link single tools into `/usr/local/bin`) to the real directory, where
/// the rest of the tools live.
fn find_bin_dir(path_var: Option<&str>, search_root: &Path) -> Option<PathBuf> {
    let has_tools = |d: &Path| d.join("initdb").is_file() && d.join("pg_ctl").is_file();
    if let Some(dir) = path_var
        .into_iter()
        .flat_map(|p| p.split(':'))
        .map(PathBuf::from)
        .find(|d| has_tools(d))
    {
        let real = fs::canonicalize(dir.join("initdb")).ok();
        return Some(
            real.and_then(|p| p.parent().map(Path::to_path_buf))
                .unwrap_or(dir),
        );
    }
    let mut versions: Vec<(Vec<u32>, PathBuf)> = fs::read_dir(search_root)
        .ok()?
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let version: Vec<u32> = name
                .split('.')
                .map(|p| p.parse().ok())
                .collect::<Option<_>>()?;
            let bin = e.path().join("bin");
            has_tools(&bin).then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

/// The bin directory of the server binaries [`LocalPostgres`] runs, client tools beside
/// them: `PATH` first, then the highest version under `$SHORTENER_PG_SEARCH_ROOT`
/// ([`SEARCH_ROOT_VAR`]), or else under `/usr/lib/postgresql`.
pub fn server_bin_dir() -> Result<PathBuf, PgError> {
    // Operators with versioned installs elsewhere (e.g. /usr/pgsql-17) point us there.
    let root = std::env::var(SEARCH_ROOT_VAR)
        .ok()
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| SEARCH_ROOT.to_owned());
    find_bin_dir(std::env::var("PATH").ok().as_deref(), Path::new(&root)).ok_or_else(|| {
        PgError::BinariesNotFound {
            searched: format!("{root}/*/bin"),
        }
    })
}

/// `(uid, gid)` of `user` from passwd-format text.
fn passwd_lookup(passwd: &str, user: &str) -> Option<(u32, u32)> {
    passwd.lines().find_map(|line| {
        let mut f = line.split(':');
        if f.next()? != user {
            return None;
        }
        let _password = f.next()?;
        Some((f.next()?.parse().ok()?, f.next()?.parse().ok()?))
    })
}

fn running_as_root() -> bool {
    fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// Whether `uid`/`gid` can traverse every ancestor of `dir` (and `dir` itself if it exists).
fn traversable_by(dir: &Path, uid: u32, gid: u32) -> bool {
    dir.ancestors().all(|a| match fs::metadata(a) {
        Err(_) => true, // not created yet: we create it with the right owner
        Ok(m) => {
            let mode = m.permissions().mode();
            (m.uid() == uid && mode & 0o100 != 0)
                || (m.gid() == gid && mode & 0o010 != 0)
                || mode & 0o001 != 0
        }
    })
}

impl LocalPostgres {
    /// Starts (initialising if needed) a durable cluster in `data_dir`; reuses one already
    /// running there.
    pub fn start(data_dir: &Path) -> Result<LocalPostgres, PgError> {
        Self::start_with(data_dir, false, Origin::Init)
    }

    /// Like [`LocalPostgres::start`], without durability (`fsync=off` and friends): for
    /// throwaway test clusters only.
    pub fn start_fast(data_dir: &Path) -> Result<LocalPostgres, PgError> {
        Self::start_with(data_dir, true, Origin::Init)
    }

    /// Starts (cloning `primary` with `pg_basebackup -R` if `data_dir` holds no cluster
    /// yet) a hot standby that streams from `primary` and applies what it receives
    /// `apply_delay` late (`recovery_min_apply_delay`: zero for an ordinary replica; more
    /// to make replication lag on purpose). It is as durable as `fast` says, like the
    /// primary, and runs as the same user.
    pub fn start_standby(
        data_dir: &Path,
        primary: &LocalPostgres,
        apply_delay: std::time::Duration,
        fast: bool,
    ) -> Result<LocalPostgres, PgError> {
        Self::start_with(data_dir, fast, Origin::StandbyOf(primary, apply_delay))
    }

    fn start_with(
        requested: &Path,
        fast: bool,
        origin: Origin<'_>,
    ) -> Result<LocalPostgres, PgError> {
        let bin_dir = server_bin_dir()?;
        let absolute = std::path::absolute(requested).map_err(io(requested))?;
        let run_as = if running_as_root() {
            let passwd = fs::read_to_string("/etc/passwd").map_err(io(Path::new("/etc/passwd")))?;
            Some(passwd_lookup(&passwd, "postgres").ok_or_else(|| {
                PgError::Provision(
                    "running as root, and initdb refuses root, but there is no `postgres` user to run PostgreSQL as: create one or set database.url".into(),
                )
            })?)
        } else {
            None
        };
        let data_dir = match run_as {
            Some((uid, gid)) if !traversable_by(&absolute, uid, gid) => {
                let fallback = std::env::temp_dir().join(format!(
                    "shortener-pg-data-{:08x}",
                    fnv(&absolute.to_string_lossy())
                ));
                tracing::warn!(
                    requested = %absolute.display(),
                    using = %fallback.display(),
                    "the postgres user cannot reach the data directory; using one under the temp directory"
                );
                fallback
            }
            _ => absolute,
        };
        let key = fnv(&data_dir.to_string_lossy());
        // Unix socket paths are limited to ~107 bytes, so the socket lives in a short
        // private directory of its own rather than in the data directory.
        let socket_dir = std::env::temp_dir().join(format!("shortener-pg-{key:08x}"));
        let log_file = data_dir.with_file_name(format!(
            "{}.log",
            data_dir
                .file_name()
                .map_or("postgres".into(), |n| n.to_string_lossy())
        ));
        let pg = LocalPostgres {
            bin_dir,
            data_dir,
            socket_dir,
            log_file,
            run_as,
            started_here: false,
        };
        pg.prepare_dirs()?;
        if !pg.data_dir.join("PG_VERSION").is_file() {
            match origin {
                Origin::Init => pg.initdb(fast)?,
                Origin::StandbyOf(primary, _) => pg.basebackup(primary, fast)?,
            }
        }
        if pg.is_running()? {
            return Ok(pg);
        }
        let extra = match origin {
            Origin::Init => String::new(),
            Origin::StandbyOf(_, delay) => format!(
                " -c hot_standby=on -c recovery_min_apply_delay={}ms",
                delay.as_millis()
            ),
        };
        pg.run_start(fast, &extra)?;
        Ok(LocalPostgres {
            started_here: true,
            ..pg
        })
    }

    fn make_dir(&self, dir: &Path) -> Result<(), PgError> {
        fs::create_dir_all(dir).map_err(io(dir))?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io(dir))?;
        if let Some((uid, gid)) = self.run_as {
            std::os::unix::fs::chown(dir, Some(uid), Some(gid)).map_err(io(dir))?;
        }
        Ok(())
    }

    fn prepare_dirs(&self) -> Result<(), PgError> {
        if let Some(parent) = self.data_dir.parent() {
            fs::create_dir_all(parent).map_err(io(parent))?;
        }
        self.make_dir(&self.data_dir)?;
        self.make_dir(&self.socket_dir)?;
        if let Some((uid, gid)) = self.run_as {
            // The server appends to its log file as the postgres user.
            if !self.log_file.exists() {
                fs::write(&self.log_file, b"").map_err(io(&self.log_file))?;
            }
            std::os::unix::fs::chown(&self.log_file, Some(uid), Some(gid))
                .map_err(io(&self.log_file))?;
        }
        Ok(())
    }

    fn command(&self, tool: &str) -> Command {
        let mut cmd = Command::new(self.bin_dir.join(tool));
        cmd.env_remove("PGDATA")
            .env_remove("PGHOST")
            .env_remove("PGPORT")
            .env("LC_ALL", "C");
        if let Some((uid, gid)) = self.run_as {
            cmd.uid(uid)
                .gid(gid)
                .env("HOME", &self.socket_dir)
                .current_dir(&self.socket_dir);
        }
        cmd
    }

    fn run(&self, what: &str, cmd: &mut Command) -> Result<Output, PgError> {
        cmd.output()
            .map_err(|e| PgError::Provision(format!("{what}: cannot run: {e}")))
    }

    fn fail(&self, what: &str, out: &Output) -> PgError {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let last = stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("no output");
        PgError::Provision(format!(
            "{what} failed ({}): {last} (server log: {})",
            out.status,
            self.log_file.display()
        ))
    }

    fn initdb(&self, fast: bool) -> Result<(), PgError> {
        let mut cmd = self.command("initdb");
        cmd.arg("-D").arg(&self.data_dir).args([
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
        ]);
        if fast {
            cmd.arg("--no-sync");
        }
        let out = self.run("initdb", &mut cmd)?;
        if !out.status.success() {
            return Err(self.fail("initdb", &out));
        }
        Ok(())
    }

    /// Clones `primary` into the (empty) data directory, with the standby's settings
    /// (`standby.signal`, `primary_conninfo` over the primary's private socket) written by
    /// `-R`. The primary's `pg_hba.conf` from `initdb --auth=trust` already lets local
    /// replication connections in.
    fn basebackup(&self, primary: &LocalPostgres, fast: bool) -> Result<(), PgError> {
        let mut cmd = self.command("pg_basebackup");
        cmd.arg("-D")
            .arg(&self.data_dir)
            .args(["-R", "-X", "stream", "-c", "fast", "-d"])
            .arg(format!(
                "host={} port=5432 user=postgres",
                primary.socket_dir.display()
            ));
        if fast {
            cmd.arg("--no-sync");
        }
        let out = self.run("pg_basebackup", &mut cmd)?;
        if !out.status.success() {
            return Err(self.fail("pg_basebackup", &out));
        }
        Ok(())
    }

    fn is_running(&self) -> Result<bool, PgError> {
        let out = self.run(
            "pg_ctl status",
            self.command("pg_ctl")
                .arg("status")
                .arg("-D")
                .arg(&self.data_dir),
        )?;
        Ok(out.status.success())
    }

    fn run_start(&self, fast: bool, extra: &str) -> Result<(), PgError> {
        let mut options = format!(
            "-c listen_addresses='' -c unix_socket_directories='{}' -c port=5432 -c max_connections=200 -c shared_buffers=128MB",
            self.socket_dir.display()
        );
        if fast {
            options.push_str(" -c fsync=off -c synchronous_commit=off -c full_page_writes=off");
        }
        options.push_str(extra);
        let out = self.run(
            "pg_ctl start",
            self.command("pg_ctl")
                .arg("start")
                .arg("-D")
                .arg(&self.data_dir)
                .arg("-l")
                .arg(&self.log_file)
                .args(["-w", "-t", "60", "-o"])
                .arg(options),
        )?;
        if !out.status.success() {
            return Err(self.fail("pg_ctl start", &out));
        }
        Ok(())
    }

    /// A URL for `database` over the private socket, as user `postgres` (the cluster's
    /// superuser, which owns what the migrations make).
    pub fn url(&self, database: &str) -> String {
        self.url_as(database, "postgres")
    }

    /// A URL for `database` over the private socket, as `user` (trust authentication on
    /// the private socket: no password).
    ///
    /// The host goes in the query with an empty authority: a `localhost` authority would
    /// be tried first over TCP and could silently reach some other server on port 5432.
    pub fn url_as(&self, database: &str, user: &str) -> String {
        format!(
            "postgres:///{database}?user={user}&host={}",
            self.socket_dir.display()
        )
    }

    /// The data directory actually used (see the module docs for when it differs from the
    /// requested one).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Whether this value started the server (false when it found one running).
    pub fn started_here(&self) -> bool {
        self.started_here
    }

    /// Stops the server if, and only if, this value started it.
    pub fn stop(&self) -> Result<(), PgError> {
        if !self.started_here {
            return Ok(());
        }
        let out = self.run(
            "pg_ctl stop",
            self.command("pg_ctl")
                .arg("stop")
                .arg("-D")
                .arg(&self.data_dir)
                .args(["-m", "fast", "-w", "-t", "60"]),
        )?;
        if !out.status.success() {
            return Err(self.fail("pg_ctl stop", &out));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn passwd_lookup_finds_uid_and_gid() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\npostgres:x:101:104:PostgreSQL:/var/lib/postgresql:/bin/bash\n";
        assert_eq!(passwd_lookup(passwd, "postgres"), Some((101, 104)));
        assert_eq!(passwd_lookup(passwd, "nobody"), None);
        assert_eq!(passwd_lookup("postgres:x:abc:1::", "postgres"), None);
    }

    #[test]
    fn bin_discovery_prefers_path_then_the_highest_version() {
        let root = std::env::temp_dir().join(format!("shortener-bin-test-{}", std::process::id()));
        for v in ["9.6", "15", "13", "notaversion"] {
            let bin = root.join(v).join("bin");
            fs::create_dir_all(&bin).unwrap();
            fs::write(bin.join("initdb"), "").unwrap();
            fs::write(bin.join("pg_ctl"), "").unwrap();
        }
        assert_eq!(
            find_bin_dir(Some("/nonexistent"), &root),
            Some(root.join("15").join("bin"))
        );
        let on_path = root.join("9.6").join("bin");
        let path = format!("/nonexistent:{}", on_path.display());
        assert_eq!(find_bin_dir(Some(&path), &root), Some(on_path));
        assert_eq!(find_bin_dir(None, &root.join("missing")), None);
        fs::remove_dir_all(&root).unwrap();
    }

    /// A directory of this test's own under the temp directory.
    fn scratch_dir(what: &str) -> PathBuf {
        std::env::temp_dir().join(format!(
            "shortener-{what}-test-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ))
    }

    #[test]
    fn starts_reuses_and_stops_a_private_cluster() {
        let dir = scratch_dir("local");
        let pg = LocalPostgres::start_fast(&dir.join("pg")).unwrap();
        assert!(pg.started_here());
        let psql = pg.bin_dir.join("psql");
        let query = |url: &str| {
            Command::new(&psql)
                .arg(url)
                .args(["-Atc", "select 1"])
                .output()
                .unwrap()
        };
        let out = query(&pg.url("postgres"));
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1", "{out:?}");

        let again = LocalPostgres::start_fast(&dir.join("pg")).unwrap();
        assert!(!again.started_here(), "a running cluster is reused");
        assert_eq!(again.url("x"), pg.url("x"));
        again.stop().unwrap(); // not ours: leaves it running
        assert!(pg.is_running().unwrap());

        pg.stop().unwrap();
        assert!(!pg.is_running().unwrap());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_standby_streams_what_its_primary_writes() {
        let dir = scratch_dir("standby");
        let primary = LocalPostgres::start_fast(&dir.join("primary")).unwrap();
        let standby = LocalPostgres::start_standby(
            &dir.join("standby"),
            &primary,
            std::time::Duration::ZERO,
            true,
        )
        .unwrap();
        assert!(standby.started_here());
        let psql = |url: &str, sql: &str| {
            let out = Command::new(primary.bin_dir.join("psql"))
                .arg(url)
                .args(["-Atc", sql])
                .output()
                .unwrap();
            (
                String::from_utf8_lossy(&out.stdout).trim().to_owned(),
                String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            )
        };
        assert_eq!(
            psql(&standby.url("postgres"), "SELECT pg_is_in_recovery()").0,
            "t"
        );
        psql(
            &primary.url("postgres"),
            "CREATE TABLE streamed AS SELECT 42 AS n",
        );
        let mut seen = String::new();
        for _ in 0..100 {
            seen = psql(&standby.url("postgres"), "SELECT n FROM streamed").0;
            if seen == "42" {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        assert_eq!(seen, "42", "the standby never replayed the primary's table");
        let (_, refused) = psql(&standby.url("postgres"), "CREATE TABLE nope (n int)");
        assert!(refused.contains("read-only"), "{refused}");
        standby.stop().unwrap();
        primary.stop().unwrap();
        fs::remove_dir_all(&dir).unwrap();
    }
}

//! The bench's private PostgreSQL: started (or found running) through the service's own
//! provisioning, `shortener_pg::local`, so it is configured exactly like the one
//! `shortener serve` provisions (durable: fsync on); its client tools (`psql`,
//! `pgbench`) from the server's own installation; fresh databases; its postmaster's pid,
//! for the CPU time of PostgreSQL (`cpu`); and a streaming replica of it ([`Replica`],
//! issue #20).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use shortener_pg::local::{self, LocalPostgres};

/// The bench's private cluster, and where its client tools are.
pub struct Cluster {
    local: LocalPostgres,
    bin_dir: Option<PathBuf>,
    socket_dir: String,
    stopped: bool,
}

/// The server the run measured on, as the report describes it.
pub struct Server {
    pub version: String,
    pub fsync: String,
    pub synchronous_commit: String,
    pub data_dir: PathBuf,
    /// Already running when the bench started (so left running).
    pub reused: bool,
}

/// Also on early returns and panics: PostgreSQL runs detached and would outlive us.
impl Drop for Cluster {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("xtask: {e:#}");
        }
    }
}

impl Cluster {
    /// Starts the durable cluster in `dir`, or uses the one running there.
    pub fn start(dir: &Path) -> Result<Cluster> {
        let local = LocalPostgres::start(dir)?;
        let url = local.url("postgres");
        let socket_dir = socket_dir(&url)
            .with_context(|| format!("no host= in the local PostgreSQL URL {url}"))?;
        let bin_dir = tools_dir(local.data_dir());
        Ok(Cluster {
            local,
            bin_dir,
            socket_dir,
            stopped: false,
        })
    }

    /// Stops the server if this run started it (see [`LocalPostgres::stop`]).
    pub fn stop(&mut self) -> Result<()> {
        if std::mem::replace(&mut self.stopped, true) || !self.local.started_here() {
            return Ok(());
        }
        println!("==> stopping PostgreSQL");
        self.local.stop().context("stopping the bench PostgreSQL")
    }

    /// Its version and durability settings, printed as well; says how to stop a server
    /// this run found running (and so leaves running).
    pub fn describe(&self) -> Result<Server> {
        let server = Server {
            version: self.psql("postgres", "SHOW server_version")?,
            fsync: self.psql("postgres", "SHOW fsync")?,
            synchronous_commit: self.psql("postgres", "SHOW synchronous_commit")?,
            data_dir: self.local.data_dir().to_path_buf(),
            reused: !self.local.started_here(),
        };
        if server.reused {
            // Not ours to stop (LocalPostgres stops only what it started): say how.
            println!(
                "    note: a PostgreSQL was already running there (left by an interrupted run?): \
                 using it, and leaving it running; to stop it:\n          {}",
                self.stop_command()
            );
        }
        println!(
            "    PostgreSQL {} (fsync={}, synchronous_commit={})",
            server.version, server.fsync, server.synchronous_commit
        );
        Ok(server)
    }

    /// The shell command that stops the server by hand. As root, the cluster runs as
    /// `postgres` (see `shortener_pg::local`), and `pg_ctl` refuses root.
    fn stop_command(&self) -> String {
        self.stop_command_of(self.local.data_dir())
    }

    /// The shell command that stops the server of `data_dir` (this one's or its
    /// replica's) by hand.
    fn stop_command_of(&self, data_dir: &Path) -> String {
        let pg_ctl = self
            .bin_dir
            .as_ref()
            .map_or_else(|| PathBuf::from("pg_ctl"), |d| d.join("pg_ctl"));
        let as_root = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
        format!(
            "{}{} stop -D {} -m fast",
            if as_root {
                "runuser -u postgres -- "
            } else {
                ""
            },
            pg_ctl.display(),
            data_dir.display()
        )
    }

    /// The pid of the running server's postmaster, the parent of all its processes.
    pub fn postmaster_pid(&self) -> Result<u32> {
        postmaster_pid(self.local.data_dir())
    }

    /// The directory of the server's unix socket (pgbench's `-h`).
    pub fn socket_dir(&self) -> &str {
        &self.socket_dir
    }

    /// A client tool from the running server's own installation, so that `pgbench` and
    /// `psql` match the server (Debian's `/usr/bin/pgbench` is a wrapper that may pick
    /// another version); `PATH` when that cannot be found.
    pub fn tool(&self, name: &str) -> Command {
        let program = self
            .bin_dir
            .as_ref()
            .map(|d| d.join(name))
            .filter(|p| p.is_file())
            .unwrap_or_else(|| PathBuf::from(name));
        let mut cmd = Command::new(program);
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("PG") {
                cmd.env_remove(key);
            }
        }
        cmd.env("LC_ALL", "C");
        cmd
    }

    /// Runs one SQL statement on `db`; returns its unaligned output, trimmed.
    pub fn psql(&self, db: &str, sql: &str) -> Result<String> {
        self.psql_at(&self.local.url(db), sql)
    }

    /// [`Self::psql`] on the database of `url` (a replica's, say).
    fn psql_at(&self, url: &str, sql: &str) -> Result<String> {
        let out = self
            .tool("psql")
            .args(["-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d"])
            .arg(url)
            .args(["-c", sql])
            .output()
            .context("running psql (it ships with the PostgreSQL server binaries)")?;
        if !out.status.success() {
            bail!(
                "psql {sql:?} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// Drops and creates `name`, so every measurement starts from an empty database;
    /// returns its URL.
    pub fn fresh_database(&self, name: &str) -> Result<String> {
        let force = self
            .psql("postgres", "SHOW server_version_num")?
            .parse::<u32>()
            .is_ok_and(|v| v >= 130_000);
        let drop = if force {
            format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")
        } else {
            format!("DROP DATABASE IF EXISTS \"{name}\"")
        };
        self.psql("postgres", &drop)?;
        self.psql("postgres", &format!("CREATE DATABASE \"{name}\""))?;
        Ok(self.local.url(name))
    }
}

/// A streaming replica of the bench cluster (issue #20): a hot standby cloned from it by
/// `pg_basebackup` (`LocalPostgres::start_standby`), durable like it, applying what it
/// receives at once, on its own private socket; a postmaster of its own, so its CPU time
/// is read apart from the primary's. Stopped and its data directory removed when dropped,
/// also on early returns and panics (it runs detached and would outlive us).
pub struct Replica<'a> {
    primary: &'a Cluster,
    local: LocalPostgres,
}

impl Drop for Replica<'_> {
    fn drop(&mut self) {
        if !self.local.started_here() {
            return;
        }
        println!("==> stopping the replica");
        if let Err(e) = self.local.stop() {
            eprintln!("xtask: stopping the bench replica: {e}");
            return;
        }
        let dir = self.local.data_dir();
        if let Err(e) = std::fs::remove_dir_all(dir) {
            eprintln!("xtask: removing {}: {e}", dir.display());
        }
    }
}

impl Cluster {
    /// Provisions a streaming replica of this cluster in `dir` (which must not hold a
    /// running server; a directory left by an interrupted run is removed first) and
    /// starts it.
    pub fn start_replica(&self, dir: &Path) -> Result<Replica<'_>> {
        if dir.exists() {
            let running =
                postmaster_pid(dir).is_ok_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
            if running {
                bail!(
                    "a PostgreSQL is running in {} (left by an interrupted run?): stop it \
                     with\n          {}\n      and run again",
                    dir.display(),
                    self.stop_command_of(dir)
                );
            }
            std::fs::remove_dir_all(dir)
                .with_context(|| format!("removing the old replica {}", dir.display()))?;
        }
        let local = LocalPostgres::start_standby(dir, &self.local, Duration::ZERO, false)
            .with_context(|| format!("provisioning a streaming replica in {}", dir.display()))?;
        let replica = Replica {
            primary: self,
            local,
        };
        if !replica.local.started_here() {
            bail!(
                "a PostgreSQL was already running in {}: stop it with\n          {}",
                replica.local.data_dir().display(),
                self.stop_command_of(replica.local.data_dir())
            );
        }
        if replica.psql("postgres", "SELECT pg_is_in_recovery()")? != "t" {
            bail!("the replica in {} is not in recovery", dir.display());
        }
        Ok(replica)
    }
}

impl Replica<'_> {
    /// A URL for `database` on the replica, as the same user as [`Cluster::fresh_database`]'s
    /// URLs (the service's), over the replica's own socket.
    pub fn url(&self, database: &str) -> String {
        self.local.url(database)
    }

    /// The pid of the replica's postmaster, the parent of all its processes.
    pub fn postmaster_pid(&self) -> Result<u32> {
        postmaster_pid(self.local.data_dir())
    }

    /// The data directory it runs on.
    pub fn data_dir(&self) -> &Path {
        self.local.data_dir()
    }

    /// Runs one SQL statement on `db` of the replica (read only).
    pub fn psql(&self, db: &str, sql: &str) -> Result<String> {
        self.primary.psql_at(&self.local.url(db), sql)
    }

    /// Waits (at most `limit`) until the replica has replayed everything the primary had
    /// written when called: `pg_last_wal_replay_lsn()` here at or past the primary's
    /// `pg_current_wal_lsn()`. How long it waited.
    pub fn wait_for_replay(&self, limit: Duration) -> Result<Duration> {
        let started = Instant::now();
        let lsn = self
            .primary
            .psql("postgres", "SELECT pg_current_wal_lsn()")?;
        let caught_up = format!("SELECT pg_last_wal_replay_lsn() >= '{lsn}'::pg_lsn");
        loop {
            if self.psql("postgres", &caught_up)? == "t" {
                return Ok(started.elapsed());
            }
            if started.elapsed() > limit {
                let replayed = self.psql("postgres", "SELECT pg_last_wal_replay_lsn()")?;
                bail!(
                    "the replica had replayed up to {replayed} after {limit:?}, short of the \
                     primary's {lsn} (its log: {}.log)",
                    self.local.data_dir().display()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The socket directory in a `LocalPostgres` URL (`...&host=<dir>[&...]`).
fn socket_dir(url: &str) -> Option<String> {
    url.split_once("host=")
        .map(|(_, rest)| rest.split('&').next().unwrap_or(rest).to_owned())
}

/// The postmaster's pid: the first line of `postmaster.pid` in the data directory.
fn postmaster_pid(data_dir: &Path) -> Result<u32> {
    let path = data_dir.join("postmaster.pid");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    first_line_pid(&text).with_context(|| format!("no pid on the first line of {}", path.display()))
}

fn first_line_pid(text: &str) -> Option<u32> {
    text.lines().next()?.trim().parse().ok()
}

/// Where the client tools are: beside the executable of the server running on
/// `data_dir` (`/proc/<postmaster>/exe`: it may be a server an earlier run left running),
/// else where `LocalPostgres` finds the server binaries.
fn tools_dir(data_dir: &Path) -> Option<PathBuf> {
    postmaster_pid(data_dir)
        .ok()
        .and_then(|pid| std::fs::read_link(format!("/proc/{pid}/exe")).ok())
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
        .or_else(|| local::server_bin_dir().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_dir_and_postmaster_pid_are_read() {
        assert_eq!(
            socket_dir("postgres:///postgres?user=postgres&host=/tmp/shortener-pg-1").as_deref(),
            Some("/tmp/shortener-pg-1")
        );
        assert_eq!(
            socket_dir("postgres:///x?host=/tmp/s&user=postgres").as_deref(),
            Some("/tmp/s")
        );
        assert_eq!(socket_dir("postgres:///x?user=postgres"), None);
        let pid_file =
            "4242\n/var/lib/pg\n1732800000\n5432\n/tmp/s\n\n  1234567     98304\nready   \n";
        assert_eq!(first_line_pid(pid_file), Some(4242));
        assert_eq!(first_line_pid(""), None);
        assert_eq!(first_line_pid("x\n"), None);
    }
}

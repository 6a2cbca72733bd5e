//! The bench's private PostgreSQL: started (or found running) through the service's own
//! provisioning, `shortener_pg::local`, so it is configured exactly like the one
//! `shortener serve` provisions (durable: fsync on); its client tools (`psql`,
//! `pgbench`) from the server's own installation; fresh databases; its postmaster's pid,
//! for the CPU time of PostgreSQL (`cpu`).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

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
            self.local.data_dir().display()
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
        let out = self
            .tool("psql")
            .args(["-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d"])
            .arg(self.local.url(db))
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

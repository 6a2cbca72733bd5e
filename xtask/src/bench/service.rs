//! The servers the bench measures, as child processes (`process`): the release service
//! (`shortener serve`, configured only through `SHORTENER__...` variables, with a fresh
//! bootstrap admin key) and the admin calls that set up its accounts; and the bare
//! actix-web server, the redirect ceiling (`xtask/bare-redirect`).

use std::fmt::Write as _;
use std::io::Read;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use super::http::Http;
use super::process::{Server, free_addr};

/// The release service; stopped when dropped (SIGTERM: it drains and writes its clicks).
pub struct Service {
    server: Server,
    admin_key: String,
}

impl Service {
    /// Starts the service with `pool` connections, logging to `work/<log_name>` at the
    /// default level (`info`, as operators run it), with `settings` (`SHORTENER__...`
    /// variables) on top of the bench's own; returns once it answers `/readyz`.
    pub fn start_with(
        exe: &Path,
        work: &Path,
        database_url: &str,
        pool: usize,
        log_name: &str,
        settings: &[(&str, String)],
    ) -> Result<Service> {
        let addr = free_addr()?;
        let admin_key = random_key()?;
        let mut cmd = Command::new(exe);
        // Not the workspace: a developer's ./shortener.toml must not change the bench.
        cmd.arg("serve").current_dir(work);
        for (key, _) in std::env::vars_os() {
            let key_str = key.to_string_lossy();
            if key_str.starts_with("SHORTENER_")
                || key_str == "DATABASE_URL"
                || key_str == "RUST_LOG"
            {
                cmd.env_remove(&key);
            }
        }
        cmd.env("SHORTENER__DATABASE__URL", database_url)
            .env("SHORTENER__SERVER__LISTEN", addr.to_string())
            .env("SHORTENER__ADMIN__BOOTSTRAP_KEY", &admin_key)
            .env("SHORTENER__DATABASE__POOL_SIZE", pool.to_string());
        for (key, value) in settings {
            cmd.env(key, value);
        }
        let mut server = Server::spawn(cmd, addr, work.join(log_name), "the service")?;
        server.wait_ready(Duration::from_secs(60), "200 on /readyz", |addr| {
            Ok(matches!(
                Http::new(addr).request("GET", "/readyz", None, None),
                Ok((200, _))
            ))
        })?;
        Ok(Service { server, admin_key })
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr
    }

    pub fn pid(&self) -> u32 {
        self.server.pid()
    }

    /// Resident memory, in bytes.
    pub fn rss(&self) -> Result<u64> {
        self.server.rss()
    }

    /// Peak resident memory since start, in bytes.
    pub fn peak_rss(&self) -> Result<u64> {
        self.server.peak_rss()
    }

    /// The end of its log, for error messages.
    pub fn log_tail(&self) -> String {
        self.server.log_tail()
    }

    /// One admin call: the JSON answer when the status is `expected`.
    fn admin(&self, path: &str, body: &str, expected: u16) -> Result<serde_json::Value> {
        let (status, answer) = Http::new(self.addr())
            .request("POST", path, Some(&self.admin_key), Some(body))
            .with_context(|| format!("POST {path}"))?;
        if status != expected {
            bail!(
                "POST {path}: {status} (expected {expected}): {}",
                String::from_utf8_lossy(&answer)
            );
        }
        serde_json::from_slice(&answer).with_context(|| format!("POST {path}: reading the JSON"))
    }

    /// A new account (in its trial); returns its id.
    pub fn create_account(&self, name: &str) -> Result<String> {
        let body = serde_json::json!({ "name": name }).to_string();
        let account = self.admin("/admin/v1/accounts", &body, 201)?;
        account["id"]
            .as_str()
            .map(str::to_owned)
            .context("the new account has no id")
    }

    /// An account on the business plan (the trial allows 100 links a month) and its key.
    pub fn account_key(&self, n: usize) -> Result<String> {
        let id = self.create_account(&format!("bench {n}"))?;
        self.admin(
            &format!("/admin/v1/accounts/{id}/subscription/activate"),
            r#"{"plan":"business"}"#,
            200,
        )?;
        let key = self.admin(&format!("/admin/v1/accounts/{id}/keys"), "", 201)?;
        key["key"]
            .as_str()
            .map(str::to_owned)
            .context("the new key answer has no key")
    }

    /// A new link to `url`, made with the account `key`; returns its code.
    pub fn create_link(&self, key: &str, url: &str) -> Result<String> {
        let body = serde_json::json!({ "url": url }).to_string();
        let (status, answer) =
            Http::new(self.addr()).request("POST", "/api/v1/links", Some(key), Some(&body))?;
        if status != 201 {
            bail!(
                "creating the link: {status}: {}",
                String::from_utf8_lossy(&answer)
            );
        }
        let link: serde_json::Value = serde_json::from_slice(&answer).context("the new link")?;
        link["code"]
            .as_str()
            .map(str::to_owned)
            .context("the new link has no code")
    }
}

/// An admin key of 64 hex characters from the kernel's CSPRNG.
fn random_key() -> Result<String> {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .context("reading /dev/urandom")?;
    Ok(bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    }))
}

/// `bare-redirect`, actix-web answering 302 from a `HashMap`; stopped when dropped.
pub struct Bare {
    server: Server,
}

impl Bare {
    /// Starts it on `workers` workers with the `code<TAB>target` lines of `links`, logging
    /// to `work/bare-redirect.log`; returns once `GET <probe>` answers 302.
    pub fn start(
        exe: &Path,
        work: &Path,
        links: &Path,
        workers: usize,
        probe: &str,
    ) -> Result<Bare> {
        let addr = free_addr()?;
        let mut cmd = Command::new(exe);
        cmd.arg(addr.to_string())
            .arg(links)
            .arg(workers.to_string());
        let log = work.join("bare-redirect.log");
        let mut server = Server::spawn(cmd, addr, log, "the bare server")?;
        server.wait_ready(
            Duration::from_secs(30),
            &format!("GET {probe}"),
            |addr| match Http::new(addr).request("GET", probe, None, None) {
                Ok((302, _)) => Ok(true),
                Ok((status, _)) => bail!("the bare server answered {status} for GET {probe}"),
                Err(_) => Ok(false),
            },
        )?;
        Ok(Bare { server })
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr
    }

    pub fn pid(&self) -> u32 {
        self.server.pid()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_keys_are_64_random_hex_characters() {
        let (a, b) = (random_key().unwrap(), random_key().unwrap());
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}

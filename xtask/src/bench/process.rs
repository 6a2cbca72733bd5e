//! Child servers (the service, the bare server): a free port, spawning with the output
//! in a log file, waiting until they answer, their resident memory, and stopping them
//! (SIGTERM, then SIGKILL), also when the bench fails or panics half way.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// A free port on 127.0.0.1 for a server to listen on (bound, read, released).
pub fn free_addr() -> Result<SocketAddr> {
    let probe = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    probe.local_addr().context("finding a free port")
}

/// A server running as a child process; stopped when dropped, errors included.
pub struct Server {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    log: PathBuf,
    /// `the service`, `the bare server`: for messages.
    what: &'static str,
}

impl Server {
    /// Spawns `cmd` (which listens on `addr`) with no input and its output into `log`.
    pub fn spawn(
        mut cmd: Command,
        addr: SocketAddr,
        log: PathBuf,
        what: &'static str,
    ) -> Result<Server> {
        let log_file =
            std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(
                log_file
                    .try_clone()
                    .with_context(|| format!("opening {}", log.display()))?,
            )
            .stderr(log_file)
            .spawn()
            .with_context(|| format!("starting {}", cmd.get_program().to_string_lossy()))?;
        Ok(Server {
            child,
            addr,
            log,
            what,
        })
    }

    /// Asks `ready` every 50 ms until it says yes, for at most `within`. `ready` fails
    /// for an answer that waiting will not fix; its `Ok(false)` means not yet.
    pub fn wait_ready(
        &mut self,
        within: Duration,
        asked: &str,
        mut ready: impl FnMut(SocketAddr) -> Result<bool>,
    ) -> Result<()> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self
                .child
                .try_wait()
                .with_context(|| format!("checking {}", self.what))?
            {
                bail!(
                    "{} exited at start ({status})\n{}",
                    self.what,
                    self.log_tail()
                );
            }
            if ready(self.addr)? {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "{} did not answer {asked} within {} s\n{}",
                    self.what,
                    within.as_secs(),
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The last 20 lines of its log, for error messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(20)..].join("\n");
        format!("{} log ({}):\n{tail}", self.what, self.log.display())
    }

    /// Resident memory (`VmRSS`), in bytes.
    pub fn rss(&self) -> Result<u64> {
        self.status_kib("VmRSS:")
    }

    /// Peak resident memory since start (`VmHWM`), in bytes.
    pub fn peak_rss(&self) -> Result<u64> {
        self.status_kib("VmHWM:")
    }

    fn status_kib(&self, field: &str) -> Result<u64> {
        let path = format!("/proc/{}/status", self.pid());
        let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        parse_kib(&status, field).with_context(|| format!("no {field} in {path}"))
    }

    /// SIGTERM first (the service drains, writes its clicks and exits); SIGKILL if it is
    /// still there 15 s later.
    pub fn stop(&mut self) {
        let child = &mut self.child;
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        let termed = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if termed {
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn parse_kib(status: &str, field: &str) -> Option<u64> {
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix(field))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rss_is_read_from_proc_status() {
        let status = "Name:\tshortener\nVmPeak:\t  900 kB\nVmRSS:\t   20480 kB\n";
        assert_eq!(parse_kib(status, "VmRSS:"), Some(20480 * 1024));
        assert_eq!(parse_kib(status, "VmPeak:"), Some(900 * 1024));
        assert_eq!(parse_kib("Name:\tx\n", "VmRSS:"), None);
    }

    #[test]
    fn a_child_is_waited_for_and_stopped() {
        let log = std::env::temp_dir().join(format!("xtask-process-{}.log", std::process::id()));
        let addr = free_addr().unwrap();
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo started; exec sleep 60"]);
        let mut server = Server::spawn(cmd, addr, log.clone(), "the test server").unwrap();
        let mut asked = 0;
        server
            .wait_ready(Duration::from_secs(5), "anything", |_| {
                asked += 1;
                Ok(asked == 3)
            })
            .unwrap();
        assert!(server.rss().unwrap() > 0);
        server.stop();
        assert!(server.child.try_wait().unwrap().is_some());
        assert!(
            server.log_tail().ends_with("started"),
            "{}",
            server.log_tail()
        );

        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo bad config; exit 3"]);
        let mut server = Server::spawn(cmd, addr, log.clone(), "the test server").unwrap();
        let e = server
            .wait_ready(Duration::from_secs(5), "anything", |_| Ok(false))
            .unwrap_err();
        assert!(e.to_string().contains("exited at start"), "{e}");
        assert!(e.to_string().contains("bad config"), "{e}");
        std::fs::remove_file(&log).unwrap();
    }
}

//! The release build of what the bench runs: `shortener` and, for the redirects, the bare
//! server (`xtask/bare-redirect`), found where cargo says it put them; and, for
//! `--baseline REV`, the `shortener` of another revision, built in a worktree of its own.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};

/// The executables the bench runs.
pub struct Binaries {
    pub service: PathBuf,
    /// `bare-redirect`, when the redirects are measured.
    pub bare: Option<PathBuf>,
}

impl Binaries {
    /// The target directory they were built in: `<target>/release/shortener` ->
    /// `<target>`, which honours `CARGO_TARGET_DIR` and `build.target-dir`.
    pub fn target_dir(&self) -> Result<&Path> {
        self.service
            .parent()
            .and_then(Path::parent)
            .context("the built binary has no target directory above it")
    }
}

/// `cargo build --release --bin shortener [--bin bare-redirect]`; returns the executables
/// cargo reports.
pub fn build(bare: bool) -> Result<Binaries> {
    let mut bins = vec!["--bin", "shortener"];
    if bare {
        bins.extend(["--bin", "bare-redirect"]);
    }
    let messages = release_build(crate::cargo(), &bins)?;
    let built = |name: &str| {
        executable(&messages, name)
            .with_context(|| format!("cargo build reported no `{name}` executable"))
    };
    Ok(Binaries {
        service: built("shortener")?,
        bare: if bare {
            Some(built("bare-redirect")?)
        } else {
            None
        },
    })
}

/// Runs `cargo` (a cargo command, its directory and environment set) as `build --release
/// <bins>`; returns cargo's JSON messages.
fn release_build(mut cargo: Command, bins: &[&str]) -> Result<String> {
    let started = Instant::now();
    println!("==> cargo build --release {}", bins.join(" "));
    let out = cargo
        .args(["build", "--release"])
        .args(bins)
        .arg("--message-format=json-render-diagnostics")
        .stderr(Stdio::inherit())
        .output()
        .context("starting cargo build")?;
    println!("<== cargo build: {:.0?}", started.elapsed());
    if !out.status.success() {
        bail!(
            "cargo build --release {} failed ({})",
            bins.join(" "),
            out.status
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The `shortener` of another revision (`--baseline REV`).
#[derive(Debug, Clone)]
pub struct Baseline {
    pub exe: PathBuf,
    /// The revision's full commit id, and its subject.
    pub commit: String,
    pub subject: String,
}

/// Builds the `shortener` of git revision `rev` in release: checked out (detached) in the
/// worktree `<target>/bench/baseline-src`, built with `CARGO_TARGET_DIR=<target>/bench/
/// baseline-target`, so that the main target's artefacts stay as they are.
pub fn baseline(rev: &str, target: &Path) -> Result<Baseline> {
    let root = crate::root();
    let commit = git(
        &root,
        &["rev-parse", "--verify", &format!("{rev}^{{commit}}")],
    )
    .with_context(|| format!("--baseline {rev}: not a commit of this repository"))?;
    let subject = git(&root, &["log", "-1", "--format=%s", &commit])?;
    println!("==> baseline {rev}: commit {commit}: {subject}");
    let src = target.join("bench").join("baseline-src");
    checkout(&root, &src, &commit)?;
    let mut cargo = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cargo.current_dir(&src).env(
        "CARGO_TARGET_DIR",
        target.join("bench").join("baseline-target"),
    );
    let messages = release_build(cargo, &["--bin", "shortener"])?;
    let exe = executable(&messages, "shortener")
        .context("cargo build of the baseline reported no `shortener` executable")?;
    println!("    baseline executable: {}", exe.display());
    Ok(Baseline {
        exe,
        commit,
        subject,
    })
}

/// `commit`, detached, in the worktree `src` of the repository at `root`. A worktree
/// already there is refreshed in place (checkout, then clean), so that the files the
/// revisions share keep their times and cargo rebuilds only what changed; anything else
/// there (or a worktree that cannot be refreshed) is removed first and added anew.
fn checkout(root: &Path, src: &Path, commit: &str) -> Result<()> {
    let path = src.to_string_lossy().into_owned();
    // A linked worktree has a `.git` file, and is its own top level (not a directory
    // inside some other checkout).
    let top = || -> Result<bool> {
        let top = git(src, &["rev-parse", "--show-toplevel"])?;
        Ok(std::fs::canonicalize(top)? == std::fs::canonicalize(src)?)
    };
    let is_worktree = src.join(".git").is_file() && top().unwrap_or(false);
    if is_worktree {
        let refreshed = git(src, &["checkout", "--quiet", "--force", "--detach", commit])
            .and_then(|_| git(src, &["clean", "-fdxq"]));
        match refreshed {
            Ok(_) => {
                println!("    worktree {path} refreshed to {commit}");
                return Ok(());
            }
            Err(e) => println!("    worktree {path} not refreshed ({e:#}): adding it anew"),
        }
    }
    if src.exists() {
        let _ = git(root, &["worktree", "remove", "--force", &path]);
        if src.exists() {
            std::fs::remove_dir_all(src).with_context(|| format!("removing {path}"))?;
        }
    }
    git(root, &["worktree", "prune"])?;
    git(root, &["worktree", "add", "--detach", &path, commit])?;
    Ok(())
}

/// `git <args>` in `dir`; its output, trimmed.
fn git(dir: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new("git")
        .current_dir(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("running git")?;
    if !out.status.success() {
        bail!(
            "git {} failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The executable of target `name` in cargo's JSON messages (one a line).
fn executable(messages: &str, name: &str) -> Option<PathBuf> {
    messages
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == name)
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn executables_are_read_from_cargo_messages() {
        let messages = r#"{"reason":"compiler-artifact","target":{"name":"shortener_pg"},"executable":null}
not json
{"reason":"compiler-artifact","target":{"name":"shortener"},"executable":"/t/release/shortener"}
{"reason":"build-finished","success":true}
"#;
        assert_eq!(
            executable(messages, "shortener"),
            Some(PathBuf::from("/t/release/shortener"))
        );
        assert_eq!(executable(messages, "shortener_pg"), None);
        assert_eq!(executable(messages, "bare-redirect"), None);
        let bins = Binaries {
            service: PathBuf::from("/t/release/shortener"),
            bare: None,
        };
        assert_eq!(bins.target_dir().unwrap(), Path::new("/t"));
    }
}

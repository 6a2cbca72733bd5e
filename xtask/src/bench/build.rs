//! The release build of what the bench runs: `shortener` and, for the redirects, the bare
//! server (`xtask/bare-redirect`), found where cargo says it put them.

use std::path::{Path, PathBuf};
use std::process::Stdio;
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
    let started = Instant::now();
    let mut bins = vec!["--bin", "shortener"];
    if bare {
        bins.extend(["--bin", "bare-redirect"]);
    }
    println!("==> cargo build --release {}", bins.join(" "));
    let out = crate::cargo()
        .args(["build", "--release"])
        .args(&bins)
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
    let messages = String::from_utf8_lossy(&out.stdout);
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

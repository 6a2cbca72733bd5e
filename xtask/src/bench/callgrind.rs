//! Servers run under `valgrind --tool=callgrind`, counting the instructions they execute
//! over a load. Unlike requests/s or CPU time, the count does not move with whatever else
//! the machine does (the same binary, load and state give the same count within a fraction
//! of a per cent), so it settles differences of a few per cent that the side-by-side runs
//! no longer can on a noisy machine (issue #17: one pair swung from 0.72 to 1.28 between
//! runs). It counts work, not time: cache misses and context switches are not in it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

/// What `valgrind` on `PATH` is, installing it (apt-get, as root) when it is missing.
pub fn ensure_installed() -> Result<()> {
    if crate::find_on_path("valgrind").is_some()
        && crate::find_on_path("callgrind_control").is_some()
    {
        return Ok(());
    }
    crate::apt_install(
        &["valgrind"],
        "valgrind",
        "install valgrind (Debian: `apt-get install valgrind`) and run again",
    )?;
    if crate::find_on_path("callgrind_control").is_none() {
        bail!("valgrind was installed but callgrind_control is not on PATH");
    }
    Ok(())
}

/// A script that runs `exe` (with the arguments it is given) under callgrind, counting
/// nothing until [`count`] switches it on, writing its counts to the returned file when the
/// server exits.
pub fn wrapper(work: &Path, name: &str, exe: &Path) -> Result<(PathBuf, PathBuf)> {
    let script = work.join(format!("callgrind-{name}.sh"));
    let out = work.join(format!("callgrind-{name}.out"));
    let _ = std::fs::remove_file(&out);
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nexec valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file='{}' '{}' \"$@\"\n",
            out.display(),
            exe.display()
        ),
    )
    .with_context(|| format!("writing {}", script.display()))?;
    let mut perms = std::fs::metadata(&script)?.permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&script, perms)?;
    Ok((script, out))
}

/// Switches counting on or off in the server `pid` runs under callgrind.
pub fn count(pid: u32, on: bool) -> Result<()> {
    let status = Command::new("callgrind_control")
        .args(["-i", if on { "on" } else { "off" }, &pid.to_string()])
        .stdout(Stdio::null())
        .status()
        .context("running callgrind_control")?;
    if !status.success() {
        bail!("callgrind_control -i {on} {pid} failed");
    }
    Ok(())
}

/// The instructions a finished run counted, from its output file's `totals:` line (its
/// `summary:` lines may say 0: they are written before counting was switched on).
pub fn totals(out: &Path) -> Result<u64> {
    let text =
        std::fs::read_to_string(out).with_context(|| format!("reading {}", out.display()))?;
    parse_totals(&text).with_context(|| format!("no totals in {}", out.display()))
}

fn parse_totals(text: &str) -> Option<u64> {
    text.lines()
        .rev()
        .find_map(|l| l.strip_prefix("totals:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_are_read_from_the_output_file() {
        let text = "# callgrind format\nversion: 1\nevents: Ir\nsummary: 0\n\nfn=main\n3 10\nsummary: 0\ntotals: 871607791\n";
        assert_eq!(parse_totals(text), Some(871_607_791));
        assert_eq!(parse_totals("events: Ir\nsummary: 42\n"), None);
    }
}

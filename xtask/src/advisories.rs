//! `cargo deny check advisories`, offline, against the RustSec advisory database snapshot
//! that CI keeps beside the repository: `../shared/advisory-db` (its `SNAPSHOT.md` says
//! which commit and date). CI has no network, so cargo-deny must not fetch.
//!
//! cargo-deny 0.20 opens each advisory database as a git checkout at
//! `<db-path>/<last url segment>-<xxhash64 of the url>`; for the default RustSec url that
//! is [`DB_DIR`]. It dates the database by the modification time of `.git/FETCH_HEAD` and,
//! with fetching disabled (`--offline`), fails when that is older than `[advisories]
//! maximum-db-staleness` (`deny.toml`). It then reads only `crates/**/*.md`.
//!
//! The snapshot is read-only and has no `.git`, so [`build_db_path`] builds the layout in
//! `<target>/xtask-advisories/db`: a directory [`DB_DIR`] holding a symlink to every entry
//! of the snapshot and a `.git` of its own whose `FETCH_HEAD` is dated with the snapshot's
//! date (so staleness is judged on the data, not on when CI ran). `.git` is a minimal but
//! valid git directory, so a git command run inside the layout never walks up to the
//! repository's own `.git`. cargo-deny has no command-line option for `db-path`;
//! [`offline_config`] writes a copy of `deny.toml` with `db-path` added to
//! `[advisories]`, so `deny.toml` stays the one policy and, run by hand, keeps fetching
//! into cargo-deny's default directory.
//!
//! The generated config must only ever run with `--offline`: with fetching allowed,
//! cargo-deny would `git reset --hard` and `git fetch` inside the layout.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, bail};

/// The directory cargo-deny 0.20 expects under `db-path` for its default database,
/// `https://github.com/RustSec/advisory-db`: `url_to_db_path` in cargo-deny's
/// `src/advisories/helpers/db.rs` (last path segment of the lower-cased url, then
/// `XxHash64::oneshot(0xca80de71, url)` in 16 hex digits); cargo-deny 0.20.2 reports this
/// path with `-L debug` ("Opening advisory database at ...").
pub const DB_DIR: &str = "advisory-db-3157b0e258782691";

/// A calendar date (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Date {
    pub year: u32,
    pub month: u32,
    pub day: u32,
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

impl Date {
    /// Midnight UTC at the start of the day.
    pub fn to_system_time(self) -> SystemTime {
        // Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
        // `days_from_civil`), for years from 1970 on.
        let y = i64::from(self.year) - i64::from(self.month <= 2);
        let era = y / 400;
        let yoe = y - era * 400;
        let mp = i64::from((self.month + 9) % 12);
        let doy = (153 * mp + 2) / 5 + i64::from(self.day) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        SystemTime::UNIX_EPOCH + Duration::from_secs(days.max(0).unsigned_abs() * 86_400)
    }
}

/// The first `YYYY-MM-DD` date in `text` that is a real date from 1970 on.
pub fn first_date(text: &str) -> Option<Date> {
    let b = text.as_bytes();
    let digits = |r: std::ops::Range<usize>| -> Option<u32> {
        let s = &b[r];
        if !s.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(s).ok()?.parse().ok()
    };
    (0..b.len().saturating_sub(9)).find_map(|i| {
        let before_ok = i == 0 || !b[i - 1].is_ascii_digit();
        let after_ok = b.get(i + 10).is_none_or(|c| !c.is_ascii_digit());
        if !before_ok || !after_ok || b[i + 4] != b'-' || b[i + 7] != b'-' {
            return None;
        }
        let date = Date {
            year: digits(i..i + 4)?,
            month: digits(i + 5..i + 7)?,
            day: digits(i + 8..i + 10)?,
        };
        let y = date.year;
        let leap = y.is_multiple_of(4) && (!y.is_multiple_of(100) || y.is_multiple_of(400));
        let days_in_month = match date.month {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            2 if leap => 29,
            2 => 28,
            _ => return None,
        };
        (date.year >= 1970 && (1..=days_in_month).contains(&date.day)).then_some(date)
    })
}

/// The RustSec snapshot: where it is and the date of its data.
#[derive(Debug)]
pub struct Snapshot {
    pub dir: PathBuf,
    pub date: Date,
}

/// Where CI keeps the snapshot: `../shared/advisory-db` from the repository root.
pub fn snapshot_dir(root: &Path) -> PathBuf {
    match root.parent() {
        Some(parent) => parent.join("shared").join("advisory-db"),
        None => root.join("../shared/advisory-db"),
    }
}

/// The snapshot in `dir`, dated by the first date in its `SNAPSHOT.md`. Fails, in one
/// line, when there is none there.
pub fn locate(dir: &Path) -> Result<Snapshot> {
    if !dir.join("crates").is_dir() {
        bail!(
            "no RustSec advisory snapshot at {} (looked for its crates/ directory), which \
             `ci` checks Cargo.lock against offline; CI has it beside the repository; \
             elsewhere, with network, check advisories with `cargo deny check advisories`",
            dir.display()
        );
    }
    let notes = dir.join("SNAPSHOT.md");
    let text = fs::read_to_string(&notes).with_context(|| {
        format!(
            "reading {} (the snapshot's date, which cargo-deny's staleness check needs)",
            notes.display()
        )
    })?;
    let Some(date) = first_date(&text) else {
        bail!(
            "{} gives no date (YYYY-MM-DD) for the snapshot, which cargo-deny's staleness \
             check needs",
            notes.display()
        );
    };
    Ok(Snapshot {
        dir: dir.to_path_buf(),
        date,
    })
}

/// Builds, afresh, the `db-path` directory cargo-deny reads `snapshot` from:
/// `db_path/DB_DIR/` with a symlink to each entry of the snapshot (its `.git`, if it
/// ever has one, excepted) and a `.git` of its own whose `FETCH_HEAD` bears the
/// snapshot's date. The snapshot itself is only read. Returns `db_path/DB_DIR`.
pub fn build_db_path(snapshot: &Snapshot, db_path: &Path) -> Result<PathBuf> {
    // remove_dir_all removes symlinks, never what they point to.
    match fs::remove_dir_all(db_path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("removing {}", db_path.display())),
    }
    let db = db_path.join(DB_DIR);
    let git = db.join(".git");
    // A valid (empty) git directory: HEAD, objects/, refs/.
    for dir in [git.join("objects"), git.join("refs")] {
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let write = |path: PathBuf, text: String| {
        fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
    };
    write(git.join("HEAD"), "ref: refs/heads/main\n".into())?;
    let fetch_head = git.join("FETCH_HEAD");
    write(
        fetch_head.clone(),
        format!(
            "RustSec advisory-db snapshot of {} linked from {} by `cargo xtask ci`\n",
            snapshot.date,
            snapshot.dir.display()
        ),
    )?;
    fs::File::options()
        .write(true)
        .open(&fetch_head)
        .and_then(|f| f.set_modified(snapshot.date.to_system_time()))
        .with_context(|| format!("dating {}", fetch_head.display()))?;

    let entries = fs::read_dir(&snapshot.dir)
        .with_context(|| format!("reading {}", snapshot.dir.display()))?;
    for entry in entries {
        let name = entry
            .with_context(|| format!("reading {}", snapshot.dir.display()))?
            .file_name();
        if name == ".git" {
            continue;
        }
        let (from, to) = (snapshot.dir.join(&name), db.join(&name));
        std::os::unix::fs::symlink(&from, &to)
            .with_context(|| format!("linking {} to {}", to.display(), from.display()))?;
    }
    Ok(db)
}

/// `deny_toml` with `db-path = "<db_path>"` added as the first key of `[advisories]`.
/// Refuses a policy that sets `db-path` or `db-urls` itself: the layout is built for the
/// default database only.
pub fn offline_config(deny_toml: &str, db_path: &Path) -> Result<String> {
    let key = |line: &str, k: &str| {
        line.trim_start()
            .strip_prefix(k)
            .is_some_and(|rest| rest.trim_start().starts_with('='))
    };
    if let Some(line) = deny_toml
        .lines()
        .find(|l| key(l, "db-path") || key(l, "db-urls"))
    {
        bail!(
            "deny.toml sets `{}`; the offline advisory check builds db-path itself, for the \
             default RustSec database only",
            line.trim()
        );
    }
    let is_header = |line: &str| {
        line.trim()
            .strip_prefix("[advisories]")
            .is_some_and(|rest| rest.is_empty() || rest.trim_start().starts_with('#'))
    };
    let path = db_path
        .to_str()
        .with_context(|| format!("{} is not UTF-8", db_path.display()))?;
    let mut out = String::with_capacity(deny_toml.len() + path.len() + 32);
    let mut added = false;
    for line in deny_toml.lines() {
        out.push_str(line);
        out.push('\n');
        if !added && is_header(line) {
            let escaped = path.replace('\\', "\\\\").replace('"', "\\\"");
            out.push_str(&format!("db-path = \"{escaped}\"\n"));
            added = true;
        }
    }
    if !added {
        bail!("deny.toml has no [advisories] table to add db-path to");
    }
    Ok(out)
}

/// `cargo deny --offline --locked --config <config> check advisories`, from the root.
pub fn command(mut cargo: Command, config: &Path) -> Command {
    cargo
        .args(["deny", "--offline", "--locked", "--config"])
        .arg(config)
        .args(["check", "advisories"]);
    cargo
}

/// Checks `Cargo.lock` against `snapshot`, offline, with `root/deny.toml`'s policy; the
/// layout and the generated config go to `work` (rebuilt on every run).
pub fn check(root: &Path, snapshot: &Snapshot, work: &Path) -> Result<()> {
    let db_path = work.join("db");
    build_db_path(snapshot, &db_path)?;
    let policy = root.join("deny.toml");
    let text =
        fs::read_to_string(&policy).with_context(|| format!("reading {}", policy.display()))?;
    let config = work.join("deny.toml");
    fs::write(&config, offline_config(&text, &db_path)?)
        .with_context(|| format!("writing {}", config.display()))?;
    crate::run(
        &format!(
            "cargo deny check advisories (offline: RustSec snapshot of {}, {})",
            snapshot.date,
            snapshot.dir.display()
        ),
        command(crate::cargo(), &config),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh, empty scratch directory under the system temp dir.
    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("xtask-advisories-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// A minimal snapshot: one advisory, `SNAPSHOT.md`, a licence file.
    fn fake_snapshot(dir: &Path) -> Snapshot {
        let crates = dir.join("crates").join("leftpad");
        fs::create_dir_all(&crates).unwrap();
        fs::write(crates.join("RUSTSEC-2000-0001.md"), "advisory").unwrap();
        fs::write(
            dir.join("SNAPSHOT.md"),
            "at commit `abc` (2026-08-21), replaced on 2026-09-01",
        )
        .unwrap();
        fs::write(dir.join("LICENSE.txt"), "CC0").unwrap();
        locate(dir).unwrap()
    }

    #[test]
    fn the_layout_is_where_cargo_deny_looks_and_dated_by_the_snapshot() {
        let tmp = scratch("layout");
        let snapshot = fake_snapshot(&tmp.join("advisory-db"));
        assert_eq!(
            snapshot.date,
            Date {
                year: 2026,
                month: 8,
                day: 21
            }
        );
        let db_path = tmp.join("target").join("db");

        // Twice: a second run replaces the first layout.
        build_db_path(&snapshot, &db_path).unwrap();
        let db = build_db_path(&snapshot, &db_path).unwrap();

        assert_eq!(db, db_path.join("advisory-db-3157b0e258782691"));
        // What cargo-deny reads: crates/**/*.md, through the link, from the snapshot.
        let crates = db.join("crates");
        assert!(fs::symlink_metadata(&crates).unwrap().is_symlink());
        assert_eq!(fs::read_link(&crates).unwrap(), snapshot.dir.join("crates"));
        assert_eq!(
            fs::read_to_string(crates.join("leftpad/RUSTSEC-2000-0001.md")).unwrap(),
            "advisory"
        );
        assert!(db.join("LICENSE.txt").exists());
        assert!(db.join("SNAPSHOT.md").exists());
        // Its date: FETCH_HEAD's modification time, midnight UTC of the snapshot's date.
        let modified = fs::metadata(db.join(".git/FETCH_HEAD"))
            .unwrap()
            .modified()
            .unwrap();
        assert_eq!(
            modified,
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_787_270_400)
        );
        // A git directory of its own, so git never climbs to an enclosing repository.
        assert_eq!(
            fs::read_to_string(db.join(".git/HEAD")).unwrap(),
            "ref: refs/heads/main\n"
        );
        assert!(db.join(".git/objects").is_dir() && db.join(".git/refs").is_dir());
        // Nothing else, and the snapshot untouched.
        let mut names: Vec<_> = fs::read_dir(&db)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, [".git", "LICENSE.txt", "SNAPSHOT.md", "crates"]);
        let mut originals: Vec<_> = fs::read_dir(&snapshot.dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        originals.sort();
        assert_eq!(originals, ["LICENSE.txt", "SNAPSHOT.md", "crates"]);
        let _ = fs::remove_dir_all(&tmp);
    }

    #[test]
    fn a_missing_snapshot_fails_in_one_line_saying_where_and_what_to_do() {
        let tmp = scratch("missing");
        let dir = tmp.join("shared").join("advisory-db");
        let err = format!("{:#}", locate(&dir).unwrap_err());
        assert!(!err.contains('\n'), "{err}");
        assert!(err.contains(&dir.display().to_string()), "{err}");
        assert!(err.contains("cargo deny check advisories"), "{err}");
        let _ = fs::remove_dir_all(&tmp);
    }

    #[test]
    fn the_snapshot_sits_beside_the_repository() {
        assert_eq!(
            snapshot_dir(Path::new("/work/repo")),
            Path::new("/work/shared/advisory-db")
        );
    }

    #[test]
    fn dates_are_read_from_prose_and_checked() {
        let d = |y, m, day| Date {
            year: y,
            month: m,
            day,
        };
        assert_eq!(first_date("(2026-08-21)"), Some(d(2026, 8, 21)));
        assert_eq!(first_date("2024-02-29."), Some(d(2024, 2, 29)));
        assert_eq!(
            first_date("commit 12026-08-21, then 2026-13-01, then 2025-02-29, then 2025-03-01"),
            Some(d(2025, 3, 1))
        );
        assert_eq!(first_date("no date"), None);
        assert_eq!(first_date(""), None);
        assert_eq!(d(1970, 1, 1).to_system_time(), SystemTime::UNIX_EPOCH);
        assert_eq!(
            d(2000, 3, 1).to_system_time(),
            SystemTime::UNIX_EPOCH + Duration::from_secs(11_017 * 86_400)
        );
    }

    #[test]
    fn the_offline_config_is_the_policy_plus_db_path() {
        let policy = "# header\n[graph]\ntargets = []\n\n[advisories]  # the check\nyanked = \"deny\"\n\n[bans]\n";
        let out = offline_config(policy, Path::new("/t/x\"y/db")).unwrap();
        assert_eq!(
            out,
            "# header\n[graph]\ntargets = []\n\n[advisories]  # the check\ndb-path = \"/t/x\\\"y/db\"\nyanked = \"deny\"\n\n[bans]\n"
        );
        assert!(offline_config("[bans]\n", Path::new("/db")).is_err());
        assert!(offline_config("[advisories]\ndb-path = \"/x\"\n", Path::new("/db")).is_err());
        assert!(
            offline_config(
                "[advisories]\ndb-urls = [\"https://x\"]\n",
                Path::new("/db")
            )
            .is_err()
        );
    }

    #[test]
    fn the_real_policy_takes_a_db_path() {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let policy = fs::read_to_string(root.join("deny.toml")).unwrap();
        assert!(offline_config(&policy, Path::new("/db")).is_ok());
    }

    /// `deny.toml` ignores RUSTSEC-2026-0258 (h2 0.3, no patched 0.3 release) because h2
    /// comes only with awc, a dev-dependency: no normal or build graph of the workspace,
    /// with the features cargo resolves for it, may contain h2 0.3.
    #[test]
    fn h2_0_3_stays_out_of_what_ships() {
        let out = crate::cargo()
            .args([
                "tree",
                "--workspace",
                "--edges",
                "normal,build",
                "--target",
                "x86_64-unknown-linux-gnu",
                "--prefix",
                "none",
                "--format",
                "{p}",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let tree = String::from_utf8_lossy(&out.stdout);
        assert!(tree.contains("actix-http v3"), "unexpected tree:\n{tree}");
        let h2: Vec<_> = tree.lines().filter(|l| l.starts_with("h2 v0.3.")).collect();
        assert!(
            h2.is_empty(),
            "h2 0.3 reaches a shipped build ({h2:?}): the ignore of RUSTSEC-2026-0258 in \
             deny.toml no longer holds"
        );
    }

    #[test]
    fn the_check_runs_offline_on_the_generated_config() {
        let cmd = command(Command::new("cargo"), Path::new("/w/deny.toml"));
        let args: Vec<_> = cmd.get_args().map(|a| a.to_str().unwrap()).collect();
        assert_eq!(
            args,
            [
                "deny",
                "--offline",
                "--locked",
                "--config",
                "/w/deny.toml",
                "check",
                "advisories"
            ]
        );
    }
}

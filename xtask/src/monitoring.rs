//! `check-monitoring`: what an operator loads from `docs/monitoring/` must load.
//!
//! - `promtool check rules docs/monitoring/alerts.yml`: the alert rules parse, their
//!   expressions are valid PromQL, their templates compile;
//! - `promtool test rules docs/monitoring/alerts.test.yml`: each alert fires on the series
//!   meant to fire it, with the labels and annotations written there, and not on healthy
//!   ones;
//! - every query of `docs/monitoring/dashboard.json` is valid PromQL: written as recording
//!   rules into `<target>/tools/dashboard-queries.yml` (Grafana's variables replaced by
//!   values Prometheus accepts) and checked with `promtool check rules`.
//!
//! That the metrics they name are ones the service exports is a test of the service
//! (`crates/shortener-http/tests/api/monitoring.rs`), which needs it running.
//!
//! promtool is the one on `PATH`, else `<target>/tools/prometheus/usr/bin/promtool`. When
//! neither exists, Debian's `prometheus` package (which ships promtool) is fetched with
//! `apt-get download` into `<target>/tools/` and unpacked there with `dpkg-deb -x`:
//! nothing is installed on the system, and it is kept for the next run.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use serde_json::Value;

const HOW_TO_INSTALL: &str = "put promtool on PATH (Debian and Ubuntu: `apt-get install \
     prometheus`; elsewhere the release archive from prometheus.io) and run again";

/// Runs every check; fails on the first error, promtool's own message above.
pub fn check(root: &Path, target: &Path) -> Result<()> {
    let promtool = promtool(target)?;
    let dir = root.join("docs/monitoring");
    let promtool_in = |args: &[&str]| {
        let mut c = Command::new(&promtool);
        c.current_dir(&dir).args(args);
        c
    };
    crate::run(
        "promtool check rules docs/monitoring/alerts.yml",
        promtool_in(&["check", "rules", "alerts.yml"]),
    )?;
    crate::run(
        "promtool test rules docs/monitoring/alerts.test.yml",
        promtool_in(&["test", "rules", "alerts.test.yml"]),
    )?;

    let dashboard = dir.join("dashboard.json");
    let text = std::fs::read_to_string(&dashboard)
        .with_context(|| format!("reading {}", dashboard.display()))?;
    let json: Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not valid JSON", dashboard.display()))?;
    let rules = dashboard_rules(&json)?;
    let file = target.join("tools/dashboard-queries.yml");
    std::fs::create_dir_all(target.join("tools"))?;
    std::fs::write(&file, rules).with_context(|| format!("writing {}", file.display()))?;
    let mut check = Command::new(&promtool);
    check.args(["check", "rules"]).arg(&file);
    crate::run(
        "promtool check rules (the queries of docs/monitoring/dashboard.json)",
        check,
    )?;
    println!("check-monitoring: ok");
    Ok(())
}

/// promtool: on `PATH`, else unpacked under `<target>/tools/prometheus`, fetched there
/// first when missing.
fn promtool(target: &Path) -> Result<PathBuf> {
    if let Some(path) = crate::find_on_path("promtool") {
        return Ok(path);
    }
    let tools = target.join("tools");
    let unpacked = tools.join("prometheus");
    let exe = unpacked.join("usr/bin/promtool");
    if exe.is_file() {
        return Ok(exe);
    }
    fetch_prometheus(&tools, &unpacked)?;
    if !exe.is_file() {
        bail!(
            "Debian's prometheus package has no usr/bin/promtool (unpacked in {}); {HOW_TO_INSTALL}",
            unpacked.display()
        );
    }
    Ok(exe)
}

/// `apt-get download prometheus` into `tools` (with `apt-get update` first, as root, when
/// the package lists do not know it), then `dpkg-deb -x` into `unpacked`, through a
/// temporary directory so an interrupted run never leaves half a tree behind.
fn fetch_prometheus(tools: &Path, unpacked: &Path) -> Result<()> {
    for tool in ["apt-get", "dpkg-deb"] {
        if crate::find_on_path(tool).is_none() {
            bail!("promtool is not on PATH, and there is no {tool} to fetch it; {HOW_TO_INSTALL}");
        }
    }
    std::fs::create_dir_all(tools).with_context(|| format!("creating {}", tools.display()))?;
    let download = || {
        println!(
            "==> apt-get download prometheus (for promtool, into {})",
            tools.display()
        );
        Command::new("apt-get")
            .args(["download", "prometheus"])
            .current_dir(tools)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !download() {
        let updated = is_root() && {
            println!("==> apt-get update (the package lists do not know prometheus)");
            Command::new("apt-get")
                .arg("update")
                .stdin(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        if !updated || !download() {
            bail!("`apt-get download prometheus` failed (see above); {HOW_TO_INSTALL}");
        }
    }
    let debs: Vec<PathBuf> = std::fs::read_dir(tools)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("prometheus_") && n.ends_with(".deb"))
        })
        .collect();
    let [deb] = debs.as_slice() else {
        bail!(
            "expected one prometheus_*.deb in {} after apt-get download, found {}",
            tools.display(),
            debs.len()
        );
    };
    let partial = tools.join("prometheus.partial");
    let _ = std::fs::remove_dir_all(&partial);
    let mut unpack = Command::new("dpkg-deb");
    unpack.arg("-x").arg(deb).arg(&partial);
    crate::run("dpkg-deb -x prometheus_*.deb", unpack)?;
    let _ = std::fs::remove_dir_all(unpacked);
    std::fs::rename(&partial, unpacked)
        .with_context(|| format!("moving {} to {}", partial.display(), unpacked.display()))?;
    // The package is 19 MB and no longer needed.
    let _ = std::fs::remove_file(deb);
    Ok(())
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

/// The dashboard's queries as a Prometheus rule file of recording rules, one per query,
/// named `dashboard:panel_<panel id>_<refId>` so promtool's error names the query. JSON
/// strings are valid YAML, so the file is written as JSON.
fn dashboard_rules(dashboard: &Value) -> Result<String> {
    let mut rules = Vec::new();
    for (id, ref_id, expr) in queries(dashboard) {
        rules.push(serde_json::json!({
            "record": format!("dashboard:panel_{id}_{ref_id}"),
            "expr": promql(&expr).with_context(|| format!("panel {id}, query {ref_id}"))?,
        }));
    }
    if rules.is_empty() {
        bail!("docs/monitoring/dashboard.json has no queries (panels[].targets[].expr)");
    }
    let file = serde_json::json!({ "groups": [{ "name": "dashboard", "rules": rules }] });
    Ok(serde_json::to_string_pretty(&file)? + "\n")
}

/// (panel id, refId, expr) of every query, rows' nested panels included.
fn queries(dashboard: &Value) -> Vec<(String, String, String)> {
    fn walk(panels: &Value, out: &mut Vec<(String, String, String)>) {
        for panel in panels.as_array().into_iter().flatten() {
            let id = panel["id"].to_string();
            for target in panel["targets"].as_array().into_iter().flatten() {
                if let Some(expr) = target["expr"].as_str() {
                    let ref_id = target["refId"].as_str().unwrap_or("?");
                    out.push((id.clone(), ref_id.to_owned(), expr.to_owned()));
                }
            }
            walk(&panel["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    out
}

/// A Grafana query as plain PromQL: the interval variables become `5m`, the dashboard's
/// `instance` variable `.*` (it only appears inside `=~"..."`). Any other variable is an
/// error, so a new one is taught here rather than checked wrongly.
fn promql(expr: &str) -> Result<String> {
    let mut out = expr.to_owned();
    for (var, value) in [
        ("$__rate_interval", "5m"),
        ("$__interval", "5m"),
        ("$__range", "5m"),
        ("${instance}", ".*"),
        ("$instance", ".*"),
    ] {
        out = out.replace(var, value);
    }
    if let Some(at) = out.find('$') {
        bail!(
            "unknown Grafana variable at `{}` in `{expr}`; teach xtask/src/monitoring.rs's `promql` its value",
            &out[at..]
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grafana_variables_become_promql() {
        assert_eq!(
            promql(r#"sum(rate(x{instance=~"$instance"}[$__rate_interval]))"#).unwrap(),
            r#"sum(rate(x{instance=~".*"}[5m]))"#
        );
        assert!(promql(r#"x{job="$job"}"#).is_err());
    }

    #[test]
    fn every_query_becomes_a_recording_rule() {
        let dashboard = serde_json::json!({"panels": [
            {"id": 1, "type": "row", "panels": [
                {"id": 2, "targets": [{"refId": "A", "expr": "up"}]}
            ]},
            {"id": 3, "targets": [{"refId": "A", "expr": "a"}, {"refId": "B", "expr": "b"}]},
            {"id": 4, "type": "text"}
        ]});
        let rules: Value = serde_json::from_str(&dashboard_rules(&dashboard).unwrap()).unwrap();
        let names: Vec<&str> = rules["groups"][0]["rules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["record"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "dashboard:panel_2_A",
                "dashboard:panel_3_A",
                "dashboard:panel_3_B"
            ]
        );
        assert!(dashboard_rules(&serde_json::json!({"panels": []})).is_err());
    }
}

//! What an operator loads from `docs/monitoring/` (the Prometheus alert rules and the
//! Grafana dashboard) names only metrics the service exports, and the dashboard shows every
//! metric of the catalog. `cargo xtask check-monitoring` checks that the same files load
//! (promtool); this checks them against the service.
//!
//! A metric's name is read from the queries (`expr`) of both files: every identifier
//! starting `shortener_` or `process_` outside string literals, a histogram's `_bucket`,
//! `_sum` and `_count` series counted as the histogram. It is exported when `/metrics`
//! has a `# TYPE <name> ...` line for it.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use shortener_app::metrics::CATALOG;

use crate::support::TestApp;

const ALERTS: &str = include_str!("../../../../docs/monitoring/alerts.yml");
const DASHBOARD: &str = include_str!("../../../../docs/monitoring/dashboard.json");
const README: &str = include_str!("../../../../README.md");

/// The metric a series name belongs to: a histogram's `_bucket`, `_sum` and `_count`
/// series are the histogram's.
fn metric_of(series: &str) -> &str {
    ["_bucket", "_sum", "_count"]
        .iter()
        .find_map(|suffix| series.strip_suffix(suffix))
        .unwrap_or(series)
}

/// The service's metrics a PromQL expression reads: identifiers starting `shortener_` or
/// `process_`, outside string literals (label values), as [`metric_of`] names them.
fn metrics_in(expr: &str) -> BTreeSet<String> {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let mut names = BTreeSet::new();
    let mut chars = expr.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        if matches!(c, '"' | '\'' | '`') {
            // A string literal: skip to its closing quote (backslash escapes, except in `raw`).
            let mut escaped = false;
            for (_, d) in chars.by_ref() {
                if escaped {
                    escaped = false;
                } else if d == '\\' && c != '`' {
                    escaped = true;
                } else if d == c {
                    break;
                }
            }
        } else if is_ident(c) {
            let mut end = start + c.len_utf8();
            while let Some(&(i, d)) = chars.peek() {
                if !is_ident(d) {
                    break;
                }
                end = i + d.len_utf8();
                chars.next();
            }
            let ident = &expr[start..end];
            if ident.starts_with("shortener_") || ident.starts_with("process_") {
                names.insert(metric_of(ident).to_owned());
            }
        }
    }
    names
}

/// The `expr` of every rule of a Prometheus rule file, read by hand (no YAML parser in the
/// tree): `expr: <query>` on one line (quotes removed), or a block scalar (`expr: >-`,
/// `expr: |`) whose lines are those indented deeper than the `expr:` key, joined by
/// spaces.
fn rule_exprs(yaml: &str) -> Vec<String> {
    let mut exprs = Vec::new();
    let mut lines = yaml.lines().peekable();
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        let Some(value) = trimmed
            .strip_prefix("- expr:")
            .or_else(|| trimmed.strip_prefix("expr:"))
        else {
            continue;
        };
        // The key's own column: `- expr:` sits two to the right of its dash.
        let indent = line.len() - trimmed.len() + if trimmed.starts_with('-') { 2 } else { 0 };
        let value = value.trim();
        if value.starts_with('>') || value.starts_with('|') {
            let mut block = Vec::new();
            while let Some(next) = lines.peek() {
                let body = next.trim_start();
                if !body.is_empty() && next.len() - body.len() <= indent {
                    break;
                }
                block.push(body.trim_end());
                lines.next();
            }
            exprs.push(block.join(" ").trim().to_owned());
        } else {
            let unquoted = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or(value);
            exprs.push(unquoted.to_owned());
        }
    }
    exprs
}

/// The `expr` of every query of a Grafana dashboard, wherever it sits (panels, rows'
/// nested panels, targets).
fn dashboard_exprs(dashboard: &Value) -> Vec<String> {
    fn walk(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (key, v) in map {
                    match (key.as_str(), v) {
                        ("expr", Value::String(expr)) => out.push(expr.clone()),
                        _ => walk(v, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(dashboard, &mut out);
    out
}

/// The metrics a Prometheus text exposition declares (`# TYPE <name> <type>`).
fn exported(exposition: &str) -> BTreeSet<String> {
    exposition
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

fn names_in(exprs: &[String]) -> BTreeSet<String> {
    exprs.iter().flat_map(|e| metrics_in(e)).collect()
}

fn alert_metrics() -> BTreeSet<String> {
    names_in(&rule_exprs(ALERTS))
}

fn dashboard_metrics() -> BTreeSet<String> {
    let dashboard: Value = serde_json::from_str(DASHBOARD).expect("dashboard.json is JSON");
    names_in(&dashboard_exprs(&dashboard))
}

#[test]
fn a_histogram_series_counts_as_its_histogram() {
    assert_eq!(
        metrics_in(
            "histogram_quantile(0.99, sum by (le, route) \
             (rate(shortener_http_request_duration_seconds_bucket[5m])))"
        ),
        BTreeSet::from(["shortener_http_request_duration_seconds".to_owned()])
    );
    assert_eq!(
        metric_of("shortener_lookup_batch_size_sum"),
        "shortener_lookup_batch_size"
    );
    assert_eq!(
        metric_of("shortener_lookup_batch_size_count"),
        "shortener_lookup_batch_size"
    );
    assert_eq!(
        metric_of("shortener_redirects_total"),
        "shortener_redirects_total"
    );
}

#[test]
fn every_metric_of_an_expression_is_read_and_nothing_else() {
    assert_eq!(
        metrics_in(
            r#"sum by (instance) (rate(shortener_resolve_cache_hits_total{instance=~"$instance"}[$__rate_interval]))
               / (sum(rate(shortener_resolve_cache_hits_total[5m])) + sum(rate(shortener_resolve_cache_misses_total[5m])))"#
        ),
        BTreeSet::from([
            "shortener_resolve_cache_hits_total".to_owned(),
            "shortener_resolve_cache_misses_total".to_owned(),
        ])
    );
    assert_eq!(
        metrics_in("time() - process_start_time_seconds > 600"),
        BTreeSet::from(["process_start_time_seconds".to_owned()])
    );
    // Label values (quoted any way), names with another prefix and `up` are not ours.
    assert_eq!(
        metrics_in(
            r#"up{job="shortener_x"} + my_shortener_total{a='process_b', c=`shortener_\`} + other:shortener_x + x{a="\"shortener_y"}"#
        ),
        BTreeSet::new()
    );
}

#[test]
fn rule_expressions_are_read_inline_and_from_block_scalars() {
    let yaml = r#"groups:
  - name: g
    rules:
      - alert: A
        expr: up{job="shortener"} == 0
        for: 1m
      - alert: B
        expr: >-
          sum(rate(shortener_a_total[5m]))
          / sum(rate(shortener_b_total[5m]))

          > 0.5
        for: 5m
      - record: c
        expr: "shortener_c"
      - expr: |
          shortener_d
        record: d
"#;
    assert_eq!(
        rule_exprs(yaml),
        [
            r#"up{job="shortener"} == 0"#,
            "sum(rate(shortener_a_total[5m])) / sum(rate(shortener_b_total[5m]))  > 0.5",
            "shortener_c",
            "shortener_d",
        ]
    );
}

#[test]
fn dashboard_expressions_are_read_wherever_they_sit() {
    let dashboard = json!({"panels": [
        {"type": "row", "panels": [{"targets": [{"expr": "shortener_a"}]}]},
        {"targets": [{"expr": "shortener_b"}, {"expr": "process_c"}], "title": "expr"},
        {"type": "text"}
    ]});
    assert_eq!(
        dashboard_exprs(&dashboard),
        ["shortener_a", "shortener_b", "process_c"]
    );
}

#[test]
fn exported_metrics_are_read_from_type_lines() {
    let text = "# HELP shortener_redirects_total GET/HEAD /{code} answers\n\
                # TYPE shortener_redirects_total counter\n\
                shortener_redirects_total{outcome=\"found\"} 3\n\
                # TYPE shortener_lookup_duration_seconds histogram\n\
                shortener_lookup_duration_seconds_bucket{le=\"+Inf\"} 1\n";
    assert_eq!(
        exported(text),
        BTreeSet::from([
            "shortener_redirects_total".to_owned(),
            "shortener_lookup_duration_seconds".to_owned(),
        ])
    );
}

/// Needs no service: the committed files are read whole, each alert has a query naming
/// our metrics, and the dashboard shows the whole catalog and nothing outside it.
#[test]
fn the_dashboard_covers_the_catalog_and_the_alerts_use_it() {
    let catalog: BTreeSet<String> = CATALOG.iter().map(|i| i.name.to_string()).collect();
    let alert_rules = ALERTS.matches("- alert: ").count();
    assert_eq!(
        rule_exprs(ALERTS).len(),
        alert_rules,
        "one expr per alert in alerts.yml"
    );
    let alerts = alert_metrics();
    let dashboard = dashboard_metrics();
    assert!(!alerts.is_empty(), "alerts.yml names no metric of ours");
    assert!(
        !dashboard.is_empty(),
        "dashboard.json names no metric of ours"
    );

    let unshown: Vec<_> = catalog.difference(&dashboard).collect();
    assert!(
        unshown.is_empty(),
        "the dashboard does not show {unshown:?}"
    );
    let unknown: Vec<_> = alerts
        .union(&dashboard)
        .filter(|n| !catalog.contains(*n))
        .collect();
    assert!(
        unknown.is_empty(),
        "docs/monitoring uses {unknown:?}, not in the catalog (a typo, or add it to shortener_app::metrics::CATALOG and the README's table)"
    );
}

/// Fails until the service serves `GET /metrics` (issue 16).
/// The README's metrics table is the catalog, row for row: name, type, labels, meaning.
#[test]
fn the_readme_lists_the_catalog_row_for_row() {
    let rows: Vec<&str> = README
        .lines()
        .filter(|l| l.starts_with("| `shortener_") || l.starts_with("| `process_"))
        .collect();
    for i in CATALOG {
        let labels: Vec<String> = i.labels.iter().map(|l| format!("`{l}`")).collect();
        let row = format!(
            "| `{}` | {} | {} | {} |",
            i.name,
            i.kind.as_str(),
            labels.join(", "),
            i.help
        );
        assert!(
            rows.contains(&row.as_str()),
            "README.md's metrics table lacks (or differs from) this row:\n{row}"
        );
    }
    assert_eq!(rows.len(), CATALOG.len(), "README rows: {rows:#?}");
}

#[actix_web::test]
async fn every_metric_the_alerts_and_the_dashboard_use_is_exported() {
    let used: BTreeSet<String> = alert_metrics()
        .union(&dashboard_metrics())
        .cloned()
        .collect();
    assert!(!used.is_empty());

    let app = TestApp::spawn().await;
    // A little traffic first, so the labelled series exist: an API request, a redirect
    // found and one not found, and the click it counted written.
    let (_, key) = app.account("Acme").with_key().await;
    let code = app.code(&key, "https://example.com/monitored").await;
    assert_eq!(
        app.get(&format!("/{code}"), None).await.status.as_u16(),
        302
    );
    assert_eq!(app.get("/zzzzzzzz", None).await.status.as_u16(), 404);
    app.flush_clicks().await;

    let reply = app.get("/metrics", None).await;
    let text = String::from_utf8_lossy(&reply.raw);
    assert_eq!(
        reply.status.as_u16(),
        200,
        "GET /metrics: {}",
        text.chars().take(300).collect::<String>()
    );
    let mut exported = exported(&text);
    // A replica's series exist once there are replicas: `replicas.rs` checks them.
    exported.extend(
        [
            shortener_app::metrics::REPLICA_UP.name,
            shortener_app::metrics::REPLICA_LAG.name,
        ]
        .map(str::to_owned),
    );
    let missing: Vec<_> = used.difference(&exported).collect();
    assert!(
        missing.is_empty(),
        "docs/monitoring uses metrics /metrics does not export (no `# TYPE` line): {missing:?}"
    );
}

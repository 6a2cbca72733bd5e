//! The packwerk-style boundary check.
//!
//! Each workspace crate declares its layer in `[package.metadata.boundary]`. We read the
//! dependency graph cargo actually resolved for the host (`cargo metadata
//! --filter-platform`), follow normal and build edges (dev edges never reach a shipped
//! binary), and report every path by which an inner crate reaches something it must not.
//! Test support (`layer = "test-support"`) is one of those things for every other crate:
//! it may be used from `[dev-dependencies]` only.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fmt;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde::Deserialize;

/// Where a crate sits; inner layers may depend only on layers further in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    /// Pure link types and rules.
    Domain,
    /// A module (subscriptions, audit): pure, owns its own types and rules.
    Module,
    /// Use cases and their ports.
    App,
    /// Adapters to the outside world (PostgreSQL).
    Infra,
    /// The binary and its wiring: may depend on anything.
    Bin,
    /// Test support, used only from dev-dependencies.
    TestSupport,
    /// Project automation.
    Tooling,
}

impl Layer {
    fn parse(s: &str) -> Option<Layer> {
        Some(match s {
            "domain" => Layer::Domain,
            "module" => Layer::Module,
            "app" => Layer::App,
            "infra" => Layer::Infra,
            "bin" => Layer::Bin,
            "test-support" => Layer::TestSupport,
            "tooling" => Layer::Tooling,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Layer::Domain => "domain",
            Layer::Module => "module",
            Layer::App => "app",
            Layer::Infra => "infra",
            Layer::Bin => "bin",
            Layer::TestSupport => "test-support",
            Layer::Tooling => "tooling",
        }
    }

    /// Workspace layers this one may depend on directly (through normal and build edges;
    /// dev edges are never checked). Test support is reachable only through dev edges,
    /// except from test support itself.
    fn may_use(self, other: Layer) -> bool {
        use Layer::*;
        match self {
            Domain => false,
            Module => other == Domain,
            App => matches!(other, Domain | Module),
            Infra => matches!(other, Domain | Module | App),
            Bin | Tooling => !matches!(other, Tooling | TestSupport),
            TestSupport => !matches!(other, Tooling),
        }
    }

    /// External crates that must never be reached, directly or transitively.
    fn banned(self, name: &str) -> bool {
        let infra = |n: &str| {
            n.starts_with("diesel")
                || n.starts_with("actix")
                || n == "awc"
                || n.starts_with("deadpool")
                || n.starts_with("tokio-postgres")
                || n == "postgres"
                || n == "config"
        };
        match self {
            Layer::Domain | Layer::Module => {
                infra(name) || name == "tokio" || name.starts_with("tokio-")
            }
            Layer::App => infra(name),
            _ => false,
        }
    }

    /// Whether direct external dependencies must be on the crate's allow-list.
    fn needs_allow_list(self) -> bool {
        matches!(self, Layer::Domain | Layer::Module)
    }
}

/// One broken rule, with the dependency path that breaks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The workspace crate whose boundary is broken.
    pub krate: String,
    /// Why it is a violation.
    pub rule: String,
    /// The crate names from `krate` to the offending crate.
    pub path: Vec<String>,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}\n    path: {}",
            self.krate,
            self.rule,
            self.path.join(" -> ")
        )
    }
}

#[derive(Deserialize)]
struct Metadata {
    packages: Vec<Package>,
    workspace_members: Vec<String>,
    resolve: Resolve,
}

#[derive(Deserialize)]
struct Package {
    id: String,
    name: String,
    #[serde(default)]
    metadata: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Resolve {
    nodes: Vec<Node>,
}

#[derive(Deserialize)]
struct Node {
    id: String,
    deps: Vec<NodeDep>,
}

#[derive(Deserialize)]
struct NodeDep {
    pkg: String,
    dep_kinds: Vec<DepKind>,
}

#[derive(Deserialize)]
struct DepKind {
    kind: Option<String>,
}

struct Declared {
    layer: Layer,
    allow: HashSet<String>,
}

fn host_triple() -> Result<String> {
    let out = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
        .arg("-vV")
        .output()
        .context("running rustc -vV")?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(str::to_owned)
        .context("rustc -vV printed no host line")
}

fn metadata(manifest: &Path) -> Result<Metadata> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--filter-platform"])
        .arg(host_triple()?)
        .arg("--manifest-path")
        .arg(manifest)
        .output()
        .context("running cargo metadata")?;
    if !out.status.success() {
        bail!(
            "cargo metadata failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    serde_json::from_slice(&out.stdout).context("reading cargo metadata output")
}

/// Checks the workspace whose root manifest is `manifest`; returns every violation.
pub fn check(manifest: &Path) -> Result<Vec<Violation>> {
    let meta = metadata(manifest)?;
    let names: HashMap<&str, &str> = meta
        .packages
        .iter()
        .map(|p| (p.id.as_str(), p.name.as_str()))
        .collect();
    let members: HashSet<&str> = meta.workspace_members.iter().map(String::as_str).collect();
    let edges: HashMap<&str, Vec<&str>> = meta
        .resolve
        .nodes
        .iter()
        .map(|n| {
            let deps = n
                .deps
                .iter()
                .filter(|d| d.dep_kinds.iter().any(|k| k.kind.as_deref() != Some("dev")))
                .map(|d| d.pkg.as_str())
                .collect();
            (n.id.as_str(), deps)
        })
        .collect();

    let mut violations = Vec::new();
    let mut declared: BTreeMap<&str, Declared> = BTreeMap::new();
    for p in meta
        .packages
        .iter()
        .filter(|p| members.contains(p.id.as_str()))
    {
        let boundary = p.metadata.as_ref().and_then(|m| m.get("boundary"));
        let layer = boundary
            .and_then(|b| b.get("layer"))
            .and_then(|l| l.as_str());
        match layer.and_then(Layer::parse) {
            Some(layer) => {
                let allow = boundary
                    .and_then(|b| b.get("allow"))
                    .and_then(|a| a.as_array())
                    .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
                    .unwrap_or_default();
                declared.insert(p.id.as_str(), Declared { layer, allow });
            }
            None => violations.push(Violation {
                krate: p.name.clone(),
                rule: format!(
                    "no valid layer declared (found {layer:?}); add [package.metadata.boundary] layer = \
                     \"domain\" | \"module\" | \"app\" | \"infra\" | \"bin\" | \"test-support\" | \"tooling\""
                ),
                path: vec![p.name.clone()],
            }),
        }
    }

    for (&id, decl) in &declared {
        let name = names[id];
        let direct = edges.get(id).cloned().unwrap_or_default();
        // Direct dependencies: layer direction inside the workspace, allow-list outside.
        for dep in &direct {
            let dep_name = names[dep];
            if let Some(other) = declared.get(dep) {
                if !decl.layer.may_use(other.layer) {
                    let only_dev = if other.layer == Layer::TestSupport {
                        "; test support belongs in [dev-dependencies]"
                    } else {
                        ""
                    };
                    violations.push(Violation {
                        krate: name.to_owned(),
                        rule: format!(
                            "a {} crate must not depend on {dep_name} (layer {}){only_dev}",
                            decl.layer.name(),
                            other.layer.name()
                        ),
                        path: vec![name.to_owned(), dep_name.to_owned()],
                    });
                }
            } else if decl.layer.needs_allow_list() && !decl.allow.contains(dep_name) {
                violations.push(Violation {
                    krate: name.to_owned(),
                    rule: format!(
                        "external crate {dep_name} is not on this {} crate's allow-list",
                        decl.layer.name()
                    ),
                    path: vec![name.to_owned(), dep_name.to_owned()],
                });
            }
        }
        // Transitive: breadth-first, so the path printed is a shortest one.
        let mut parent: HashMap<&str, &str> = HashMap::new();
        let mut seen: HashSet<&str> = HashSet::from([id]);
        let mut queue = VecDeque::from([id]);
        while let Some(cur) = queue.pop_front() {
            for &next in edges.get(cur).map(Vec::as_slice).unwrap_or_default() {
                if !seen.insert(next) {
                    continue;
                }
                parent.insert(next, cur);
                let next_name = names[next];
                let path = || {
                    let mut path = vec![next_name.to_owned()];
                    let mut at = next;
                    while let Some(&p) = parent.get(at) {
                        path.push(names[p].to_owned());
                        at = p;
                    }
                    path.reverse();
                    path
                };
                if decl.layer.banned(next_name) {
                    violations.push(Violation {
                        krate: name.to_owned(),
                        rule: format!("a {} crate must never reach {next_name}", decl.layer.name()),
                        path: path(),
                    });
                }
                // Test support reached through another crate (a direct edge is reported
                // above, as a layer the crate may not use).
                let is_test_support = declared
                    .get(next)
                    .is_some_and(|d| d.layer == Layer::TestSupport);
                if is_test_support && cur != id && decl.layer != Layer::TestSupport {
                    violations.push(Violation {
                        krate: name.to_owned(),
                        rule: format!(
                            "a {} crate must never reach {next_name} (layer test-support) except \
                             through [dev-dependencies]",
                            decl.layer.name()
                        ),
                        path: path(),
                    });
                }
                queue.push_back(next);
            }
        }
    }
    Ok(violations)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn copy_dir(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            let target = to.join(e.file_name());
            if e.file_type().unwrap().is_dir() {
                copy_dir(&e.path(), &target);
            } else {
                std::fs::copy(e.path(), target).unwrap();
            }
        }
    }

    #[test]
    fn the_real_workspace_keeps_its_boundaries() {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
        let violations = check(&root).unwrap();
        assert!(
            violations.is_empty(),
            "{}",
            violations
                .iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        );
    }

    /// `violations` are exactly `expected`: (crate, whole path) pairs, in any order.
    fn assert_exactly(violations: &[Violation], expected: &[(&str, &str)]) {
        let paths: Vec<(String, String)> = violations
            .iter()
            .map(|v| (v.krate.clone(), v.path.join(" -> ")))
            .collect();
        for (krate, path) in expected {
            assert!(
                paths.contains(&((*krate).to_owned(), (*path).to_owned())),
                "missing {path}; found {paths:?}"
            );
        }
        assert_eq!(
            violations.len(),
            expected.len(),
            "unexpected extra violations: {paths:?}"
        );
    }

    /// The check's violations on the workspace `xtask/fixtures/{name}`.
    fn check_fixture(name: &str) -> Vec<Violation> {
        // Copied out so cargo's lock file for the fixture never lands in the repository.
        let tmp = std::env::temp_dir().join(format!("xtask-fixture-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        copy_dir(
            &PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("fixtures")
                .join(name),
            &tmp,
        );
        let violations = check(&tmp.join("Cargo.toml")).unwrap();
        let _ = std::fs::remove_dir_all(&tmp);
        violations
    }

    #[test]
    fn planted_violations_are_found_with_their_whole_path() {
        let violations = check_fixture("violation");

        let expected = [
            // banned crate two hops away, through an allowed helper
            ("dom", "dom -> helper -> tokio"),
            // a direct external dependency missing from the allow-list
            ("dom", "dom -> leftpad"),
            // an inner layer depending on an outer one
            ("modl", "modl -> appl"),
            // ... and, through it, reaching infrastructure transitively
            ("modl", "modl -> appl -> diesel"),
            // the app layer reaching an infrastructure crate
            ("appl", "appl -> diesel"),
            // a crate with no declared layer
            ("nolayer", "nolayer"),
        ];
        assert_exactly(&violations, &expected);
    }

    #[test]
    fn test_support_through_a_normal_or_build_edge_is_found_with_its_path() {
        let violations = check_fixture("test-support");

        let expected = [
            // a normal dependency on the test-support crate
            ("infr", "infr -> testkit"),
            // a build dependency on it
            ("binr", "binr -> testkit"),
            // reaching it through another crate's normal dependency; toolr's own
            // dev-dependency on it is fine and not reported
            ("toolr", "toolr -> infr -> testkit"),
        ];
        assert_exactly(&violations, &expected);
        for v in &violations {
            assert!(v.rule.contains("test-support"), "{v}");
            assert!(v.rule.contains("[dev-dependencies]"), "{v}");
        }
    }
}

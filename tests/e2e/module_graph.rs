//! ARCHITECTURE.md's one direction of dependency, checked: no import cycle between the
//! modules of a crate. A module may use its ancestors and descendants (a parent declares
//! its children, which use its types); any other cycle (two siblings using each other,
//! directly or around a longer loop) fails this test with the modules and the edges.
//!
//! The graph is read from the sources: every `crate::…` and `super::…` path outside the
//! test modules, resolved to the longest module it names.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::support::root;

/// Module path (`store::postgres`) → its file, for every module of the crate at `src`.
fn modules(src: &Path) -> BTreeMap<String, std::path::PathBuf> {
    let mut found = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("readable source directory") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let relative = path
                .strip_prefix(src)
                .expect("under src")
                .with_extension("");
            let mut parts: Vec<String> = relative
                .iter()
                .map(|p| p.to_string_lossy().into_owned())
                .collect();
            if parts.first().is_some_and(|p| p == "bin") {
                continue;
            }
            if parts
                .last()
                .is_some_and(|p| p == "lib" || p == "main" || p == "mod")
            {
                parts.pop();
            }
            found.insert(parts.join("::"), path);
        }
    }
    found
}

/// Who uses whom, ancestors and descendants left out.
fn edges(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let modules = modules(src);
    let path_pattern = regex::Regex::new(r"\b(?:crate|super)(?:::\w+)+").expect("pattern");
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, file) in &modules {
        let text = std::fs::read_to_string(file).expect("source");
        let text = text
            .find("#[cfg(test)]\nmod tests")
            .map_or(text.as_str(), |cut| &text[..cut]);
        let here: Vec<&str> = if module.is_empty() {
            Vec::new()
        } else {
            module.split("::").collect()
        };
        for found in path_pattern.find_iter(text) {
            let parts: Vec<&str> = found.as_str().split("::").collect();
            let mut full: Vec<&str> = if parts[0] == "crate" {
                Vec::new()
            } else {
                here.clone()
            };
            let mut rest = if parts[0] == "crate" {
                &parts[1..]
            } else {
                &parts[..]
            };
            while rest.first() == Some(&"super") {
                full.pop();
                rest = &rest[1..];
            }
            full.extend_from_slice(rest);
            let target = (1..=full.len())
                .rev()
                .map(|k| full[..k].join("::"))
                .find(|candidate| modules.contains_key(candidate));
            if let Some(target) = target
                && !related(module, &target)
            {
                graph.entry(module.clone()).or_default().insert(target);
            }
        }
    }
    graph
}

/// One is the other, or an ancestor of it.
fn related(a: &str, b: &str) -> bool {
    a.is_empty()
        || b.is_empty()
        || a == b
        || a.starts_with(&format!("{b}::"))
        || b.starts_with(&format!("{a}::"))
}

/// The strongly connected components with more than one module (Tarjan).
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct Walk<'a> {
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        found: Vec<Vec<String>>,
    }
    impl<'a> Walk<'a> {
        fn visit(&mut self, node: &'a str) {
            let n = self.index.len();
            self.index.insert(node, n);
            self.low.insert(node, n);
            self.stack.push(node);
            for next in self.graph.get(node).into_iter().flatten() {
                if !self.index.contains_key(next.as_str()) {
                    self.visit(next);
                    let low = self.low[node].min(self.low[next.as_str()]);
                    self.low.insert(node, low);
                } else if self.stack.contains(&next.as_str()) {
                    let low = self.low[node].min(self.index[next.as_str()]);
                    self.low.insert(node, low);
                }
            }
            if self.low[node] == self.index[node] {
                let mut component = Vec::new();
                while let Some(top) = self.stack.pop() {
                    component.push(top.to_owned());
                    if top == node {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.found.push(component);
                }
            }
        }
    }
    let mut walk = Walk {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        found: Vec::new(),
    };
    for node in graph.keys() {
        if !walk.index.contains_key(node.as_str()) {
            walk.visit(node);
        }
    }
    walk.found
}

fn describe(graph: &BTreeMap<String, BTreeSet<String>>, cycle: &[String]) -> String {
    cycle
        .iter()
        .map(|module| {
            let uses: Vec<&str> = graph
                .get(module)
                .into_iter()
                .flatten()
                .filter(|t| cycle.contains(t))
                .map(String::as_str)
                .collect();
            format!("  {module} uses {}", uses.join(", "))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn no_crate_has_an_import_cycle() {
    let mut problems = Vec::new();
    for krate in [
        "engine/src",
        "host/src",
        "providers/coolify/src",
        "providers/cloudflare/src",
    ] {
        let graph = edges(&root().join(krate));
        assert!(
            !graph.is_empty() || krate.starts_with("providers"),
            "{krate}: no edges read"
        );
        for cycle in cycles(&graph) {
            problems.push(format!("{krate}:\n{}", describe(&graph, &cycle)));
        }
    }
    assert!(
        problems.is_empty(),
        "import cycles:\n{}",
        problems.join("\n")
    );
}

/// The check can fail: a made-up crate with two siblings using each other is caught.
#[test]
fn a_cycle_between_siblings_is_caught() {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path();
    std::fs::write(src.join("lib.rs"), "mod a;\nmod b;\nmod c;\n").expect("lib");
    std::fs::write(src.join("a.rs"), "use crate::b::B;\n").expect("a");
    std::fs::write(src.join("b.rs"), "pub struct B;\nuse super::c::C;\n").expect("b");
    std::fs::write(
        src.join("c.rs"),
        "pub struct C;\nfn f() { crate::a::g(); }\n",
    )
    .expect("c");
    let graph = edges(src);
    assert_eq!(cycles(&graph), [vec!["a", "b", "c"]]);
    // A child using its parent is not a cycle.
    std::fs::create_dir(src.join("b")).expect("dir");
    std::fs::write(src.join("b/inner.rs"), "use super::B;\n").expect("inner");
    std::fs::write(src.join("c.rs"), "pub struct C;\n").expect("c");
    assert!(cycles(&edges(src)).is_empty(), "{:?}", edges(src));
}

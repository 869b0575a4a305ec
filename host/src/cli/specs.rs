//! Which specs a command works on when none is named: `fabrik.yaml` in the project
//! directory, else every spec there (a YAML mapping with `name` and `template`), as
//! Fly's `fly.toml` and Kamal's `config/deploy.yml` are found without a flag.

use std::path::{Path, PathBuf};

use fabrik_engine::workspace::current_root;

/// The spec a project names by convention.
pub const DEFAULT_SPEC: &str = "fabrik.yaml";

/// `given` if any, else the project's specs; `None` after saying none was found.
pub fn or_found(given: &[PathBuf]) -> anyhow::Result<Option<Vec<PathBuf>>> {
    if !given.is_empty() {
        return Ok(Some(given.to_vec()));
    }
    let root = current_root()?;
    let cwd = std::env::current_dir()?;
    let shown = |path: PathBuf| -> PathBuf {
        path.strip_prefix(&cwd)
            .map(Path::to_path_buf)
            .unwrap_or(path)
    };
    let found = find(&root)?;
    if found.is_empty() {
        errln!(
            "error: no spec named, and no spec in {}\n  hint: name one (`fabrik apply app.yaml`), or write one with `fabrik new --template node-api NAME`",
            root.display()
        );
        return Ok(None);
    }
    let found: Vec<PathBuf> = found.into_iter().map(shown).collect();
    errln!(
        "using the project's spec{}: {}",
        if found.len() == 1 { "" } else { "s" },
        found
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(Some(found))
}

/// `fabrik.yaml` in `dir` if it exists, else the YAML files in `dir` that look like
/// specs, by name.
pub fn find(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let conventional = dir.join(DEFAULT_SPEC);
    if conventional.is_file() {
        return Ok(vec![conventional]);
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .filter(|p| looks_like_a_spec(p))
        .collect();
    found.sort();
    Ok(found)
}

/// The `name` a spec file gives its app, if it reads as a spec.
pub fn name_of(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let value: serde_yaml::Value = serde_yaml::from_str(&text).ok()?;
    value.get("name")?.as_str().map(str::to_owned)
}

/// A YAML mapping with `name` and `template` at its top (other YAML files, such as a
/// compose file or CI configuration, are left alone). Reads at most 1 MiB.
fn looks_like_a_spec(path: &Path) -> bool {
    use std::io::Read as _;
    let Ok(file) = std::fs::File::open(path) else {
        return false;
    };
    let mut text = String::new();
    if file.take(1 << 20).read_to_string(&mut text).is_err() {
        return false;
    }
    serde_yaml::from_str::<serde_yaml::Value>(&text)
        .ok()
        .and_then(|v| v.as_mapping().cloned())
        .is_some_and(|m| m.contains_key("name") && m.contains_key("template"))
}

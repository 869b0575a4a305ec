//! `fabrik validate`: check specs and report every problem.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::{ExitStatus, OutputFormat, report};
use fabrik_engine::project::project_dir;
use fabrik_engine::spec::{self, LoadedSpec, TemplateRegistry};

pub fn run(paths: &[PathBuf], format: OutputFormat) -> anyhow::Result<ExitStatus> {
    let (loaded, all_valid) = load_all(paths, format)?;
    for spec in &loaded {
        match format {
            OutputFormat::Human => outln!(
                "ok: {} ({}, template {}, https://{})",
                spec.path.display(),
                spec.spec.name,
                spec.spec.template,
                spec.spec.domain
            ),
            OutputFormat::Json => report::json_line(&serde_json::json!({
                "event": "valid",
                "spec": spec.path,
                "app": spec.spec.name,
            })),
        }
    }
    Ok(if all_valid {
        ExitStatus::Success
    } else {
        ExitStatus::Invalid
    })
}

/// Loads every spec, reporting each invalid one; the bool says whether all were valid.
pub(super) fn load_all(
    paths: &[PathBuf],
    format: OutputFormat,
) -> anyhow::Result<(Vec<LoadedSpec>, bool)> {
    let mut registries: HashMap<PathBuf, TemplateRegistry> = HashMap::new();
    let mut loaded = Vec::new();
    let mut all_valid = true;
    for path in paths {
        let registry = registry_for(&mut registries, path)?;
        match spec::load(path, registry) {
            Ok(spec) => loaded.push(spec),
            Err(error) => {
                report::spec_error(&error, format);
                all_valid = false;
            }
        }
    }
    Ok((loaded, all_valid))
}

fn registry_for<'a>(
    registries: &'a mut HashMap<PathBuf, TemplateRegistry>,
    spec_path: &Path,
) -> anyhow::Result<&'a TemplateRegistry> {
    let dir = project_dir(spec_path);
    if !registries.contains_key(&dir) {
        let registry = TemplateRegistry::load(&dir).with_context(|| {
            format!(
                "cannot read templates in `{}`",
                dir.join("templates").display()
            )
        })?;
        registries.insert(dir.clone(), registry);
    }
    registries
        .get(&dir)
        .context("template registry disappeared")
}

//! `fabrik validate`: check specs and report every problem.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::{ExitStatus, OutputFormat, report};
use fabrik_engine::project::project_dir;
use fabrik_engine::spec::{self, LoadedSpec, SelectError, TemplateRegistry};

pub fn run(paths: &[PathBuf], format: OutputFormat) -> anyhow::Result<ExitStatus> {
    let (loaded, all_valid) = load_all(paths, format)?;
    for spec in &loaded {
        let app = &spec.spec.name;
        let environment = spec.spec.environment.as_deref();
        match format {
            OutputFormat::Human => outln!(
                "ok: {} ({}, template {}, https://{})",
                spec.path.display(),
                spec.spec.key(),
                spec.spec.template,
                spec.spec.domain
            ),
            OutputFormat::Json => report::json_line(&serde_json::json!({
                "event": "valid",
                "spec": spec.path,
                "app": app,
                "environment": environment,
            })),
        }
    }
    Ok(if all_valid {
        ExitStatus::Success
    } else {
        ExitStatus::Invalid
    })
}

/// Which of a spec's environments a command works on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Choose<'a> {
    /// Every named environment (a command that changes nothing), or the one named.
    AllOr(Option<&'a str>),
    /// The environment named, required when the spec has environments (a command that
    /// changes something).
    One(Option<&'a str>),
}

/// Loads every spec (each named environment of one that has environments), reporting
/// each invalid one; the bool says whether all were valid.
pub(super) fn load_all(
    paths: &[PathBuf],
    format: OutputFormat,
) -> anyhow::Result<(Vec<LoadedSpec>, bool)> {
    load_for(paths, format, Choose::AllOr(None))
}

/// Loads every spec, in the environments `choose` says; reports each invalid one, and a
/// spec with environments when a command that changes something names none.
pub(super) fn load_for(
    paths: &[PathBuf],
    format: OutputFormat,
    choose: Choose<'_>,
) -> anyhow::Result<(Vec<LoadedSpec>, bool)> {
    let mut registries: HashMap<PathBuf, TemplateRegistry> = HashMap::new();
    let mut loaded = Vec::new();
    let mut all_valid = true;
    // `--env staging` over several specs works on those that have it; the others are
    // said and left alone (one named alone must have it).
    let mut skipped = Vec::new();
    for path in paths {
        let registry = registry_for(&mut registries, path)?;
        let file = match spec::load_file(path, registry) {
            Ok(file) => file,
            Err(error) => {
                report::spec_error(&error, format);
                all_valid = false;
                continue;
            }
        };
        let (Choose::AllOr(env) | Choose::One(env)) = choose;
        let chosen = match (file.single(), env) {
            (Some(single), None) => Ok(vec![single.clone()]),
            (None, None) if matches!(choose, Choose::AllOr(_)) => {
                // A pattern stands for names only `--env` gives: said, so that a spec
                // with only patterns is not taken for one with nothing in it.
                let patterns: Vec<String> = file
                    .environment_names()
                    .into_iter()
                    .filter(|n| n.ends_with('*'))
                    .collect();
                if !patterns.is_empty() {
                    errln!(
                        "note: `{}`: {} stand{} for the names `--env` gives (validated with two of them); name one to see it",
                        path.display(),
                        patterns.join(", "),
                        if patterns.len() == 1 { "s" } else { "" }
                    );
                }
                Ok(file.named().to_vec())
            }
            (None, None) => {
                errln!(
                    "error: `{}` has environments ({}): name the one to work on with `--env`\n  hint: `--env {}`; nothing was changed",
                    path.display(),
                    file.environment_names().join(", "),
                    file.named()
                        .first()
                        .and_then(|l| l.spec.environment.as_deref())
                        .unwrap_or("NAME")
                );
                all_valid = false;
                continue;
            }
            (_, Some(env)) => file.select(env, registry).map(|one| vec![one]),
        };
        match chosen {
            Ok(specs) => loaded.extend(specs),
            Err(error @ (SelectError::NoEnvironments { .. } | SelectError::Unknown { .. }))
                if paths.len() > 1 =>
            {
                skipped.push((path, error));
            }
            Err(SelectError::Invalid(error)) => {
                report::spec_error(&error, format);
                all_valid = false;
            }
            Err(error) => {
                errln!("error: {error}");
                all_valid = false;
            }
        }
    }
    if !skipped.is_empty() && loaded.is_empty() && all_valid {
        for (_, error) in &skipped {
            errln!("error: {error}");
        }
        return Ok((loaded, false));
    }
    for (path, _) in &skipped {
        let (Choose::AllOr(env) | Choose::One(env)) = choose;
        errln!(
            "note: `{}` has no environment `{}`: left alone",
            path.display(),
            env.unwrap_or_default()
        );
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

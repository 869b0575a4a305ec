//! `fabrik apply` and `fabrik plan`.

use std::collections::BTreeSet;
use std::path::PathBuf;

use super::validate::load_all;
use super::{ApplyArgs, ExitStatus, OutputFormat, report};
use crate::orchestrator::plan::Plan;
use crate::plugins::ProviderSet;
use crate::plugins::cache::ComponentCache;
use crate::project::{Project, project_dir};
use crate::spec::LoadedSpec;

/// Loads the providers of every project the specs belong to and checks them against
/// `fabrik.lock`. Nothing is called on them.
fn check_providers(specs: &[LoadedSpec]) -> anyhow::Result<Result<(), String>> {
    let dirs: BTreeSet<PathBuf> = specs.iter().map(|s| project_dir(&s.path)).collect();
    let cache = ComponentCache::from_env();
    for dir in dirs {
        let project = match Project::load(&dir) {
            Ok(project) => project,
            Err(e) => return Ok(Err(e.to_string())),
        };
        let providers = match ProviderSet::load(&project, &cache) {
            Ok(set) => set,
            Err(e) => return Ok(Err(e.to_string())),
        };
        match providers.verify_lock(&project.dir) {
            Ok(true) => {}
            Ok(false) => {
                tracing::info!(project = %project.dir.display(), "no fabrik.lock: providers are not pinned (run `fabrik providers lock`)")
            }
            Err(e) => return Ok(Err(e.to_string())),
        }
    }
    Ok(Ok(()))
}

pub fn run(args: &ApplyArgs) -> anyhow::Result<ExitStatus> {
    if args.dry_run {
        return plan(&args.specs, args.output.output, args.detailed_exitcode);
    }
    let (loaded, all_valid) = load_all(&args.specs, args.output.output)?;
    if !all_valid {
        return Ok(ExitStatus::Invalid);
    }
    if let Err(problem) = check_providers(&loaded)? {
        eprintln!("error: {problem}");
        return Ok(ExitStatus::Invalid);
    }
    anyhow::bail!(
        "applying is not available yet: the Coolify and Cloudflare providers are not wired into this build\n  hint: `fabrik apply --dry-run` shows what would be done"
    )
}

/// Validates the specs and prints their plans; calls no provider.
pub fn plan(
    paths: &[PathBuf],
    format: OutputFormat,
    detailed_exitcode: bool,
) -> anyhow::Result<ExitStatus> {
    let (loaded, all_valid) = load_all(paths, format)?;
    if !all_valid {
        return Ok(ExitStatus::Invalid);
    }
    if let Err(problem) = check_providers(&loaded)? {
        eprintln!("error: {problem}");
        return Ok(ExitStatus::Invalid);
    }
    let plans: Vec<Plan> = loaded.iter().map(Plan::fresh).collect();
    for plan in &plans {
        match format {
            OutputFormat::Human => print_plan(plan),
            OutputFormat::Json => {
                report::json_line(&serde_json::json!({ "event": "plan", "plan": plan }))
            }
        }
    }
    if format == OutputFormat::Human {
        println!("Dry run: no provider was called and nothing was changed.");
    }
    let changes = plans.iter().any(Plan::has_changes);
    Ok(if detailed_exitcode && changes {
        ExitStatus::Changes
    } else {
        ExitStatus::Success
    })
}

fn print_plan(plan: &Plan) {
    println!("Plan for `{}` ({}):", plan.app, plan.spec);
    for step in &plan.steps {
        let rollback = step
            .rollback
            .map(|mode| format!(" [rollback: {mode}]"))
            .unwrap_or_default();
        println!(
            "  {} {} {}: {}{rollback}",
            step.action.marker(),
            step.kind,
            step.name,
            step.detail
        );
    }
}

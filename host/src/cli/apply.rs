//! `fabrik apply` and `fabrik plan`.

use std::path::PathBuf;

use super::validate::load_all;
use super::{ApplyArgs, ExitStatus, OutputFormat, report};
use crate::orchestrator::plan::Plan;

pub fn run(args: &ApplyArgs) -> anyhow::Result<ExitStatus> {
    if args.dry_run {
        return plan(&args.specs, args.output.output, args.detailed_exitcode);
    }
    let (_loaded, all_valid) = load_all(&args.specs, args.output.output)?;
    if !all_valid {
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

//! `fabrik history NAME`: the runs of an app, newest first.

use std::path::Path;

use std::collections::HashMap;

use fabrik_engine::domain::{RunOrigin, split_key, timestamp};
use fabrik_engine::orchestrator::promote::verified_id;
use fabrik_engine::orchestrator::snapshot::Snapshot;
use fabrik_engine::store::{Deployment, DestroyEntry, RunRow, Store};
use fabrik_engine::workspace::Workspace;

use super::status::{find_all, short_hash};
use super::{ExitStatus, OutputFormat, report};

pub fn run(
    name: &str,
    env: Option<&str>,
    format: OutputFormat,
    state: Option<&Path>,
) -> anyhow::Result<ExitStatus> {
    let workspace = Workspace::current(state)?;
    let runtime = super::runtime()?;
    let store = runtime.block_on(workspace.reading_store())?;
    let Some(deployments) = runtime.block_on(find_all(&store, &workspace, name, env))? else {
        return Ok(ExitStatus::Failure);
    };
    // Where a promotion's run came from: the runs of the app's other environments.
    let (app, _) = split_key(name);
    let mut run_environment: HashMap<String, String> = HashMap::new();
    for other in runtime.block_on(store.deployments())? {
        if other.project == workspace.project.name && other.app == app {
            for run in runtime.block_on(store.runs(other.id))? {
                run_environment.insert(run.id, other.key());
            }
        }
    }
    let several = deployments.len() > 1;
    for (index, deployment) in deployments.iter().enumerate() {
        if several && format == OutputFormat::Human {
            if index > 0 {
                outln!();
            }
            outln!("{}:", deployment.key());
        }
        show_runs(&runtime, &store, deployment, &run_environment, format)?;
    }
    Ok(ExitStatus::Success)
}

/// The runs of one deployment, newest first, with its destroys between them.
fn show_runs(
    runtime: &tokio::runtime::Runtime,
    store: &Store,
    deployment: &Deployment,
    run_environment: &HashMap<String, String>,
    format: OutputFormat,
) -> anyhow::Result<()> {
    let runs = runtime.block_on(store.runs(deployment.id))?;
    let mut destroys = runtime
        .block_on(store.destroys(deployment.id))?
        .into_iter()
        .peekable();
    let at = |time: &str| time.parse::<f64>().unwrap_or_default();
    for run in runs {
        // Destroys between runs, newest first like the runs.
        while let Some(destroy) = destroys.next_if(|d| at(&d.at) >= at(&run.started_at)) {
            show_destroy(deployment, &destroy, format);
        }
        let seconds = run
            .finished_at
            .as_deref()
            .and_then(|end| timestamp::seconds_between(&run.started_at, end));
        let promoted = match &run.origin {
            RunOrigin::Promotion { from } => Some(from),
            _ => None,
        };
        if format == OutputFormat::Json {
            report::json_line(&serde_json::json!({
                "app": deployment.app,
                "environment": deployment.environment,
                "run": run.id,
                "state": run.state.to_string(),
                "origin": run.origin.as_str(),
                "restores": run.origin.restores(),
                "promoted_from": promoted.map(|from| serde_json::json!({
                    "run": from,
                    "environment": run_environment.get(from).and_then(|key| split_key(key).1),
                })),
                "source": deployed_source(&run),
                "started_at": timestamp::rfc3339(&run.started_at),
                "finished_at": run.finished_at.as_deref().and_then(timestamp::rfc3339),
                "seconds": seconds.map(|s| (s * 1000.0).round() / 1000.0),
                "spec_hash": run.spec_hash,
                "reason": run.reason,
            }));
            continue;
        }
        let took = seconds.map(|s| format!(" in {s:.1} s")).unwrap_or_default();
        let reason = run
            .reason
            .as_ref()
            .map(|r| format!(": {r}"))
            .unwrap_or_default();
        let origin = match &run.origin {
            RunOrigin::Apply => String::new(),
            RunOrigin::Rollback { restores } => {
                format!(" (rollback to the version of run {restores})")
            }
            RunOrigin::Promotion { from } => format!(
                " (promotion of {} from run {from}{})",
                deployed_source(&run).unwrap_or_else(|| "its source".to_owned()),
                run_environment
                    .get(from)
                    .map(|key| format!(" of {key}"))
                    .unwrap_or_default()
            ),
        };
        outln!(
            "{} {:<12} {}{took}, spec {}{origin}{reason}",
            run.id,
            run.state,
            timestamp::display(&run.started_at),
            short_hash(&run.spec_hash)
        );
    }
    for destroy in destroys {
        show_destroy(deployment, &destroy, format);
    }
    Ok(())
}

/// The commit or image digest a run deployed, from its snapshot.
fn deployed_source(run: &RunRow) -> Option<String> {
    let snapshot = Snapshot::from_json(run.snapshot.as_ref()?).ok()?;
    verified_id(&snapshot.spec.source?)
}

/// One `fabrik destroy` in the history: when, and what it did.
fn show_destroy(deployment: &Deployment, destroy: &DestroyEntry, format: OutputFormat) {
    let record = &destroy.record;
    if format == OutputFormat::Json {
        report::json_line(&serde_json::json!({
            "app": deployment.app,
            "environment": deployment.environment,
            "destroy": {
                "at": timestamp::rfc3339(&destroy.at),
                "complete": record.complete,
                "deleted": record.deleted,
                "already_gone": record.already_gone,
                "failed": record.failed,
            }
        }));
        return;
    }
    let mut what = vec![format!("{} deleted", record.deleted)];
    if record.already_gone > 0 {
        what.push(format!("{} already gone", record.already_gone));
    }
    if record.failed > 0 {
        what.push(format!("{} not deleted", record.failed));
    }
    outln!(
        "{:<16} {:<12} {}, {}",
        "destroy",
        if record.complete {
            "DESTROYED"
        } else {
            "INCOMPLETE"
        },
        timestamp::display(&destroy.at),
        what.join(", ")
    );
}

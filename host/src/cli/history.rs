//! `fabrik history NAME`: the runs of an app, newest first.

use std::path::Path;

use fabrik_engine::domain::timestamp;
use fabrik_engine::store::DestroyEntry;
use fabrik_engine::workspace::Workspace;

use super::status::{find, short_hash};
use super::{ExitStatus, OutputFormat, report};

pub fn run(name: &str, format: OutputFormat, state: Option<&Path>) -> anyhow::Result<ExitStatus> {
    let workspace = Workspace::current(state)?;
    let runtime = super::runtime()?;
    let store = runtime.block_on(workspace.reading_store())?;
    let Some(deployment) = runtime.block_on(find(&store, &workspace, name))? else {
        return Ok(ExitStatus::Failure);
    };
    let runs = runtime.block_on(store.runs(deployment.id))?;
    let mut destroys = runtime
        .block_on(store.destroys(deployment.id))?
        .into_iter()
        .peekable();
    let at = |time: &str| time.parse::<f64>().unwrap_or_default();
    for run in runs {
        // Destroys between runs, newest first like the runs.
        while let Some(destroy) = destroys.next_if(|d| at(&d.at) >= at(&run.started_at)) {
            show_destroy(&destroy, format);
        }
        let seconds = run
            .finished_at
            .as_deref()
            .and_then(|end| timestamp::seconds_between(&run.started_at, end));
        if format == OutputFormat::Json {
            report::json_line(&serde_json::json!({
                "run": run.id,
                "state": run.state.to_string(),
                "origin": run.origin.as_str(),
                "restores": run.origin.restores(),
                "started_at": timestamp::rfc3339(&run.started_at),
                "finished_at": run.finished_at.as_deref().and_then(timestamp::rfc3339),
                "seconds": seconds.map(|s| (s * 1000.0).round() / 1000.0),
                "spec_hash": run.spec_hash,
                "reason": run.reason,
            }));
            continue;
        }
        let took = seconds.map(|s| format!(" in {s:.1} s")).unwrap_or_default();
        let reason = run.reason.map(|r| format!(": {r}")).unwrap_or_default();
        let origin = run
            .origin
            .restores()
            .map(|r| format!(" (rollback to the version of run {r})"))
            .unwrap_or_default();
        outln!(
            "{} {:<12} {}{took}, spec {}{origin}{reason}",
            run.id,
            run.state,
            timestamp::display(&run.started_at),
            short_hash(&run.spec_hash)
        );
    }
    for destroy in destroys {
        show_destroy(&destroy, format);
    }
    Ok(ExitStatus::Success)
}

/// One `fabrik destroy` in the history: when, and what it did.
fn show_destroy(destroy: &DestroyEntry, format: OutputFormat) {
    let record = &destroy.record;
    if format == OutputFormat::Json {
        report::json_line(&serde_json::json!({
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

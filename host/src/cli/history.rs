//! `fabrik history NAME`: the runs of an app, newest first.

use std::path::Path;

use fabrik_engine::workspace::Workspace;

use super::ExitStatus;

pub fn run(name: &str, state: Option<&Path>) -> anyhow::Result<ExitStatus> {
    let workspace = Workspace::current(state)?;
    let project = &workspace.project;
    let runtime = super::runtime()?;
    let store = runtime.block_on(workspace.open_store())?;
    let Some(deployment) = runtime.block_on(store.deployment(&project.name, name))? else {
        errln!(
            "error: no deployment named `{name}` in project `{}`",
            project.name
        );
        return Ok(ExitStatus::Failure);
    };
    for run in runtime.block_on(store.runs(deployment.id))? {
        let took = match (&run.finished_at, run.started_at.parse::<f64>()) {
            (Some(end), Ok(start)) => end
                .parse::<f64>()
                .map(|e| format!(" in {:.1} s", e - start))
                .unwrap_or_default(),
            _ => String::new(),
        };
        let reason = run.reason.map(|r| format!(": {r}")).unwrap_or_default();
        let origin = run
            .origin
            .restores()
            .map(|r| format!(" (rollback to the version of run {r})"))
            .unwrap_or_default();
        outln!(
            "{} {:<12} started {}{took}, spec {}{origin}{reason}",
            run.id,
            run.state,
            run.started_at,
            run.spec_hash
        );
    }
    Ok(ExitStatus::Success)
}

//! `fabrik status [NAME]`: the project's deployments, their state and resources.

use std::path::Path;

use fabrik_engine::domain::{DeploymentState, ResourceStatus};
use fabrik_engine::store::{Deployment, Store};
use fabrik_engine::workspace::Workspace;

use super::{ExitStatus, OutputFormat, report};

pub fn run(
    name: Option<&str>,
    format: OutputFormat,
    state: Option<&Path>,
) -> anyhow::Result<ExitStatus> {
    let workspace = Workspace::current(state)?;
    super::runtime()?.block_on(async {
        let store = workspace.reading_store().await?;
        show(&store, &workspace, name, format).await
    })
}

/// A spec hash as people compare them: its first 12 hex digits.
pub fn short_hash(hash: &str) -> &str {
    let hex = hash.strip_prefix("sha256:").unwrap_or(hash);
    hex.get(..12).unwrap_or(hex)
}

/// The project's deployment of `name`, or `None` after saying why there is none, in the
/// same words for every command.
pub async fn find(
    store: &Store,
    workspace: &Workspace,
    name: &str,
) -> anyhow::Result<Option<Deployment>> {
    let project = &workspace.project.name;
    if let Some(found) = store.deployment(project, name).await? {
        return Ok(Some(found));
    }
    errln!("error: no deployment named `{name}` in project `{project}`");
    hint_elsewhere(store, workspace).await?;
    Ok(None)
}

/// What the state holds when the project has nothing (or not that app): the project's
/// apps, or the other projects the state knows (a state shared with `FABRIK_STATE_DB`,
/// or a command run from another directory).
async fn hint_elsewhere(store: &Store, workspace: &Workspace) -> anyhow::Result<()> {
    let project = &workspace.project.name;
    let all = store.deployments().await?;
    let ours: Vec<&str> = all
        .iter()
        .filter(|d| &d.project == project)
        .map(|d| d.app.as_str())
        .collect();
    if !ours.is_empty() {
        errln!("  hint: the project's apps: {}", ours.join(", "));
        return Ok(());
    }
    let mut others: Vec<&str> = all.iter().map(|d| d.project.as_str()).collect();
    others.sort_unstable();
    others.dedup();
    if !others.is_empty() {
        errln!(
            "  hint: this state ({}) holds apps of project {} only; run the command in that project's directory",
            workspace.state_path.display(),
            others
                .iter()
                .map(|p| format!("`{p}`"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(())
}

async fn show(
    store: &Store,
    workspace: &Workspace,
    name: Option<&str>,
    format: OutputFormat,
) -> anyhow::Result<ExitStatus> {
    let deployments: Vec<Deployment> = match name {
        Some(name) => match find(store, workspace, name).await? {
            Some(found) => vec![found],
            None => return Ok(ExitStatus::Failure),
        },
        None => store
            .deployments()
            .await?
            .into_iter()
            .filter(|d| d.project == workspace.project.name)
            .collect(),
    };
    if deployments.is_empty() {
        errln!("no deployment in project `{}`", workspace.project.name);
        hint_elsewhere(store, workspace).await?;
        return Ok(ExitStatus::Success);
    }
    for d in deployments {
        let resources: Vec<_> = store
            .resources(d.id)
            .await?
            .into_iter()
            .filter(|r| r.status != ResourceStatus::Deleted)
            .collect();
        if format == OutputFormat::Json {
            report::json_line(&serde_json::json!({
                "app": d.app,
                "project": d.project,
                "state": d.state.to_string(),
                "spec": d.spec_path,
                "spec_hash": d.spec_hash,
                "resources": resources.iter().map(|r| serde_json::json!({
                    "provider": r.provider.as_str(),
                    "kind": r.kind,
                    "name": r.name,
                    "status": r.status.as_str(),
                    "id": r.external_id,
                })).collect::<Vec<_>>(),
            }));
            continue;
        }
        let no_spec = if d.state == DeploymentState::Destroyed {
            "none (destroyed)"
        } else {
            "never completed"
        };
        outln!(
            "{}: {} ({}), spec {}",
            d.app,
            d.state,
            d.spec_path,
            d.spec_hash.as_deref().map_or(no_spec, short_hash)
        );
        for r in &resources {
            outln!(
                "  {} {} {} [{}] {}",
                r.provider,
                r.kind,
                r.name,
                r.status,
                r.external_id.as_deref().unwrap_or("-")
            );
        }
    }
    Ok(ExitStatus::Success)
}

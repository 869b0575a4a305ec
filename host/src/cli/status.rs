//! `fabrik status [NAME]`: deployments, their state and resources.

use std::path::Path;

use fabrik_engine::domain::ResourceStatus;
use fabrik_engine::store::Store;
use fabrik_engine::workspace::Workspace;

use super::ExitStatus;

pub fn run(name: Option<&str>, state: Option<&Path>) -> anyhow::Result<ExitStatus> {
    let workspace = Workspace::current(state)?;
    super::runtime()?.block_on(async {
        let store = workspace.open_store().await?;
        show(&store, name).await
    })
}

async fn show(store: &Store, name: Option<&str>) -> anyhow::Result<ExitStatus> {
    let deployments: Vec<_> = store
        .deployments()
        .await?
        .into_iter()
        .filter(|d| name.is_none_or(|n| d.app == n))
        .collect();
    if deployments.is_empty() {
        errln!(
            "no deployment{}",
            name.map(|n| format!(" named `{n}`")).unwrap_or_default()
        );
        return Ok(if name.is_some() {
            ExitStatus::Failure
        } else {
            ExitStatus::Success
        });
    }
    for d in deployments {
        outln!(
            "{}: {} ({}), spec {}",
            d.app,
            d.state,
            d.spec_path,
            d.spec_hash.as_deref().unwrap_or("never completed")
        );
        for r in store
            .resources(d.id)
            .await?
            .iter()
            .filter(|r| r.status != ResourceStatus::Deleted)
        {
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

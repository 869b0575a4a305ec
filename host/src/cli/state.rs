//! `fabrik state export`: the whole state as JSON on stdout.

use std::path::Path;

use fabrik_engine::workspace::Workspace;

use super::ExitStatus;

pub fn export(state: Option<&Path>) -> anyhow::Result<ExitStatus> {
    let store = Workspace::current(state)?.open_store()?;
    println!("{}", serde_json::to_string_pretty(&store.export()?)?);
    Ok(ExitStatus::Success)
}

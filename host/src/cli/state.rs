//! `fabrik state export`: the whole state as JSON on stdout.

use std::path::Path;

use fabrik_engine::store::Store;
use fabrik_engine::workspace::{Workspace, WorkspaceError, current_root, state_path};

use super::ExitStatus;

pub fn export(state: Option<&Path>) -> anyhow::Result<ExitStatus> {
    let dir = current_root()?;
    let runtime = super::runtime()?;
    let store = match Workspace::at(&dir, state) {
        Ok(workspace) => runtime.block_on(workspace.open_store())?,
        // A broken `fabrik.toml` is when the dump is needed most: the state file beside
        // the project is still readable.
        Err(WorkspaceError::Project(error)) => {
            eprintln!("warning: {error}; exporting the SQLite state beside the project");
            Store::open(&state_path(&dir, state))?
        }
        Err(error) => return Err(error.into()),
    };
    let state = runtime.block_on(store.export())?;
    println!("{}", serde_json::to_string_pretty(&state)?);
    Ok(ExitStatus::Success)
}

//! `fabrik state export`: the whole state as JSON on stdout.

use std::path::Path;

use fabrik_engine::store::Store;
use fabrik_engine::workspace::{current_root, state_path};

use super::ExitStatus;

pub fn export(state: Option<&Path>) -> anyhow::Result<ExitStatus> {
    // Without loading `fabrik.toml`: a broken project file is when the dump is needed.
    let store = Store::open(&state_path(&current_root()?, state))?;
    let state = super::runtime()?.block_on(store.export())?;
    println!("{}", serde_json::to_string_pretty(&state)?);
    Ok(ExitStatus::Success)
}

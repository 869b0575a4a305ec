//! `fabrik state export`: the whole state as JSON on stdout.

use std::path::Path;

use fabrik_engine::secrets;
use fabrik_engine::store::Store;
use fabrik_engine::store::migrate::copy;
use fabrik_engine::workspace::{Workspace, WorkspaceError, current_root, state_path};

use super::ExitStatus;

pub fn export(state: Option<&Path>) -> anyhow::Result<ExitStatus> {
    let dir = current_root()?;
    let runtime = super::runtime()?;
    let store = match Workspace::at(&dir, state) {
        Ok(workspace) => runtime.block_on(workspace.reading_store())?,
        // A broken `fabrik.toml` is when the dump is needed most: the state file beside
        // the project is still readable.
        Err(WorkspaceError::Project(error)) => {
            errln!("warning: {error}; exporting the SQLite state beside the project");
            Store::open_for_reading(&state_path(&dir, state))?
        }
        Err(error) => return Err(error.into()),
    };
    let mut state = runtime.block_on(store.export())?;
    // Times as RFC 3339, as every JSON output of fabrik gives them.
    fabrik_engine::domain::timestamp::rewrite_times(&mut state);
    outln!("{}", serde_json::to_string_pretty(&state)?);
    Ok(ExitStatus::Success)
}

/// `fabrik state migrate --to BACKEND`: copies the project's state from the other backend.
pub fn migrate(to_postgres: bool, state: Option<&Path>) -> anyhow::Result<ExitStatus> {
    let dir = current_root()?;
    let workspace = Workspace::at(&dir, state)?;
    let settings = workspace.postgres_settings()?;
    let file = &workspace.state_path;
    let runtime = super::runtime()?;
    runtime.block_on(async {
        let copied = if to_postgres {
            if !file.exists() {
                errln!("error: there is no SQLite state to copy at `{}`", file.display());
                return Ok(ExitStatus::Failure);
            }
            // The project's versions were hashed with its own key: it becomes the team's
            // (in `.env`, never in the database, which records its id).
            let key = secrets::existing_fingerprint_key(&dir)?;
            let mut env = secrets::EnvSource::load(&dir)?;
            if let (Some(key), Some(here)) = (&key, env.fingerprint_key()?)
                && here != *key
            {
                errln!(
                    "error: {} in .env is not the key this state's fingerprints were made with; nothing was copied",
                    secrets::FINGERPRINT_KEY_ENV
                );
                return Ok(ExitStatus::Failure);
            }
            let from = Store::open(file)?;
            let to = Store::connect(&settings).await?;
            let copied = copy(&from, &to).await?;
            if let Some(key) = key {
                if env.fingerprint_key()?.is_none() {
                    env.keep_fingerprint_key(&dir, &key)?;
                }
                let id = secrets::fingerprint_key_id(&key);
                if to.claim_fingerprint_key_id(&workspace.project.name, &id).await? != id {
                    errln!(
                        "warning: the schema records another fingerprint key than this project's: its apps' secrets will look changed once"
                    );
                }
            }
            errln!(
                "copied the state of `{}` into {}",
                file.display(),
                to.location()
            );
            copied
        } else {
            let Some(from) = Store::connect_existing(&settings).await? else {
                errln!(
                    "error: PostgreSQL schema `{}` holds no state to copy",
                    settings.schema
                );
                return Ok(ExitStatus::Failure);
            };
            if file.exists() {
                errln!(
                    "error: `{}` exists already; nothing was copied\n  hint: move it away first",
                    file.display()
                );
                return Ok(ExitStatus::Failure);
            }
            let to = Store::open(file)?;
            let copied = copy(&from, &to).await?;
            let env = secrets::EnvSource::load(&dir)?;
            if let Some(key) = fabrik_engine::orchestrator::fingerprint_key::for_reading(
                Some(&from),
                &env,
                &dir,
            )
            .await?
            {
                secrets::keep_fingerprint_key(&dir, &key)?;
            }
            errln!("copied {} into `{}`", from.location(), file.display());
            copied
        };
        errln!(
            "{} deployment(s), {} run(s), {} resource(s), {} journal event(s), checked row by row; the source is unchanged",
            copied.deployments, copied.runs, copied.resources, copied.events
        );
        errln!(
            "next: set `[state] backend = \"{}\"` in fabrik.toml",
            if to_postgres { "postgres" } else { "sqlite" }
        );
        Ok(ExitStatus::Success)
    })
}

//! `fabrik destroy NAME`: asks, then lets the engine delete what Fabrik created for the
//! app.

use std::io::IsTerminal;
use std::path::Path;

use fabrik_engine::orchestrator::destroy::{Destroy, DestroyError, DestroyOptions};
use fabrik_engine::orchestrator::events::{Observer, RunEvent};
use fabrik_engine::plugins::Pins;
use fabrik_engine::secrets::EnvSource;
use fabrik_engine::workspace::Workspace;
use secrecy::SecretString;

use super::{ExitStatus, render};

/// Prints each deletion as it happens, on stderr.
struct Lines;

impl Observer for Lines {
    fn event(&self, _app: &str, _run: Option<&str>, event: &RunEvent) {
        let line = render::event(event);
        match event {
            RunEvent::NotDestroyed { .. } => errln!("error: {line}"),
            RunEvent::Destroyed { .. }
            | RunEvent::AlreadyGone { .. }
            | RunEvent::Kept { .. }
            | RunEvent::Retrying { .. } => errln!("{line}"),
            _ => tracing::info!("{line}"),
        }
    }

    fn secret(&self, _value: &SecretString) {}
}

pub fn run(
    name: &str,
    env: Option<&str>,
    yes: bool,
    options: DestroyOptions,
    state: Option<&Path>,
) -> anyhow::Result<ExitStatus> {
    let purge = options.purge;
    let workspace = Workspace::current(state)?;
    let project = &workspace.project;
    let runtime = super::runtime()?;
    let store = runtime.block_on(workspace.open_store())?;
    // `api --env preview-7` (or `api@preview-7`): one environment's deployment.
    let deployment = match runtime.block_on(super::status::find(&store, &workspace, name, env))? {
        Ok(deployment) => deployment,
        Err(status) => return Ok(status),
    };
    let key = deployment.key();
    let name = key.as_str();
    let locks = workspace.locks()?;
    let destroy = match runtime.block_on(Destroy::prepare(project, &store, &locks, name)) {
        Ok(destroy) => destroy,
        Err(error @ DestroyError::NoDeployment { .. }) => {
            errln!("error: {error}");
            return Ok(ExitStatus::Failure);
        }
        Err(error) => return Err(error.into()),
    };
    let owned = destroy.resources();
    if owned.is_empty() {
        runtime.block_on(destroy.finish_empty(&store))?;
        errln!("`{name}` has no resources to delete");
        return Ok(ExitStatus::Success);
    }
    if !yes {
        if !std::io::stdin().is_terminal() {
            errln!(
                "error: `fabrik destroy` deletes {} resource(s) of `{name}`; pass `--yes` to confirm",
                owned.len()
            );
            return Ok(ExitStatus::Invalid);
        }
        eprint!(
            "Delete {} resource(s) of `{name}` ({}){}? [y/N] ",
            owned.len(),
            owned
                .iter()
                .map(|r| format!("{} {}", r.kind, r.name))
                .collect::<Vec<_>>()
                .join(", "),
            if purge { ", with their data" } else { "" }
        );
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            errln!("nothing deleted");
            return Ok(ExitStatus::Failure);
        }
    }
    let providers = super::loading::load(project, Pins::Enforce)?;
    let env = EnvSource::load(&project.dir)?;
    let destroyed = runtime.block_on(destroy.run(&providers, &env, &store, &Lines, options))?;
    Ok(if destroyed.is_complete() {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    })
}

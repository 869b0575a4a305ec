//! `fabrik unlock NAME`: what can be done about an app's lock, done.

use fabrik_engine::domain::{deployment_key, split_key};
use fabrik_engine::lock::postgres::{self, Unlocked};
use fabrik_engine::lock::{self, Locks};
use fabrik_engine::workspace::Workspace;

use super::ExitStatus;

pub fn run(name: &str, env: Option<&str>, force: bool) -> anyhow::Result<ExitStatus> {
    let workspace = Workspace::current(None)?;
    // A lock is a deployment's: `api --env staging` is `api@staging`'s.
    let (app, written) = split_key(name);
    let key = match (written, env) {
        (Some(written), Some(env)) if written != env => {
            errln!("error: `{name}` names environment `{written}` and `--env` names `{env}`");
            return Ok(ExitStatus::Invalid);
        }
        (written, env) => deployment_key(app, written.or(env)),
    };
    // An app whose deployments are all in environments has no lock of its own: say which
    // there are rather than find nothing to unlock. (A lock can exist before its app is in
    // the state, so only what the state does list is refused.)
    if written.is_none() && env.is_none() {
        let environments: Vec<String> = super::runtime()?.block_on(async {
            let Ok(store) = workspace.reading_store().await else {
                return Vec::new();
            };
            let listed = store.deployments().await.unwrap_or_default();
            let ours: Vec<_> = listed
                .into_iter()
                .filter(|d| d.project == workspace.project.name && d.app == app)
                .collect();
            if ours.iter().any(|d| d.environment.is_none()) {
                return Vec::new();
            }
            ours.into_iter().filter_map(|d| d.environment).collect()
        });
        if !environments.is_empty() {
            errln!(
                "error: `{app}` has environments ({}): name the one to unlock with `--env`\n  hint: `fabrik unlock {app} --env {}`",
                environments.join(", "),
                environments[0]
            );
            return Ok(ExitStatus::Invalid);
        }
    }
    let name = key.as_str();
    match workspace.locks()? {
        Locks::Files(dir) => {
            // A lock file's OS lock is the kernel's: it goes with its process, and no
            // other process can end it. Only a dead holder's record can be cleared.
            match lock::unlock(&dir, name) {
                Ok(Some(holder)) => {
                    errln!("unlocked `{name}` (was held by {holder}, which is no longer running)")
                }
                Ok(None) => errln!("`{name}` was not locked"),
                Err(error) => {
                    errln!("error: {error}");
                    if force {
                        errln!(
                            "  note: `--force` cannot end a running fabrik on this machine's lock files: stop that process (the kernel releases its lock)"
                        );
                    }
                    return Ok(ExitStatus::Failure);
                }
            }
            Ok(ExitStatus::Success)
        }
        Locks::Postgres(settings) => {
            let project = workspace.project.name.clone();
            let unlocked =
                super::runtime()?.block_on(postgres::unlock(&settings, &project, name, force))?;
            match unlocked {
                Unlocked::Free {
                    stale: Some(holder),
                } => errln!(
                    "`{name}` was not locked; cleared the record of {holder}, whose session had ended"
                ),
                Unlocked::Free { stale: None } => errln!("`{name}` was not locked"),
                Unlocked::Held { holder } => {
                    let holder = holder.map_or_else(
                        || "a session that has not said who it is".to_owned(),
                        |h| h.to_string(),
                    );
                    errln!(
                        "error: `{name}` is held by {holder}, whose database session is alive: its lock is released when that session ends (a dead holder's session ends by itself)\n  hint: `fabrik unlock {name} --force` ends that session; its run stops before its next provider call and the next apply recovers it"
                    );
                    return Ok(ExitStatus::Failure);
                }
                Unlocked::Ended { holder } => errln!(
                    "ended the session holding `{name}`{}; the server released its lock",
                    holder.map(|h| format!(" ({h})")).unwrap_or_default()
                ),
            }
            Ok(ExitStatus::Success)
        }
    }
}

//! `fabrik unlock NAME`: what can be done about an app's lock, done.

use fabrik_engine::lock::postgres::{self, Unlocked};
use fabrik_engine::lock::{self, Locks};
use fabrik_engine::workspace::Workspace;

use super::ExitStatus;

pub fn run(name: &str, env: Option<&str>, force: bool) -> anyhow::Result<ExitStatus> {
    let workspace = Workspace::current(None)?;
    // A lock is a deployment's: `api --env staging` is `api@staging`'s.
    let key = match (env, name.contains('@')) {
        (Some(env), false) => fabrik_engine::domain::deployment_key(name, Some(env)),
        _ => name.to_owned(),
    };
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

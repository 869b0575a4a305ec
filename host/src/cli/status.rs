//! `fabrik status [NAME]`: the project's deployments, their state and resources.

use std::path::Path;

use fabrik_engine::domain::{
    DeploymentState, ResourceStatus, deployment_key, split_key, timestamp,
};
use fabrik_engine::lock::{Activity, Locks};
use fabrik_engine::store::{Deployment, RunRow, Store};
use fabrik_engine::workspace::Workspace;

use super::{ExitStatus, OutputFormat, report};

pub fn run(
    name: Option<&str>,
    env: Option<&str>,
    all: bool,
    format: OutputFormat,
    state: Option<&Path>,
) -> anyhow::Result<ExitStatus> {
    let workspace = Workspace::current(state)?;
    super::runtime()?.block_on(async {
        let store = workspace.reading_store().await?;
        show(&store, &workspace, name, env, all, format).await
    })
}

/// A spec hash as people compare them: its first 12 hex digits.
/// Whether time `a` is after `b` (both Unix seconds with milliseconds, as the store
/// writes them).
fn later(a: &str, b: &str) -> bool {
    let seconds = |t: &str| t.parse::<f64>().unwrap_or(0.0);
    seconds(a) > seconds(b)
}

/// How long ago `created` (Unix seconds, as the store writes them) was: `3d 4h`,
/// `2h 5m`, `12m`.
fn age(created: &str) -> String {
    let created = created.parse::<f64>().unwrap_or(0.0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    // Whole minutes: truncation is what an age means.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let minutes = ((now - created).max(0.0) / 60.0) as u64;
    let (days, hours, minutes) = (minutes / 1440, minutes / 60 % 24, minutes % 60);
    match (days, hours) {
        (0, 0) => format!("{minutes}m"),
        (0, _) => format!("{hours}h {minutes}m"),
        _ => format!("{days}d {hours}h"),
    }
}

pub fn short_hash(hash: &str) -> &str {
    let hex = hash.strip_prefix("sha256:").unwrap_or(hash);
    hex.get(..12).unwrap_or(hex)
}

/// The project's deployments `name` stands for, with `env`: `api --env staging` (or
/// `api@staging`) is one, `api` is the app's only deployment or, when its spec has
/// environments, every one of them. `None` after saying why there is none, in the same
/// words for every command.
pub async fn find_all(
    store: &Store,
    workspace: &Workspace,
    name: &str,
    env: Option<&str>,
) -> anyhow::Result<Option<Vec<Deployment>>> {
    let project = &workspace.project.name;
    let (app, written) = split_key(name);
    let environment = match (written, env) {
        (Some(written), Some(env)) if written != env => {
            errln!("error: `{name}` names environment `{written}` and `--env` names `{env}`");
            return Ok(None);
        }
        (written, env) => written.or(env),
    };
    let found: Vec<Deployment> = match environment {
        Some(environment) => store
            .deployment(project, &deployment_key(app, Some(environment)))
            .await?
            .into_iter()
            .collect(),
        None => store
            .deployments()
            .await?
            .into_iter()
            .filter(|d| &d.project == project && d.app == app)
            .collect(),
    };
    if !found.is_empty() {
        return Ok(Some(found));
    }
    let shown = deployment_key(app, environment);
    errln!("error: no deployment named `{shown}` in project `{project}`");
    hint_elsewhere(store, workspace).await?;
    Ok(None)
}

/// The one deployment a command that changes something works on: `name` with `env`. An
/// app whose spec has environments needs one named. `Err` with the exit status after
/// saying why there is none: no such deployment (1), or no environment named (2).
pub async fn find(
    store: &Store,
    workspace: &Workspace,
    name: &str,
    env: Option<&str>,
) -> anyhow::Result<Result<Deployment, ExitStatus>> {
    let Some(found) = find_all(store, workspace, name, env).await? else {
        return Ok(Err(ExitStatus::Failure));
    };
    let named = env.is_some() || name.contains('@');
    // Without an environment, the name is the app's deployment without one, if it has
    // one that is not destroyed (deployed before its spec had environments), or if it is
    // all the app has.
    let legacy = found.iter().position(|d| {
        d.environment.is_none() && (d.state != DeploymentState::Destroyed || found.len() == 1)
    });
    if !named && let Some(index) = legacy {
        return Ok(found.into_iter().nth(index).ok_or(ExitStatus::Failure));
    }
    match found.as_slice() {
        [_] if named => Ok(found.into_iter().next().ok_or(ExitStatus::Failure)),
        _ => {
            let environments: Vec<&str> = found
                .iter()
                .filter_map(|d| d.environment.as_deref())
                .collect();
            errln!(
                "error: `{name}` has environments ({}): name the one to work on with `--env`\n  hint: `--env {}`; nothing was changed",
                environments.join(", "),
                environments.first().copied().unwrap_or("NAME")
            );
            Ok(Err(ExitStatus::Invalid))
        }
    }
}

/// What the state holds when the project has nothing (or not that app): the project's
/// apps, or the other projects the state knows (a state shared with `FABRIK_STATE_DB`,
/// or a command run from another directory).
async fn hint_elsewhere(store: &Store, workspace: &Workspace) -> anyhow::Result<()> {
    let project = &workspace.project.name;
    let all = store.deployments().await?;
    let ours: Vec<String> = all
        .iter()
        .filter(|d| &d.project == project)
        .map(Deployment::key)
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

/// What `status` says of an app's newest run beside the deployment's state.
struct Latest {
    run: RunRow,
    /// For an unfinished run: whether a process still runs it.
    activity: Option<Activity>,
}

impl Latest {
    /// The newest run of `d`; for an unfinished one, whether its process is alive.
    async fn of(store: &Store, locks: &Locks, d: &Deployment) -> anyhow::Result<Option<Self>> {
        let Some(run) = store.runs(d.id).await?.into_iter().next() else {
            return Ok(None);
        };
        let activity = if run.state.is_terminal() {
            None
        } else {
            Some(locks.activity(&d.project, &d.key()).await?)
        };
        Ok(Some(Self { run, activity }))
    }

    /// The run was left unfinished by a process that is gone.
    fn interrupted(&self) -> bool {
        self.activity == Some(Activity::Gone)
    }

    /// A finished run whose end the deployment does not show: it failed having changed
    /// nothing, so the app is still what an earlier run made it.
    fn failed_beside(&self, d: &Deployment) -> bool {
        use fabrik_engine::domain::State;
        matches!(self.run.state, State::Failed | State::RolledBack)
            && d.state != DeploymentState::Destroyed
            && d.state != DeploymentState::Run(self.run.state)
    }
}

async fn show(
    store: &Store,
    workspace: &Workspace,
    name: Option<&str>,
    env: Option<&str>,
    all: bool,
    format: OutputFormat,
) -> anyhow::Result<ExitStatus> {
    let deployments: Vec<Deployment> = match name {
        Some(name) => match find_all(store, workspace, name, env).await? {
            Some(found) => found,
            None => return Ok(ExitStatus::Failure),
        },
        None => store
            .deployments()
            .await?
            .into_iter()
            .filter(|d| d.project == workspace.project.name)
            .filter(|d| env.is_none() || d.environment.as_deref() == env)
            .collect(),
    };
    let hidden = if name.is_none() && !all {
        deployments
            .iter()
            .filter(|d| d.state == DeploymentState::Destroyed)
            .count()
    } else {
        0
    };
    let deployments: Vec<Deployment> = deployments
        .into_iter()
        .filter(|d| hidden == 0 || d.state != DeploymentState::Destroyed)
        .collect();
    let say_hidden = || {
        if hidden > 0 {
            errln!(
                "  hint: {hidden} destroyed app{} not shown; `fabrik status --all` lists {}",
                if hidden == 1 { " is" } else { "s are" },
                if hidden == 1 { "it" } else { "them" }
            );
        }
    };
    if deployments.is_empty() {
        if hidden > 0 {
            errln!("no live deployment in project `{}`", workspace.project.name);
            say_hidden();
        } else {
            errln!("no deployment in project `{}`", workspace.project.name);
            hint_elsewhere(store, workspace).await?;
        }
        return Ok(ExitStatus::Success);
    }
    let locks = workspace.locks()?;
    for d in deployments {
        let latest = Latest::of(store, &locks, &d).await?;
        // A destroy after the latest run that left something behind: the state still
        // reads as that run left it, which is no longer the whole truth.
        let failed_destroy = store
            .destroys(d.id)
            .await?
            .into_iter()
            .next()
            .filter(|destroy| !destroy.record.complete)
            .filter(|destroy| {
                latest
                    .as_ref()
                    .is_none_or(|l| later(&destroy.at, &l.run.started_at))
            });
        let resources: Vec<_> = store
            .resources(d.id)
            .await?
            .into_iter()
            .filter(|r| r.status != ResourceStatus::Deleted)
            .collect();
        if format == OutputFormat::Json {
            let last_run = latest.as_ref().map(|l| {
                serde_json::json!({
                    "id": l.run.id,
                    "state": l.run.state.to_string(),
                    "reason": l.run.reason,
                    "running": match &l.activity {
                        None => serde_json::Value::Bool(false),
                        Some(Activity::Running) => serde_json::Value::Bool(true),
                        Some(Activity::Gone) => serde_json::Value::Bool(false),
                        Some(Activity::Unknown { .. }) => serde_json::Value::Null,
                    },
                    "interrupted": l.interrupted(),
                })
            });
            report::json_line(&serde_json::json!({
                "app": d.app,
                "environment": d.environment,
                "created_at": timestamp::rfc3339(&d.created_at),
                "project": d.project,
                "state": d.state.to_string(),
                "last_run": last_run,
                "last_destroy": failed_destroy,
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
        let shown_state = match &latest {
            Some(l) if l.interrupted() => format!(
                "INTERRUPTED in {} (run {}; the process running it is gone: the next apply recovers it)",
                l.run.state, l.run.id
            ),
            Some(Latest {
                activity: Some(Activity::Unknown { host }),
                ..
            }) => format!("{} (run by a process on {host})", d.state),
            _ => d.state.to_string(),
        };
        // An environment's age: previews come and go, and the old ones are the ones to
        // destroy.
        let age = match (&d.environment, d.state) {
            (Some(_), state) if state != DeploymentState::Destroyed => {
                format!(", age {}", age(&d.created_at))
            }
            _ => String::new(),
        };
        outln!(
            "{}: {} ({}), spec {}{age}",
            d.key(),
            shown_state,
            d.spec_path,
            d.spec_hash.as_deref().map_or(no_spec, short_hash)
        );
        if let Some(l) = latest.as_ref().filter(|l| l.failed_beside(&d)) {
            outln!(
                "  last attempt: run {} {}, nothing was changed: {}",
                l.run.id,
                l.run.state,
                l.run.reason.as_deref().unwrap_or("no reason recorded")
            );
        }
        if let Some(destroy) = &failed_destroy {
            outln!(
                "  last destroy: incomplete, {} deleted, {} could not be deleted and {} still tracked; `fabrik destroy {}` again deletes the rest",
                destroy.record.deleted,
                destroy.record.failed,
                if destroy.record.failed == 1 {
                    "is"
                } else {
                    "are"
                },
                d.key()
            );
        }
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
    say_hidden();
    Ok(ExitStatus::Success)
}

//! Applying one spec, start to end: lock, secrets, hash, no-op detection (with drift
//! refresh), recovery of what a killed run left, the forward path
//! ([`super::deploy`]), removal of what the spec no longer names ([`super::prune`]),
//! rollback on failure ([`super::rollback`]); then the webhooks. Before every mutating
//! provider call an intent is written to the store.

use std::collections::BTreeMap;
use std::time::Duration;

use secrecy::SecretString;

pub use super::context::{ApplyOptions, Context};
use super::deploy::provision_deploy_verify;
use super::desired::{self, Wanted, is_wanted};
use super::events::{RunEvent, Warning};
use super::failure::{RunFailure, Stop};
use super::hidden::{Hidden, Redacting};
use super::notify::{self, Endpoint};
use super::outcome::Outcome;
use super::plan::{Action, Known, Plan};
use super::prune::remove_unwanted;
use super::recover::recover;
use super::refresh::refresh;
use super::rollback::{left_in_place, roll_back};
use super::run::{Instances, Run};
use super::snapshot::Snapshot;
use crate::domain::{ResourceStatus, Role, RunOrigin, State};
use crate::lock::{AppLockError, RunLock};
use crate::plugins::PluginError;
use crate::secrets::{self, EnvSource, SecretsError};
use crate::spec::model::WebhookTarget;
use crate::spec::{LoadedSpec, hash::spec_hash};
use crate::store::{Deployment, Journal, ResourceRow, RunStart, StoreError};

/// Why an apply could not run at all, or had to stop without deciding its outcome (as
/// opposed to a deploy that failed, which is an [`Outcome`]).
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Lock(#[from] AppLockError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Plugin(#[from] PluginError),
    #[error("secrets: {0}")]
    Secrets(#[from] SecretsError),
    #[error("secrets: {0}")]
    FingerprintKey(#[from] super::fingerprint_key::KeyError),
    #[error(
        "the lock of `{app}` was lost (its connection to the state database ended): the run stopped before its next provider call, without a rollback\n  hint: the next `fabrik apply` recovers the run"
    )]
    LockLost { app: String },
}

/// Applies one spec.
pub async fn apply(
    ctx: &Context<'_>,
    loaded: &LoadedSpec,
    env: &tokio::sync::Mutex<EnvSource>,
    origin: &RunOrigin,
) -> Result<Outcome, ApplyError> {
    let spec = &loaded.spec;
    let app = spec.key();
    let run_id = new_run_id()?;
    let hidden = Hidden::default();
    let redacting = Redacting {
        inner: ctx.observer,
        hidden: &hidden,
    };
    let ctx = &Context {
        observer: &redacting,
        ..*ctx
    };
    let held = take_lock(ctx, &app, &run_id).await?;
    let locked = apply_locked(ctx, loaded, env, origin, &run_id, &hidden, &held).await;
    // Released on every path (a database lock's holder row goes with it), before the
    // webhooks, which never hold up another apply.
    held.release().await;
    let (mut result, endpoints) = locked?;
    result.warnings.extend(
        notify::tell_webhooks(
            &ctx.project.name,
            ctx.notifier,
            ctx.observer,
            &result,
            origin,
            &endpoints,
            &hidden,
        )
        .await,
    );
    Ok(result)
}

/// Everything an apply does while it holds the app's lock. Returns the outcome and the
/// webhooks to tell (none for "no changes", which notifies no one).
async fn apply_locked(
    ctx: &Context<'_>,
    loaded: &LoadedSpec,
    env: &tokio::sync::Mutex<EnvSource>,
    origin: &RunOrigin,
    run_id: &str,
    hidden: &Hidden,
    held: &RunLock,
) -> Result<(Outcome, Vec<Endpoint>), ApplyError> {
    let spec = &loaded.spec;
    let app = spec.key();
    let secrets = resolve_secrets(ctx, loaded, env, hidden).await?;
    let hash = spec_hash(spec, &loaded.rendered.canonical, &secrets.fingerprints);
    let wanted = desired::wanted(loaded);
    let (mut instances, endpoints) = connect(ctx, loaded, env, &secrets, hidden).await?;
    // Opening closes what a killed run left: a write, so only while the lock is held.
    confirm(held, &app).await?;
    let (existing, rows) = open_deployment(ctx, loaded, run_id).await?;
    let (mut settled, plan) = match &existing {
        Some(deployment) => settled(ctx, loaded, deployment, &rows, &secrets, &wanted).await?,
        None => (Vec::new(), Plan::fresh(loaded)),
    };
    if ctx.options.redeploy {
        // Sent again, so deployed again; the DNS record is left as it is.
        settled.retain(|w| w.role != Role::Coolify);
    }
    let outcome = |state, changed, run_id: Option<&str>| Outcome {
        app: app.clone(),
        state,
        url: spec.health_url(),
        changed,
        run_id: run_id.map(str::to_owned),
        spec_hash: hash.clone(),
        failure: None,
        rollback: None,
        warnings: vec![],
        page: page_of(&rows),
        attempted: false,
    };

    // What the refresh could not read: the run fails on it, having changed nothing.
    let mut unreadable = None;
    // Unchanged hash, every wanted resource in the state, nothing left over from a
    // replaced spec, and what the providers hold is what the spec says: nothing to do.
    if let Some(deployment) = &existing
        && !ctx.options.redeploy
        && deployment.spec_hash.as_deref() == Some(hash.as_str())
        && deployment.is_complete()
        && all_live_and_nothing_else(&rows, &wanted)
    {
        let refreshed = refresh(ctx, spec, &rows, &secrets.values, &mut instances).await;
        // Not drift, and not read again by the run: its one failure (issue 27).
        unreadable = refreshed
            .unreadable
            .into_iter()
            .next()
            .map(|(what, error)| RunFailure::Provider {
                resource: format!("could not read {what}"),
                error,
            });
        let drift = refreshed.drift;
        if drift.is_empty() && unreadable.is_none() {
            confirm(held, &app).await?;
            // A spec moved since the last run: the deployment names where it is now.
            let spec_path = loaded.path.display().to_string();
            if deployment.spec_path != spec_path {
                ctx.store
                    .ensure_deployment(&ctx.project.name, &app, &spec_path)
                    .await?;
            }
            ctx.store
                .append_event(
                    Some(deployment.id),
                    None,
                    &Journal::NoChanges { spec_hash: &hash },
                )
                .await?;
            ctx.observer.event(&app, None, &RunEvent::NoChanges);
            return Ok((outcome(State::Complete, false, None), Vec::new()));
        }
        for difference in drift {
            let repairing = false;
            ctx.observer.event(
                &app,
                None,
                &RunEvent::Drift {
                    difference,
                    repairing,
                },
            );
        }
    }

    // What is about to change, said before the first change (as `fabrik plan` says it).
    ctx.observer
        .event(&app, None, &planned(&plan, ctx.options.redeploy));

    // The deployment is created with its first run, in one transaction: a process that
    // dies (or a provider that crashes) before this point leaves no deployment behind.
    let spec_path = loaded.path.display().to_string();
    confirm(held, &app).await?;
    let deployment = ctx
        .store
        .start_run(&RunStart {
            project: &ctx.project.name,
            app: &app,
            spec_path: &spec_path,
            run_id,
            spec_hash: &hash,
            origin,
            snapshot: &Snapshot::of(loaded, &secrets.fingerprints).to_json(),
        })
        .await?;
    let told = match origin {
        RunOrigin::Apply => None,
        RunOrigin::Rollback { restores } => Some(RunEvent::Restoring {
            restores_run: restores.clone(),
            spec_hash: hash.clone(),
        }),
        RunOrigin::Promotion { from } => Some(RunEvent::Promoting {
            from_run: from.clone(),
            source: spec
                .source
                .as_ref()
                .and_then(|s| s.resolved())
                .unwrap_or_default()
                .to_owned(),
        }),
    };
    if let Some(event) = told {
        ctx.observer.event(&app, Some(run_id), &event);
    }
    let mut run = Run {
        ctx,
        app: app.clone(),
        deployment: deployment.id,
        run_id: run_id.to_owned(),
        owner: super::owner::owner_tag(&ctx.project.name, &app),
        state: State::Pending,
        secret_names: spec.secrets.clone(),
        settled,
        restorable: deployment.spec_hash.is_some(),
        hidden,
        lock: held,
        lock_lost: std::sync::atomic::AtomicBool::new(false),
        attempted: std::sync::atomic::AtomicBool::new(false),
    };
    let mut result = outcome(State::Complete, true, Some(run_id));
    let before = existing.as_ref().map(|d| d.state);
    let executed = execute(
        &mut run,
        loaded,
        (&secrets, &wanted),
        &mut instances,
        &mut result,
        (before, unreadable),
    )
    .await;
    let lock_lost = run.lock_lost.load(std::sync::atomic::Ordering::SeqCst);
    drop(run);
    if lock_lost {
        return Err(ApplyError::LockLost { app });
    }
    executed?;
    if result.state == State::Complete {
        confirm(held, &app).await?;
        ctx.store.set_spec_hash(deployment.id, &hash).await?;
    }
    result.page = page_of(&ctx.store.resources(deployment.id).await?).or(result.page);
    Ok((result, endpoints))
}

/// Refuses to go on writing once the app's lock is lost (`RunLock::confirm`).
async fn confirm(held: &RunLock, app: &str) -> Result<(), ApplyError> {
    if held.confirm().await {
        Ok(())
    } else {
        Err(ApplyError::LockLost {
            app: app.to_owned(),
        })
    }
}

/// The app's page in Coolify, as the Coolify resource's provider gave it (`page` among
/// its outputs), if the resource is live.
fn page_of(rows: &[ResourceRow]) -> Option<String> {
    rows.iter()
        .filter(|r| r.provider == crate::domain::Role::Coolify && r.is_live())
        .find_map(|r| r.outputs.as_ref()?.get("page")?.as_str().map(str::to_owned))
        .filter(|page| page.starts_with("https://") || page.starts_with("http://"))
}

/// A run's id: 16 hex digits from the OS CSPRNG.
fn new_run_id() -> Result<String, SecretsError> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(SecretsError::Random)?;
    Ok(hex::encode(bytes))
}

/// Takes the app's lock, waiting as the options say; a lock a dead process left is
/// taken over and said.
async fn take_lock(ctx: &Context<'_>, app: &str, run_id: &str) -> Result<RunLock, AppLockError> {
    let timeout = ctx.options.lock_timeout;
    let project = &ctx.project.name;
    let held = match ctx
        .locks
        .acquire(project, app, run_id, Duration::ZERO)
        .await
    {
        Ok(held) => held,
        // Held by a live run: say by whom while waiting (the live line shows it).
        Err(
            busy @ (AppLockError::Held { .. }
            | AppLockError::HeldUnknown { .. }
            | AppLockError::HeldBySession { .. }),
        ) if !timeout.is_zero() => {
            let holder = match &busy {
                AppLockError::Held { holder, .. } => holder.to_string(),
                _ => "another process that has not said who it is".to_owned(),
            };
            ctx.observer.event(
                app,
                None,
                &RunEvent::WaitingForLock {
                    holder,
                    timeout_s: timeout.as_secs(),
                },
            );
            ctx.locks.acquire(project, app, run_id, timeout).await?
        }
        Err(other) => return Err(other),
    };
    if let Some(previous) = held.took_over() {
        let previous = previous.to_string();
        ctx.observer
            .event(app, None, &RunEvent::LockTakenOver { previous });
    }
    Ok(held)
}

/// The app's secrets: their values (hidden from every output from now on) and keyed
/// fingerprints.
struct Secrets {
    values: BTreeMap<String, SecretString>,
    fingerprints: BTreeMap<String, String>,
}

async fn resolve_secrets(
    ctx: &Context<'_>,
    loaded: &LoadedSpec,
    env: &tokio::sync::Mutex<EnvSource>,
    hidden: &Hidden,
) -> Result<Secrets, ApplyError> {
    let spec = &loaded.spec;
    let project = &ctx.project.name;
    let app = spec.key();
    // Resolution may append generated values to `.env`: one app at a time.
    let env_source = env;
    let mut env = env.lock().await;
    // An environment's own values first: `.env.<environment>` is where its generated
    // secrets are kept.
    if let Some(environment) = &spec.environment {
        env.with_environment(&ctx.project.dir, environment)?;
    }
    // With a shared state, a secret another machine generated is never generated again
    // here with a different value.
    for (name, host) in ctx.store.generated_secrets(project, &app).await? {
        if spec.secrets.contains(&name) && env.get_in(spec.environment.as_deref(), &name).is_none()
        {
            return Err(SecretsError::GeneratedElsewhere {
                app: app.clone(),
                name,
                host,
                file: secrets::dotenv_name(spec.environment.as_deref()),
            }
            .into());
        }
    }
    let resolved = env.resolve_all_in(
        &ctx.project.dir,
        spec.environment.as_deref(),
        &spec.secrets,
        &spec.required_secrets,
    )?;
    drop(env);
    let key = super::fingerprint_key::for_apply(
        ctx.store,
        env_source,
        &ctx.project.dir,
        ctx.observer,
        project,
        &app,
    )
    .await?;
    let mut out = Secrets {
        values: BTreeMap::new(),
        fingerprints: BTreeMap::new(),
    };
    for secret in resolved {
        ctx.observer.secret(&secret.value);
        hidden.add(&secret.value);
        let mut warnings = Vec::new();
        if secrets::too_short(&secret.value) {
            warnings.push(Warning::SecretTooShort {
                name: secret.name.clone(),
                minimum: secrets::REDACT_MIN,
            });
        }
        {
            use secrecy::ExposeSecret;
            for (variable, value) in &spec.env {
                if !value.is_empty() && value == secret.value.expose_secret() {
                    warnings.push(Warning::EnvEqualsSecret {
                        variable: variable.clone(),
                        secret: secret.name.clone(),
                    });
                }
            }
        }
        for warning in warnings {
            ctx.observer
                .event(&app, None, &RunEvent::Warning { warning });
        }
        if secret.origin == secrets::Origin::Generated {
            ctx.store
                .record_generated(project, &app, &secret.name)
                .await?;
            let name = secret.name.clone();
            let file = secrets::dotenv_name(spec.environment.as_deref());
            ctx.observer
                .event(&app, None, &RunEvent::SecretGenerated { name, file });
        }
        let fingerprint = secrets::fingerprint(&key, &secret.name, &secret.value);
        out.fingerprints.insert(secret.name.clone(), fingerprint);
        out.values.insert(secret.name, secret.value);
    }
    Ok(out)
}

/// The app's deployment, if it has one, and its resources, after closing the runs a
/// dead process left: with the lock held, an unfinished run belongs to no one. Creates
/// nothing: a new app's deployment is created with its first run.
async fn open_deployment(
    ctx: &Context<'_>,
    loaded: &LoadedSpec,
    run_id: &str,
) -> Result<(Option<Deployment>, Vec<ResourceRow>), StoreError> {
    let app = &loaded.spec.key();
    let store = ctx.store;
    let Some(deployment) = store.deployment(&ctx.project.name, app).await? else {
        return Ok((None, Vec::new()));
    };
    let reason =
        format!("interrupted: the fabrik process running it stopped; found by run {run_id}");
    for (stale, left_in) in store.close_unfinished_runs(deployment.id, &reason).await? {
        let closed = RunEvent::InterruptedRunClosed {
            run: stale.clone(),
            left_in,
            reason: reason.clone(),
        };
        ctx.observer.event(app, Some(&stale), &closed);
    }
    let deployment = store
        .deployment(&ctx.project.name, app)
        .await?
        .unwrap_or(deployment);
    let rows = store.resources(deployment.id).await?;
    Ok((Some(deployment), rows))
}

/// The plan as the `Planned` event tells it: counts, and a line per resource that changes.
fn planned(plan: &Plan, redeploy: bool) -> RunEvent {
    let tally = crate::orchestrator::plan::Tally::of([plan]);
    let mut steps: Vec<String> = plan
        .steps
        .iter()
        .filter(|s| matches!(s.action, Action::Create | Action::Update | Action::Delete))
        .map(|s| {
            let fields: Vec<&str> = s.changes.iter().map(|c| c.field.as_str()).collect();
            let mut line = format!("{} {} {}", s.action.marker(), s.kind, s.name);
            if !fields.is_empty() {
                line.push_str(&format!(": {}", fields.join(", ")));
            }
            line
        })
        .collect();
    if redeploy {
        steps.push("> the Coolify resource deployed again (--redeploy)".to_owned());
    }
    RunEvent::Planned {
        add: tally.add,
        change: tally.change,
        destroy: tally.destroy,
        steps,
    }
}

/// What `fabrik plan` would show as unchanged, computed the same way: those resources
/// are left alone when their read-back shows no drift, so that apply does what plan said.
/// Returns the plan too, for the run to say what it is about to do.
async fn settled(
    ctx: &Context<'_>,
    loaded: &LoadedSpec,
    deployment: &Deployment,
    rows: &[ResourceRow],
    secrets: &Secrets,
    wanted: &[Wanted],
) -> Result<(Vec<Wanted>, Plan), StoreError> {
    let deployed = super::snapshot::deployed(ctx.store.runs(deployment.id).await?, deployment);
    let known = Known {
        deployment: Some(deployment.clone()),
        rows: rows.to_vec(),
        deployed_source: deployed.as_ref().and_then(|s| s.spec.source.clone()),
        deployed_fingerprints: deployed.map(|s| s.fingerprints),
        current_fingerprints: secrets
            .fingerprints
            .iter()
            .map(|(k, v)| (k.clone(), Some(v.clone())))
            .collect(),
    };
    let plan = Plan::against(loaded, &known);
    let settled = wanted
        .iter()
        .filter(|w| {
            plan.steps
                .iter()
                .any(|s| s.action == Action::NoOp && s.kind == w.kind && s.name == w.name)
        })
        .cloned()
        .collect();
    Ok((settled, plan))
}

/// One configured provider instance per role (they receive the app's secret values;
/// whatever they log is redacted), and the webhooks that can be used (one that cannot is
/// a warning, never fatal).
async fn connect(
    ctx: &Context<'_>,
    loaded: &LoadedSpec,
    env: &tokio::sync::Mutex<EnvSource>,
    secrets: &Secrets,
    hidden: &Hidden,
) -> Result<(Instances, Vec<Endpoint>), PluginError> {
    let app = &loaded.spec.key();
    let env = env.lock().await;
    let secret_values: Vec<SecretString> = secrets.values.values().cloned().collect();
    let instances = Instances {
        coolify: ctx
            .providers
            .instantiate_hiding(Role::Coolify, &env, &secret_values)
            .await?,
        dns: ctx
            .providers
            .instantiate_hiding(Role::Dns, &env, &secret_values)
            .await?,
        // Whenever the project has a monitor provider, whether or not this spec asks for
        // a monitor: one it no longer asks for is deleted with it.
        monitor: match ctx.providers.get(Role::Monitor) {
            Some(_) => Some(
                ctx.providers
                    .instantiate_hiding(Role::Monitor, &env, &secret_values)
                    .await?,
            ),
            None => None,
        },
    };
    for (provider, instance) in [
        (Role::Coolify, Some(&instances.coolify)),
        (Role::Dns, Some(&instances.dns)),
        (Role::Monitor, instances.monitor.as_ref()),
    ] {
        let Some(instance) = instance else { continue };
        for origin in instance.cleartext_origins() {
            let warning = Warning::CleartextCredential { provider, origin };
            ctx.observer
                .event(app, None, &RunEvent::Warning { warning });
        }
    }
    let mut endpoints = Vec::new();
    for webhook in ctx.project.notify.iter().chain(&loaded.notify.webhooks) {
        match Endpoint::resolve(webhook, |name| env.get(name)) {
            Ok(endpoint) => {
                if matches!(webhook.target, WebhookTarget::UrlEnv(_)) {
                    ctx.observer.secret(&endpoint.url);
                    hidden.add(&endpoint.url);
                }
                endpoints.push(endpoint);
            }
            Err(problem) => {
                let warning = Warning::WebhookUnusable { problem };
                ctx.observer
                    .event(app, None, &RunEvent::Warning { warning });
            }
        }
    }
    Ok((instances, endpoints))
}

/// Every wanted resource is live in the state, and nothing is pending or unwanted.
fn all_live_and_nothing_else(rows: &[ResourceRow], wanted: &[Wanted]) -> bool {
    let leftovers = rows
        .iter()
        .any(|r| r.status == ResourceStatus::Pending || (r.is_live() && !is_wanted(r, wanted)));
    let all_live = wanted.iter().all(|w| {
        rows.iter()
            .any(|r| r.is(w.role, &w.kind, &w.name) && r.is_live())
    });
    all_live && !leftovers
}

/// A started run, from `VALIDATING` to its terminal state: recovery, the forward path,
/// removal of what the spec no longer names; on a failure, the spec's rollback policy.
/// A store fault stops it where it is (the next apply recovers it). A failed run that
/// changed nothing leaves the deployment in the state it was in `before` (invariant 9):
/// `status` still shows the version that is live, and the next apply of an unchanged
/// spec is a no-op.
async fn execute(
    run: &mut Run<'_, '_>,
    loaded: &LoadedSpec,
    (secrets, wanted): (&Secrets, &[Wanted]),
    instances: &mut Instances,
    result: &mut Outcome,
    (before, unreadable): (Option<crate::domain::DeploymentState>, Option<RunFailure>),
) -> Result<(), StoreError> {
    run.to(State::Validating, None).await?;
    run.to(State::Provisioning, None).await?;
    let forward = async {
        if let Some(failure) = unreadable {
            return Err(Stop::Failed(failure));
        }
        recover(run, wanted, instances).await?;
        provision_deploy_verify(run, loaded, &secrets.values, instances).await
    }
    .await;
    let failure = match forward {
        Ok(monitor_warnings) => {
            result.warnings = monitor_warnings;
            result
                .warnings
                .extend(remove_unwanted(run, wanted, instances).await?);
            return run.to(State::Complete, None).await;
        }
        Err(Stop::Fault(error)) => return Err(error),
        Err(Stop::Failed(failure)) => failure,
    };
    let reason = run.hidden.redact(&failure.to_string());
    run.event(RunEvent::Failed {
        reason: reason.clone(),
    });
    result.failure = Some(failure);
    if run.ctx.options.no_rollback {
        result.state = State::Failed;
        result.rollback = Some(left_in_place(run).await?);
    } else {
        run.to(State::RollingBack, Some(&reason)).await?;
        let report = roll_back(run, &loaded.spec, &secrets.values, instances).await?;
        // A restored version that does not come up healthy is a failure of its own:
        // nothing healthy is serving.
        result.state = if report.problems.is_empty() && report.restored_unhealthy().is_none() {
            State::RolledBack
        } else {
            State::Failed
        };
        result.rollback = Some(report);
    }
    // `changed` stays true: it says that a run was started (the JSON contract). A run
    // that wrote an intent may have changed something even if its call failed: it is
    // recorded as the failure it is, and its summary does not say "nothing was changed".
    result.attempted = run.attempted.load(std::sync::atomic::Ordering::SeqCst);
    let keep = if result.changed_nothing() {
        before
    } else {
        None
    };
    run.end_keeping(result.state, result.reason().as_deref(), keep)
        .await
}

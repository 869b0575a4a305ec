//! Applying one spec, start to end: lock, secrets, hash, no-op detection (with drift
//! refresh), recovery of what a killed run left, the forward path
//! ([`super::deploy`]), removal of what the spec no longer names ([`super::prune`]),
//! rollback on failure ([`super::rollback`]); then the webhooks. Before every mutating
//! provider call an intent is written to the store.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use super::deploy::provision_deploy_verify;
use super::desired::{self, is_wanted};
use super::events::{Observer, RunEvent, Warning};
use super::failure::Stop;
use super::notify::{self, Endpoint, Notifier};
use super::outcome::Outcome;
use super::plan::{Action, Known, Plan};
use super::prune::remove_unwanted;
use super::recover::recover;
use super::refresh::refresh;
use super::rollback::{left_in_place, roll_back};
use super::run::{Hidden, Instances, Run, lock_store};
use super::snapshot::Snapshot;
use super::verify::VerifyOptions;
use crate::domain::{ResourceStatus, Role, RunOrigin, State};
use crate::lock::{self, AppLockError};
use crate::plugins::{PluginError, ProviderSet};
use crate::project::Project;
use crate::retry::Backoff;
use crate::secrets::{self, EnvSource};
use crate::spec::model::WebhookTarget;
use crate::spec::{LoadedSpec, hash::spec_hash};
use crate::store::{Journal, RunStart, Store, StoreError};

/// Options of `fabrik apply`.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    pub no_rollback: bool,
    pub no_refresh: bool,
    pub lock_timeout: Duration,
    pub deploy_timeout: Duration,
    pub verify: VerifyOptions,
    /// How provider calls are retried.
    pub backoff: Backoff,
}

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
    Secrets(String),
}

/// What an apply works with.
pub struct Context<'a> {
    pub project: &'a Project,
    pub providers: &'a ProviderSet,
    pub store: &'a Mutex<Store>,
    pub observer: &'a dyn Observer,
    pub options: &'a ApplyOptions,
    pub notifier: &'a Notifier,
}

/// Applies one spec.
pub async fn apply(
    ctx: &Context<'_>,
    loaded: &LoadedSpec,
    env: &tokio::sync::Mutex<EnvSource>,
    origin: &RunOrigin,
) -> Result<Outcome, ApplyError> {
    let spec = &loaded.spec;
    let app = spec.name.clone();
    let observer = ctx.observer;
    let tell = |event: RunEvent| observer.event(&app, None, &event);
    let mut run_id_bytes = [0u8; 8];
    getrandom::fill(&mut run_id_bytes).map_err(|e| ApplyError::Secrets(e.to_string()))?;
    let run_id = hex::encode(run_id_bytes);
    let owner = super::owner::owner_tag(&ctx.project.name, &app);

    let timeout = ctx.options.lock_timeout;
    let lock_dir = lock::lock_dir(&ctx.project.dir);
    let held = tokio::task::block_in_place(|| lock::acquire(&lock_dir, &app, &run_id, timeout))?;
    if let Some(previous) = &held.took_over {
        tell(RunEvent::LockTakenOver {
            previous: previous.to_string(),
        });
    }

    // Resolution may append generated values to `.env`: one app at a time.
    let resolved = env
        .lock()
        .await
        .resolve_all(&ctx.project.dir, &spec.secrets, &spec.required_secrets)
        .map_err(ApplyError::Secrets)?;
    let key = secrets::fingerprint_key(&ctx.project.dir).map_err(ApplyError::Secrets)?;
    let hidden = Hidden::default();
    let mut fingerprints = BTreeMap::new();
    let mut values = BTreeMap::new();
    for secret in &resolved {
        observer.secret(&secret.value);
        hidden.add(&secret.value);
        if secret.origin == secrets::Origin::Generated {
            tell(RunEvent::SecretGenerated {
                name: secret.name.clone(),
            });
        }
        fingerprints.insert(
            secret.name.clone(),
            secrets::fingerprint(&key, &secret.name, &secret.value),
        );
        values.insert(secret.name.clone(), secret.value.clone());
    }
    let hash = spec_hash(spec, &loaded.rendered.canonical, &fingerprints);
    let url = spec.health_url();
    let wanted = desired::wanted(loaded);

    let (deployment, rows) = {
        let store = lock_store(ctx.store);
        let deployment =
            store.ensure_deployment(&ctx.project.name, &app, &loaded.path.display().to_string())?;
        // With the lock held, a run that is not finished belongs to a process that died.
        let reason =
            format!("interrupted: the fabrik process running it stopped; found by run {run_id}");
        for (stale, left_in) in store.close_unfinished_runs(deployment.id, &reason)? {
            observer.event(
                &app,
                Some(&stale),
                &RunEvent::InterruptedRunClosed {
                    run: stale.clone(),
                    left_in,
                    reason: reason.clone(),
                },
            );
        }
        let deployment = store
            .deployment(&ctx.project.name, &app)?
            .unwrap_or(deployment);
        let rows = store.resources(deployment.id)?;
        (deployment, rows)
    };
    // What `fabrik plan` would show as unchanged, computed the same way.
    let settled = {
        let deployed_fingerprints = super::snapshot::deployed_fingerprints(
            lock_store(ctx.store).runs(deployment.id)?,
            &deployment,
        );
        let known = Known {
            deployment: Some(deployment.clone()),
            rows: rows.clone(),
            deployed_fingerprints,
            current_fingerprints: fingerprints
                .iter()
                .map(|(k, v)| (k.clone(), Some(v.clone())))
                .collect(),
        };
        let plan = Plan::against(loaded, &known);
        wanted
            .iter()
            .filter(|w| {
                plan.steps
                    .iter()
                    .any(|s| s.action == Action::NoOp && s.kind == w.kind && s.name == w.name)
            })
            .cloned()
            .collect::<Vec<_>>()
    };
    let (mut instances, endpoints) = {
        let env = env.lock().await;
        // The providers receive the app's secret values; whatever they log is redacted.
        let secret_values: Vec<secrecy::SecretString> = values.values().cloned().collect();
        let instances = Instances {
            coolify: ctx
                .providers
                .instantiate_hiding(Role::Coolify, &env, &secret_values)
                .await?,
            dns: ctx
                .providers
                .instantiate_hiding(Role::Dns, &env, &secret_values)
                .await?,
        };
        let mut endpoints = Vec::new();
        for webhook in ctx.project.notify.iter().chain(&loaded.notify.webhooks) {
            match Endpoint::resolve(webhook, |name| env.get(name)) {
                Ok(endpoint) => {
                    if matches!(webhook.target, WebhookTarget::UrlEnv(_)) {
                        observer.secret(&endpoint.url);
                        hidden.add(&endpoint.url);
                    }
                    endpoints.push(endpoint);
                }
                Err(problem) => tell(RunEvent::Warning {
                    warning: Warning::WebhookUnusable { problem },
                }),
            }
        }
        (instances, endpoints)
    };
    let outcome = |state, changed, run_id: Option<&str>| Outcome {
        app: app.clone(),
        state,
        url: url.clone(),
        changed,
        run_id: run_id.map(str::to_owned),
        spec_hash: hash.clone(),
        failure: None,
        rollback: None,
        warnings: vec![],
    };

    // Unchanged hash, every wanted resource in the state, nothing left over from a
    // replaced spec, and what the providers hold is what the spec says: nothing to do.
    let leftovers = rows
        .iter()
        .any(|r| r.status == ResourceStatus::Pending || (r.is_live() && !is_wanted(r, &wanted)));
    let all_live = wanted.iter().all(|w| {
        rows.iter()
            .any(|r| r.is(w.role, &w.kind, &w.name) && r.is_live())
    });
    if deployment.spec_hash.as_deref() == Some(hash.as_str())
        && deployment.is_complete()
        && all_live
        && !leftovers
    {
        let drift = refresh(ctx, spec, &rows, &values, &mut instances).await;
        if drift.is_empty() {
            lock_store(ctx.store).append_event(
                Some(deployment.id),
                None,
                &Journal::NoChanges { spec_hash: &hash },
            )?;
            tell(RunEvent::NoChanges);
            return Ok(outcome(State::Complete, false, None));
        }
        for difference in drift {
            tell(RunEvent::Drift {
                difference,
                repairing: false,
            });
        }
    }

    let snapshot = Snapshot::of(loaded, &fingerprints).to_json();
    lock_store(ctx.store).start_run(&RunStart {
        deployment: deployment.id,
        run_id: &run_id,
        spec_hash: &hash,
        origin,
        snapshot: &snapshot,
    })?;
    if let Some(restores) = origin.restores() {
        observer.event(
            &app,
            Some(&run_id),
            &RunEvent::Restoring {
                restores: restores.to_owned(),
                spec_hash: hash.clone(),
            },
        );
    }
    let mut run = Run {
        ctx,
        app: app.clone(),
        deployment: deployment.id,
        run_id: run_id.clone(),
        owner,
        state: State::Pending,
        secret_names: spec.secrets.clone(),
        settled,
        restorable: deployment.spec_hash.is_some(),
        hidden: &hidden,
    };
    run.to(State::Validating, None)?;
    run.to(State::Provisioning, None)?;

    let mut result = outcome(State::Complete, true, Some(&run_id));
    let forward = async {
        recover(&run, &wanted, &mut instances).await?;
        provision_deploy_verify(&mut run, loaded, &values, &mut instances).await
    }
    .await;
    match forward {
        Ok(()) => {
            result.warnings = remove_unwanted(&run, &wanted, &mut instances).await?;
            run.to(State::Complete, None)?;
            lock_store(ctx.store).set_spec_hash(deployment.id, &hash)?;
        }
        // The state cannot be written: stop here. The run stays unfinished with its
        // intents recorded; the next apply closes it and resolves them.
        Err(Stop::Fault(error)) => return Err(error.into()),
        Err(Stop::Failed(failure)) => {
            let reason = hidden.redact(&failure.to_string());
            run.event(RunEvent::Failed {
                reason: reason.clone(),
            });
            result.failure = Some(failure);
            if ctx.options.no_rollback {
                result.state = State::Failed;
                result.rollback = Some(left_in_place(&run)?);
            } else {
                run.to(State::RollingBack, Some(&reason))?;
                let report = roll_back(&run, spec, &values, &mut instances).await?;
                result.state = if report.problems.is_empty() {
                    State::RolledBack
                } else {
                    State::Failed
                };
                result.rollback = Some(report);
            }
            run.to(result.state, result.reason().as_deref())?;
        }
    }
    drop(held);
    result
        .warnings
        .extend(notify::tell_webhooks(ctx, &result, origin, &endpoints, &hidden).await);
    Ok(result)
}

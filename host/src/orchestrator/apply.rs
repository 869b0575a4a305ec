//! Applying one spec: lock, secrets, hash, no-op detection, recovery of what a killed run
//! left pending, provisioning (DNS and the Coolify resource concurrently), the
//! `pre_deploy` hook, deployment, verification, the `post_deploy` hook, removal of what the
//! spec no longer names, and rollback on failure; then the webhooks.
//! Before every mutating provider call an intent is written to the store.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::json;

use super::desired::{self, DesiredResource, Wanted, is_wanted, with_secrets, without_secrets};
use super::hooks::{self, HookEnv};
use super::notify::{Endpoint, Notifier};
use super::plan::{Action, Known, Plan};
use super::removal::{DELETION_TIMEOUT, delete_and_confirm};
use super::report::Reporter;
use super::snapshot::Snapshot;
use super::state::State;
use super::verify::{VerifyOptions, verify};
use crate::lock::{self, LockError};
use crate::plugins::instance::ProviderInstance;
use crate::plugins::types::{ProgressState, ProviderError, Resource};
use crate::plugins::{PluginError, ProviderSet};
use crate::project::Project;
use crate::secrets::{self, EnvSource};
use crate::spec::model::{NotifyEvent, RollbackMode};
use crate::spec::{LoadedSpec, hash::spec_hash};
use crate::store::{ResourceRow, RunStart, Store, StoreError};

/// Options of `fabrik apply`.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    pub no_rollback: bool,
    pub no_refresh: bool,
    pub lock_timeout: Duration,
    pub deploy_timeout: Duration,
    pub verify: VerifyOptions,
}

/// Why a run is started.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum RunOrigin {
    /// `fabrik apply` of a spec file.
    #[default]
    Apply,
    /// `fabrik rollback`: deploys again what the run `restores` deployed.
    Rollback { restores: String },
}

impl RunOrigin {
    pub fn as_str(&self) -> &'static str {
        match self {
            RunOrigin::Apply => "apply",
            RunOrigin::Rollback { .. } => "rollback",
        }
    }

    pub fn restores(&self) -> Option<&str> {
        match self {
            RunOrigin::Apply => None,
            RunOrigin::Rollback { restores } => Some(restores),
        }
    }
}

/// How one app's apply ended.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub app: String,
    pub state: State,
    pub url: String,
    pub changed: bool,
    /// The run, when one was started (not for "no changes").
    pub run_id: Option<String>,
    pub spec_hash: String,
    pub reason: Option<String>,
    pub undone: Vec<String>,
    pub left: Vec<String>,
    /// Problems that did not change the result (a replaced resource that could not be
    /// removed, a webhook that could not be reached).
    pub warnings: Vec<String>,
}

/// Why an apply could not run at all (as opposed to a deploy that failed).
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Lock(#[from] LockError),
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
    pub reporter: &'a Reporter,
    pub options: &'a ApplyOptions,
    pub notifier: &'a Notifier,
}

const ATTEMPTS: u32 = 3;

/// Runs `call` up to three times while it fails transiently, backing off exponentially
/// with jitter and honouring the API's Retry-After.
async fn retried<T>(
    reporter: &Reporter,
    app: &str,
    what: &str,
    mut call: impl AsyncFnMut() -> Result<T, ProviderError>,
) -> Result<T, ProviderError> {
    let mut attempt = 1;
    loop {
        match call().await {
            Err(ProviderError::Transient {
                message,
                retry_after,
            }) if attempt < ATTEMPTS => {
                let mut jitter = [0u8; 1];
                let _ = getrandom::fill(&mut jitter);
                let backoff = Duration::from_millis(250 * 2u64.pow(attempt) + u64::from(jitter[0]));
                let wait = retry_after.unwrap_or(backoff).min(Duration::from_secs(60));
                reporter.event(
                    app,
                    "retry",
                    &format!(
                        "{what}: {message}; retrying in {:.1} s (attempt {} of {ATTEMPTS})",
                        wait.as_secs_f32(),
                        attempt + 1
                    ),
                    json!({}),
                );
                tokio::time::sleep(wait).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}

fn lock_store<'a>(store: &'a Mutex<Store>) -> std::sync::MutexGuard<'a, Store> {
    match store.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// What [`Run::ensure`] did.
enum Ensured {
    /// Created, adopted or updated: a deployment follows.
    Changed(Resource),
    /// Already as wanted: nothing was sent.
    Unchanged(Resource),
}

struct Run<'a, 'b> {
    ctx: &'a Context<'b>,
    app: String,
    deployment: i64,
    run_id: String,
    owner: String,
    state: State,
    secret_names: Vec<String>,
    /// Resources the plan shows unchanged (`=`): left alone when what the provider
    /// reads back shows no drift, so that apply does what plan said.
    settled: Vec<Wanted>,
    /// Whether an earlier completed version exists for `fabrik rollback` to restore.
    restorable: bool,
}

impl Run<'_, '_> {
    fn event(&self, kind: &str, message: &str) {
        self.ctx
            .reporter
            .event(&self.app, kind, message, json!({ "run": self.run_id }));
    }

    fn to(&mut self, next: State, reason: Option<&str>) -> Result<(), StoreError> {
        let store = lock_store(self.ctx.store);
        self.state = store.transition(
            self.deployment,
            &self.run_id,
            self.state,
            next,
            reason.map(|r| self.ctx.reporter.redact(r)).as_deref(),
        )?;
        drop(store);
        self.event("state", &format!("{}", self.state));
        Ok(())
    }

    /// Creates, adopts or updates one resource, writing the intent first.
    async fn ensure(
        &self,
        instance: &mut ProviderInstance,
        resource: &DesiredResource,
    ) -> Result<Ensured, String> {
        let DesiredResource {
            role,
            kind,
            name,
            desired,
        } = resource;
        let (role, kind, name) = (*role, kind.as_str(), name.as_str());
        let stored = without_secrets(desired, &self.secret_names);
        let settled = self
            .settled
            .iter()
            .any(|w| w.role == role && w.kind == kind && w.name == name);
        let (known, pending_before) = {
            let rows = lock_store(self.ctx.store)
                .resources(self.deployment)
                .map_err(|e| e.to_string())?;
            let pending = rows
                .iter()
                .any(|r| r.is(role, kind, name) && r.status == "pending");
            let known = rows
                .into_iter()
                .find(|r| r.is(role, kind, name) && r.is_live());
            (known, pending)
        };
        let row = lock_store(self.ctx.store)
            .intend(
                self.deployment,
                &self.run_id,
                crate::store::ResourceKey {
                    provider: role,
                    kind,
                    name,
                },
                &self.owner,
                &stored,
            )
            .map_err(|e| e.to_string())?;
        let app = self.app.clone();
        let reporter = self.ctx.reporter;
        let what = format!("{kind} {name}");
        let live = match &known {
            Some(row) => {
                let id = row.external_id.clone().unwrap_or_default();
                retried(reporter, &app, &what, async || {
                    instance.read(kind, &id).await
                })
                .await
                .map_err(|e| format!("{what}: {e}"))?
            }
            None => retried(reporter, &app, &what, async || {
                instance.lookup(kind, name, &self.owner).await
            })
            .await
            .map_err(|e| format!("{what}: {e}"))?,
        };
        let (resource, status) = match live {
            Some(found)
                if known.is_some()
                    && settled
                    && found.owner.as_deref() == Some(self.owner.as_str())
                    && super::drift::compare(kind, desired, &found.live, &self.secret_names)
                        .is_clean() =>
            {
                self.event("resource", &format!("unchanged {what} ({})", found.id));
                return Ok(Ensured::Unchanged(found));
            }
            Some(found) if found.owner.as_deref() == Some(self.owner.as_str()) => {
                let drift = super::drift::compare(kind, desired, &found.live, &self.secret_names);
                for line in &drift.differences {
                    self.event("drift", &format!("repairing drift: {what}: {line}"));
                }
                let updated = retried(reporter, &app, &what, async || {
                    instance.update(kind, &found.id, desired).await
                })
                .await
                .map_err(|e| format!("{what}: {e}"))?;
                // Without a row, the resource predates this state (a lost or another
                // state file): updated, never counted as created by this run, so that a
                // rollback leaves it instead of deleting someone's app.
                let status = if known.is_none() && pending_before {
                    "adopted"
                } else {
                    "updated"
                };
                if known.is_none() && !pending_before {
                    self.event(
                        "resource",
                        &format!(
                            "found {what} ({}) by its owner tag, not in the state: updating it",
                            found.id
                        ),
                    );
                }
                (updated, status)
            }
            Some(foreign) => {
                lock_store(self.ctx.store)
                    .record(row, &self.run_id, "deleted", None, None)
                    .map_err(|e| e.to_string())?;
                return Err(format!(
                    "{what} already exists ({}) and is not owned by `{}` (its owner tag is {:?}); remove it or choose another name",
                    foreign.id,
                    self.owner,
                    foreign.owner.unwrap_or_default()
                ));
            }
            None => {
                // A create that failed transiently may still have happened, in part (a
                // proxy's 502 after the API acted): before trying again, look for it and
                // finish it with an update.
                let mut attempted = false;
                let created = retried(reporter, &app, &what, async || {
                    if attempted
                        && let Some(found) = instance.lookup(kind, name, &self.owner).await?
                        && found.owner.as_deref() == Some(self.owner.as_str())
                    {
                        return instance.update(kind, &found.id, desired).await;
                    }
                    attempted = true;
                    instance.create(kind, name, desired, &self.owner).await
                })
                .await;
                let created = match created {
                    Ok(created) => created,
                    Err(error) => {
                        // A create can fail after the resource came to exist (a later call
                        // inside it failed): find it, so that it is tracked and rolled back
                        // like any resource this run created, never left behind unknown.
                        let found = instance.lookup(kind, name, &self.owner).await;
                        if let Err(lookup) = &found {
                            return Err(format!(
                                "{what}: {error}; looking for a half-created {kind} afterwards failed too ({lookup}): the next apply looks again"
                            ));
                        }
                        if let Ok(Some(found)) = found
                            && found.owner.as_deref() == Some(self.owner.as_str())
                        {
                            lock_store(self.ctx.store)
                                .record(
                                    row,
                                    &self.run_id,
                                    "created",
                                    Some(&found.id),
                                    Some(&found.outputs),
                                )
                                .map_err(|e| e.to_string())?;
                            self.event(
                                "resource",
                                &format!(
                                    "created {what} ({}), but the create did not finish",
                                    found.id
                                ),
                            );
                        }
                        return Err(format!("{what}: {error}"));
                    }
                };
                (created, "created")
            }
        };
        lock_store(self.ctx.store)
            .record(
                row,
                &self.run_id,
                status,
                Some(&resource.id),
                Some(&resource.outputs),
            )
            .map_err(|e| e.to_string())?;
        self.event("resource", &format!("{status} {what} ({})", resource.id));
        Ok(Ensured::Changed(resource))
    }

    /// Follows a long operation until it is ready, failed or out of time.
    async fn wait(
        &self,
        instance: &mut ProviderInstance,
        kind: &str,
        id: &str,
    ) -> Result<(), String> {
        let started = Instant::now();
        let mut delay = Duration::from_millis(100);
        let mut last = String::new();
        loop {
            let progress = retried(self.ctx.reporter, &self.app, "deployment", async || {
                instance.progress(kind, id).await
            })
            .await
            .map_err(|e| e.to_string())?;
            let message = progress.message.clone().unwrap_or_default();
            if message != last {
                self.event("progress", &message);
                last.clone_from(&message);
            }
            match progress.state {
                ProgressState::Ready => return Ok(()),
                ProgressState::Failed => return Err(format!("the deployment failed: {message}")),
                ProgressState::Pending | ProgressState::Running => {}
            }
            if started.elapsed() >= self.ctx.options.deploy_timeout {
                return Err(format!(
                    "the deployment did not finish within {} s (last: {message})",
                    self.ctx.options.deploy_timeout.as_secs()
                ));
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(3));
        }
    }
}

fn instance_for<'i>(
    role: &str,
    coolify: &'i mut ProviderInstance,
    dns: &'i mut ProviderInstance,
) -> &'i mut ProviderInstance {
    if role == "dns" { dns } else { coolify }
}

/// Resolves the webhooks of the project and the spec; one that cannot be used is
/// reported, not fatal.
fn endpoints(ctx: &Context<'_>, loaded: &LoadedSpec, env: &EnvSource, app: &str) -> Vec<Endpoint> {
    let mut out = Vec::new();
    for webhook in ctx.project.notify.iter().chain(&loaded.notify.webhooks) {
        match Endpoint::resolve(webhook, |name| env.get(name)) {
            Ok(endpoint) => {
                if matches!(webhook.target, crate::spec::model::WebhookTarget::UrlEnv(_)) {
                    ctx.reporter.hide(&endpoint.url);
                }
                out.push(endpoint);
            }
            Err(problem) => ctx.reporter.event(app, "warning", &problem, json!({})),
        }
    }
    out
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
    let reporter = ctx.reporter;
    let mut run_id_bytes = [0u8; 8];
    getrandom::fill(&mut run_id_bytes).map_err(|e| ApplyError::Secrets(e.to_string()))?;
    let run_id = hex::encode(run_id_bytes);
    let owner = super::owner::owner_tag(&ctx.project.name, &app);

    let timeout = ctx.options.lock_timeout;
    let lock_dir = lock::lock_dir(&ctx.project.dir);
    let held = tokio::task::block_in_place(|| lock::acquire(&lock_dir, &app, &run_id, timeout))?;
    if let Some(previous) = &held.took_over {
        reporter.event(
            &app,
            "lock",
            &format!("took over a stale lock left by {previous}"),
            json!({}),
        );
    }

    // Resolution may append generated values to `.env`: one app at a time.
    let resolved = env
        .lock()
        .await
        .resolve_all(&ctx.project.dir, &spec.secrets, &spec.required_secrets)
        .map_err(ApplyError::Secrets)?;
    let key = secrets::fingerprint_key(&ctx.project.dir).map_err(ApplyError::Secrets)?;
    let mut fingerprints = BTreeMap::new();
    let mut values = BTreeMap::new();
    for secret in &resolved {
        reporter.hide(&secret.value);
        if secret.origin == secrets::Origin::Generated {
            reporter.event(
                &app,
                "secret",
                &format!("generated secret {} and saved it to .env", secret.name),
                json!({}),
            );
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
            reporter.event(
                &app,
                "recover",
                &format!("run {stale} was {left_in}: {reason}"),
                json!({ "run": stale }),
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
        let deployed_fingerprints = crate::orchestrator::snapshot::deployed_fingerprints(
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
    let (mut coolify, mut dns, endpoints) = {
        let env = env.lock().await;
        // The providers receive the app's secret values; whatever they log is redacted.
        let hidden: Vec<secrecy::SecretString> = values.values().cloned().collect();
        (
            ctx.providers
                .instantiate_hiding("coolify", &env, &hidden)
                .await?,
            ctx.providers
                .instantiate_hiding("dns", &env, &hidden)
                .await?,
            endpoints(ctx, loaded, &env, &app),
        )
    };
    let outcome = |state, changed, run_id: Option<&str>| Outcome {
        app: app.clone(),
        state,
        url: url.clone(),
        changed,
        run_id: run_id.map(str::to_owned),
        spec_hash: hash.clone(),
        reason: None,
        undone: vec![],
        left: vec![],
        warnings: vec![],
    };

    // Unchanged hash, every wanted resource in the state, nothing left over from a
    // replaced spec, and what the providers hold is what the spec says: nothing to do.
    let leftovers = rows
        .iter()
        .any(|r| r.status == "pending" || (r.is_live() && !is_wanted(r, &wanted)));
    let all_live = wanted.iter().all(|w| {
        rows.iter()
            .any(|r| r.is(w.role, &w.kind, &w.name) && r.is_live())
    });
    if deployment.spec_hash.as_deref() == Some(hash.as_str())
        && deployment.state == "COMPLETE"
        && all_live
        && !leftovers
    {
        let drift = refresh(ctx, spec, &rows, &values, &mut coolify, &mut dns).await;
        if drift.is_empty() {
            lock_store(ctx.store).append_event(
                Some(deployment.id),
                None,
                "no_changes",
                &json!({ "spec_hash": hash }),
            )?;
            reporter.event(
                &app,
                "no_changes",
                "no changes: the spec is unchanged and its resources are live",
                json!({}),
            );
            return Ok(outcome(State::Complete, false, None));
        }
        for line in &drift {
            reporter.event(&app, "drift", &format!("drift: {line}"), json!({}));
        }
    }

    let snapshot = Snapshot::of(loaded, &fingerprints).to_json();
    lock_store(ctx.store).start_run(&RunStart {
        deployment: deployment.id,
        run_id: &run_id,
        spec_hash: &hash,
        origin: origin.as_str(),
        restores_run: origin.restores(),
        snapshot: &snapshot,
    })?;
    if let Some(restores) = origin.restores() {
        reporter.event(
            &app,
            "rollback",
            &format!("deploying again the version of run {restores} ({hash})"),
            json!({ "restores_run": restores }),
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
    };
    run.to(State::Validating, None)?;
    run.to(State::Provisioning, None)?;

    let mut result = outcome(State::Complete, true, Some(&run_id));
    let failure = async {
        recover(&run, &wanted, &mut coolify, &mut dns).await?;
        provision_deploy_verify(&mut run, loaded, &values, &mut coolify, &mut dns).await
    }
    .await;
    match failure {
        Ok(()) => {
            result.warnings = remove_replaced(&run, &wanted, &mut coolify, &mut dns).await?;
            run.to(State::Complete, None)?;
            lock_store(ctx.store).set_spec_hash(deployment.id, &hash)?;
        }
        Err(reason) => {
            let reason = reporter.redact(&reason);
            run.event("failure", &reason);
            result.reason = Some(reason.clone());
            if ctx.options.no_rollback {
                result.state = State::Failed;
                result.reason = Some(format!("{reason} (rollback disabled)"));
                run.to(State::Failed, result.reason.as_deref())?;
                result.left = touched(&run)?
                    .iter()
                    .map(|r| {
                        format!(
                            "{} {} ({})",
                            r.kind,
                            r.name,
                            r.external_id.clone().unwrap_or_default()
                        )
                    })
                    .collect();
            } else {
                run.to(State::RollingBack, Some(&reason))?;
                let (undone, left, problems) =
                    rollback(&run, spec, &values, &mut coolify, &mut dns).await?;
                result.undone = undone;
                result.left = left;
                if problems.is_empty() {
                    result.state = State::RolledBack;
                } else {
                    result.state = State::Failed;
                    result.reason = Some(format!(
                        "{reason}; rollback incomplete: {}",
                        problems.join("; ")
                    ));
                }
                run.to(result.state, result.reason.as_deref())?;
            }
        }
    }
    drop(held);
    result
        .warnings
        .extend(notify(ctx, &result, origin, &endpoints).await);
    Ok(result)
}

/// Reads every live resource, each provider's alongside the other's, and compares it with
/// what the last completed run deployed: what is gone, unreadable or different is drift
/// (secret values never shown). The record is compared with the server's address now,
/// which may have changed since.
async fn refresh(
    ctx: &Context<'_>,
    spec: &crate::spec::Spec,
    rows: &[ResourceRow],
    values: &BTreeMap<String, secrecy::SecretString>,
    coolify: &mut ProviderInstance,
    dns: &mut ProviderInstance,
) -> Vec<String> {
    let (app, server, secret_names) = (spec.name.as_str(), spec.server.as_str(), &spec.secrets);
    if ctx.options.no_refresh {
        return Vec::new();
    }
    let read_all = async |instance: &mut ProviderInstance, role: &str| {
        let mut read = Vec::new();
        for row in rows.iter().filter(|r| r.is_live() && r.provider == role) {
            let id = row.external_id.clone().unwrap_or_default();
            let found = retried(ctx.reporter, app, "refresh", async || {
                instance.read(&row.kind, &id).await
            })
            .await;
            read.push((row, found));
        }
        read
    };
    let ((address, mut read), dns_read) = tokio::join!(
        async {
            let address = retried(ctx.reporter, app, "server lookup", async || {
                coolify.lookup("server", server, "").await
            })
            .await;
            (address, read_all(coolify, desired::COOLIFY_ROLE).await)
        },
        read_all(dns, desired::DNS_ROLE)
    );
    read.extend(dns_read);
    let mut drift = Vec::new();
    let ip = match address {
        Ok(Some(found)) => found.outputs["ip"].as_str().map(str::to_owned),
        Ok(None) => {
            drift.push(format!("Coolify has no server named `{server}` any more"));
            None
        }
        Err(e) => {
            drift.push(format!("Coolify server `{server}` cannot be read: {e}"));
            None
        }
    };
    for (row, found) in read {
        match found {
            Ok(Some(found)) => {
                let mut desired = row
                    .desired
                    .as_ref()
                    .map(|d| with_secrets(d, values))
                    .unwrap_or_default();
                if row.provider == desired::DNS_ROLE
                    && let Some(ip) = &ip
                {
                    desired["content"] = serde_json::json!(ip);
                }
                let comparison =
                    super::drift::compare(&row.kind, &desired, &found.live, secret_names);
                drift.extend(
                    comparison
                        .differences
                        .into_iter()
                        .map(|d| format!("{} {}: {d}", row.kind, row.name)),
                );
            }
            Ok(None) => drift.push(format!("{} {} is gone", row.kind, row.name)),
            Err(e) => drift.push(format!("{} {} cannot be read: {e}", row.kind, row.name)),
        }
    }
    drift
}

/// Resolves the intents a killed run left pending for resources the spec no longer
/// wants: looked up by name and owner tag, adopted if found (so that this run removes
/// them), forgotten if not. Pending intents for wanted resources are resolved by
/// [`Run::ensure`] in the same way.
async fn recover(
    run: &Run<'_, '_>,
    wanted: &[Wanted],
    coolify: &mut ProviderInstance,
    dns: &mut ProviderInstance,
) -> Result<(), String> {
    let pending: Vec<ResourceRow> = lock_store(run.ctx.store)
        .resources(run.deployment)
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|r| r.status == "pending" && !is_wanted(r, wanted))
        .collect();
    for row in pending {
        let instance = instance_for(&row.provider, coolify, dns);
        let what = format!("{} {}", row.kind, row.name);
        let found = retried(run.ctx.reporter, &run.app, &what, async || {
            instance.lookup(&row.kind, &row.name, &row.owner).await
        })
        .await
        .map_err(|e| format!("recovering {what}: {e}"))?;
        let store = lock_store(run.ctx.store);
        match found {
            Some(resource) if resource.owner.as_deref() == Some(row.owner.as_str()) => {
                store
                    .record(
                        row.id,
                        &run.run_id,
                        "adopted",
                        Some(&resource.id),
                        Some(&resource.outputs),
                    )
                    .map_err(|e| e.to_string())?;
                drop(store);
                run.event(
                    "recover",
                    &format!(
                        "adopted {what} ({}), left by an interrupted run",
                        resource.id
                    ),
                );
            }
            _ => {
                store
                    .record(row.id, &run.run_id, "deleted", None, None)
                    .map_err(|e| e.to_string())?;
                drop(store);
                run.event(
                    "recover",
                    &format!("{what} was never created by the interrupted run"),
                );
            }
        }
    }
    Ok(())
}

/// After a successful run: deletes what Fabrik owns for this app that the spec no longer
/// names (the record of a previous domain, a resource of another kind). A deletion that
/// fails is a warning; the row stays, so the next apply tries again.
async fn remove_replaced(
    run: &Run<'_, '_>,
    wanted: &[Wanted],
    coolify: &mut ProviderInstance,
    dns: &mut ProviderInstance,
) -> Result<Vec<String>, StoreError> {
    let mut warnings = Vec::new();
    let stale: Vec<ResourceRow> = lock_store(run.ctx.store)
        .resources(run.deployment)?
        .into_iter()
        .filter(|r| r.is_live() && !is_wanted(r, wanted))
        .collect();
    for row in stale.into_iter().rev() {
        let id = row.external_id.clone().unwrap_or_default();
        let label = format!("{} {} ({id})", row.kind, row.name);
        let instance = instance_for(&row.provider, coolify, dns);
        let deleted = retried(run.ctx.reporter, &run.app, &label, async || {
            delete_and_confirm(
                instance,
                &row.kind,
                &id,
                &row.owner,
                false,
                DELETION_TIMEOUT,
            )
            .await
        })
        .await;
        match deleted {
            Ok(()) | Err(ProviderError::NotFound(_)) => {
                lock_store(run.ctx.store).record(row.id, &run.run_id, "deleted", None, None)?;
                run.event(
                    "resource",
                    &format!("deleted {label}: no longer in the spec"),
                );
            }
            Err(e) => {
                let warning = format!(
                    "could not delete {label}, which the spec no longer names: {e}; the next apply tries again"
                );
                run.event("warning", &warning);
                warnings.push(warning);
            }
        }
    }
    Ok(warnings)
}

/// Tells the webhooks how the run ended. Never changes the result: a failed delivery is
/// a warning.
async fn notify(
    ctx: &Context<'_>,
    outcome: &Outcome,
    origin: &RunOrigin,
    endpoints: &[Endpoint],
) -> Vec<String> {
    let event = match outcome.state {
        State::Complete => NotifyEvent::Complete,
        State::RolledBack => NotifyEvent::RolledBack,
        _ => NotifyEvent::Failed,
    };
    let targets: Vec<&Endpoint> = endpoints.iter().filter(|e| e.wants(event)).collect();
    if targets.is_empty() {
        return Vec::new();
    }
    let at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let body = json!({
        "event": event.as_str(),
        "project": ctx.project.name,
        "app": outcome.app,
        "run_id": outcome.run_id,
        "origin": origin.as_str(),
        "restores_run": origin.restores(),
        "state": outcome.state,
        "url": outcome.url,
        "spec_hash": outcome.spec_hash,
        "reason": outcome.reason,
        "undone": outcome.undone,
        "left": outcome.left,
        "warnings": outcome.warnings,
        "at": at,
    });
    let body = ctx.reporter.redact(&body.to_string());
    let deliveries = futures::future::join_all(
        targets
            .iter()
            .map(|endpoint| ctx.notifier.deliver(endpoint, &body)),
    )
    .await;
    let mut warnings = Vec::new();
    for (endpoint, delivered) in targets.iter().zip(deliveries) {
        match delivered {
            Ok(attempts) => ctx.reporter.event(
                &outcome.app,
                "notify",
                &format!(
                    "told {} ({}, attempt {attempts})",
                    endpoint.label,
                    event.as_str()
                ),
                json!({}),
            ),
            Err(problem) => {
                let warning = format!("could not tell {}: {problem}", endpoint.label);
                ctx.reporter
                    .event(&outcome.app, "warning", &warning, json!({}));
                warnings.push(warning);
            }
        }
    }
    warnings
}

/// Runs one of the spec's hooks, its output as the run's events.
async fn hook(
    run: &Run<'_, '_>,
    loaded: &LoadedSpec,
    secrets: &BTreeMap<String, secrecy::SecretString>,
    which: &str,
    command: &str,
) -> Result<(), String> {
    let spec = &loaded.spec;
    run.event("hook", &format!("running {which}: {command}"));
    let url = spec.health_url();
    let withheld: Vec<String> = run
        .ctx
        .project
        .providers
        .values()
        .flat_map(|entry| entry.secrets.values().cloned())
        .collect();
    let env = HookEnv {
        project: &run.ctx.project.name,
        app: &spec.name,
        domain: &spec.domain,
        url: &url,
        run_id: &run.run_id,
        secrets,
        withheld: &withheld,
    };
    let timeout = Duration::from_secs(u64::from(loaded.hooks.timeout));
    hooks::run(
        which,
        command,
        &run.ctx.project.dir,
        &env,
        timeout,
        |line| {
            run.event("hook_output", &format!("{which}: {line}"));
        },
    )
    .await
}

async fn provision_deploy_verify(
    run: &mut Run<'_, '_>,
    loaded: &LoadedSpec,
    values: &BTreeMap<String, secrecy::SecretString>,
    coolify: &mut ProviderInstance,
    dns: &mut ProviderInstance,
) -> Result<(), String> {
    use secrecy::ExposeSecret;
    let spec = &loaded.spec;
    let server = retried(run.ctx.reporter, &run.app, "server lookup", async || {
        coolify.lookup("server", &spec.server, &run.owner).await
    })
    .await
    .map_err(|e| format!("looking up Coolify server `{}`: {e}", spec.server))?
    .ok_or_else(|| format!("Coolify has no server named `{}`", spec.server))?;
    let ip = server.outputs["ip"]
        .as_str()
        .filter(|ip| ip.parse::<std::net::IpAddr>().is_ok())
        .ok_or_else(|| {
            format!(
                "Coolify server `{}` has no usable IP address ({}); the DNS record needs one",
                spec.server, server.outputs["ip"]
            )
        })?
        .to_owned();
    let record = desired::dns_record(loaded, &ip);
    let plain: BTreeMap<String, String> = values
        .iter()
        .map(|(k, v)| (k.clone(), v.expose_secret().to_owned()))
        .collect();
    let app_resource = desired::coolify_resource(loaded, &plain)?;

    // Before anything changes. A resource's placement cannot be changed in place (the
    // provider updates image, port, domains, env and compose): refuse rather than end
    // COMPLETE with the app where it was. A new resource needs a destination Coolify
    // accepts.
    let existing = lock_store(run.ctx.store)
        .resources(run.deployment)
        .map_err(|e| e.to_string())?
        .into_iter()
        .find(|r| {
            r.is(
                desired::COOLIFY_ROLE,
                &app_resource.kind,
                &app_resource.name,
            ) && r.is_live()
        });
    match existing.as_ref().and_then(|r| r.desired.as_ref()) {
        Some(before) => desired::check_placement(&spec.name, before, &app_resource.desired)?,
        None => desired::check_destination(spec, &server.outputs)?,
    }
    if run
        .ctx
        .options
        .verify
        .resolve
        .iter()
        .all(|r| r.host != spec.domain)
        && ip.parse().is_ok_and(super::verify::is_private)
    {
        return Err(format!(
            "Coolify server `{}` has the private address {ip}: the record would point there and the health check would refuse it; use a server with a public address (or `--resolve` for a private setup)",
            spec.server
        ));
    }

    // DNS and the Coolify resource do not depend on each other.
    let run_ref: &Run<'_, '_> = run;
    let (record_result, resource) = tokio::join!(
        run_ref.ensure(dns, &record),
        run_ref.ensure(coolify, &app_resource),
    );
    record_result?;
    let (resource, redeployed) = match resource? {
        Ensured::Changed(resource) => (resource, true),
        Ensured::Unchanged(resource) => (resource, false),
    };

    if let Some(command) = &loaded.hooks.pre_deploy {
        hook(run, loaded, values, "pre_deploy", command).await?;
    }
    run.to(State::Deploying, None).map_err(|e| e.to_string())?;
    if redeployed {
        run.wait(coolify, &app_resource.kind, &resource.id).await?;
    } else {
        run.event(
            "progress",
            &format!(
                "{} {} is unchanged: nothing to deploy",
                app_resource.kind, app_resource.name
            ),
        );
    }
    run.to(State::Verifying, None).map_err(|e| e.to_string())?;
    for r in &run.ctx.options.verify.resolve {
        run.event(
            "verify",
            &format!("using resolve override {}:{} -> {}", r.host, r.port, r.addr),
        );
    }
    if let Some(ca) = &run.ctx.options.verify.ca_file {
        run.event(
            "verify",
            &format!("trusting the extra CA in {}", ca.display()),
        );
    }
    let verified = verify(spec, &run.ctx.options.verify)
        .await
        .map_err(|e| e.to_string())?;
    run.event(
        "verify",
        &format!(
            "{} answered {} after {} attempt(s)",
            spec.health_url(),
            verified.status,
            verified.attempts
        ),
    );
    if let Some(command) = &loaded.hooks.post_deploy {
        hook(run, loaded, values, "post_deploy", command).await?;
    }
    Ok(())
}

/// The resources this run created or changed, newest first.
fn touched(run: &Run<'_, '_>) -> Result<Vec<ResourceRow>, StoreError> {
    let mut rows: Vec<_> = lock_store(run.ctx.store)
        .resources(run.deployment)?
        .into_iter()
        .filter(|r| {
            r.changed_by_run.as_deref() == Some(run.run_id.as_str()) && r.status != "deleted"
        })
        .collect();
    rows.reverse();
    Ok(rows)
}

type Rolled = (Vec<String>, Vec<String>, Vec<String>);

/// Undoes, newest first, what this run created or changed, as the spec's policy says.
async fn rollback(
    run: &Run<'_, '_>,
    spec: &crate::spec::Spec,
    values: &BTreeMap<String, secrecy::SecretString>,
    coolify: &mut ProviderInstance,
    dns: &mut ProviderInstance,
) -> Result<Rolled, StoreError> {
    let (mut undone, mut left, mut problems) = (Vec::new(), Vec::new(), Vec::new());
    for row in touched(run)? {
        let Some(id) = row.external_id.clone() else {
            continue;
        };
        let label = format!("{} {} ({id})", row.kind, row.name);
        let mode = if row.provider == desired::DNS_ROLE {
            spec.rollback.dns
        } else {
            spec.rollback.coolify
        };
        let created = row.created_by_run.as_deref() == Some(run.run_id.as_str());
        match mode {
            RollbackMode::Never => left.push(format!("{label} (rollback policy: never)")),
            RollbackMode::Manual => left.push(if run.restorable {
                // The previous version names what it needs: deploying it again restores
                // what this run updated and removes what it created.
                format!(
                    "{label} (rollback policy: manual); `fabrik rollback {}` restores the last completed version, or re-apply a working spec",
                    spec.name
                )
            } else {
                format!(
                    "{label} (rollback policy: manual); there is no earlier version: `fabrik destroy {} --yes` removes the app, or re-apply a working spec",
                    spec.name
                )
            }),
            RollbackMode::Auto => {
                if !created && row.previous_desired.is_none() {
                    left.push(format!("{label} (it existed before this run and no earlier settings are known; left as is)"));
                    continue;
                }
                let instance = instance_for(&row.provider, coolify, dns);
                let result = match (&row.previous_desired, created) {
                    (Some(previous), false) => {
                        let previous = with_secrets(previous, values);
                        retried(run.ctx.reporter, &run.app, "rollback", async || instance.update(&row.kind, &id, &previous).await).await.map(|_| "restored")
                    }
                    _ => match retried(run.ctx.reporter, &run.app, "rollback", async || delete_and_confirm(instance, &row.kind, &id, &row.owner, created, DELETION_TIMEOUT).await).await {
                        Ok(()) | Err(ProviderError::NotFound(_)) => Ok("deleted"),
                        Err(e) => Err(e),
                    },
                };
                match result {
                    Ok(what) => {
                        if what == "deleted" {
                            lock_store(run.ctx.store).record(row.id, &run.run_id, "deleted", None, None)?;
                        }
                        run.event("rollback", &format!("{what} {label}"));
                        undone.push(format!("{what} {label}"));
                    }
                    Err(e) => problems.push(format!("{label}: {e}")),
                }
            }
        }
    }
    Ok((undone, left, problems))
}

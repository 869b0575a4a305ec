//! Applying one spec: lock, secrets, hash, no-op detection, provisioning (DNS and the
//! Coolify resource concurrently), deployment, verification, and rollback on failure.
//! Before every mutating provider call an intent is written to the store.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Value, json};

use super::report::Reporter;
use super::state::State;
use super::verify::{VerifyOptions, verify};
use crate::lock::{self, LockError};
use crate::plugins::instance::ProviderInstance;
use crate::plugins::types::{ProgressState, ProviderError, Resource};
use crate::plugins::{PluginError, ProviderSet};
use crate::project::Project;
use crate::secrets::{self, EnvSource};
use crate::spec::model::{RollbackMode, Source};
use crate::spec::{LoadedSpec, hash::spec_hash};
use crate::store::{Store, StoreError};

/// Options of `fabrik apply`.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    pub no_rollback: bool,
    pub no_refresh: bool,
    pub lock_timeout: Duration,
    pub deploy_timeout: Duration,
    pub verify: VerifyOptions,
}

/// How one app's apply ended.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub app: String,
    pub state: State,
    pub url: String,
    pub changed: bool,
    pub reason: Option<String>,
    pub undone: Vec<String>,
    pub left: Vec<String>,
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

/// The desired state with each secret value replaced by a marker: what the store keeps.
fn without_secrets(desired: &Value, secrets: &[String]) -> Value {
    let mut stored = desired.clone();
    if let Some(env) = stored.get_mut("env").and_then(Value::as_object_mut) {
        for name in secrets {
            if env.contains_key(name) {
                env.insert(name.clone(), json!(format!("${{secret:{name}}}")));
            }
        }
    }
    stored
}

/// The stored desired state with the secret markers replaced by the current values.
fn with_secrets(stored: &Value, values: &BTreeMap<String, secrecy::SecretString>) -> Value {
    use secrecy::ExposeSecret;
    let mut desired = stored.clone();
    if let Some(env) = desired.get_mut("env").and_then(Value::as_object_mut) {
        for (name, value) in values {
            if env.get(name).and_then(Value::as_str) == Some(format!("${{secret:{name}}}").as_str())
            {
                env.insert(name.clone(), json!(value.expose_secret()));
            }
        }
    }
    desired
}

struct Run<'a, 'b> {
    ctx: &'a Context<'b>,
    app: String,
    deployment: i64,
    run_id: String,
    owner: String,
    state: State,
    secret_names: Vec<String>,
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
        role: &str,
        kind: &str,
        name: &str,
        desired: &Value,
    ) -> Result<Resource, String> {
        let stored = without_secrets(desired, &self.secret_names);
        let known = {
            let store = lock_store(self.ctx.store);
            let rows = store
                .resources(self.deployment)
                .map_err(|e| e.to_string())?;
            rows.into_iter().find(|r| {
                r.provider == role
                    && r.kind == kind
                    && r.name == name
                    && r.status != "deleted"
                    && r.status != "pending"
                    && r.external_id.is_some()
            })
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
            Some(found) if found.owner.as_deref() == Some(self.owner.as_str()) => {
                let updated = retried(reporter, &app, &what, async || {
                    instance.update(kind, &found.id, desired).await
                })
                .await
                .map_err(|e| format!("{what}: {e}"))?;
                (
                    updated,
                    if known.is_some() {
                        "updated"
                    } else {
                        "adopted"
                    },
                )
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
                let created = retried(reporter, &app, &what, async || {
                    instance.create(kind, name, desired, &self.owner).await
                })
                .await
                .map_err(|e| format!("{what}: {e}"))?;
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
        Ok(resource)
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

/// Applies one spec.
pub async fn apply(
    ctx: &Context<'_>,
    loaded: &LoadedSpec,
    env: &tokio::sync::Mutex<EnvSource>,
) -> Result<Outcome, ApplyError> {
    let spec = &loaded.spec;
    let app = spec.name.clone();
    let reporter = ctx.reporter;
    let mut run_id_bytes = [0u8; 8];
    getrandom::fill(&mut run_id_bytes).map_err(|e| ApplyError::Secrets(e.to_string()))?;
    let run_id = hex::encode(run_id_bytes);
    let owner = format!("fabrik:{}/{}", ctx.project.name, app);

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
        .resolve_all(&ctx.project.dir, &spec.secrets)
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

    let (deployment, rows) = {
        let store = lock_store(ctx.store);
        let deployment =
            store.ensure_deployment(&ctx.project.name, &app, &loaded.path.display().to_string())?;
        let rows = store.resources(deployment.id)?;
        (deployment, rows)
    };
    let (mut coolify, mut dns) = {
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
        )
    };

    // Unchanged hash and live resources still there: nothing to do.
    if deployment.spec_hash.as_deref() == Some(hash.as_str()) && deployment.state == "COMPLETE" {
        let mut drift = Vec::new();
        if !ctx.options.no_refresh {
            for row in rows
                .iter()
                .filter(|r| matches!(r.status.as_str(), "created" | "updated" | "adopted"))
            {
                let id = row.external_id.clone().unwrap_or_default();
                let instance = instance_for(&row.provider, &mut coolify, &mut dns);
                match retried(reporter, &app, "refresh", async || {
                    instance.read(&row.kind, &id).await
                })
                .await
                {
                    Ok(Some(_)) => {}
                    Ok(None) => drift.push(format!("{} {} is gone", row.kind, row.name)),
                    Err(e) => drift.push(format!("{} {} cannot be read: {e}", row.kind, row.name)),
                }
            }
        }
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
            return Ok(Outcome {
                app,
                state: State::Complete,
                url,
                changed: false,
                reason: None,
                undone: vec![],
                left: vec![],
            });
        }
        for line in &drift {
            reporter.event(&app, "drift", line, json!({}));
        }
    }

    lock_store(ctx.store).start_run(deployment.id, &run_id, &hash)?;
    let mut run = Run {
        ctx,
        app: app.clone(),
        deployment: deployment.id,
        run_id: run_id.clone(),
        owner,
        state: State::Pending,
        secret_names: spec.secrets.clone(),
    };
    run.to(State::Validating, None)?;
    run.to(State::Provisioning, None)?;

    let failure = provision_deploy_verify(&mut run, loaded, &values, &mut coolify, &mut dns).await;
    let Err(reason) = failure else {
        run.to(State::Complete, None)?;
        lock_store(ctx.store).set_spec_hash(deployment.id, &hash)?;
        drop(held);
        return Ok(Outcome {
            app,
            state: State::Complete,
            url,
            changed: true,
            reason: None,
            undone: vec![],
            left: vec![],
        });
    };
    let reason = reporter.redact(&reason);
    run.event("failure", &reason);
    if ctx.options.no_rollback {
        run.to(
            State::Failed,
            Some(&format!("{reason} (rollback disabled)")),
        )?;
        let left = touched(&run)?
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
        return Ok(Outcome {
            app,
            state: State::Failed,
            url,
            changed: true,
            reason: Some(reason),
            undone: vec![],
            left,
        });
    }
    run.to(State::RollingBack, Some(&reason))?;
    let (undone, left, problems) = rollback(&run, spec, &values, &mut coolify, &mut dns).await?;
    let state = if problems.is_empty() {
        State::RolledBack
    } else {
        State::Failed
    };
    let final_reason = if problems.is_empty() {
        reason.clone()
    } else {
        format!("{reason}; rollback incomplete: {}", problems.join("; "))
    };
    run.to(state, Some(&final_reason))?;
    Ok(Outcome {
        app,
        state,
        url,
        changed: true,
        reason: Some(final_reason),
        undone,
        left,
    })
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
    let ip = server.outputs["ip"].as_str().unwrap_or_default().to_owned();
    let record_type = if ip.contains(':') { "AAAA" } else { "A" };
    let dns_desired = json!({ "type": record_type, "content": ip, "ttl": 1, "proxied": false });

    let kind = loaded.rendered.coolify_resource.to_string();
    let mut env: BTreeMap<String, String> = spec.env.clone();
    for (name, value) in values {
        env.insert(name.clone(), value.expose_secret().to_owned());
    }
    env.entry("PORT".to_owned())
        .or_insert_with(|| spec.port.to_string());
    let mut app_desired = json!({
        "project": spec.coolify.project,
        "environment": spec.coolify.environment,
        "server": spec.server,
        "domains": [format!("https://{}", spec.domain)],
        "env": env,
    });
    if kind == "application" {
        let Some(Source::Image { image }) = &spec.source else {
            return Err("an application needs an image source".to_owned());
        };
        app_desired["image"] = json!(image);
        app_desired["port"] = json!(spec.port);
    } else {
        app_desired["compose"] = json!(loaded.rendered.compose);
        app_desired["service"] = json!(loaded.rendered.service);
    }

    // DNS and the Coolify resource do not depend on each other.
    let run_ref: &Run<'_, '_> = run;
    let (record, resource) = tokio::join!(
        run_ref.ensure(dns, "dns", "dns-record", &spec.domain, &dns_desired),
        run_ref.ensure(coolify, "coolify", &kind, &spec.name, &app_desired),
    );
    record?;
    let resource = resource?;

    run.to(State::Deploying, None).map_err(|e| e.to_string())?;
    run.wait(coolify, &kind, &resource.id).await?;
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
    Ok(())
}

/// The resources this run created or changed, newest first.
fn touched(run: &Run<'_, '_>) -> Result<Vec<crate::store::ResourceRow>, StoreError> {
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
        let mode = if row.provider == "dns" {
            spec.rollback.dns
        } else {
            spec.rollback.coolify
        };
        let created = row.created_by_run.as_deref() == Some(run.run_id.as_str());
        match mode {
            RollbackMode::Never => left.push(format!("{label} (rollback policy: never)")),
            RollbackMode::Manual => left.push(format!(
                "{label} (rollback policy: manual); remove it with `fabrik destroy {} --yes`, or re-apply a working spec",
                spec.name
            )),
            RollbackMode::Auto => {
                let instance = instance_for(&row.provider, coolify, dns);
                let result = match (&row.previous_desired, created) {
                    (Some(previous), false) => {
                        let previous = with_secrets(previous, values);
                        retried(run.ctx.reporter, &run.app, "rollback", async || instance.update(&row.kind, &id, &previous).await).await.map(|_| "restored")
                    }
                    _ => retried(run.ctx.reporter, &run.app, "rollback", async || instance.delete(&row.kind, &id, &row.owner, created).await).await.map(|()| "deleted"),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_desired_state_never_holds_secret_values() {
        let desired = json!({ "env": { "API_KEY": "k-123456", "LOG": "info" }, "image": "x" });
        let stored = without_secrets(&desired, &["API_KEY".to_owned()]);
        assert_eq!(stored["env"]["API_KEY"], "${secret:API_KEY}");
        assert_eq!(stored["env"]["LOG"], "info");
        assert!(!stored.to_string().contains("k-123456"));
        let values = BTreeMap::from([(
            "API_KEY".to_owned(),
            secrecy::SecretString::from("k-123456".to_owned()),
        )]);
        assert_eq!(with_secrets(&stored, &values), desired);
    }
}

//! `fabrik destroy`: deleting, newest first, what the state says Fabrik created for an
//! app. The lock is taken first so that the rows cannot change underneath; each provider
//! re-checks the owner tag before deleting, and a deletion counts once the resource is
//! gone. Intents a killed run left pending are looked up by name and owner tag.

use std::collections::BTreeMap;

use super::events::{Observer, ResourceRef, RunEvent};
use super::removal::{DELETION_TIMEOUT, delete_and_confirm};
use super::run::retried;
use super::snapshot::Snapshot;
use crate::domain::{DeploymentState, ResourceStatus, Role};
use crate::lock::{AppLockError, Locks, RunLock};
use crate::plugins::instance::ProviderInstance;
use crate::plugins::types::ProviderError;
use crate::plugins::{PluginError, ProviderSet};
use crate::project::Project;
use crate::retry::Backoff;
use crate::secrets::EnvSource;
use crate::store::journal::DestroyRecord;
use crate::store::{Deployment, Journal, ResourceRow, Store, StoreError};

/// Why a destroy could not be done.
#[derive(Debug, thiserror::Error)]
pub enum DestroyError {
    #[error("no deployment named `{app}` in project `{project}`")]
    NoDeployment { project: String, app: String },
    #[error(transparent)]
    Lock(#[from] AppLockError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Plugin(#[from] PluginError),
}

/// How `fabrik destroy` deletes.
#[derive(Debug, Clone, Copy)]
pub struct DestroyOptions {
    /// Delete the Coolify resource's volumes too.
    pub purge: bool,
    /// How long a deletion the provider accepted may take to be read back as gone.
    pub deletion_timeout: std::time::Duration,
}

impl Default for DestroyOptions {
    fn default() -> Self {
        Self {
            purge: false,
            deletion_timeout: DELETION_TIMEOUT,
        }
    }
}

/// A destroy, prepared: the app's lock held and what will be deleted known.
pub struct Destroy {
    deployment: Deployment,
    /// Newest first.
    owned: Vec<ResourceRow>,
    /// The Coolify project and environment the app was last deployed into (its newest
    /// run's snapshot): deleted after the app if Fabrik created them and they are left
    /// empty.
    coolify_target: Option<(String, String)>,
    lock: RunLock,
}

/// How a destroy ended.
#[derive(Debug, Default)]
pub struct Destroyed {
    pub deleted: Vec<ResourceRef>,
    /// Found gone before anything was deleted (by hand, or an interrupted destroy).
    pub gone: Vec<ResourceRef>,
    pub failed: Vec<ResourceRef>,
}

impl Destroyed {
    pub fn is_complete(&self) -> bool {
        self.failed.is_empty()
    }
}

impl Destroy {
    /// Takes `app`'s lock (never waiting: another run is at work) and reads what Fabrik
    /// owns for it: live rows, and the intents a killed run left pending.
    pub async fn prepare(
        project: &Project,
        store: &Store,
        locks: &Locks,
        app: &str,
    ) -> Result<Self, DestroyError> {
        let deployment = store.deployment(&project.name, app).await?.ok_or_else(|| {
            DestroyError::NoDeployment {
                project: project.name.clone(),
                app: app.to_owned(),
            }
        })?;
        let lock = locks
            .acquire(&project.name, app, "destroy", std::time::Duration::ZERO)
            .await?;
        let mut owned: Vec<_> = store
            .resources(deployment.id)
            .await?
            .into_iter()
            .filter(|r| r.is_live() || r.status == ResourceStatus::Pending)
            .collect();
        owned.reverse();
        // Where the app last lived: its newest completed run's project and environment
        // (a failed attempt may have named others it never reached), else its newest
        // run's. Only if it ever had a Coolify resource there.
        let runs = store.runs(deployment.id).await?;
        let snapshot_of = |run: &crate::store::RunRow| {
            run.snapshot
                .as_ref()
                .and_then(|s| Snapshot::from_json(s).ok())
        };
        let had_coolify = store
            .resources(deployment.id)
            .await?
            .iter()
            .any(|r| r.provider == Role::Coolify);
        let coolify_target = runs
            .iter()
            .filter(|r| r.state == crate::domain::State::Complete)
            .find_map(snapshot_of)
            .or_else(|| runs.iter().find_map(snapshot_of))
            .filter(|_| had_coolify)
            .map(|snapshot| {
                (
                    snapshot.spec.coolify.project,
                    snapshot.spec.coolify.environment,
                )
            });
        Ok(Self {
            deployment,
            owned,
            coolify_target,
            lock,
        })
    }

    /// What will be deleted, newest first.
    pub fn resources(&self) -> &[ResourceRow] {
        &self.owned
    }

    /// Records that there was nothing to delete.
    pub async fn finish_empty(self, store: &Store) -> Result<(), StoreError> {
        if self.deployment.state != DeploymentState::Destroyed {
            store
                .mark_destroyed(self.deployment.id, &DestroyRecord::default())
                .await?;
        }
        self.lock.release().await;
        Ok(())
    }

    /// Deletes everything (with the app's data volumes if `purge`), telling `observer`
    /// each deletion; the deployment is `DESTROYED` once nothing is left.
    pub async fn run(
        self,
        providers: &ProviderSet,
        env: &EnvSource,
        store: &Store,
        observer: &dyn Observer,
        options: DestroyOptions,
    ) -> Result<Destroyed, DestroyError> {
        let DestroyOptions {
            purge,
            deletion_timeout,
        } = options;
        let app = self.deployment.key();
        let backoff = Backoff::PROVIDER;
        let mut instances: BTreeMap<Role, ProviderInstance> = BTreeMap::new();
        let mut outcome = Destroyed::default();
        for row in &self.owned {
            let instance = instance_of(&mut instances, providers, row.provider, env).await?;
            let unknown = ResourceRef::new(&row.kind, &row.name, None);
            let failed = |outcome: &mut Destroyed, resource: ResourceRef, error: ProviderError| {
                observer.event(
                    &app,
                    None,
                    &RunEvent::NotDestroyed {
                        resource: resource.clone(),
                        error: error.to_string(),
                    },
                );
                outcome.failed.push(resource);
            };
            let what = unknown.to_string();
            let id = match &row.external_id {
                Some(id) if row.status != ResourceStatus::Pending => id.clone(),
                _ => match retried(observer, backoff, &app, None, &what, async || {
                    instance
                        .lookup(&row.kind, &row.name, &row.owner, row.desired.as_ref())
                        .await
                })
                .await
                {
                    Ok(Some(found)) if found.owner.as_deref() == Some(row.owner.as_str()) => {
                        found.id
                    }
                    Ok(_) => {
                        // An intent whose resource never came to exist.
                        self.lock.ensure_held(&app).await?;
                        store
                            .record(row.id, None, ResourceStatus::Deleted, None, None)
                            .await?;
                        continue;
                    }
                    Err(error) => {
                        failed(&mut outcome, unknown, error);
                        continue;
                    }
                },
            };
            let resource = ResourceRef::new(&row.kind, &row.name, Some(&id));
            let what = resource.to_string();
            // Read first, so that what was already gone is said as such, not as deleted.
            match retried(observer, backoff, &app, None, &what, async || {
                instance.read(&row.kind, &id).await
            })
            .await
            {
                Ok(Some(_)) => {}
                Ok(None) | Err(ProviderError::NotFound(_)) => {
                    self.lock.ensure_held(&app).await?;
                    store
                        .record(row.id, None, ResourceStatus::Deleted, None, None)
                        .await?;
                    observer.event(
                        &app,
                        None,
                        &RunEvent::AlreadyGone {
                            resource: resource.clone(),
                        },
                    );
                    outcome.gone.push(resource);
                    continue;
                }
                Err(error) => {
                    failed(&mut outcome, resource, error);
                    continue;
                }
            }
            // Checked before every deletion: a destroy whose lock ended (its session
            // terminated) must not delete what a run holding it now relies on.
            self.lock.ensure_held(&app).await?;
            let deleted = retried(observer, backoff, &app, None, &what, async || {
                // Each attempt: a retry may come long after the check above.
                if !self.lock.confirm().await {
                    return Err(ProviderError::Permanent(
                        "the app's lock was lost: not deleted".to_owned(),
                    ));
                }
                delete_and_confirm(
                    instance,
                    &row.kind,
                    &id,
                    &row.owner,
                    purge,
                    deletion_timeout,
                )
                .await
            })
            .await;
            match deleted {
                // Already gone (deleted by hand, or by a destroy that was interrupted).
                Ok(()) | Err(ProviderError::NotFound(_)) => {
                    self.lock.ensure_held(&app).await?;
                    store
                        .record(row.id, None, ResourceStatus::Deleted, None, None)
                        .await?;
                    observer.event(
                        &app,
                        None,
                        &RunEvent::Destroyed {
                            resource: resource.clone(),
                            data_kept: row.provider == Role::Coolify && !purge,
                        },
                    );
                    outcome.deleted.push(resource);
                }
                Err(error) => failed(&mut outcome, resource, error),
            }
        }
        if outcome.is_complete()
            && let Some((project, environment)) = &self.coolify_target
        {
            let instance = instance_of(&mut instances, providers, Role::Coolify, env).await?;
            self.lock.ensure_held(&app).await?;
            // The environment first: a project is empty only once its environments are.
            let name = format!("{project}/{environment}");
            remove_if_empty(instance, "environment", &name, &app, observer, &mut outcome).await;
            remove_if_empty(instance, "project", project, &app, observer, &mut outcome).await;
        }
        let record = DestroyRecord {
            complete: outcome.is_complete(),
            deleted: outcome.deleted.len(),
            already_gone: outcome.gone.len(),
            failed: outcome.failed.len(),
        };
        self.lock.ensure_held(&app).await?;
        if outcome.is_complete() {
            store.mark_destroyed(self.deployment.id, &record).await?;
        } else {
            // An incomplete destroy is in the history too; the app stays as it is.
            store
                .append_event(
                    Some(self.deployment.id),
                    None,
                    &Journal::Destroyed { record: &record },
                )
                .await?;
        }
        self.lock.release().await;
        Ok(outcome)
    }
}

/// The destroy's instance of `role`'s provider, made at its first use.
async fn instance_of<'a>(
    instances: &'a mut BTreeMap<Role, ProviderInstance>,
    providers: &ProviderSet,
    role: Role,
    env: &EnvSource,
) -> Result<&'a mut ProviderInstance, PluginError> {
    Ok(match instances.entry(role) {
        std::collections::btree_map::Entry::Occupied(entry) => entry.into_mut(),
        std::collections::btree_map::Entry::Vacant(entry) => {
            entry.insert(providers.instantiate(role, env).await?)
        }
    })
}

/// Deletes the Coolify `kind` (`project`, or `environment` named `project/env`) `name`
/// after the app's last resource in it is gone, if Fabrik created it (its description
/// says so) and Coolify finds it empty (Coolify refuses one that holds anything). One
/// that holds other resources is kept and said; one Fabrik did not create is never
/// touched. Never fails the destroy.
async fn remove_if_empty(
    instance: &mut ProviderInstance,
    kind: &str,
    name: &str,
    app: &str,
    observer: &dyn Observer,
    outcome: &mut Destroyed,
) {
    let found = match instance.lookup(kind, name, "", None).await {
        Ok(Some(found)) => found,
        Ok(None) | Err(ProviderError::NotFound(_)) => return,
        Err(error) => {
            let resource = ResourceRef::new(kind, name, None);
            let reason = format!("could not be checked: {error}");
            observer.event(app, None, &RunEvent::Kept { resource, reason });
            return;
        }
    };
    if found.outputs.get("created_by_fabrik") != Some(&serde_json::Value::Bool(true)) {
        return;
    }
    let resource = ResourceRef::new(kind, name, Some(&found.id));
    match instance.delete(kind, &found.id, "", false).await {
        Ok(()) => {
            observer.event(
                app,
                None,
                &RunEvent::Destroyed {
                    resource: resource.clone(),
                    data_kept: false,
                },
            );
            outcome.deleted.push(resource);
        }
        Err(ProviderError::NotFound(_)) => {}
        Err(error) => {
            let reason = match error {
                ProviderError::Permanent(message) => message,
                other => other.to_string(),
            };
            observer.event(app, None, &RunEvent::Kept { resource, reason });
        }
    }
}

//! Creating, adopting or updating one resource, the intent written first, in two steps:
//! [`Run::observe`] reads what is live (no change anywhere but the state's intent), then
//! [`Run::converge`] makes it as wanted. A run observes every resource before it changes
//! any: wrong credentials or an API that is down for one provider stop the run before
//! the other provider has changed anything.

use super::desired::{DesiredResource, Wanted, without_secrets};
use super::drift;
use super::events::{ResourceChange, ResourceRef, RunEvent};
use super::failure::{RunFailure, Stop};
use super::run::Run;
use crate::domain::ResourceStatus;
use crate::plugins::instance::ProviderInstance;
use crate::plugins::types::{ProviderError, Resource};
use crate::store::ResourceKey;

/// What [`Run::ensure`] did.
pub(crate) enum Ensured {
    /// Created, adopted or updated: a deployment follows.
    Changed(Resource),
    /// Already as wanted: nothing was sent.
    Unchanged(Resource),
}

/// What [`Run::observe`] found of one resource, for [`Run::converge`].
pub(crate) struct Observed {
    /// The state's live row for it, if any.
    known: Option<crate::store::ResourceRow>,
    /// A pending row was there before this run's intent (a killed run's create).
    pending_before: bool,
    /// Whether what the state recorded is settled (no drift to repair, no redeploy).
    settled: bool,
    /// What the provider has now, owned by this app (a foreign one stops `observe`).
    live: Option<Resource>,
}

impl Observed {
    /// What the provider has now, if anything.
    pub(crate) fn live(&self) -> Option<&Resource> {
        self.live.as_ref()
    }
}

impl Run<'_, '_> {
    /// The failure to stop with when a row of this project other than `row` already
    /// tracks `id` (see [`crate::store::Store::holder`]): a
    /// provider that answers with an id the state holds for another resource is
    /// confused, and recording it would let one rollback delete another app's resource.
    pub(super) async fn tracked_elsewhere(
        &self,
        role: crate::domain::Role,
        kind: &str,
        name: &str,
        id: &str,
        row: i64,
    ) -> Result<Option<RunFailure>, Stop> {
        Ok(self
            .store()
            .holder(
                &self.ctx.project.name,
                ResourceKey {
                    provider: role,
                    kind,
                    name,
                },
                id,
                row,
            )
            .await?
            .map(|holder| RunFailure::IdAlreadyTracked {
                resource: ResourceRef::new(kind, name, Some(id)),
                holder,
                answered_create: false,
            }))
    }

    fn resource_event(&self, change: ResourceChange, kind: &str, name: &str, id: &str) {
        self.event(RunEvent::Resource {
            change,
            resource: ResourceRef::new(kind, name, Some(id)),
        });
    }

    /// Reads what is live of one resource: by its id when the state knows it, else by
    /// name. Changes nothing, at the provider or in the state; needs only the resource's
    /// key, so it can run before its desired state is known (the DNS record's address
    /// comes from the server lookup). A resource with that name that another owner
    /// holds stops the run here.
    pub(crate) async fn observe(
        &self,
        instance: &mut ProviderInstance,
        wanted: &Wanted,
        desired: Option<&serde_json::Value>,
    ) -> Result<Observed, Stop> {
        let (role, kind, name) = (wanted.role, wanted.kind.as_str(), wanted.name.as_str());
        let settled = self
            .settled
            .iter()
            .any(|w| w.role == role && w.kind == kind && w.name == name);
        let (known, pending_before) = {
            let rows = self.store().resources(self.deployment).await?;
            let pending = rows
                .iter()
                .any(|r| r.is(role, kind, name) && r.status == ResourceStatus::Pending);
            let known = rows
                .into_iter()
                .find(|r| r.is(role, kind, name) && r.is_live());
            (known, pending)
        };
        let what = format!("{kind} {name}");
        let failed = |error| RunFailure::Provider {
            resource: what.clone(),
            error,
        };
        let live = match &known.as_ref().and_then(|row| row.external_id.clone()) {
            // `not-found` means gone, as `none` does (docs/providers.md, "Errors and
            // retries"), here as in the refresh.
            Some(id) => match self
                .retried(&what, async || instance.read(kind, id).await)
                .await
            {
                Err(ProviderError::NotFound(_)) => None,
                read => read.map_err(failed)?,
            },
            None => self
                .retried(&what, async || {
                    instance.lookup(kind, name, &self.owner, desired).await
                })
                .await
                .map_err(failed)?,
        };
        if let Some(foreign) = live
            .as_ref()
            .filter(|found| found.owner.as_deref() != Some(self.owner.as_str()))
        {
            return Err(RunFailure::NotOwned {
                resource: ResourceRef::new(kind, name, Some(&foreign.id)),
                owner: self.owner.clone(),
                found: foreign.owner.clone().unwrap_or_default(),
            }
            .into());
        }
        Ok(Observed {
            known,
            pending_before,
            settled,
            live,
        })
    }

    /// Makes one observed resource as wanted, the intent written first: nothing if it
    /// already is, else an update (repairing drift), or a create.
    pub(crate) async fn converge(
        &self,
        instance: &mut ProviderInstance,
        resource: &DesiredResource,
        observed: Observed,
    ) -> Result<Ensured, Stop> {
        let DesiredResource {
            role,
            kind,
            name,
            desired,
        } = resource;
        let (role, kind, name) = (*role, kind.as_str(), name.as_str());
        let stored = without_secrets(desired, &self.secret_names);
        let row = self
            .write()
            .await?
            .intend(
                self.deployment,
                &self.run_id,
                ResourceKey {
                    provider: role,
                    kind,
                    name,
                },
                &self.owner,
                &stored,
            )
            .await?;
        let Observed {
            known,
            pending_before,
            settled,
            live,
        } = observed;
        let what = format!("{kind} {name}");
        let failed = |error| RunFailure::Provider {
            resource: what.clone(),
            error,
        };
        let ours = |found: &Resource| found.owner.as_deref() == Some(self.owner.as_str());
        let (resource, status) = match live {
            Some(found)
                if known.is_some()
                    && settled
                    && ours(&found)
                    && drift::compare(kind, desired, &found.live, &self.secret_names)
                        .is_clean() =>
            {
                self.resource_event(ResourceChange::Unchanged, kind, name, &found.id);
                return Ok(Ensured::Unchanged(found));
            }
            Some(found) => {
                // From here on an update may be sent: the world may change even if it
                // fails (see `Run::attempted`).
                self.attempted
                    .store(true, std::sync::atomic::Ordering::SeqCst);
                // Found by name (no row tracks it yet): a confused provider may answer with
                // a resource another row tracks; it is never updated, let alone recorded.
                if known.is_none()
                    && let Some(confused) = self
                        .tracked_elsewhere(role, kind, name, &found.id, row)
                        .await?
                {
                    self.close_intent(row).await?;
                    return Err(confused.into());
                }
                // A difference in a field the spec changed since the last deploy is the
                // update this run is for; any other is drift (changed by hand).
                let by_spec: Vec<String> = known
                    .as_ref()
                    .and_then(|row| row.desired.as_ref())
                    .map(|before| super::plan::changed_fields(before, &stored))
                    .unwrap_or_default();
                let drift = drift::compare(kind, desired, &found.live, &self.secret_names);
                for line in drift.differences {
                    let difference = format!("{what}: {line}");
                    if names_a_field_of(&line, &by_spec) {
                        self.event(RunEvent::Updating { difference });
                    } else {
                        self.event(RunEvent::Drift {
                            difference,
                            repairing: true,
                        });
                    }
                }
                let updated = self
                    .retried(&what, async || {
                        instance.update(kind, &found.id, desired).await
                    })
                    .await
                    .map_err(failed)?;
                // Without a row, the resource predates this state (a lost or another
                // state file): updated, never counted as created by this run, so that a
                // rollback leaves it instead of deleting someone's app.
                let status = if known.is_none() && pending_before {
                    ResourceStatus::Adopted
                } else {
                    ResourceStatus::Updated
                };
                if known.is_none() && !pending_before {
                    self.resource_event(ResourceChange::FoundUntracked, kind, name, &found.id);
                }
                (updated, status)
            }
            None => {
                self.attempted
                    .store(true, std::sync::atomic::Ordering::SeqCst);
                // A create that failed transiently may still have happened, in part (a
                // proxy's 502 after the API acted): before trying again, look for it and
                // finish it with an update.
                let mut attempted = false;
                let first = self.ctx.providers.first_create(role).await;
                let created = self
                    .retried(&what, async || {
                        if attempted
                            && let Some(found) = instance.lookup(kind, name, &self.owner, Some(desired)).await?
                            && ours(&found)
                        {
                            // Updated only if no other row tracks it (see above); else the
                            // half-created path below finds it again and stops the run.
                            let tracked =
                                self.tracked_elsewhere(role, kind, name, &found.id, row).await;
                            if !matches!(tracked, Ok(None)) {
                                return Err(ProviderError::Permanent(format!(
                                    "the {kind} {name} a failed create may have left was found as {}, which this state tracks for another resource (or could not be checked)",
                                    found.id
                                )));
                            }
                            return instance.update(kind, &found.id, desired).await;
                        }
                        attempted = true;
                        instance.create(kind, name, desired, &self.owner).await
                    })
                    .await;
                match created {
                    // A create answered with a resource another owner holds, or with no
                    // owner tag at all (a provider's mistake, or a lie), is never recorded
                    // as this run's: a rollback would delete someone else's resource. If
                    // the provider did create and tag it, the next apply's lookup finds
                    // it by its tag (and `fabrik gc` lists it).
                    Ok(created) if created.owner.as_deref() != Some(self.owner.as_str()) => {
                        self.close_intent(row).await?;
                        return Err(RunFailure::CreatedNotOwned {
                            resource: ResourceRef::new(kind, name, Some(&created.id)),
                            owner: self.owner.clone(),
                            found: created.owner.unwrap_or_default(),
                        }
                        .into());
                    }
                    Ok(created) => {
                        if let Some(first) = first {
                            first.succeeded();
                        }
                        (created, ResourceStatus::Created)
                    }
                    Err(error) => {
                        // A create can fail after the resource came to exist (a later
                        // call inside it failed): find it, so that it is tracked and
                        // rolled back like any resource this run created, never left
                        // behind unknown.
                        match instance
                            .lookup(kind, name, &self.owner, Some(desired))
                            .await
                        {
                            Err(lookup) => {
                                return Err(RunFailure::HalfCreatedUnknown {
                                    resource: ResourceRef::new(kind, name, None),
                                    error,
                                    lookup,
                                }
                                .into());
                            }
                            Ok(Some(found)) if ours(&found) => {
                                if let Some(confused) = self
                                    .tracked_elsewhere(role, kind, name, &found.id, row)
                                    .await?
                                {
                                    if known.is_none() {
                                        self.close_intent(row).await?;
                                    }
                                    return Err(confused.into());
                                }
                                self.write()
                                    .await?
                                    .record(
                                        row,
                                        Some(&self.run_id),
                                        ResourceStatus::Created,
                                        Some(&found.id),
                                        Some(&self.stored(&found.outputs)),
                                    )
                                    .await?;
                                self.resource_event(
                                    ResourceChange::CreatedUnfinished,
                                    kind,
                                    name,
                                    &found.id,
                                );
                            }
                            // Nothing of this app's exists (the create was refused, or its
                            // answer could not be read and the lookup finds nothing): the
                            // intent this run wrote is closed, not left pending after the
                            // run ended. Found later, the next apply's lookup adopts it.
                            Ok(_) if known.is_none() => {
                                self.close_intent(row).await?;
                            }
                            Ok(_) => {}
                        }
                        return Err(failed(error).into());
                    }
                }
            }
        };
        if let Some(mut confused) = self
            .tracked_elsewhere(role, kind, name, &resource.id, row)
            .await?
        {
            if let RunFailure::IdAlreadyTracked {
                answered_create, ..
            } = &mut confused
            {
                *answered_create = status == ResourceStatus::Created;
            }
            // A row this run just intended is left as nothing of this app's; a row that
            // tracked the resource before keeps its own id.
            if known.is_none() {
                self.close_intent(row).await?;
            }
            return Err(confused.into());
        }
        self.write()
            .await?
            .record(
                row,
                Some(&self.run_id),
                status,
                Some(&resource.id),
                Some(&self.stored(&resource.outputs)),
            )
            .await?;
        let change = match status {
            ResourceStatus::Created => ResourceChange::Created,
            ResourceStatus::Adopted => ResourceChange::Adopted,
            _ => ResourceChange::Updated,
        };
        self.resource_event(change, kind, name, &resource.id);
        Ok(Ensured::Changed(resource))
    }
}

/// Whether a drift line (`env.LOG_LEVEL differs`, `compose: …`) is about one of `fields`
/// or a field inside one of them (`env` covers `env.LOG_LEVEL`, and the reverse).
fn names_a_field_of(line: &str, fields: &[String]) -> bool {
    let field = line.split([' ', ':']).next().unwrap_or_default();
    fields.iter().any(|f| {
        f == field
            || field
                .strip_prefix(f.as_str())
                .is_some_and(|rest| rest.starts_with('.'))
            || f.strip_prefix(field)
                .is_some_and(|rest| rest.starts_with('.'))
    })
}

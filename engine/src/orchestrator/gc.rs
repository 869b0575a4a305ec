//! `fabrik gc`: resources that carry this project's owner tag but that the state does not
//! know (a lost or replaced state file, a run killed between a create and its record, a
//! bug). Finding them asks each provider to `list` (contract 0.2) the kinds the engine
//! creates, filtered by the project's tag prefix; each tag is then checked exactly, so
//! another project's or an untagged resource is never reported, let alone deleted.
//!
//! Deleting takes the app's lock first (an apply that just created a resource and is about
//! to record it would otherwise see it deleted), reads the state again under the lock,
//! and lets the provider re-check the owner tag before it deletes.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use super::owner::{app_of, project_prefix};
use super::removal::{DELETION_TIMEOUT, delete_and_confirm};
use crate::domain::{ResourceStatus, Role};
use crate::lock::{AppLockError, Locks};
use crate::plugins::types::{ProviderError, Resource};
use crate::plugins::{PluginError, ProviderSet};
use crate::project::Project;
use crate::secrets::EnvSource;
use crate::store::{Store, StoreError};

/// Most pages read from one provider for one kind: a provider whose cursor never ends
/// cannot keep `gc` running forever.
const MAX_PAGES: usize = 1000;

/// Most orphans one `gc` lists (and deletes): past it the listing stops and says so; the
/// next `gc` finds the rest. Each orphan is kept without its `live` and `outputs`.
pub const MAX_ORPHANS: usize = 10_000;

/// How long one `gc` may list, and then delete, in all: a provider that answers slowly
/// forever cannot keep it running. What it did not reach is said, never guessed.
pub const DEADLINE: Duration = Duration::from_secs(15 * 60);

/// Why a listing stopped before its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// [`MAX_ORPHANS`] were found.
    TooMany,
    /// The [`DEADLINE`] passed.
    Deadline,
}

/// Why the survey or a deletion could not be done.
#[derive(Debug, thiserror::Error)]
pub enum GcError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Plugin(#[from] PluginError),
    #[error(transparent)]
    Lock(#[from] AppLockError),
    #[error("provider `{role}` could not list its {kind} resources: {error}")]
    List {
        role: Role,
        kind: String,
        error: ProviderError,
    },
    #[error("provider `{role}` returned more than {MAX_PAGES} pages of {kind} resources")]
    Endless { role: Role, kind: String },
}

/// A resource tagged for an app of this project that the state does not know.
#[derive(Debug, Clone)]
pub struct Orphan {
    pub role: Role,
    pub app: String,
    pub resource: Resource,
}

/// What the providers were asked and what they found.
#[derive(Debug, Default)]
pub struct Survey {
    pub orphans: Vec<Orphan>,
    /// Providers that cannot list (contract 0.1), with the kinds left unchecked.
    pub unlisted: Vec<(Role, String)>,
    /// Tagged resources seen that the state knows (for the summary).
    pub known: usize,
    /// Set when the listing stopped before its end: the orphans are the first found.
    pub stopped: Option<Stopped>,
}

/// How deleting the orphans ended.
#[derive(Debug, Default)]
pub struct Collected {
    pub deleted: Vec<Orphan>,
    /// Orphans left, and why.
    pub failed: Vec<(Orphan, String)>,
}

/// What the state knows of the project: `(role, kind, external id)` of every resource
/// that is or may be live, and `(role, kind, name)` of intents without an id yet.
struct Known {
    ids: HashSet<(Role, String, String)>,
    pending: HashSet<(Role, String, String)>,
}

impl Known {
    async fn read(store: &Store, project: &str) -> Result<Self, StoreError> {
        let mut known = Self {
            ids: HashSet::new(),
            pending: HashSet::new(),
        };
        for deployment in store.deployments().await? {
            if deployment.project != project {
                continue;
            }
            for row in store.resources(deployment.id).await? {
                if row.status == ResourceStatus::Deleted {
                    continue;
                }
                match &row.external_id {
                    Some(id) => known.ids.insert((row.provider, row.kind, id.clone())),
                    None => known.pending.insert((row.provider, row.kind, row.name)),
                };
            }
        }
        Ok(known)
    }

    fn knows(&self, role: Role, resource: &Resource) -> bool {
        let kind = resource.kind.clone();
        self.ids
            .contains(&(role, kind.clone(), resource.id.clone()))
            || self.pending.contains(&(role, kind, resource.name.clone()))
    }
}

/// Lists, per provider, the resources carrying this project's tags that the state does
/// not know. Nothing is changed.
/// Each page is read, filtered and dropped: only orphans are kept, without their
/// documents, at most [`MAX_ORPHANS`], until `until`.
pub async fn survey(
    project: &Project,
    providers: &ProviderSet,
    env: &EnvSource,
    store: &Store,
    until: Instant,
) -> Result<Survey, GcError> {
    let known = Known::read(store, &project.name).await?;
    let prefix = project_prefix(&project.name);
    let mut survey = Survey::default();
    'providers: for provider in &providers.providers {
        let role = provider.role;
        let mut instance = providers.instantiate(role, env).await?;
        for kind in role.created_kinds() {
            let mut cursor: Option<String> = None;
            for page_number in 0.. {
                if survey.orphans.len() >= MAX_ORPHANS {
                    survey.stopped = Some(Stopped::TooMany);
                    break 'providers;
                }
                if Instant::now() >= until {
                    survey.stopped = Some(Stopped::Deadline);
                    break 'providers;
                }
                if page_number == MAX_PAGES {
                    return Err(GcError::Endless {
                        role,
                        kind: (*kind).to_owned(),
                    });
                }
                let page = instance
                    .list(kind, &prefix, cursor.as_deref())
                    .await
                    .map_err(|error| GcError::List {
                        role,
                        kind: (*kind).to_owned(),
                        error,
                    })?;
                let Some(page) = page else {
                    survey.unlisted.push((role, (*kind).to_owned()));
                    break;
                };
                for resource in page.resources {
                    // The provider filtered by prefix; the exact tag decides.
                    let Some(app) = resource
                        .owner
                        .as_deref()
                        .and_then(|tag| app_of(&project.name, tag))
                    else {
                        continue;
                    };
                    if resource.kind != *kind {
                        continue;
                    }
                    if known.knows(role, &resource) {
                        survey.known += 1;
                    } else if survey.orphans.len() < MAX_ORPHANS {
                        // What gc shows and deletes by needs no document.
                        let resource = Resource {
                            live: serde_json::Value::Null,
                            outputs: serde_json::Value::Null,
                            ..resource
                        };
                        survey.orphans.push(Orphan {
                            role,
                            app,
                            resource,
                        });
                    } else {
                        survey.stopped = Some(Stopped::TooMany);
                    }
                }
                match page.next {
                    Some(next) if Some(&next) != cursor.as_ref() => cursor = Some(next),
                    _ => break,
                }
            }
        }
    }
    Ok(survey)
}

/// Deletes `orphans`, app by app under the app's lock (never waiting: an app being
/// applied is skipped and reported), after checking the state still does not know them.
pub async fn collect(
    project: &Project,
    providers: &ProviderSet,
    env: &EnvSource,
    store: &Store,
    locks: &Locks,
    orphans: Vec<Orphan>,
    until: Instant,
) -> Result<Collected, GcError> {
    let mut by_app: BTreeMap<String, Vec<Orphan>> = BTreeMap::new();
    for orphan in orphans {
        by_app.entry(orphan.app.clone()).or_default().push(orphan);
    }
    let mut instances = BTreeMap::new();
    let mut collected = Collected::default();
    for (app, orphans) in by_app {
        let lock = match locks
            .acquire(&project.name, &app, "gc", Duration::ZERO)
            .await
        {
            Ok(lock) => lock,
            Err(
                error @ (AppLockError::Held { .. }
                | AppLockError::HeldUnknown { .. }
                | AppLockError::HeldBySession { .. }),
            ) => {
                let why = format!("not deleted: {error}");
                collected
                    .failed
                    .extend(orphans.into_iter().map(|o| (o, why.clone())));
                continue;
            }
            Err(error) => return Err(error.into()),
        };
        // Under the lock: a run that finished meanwhile may have recorded them.
        let known = Known::read(store, &project.name).await?;
        for orphan in orphans {
            if known.knows(orphan.role, &orphan.resource) {
                continue;
            }
            let instance = match instances.entry(orphan.role) {
                std::collections::btree_map::Entry::Occupied(entry) => entry.into_mut(),
                std::collections::btree_map::Entry::Vacant(entry) => {
                    entry.insert(providers.instantiate(orphan.role, env).await?)
                }
            };
            if Instant::now() >= until {
                collected.failed.push((
                    orphan,
                    "not deleted: gc's deadline passed; run `fabrik gc --delete` again".to_owned(),
                ));
                continue;
            }
            // Before every deletion: once the lock is lost (its session ended), a run
            // holding it now may be recording this very resource.
            if !lock.confirm().await {
                let why = format!(
                    "not deleted: {}",
                    crate::store::StoreError::LockLost { app: app.clone() }
                );
                collected.failed.push((orphan, why));
                continue;
            }
            let tag = orphan.resource.owner.clone().unwrap_or_default();
            let kind = orphan.resource.kind.clone();
            let id = orphan.resource.id.clone();
            // Never purge: an orphan's data may be all that is left of an app.
            match delete_and_confirm(instance, &kind, &id, &tag, false, DELETION_TIMEOUT).await {
                Ok(()) => collected.deleted.push(orphan),
                Err(error) => collected.failed.push((orphan, error.to_string())),
            }
        }
        drop(lock);
    }
    Ok(collected)
}

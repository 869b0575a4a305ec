//! What an apply works with: the project, its providers, store and locks, the observer
//! of its events, its options and the webhooks it tells.

use std::time::Duration;

use super::events::Observer;
use super::notify::Notifier;
use super::verify::VerifyOptions;
use crate::lock::Locks;
use crate::plugins::ProviderSet;
use crate::project::Project;
use crate::retry::Backoff;
use crate::store::Store;

/// Options of `fabrik apply`.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    pub no_rollback: bool,
    /// Deploy the app's Coolify resource again even when nothing changed (`apply
    /// --redeploy`): a new build of what the spec names, on purpose.
    pub redeploy: bool,
    pub no_refresh: bool,
    pub lock_timeout: Duration,
    pub deploy_timeout: Duration,
    pub verify: VerifyOptions,
    /// How provider calls are retried.
    pub backoff: Backoff,
}

/// What an apply works with.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    pub project: &'a Project,
    pub providers: &'a ProviderSet,
    pub store: &'a Store,
    /// Where the app locks are (beside the project, or in the team's database).
    pub locks: &'a Locks,
    pub observer: &'a dyn Observer,
    pub options: &'a ApplyOptions,
    pub notifier: &'a Notifier,
}

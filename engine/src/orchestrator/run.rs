//! One run in progress: what it works with, how it tells its events, moves through the
//! state machine and calls providers (with retries).

use std::time::Duration;

use super::context::Context;
use super::desired::Wanted;
use super::events::{Observer, RunEvent};
use super::hidden::Hidden;
use crate::domain::{PerRole, State};
use crate::plugins::instance::ProviderInstance;
use crate::plugins::types::ProviderError;
use crate::retry::Backoff;
use crate::store::{Store, StoreError};

/// One configured provider instance per role.
pub type Instances = PerRole<ProviderInstance>;

impl PerRole<ProviderInstance> {
    /// The instance of `role`'s provider, or why there is none: the state tracks a
    /// resource of a role the project no longer configures (`[providers.monitor]` gone).
    pub fn for_role(
        &mut self,
        role: crate::domain::Role,
    ) -> Result<&mut ProviderInstance, crate::plugins::types::ProviderError> {
        self.get_mut(role).ok_or_else(|| {
            crate::plugins::types::ProviderError::InvalidConfig(format!(
                "the state tracks a resource of the `{role}` role, and fabrik.toml configures no [providers.{role}]: add it back to change that resource"
            ))
        })
    }
}

/// A started run.
pub(crate) struct Run<'a, 'b> {
    pub ctx: &'a Context<'b>,
    pub app: String,
    pub deployment: i64,
    pub run_id: String,
    pub owner: String,
    pub state: State,
    pub secret_names: Vec<String>,
    /// Resources the plan shows unchanged (`=`): left alone when what the provider
    /// reads back shows no drift, so that apply does what plan said.
    pub settled: Vec<Wanted>,
    /// Whether an earlier completed version exists for `fabrik rollback` to restore.
    pub restorable: bool,
    pub hidden: &'a Hidden,
    /// The app's lock: a run that lost it stops before its next provider call.
    pub lock: &'a crate::lock::RunLock,
    /// Set when a provider call was refused because the lock was lost.
    pub lock_lost: std::sync::atomic::AtomicBool,
    /// Set once an intent is written, before the run's first create or update: from
    /// then on the live world may have changed, even if that call failed (a provider's
    /// update is several requests), so the run can no longer count as "changed nothing".
    pub attempted: std::sync::atomic::AtomicBool,
}

impl Run<'_, '_> {
    pub fn event(&self, event: RunEvent) {
        self.ctx
            .observer
            .event(&self.app, Some(&self.run_id), &event);
    }

    /// The state, to read.
    pub fn store(&self) -> &Store {
        self.ctx.store
    }

    /// The state, to write: only while the app's lock is confirmed held. A run that lost
    /// it stops, and writes nothing over the records of a run that may hold it now.
    pub async fn write(&self) -> Result<&Store, StoreError> {
        if self.lock_lost.load(std::sync::atomic::Ordering::SeqCst) || !self.lock.confirm().await {
            self.lock_lost
                .store(true, std::sync::atomic::Ordering::SeqCst);
            return Err(StoreError::LockLost {
                app: self.app.clone(),
            });
        }
        Ok(self.ctx.store)
    }

    /// A provider's `outputs` as the state may keep them: the app's secret values
    /// redacted (a provider that returns one, or an API that reflects it, never gets it
    /// into the state). The provider's own credentials were redacted on return.
    pub fn stored(&self, outputs: &serde_json::Value) -> serde_json::Value {
        let mut outputs = outputs.clone();
        crate::plugins::returned::redact_json(&mut outputs, &|text| self.hidden.redact(text));
        outputs
    }

    /// Moves the run to `next`, recording `reason` (redacted).
    pub async fn to(&mut self, next: State, reason: Option<&str>) -> Result<(), StoreError> {
        self.end_keeping(next, reason, None).await
    }

    /// [`Run::to`], for a run's last transition, with the deployment keeping `keep` instead of the run's state (a run
    /// that ends having changed nothing leaves the app as it was).
    pub async fn end_keeping(
        &mut self,
        next: State,
        reason: Option<&str>,
        keep: Option<crate::domain::DeploymentState>,
    ) -> Result<(), StoreError> {
        let reason = reason.map(|r| self.hidden.redact(r));
        let state = self
            .write()
            .await?
            .transition(
                self.deployment,
                &self.run_id,
                (self.state, next),
                reason.as_deref(),
                keep,
            )
            .await?;
        self.state = state;
        self.event(RunEvent::StateChanged { state: self.state });
        Ok(())
    }

    /// A provider call, retried while it fails transiently; each retry is an event.
    /// Records intent row `row` as nothing of this app's (`deleted`), for this run.
    pub async fn close_intent(&self, row: i64) -> Result<(), StoreError> {
        self.write()
            .await?
            .record(
                row,
                Some(&self.run_id),
                crate::domain::ResourceStatus::Deleted,
                None,
                None,
            )
            .await
    }

    /// The lock is confirmed before every attempt: a retry may come long after the first.
    pub async fn retried<T>(
        &self,
        what: &str,
        mut call: impl AsyncFnMut() -> Result<T, ProviderError>,
    ) -> Result<T, ProviderError> {
        let ctx = self.ctx;
        retried(
            ctx.observer,
            ctx.options.backoff,
            &self.app,
            Some(&self.run_id),
            what,
            async || {
                if self.lock_lost.load(std::sync::atomic::Ordering::SeqCst)
                    || !self.lock.confirm().await
                {
                    self.lock_lost
                        .store(true, std::sync::atomic::Ordering::SeqCst);
                    return Err(ProviderError::Permanent(
                        "the app's lock was lost: no further provider call".to_owned(),
                    ));
                }
                call().await
            },
        )
        .await
    }
}

/// A provider call for `app`, retried as `backoff` says while it fails
/// transiently (honouring the API's Retry-After); each retry is told to the observer.
pub(crate) async fn retried<T>(
    observer: &dyn Observer,
    backoff: Backoff,
    app: &str,
    run: Option<&str>,
    what: &str,
    call: impl AsyncFnMut() -> Result<T, ProviderError>,
) -> Result<T, ProviderError> {
    backoff
        .run(
            call,
            |error| match error {
                ProviderError::Transient { retry_after, .. } => Some(*retry_after),
                _ => None,
            },
            |error, wait: Duration, attempt| {
                let message = match error {
                    ProviderError::Transient { message, .. } => message.clone(),
                    other => other.to_string(),
                };
                observer.event(
                    app,
                    run,
                    &RunEvent::Retrying {
                        what: what.to_owned(),
                        error: message,
                        wait,
                        attempt,
                        attempts: backoff.attempts,
                    },
                );
            },
        )
        .await
        .0
}

//! What a run tells while it happens: a typed event stream, rendered by whoever drives
//! the engine (the CLI's progress lines and NDJSON, a test's recorder), the way uv's
//! reporters and OpenTofu's hooks work. Events carry facts, not sentences. Free text in
//! them (provider messages, hook output) passes the engine's redactor before an observer
//! sees it; the observer is also told every value to hide, to apply to what it prints.

use std::time::Duration;

use secrecy::SecretString;
use serde::Serialize;

use crate::domain::{Role, State};
use crate::spec::model::NotifyEvent;

/// Receives a run's events as they happen. Called from several tasks at once.
pub trait Observer: Send + Sync {
    /// One event of `app`'s apply; `run` is the run id once one was started.
    fn event(&self, app: &str, run: Option<&str>, event: &RunEvent);

    /// A value that must never be shown: whatever the observer prints from now on must
    /// hide it (events never carry secret values, but provider messages might).
    fn secret(&self, value: &SecretString);
}

/// An observer that ignores everything (for callers that only want the outcome).
#[derive(Debug, Default, Clone, Copy)]
pub struct Silent;

impl Observer for Silent {
    fn event(&self, _: &str, _: Option<&str>, _: &RunEvent) {}
    fn secret(&self, _: &SecretString) {}
}

/// A resource as events and outcomes name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResourceRef {
    pub kind: String,
    pub name: String,
    /// The provider's id, once known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

impl ResourceRef {
    pub fn new(kind: &str, name: &str, id: Option<&str>) -> Self {
        Self {
            kind: kind.to_owned(),
            name: name.to_owned(),
            id: id.map(str::to_owned),
        }
    }
}

impl std::fmt::Display for ResourceRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.kind, self.name)?;
        if let Some(id) = &self.id {
            write!(f, " ({id})")?;
        }
        Ok(())
    }
}

/// What happened to a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceChange {
    /// Read back as wanted: nothing was sent.
    Unchanged,
    Created,
    Updated,
    /// Found by its owner tag after an interrupted run had intended it; now tracked.
    Adopted,
    /// Found by its owner tag although the state does not know it; updated.
    FoundUntracked,
    /// The create failed after the resource came to exist; tracked so that it is undone.
    CreatedUnfinished,
    /// Deleted because the spec no longer names it.
    DeletedUnwanted,
    /// Left pending by an interrupted run and found: adopted, so this run removes it.
    RecoveredFromInterrupted,
    /// Left pending by an interrupted run and never created: forgotten.
    NeverCreated,
}

/// Which of the spec's hooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HookName {
    PreDeploy,
    PostDeploy,
}

impl HookName {
    pub fn as_str(self) -> &'static str {
        match self {
            HookName::PreDeploy => "pre_deploy",
            HookName::PostDeploy => "post_deploy",
        }
    }
}

/// What a rollback did to one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UndoAction {
    /// Put back the settings it had before this run.
    Restored,
    /// Deleted (this run created it).
    Deleted,
}

impl UndoAction {
    pub fn as_str(self) -> &'static str {
        match self {
            UndoAction::Restored => "restored",
            UndoAction::Deleted => "deleted",
        }
    }
}

/// A problem that did not change a run's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "warning", rename_all = "snake_case")]
pub enum Warning {
    /// A webhook of the spec or project cannot be used (a missing variable, a bad URL).
    WebhookUnusable { problem: String },
    /// A resource the spec no longer names could not be deleted; the next apply retries.
    UnwantedNotDeleted {
        resource: ResourceRef,
        error: String,
    },
    /// The app was verified, and its monitor could not be made or resumed then: the
    /// deploy stands (a monitoring outage never rolls an app back); the next apply tries
    /// again.
    MonitorNotReady {
        resource: ResourceRef,
        error: String,
    },
    /// A webhook could not be told how the run ended.
    NotDelivered { target: String, problem: String },
    /// A secret's value is too short to be hidden from output.
    SecretTooShort { name: String, minimum: usize },
    /// A plain `env` variable has a secret's value: it is stored in the state in clear.
    EnvEqualsSecret { variable: String, secret: String },
    /// A provider's credentials go to an origin over plain HTTP.
    CleartextCredential { provider: Role, origin: String },
    /// The fingerprint key an earlier Fabrik kept in the shared state was moved into
    /// `.env` (`FABRIK_FINGERPRINT_KEY`) and removed from the state.
    FingerprintKeyMoved,
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Warning::WebhookUnusable { problem } => write!(f, "{problem}"),
            Warning::UnwantedNotDeleted { resource, error } => write!(
                f,
                "could not delete {resource}, which the spec no longer names: {error}; the next apply tries again"
            ),
            Warning::MonitorNotReady { resource, error } => write!(
                f,
                "the app is deployed and verified, but {resource} could not be made or resumed: {error}; the next apply tries again"
            ),
            Warning::NotDelivered { target, problem } => {
                write!(f, "could not tell {target}: {problem}")
            }
            Warning::SecretTooShort { name, minimum } => write!(
                f,
                "secret {name} is shorter than {minimum} characters, too short to be hidden from output and logs; use a longer value"
            ),
            Warning::EnvEqualsSecret { variable, secret } => write!(
                f,
                "env.{variable} has the value of secret {secret}: plain variables are stored in the state and shown by plan; make it a secret, or refer to {secret}"
            ),
            Warning::FingerprintKeyMoved => write!(
                f,
                "the key of secret fingerprints was kept in the state database, where a copy of it let anyone test guesses of a secret: it is now FABRIK_FINGERPRINT_KEY in .env, and gone from the database; give it to your teammates with FABRIK_STATE_URL"
            ),
            Warning::CleartextCredential { provider, origin } => write!(
                f,
                "the {provider} provider's credentials go to {origin} over plain HTTP, readable by anyone on the way; use an https:// URL (a reverse proxy with a certificate in front of it)"
            ),
        }
    }
}

/// One event of a run. `kind()` names it in JSON output.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RunEvent {
    /// The run moved to `state`.
    StateChanged { state: State },
    /// The app's lock was left by a process that is gone; this run took it over.
    LockTakenOver { previous: String },
    /// Another run holds the app's lock; this one waits for it, up to `timeout_s`.
    WaitingForLock { holder: String, timeout_s: u64 },
    /// A secret was generated and saved to the project's `.env`.
    SecretGenerated {
        name: String,
        /// The file it was saved to: `.env`, or `.env.<environment>`.
        file: String,
    },
    /// A run left unfinished by a process that died was closed in `left_in`.
    InterruptedRunClosed {
        run: String,
        left_in: State,
        reason: String,
    },
    /// A provider call failed transiently and is tried again after `wait`.
    Retrying {
        what: String,
        error: String,
        #[serde(serialize_with = "seconds")]
        wait: Duration,
        attempt: u32,
        attempts: u32,
    },
    /// Something was done to (or found about) a resource.
    Resource {
        change: ResourceChange,
        resource: ResourceRef,
    },
    /// A difference between the state and the live resource; `repairing` when this run
    /// sends the update that removes it.
    Drift { difference: String, repairing: bool },
    /// The spec is unchanged and its resources are live: nothing to do.
    NoChanges,
    /// A `fabrik rollback` run deploys again what run `restores_run` deployed.
    Restoring {
        restores_run: String,
        spec_hash: String,
    },
    /// A `fabrik promote` run deploys the source another environment's run `from_run`
    /// verified: `source`, its commit or image digest.
    Promoting { from_run: String, source: String },
    /// A provider's word on a long operation (a deployment).
    Progress { message: String },
    /// A health-check attempt that did not pass yet: what was asked, what came back.
    Probing {
        /// `GET /health`.
        request: String,
        /// `404`, or why there was no answer.
        answer: String,
        attempt: u32,
        elapsed_s: u64,
        timeout_s: u64,
    },
    /// The resource is unchanged, so nothing is deployed.
    NothingToDeploy { resource: ResourceRef },
    /// The run failed; what follows is the rollback policy.
    Failed { reason: String },
    /// A hook of the spec started.
    HookStarted { hook: HookName, command: String },
    /// A line of a hook's output.
    HookOutput { hook: HookName, line: String },
    /// Health checks connect to `addr` for `host:port`.
    ResolveOverride {
        host: String,
        port: u16,
        addr: String,
    },
    /// Health checks also trust this CA.
    ExtraCa { path: String },
    /// The health check passed.
    Verified {
        url: String,
        status: u16,
        attempts: u32,
    },
    /// A webhook was told how the run ended.
    Notified {
        target: String,
        event: NotifyEvent,
        attempts: u32,
    },
    /// The rollback undid what this run did to a resource.
    Undone {
        action: UndoAction,
        resource: ResourceRef,
    },
    /// Something that did not change the result.
    Warning { warning: Warning },
    /// `fabrik destroy` deleted a resource; `data_kept` when its volumes stay on the
    /// server (without `--purge`).
    Destroyed {
        resource: ResourceRef,
        data_kept: bool,
    },
    /// `fabrik destroy` could not delete a resource; it stays in the state.
    NotDestroyed {
        resource: ResourceRef,
        error: String,
    },
    /// What the run is about to do, as `fabrik plan` would show it, told before its
    /// first change: `add`, `change` and `destroy` count resources; `steps` name them
    /// (`~ service api: env.LOG_LEVEL`).
    Planned {
        add: usize,
        change: usize,
        destroy: usize,
        steps: Vec<String>,
    },
    /// A field the spec changed since the last deploy, which this run sends: an update,
    /// not drift (drift is the live world differing from what was deployed).
    Updating { difference: String },
    /// `fabrik destroy` found a resource already gone (deleted by hand, or by an
    /// interrupted destroy): nothing was deleted, the state forgets it.
    AlreadyGone { resource: ResourceRef },
    /// `fabrik destroy` left a container Fabrik created (a Coolify project) because it is
    /// not empty, or could not be checked.
    Kept {
        resource: ResourceRef,
        reason: String,
    },
}

/// The kinds of [`RunEvent`], as JSON output names them (`"event": "resource"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    State,
    Lock,
    Secret,
    Recover,
    Retry,
    Resource,
    Drift,
    Update,
    NoChanges,
    Rollback,
    Progress,
    Failure,
    Hook,
    HookOutput,
    Verify,
    Notify,
    Warning,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::State => "state",
            EventKind::Lock => "lock",
            EventKind::Secret => "secret",
            EventKind::Recover => "recover",
            EventKind::Retry => "retry",
            EventKind::Resource => "resource",
            EventKind::Drift => "drift",
            EventKind::Update => "update",
            EventKind::NoChanges => "no_changes",
            EventKind::Rollback => "rollback",
            EventKind::Progress => "progress",
            EventKind::Failure => "failure",
            EventKind::Hook => "hook",
            EventKind::HookOutput => "hook_output",
            EventKind::Verify => "verify",
            EventKind::Notify => "notify",
            EventKind::Warning => "warning",
        }
    }
}

impl RunEvent {
    /// The event with `redact` applied to every free text in it.
    pub fn redacted(&self, redact: impl Fn(&str) -> String) -> RunEvent {
        let mut event = self.clone();
        match &mut event {
            RunEvent::InterruptedRunClosed { reason: text, .. }
            | RunEvent::Retrying { error: text, .. }
            | RunEvent::Drift {
                difference: text, ..
            }
            | RunEvent::Updating { difference: text }
            | RunEvent::Progress { message: text }
            | RunEvent::Probing { answer: text, .. }
            | RunEvent::Failed { reason: text }
            | RunEvent::HookStarted { command: text, .. }
            | RunEvent::HookOutput { line: text, .. }
            | RunEvent::NotDestroyed { error: text, .. }
            | RunEvent::Kept { reason: text, .. } => *text = redact(text),
            RunEvent::Warning { warning } => match warning {
                Warning::WebhookUnusable { problem: text }
                | Warning::UnwantedNotDeleted { error: text, .. }
                | Warning::MonitorNotReady { error: text, .. }
                | Warning::NotDelivered { problem: text, .. } => *text = redact(text),
                Warning::SecretTooShort { .. }
                | Warning::EnvEqualsSecret { .. }
                | Warning::CleartextCredential { .. }
                | Warning::FingerprintKeyMoved => {}
            },
            RunEvent::StateChanged { .. }
            | RunEvent::LockTakenOver { .. }
            | RunEvent::WaitingForLock { .. }
            | RunEvent::SecretGenerated { .. }
            | RunEvent::Resource { .. }
            | RunEvent::NoChanges
            | RunEvent::Restoring { .. }
            | RunEvent::Promoting { .. }
            | RunEvent::Planned { .. }
            | RunEvent::NothingToDeploy { .. }
            | RunEvent::ResolveOverride { .. }
            | RunEvent::ExtraCa { .. }
            | RunEvent::Verified { .. }
            | RunEvent::Notified { .. }
            | RunEvent::Undone { .. }
            | RunEvent::Destroyed { .. }
            | RunEvent::AlreadyGone { .. } => {}
        }
        event
    }

    pub fn kind(&self) -> EventKind {
        use ResourceChange::{NeverCreated, RecoveredFromInterrupted};
        match self {
            RunEvent::StateChanged { .. } => EventKind::State,
            RunEvent::LockTakenOver { .. } | RunEvent::WaitingForLock { .. } => EventKind::Lock,
            RunEvent::SecretGenerated { .. } => EventKind::Secret,
            RunEvent::InterruptedRunClosed { .. } => EventKind::Recover,
            RunEvent::Resource {
                change: RecoveredFromInterrupted | NeverCreated,
                ..
            } => EventKind::Recover,
            RunEvent::Retrying { .. } => EventKind::Retry,
            RunEvent::Resource { .. } => EventKind::Resource,
            RunEvent::Drift { .. } => EventKind::Drift,
            RunEvent::Updating { .. } => EventKind::Update,
            RunEvent::NoChanges => EventKind::NoChanges,
            RunEvent::Restoring { .. } | RunEvent::Undone { .. } => EventKind::Rollback,
            RunEvent::Progress { .. }
            | RunEvent::Promoting { .. }
            | RunEvent::Probing { .. }
            | RunEvent::Planned { .. }
            | RunEvent::NothingToDeploy { .. } => EventKind::Progress,
            RunEvent::Failed { .. } => EventKind::Failure,
            RunEvent::HookStarted { .. } => EventKind::Hook,
            RunEvent::HookOutput { .. } => EventKind::HookOutput,
            RunEvent::ResolveOverride { .. }
            | RunEvent::ExtraCa { .. }
            | RunEvent::Verified { .. } => EventKind::Verify,
            RunEvent::Notified { .. } => EventKind::Notify,
            RunEvent::Warning { .. } => EventKind::Warning,
            RunEvent::Destroyed { .. } | RunEvent::AlreadyGone { .. } | RunEvent::Kept { .. } => {
                EventKind::Resource
            }
            RunEvent::NotDestroyed { .. } => EventKind::Failure,
        }
    }
}

fn seconds<S: serde::Serializer>(wait: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    // To the millisecond: an `f32` widened to JSON's `f64` would print float noise.
    serializer.serialize_f64((wait.as_secs_f64() * 1000.0).round() / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_reaches_every_free_text_and_nothing_else() {
        let hide = |text: &str| text.replace("s3cr3t", "[redacted]");
        let line = RunEvent::HookOutput {
            hook: HookName::PostDeploy,
            line: "db=postgres://u:s3cr3t@db".to_owned(),
        };
        assert_eq!(
            line.redacted(hide),
            RunEvent::HookOutput {
                hook: HookName::PostDeploy,
                line: "db=postgres://u:[redacted]@db".to_owned(),
            }
        );
        let retry = RunEvent::Retrying {
            what: "service api".to_owned(),
            error: "502 echoing s3cr3t".to_owned(),
            wait: Duration::from_millis(500),
            attempt: 2,
            attempts: 3,
        };
        assert!(!format!("{:?}", retry.redacted(hide)).contains("s3cr3t"));
        let warning = RunEvent::Warning {
            warning: Warning::UnwantedNotDeleted {
                resource: ResourceRef::new("dns-record", "old.example.com", Some("z/1")),
                error: "refused s3cr3t".to_owned(),
            },
        };
        assert!(!format!("{:?}", warning.redacted(hide)).contains("s3cr3t"));
        // Names and ids are facts, left as they are.
        let created = RunEvent::Resource {
            change: ResourceChange::Created,
            resource: ResourceRef::new("service", "s3cr3t", Some("u1")),
        };
        assert_eq!(created.redacted(hide), created);
    }
}

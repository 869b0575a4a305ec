//! The append-only journal's entries: what changed in the state, with typed data.

use serde_json::{Value, json};

use crate::domain::{ResourceStatus, Role, RunOrigin, State};

/// One entry of the journal (the `events` table): its kind and data.
#[derive(Debug, Clone, Copy)]
pub enum Journal<'a> {
    /// A run began, to deploy `spec_hash`.
    RunStarted {
        spec_hash: &'a str,
        origin: &'a RunOrigin,
    },
    /// A run moved through the state machine.
    Transition {
        from: State,
        to: State,
        reason: Option<&'a str>,
    },
    /// The intent to create or change a resource, written before the provider call.
    Intent {
        provider: Role,
        kind: &'a str,
        name: &'a str,
    },
    /// What a provider call did to a resource.
    Resource {
        resource: i64,
        status: ResourceStatus,
        external_id: Option<&'a str>,
    },
    /// An apply found nothing to do.
    NoChanges { spec_hash: &'a str },
    /// `fabrik destroy` ran: what it deleted, found gone or failed to delete (`complete`
    /// when nothing is left).
    Destroyed { record: &'a DestroyRecord },
}

/// What one `fabrik destroy` did, as the journal keeps it and `history` shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DestroyRecord {
    /// Nothing of the app is left.
    #[serde(default)]
    pub complete: bool,
    #[serde(default)]
    pub deleted: usize,
    #[serde(default)]
    pub already_gone: usize,
    #[serde(default)]
    pub failed: usize,
}

/// One destroy of a deployment, as read back from the journal.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DestroyEntry {
    /// When it ended (Unix seconds with milliseconds, as runs' times).
    pub at: String,
    #[serde(flatten)]
    pub record: DestroyRecord,
}

impl DestroyEntry {
    /// An entry from the journal's `at` and `data`; an entry written before destroys
    /// recorded their counts (`{}`) was a complete one.
    pub fn from_journal(at: String, data: Option<&str>) -> Self {
        let value: serde_json::Value = data
            .and_then(|d| serde_json::from_str(d).ok())
            .unwrap_or_default();
        let record = match value.get("complete") {
            Some(_) => serde_json::from_value(value).unwrap_or_default(),
            None => DestroyRecord {
                complete: true,
                ..DestroyRecord::default()
            },
        };
        Self { at, record }
    }
}

impl Journal<'_> {
    /// The stored kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Journal::RunStarted { .. } => "run_started",
            Journal::Transition { .. } => "transition",
            Journal::Intent { .. } => "intent",
            Journal::Resource { .. } => "resource",
            Journal::NoChanges { .. } => "no_changes",
            Journal::Destroyed { .. } => "destroyed",
        }
    }

    /// The stored data.
    pub fn data(&self) -> Value {
        match *self {
            Journal::RunStarted { spec_hash, origin } => json!({
                "spec_hash": spec_hash,
                "origin": origin.as_str(),
                "restores_run": origin.restores(),
            }),
            Journal::Transition { from, to, reason } => json!({
                "from": from.as_str(),
                "to": to.as_str(),
                "reason": reason,
            }),
            Journal::Intent {
                provider,
                kind,
                name,
            } => json!({ "provider": provider.as_str(), "kind": kind, "name": name }),
            Journal::Resource {
                resource,
                status,
                external_id,
            } => json!({
                "resource": resource,
                "status": status.as_str(),
                "external_id": external_id,
            }),
            Journal::NoChanges { spec_hash } => json!({ "spec_hash": spec_hash }),
            Journal::Destroyed { record } => serde_json::to_value(record).unwrap_or_default(),
        }
    }
}

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
    /// `fabrik destroy` deleted every resource of the deployment.
    Destroyed,
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
            Journal::Destroyed => "destroyed",
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
            Journal::Destroyed => json!({}),
        }
    }
}

//! The engine's vocabulary, shared by the store and the orchestrator: run states,
//! deployment states, resource statuses, provider roles and run origins. Each is stored
//! as text through its own conversion (`as_str`/`FromStr`), never as a loose literal.

pub mod deployment;
pub mod origin;
pub mod role;
pub mod state;
pub mod status;
pub mod timestamp;

pub use deployment::{deployment_key, split_key};
pub use origin::RunOrigin;
pub use role::{PerRole, Role};
pub use state::{DeploymentState, InvalidStateTransition, State};
pub use status::ResourceStatus;

/// A stored name that is not one of its type's values (a database written by hand, or
/// by a newer fabrik).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not a {what}")]
pub struct UnknownName {
    pub what: &'static str,
    pub value: String,
}

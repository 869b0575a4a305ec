//! Why a run stopped. A [`RunFailure`] is the deploy failing (the spec's rollback policy
//! then applies); a [`Stop::Fault`] is the engine unable to record what it does (the
//! state database failed), which is never taken for a deploy failure: the run stops
//! where it is, its intents recorded, and the next apply recovers it.

use super::events::ResourceRef;
use super::hooks::HookError;
use super::verify::VerifyError;
use crate::plugins::types::ProviderError;
use crate::store::Holder;
use crate::store::StoreError;

/// How a found owner tag is said: an empty one is no tag at all.
fn tag_phrase(found: &str) -> String {
    if found.is_empty() {
        "it has no owner tag".to_owned()
    } else {
        format!("its owner tag is `{found}`")
    }
}

/// The tag a create answered with: none at all, or another.
fn answered_tag(found: &str) -> String {
    if found.is_empty() {
        "no owner tag".to_owned()
    } else {
        format!("the owner tag `{found}`")
    }
}

/// Why a deploy failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RunFailure {
    /// A provider call about `resource` failed (after its retries).
    #[error("{resource}: {error}")]
    Provider {
        resource: String,
        error: ProviderError,
    },
    /// A resource with the wanted name exists and belongs to someone else.
    #[error(
        "{resource} already exists and is not owned by `{owner}` ({}); remove it or choose another name",
        tag_phrase(found)
    )]
    NotOwned {
        resource: ResourceRef,
        owner: String,
        found: String,
    },
    /// A create answered with a resource that does not carry this app's owner tag.
    #[error(
        "the provider's create of {resource} answered with {}, not `{owner}`: it was not recorded as this run's; if the provider did create it with this app's tag, the next apply finds it (and `fabrik gc` lists it)",
        answered_tag(found)
    )]
    CreatedNotOwned {
        resource: ResourceRef,
        owner: String,
        found: String,
    },
    /// A provider answered with the id of a resource this state already tracks as another
    /// one (another app's, or another of this app's).
    #[error(
        "the provider answered for {resource} with an id this state already tracks as {holder}: it was not recorded as this run's, so no rollback deletes the other one; the provider is confused (report it to its author)"
    )]
    IdAlreadyTracked {
        resource: ResourceRef,
        holder: Holder,
        /// The id answered a create (something may now exist that no state lists), not
        /// a lookup.
        answered_create: bool,
    },
    /// A create failed, and whether it left something behind could not be found out.
    #[error(
        "{resource}: {error}; looking for a half-created {kind} afterwards failed too ({lookup}): the next apply looks again",
        kind = resource.kind
    )]
    HalfCreatedUnknown {
        resource: ResourceRef,
        error: ProviderError,
        lookup: ProviderError,
    },
    /// An intent left by an interrupted run could not be resolved.
    #[error("recovering {resource}: {error}")]
    Recovery {
        resource: ResourceRef,
        error: ProviderError,
    },
    #[error("looking up Coolify server `{server}`: {error}")]
    ServerLookup {
        server: String,
        error: ProviderError,
    },
    #[error("Coolify has no server named `{server}`{}", known_servers(.known))]
    NoServer {
        server: String,
        /// The servers Coolify has, when the provider can list them.
        known: Vec<String>,
    },
    #[error(
        "Coolify server `{server}` has no usable IP address ({found}); the DNS record needs one"
    )]
    NoServerAddress { server: String, found: String },
    #[error(
        "Coolify server `{server}` has the private address {ip}: the record would point there and the health check would refuse it; use a server with a public address (or `--resolve` for a private setup)"
    )]
    PrivateAddress { server: String, ip: String },
    /// The spec asks for something the resource cannot become (a move, an unusable
    /// destination, a compose file that cannot be rendered).
    #[error("{0}")]
    Unsupported(String),
    /// Following the deployment failed.
    #[error("{0}")]
    Progress(ProviderError),
    #[error("the deployment failed: {0}")]
    DeploymentFailed(String),
    #[error("the deployment did not finish within {seconds} s (last: {last})")]
    DeploymentTimeout { seconds: u64, last: String },
    #[error(transparent)]
    Verify(#[from] VerifyError),
    /// A hook exited non-zero, ran out of time or could not start.
    #[error(transparent)]
    Hook(#[from] HookError),
}

impl RunFailure {
    /// A resource the provider may have created although the run does not track it (its
    /// create was answered as someone else's): a summary must not say that nothing was
    /// changed.
    pub fn untracked(&self) -> Option<&ResourceRef> {
        match self {
            RunFailure::CreatedNotOwned { resource, .. }
            | RunFailure::IdAlreadyTracked {
                resource,
                answered_create: true,
                ..
            } => Some(resource),
            _ => None,
        }
    }

    /// A short, stable name for JSON output and webhooks.
    pub fn code(&self) -> &'static str {
        match self {
            RunFailure::Provider { .. } => "provider",
            RunFailure::NotOwned { .. } => "not_owned",
            RunFailure::CreatedNotOwned { .. } => "created_not_owned",
            RunFailure::IdAlreadyTracked { .. } => "id_already_tracked",
            RunFailure::HalfCreatedUnknown { .. } => "half_created_unknown",
            RunFailure::Recovery { .. } => "recovery",
            RunFailure::ServerLookup { .. } => "server_lookup",
            RunFailure::NoServer { .. } => "no_server",
            RunFailure::NoServerAddress { .. } => "no_server_address",
            RunFailure::PrivateAddress { .. } => "private_address",
            RunFailure::Unsupported(_) => "unsupported",
            RunFailure::Progress(_) => "progress",
            RunFailure::DeploymentFailed(_) => "deployment_failed",
            RunFailure::DeploymentTimeout { .. } => "deployment_timeout",
            RunFailure::Verify(_) => "verify",
            RunFailure::Hook(_) => "hook",
        }
    }
}

/// Why a run could not go on.
#[derive(Debug)]
pub enum Stop {
    /// The deploy failed: roll back as the spec says.
    Failed(RunFailure),
    /// The state could not be written or read: stop at once, change nothing more.
    Fault(StoreError),
}

impl From<RunFailure> for Stop {
    fn from(failure: RunFailure) -> Self {
        Stop::Failed(failure)
    }
}

impl From<StoreError> for Stop {
    fn from(error: StoreError) -> Self {
        Stop::Fault(error)
    }
}

impl From<VerifyError> for Stop {
    fn from(error: VerifyError) -> Self {
        Stop::Failed(RunFailure::Verify(error))
    }
}

/// `; it has: a, b` for the servers Coolify has, nothing when they are unknown.
fn known_servers(known: &[String]) -> String {
    if known.is_empty() {
        String::new()
    } else {
        format!("; it has: {}", known.join(", "))
    }
}

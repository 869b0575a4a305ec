//! The host's view of providers: plain Rust types, independent of any WIT version's
//! generated bindings (those are converted in `wit/v0_*.rs`).

use std::fmt;
use std::time::Duration;

use serde::Serialize;

/// What a provider says about itself in `describe`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProviderInfo {
    pub name: String,
    pub version: String,
    pub description: String,
    pub kinds: Vec<String>,
    pub config: Vec<ConfigKey>,
    pub default_origins: Vec<String>,
    /// The API's request budget per credential, if the provider declares one (0.3).
    pub rate_limit: Option<super::pacing::RateLimit>,
}

/// One configuration key a provider accepts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigKey {
    pub name: String,
    pub description: String,
    pub secret: bool,
    pub required: bool,
}

/// A live resource reported by a provider. `live` may hold the app's env values
/// (secrets among them): it is compared, never stored or printed, so neither `Debug` nor
/// serialization shows it.
#[derive(Clone, PartialEq, Serialize)]
pub struct Resource {
    pub kind: String,
    pub id: String,
    pub name: String,
    pub owner: Option<String>,
    #[serde(skip)]
    pub live: serde_json::Value,
    pub outputs: serde_json::Value,
}

/// One page of a provider's `list` (contract 0.2): resources and where the next page
/// starts, if there is one.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourcePage {
    pub resources: Vec<Resource>,
    pub next: Option<String>,
}

impl std::fmt::Debug for Resource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resource")
            .field("kind", &self.kind)
            .field("id", &self.id)
            .field("name", &self.name)
            .field("owner", &self.owner)
            .field(
                "live",
                &format_args!(
                    "<{} fields, not shown>",
                    self.live.as_object().map_or(0, |o| o.len())
                ),
            )
            .field("outputs", &self.outputs)
            .finish()
    }
}

/// Where a long operation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProgressState {
    Pending,
    Running,
    Ready,
    Failed,
}

/// A long operation's state and message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Progress {
    pub state: ProgressState,
    pub message: Option<String>,
}

/// Why a provider call failed: what the provider reported, or what the host saw
/// (a trap, a time or memory limit), which counts as permanent for that step.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    #[error("{message}{}", retry_after.map(|d| format!(" (the API asked to wait {:.1} s)", d.as_secs_f32())).unwrap_or_default())]
    Transient {
        message: String,
        retry_after: Option<Duration>,
    },
    #[error("{0}")]
    Permanent(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
}

impl ProviderError {
    /// Whether retrying the same call may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, ProviderError::Transient { .. })
    }
}

/// The WIT contract version a component targets, read from its export names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct WitVersion {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
}

impl fmt::Display for WitVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

impl WitVersion {
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.split('.');
        let mut next = || parts.next()?.split(['-', '+']).next()?.parse().ok();
        let version = Self {
            major: next()?,
            minor: next()?,
            patch: next()?,
        };
        Some(version)
    }

    /// Semver compatibility of a guest built against `self` with a host binding for
    /// `host`: same major and, on 0.x, same minor; on 1.x+, a minor no newer than the host's.
    pub fn is_served_by(self, host: WitVersion) -> bool {
        if self.major != host.major {
            return false;
        }
        if self.major == 0 {
            self.minor == host.minor
        } else {
            self.minor <= host.minor
        }
    }
}

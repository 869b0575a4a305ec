//! The validated spec: what a user wrote, with defaults applied and names canonicalized.
//! The YAML reference for every field is in README.md ("Spec reference").

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

/// Default Coolify environment; Coolify creates `production` with every project.
pub const DEFAULT_ENVIRONMENT: &str = "production";
/// Default health-check timeout, in seconds.
pub const DEFAULT_HEALTH_TIMEOUT: u32 = 60;
/// Default pause between health-check attempts, in seconds.
pub const DEFAULT_HEALTH_INTERVAL: u32 = 2;
/// Default git branch.
pub const DEFAULT_BRANCH: &str = "main";

/// A deployable app, as validated from `NAME.yaml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Spec {
    /// DNS-label-safe slug; the Coolify resource name and the key of the app in the store.
    pub name: String,
    /// Template that renders the app's docker-compose document.
    pub template: String,
    /// Public DNS name, lowercase ASCII (punycode), without a trailing dot.
    pub domain: String,
    /// Name of the Coolify server that runs the app; the DNS record points at its IP.
    pub server: String,
    /// Where the code comes from; some templates need one.
    pub source: Option<Source>,
    /// Port the app listens on inside its container.
    pub port: u16,
    pub coolify: CoolifyTarget,
    /// Plain environment variables, sorted by key.
    pub env: BTreeMap<String, String>,
    /// Names of secret environment variables, sorted; values are resolved at apply time.
    pub secrets: Vec<String>,
    pub healthcheck: Healthcheck,
    pub rollback: RollbackPolicy,
}

/// Where the app's code comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// A container image reference, such as `ghcr.io/acme/my-api:1.4`.
    Image { image: String },
    /// A public git repository over https, and the branch to build.
    Git { repository: String, branch: String },
}

impl Source {
    pub fn kind(&self) -> SourceKind {
        match self {
            Source::Image { .. } => SourceKind::Image,
            Source::Git { .. } => SourceKind::Git,
        }
    }
}

/// The kinds of [`Source`], as templates declare which they accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    Image,
    Git,
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            SourceKind::Image => "image",
            SourceKind::Git => "git",
        })
    }
}

/// The Coolify project and environment the app lives in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CoolifyTarget {
    /// Project name; defaults to the app's name. Created if missing.
    pub project: String,
    /// Environment name; defaults to `production`. Created if missing.
    pub environment: String,
}

/// How Fabrik decides the deployed app is healthy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Healthcheck {
    /// Path probed over `https://<domain><path>`.
    pub path: String,
    /// Seconds to keep trying before the deploy counts as failed.
    pub timeout: u32,
    /// Seconds between attempts (the first retries back off from it).
    pub interval: u32,
    /// Exact status expected; `None` accepts any 2xx.
    pub expect_status: Option<u16>,
}

/// What to do with a resource of a class when an apply fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RollbackMode {
    /// Undo it automatically.
    Auto,
    /// Leave it and print the command that undoes it.
    Manual,
    /// Leave it.
    Never,
}

impl RollbackMode {
    pub const NAMES: [&'static str; 3] = ["auto", "manual", "never"];

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "auto" => Some(Self::Auto),
            "manual" => Some(Self::Manual),
            "never" => Some(Self::Never),
            _ => None,
        }
    }
}

impl fmt::Display for RollbackMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            RollbackMode::Auto => "auto",
            RollbackMode::Manual => "manual",
            RollbackMode::Never => "never",
        })
    }
}

/// Rollback policy per resource class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RollbackPolicy {
    /// The Coolify application or service.
    pub coolify: RollbackMode,
    /// The DNS record.
    pub dns: RollbackMode,
}

impl Default for RollbackPolicy {
    fn default() -> Self {
        Self {
            coolify: RollbackMode::Auto,
            dns: RollbackMode::Auto,
        }
    }
}

impl Spec {
    /// The URL the health check probes.
    pub fn health_url(&self) -> String {
        format!("https://{}{}", self.domain, self.healthcheck.path)
    }
}

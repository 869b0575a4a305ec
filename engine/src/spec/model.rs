//! The validated spec: what a user wrote, with defaults applied and names canonicalized.
//! The YAML reference for every field is in README.md ("Spec reference").

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Default Coolify environment; Coolify creates `production` with every project.
pub const DEFAULT_ENVIRONMENT: &str = "production";
/// Default health-check timeout, in seconds.
pub const DEFAULT_HEALTH_TIMEOUT: u32 = 60;
/// Default pause between health-check attempts, in seconds.
pub const DEFAULT_HEALTH_INTERVAL: u32 = 2;
/// Default git branch.
pub const DEFAULT_BRANCH: &str = "main";

/// A deployable app, as validated from `NAME.yaml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spec {
    /// DNS-label-safe slug; the Coolify resource name and the key of the app in the store.
    pub name: String,
    /// The environment this spec is the effective spec of (`environments:`), if any: with
    /// it, the app is a deployment of its own, keyed [`Spec::key`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
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
    /// The secrets that must be provided (environment or `.env`), never generated: a
    /// connection string, say, which a random value could only break later.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub required_secrets: Vec<String>,
    pub healthcheck: Healthcheck,
    pub rollback: RollbackPolicy,
    /// An uptime monitor of the health URL (the `monitor` role), if the spec asks for
    /// one. Absent, it is left out of the hash's document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitor: Option<Monitor>,
}

/// Default seconds between a monitor's checks.
pub const DEFAULT_MONITOR_INTERVAL: u32 = 60;
/// Default failed checks before a monitor reports the app down.
pub const DEFAULT_MONITOR_RETRIES: u32 = 1;

/// An uptime monitor of the app's health URL: created once a deploy is verified, paused
/// while its app deploys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Monitor {
    /// Seconds between checks (20 to 86400).
    pub interval: u32,
    /// Failed checks in a row before the app counts as down (0 to 10).
    pub retries: u32,
    /// Text the answer must contain, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyword: Option<String>,
    /// The status the answer must have; `None` accepts any 2xx.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_status: Option<u16>,
}

/// Where the app's code comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// A container image reference, such as `ghcr.io/acme/my-api:1.4`.
    Image {
        image: String,
        /// The manifest digest (`sha256:<64 hex>`) the tag pointed at when the source
        /// was resolved: what is deployed, so that a moved tag is a change and a rollback
        /// deploys the old image. Absent until resolved (and for a reference written
        /// with its digest).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        digest: Option<String>,
    },
    /// A public git repository over https, and the branch (or tag) to build.
    Git {
        repository: String,
        branch: String,
        /// The commit to build: written in the spec (`source.commit`), or the one the
        /// branch pointed at when the source was resolved.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        commit: Option<String>,
    },
}

impl Source {
    pub fn kind(&self) -> SourceKind {
        match self {
            Source::Image { .. } => SourceKind::Image,
            Source::Git { .. } => SourceKind::Git,
        }
    }

    /// The immutable id deployed: the resolved (or written) commit or image digest.
    pub fn resolved(&self) -> Option<&str> {
        match self {
            Source::Image { digest, .. } => digest.as_deref(),
            Source::Git { commit, .. } => commit.as_deref(),
        }
    }

    /// The source with `id` (a commit, or an image digest) as what is deployed.
    pub fn pinned(&self, id: &str) -> Source {
        match self {
            Source::Image { image, .. } => Source::Image {
                image: image.clone(),
                digest: Some(id.to_owned()),
            },
            Source::Git {
                repository, branch, ..
            } => Source::Git {
                repository: repository.clone(),
                branch: branch.clone(),
                commit: Some(id.to_owned()),
            },
        }
    }

    /// The image reference to deploy: `name@sha256:…` once resolved (the tag dropped:
    /// the digest alone names the image, and Coolify stores a digest reference as
    /// `name@sha256` plus the hex), else as written.
    pub fn image_reference(&self) -> Option<String> {
        let Source::Image { image, digest } = self else {
            return None;
        };
        Some(match digest {
            Some(digest) if !image.contains('@') => {
                let last_slash = image.rfind('/').map_or(0, |i| i + 1);
                let name = match image[last_slash..].rfind(':') {
                    Some(colon) => &image[..last_slash + colon],
                    None => image.as_str(),
                };
                format!("{name}@{digest}")
            }
            _ => image.clone(),
        })
    }

    /// The moving name people know the source by: the branch, or the image as written.
    pub fn moving_name(&self) -> &str {
        match self {
            Source::Image { image, .. } => image,
            Source::Git { branch, .. } => branch,
        }
    }
}

/// The kinds of [`Source`], as templates declare which they accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoolifyTarget {
    /// Project name; defaults to the app's name. Created if missing.
    pub project: String,
    /// Environment name; defaults to `production`. Created if missing.
    pub environment: String,
    /// The Docker destination (name, network or uuid) on the server; needed only when
    /// the server has several.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
}

/// How Fabrik decides the deployed app is healthy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollbackPolicy {
    /// The Coolify application or service.
    pub coolify: RollbackMode,
    /// The DNS record.
    pub dns: RollbackMode,
    /// The uptime monitor. Left out of the hash's document when `auto`, so that a spec
    /// written before monitors existed hashes as it did.
    #[serde(default = "auto", skip_serializing_if = "is_auto")]
    pub monitors: RollbackMode,
}

fn auto() -> RollbackMode {
    RollbackMode::Auto
}

fn is_auto(mode: &RollbackMode) -> bool {
    *mode == RollbackMode::Auto
}

impl RollbackPolicy {
    /// The policy for what the provider of `role` manages.
    pub fn for_role(&self, role: crate::domain::Role) -> RollbackMode {
        match role {
            crate::domain::Role::Coolify => self.coolify,
            crate::domain::Role::Dns => self.dns,
            crate::domain::Role::Monitor => self.monitors,
        }
    }

    pub fn for_role_mut(&mut self, role: crate::domain::Role) -> &mut RollbackMode {
        match role {
            crate::domain::Role::Coolify => &mut self.coolify,
            crate::domain::Role::Dns => &mut self.dns,
            crate::domain::Role::Monitor => &mut self.monitors,
        }
    }
}

impl Default for RollbackPolicy {
    fn default() -> Self {
        Self {
            coolify: RollbackMode::Auto,
            dns: RollbackMode::Auto,
            monitors: RollbackMode::Auto,
        }
    }
}

impl Spec {
    /// The deployment's key: the app's name, with its environment if it has one
    /// (`api@staging`). Its lock, runs, resources and owner tag go by it.
    pub fn key(&self) -> String {
        crate::domain::deployment_key(&self.name, self.environment.as_deref())
    }

    /// The URL the health check probes.
    pub fn health_url(&self) -> String {
        format!("https://{}{}", self.domain, self.healthcheck.path)
    }
}

/// Default time a `pre_deploy` or `post_deploy` command may run, in seconds.
pub const DEFAULT_HOOK_TIMEOUT: u32 = 300;

/// Who is told when a run ends. Not part of the spec hash: changing a webhook does not
/// redeploy the app.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notify {
    pub webhooks: Vec<Webhook>,
}

/// A URL that receives an event (`POST`) when a run ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Webhook {
    /// Where the URL comes from: written out, or the name of a variable (environment,
    /// then `.env`) for URLs that are credentials themselves, as chat webhooks are.
    pub target: WebhookTarget,
    /// The events it receives; empty means all of them.
    pub on: Vec<NotifyEvent>,
    /// The body's format; `None`: found from the URL (Slack's and Discord's hosts).
    pub format: Option<WebhookFormat>,
}

/// What a webhook's receiver expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookFormat {
    /// Fabrik's event document (see README, "Webhooks").
    Json,
    /// A Slack incoming webhook: `{"text": ...}` in Slack's mrkdwn.
    Slack,
    /// A Discord webhook: `{"content": ...}` in Discord's Markdown, at most 2,000
    /// characters.
    Discord,
}

impl WebhookFormat {
    pub const NAMES: [&'static str; 3] = ["json", "slack", "discord"];

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "json" => Some(Self::Json),
            "slack" => Some(Self::Slack),
            "discord" => Some(Self::Discord),
            _ => None,
        }
    }

    /// The format a URL's receiver expects: Slack's and Discord's webhook hosts are
    /// known, anything else gets JSON.
    pub fn detect(url: &str) -> Self {
        let Ok(parsed) = url::Url::parse(url) else {
            return Self::Json;
        };
        let host = parsed.host_str().unwrap_or_default().to_ascii_lowercase();
        let path = parsed.path();
        if host == "hooks.slack.com" {
            Self::Slack
        } else if matches!(
            host.as_str(),
            "discord.com" | "discordapp.com" | "ptb.discord.com" | "canary.discord.com"
        ) && path.starts_with("/api/webhooks/")
        {
            Self::Discord
        } else {
            Self::Json
        }
    }
}

/// The URL of a [`Webhook`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookTarget {
    Url(String),
    /// The name of the variable that holds the URL; its value is treated as a secret.
    UrlEnv(String),
}

/// How a run ended, as webhooks are told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotifyEvent {
    Complete,
    Failed,
    RolledBack,
}

impl NotifyEvent {
    pub const NAMES: [&'static str; 3] = ["complete", "failed", "rolled_back"];

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "complete" => Some(Self::Complete),
            "failed" => Some(Self::Failed),
            "rolled_back" => Some(Self::RolledBack),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Complete => "complete",
            Self::Failed => "failed",
            Self::RolledBack => "rolled_back",
        }
    }
}

/// Commands run around the deployment (with `sh -c`, in the project directory). Not part
/// of the spec hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hooks {
    /// After DNS and the Coolify resource are provisioned, before the deployment starts
    /// (database migrations, say). A failure fails the run, which is rolled back.
    pub pre_deploy: Option<String>,
    /// After the app passed its health check (smoke tests, cache purges). A failure
    /// fails the run, which is rolled back.
    pub post_deploy: Option<String>,
    /// Seconds each command may run before it is stopped and counts as failed.
    pub timeout: u32,
}

impl Default for Hooks {
    fn default() -> Self {
        Self {
            pre_deploy: None,
            post_deploy: None,
            timeout: DEFAULT_HOOK_TIMEOUT,
        }
    }
}

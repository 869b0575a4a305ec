//! Provider instances of the bundled components, configured against the simulators.

use std::time::Duration;

use fabrik_engine::plugins::cache::ComponentCache;
use fabrik_engine::plugins::instance::ProviderInstance;
use fabrik_engine::plugins::types::{ProgressState, ProviderError};
use fabrik_engine::plugins::{Pins, ProviderSet};
use fabrik_engine::project::Project;
use fabrik_engine::secrets::EnvSource;
use fabrik_sim::{Sandbox, SandboxConfig};

use crate::support::cache_dir;

pub const OWNER: &str = "fabrik:tests/test-api";

/// A sandbox, and a project whose providers point at it (tokens in the project's `.env`).
pub struct Fixture {
    pub sandbox: Sandbox,
    pub set: ProviderSet,
    pub env: EnvSource,
    _dir: tempfile::TempDir,
}

impl Fixture {
    pub async fn start() -> Self {
        let sandbox = Sandbox::start(SandboxConfig::default())
            .await
            .expect("sandbox starts");
        Self::for_sandbox(sandbox, None)
    }

    pub fn for_sandbox(sandbox: Sandbox, call_timeout: Option<Duration>) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("fabrik.toml"),
            format!(
                "[project]\nname = \"tests\"\n\n[providers.coolify]\nconfig = {{ base-url = \"{}\" }}\n\n[providers.dns]\nconfig = {{ base-url = \"{}\" }}\n",
                sandbox.coolify_url, sandbox.cloudflare_url
            ),
        )
        .expect("fabrik.toml");
        std::fs::write(
            dir.path().join(".env"),
            format!(
                "COOLIFY_TOKEN='{}'\nCLOUDFLARE_API_TOKEN='{}'\n",
                sandbox.config.coolify_token, sandbox.config.cloudflare_token
            ),
        )
        .expect(".env");
        let project = Project::load(dir.path()).expect("project");
        let mut set = ProviderSet::load(&project, &ComponentCache::at(&cache_dir()), Pins::Enforce)
            .expect("providers load");
        if let Some(timeout) = call_timeout {
            set.limits = set.limits.with_call_timeout(timeout);
        }
        let env = EnvSource::load(dir.path()).expect(".env");
        Self {
            sandbox,
            set,
            env,
            _dir: dir,
        }
    }

    pub async fn instance(&self, role: &str) -> ProviderInstance {
        self.set
            .instantiate(role.parse().expect("a role"), &self.env)
            .await
            .expect("provider instance")
    }
}

/// Polls `progress` until the operation settles; returns the last state and message.
pub async fn settle(
    instance: &mut ProviderInstance,
    kind: &str,
    id: &str,
) -> (ProgressState, Option<String>) {
    for _ in 0..100 {
        let progress = instance.progress(kind, id).await.expect("progress");
        if matches!(progress.state, ProgressState::Ready | ProgressState::Failed) {
            return (progress.state, progress.message);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{kind} {id} did not settle");
}

/// Fails the test if `error` (or anything) carries one of the sandbox tokens.
pub fn assert_no_token(sandbox: &Sandbox, text: &str) {
    for token in [
        &sandbox.config.coolify_token,
        &sandbox.config.cloudflare_token,
    ] {
        assert!(
            !text.contains(token.as_str()),
            "a token leaked into: {text}"
        );
    }
}

pub fn text(error: &ProviderError) -> String {
    format!("{error:?} {error}")
}

//! A smoke test against real Coolify and Cloudflare accounts: deploys a throwaway app and
//! destroys it. `#[ignore]`d: run it with `--ignored` and these set:
//!
//! - `FABRIK_LIVE_COOLIFY_URL` (`https://coolify.example.com/api/v1`) and
//!   `FABRIK_LIVE_COOLIFY_TOKEN` (abilities read, write, deploy);
//! - `FABRIK_LIVE_COOLIFY_SERVER`: the Coolify server's name (default `localhost`);
//! - `FABRIK_LIVE_CLOUDFLARE_TOKEN` (Zone:Read and DNS:Edit) and
//!   `FABRIK_LIVE_CLOUDFLARE_ZONE` (`example.com`): the app is deployed at
//!   `fabrik-smoke-<random>.<zone>`;
//! - optionally `FABRIK_LIVE_IMAGE` (default `nginx:1.27-alpine`, port 80) and
//!   `FABRIK_LIVE_DESTINATION` (for a server with several destinations).
//!
//! What it deploys is public for the few minutes the test runs (an nginx welcome page).

use std::process::Output;

use crate::support::cache_dir;

struct Live {
    coolify_url: String,
    coolify_token: String,
    cloudflare_token: String,
    zone: String,
    server: String,
    image: String,
    destination: Option<String>,
}

impl Live {
    fn from_env() -> Option<Self> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Some(Self {
            coolify_url: var("FABRIK_LIVE_COOLIFY_URL")?,
            coolify_token: var("FABRIK_LIVE_COOLIFY_TOKEN")?,
            cloudflare_token: var("FABRIK_LIVE_CLOUDFLARE_TOKEN")?,
            zone: var("FABRIK_LIVE_CLOUDFLARE_ZONE")?,
            server: var("FABRIK_LIVE_COOLIFY_SERVER").unwrap_or_else(|| "localhost".to_owned()),
            image: var("FABRIK_LIVE_IMAGE").unwrap_or_else(|| "nginx:1.27-alpine".to_owned()),
            destination: var("FABRIK_LIVE_DESTINATION"),
        })
    }

    fn fabrik(&self, dir: &std::path::Path, args: &[&str]) -> Output {
        std::process::Command::new(env!("CARGO_BIN_EXE_fabrik"))
            .current_dir(dir)
            .env_clear()
            .envs(crate::support::kept_env())
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("FABRIK_CACHE_DIR", cache_dir())
            .env("COOLIFY_URL", &self.coolify_url)
            .env("COOLIFY_TOKEN", &self.coolify_token)
            .env("CLOUDFLARE_API_TOKEN", &self.cloudflare_token)
            .args(args)
            .output()
            .expect("fabrik runs")
    }
}

fn show(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
#[ignore = "needs real Coolify and Cloudflare accounts: set FABRIK_LIVE_* and run with --ignored (README, \"Tests\")"]
fn deploys_and_destroys_a_throwaway_app_on_real_accounts() {
    let Some(live) = Live::from_env() else {
        panic!(
            "NOT RUN: set FABRIK_LIVE_COOLIFY_URL, FABRIK_LIVE_COOLIFY_TOKEN, FABRIK_LIVE_CLOUDFLARE_TOKEN and FABRIK_LIVE_CLOUDFLARE_ZONE to run the real-API smoke test"
        );
    };
    let mut suffix = [0u8; 4];
    getrandom::fill(&mut suffix).expect("random");
    let name = format!("fabrik-smoke-{}", hex::encode(suffix));
    let domain = format!("{name}.{}", live.zone);
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("fabrik.toml"),
        "[project]\nname = \"fabrik-smoke\"\n",
    )
    .expect("fabrik.toml");
    let destination = live
        .destination
        .as_ref()
        .map(|d| format!("  destination: {d}\n"))
        .unwrap_or_default();
    let spec = format!(
        "name: {name}\ntemplate: docker-image\ndomain: {domain}\nserver: {server}\nsource:\n  image: {image}\nport: 80\ncoolify:\n  project: fabrik-smoke\n  environment: production\n{destination}env:\n  FABRIK_SMOKE: \"1\"\nhealthcheck:\n  path: /\n  timeout: 300\n  expect_status: 200\nrollback:\n  coolify: auto\n  dns: auto\n",
        server = live.server,
        image = live.image,
    );
    std::fs::write(dir.path().join("app.yaml"), spec).expect("spec");

    let applied = live.fabrik(
        dir.path(),
        &["apply", "--deploy-timeout", "900", "app.yaml"],
    );
    // Whatever happened, clean up before judging.
    let again = applied
        .status
        .success()
        .then(|| live.fabrik(dir.path(), &["apply", "app.yaml"]));
    let destroyed = live.fabrik(dir.path(), &["destroy", &name, "--yes", "--purge"]);
    assert!(applied.status.success(), "apply: {}", show(&applied));
    let again = again.expect("applied");
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("no changes"),
        "a second apply changes nothing: {}",
        show(&again)
    );
    assert!(destroyed.status.success(), "destroy: {}", show(&destroyed));
    let status = live.fabrik(dir.path(), &["status", &name]);
    assert!(
        !String::from_utf8_lossy(&status.stdout).contains("COMPLETE"),
        "{}",
        show(&status)
    );
}

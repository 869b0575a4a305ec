//! 20 apps in one `fabrik apply --parallel 20` under Coolify's default rate limit (200
//! requests a minute per user, enforced by the simulator as Laravel does) with simulated
//! builds of two minutes: failed runs, 429s, requests, and the wall time against its
//! physical limit, the larger of the longest build and requests ÷ budget.
//!
//! Run with `cargo bench -p fabrik --bench rate_limit` (about four minutes); results are
//! printed as Markdown. `FABRIK_BENCH_APPS` and `FABRIK_BENCH_BUILD_SECONDS` change the
//! scale (20 and 120 by default).

use std::process::Command;
use std::time::{Duration, Instant};

use fabrik_sim::coolify::Timing;
use fabrik_sim::{Sandbox, SandboxConfig};

mod common;
use common::spec;

/// Coolify's default: 200 requests a minute.
const LIMIT: u32 = 200;
const WINDOW: Duration = Duration::from_secs(60);

fn number(var: &str, default: u64) -> u64 {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let apps = number("FABRIK_BENCH_APPS", 20) as usize;
    let build = Duration::from_secs(number("FABRIK_BENCH_BUILD_SECONDS", 120));
    let sandbox = Sandbox::start(SandboxConfig {
        coolify_rate_limit: (LIMIT, WINDOW),
        ..SandboxConfig::default()
    })
    .await
    .expect("sandbox");
    // The fixture deploys a compose service: its start is the "build" (an application's
    // image build would be `building`).
    sandbox.coolify.set_timing(Timing {
        building: build,
        service_start: build,
        ..Timing::default()
    });
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("fabrik.toml"),
        "[project]\nname = \"bench\"\n",
    )
    .expect("toml");
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, sandbox.ca.pem()).expect("ca");
    let names: Vec<String> = (0..apps).map(|i| format!("app{i}")).collect();
    let mut resolve: Vec<String> = names
        .iter()
        .map(|n| format!("{n}.example.com:443:{}", sandbox.app_addr))
        .collect();
    resolve.extend(
        fabrik_sim::sources::REGISTRY_HOSTS
            .iter()
            .map(|host| format!("{host}:443:{}", sandbox.app_addr)),
    );
    let files: Vec<String> = names.iter().map(|n| spec(dir.path(), n)).collect();

    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fabrik"));
    cmd.current_dir(dir.path())
        .env("COOLIFY_URL", &sandbox.coolify_url)
        .env("COOLIFY_TOKEN", &sandbox.config.coolify_token)
        .env("CLOUDFLARE_API_URL", &sandbox.cloudflare_url)
        .env("CLOUDFLARE_API_TOKEN", &sandbox.config.cloudflare_token)
        .env("FABRIK_CA_FILE", &ca)
        .env("FABRIK_RESOLVE", resolve.join(","))
        .env("FABRIK_CACHE_DIR", dir.path().join("cache"))
        .args(["apply", "--parallel", &apps.to_string()])
        .args(["--deploy-timeout", "900"])
        .args(&files);
    let started = Instant::now();
    let output = tokio::task::spawn_blocking(move || cmd.output().expect("runs"))
        .await
        .expect("joined");
    let wall = started.elapsed();
    let completed = names
        .iter()
        .filter(|n| sandbox.coolify.is_serving(&format!("{n}.example.com")))
        .count();
    let failed = apps.saturating_sub(completed);
    let requests = sandbox.coolify.rate_limit.served();
    let refused = sandbox.coolify.rate_limit.refused();
    let budget_time = WINDOW.mul_f64(requests as f64 / f64::from(LIMIT));
    let limit = budget_time.max(build);
    println!(
        "| {apps} apps, {} s builds, Coolify limit {LIMIT}/min | value |",
        build.as_secs()
    );
    println!("|---|---|");
    println!("| exit status | {} |", output.status.code().unwrap_or(-1));
    println!("| runs COMPLETE / failed | {completed} / {failed} |");
    println!("| Coolify requests served / refused with 429 | {requests} / {refused} |");
    println!("| wall | {:.1} s |", wall.as_secs_f64());
    println!(
        "| physical limit: max(longest build {} s, requests ÷ budget {:.1} s) | {:.1} s |",
        build.as_secs(),
        budget_time.as_secs_f64(),
        limit.as_secs_f64()
    );
    println!(
        "| wall / limit | {:.2} |",
        wall.as_secs_f64() / limit.as_secs_f64()
    );
    if failed > 0 || !output.status.success() {
        eprintln!("{}", String::from_utf8_lossy(&output.stderr));
        std::process::exit(1);
    }
}

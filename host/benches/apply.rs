//! `fabrik apply` against the simulators with 50 ms of latency on every API call: a
//! fresh apply and an update against their dependent rounds (calls that had to wait for
//! another's answer; the physical limit is rounds × latency), a no-op apply's calls, and
//! 20 apps in one apply against 20 applies one after another.
//!
//! With `FABRIK_TEST_POSTGRES_URL` set (a PostgreSQL server, as `.ci/postgres` starts),
//! also a fresh and a no-op apply with each state backend, without API latency so that
//! what the state costs shows.
//!
//! Run with `cargo bench -p fabrik --bench apply`; results are printed as Markdown.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use fabrik_sim::coolify::Timing;
use fabrik_sim::faults::rounds;
use fabrik_sim::{Sandbox, SandboxConfig};

mod common;
use common::spec;

const LATENCY: Duration = Duration::from_millis(50);

fn counts(sandbox: &Sandbox) -> (usize, usize, usize) {
    let coolify = sandbox.coolify.faults.calls();
    let cloudflare = sandbox.cloudflare.faults.calls();
    let mutating = coolify
        .iter()
        .chain(cloudflare.iter())
        .filter(|c| c.is_mutating())
        .count();
    (coolify.len(), cloudflare.len(), mutating)
}

async fn apply(
    sandbox: &Sandbox,
    dir: &Path,
    ca: &Path,
    resolve: &str,
    specs: &[String],
) -> Duration {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fabrik"));
    cmd.current_dir(dir)
        .env("COOLIFY_URL", &sandbox.coolify_url)
        .env("COOLIFY_TOKEN", &sandbox.config.coolify_token)
        .env("CLOUDFLARE_API_URL", &sandbox.cloudflare_url)
        .env("CLOUDFLARE_API_TOKEN", &sandbox.config.cloudflare_token)
        .env("FABRIK_CA_FILE", ca)
        .env("FABRIK_RESOLVE", resolve)
        .env("FABRIK_CACHE_DIR", dir.join("cache"))
        .args(["apply", "--parallel", "20"])
        .args(specs)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let started = Instant::now();
    let status = tokio::task::spawn_blocking(move || cmd.status().expect("runs"))
        .await
        .expect("joined");
    assert!(status.success(), "apply failed");
    started.elapsed()
}

/// Applies of `files`, one each: wall times (sorted), and the calls and dependent rounds
/// of the last one.
struct Measured {
    walls: Vec<Duration>,
    calls: usize,
    rounds: usize,
    mutating: usize,
}

async fn measure(
    sandbox: &Sandbox,
    dir: &Path,
    ca: &Path,
    resolve: &str,
    files: &[String],
) -> Measured {
    let mut measured = Measured {
        walls: Vec::new(),
        calls: 0,
        rounds: 0,
        mutating: 0,
    };
    for file in files {
        sandbox.coolify.faults.clear_calls();
        sandbox.cloudflare.faults.clear_calls();
        measured
            .walls
            .push(apply(sandbox, dir, ca, resolve, std::slice::from_ref(file)).await);
        let mut calls = sandbox.coolify.faults.calls();
        calls.extend(sandbox.cloudflare.faults.calls());
        measured.calls = calls.len();
        measured.mutating = calls.iter().filter(|c| c.is_mutating()).count();
        measured.rounds = rounds(&calls, LATENCY).len();
    }
    measured.walls.sort();
    measured
}

fn report(what: &str, m: &Measured, round_trip: Duration) {
    let median = m.walls[m.walls.len() / 2];
    let ideal = LATENCY * u32::try_from(m.rounds).unwrap_or(u32::MAX);
    let measured_limit = round_trip * u32::try_from(m.rounds).unwrap_or(u32::MAX);
    println!(
        "| {what}, wall (median of {}; min, max) | {} ms ({}, {}) |",
        m.walls.len(),
        ms(median),
        ms(m.walls[0]),
        ms(m.walls[m.walls.len() - 1])
    );
    println!(
        "| {what}, calls | {} ({} mutating) in {} dependent rounds |",
        m.calls, m.mutating, m.rounds
    );
    println!(
        "| {what} / (rounds × 50 ms = {} ms) | {:.2} |",
        ms(ideal),
        median.as_secs_f64() / ideal.as_secs_f64()
    );
    println!(
        "| {what} / (rounds × one measured round trip = {} ms) | {:.2} |",
        ms(measured_limit),
        median.as_secs_f64() / measured_limit.as_secs_f64()
    );
}

/// The median time of one call to the simulated Coolify under the injected latency, from
/// this process: what one dependent round costs at the least (the latency, the timer's
/// granularity, loopback HTTP).
async fn one_round_trip(sandbox: &Sandbox) -> Duration {
    let client = reqwest::Client::new();
    let url = format!("{}/version", sandbox.coolify_url);
    let mut samples = Vec::new();
    for _ in 0..21 {
        let started = Instant::now();
        client
            .get(&url)
            .bearer_auth(&sandbox.config.coolify_token)
            .send()
            .await
            .expect("a call");
        samples.push(started.elapsed());
    }
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.0}", d.as_secs_f64() * 1e3)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // What is measured is latency and rounds: the APIs' rate limits would add their own
    // waits (the `rate_limit` bench measures those).
    let sandbox = Sandbox::start(SandboxConfig {
        coolify_rate_limit: (0, Duration::from_secs(60)),
        cloudflare_rate_limit: (0, Duration::from_secs(300)),
        ..SandboxConfig::default()
    })
    .await
    .expect("sandbox");
    // Deployments finish at once: what is measured is the calls.
    sandbox.coolify.set_timing(Timing {
        queued: Duration::ZERO,
        building: Duration::ZERO,
        service_start: Duration::ZERO,
        service_degraded: Duration::ZERO,
        delete_delay: Duration::ZERO,
        service_deploy_answer: Duration::ZERO,
    });
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("fabrik.toml"),
        "[project]\nname = \"bench\"\n",
    )
    .expect("toml");
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, sandbox.ca.pem()).expect("ca");
    // app0..app4: fresh applies; app5..app24: one after another; app25..app44: together;
    // app45: warms the caches; app46..app57: six apps per state backend, never deployed
    // before (a fresh apply creates, it does not adopt what an earlier one made).
    let names: Vec<String> = (0..58).map(|i| format!("app{i}")).collect();
    let resolve = names
        .iter()
        .map(|n| format!("{n}.example.com:443:{}", sandbox.app_addr))
        .collect::<Vec<_>>()
        .join(",");
    let files: Vec<String> = names.iter().map(|n| spec(dir.path(), n)).collect();
    // Warm the component cache and the secrets so that both runs below pay the same.
    apply(&sandbox, dir.path(), &ca, &resolve, &files[45..46]).await;
    sandbox.coolify.faults.set_latency(LATENCY);
    sandbox.cloudflare.faults.set_latency(LATENCY);

    let round_trip = one_round_trip(&sandbox).await;
    println!("| measurement | result |");
    println!("|---|---|");
    println!(
        "| one call to the simulator under 50 ms latency (median of 21) | {:.1} ms |",
        round_trip.as_secs_f64() * 1e3
    );
    // Five fresh apps, one apply each, then an update of each (one env value changed):
    // the median wall time against the dependent rounds the calls needed.
    let fresh = measure(&sandbox, dir.path(), &ca, &resolve, &files[0..5]).await;
    report("fresh apply", &fresh, round_trip);
    for (name, file) in names[0..5].iter().zip(&files[0..5]) {
        let text = std::fs::read_to_string(dir.path().join(file)).expect("spec");
        std::fs::write(
            dir.path().join(file),
            text.replace("LOG_LEVEL: info", "LOG_LEVEL: debug"),
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let update = measure(&sandbox, dir.path(), &ca, &resolve, &files[0..5]).await;
    report("update (one env value)", &update, round_trip);

    let mut noop = Vec::new();
    let before = counts(&sandbox);
    for _ in 0..5 {
        noop.push(apply(&sandbox, dir.path(), &ca, &resolve, &files[0..1]).await);
    }
    let after = counts(&sandbox);
    noop.sort();
    println!("| no-op apply, wall (median of 5) | {} ms |", ms(noop[2]));
    println!(
        "| no-op apply, calls (each) | {} reads for 2 resources, {} mutating |",
        ((after.0 + after.1) - (before.0 + before.1)) / 5,
        (after.2 - before.2) / 5
    );

    let started = Instant::now();
    for file in &files[5..25] {
        apply(
            &sandbox,
            dir.path(),
            &ca,
            &resolve,
            std::slice::from_ref(file),
        )
        .await;
    }
    let serial = started.elapsed();
    let parallel = apply(&sandbox, dir.path(), &ca, &resolve, &files[25..45]).await;
    println!(
        "| 20 apps, 20 applies one after another | {} ms |",
        ms(serial)
    );
    println!(
        "| 20 apps, one apply (`--parallel 20`) | {} ms |",
        ms(parallel)
    );
    println!(
        "| speed-up | {:.1}× |",
        serial.as_secs_f64() / parallel.as_secs_f64()
    );

    if let Ok(url) = std::env::var("FABRIK_TEST_POSTGRES_URL") {
        sandbox.coolify.faults.set_latency(Duration::ZERO);
        sandbox.cloudflare.faults.set_latency(Duration::ZERO);
        println!();
        println!(
            "| state backend (no API latency) | fresh apply, median of 5 | no-op apply, median of 9 |"
        );
        println!("|---|---|---|");
        let mut noops = Vec::new();
        for (n, backend) in ["sqlite", "postgres"].into_iter().enumerate() {
            let own = &names[46 + 6 * n..52 + 6 * n];
            let project = tempfile::tempdir().expect("tempdir");
            let mut toml = "[project]\nname = \"bench\"\n".to_owned();
            if backend == "postgres" {
                let mut suffix = [0u8; 4];
                getrandom::fill(&mut suffix).expect("random");
                toml.push_str(&format!(
                    "\n[state]\nbackend = \"postgres\"\nschema = \"bench_{}\"\n",
                    hex::encode(suffix)
                ));
                std::fs::write(
                    project.path().join(".env"),
                    format!("FABRIK_STATE_URL=\"{url}\"\n"),
                )
                .expect(".env");
            }
            std::fs::write(project.path().join("fabrik.toml"), toml).expect("toml");
            let files: Vec<String> = own.iter().map(|n| spec(project.path(), n)).collect();
            // Warm the component cache, the secrets and the schema.
            apply(&sandbox, project.path(), &ca, &resolve, &files[5..6]).await;
            let mut fresh = Vec::new();
            for file in &files[0..5] {
                fresh.push(
                    apply(
                        &sandbox,
                        project.path(),
                        &ca,
                        &resolve,
                        std::slice::from_ref(file),
                    )
                    .await,
                );
            }
            fresh.sort();
            let mut noop = Vec::new();
            for _ in 0..9 {
                noop.push(apply(&sandbox, project.path(), &ca, &resolve, &files[0..1]).await);
            }
            noop.sort();
            println!("| {backend} | {} ms | {} ms |", ms(fresh[2]), ms(noop[4]));
            noops.push(noop[4]);
        }
        println!(
            "| no-op, PostgreSQL over SQLite | | {:+.1} ms |",
            (noops[1].as_secs_f64() - noops[0].as_secs_f64()) * 1e3
        );
    }
}

//! The APIs' rate limits: many apps in one apply share one request budget per API and
//! wait out a 429 instead of failing (issue 23). The simulators enforce the limits as
//! the servers do (`fabrik_sim::ratelimit`); here they are made small, so that a few apps
//! spend several windows in seconds.

use std::time::{Duration, Instant};

use crate::deploy::{World, assert_no_secret, text};

/// `n` specs named `app1`…, each on its own domain, and the resolve overrides for them.
fn specs(world: &World, n: usize) -> (Vec<std::path::PathBuf>, String) {
    let mut resolve = world.source_overrides();
    let mut specs = Vec::new();
    for i in 1..=n {
        let name = format!("app{i}");
        let domain = format!("{name}.example.com");
        resolve.push(format!("{domain}:443:{}", world.sandbox.app_addr));
        specs.push(world.spec(&format!("{name}.yaml"), |t| {
            t.replace("name: test-api", &format!("name: {name}"))
                .replace("domain: api.example.com", &format!("domain: {domain}"))
        }));
    }
    (specs, resolve.join(","))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_apps_under_small_rate_limits_all_complete_and_no_429_fails_a_run() {
    let world = World::start().await;
    let coolify_limit = 25;
    world
        .sandbox
        .coolify
        .rate_limit
        .set(coolify_limit, Duration::from_secs(5));
    world
        .sandbox
        .cloudflare
        .rate_limit
        .set(8, Duration::from_secs(4));
    let (specs, resolve) = specs(&world, 6);
    let mut cmd = world.fabrik();
    // `-vv`: the pacing's debug lines (waits, deferrals, resends) are output too.
    cmd.env("FABRIK_RESOLVE", resolve)
        .args(["-vv", "apply", "--deploy-timeout", "60", "--parallel", "6"])
        .args(&specs);
    let started = Instant::now();
    let output = World::output(cmd).await;
    let wall = started.elapsed();
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    for i in 1..=6 {
        assert!(
            stdout.contains(&format!(
                "app{i}: COMPLETE https://app{i}.example.com/health"
            )),
            "{stdout}"
        );
    }
    // The limits were binding: the apply needed several windows of each API.
    let coolify = world.sandbox.coolify.rate_limit.served();
    let cloudflare = world.sandbox.cloudflare.rate_limit.served();
    eprintln!(
        "served {coolify} Coolify (refused {}), {cloudflare} Cloudflare (refused {}) in {wall:?}",
        world.sandbox.coolify.rate_limit.refused(),
        world.sandbox.cloudflare.rate_limit.refused()
    );
    assert!(
        coolify > 2 * u64::from(coolify_limit),
        "{coolify} Coolify requests did not need three windows"
    );
    assert!(cloudflare > 16, "{cloudflare} Cloudflare requests");
    assert!(
        wall >= Duration::from_secs(8),
        "{wall:?}: three windows of Coolify's limit cannot pass sooner"
    );
    // Pacing kept the 429s to about one per window where the server does not say when
    // its window ends (Laravel's headers do not), and to the first wave where it does
    // (Cloudflare's); none cost a run.
    let windows = coolify / u64::from(coolify_limit) + 1;
    let refused = world.sandbox.coolify.rate_limit.refused();
    assert!(
        refused <= windows + 2,
        "{refused} Coolify requests refused with 429 in {windows} windows: the apply did not pace itself"
    );
    // Before any answer told its real limit, the first wave went out under the
    // declared one (1,200): 12 requests against a window of 8, 4 of them refused; after
    // that, at most one per window.
    let refused = world.sandbox.cloudflare.rate_limit.refused();
    let windows = cloudflare / 8 + 1;
    assert!(
        refused <= 4 + windows,
        "{refused} Cloudflare requests refused with 429 in {windows} windows: the apply did not pace itself"
    );
    assert!(!stdout.contains("FAILED") && !stderr.contains("FAILED"));
    assert_no_secret(&world, &[("stdout", &stdout), ("stderr", &stderr)]);
    let status = world.run(&["status", "--output", "json"]).await;
    let (status_out, status_err) = text(&status);
    assert_eq!(
        status_out
            .lines()
            .filter(|line| line.ends_with("\"state\":\"COMPLETE\"}"))
            .count(),
        6,
        "{status_out}\n{status_err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_is_waited_out_within_the_deadline_instead_of_failing_the_run() {
    let world = World::start().await;
    // Far fewer requests than one apply makes per window: the run must wait for the
    // window to end again and again, each time told by a 429's Retry-After.
    world
        .sandbox
        .coolify
        .rate_limit
        .set(4, Duration::from_secs(2));
    let spec = world.spec("app.yaml", |t| t);
    let output = world.apply(&spec, &[]).await;
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("COMPLETE"), "{stdout}");
    assert!(
        world.sandbox.coolify.rate_limit.served() > 8,
        "the apply fit in two windows: the test proves nothing"
    );
}

//! Monitors (issue 25): with `[providers.monitor]` (the bundled Uptime Kuma provider) a
//! spec's `monitor:` becomes an Uptime Kuma monitor of its health URL, made once the app
//! is verified, paused while a deploy of the app runs, repaired when edited by hand,
//! removed by `destroy`, restored by a rollback per `rollback.monitors`.

use serde_json::Value;

use crate::deploy::{World, text};

/// The world with the monitor role configured (its provider's settings come from the
/// sandbox's variables) and the fixture asking for a monitor, then `edit`.
fn monitored(world: &World, file: &str, edit: impl Fn(String) -> String) -> std::path::PathBuf {
    std::fs::write(
        world.dir.path().join("fabrik.toml"),
        "[project]\nname = \"acme\"\n\n[providers.monitor]\n",
    )
    .expect("fabrik.toml");
    world.spec(file, |s| edit(format!("{s}monitor:\n  interval: 60\n")))
}

/// The simulator's monitors named `name`.
fn monitors_named(world: &World, name: &str) -> Vec<Value> {
    world
        .sandbox
        .uptime_kuma
        .monitors()
        .into_values()
        .filter(|m| m["name"] == name)
        .collect()
}

fn the_monitor(world: &World) -> Value {
    let found = monitors_named(world, "test-api");
    assert_eq!(found.len(), 1, "{found:?}");
    found[0].clone()
}

async fn metrics(world: &World) -> String {
    let (user, password) = &world.sandbox.config.uptime_kuma_user;
    reqwest::Client::new()
        .get(format!("{}/metrics", world.sandbox.uptime_kuma_url))
        .basic_auth(user, Some(password))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_monitor_watches_the_verified_app_pauses_for_its_deploys_and_goes_with_it() {
    let world = World::start().await;
    let spec = monitored(&world, "app.yaml", |s| s);
    let kuma = world.sandbox.uptime_kuma.clone();

    let plan = world.run(&["plan", spec.to_str().expect("utf-8")]).await;
    let (stdout, stderr) = text(&plan);
    assert!(
        stdout.contains("monitor test-api: checks https://api.example.com/health every 60 s"),
        "{stdout}{stderr}"
    );

    let first = world.apply(&spec, &[]).await;
    let (stdout, stderr) = text(&first);
    assert_eq!(first.status.code(), Some(0), "{stdout}{stderr}");
    let monitor = the_monitor(&world);
    assert_eq!(monitor["description"], "fabrik:acme/test-api");
    assert_eq!(monitor["url"], "https://api.example.com/health");
    assert_eq!(monitor["interval"], 60);
    assert_eq!(monitor["active"], true);
    assert_eq!(monitor["accepted_statuscodes"], serde_json::json!(["200"]));
    let id = monitor["id"].as_u64().expect("id");
    // What the host sent and the provider reported are what the guide documents.
    let store =
        fabrik_engine::store::Store::open(&fabrik_engine::store::default_path(world.dir.path()))
            .expect("state");
    let deployment = futures::executor::block_on(store.deployment("acme", "test-api"))
        .expect("read")
        .expect("deployed");
    let rows = futures::executor::block_on(store.resources(deployment.id)).expect("rows");
    let row = rows
        .iter()
        .find(|r| r.kind == "monitor")
        .expect("the monitor is tracked");
    let desired = row.desired.clone().expect("desired");
    let problems = crate::schemas::schema_problems("monitor.desired.json", &desired);
    assert!(problems.is_empty(), "{problems:?} in {desired}");
    let outputs = row.outputs.clone().expect("outputs");
    let problems = crate::schemas::schema_problems("monitor.outputs.json", &outputs);
    assert!(problems.is_empty(), "{problems:?} in {outputs}");
    drop(store);
    assert!(
        metrics(&world).await.contains("monitor_name=\"test-api\""),
        "{}",
        metrics(&world).await
    );
    // A deploy that finds its app's monitor missing creates it: never paused here.
    assert_eq!(kuma.calls_of("pauseMonitor"), 0);

    // The same spec: nothing sent.
    let (adds, edits) = (kuma.calls_of("add"), kuma.calls_of("editMonitor"));
    let again = world.apply(&spec, &[]).await;
    assert!(
        text(&again).0.contains("(no changes)"),
        "{:?}",
        text(&again)
    );
    assert_eq!(
        (kuma.calls_of("add"), kuma.calls_of("editMonitor")),
        (adds, edits)
    );

    // A new version is deployed with the monitor paused, then resumed once verified.
    let changed = monitored(&world, "app.yaml", |s| {
        s.replace("LOG_LEVEL: info", "LOG_LEVEL: debug")
    });
    let deployed = world.apply(&changed, &[]).await;
    let (stdout, stderr) = text(&deployed);
    assert_eq!(deployed.status.code(), Some(0), "{stdout}{stderr}");
    assert_eq!(kuma.calls_of("pauseMonitor"), 1, "{stdout}{stderr}");
    assert_eq!(kuma.calls_of("resumeMonitor"), 1, "{stdout}{stderr}");
    assert_eq!(the_monitor(&world)["active"], true);
    assert_eq!(the_monitor(&world)["id"], id, "the same monitor");

    // Edited by hand: repaired by the next apply.
    kuma.edit_by_hand(id, "interval", serde_json::json!(300));
    let repaired = world.apply(&changed, &[]).await;
    let (stdout, stderr) = text(&repaired);
    assert_eq!(repaired.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stderr.contains("monitor test-api: interval: 300 → 60")
            || stdout.contains("monitor test-api: interval: 300 → 60"),
        "{stdout}{stderr}"
    );
    assert_eq!(the_monitor(&world)["interval"], 60);

    // Deleted by hand: made again.
    kuma.delete_by_hand(id);
    let remade = world.apply(&changed, &[]).await;
    assert_eq!(remade.status.code(), Some(0), "{:?}", text(&remade));
    assert_eq!(monitors_named(&world, "test-api").len(), 1);

    // `status` lists it; `destroy` removes it.
    let status = world.run(&["status"]).await;
    assert!(
        text(&status)
            .0
            .contains("monitor monitor test-api [created]"),
        "{:?}",
        text(&status)
    );
    let destroyed = world.run(&["destroy", "test-api", "--yes"]).await;
    assert_eq!(destroyed.status.code(), Some(0), "{:?}", text(&destroyed));
    assert!(monitors_named(&world, "test-api").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_deploy_resumes_the_monitor_it_paused_and_a_broken_app_gets_none() {
    let world = World::start().await;
    // A first deploy that fails its health check makes no monitor.
    let bad = world.bad_spec(500, |s| format!("{s}monitor: {{}}\n"));
    std::fs::write(
        world.dir.path().join("fabrik.toml"),
        "[project]\nname = \"acme\"\n\n[providers.monitor]\n",
    )
    .expect("fabrik.toml");
    let failed = world.apply(&bad, &[]).await;
    assert_eq!(failed.status.code(), Some(1), "{:?}", text(&failed));
    assert!(world.sandbox.uptime_kuma.monitors().is_empty());

    // A healthy app with its monitor, then a version that fails: the rollback resumes it.
    let spec = monitored(&world, "app.yaml", |s| s);
    let first = world.apply(&spec, &[]).await;
    assert_eq!(first.status.code(), Some(0), "{:?}", text(&first));
    world
        .sandbox
        .app
        .set("api.example.com", fabrik_sim::app::Behaviour::Fail(503));
    let broken = monitored(&world, "app.yaml", |s| {
        s.replace("LOG_LEVEL: info", "LOG_LEVEL: debug")
            .replace("timeout: 30", "timeout: 2")
    });
    let failed = world.apply(&broken, &[]).await;
    let (stdout, stderr) = text(&failed);
    assert_eq!(failed.status.code(), Some(1), "{stdout}{stderr}");
    assert_eq!(world.sandbox.uptime_kuma.calls_of("pauseMonitor"), 1);
    assert!(
        stdout.contains("undone: restored monitor test-api"),
        "{stdout}"
    );
    assert_eq!(the_monitor(&world)["active"], true, "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spec_asking_for_a_monitor_needs_the_role() {
    let world = World::start().await;
    let spec = world.spec("app.yaml", |s| format!("{s}monitor: {{}}\n"));
    let refused = world.apply(&spec, &[]).await;
    let (stdout, stderr) = text(&refused);
    assert_eq!(refused.status.code(), Some(2), "{stdout}{stderr}");
    assert!(
        stderr.contains("configures no monitor provider"),
        "{stderr}"
    );
    assert_eq!(world.mutating_calls(), 0);
}

/// A monitor whose state was lost is an orphan `gc` finds and removes, like the app's
/// other resources.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_finds_and_collects_a_monitor_the_state_lost() {
    let world = World::start().await;
    let spec = monitored(&world, "app.yaml", |s| s);
    assert_eq!(world.apply(&spec, &[]).await.status.code(), Some(0));
    std::fs::remove_dir_all(world.dir.path().join(".fabrik")).expect("remove the state");
    let found = world.run(&["gc", "--output", "json"]).await;
    let (stdout, stderr) = text(&found);
    assert_eq!(found.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stdout
            .lines()
            .any(|l| l.contains("\"role\":\"monitor\"") && l.contains("\"name\":\"test-api\"")),
        "{stdout}"
    );
    let collected = world.run(&["gc", "--delete", "--yes"]).await;
    assert_eq!(collected.status.code(), Some(0), "{:?}", text(&collected));
    assert!(monitors_named(&world, "test-api").is_empty());
}

/// Uptime Kuma failing once the app is verified does not roll the app back: the run is
/// COMPLETE with a warning, and the next apply makes the monitor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_monitoring_outage_never_rolls_back_a_verified_app() {
    let world = World::start().await;
    let spec = monitored(&world, "app.yaml", |s| s);
    world.sandbox.uptime_kuma.refuse("add");
    let applied = world.apply(&spec, &[]).await;
    let (stdout, stderr) = text(&applied);
    assert_eq!(applied.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("test-api: COMPLETE"), "{stdout}");
    assert!(
        stdout.contains(
            "the app is deployed and verified, but monitor test-api could not be made or resumed"
        ),
        "{stdout}{stderr}"
    );
    assert!(world.sandbox.uptime_kuma.monitors().is_empty());
    world.sandbox.uptime_kuma.accept_again();
    let again = world.apply(&spec, &[]).await;
    let (stdout, stderr) = text(&again);
    assert_eq!(again.status.code(), Some(0), "{stdout}{stderr}");
    assert_eq!(
        monitors_named(&world, "test-api").len(),
        1,
        "{stdout}{stderr}"
    );
    // And the state is clean: the next apply changes nothing.
    let third = world.apply(&spec, &[]).await;
    assert!(
        text(&third).0.contains("(no changes)"),
        "{:?}",
        text(&third)
    );
    // The Uptime Kuma password is in no output and not in the state.
    let password = world.sandbox.config.uptime_kuma_user.1.as_str();
    for output in [&applied, &again, &third] {
        let (stdout, stderr) = text(output);
        assert!(!stdout.contains(password) && !stderr.contains(password));
    }
    let state = std::fs::read(fabrik_engine::store::default_path(world.dir.path())).expect("state");
    assert!(!String::from_utf8_lossy(&state).contains(password));
}

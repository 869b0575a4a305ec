//! What people read, under review: the plan, an apply's summary and failure summaries,
//! as snapshots (insta). A change to any of them shows as a diff of the snapshot in
//! `tests/e2e/snapshots/`, to be accepted on purpose (`cargo insta review`).
//! Temporary paths, ports, ids and timings are replaced by placeholders.

use crate::deploy::World;

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Snapshot settings: the filters that make output reproducible.
fn settings(world: &World) -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    let dir = world.dir.path().display().to_string();
    settings.add_filter(&regex_escape(&dir), "[project]");
    settings.add_filter(r"127\.0\.0\.1:\d+", "127.0.0.1:[port]");
    settings.add_filter(r"\b[0-9a-z]{24}\b", "[uuid]");
    settings.add_filter(r"\b[0-9a-f]{32}/[0-9a-f]{32}\b", "[zone]/[record]");
    settings.add_filter(r"\d+\.\d+ s\b", "[secs] s");
    settings.add_filter(
        r"after \d+ attempts? in \d+ s",
        "after [n] attempts in [n] s",
    );
    settings.set_snapshot_path("snapshots");
    settings.set_prepend_module_to_snapshot(false);
    settings
}

fn regex_escape(text: &str) -> String {
    text.chars()
        .map(|c| {
            if "\\.+*?()|[]{}^$".contains(c) {
                format!("\\{c}")
            } else {
                c.to_string()
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plan_and_the_summaries_people_read() {
    let world = World::start().await;
    let spec = world.spec("app.yaml", |t| t);
    let spec_arg = spec.to_str().expect("utf-8");
    let settings = settings(&world);

    let fresh = stdout(&world.run(&["plan", spec_arg]).await);
    let applied = stdout(&world.apply(&spec, &[]).await);
    let unchanged = stdout(&world.run(&["plan", spec_arg]).await);
    let noop = stdout(&world.apply(&spec, &[]).await);
    world.spec("app.yaml", |t| {
        t.replace("LOG_LEVEL: info", "LOG_LEVEL: debug")
    });
    let changed = stdout(&world.run(&["plan", spec_arg]).await);

    // A dead Coolify: nothing changed; a failing health check: undone and left.
    let mut dead = world.command(&spec);
    dead.env("COOLIFY_URL", "http://127.0.0.1:9/api/v1");
    let dead = stdout(
        &tokio::task::spawn_blocking(move || dead.output().expect("runs"))
            .await
            .expect("joined"),
    );
    let bad = world.bad_spec(500, |t| t);
    let unhealthy = stdout(&world.apply(&bad, &[]).await);

    // Nothing people read carries a secret value (the app's, generated or not, or a token).
    crate::deploy::assert_no_secret(
        &world,
        &[
            ("plan", &fresh),
            ("apply", &applied),
            ("plan, unchanged", &unchanged),
            ("no-op", &noop),
            ("plan, changed", &changed),
            ("dead Coolify", &dead),
            ("failing health check", &unhealthy),
        ],
    );
    settings.bind(|| {
        insta::assert_snapshot!("plan_fresh", fresh);
        insta::assert_snapshot!("apply_summary", applied);
        insta::assert_snapshot!("plan_unchanged", unchanged);
        insta::assert_snapshot!("apply_no_changes", noop);
        insta::assert_snapshot!("plan_changed", changed);
        insta::assert_snapshot!("failure_nothing_changed", dead);
        insta::assert_snapshot!("failure_undone_and_left", unhealthy);
    });
}

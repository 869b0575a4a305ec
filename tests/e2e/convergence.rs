//! After a COMPLETE apply the live world is what the spec says, whatever came before: a
//! destroy, an edit made by hand, a create that failed half-way.

use fabrik_sim::coolify::Kind;
use fabrik_sim::faults::Fault;

use crate::deploy::{World, text};

/// Applies `spec` and fails the test unless it completes.
async fn complete(world: &World, spec: &std::path::Path) -> String {
    let output = world.apply(spec, &[]).await;
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains(": COMPLETE"), "{stdout}\n{stderr}");
    stdout + &stderr
}

/// `plan --detailed-exitcode` says there is nothing to do.
async fn plan_is_clean(world: &World, spec: &std::path::Path) {
    let spec = spec.to_str().expect("utf-8 path");
    let output = world.run(&["plan", "--detailed-exitcode", spec]).await;
    let (stdout, stderr) = text(&output);
    assert_eq!(
        output.status.code(),
        Some(0),
        "plan after COMPLETE:\n{stdout}\n{stderr}"
    );
}

fn docker_image(text: String) -> String {
    text.replace("template: python-api", "template: docker-image")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destroy_then_apply_deploys_the_app_again() {
    let world = World::start().await;
    let spec = world.spec("app.yaml", |t| t);
    complete(&world, &spec).await;
    let destroyed = world.run(&["destroy", "test-api", "--yes"]).await;
    let (stdout, stderr) = text(&destroyed);
    assert_eq!(destroyed.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("data volumes were kept") && stderr.contains("--purge"),
        "destroy says what it kept: {stderr}"
    );
    assert!(
        !world.sandbox.coolify.deletions()[0].delete_volumes,
        "volumes kept without --purge"
    );
    let status = world.run(&["status", "test-api"]).await;
    assert!(
        text(&status).0.contains("DESTROYED"),
        "status no longer says COMPLETE: {}",
        text(&status).0
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(world.sandbox.coolify.resources().is_empty());

    let again = complete(&world, &spec).await;
    assert!(!again.contains("no changes"), "{again}");
    assert_eq!(world.sandbox.coolify.resources().len(), 1, "deployed again");
    assert_eq!(world.sandbox.cloudflare.records().len(), 1);
    plan_is_clean(&world, &spec).await;

    let purged = world
        .run(&["destroy", "test-api", "--yes", "--purge"])
        .await;
    assert_eq!(purged.status.code(), Some(0), "{}", text(&purged).1);
    assert!(
        world
            .sandbox
            .coolify
            .deletions()
            .last()
            .expect("deleted")
            .delete_volumes,
        "--purge deletes the data too"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_made_by_hand_are_found_and_repaired() {
    let world = World::start().await;
    let spec = world.spec("app.yaml", docker_image);
    complete(&world, &spec).await;
    let sim = &world.sandbox.coolify;
    let uuid = sim.resources()[0].1.clone();
    assert_eq!(sim.resources()[0].0, Kind::Application);

    // The record's content, changed in Cloudflare's dashboard.
    world
        .sandbox
        .cloudflare
        .edit_content("api.example.com", "198.51.100.9");
    let repaired = complete(&world, &spec).await;
    assert!(
        repaired.contains("drift: dns-record api.example.com: content is \"198.51.100.9\""),
        "{repaired}"
    );
    assert_eq!(
        world.sandbox.cloudflare.records()[0]["content"],
        "127.0.0.1"
    );
    plan_is_clean(&world, &spec).await;

    // An env value and an extra variable, set in Coolify's UI.
    sim.edit_env(&uuid, "LOG_LEVEL", "trace");
    sim.edit_env(&uuid, "ADDED_BY_HAND", "1");
    let repaired = complete(&world, &spec).await;
    assert!(repaired.contains("env.LOG_LEVEL"), "{repaired}");
    let env = sim.env_of(&uuid);
    assert!(
        env.contains(&("LOG_LEVEL".to_owned(), "info".to_owned())),
        "{env:?}"
    );
    assert!(!env.iter().any(|(k, _)| k == "ADDED_BY_HAND"), "{env:?}");

    // A secret changed by hand: repaired, and its values never printed.
    sim.edit_env(&uuid, "DATABASE_URL", "postgres://hand:edited-pw-55@x/y");
    let repaired = complete(&world, &spec).await;
    assert!(repaired.contains("env.DATABASE_URL differs"), "{repaired}");
    assert!(
        !repaired.contains("edited-pw-55") && !repaired.contains("pw-9f8e7d6c5b4a"),
        "{repaired}"
    );

    // The image, changed in Coolify's UI.
    sim.edit_image(&uuid, "ghcr.io/acme/test-api", "0.9");
    complete(&world, &spec).await;
    // The spec's tag, as the digest it resolved to.
    let digest = world
        .sandbox
        .app
        .sources
        .image_digest("ghcr.io/acme/test-api", "1.4");
    assert_eq!(
        sim.deployed_image(&uuid),
        Some(format!("ghcr.io/acme/test-api@{digest}")),
        "the spec's image runs again"
    );

    // The whole application, deleted in Coolify's UI.
    sim.remove_by_hand(&uuid);
    complete(&world, &spec).await;
    assert_eq!(sim.resources().len(), 1, "created again");
    plan_is_clean(&world, &spec).await;
    let again = complete(&world, &spec).await;
    assert!(again.contains("no changes"), "{again}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_that_fails_after_the_resource_exists_is_rolled_back() {
    let world = World::start().await;
    // Every env sync is refused: the service exists, its create did not finish.
    world.sandbox.coolify.faults.always(
        "coolify.bulk_envs",
        Fault::Status {
            status: 422,
            retry_after: None,
        },
    );
    let spec = world.spec("app.yaml", |t| t);
    let output = world.apply(&spec, &["--no-rollback"]).await;
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    let uuid = world.sandbox.coolify.resources()[0].1.clone();
    assert!(
        stdout.contains(&uuid),
        "the summary names what was left: {stdout}\n{stderr}"
    );
    world.sandbox.coolify.faults.clear();
    let destroyed = world.run(&["destroy", "test-api", "--yes"]).await;
    assert_eq!(destroyed.status.code(), Some(0), "{}", text(&destroyed).1);
    assert!(
        world
            .sandbox
            .coolify
            .deletions()
            .iter()
            .any(|d| d.uuid == uuid),
        "destroy knows the half-created service"
    );

    // With rollback, the run deletes it itself.
    let world = World::start().await;
    world.sandbox.coolify.faults.always(
        "coolify.bulk_envs",
        Fault::Status {
            status: 422,
            retry_after: None,
        },
    );
    let spec = world.spec("app.yaml", |t| t);
    let output = world.apply(&spec, &[]).await;
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("deleted service test-api"),
        "{stdout}\n{stderr}"
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(world.sandbox.coolify.resources().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_does_what_plan_said() {
    let world = World::start().await;
    let spec = world.spec("app.yaml", |t| t);
    complete(&world, &spec).await;
    // Only the health check changes: both resources stay as they are.
    let changed = world.spec("app.yaml", |t| t.replace("timeout: 30", "timeout: 20"));
    let plan = world.run(&["plan", changed.to_str().expect("utf-8")]).await;
    let (plan_out, _) = text(&plan);
    assert!(
        plan_out.contains("= dns-record api.example.com"),
        "{plan_out}"
    );
    let applied = complete(&world, &changed).await;
    assert!(
        applied.contains("unchanged dns-record api.example.com"),
        "{applied}"
    );
    assert!(!applied.contains("updated dns-record"), "{applied}");
    plan_is_clean(&world, &changed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_required_secret_that_is_missing_stops_everything_before_it_starts() {
    let world = World::start().await;
    let spec = world.spec("app.yaml", |t| {
        t.replace(
            "secrets: [DATABASE_URL, API_KEY]",
            "secrets: [API_KEY, {name: SMTP_URL, generate: false}]",
        )
    });
    let spec_arg = spec.to_str().expect("utf-8");
    let plan = world.run(&["plan", spec_arg]).await;
    let (plan_out, _) = text(&plan);
    assert!(
        plan_out.contains("secret API_KEY: will be generated"),
        "{plan_out}"
    );
    assert!(
        plan_out.contains("secret SMTP_URL: required and not set"),
        "{plan_out}"
    );

    let output = world.apply(&spec, &[]).await;
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(2), "{stdout}\n{stderr}");
    assert!(stderr.contains("required secret SMTP_URL"), "{stderr}");
    assert_eq!(world.mutating_calls(), 0);
    assert!(
        !world.dir.path().join(".env").exists(),
        "API_KEY was not generated either"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manual_rollback_of_an_update_names_the_command_that_restores_it() {
    let world = World::start().await;
    let spec = world.bad_spec(200, |t| t);
    complete(&world, &spec).await;
    // The next version fails its health check; the manual policy leaves the update.
    world
        .sandbox
        .app
        .set("bad.example.com", fabrik_sim::app::Behaviour::Fail(503));
    let broken = world.bad_spec(503, |t| {
        t.replace("coolify: auto", "coolify: manual")
            .replace("LOG_LEVEL: info", "LOG_LEVEL: debug")
    });
    let output = world.apply(&broken, &[]).await;
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains("`fabrik rollback bad-api`"), "{stdout}");
    assert!(
        !stdout.contains("fabrik destroy"),
        "destroy would delete the whole app: {stdout}"
    );
    // And the command does what it says: the last completed version is live again.
    world
        .sandbox
        .app
        .set("bad.example.com", fabrik_sim::app::Behaviour::Fail(200));
    let restored = world
        .run(&["rollback", "bad-api", "--deploy-timeout", "20"])
        .await;
    let (stdout, stderr) = text(&restored);
    assert_eq!(restored.status.code(), Some(0), "{stdout}\n{stderr}");
    let uuid = world.sandbox.coolify.resources()[0].1.clone();
    assert!(
        world
            .sandbox
            .coolify
            .env_of(&uuid)
            .contains(&("LOG_LEVEL".to_owned(), "info".to_owned())),
        "the update was undone"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_server_address_is_followed_and_a_move_is_refused_before_any_change() {
    let world = World::start().await;
    let spec = world.spec("app.yaml", |t| t);
    complete(&world, &spec).await;
    // The server's address changed: an unchanged spec is not "no changes".
    world.sandbox.coolify.set_server_ip("vps1", "127.0.0.2");
    let followed = complete(&world, &spec).await;
    assert!(
        followed.contains("content is \"127.0.0.1\", the spec says \"127.0.0.2\""),
        "{followed}"
    );
    assert_eq!(
        world.sandbox.cloudflare.records()[0]["content"],
        "127.0.0.2"
    );
    // A second destination on the server does not block an app that already exists.
    world.sandbox.coolify.add_destination("vps1", "apps");
    let changed = world.spec("app.yaml", |t| {
        t.replace("LOG_LEVEL: info", "LOG_LEVEL: warn")
    });
    complete(&world, &changed).await;
    // Moving the app to another Coolify project is refused before anything changes.
    let before = world.mutating_calls();
    let moved = world.spec("app.yaml", |t| {
        t.replace("LOG_LEVEL: info", "LOG_LEVEL: warn")
            .replace("project: fabrik-tests", "project: elsewhere")
    });
    let output = world.apply(&moved, &[]).await;
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("moving it to `elsewhere` is not supported"),
        "{stdout}"
    );
    assert_eq!(world.mutating_calls(), before, "nothing changed");
}

#[test]
fn the_gate_command_path_works() {
    crate::support::fabrik()
        .args(["apply", "--dry-run", "tests/fixtures/test-api.yaml"])
        .assert()
        .code(0);
}

//! `fabrik apply` against simulators that enforce the real servers' rules: what the
//! OpenAPI documents allow but Coolify or Cloudflare refuse.

use crate::deploy::{World, text};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_project_name_still_fits_a_free_zones_comment() {
    let world = World::start().await;
    let project = "the-platform-team-of-a-rather-large-company-and-its-many-services-2026";
    std::fs::write(
        world.dir.path().join("fabrik.toml"),
        format!("[project]\nname = \"{project}\"\n"),
    )
    .expect("fabrik.toml");
    let spec = world.spec("app.yaml", |t| {
        t.replace("name: test-api", "name: test-api-with-a-long-enough-name")
    });
    let output = world.apply(&spec, &[]).await;
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    let records = world.sandbox.cloudflare.records();
    let comment = records[0]["comment"].as_str().expect("a comment");
    assert!(
        comment.len() <= 100,
        "{comment} has {} characters",
        comment.len()
    );
    assert!(comment.starts_with("fabrik:the-platform-team"), "{comment}");
    assert!(
        comment.ends_with("/test-api-with-a-long-enough-name"),
        "{comment}"
    );
    let resources = world.sandbox.coolify.resources();
    assert_eq!(resources[0].3, comment, "one owner tag for both providers");

    let again = world.apply(&spec, &[]).await;
    let (stdout, stderr) = text(&again);
    assert!(
        stdout.contains("(no changes)"),
        "the tag is stable: {stdout}\n{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_with_several_destinations_needs_one_named_before_anything_changes() {
    let world = World::start().await;
    world.sandbox.coolify.add_destination("vps1", "apps");
    let spec = world.spec("app.yaml", |t| t);
    let output = world.apply(&spec, &[]).await;
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("several destinations") && stdout.contains("vps1-apps"),
        "the destinations are listed: {stdout}\n{stderr}"
    );
    assert_eq!(world.mutating_calls(), 0, "nothing changed anywhere");

    let named = world.spec("app.yaml", |t| {
        t.replace(
            "  environment: production\n",
            "  environment: production\n  destination: vps1-apps\n",
        )
    });
    let output = world.apply(&named, &[]).await;
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
}

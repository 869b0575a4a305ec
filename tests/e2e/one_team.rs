//! Two Fabrik projects (two repositories, two `fabrik.toml`s) in one Coolify team, each
//! with an app named `api` (issue 23): Coolify's names are not unique, so each project
//! looks for its app only in the Coolify project and environment its spec names.

use crate::deploy::{World, text};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_projects_each_with_an_app_named_api_share_one_coolify_team() {
    let world = World::start().await;
    let shop = world.spec("api.yaml", |t| {
        t.replace("project: fabrik-tests", "project: shop")
            .replace("name: test-api", "name: api")
    });
    let blog_dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        blog_dir.path().join("fabrik.toml"),
        "[project]\nname = \"blog\"\n",
    )
    .expect("fabrik.toml");
    let text_of_blog =
        std::fs::read_to_string(crate::support::root().join("fixtures/test-api.yaml"))
            .expect("fixture")
            .replace("project: fabrik-tests", "project: blog")
            .replace("name: test-api", "name: api")
            .replace("domain: api.example.com", "domain: new.example.com");
    std::fs::write(blog_dir.path().join("api.yaml"), text_of_blog).expect("spec");

    let output = world.apply(&shop, &[]).await;
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    let mut blog = world.fabrik_in(blog_dir.path());
    blog.args(["apply", "--deploy-timeout", "20", "api.yaml"]);
    let output = World::output(blog).await;
    let (stdout, stderr) = text(&output);
    assert_eq!(
        output.status.code(),
        Some(0),
        "the shop's `api` must not block the blog's:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("api: COMPLETE https://new.example.com/health"),
        "{stdout}"
    );
    let apis: Vec<_> = world
        .sandbox
        .coolify
        .resources()
        .into_iter()
        .filter(|(_, _, name, _)| name == "api")
        .collect();
    assert_eq!(apis.len(), 2, "{apis:?}");
    let owners: Vec<&str> = apis.iter().map(|(_, _, _, owner)| owner.as_str()).collect();
    assert!(
        owners.iter().any(|o| o.starts_with("fabrik:acme/")),
        "{owners:?}"
    );
    assert!(
        owners.iter().any(|o| o.starts_with("fabrik:blog/")),
        "{owners:?}"
    );

    // A second apply of each is a no-op: each finds its own.
    let again = world.apply(&shop, &[]).await;
    let (stdout, stderr) = text(&again);
    assert_eq!(again.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(!stdout.contains("created"), "{stdout}");

    // Each destroy touches its own app only.
    let mut destroy = world.fabrik_in(blog_dir.path());
    destroy.args(["destroy", "api", "--yes"]);
    let output = World::output(destroy).await;
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    let left: Vec<_> = world
        .sandbox
        .coolify
        .resources()
        .into_iter()
        .filter(|(_, _, name, _)| name == "api")
        .collect();
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(left[0].3.starts_with("fabrik:acme/"), "{left:?}");
    let records: Vec<String> = world
        .sandbox
        .cloudflare
        .records()
        .iter()
        .filter_map(|r| r["name"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        records,
        ["api.example.com"],
        "the blog's record only is gone"
    );
    assert!(
        !world
            .sandbox
            .coolify
            .project_names()
            .contains(&"blog".to_owned()),
        "the blog's Coolify project, created by Fabrik and now empty, is removed"
    );
    assert!(
        world
            .sandbox
            .coolify
            .project_names()
            .contains(&"shop".to_owned())
    );

    let destroyed = world.run(&["destroy", "api", "--yes"]).await;
    let (stdout, stderr) = text(&destroyed);
    assert_eq!(destroyed.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(world.sandbox.coolify.resources().is_empty());
    assert!(world.sandbox.cloudflare.records().is_empty());
}

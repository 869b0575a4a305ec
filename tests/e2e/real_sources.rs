//! Moving sources resolved against the real servers, started by the tests on loopback:
//! git's own `git-http-backend` (Debian's `git`) serving a repository the test pushes
//! to with the real `git`, and the CNCF distribution registry (Debian's
//! `docker-registry`) over HTTPS holding an image the test pushes. A branch or a tag
//! moved by a push is deployed by a plain apply, by its new commit or digest, and
//! `fabrik rollback` deploys the old one again.

use std::path::Path;

use fabrik_sim::git::RealGit;
use fabrik_sim::registry::{RealRegistry, push_image};

use crate::deploy::{World, text};

/// `fabrik ARGS` in the world's project, with the git host and the registry named in
/// the spec resolved to the real servers (and the app's domain to the sandbox's app).
async fn run(world: &World, resolve: &[String], args: &[&str]) -> std::process::Output {
    let mut cmd = world.fabrik();
    cmd.env("FABRIK_RESOLVE", resolve.join(",")).args(args);
    World::output(cmd).await
}

fn compose(world: &World) -> String {
    let (_, uuid, _, _) = world
        .sandbox
        .coolify
        .resources()
        .into_iter()
        .find(|(_, _, name, _)| name == "test-api")
        .expect("the app's service");
    world.sandbox.coolify.compose_of(&uuid).expect("compose")
}

fn path(spec: &Path) -> &str {
    spec.to_str().expect("utf-8")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_to_a_real_git_server_is_deployed_and_rolled_back_by_commit() {
    let world = World::start().await;
    let git = RealGit::start(world.sandbox.ca.clone())
        .await
        .expect("the real git server starts");
    git.create("acme/shop").expect("repository");
    let first = git.commit("acme/shop", "main", "first").expect("commit");
    let resolve = vec![
        format!("api.example.com:443:{}", world.sandbox.app_addr),
        format!("git.example.org:443:{}", git.addr),
    ];
    let repository = "https://git.example.org/acme/shop";
    let spec = world.spec("app.yaml", |s| {
        s.replace("template: python-api", "template: node-api")
            .replace(
                "  image: ghcr.io/acme/test-api:1.4",
                &format!("  git: {repository}\n  branch: main"),
            )
    });

    let applied = run(&world, &resolve, &["apply", path(&spec)]).await;
    let (stdout, stderr) = text(&applied);
    assert_eq!(applied.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        compose(&world).contains(&format!("{repository}.git#{first}")),
        "{}",
        compose(&world)
    );
    let same = run(&world, &resolve, &["apply", path(&spec)]).await;
    assert!(text(&same).0.contains("(no changes)"), "{:?}", text(&same));

    let second = git.commit("acme/shop", "main", "second").expect("push");
    let plan = run(&world, &resolve, &["plan", path(&spec)]).await;
    assert!(
        text(&plan)
            .0
            .contains(&format!("source: main {} → {}", &first[..7], &second[..7])),
        "{:?}",
        text(&plan)
    );
    let shipped = run(&world, &resolve, &["apply", path(&spec)]).await;
    let (stdout, stderr) = text(&shipped);
    assert_eq!(shipped.status.code(), Some(0), "{stdout}{stderr}");
    assert!(compose(&world).contains(&second), "{}", compose(&world));

    let rolled = run(&world, &resolve, &["rollback", "test-api"]).await;
    let (stdout, stderr) = text(&rolled);
    assert_eq!(rolled.status.code(), Some(0), "{stdout}{stderr}");
    let now = compose(&world);
    assert!(now.contains(&first) && !now.contains(&second), "{now}");

    // A branch the repository does not have: refused, with the branches it has.
    let missing = world.spec("missing.yaml", |s| {
        s.replace("template: python-api", "template: node-api")
            .replace(
                "  image: ghcr.io/acme/test-api:1.4",
                &format!("  git: {repository}\n  branch: release"),
            )
    });
    let refused = run(&world, &resolve, &["apply", path(&missing)]).await;
    let (stdout, stderr) = text(&refused);
    assert_eq!(refused.status.code(), Some(2), "{stdout}{stderr}");
    assert!(
        stderr.contains("has no branch or tag `release`; its branches: main"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tag_pushed_again_to_a_real_registry_is_deployed_by_digest() {
    let world = World::start().await;
    let (cert, key) = world
        .sandbox
        .ca
        .issue_pem("registry.example.org")
        .expect("certificate");
    let registry = RealRegistry::start_tls(&cert, &key).expect("the real registry starts");
    let addr: std::net::SocketAddr = registry.host().parse().expect("address");
    let http = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(world.sandbox.ca.pem().as_bytes()).expect("ca"),
        )
        .resolve("registry.example.org", addr)
        .build()
        .expect("client");
    let base = format!("https://registry.example.org:{}", addr.port());
    let first = push_image(&http, &base, "acme/api", "1.4", b"first layer")
        .await
        .expect("push");
    let resolve = vec![
        format!("api.example.com:443:{}", world.sandbox.app_addr),
        format!("registry.example.org:443:{addr}"),
    ];
    let spec = world.spec("app.yaml", |s| {
        s.replace(
            "ghcr.io/acme/test-api:1.4",
            "registry.example.org/acme/api:1.4",
        )
    });
    let applied = run(&world, &resolve, &["apply", path(&spec)]).await;
    let (stdout, stderr) = text(&applied);
    assert_eq!(applied.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        compose(&world).contains(&format!("registry.example.org/acme/api@{first}")),
        "{}",
        compose(&world)
    );

    let second = push_image(&http, &base, "acme/api", "1.4", b"second layer")
        .await
        .expect("push again");
    assert_ne!(first, second);
    let shipped = run(&world, &resolve, &["apply", path(&spec)]).await;
    let (stdout, stderr) = text(&shipped);
    assert_eq!(shipped.status.code(), Some(0), "{stdout}{stderr}");
    assert!(compose(&world).contains(&second), "{}", compose(&world));
    let rolled = run(&world, &resolve, &["rollback", "test-api"]).await;
    assert_eq!(rolled.status.code(), Some(0), "{:?}", text(&rolled));
    assert!(compose(&world).contains(&first), "{}", compose(&world));
}

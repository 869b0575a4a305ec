//! The paths a failed run can take: each rollback policy, a rollback that fails
//! itself, retries that run out, and where secret values come from.

use fabrik_sim::app::Behaviour;
use fabrik_sim::faults::Fault;

use crate::deploy::{DATABASE_URL, World, text};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_policy_never_leaves_everything_and_says_so() {
    let world = World::start().await;
    let spec = world.bad_spec(503, |t| {
        t.replace("coolify: auto", "coolify: never")
            .replace("dns: manual", "dns: never")
    });
    let output = world.apply(&spec, &[]).await;
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains("(rollback policy: never)"), "{stdout}");
    assert_eq!(world.sandbox.cloudflare.records().len(), 1);
    assert_eq!(world.sandbox.coolify.resources().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_that_fails_ends_failed_with_what_was_left() {
    let world = World::start().await;
    // Every delete of the service fails: retries run out, the rollback cannot finish.
    world.sandbox.coolify.faults.always(
        "coolify.delete_service",
        Fault::Status {
            status: 500,
            retry_after: None,
        },
    );
    let spec = world.bad_spec(503, |t| t);
    let output = world.apply(&spec, &[]).await;
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains("FAILED"), "{stdout}");
    assert!(stdout.contains("rollback incomplete"), "{stdout}");
    assert!(
        stderr.contains("attempt 3 of 3"),
        "the retries ran out: {stderr}"
    );
    let status = world.run(&["status", "bad-api"]).await;
    assert!(text(&status).0.contains("FAILED"), "{}", text(&status).0);
    // The service is still tracked: a later destroy removes it.
    world.sandbox.coolify.faults.clear();
    let destroyed = world.run(&["destroy", "bad-api", "--yes"]).await;
    assert_eq!(destroyed.status.code(), Some(0), "{}", text(&destroyed).1);
    assert!(world.sandbox.coolify.resources().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_environment_wins_over_dotenv() {
    let world = World::start().await;
    std::fs::write(
        world.dir.path().join(".env"),
        "DATABASE_URL=postgres://from-dotenv@db/x\nAPI_KEY=from-dotenv-key-0123456789abcdef\n",
    )
    .expect(".env");
    let spec = world.spec("app.yaml", |t| t);
    let output = world.apply(&spec, &[]).await;
    assert_eq!(output.status.code(), Some(0), "{}", text(&output).1);
    let uuid = world.sandbox.coolify.resources()[0].1.clone();
    let env = world.sandbox.coolify.env_of(&uuid);
    assert!(
        env.contains(&("DATABASE_URL".to_owned(), DATABASE_URL.to_owned())),
        "the environment's value, not .env's"
    );
    assert!(
        env.contains(&(
            "API_KEY".to_owned(),
            "from-dotenv-key-0123456789abcdef".to_owned()
        )),
        ".env when the environment has none"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_health_check_redirected_off_its_origin_is_not_followed() {
    let world = World::start().await;
    let spec = world.bad_spec(503, |t| t);
    world.sandbox.app.set(
        "bad.example.com",
        Behaviour::Redirect("https://api.example.com/health".to_owned()),
    );
    let output = world.apply(&spec, &[]).await;
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains("last answer 302"), "{stdout}");
    assert_eq!(
        world.sandbox.app.hits("api.example.com"),
        0,
        "the other origin was never asked"
    );
}

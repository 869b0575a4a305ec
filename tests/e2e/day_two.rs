//! Day two (issue 22): what comes after the first deploy. A failure that changed nothing
//! leaves the app as it was; a dead run is shown as interrupted; destroy leaves no trace
//! of the app but its history.

use crate::deploy::{World, spawn_until, text};

/// `fabrik status NAME` (stdout and stderr together).
async fn status(world: &World, args: &[&str]) -> String {
    let mut all = vec!["status"];
    all.extend_from_slice(args);
    let output = world.run(&all).await;
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}{stderr}");
    format!("{stdout}{stderr}")
}

/// A server typo, then a refused token: both fail having changed nothing. The app stays
/// COMPLETE in `status` (with the failed attempt beside it), and the next apply of the
/// unchanged spec is a no-op: no redeploy, no mutating call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_that_changed_nothing_leaves_the_app_as_it_was() {
    let world = World::start().await;
    let spec = world.spec("app.yaml", |s| s);
    let first = world.apply(&spec, &[]).await;
    assert_eq!(first.status.code(), Some(0), "{:?}", text(&first));

    let typo = world.spec("typo.yaml", |s| s.replace("server: vps1", "server: vps9"));
    let failed = world.apply(&typo, &[]).await;
    let (stdout, stderr) = text(&failed);
    assert_eq!(failed.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stdout.contains("nothing was changed"), "{stdout}");
    let shown = status(&world, &["test-api"]).await;
    assert!(shown.starts_with("test-api: COMPLETE"), "{shown}");
    assert!(
        shown.contains("  last attempt: run ")
            && shown
                .contains("ROLLED_BACK, nothing was changed: Coolify has no server named `vps9`"),
        "{shown}"
    );
    let json = status(&world, &["test-api", "--output", "json"]).await;
    assert!(
        json.contains("\"state\":\"COMPLETE\"") && json.contains("\"state\":\"ROLLED_BACK\""),
        "{json}"
    );

    // The same spec with a refused DNS token: the unchanged app is not redeployed.
    let mut cmd = world.command(&spec);
    cmd.env("CLOUDFLARE_API_TOKEN", "revoked-token");
    let refused = World::output(cmd).await;
    let (stdout, stderr) = text(&refused);
    assert_eq!(refused.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stdout.contains("nothing was changed"), "{stdout}");
    assert!(
        status(&world, &["test-api"])
            .await
            .starts_with("test-api: COMPLETE"),
    );

    let before = world.mutating_calls();
    let again = world.apply(&spec, &[]).await;
    let (stdout, stderr) = text(&again);
    assert_eq!(again.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("(no changes)"), "{stdout}{stderr}");
    assert_eq!(world.mutating_calls(), before, "{stdout}{stderr}");
}

/// `kill -9` during a deployment: `status` says the run was interrupted (its process is
/// gone), not that it is still deploying; while it runs, it says it is running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_run_is_shown_as_interrupted_not_running() {
    let world = World::start().await;
    world
        .sandbox
        .coolify
        .set_timing(fabrik_sim::coolify::Timing {
            service_start: std::time::Duration::from_secs(30),
            ..fabrik_sim::coolify::Timing::default()
        });
    let spec = world.spec("app.yaml", |t| t);
    let (mut child, reader) = spawn_until(
        world.command(&spec),
        "DEPLOYING",
        "the apply reaches DEPLOYING",
    );
    let running = status(&world, &["test-api", "--output", "json"]).await;
    assert!(
        running.contains("\"running\":true") && running.contains("\"interrupted\":false"),
        "{running}"
    );
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
    drop(reader);

    let shown = status(&world, &["test-api"]).await;
    assert!(
        shown.starts_with("test-api: INTERRUPTED in DEPLOYING (run ")
            && shown.contains("the next apply recovers it"),
        "{shown}"
    );
    let json = status(&world, &["test-api", "--output", "json"]).await;
    assert!(
        json.contains("\"interrupted\":true") && json.contains("\"running\":false"),
        "{json}"
    );
}

/// `destroy` of two apps sharing the Coolify project Fabrik created: the first leaves the
/// project (it holds the other app), the second deletes it. A resource deleted by hand
/// is reported as already gone, not as deleted. Each destroy is in `history`; `status`
/// hides destroyed apps unless `--all` (or named).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destroy_removes_the_project_it_created_once_empty_and_is_in_history() {
    let world = World::start().await;
    let first = world.spec("app.yaml", |s| s);
    let second = world.spec("other.yaml", |s| {
        s.replace("name: test-api", "name: other-api")
            .replace("domain: api.example.com", "domain: new.example.com")
    });
    for spec in [&first, &second] {
        let applied = world.apply(spec, &[]).await;
        assert_eq!(applied.status.code(), Some(0), "{:?}", text(&applied));
    }
    assert_eq!(world.sandbox.coolify.project_names(), ["fabrik-tests"]);

    // The first app's service deleted by hand: its destroy says so.
    let (_, uuid, _, _) = world
        .sandbox
        .coolify
        .resources()
        .into_iter()
        .find(|(_, _, name, _)| name == "test-api")
        .expect("the first app's service");
    world.sandbox.coolify.remove_by_hand(&uuid);
    let destroyed = world.run(&["destroy", "test-api", "--yes"]).await;
    let (stdout, stderr) = text(&destroyed);
    assert_eq!(destroyed.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stderr.contains(&format!("service test-api ({uuid}) was already gone")),
        "{stderr}"
    );
    assert!(
        !stderr.contains(&format!("deleted service test-api ({uuid})")),
        "{stderr}"
    );
    assert!(
        stderr.contains("kept project fabrik-tests") && stderr.contains("holds other resources"),
        "{stderr}"
    );
    assert_eq!(world.sandbox.coolify.project_names(), ["fabrik-tests"]);

    let destroyed = world.run(&["destroy", "other-api", "--yes"]).await;
    let (stdout, stderr) = text(&destroyed);
    assert_eq!(destroyed.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stderr.contains("deleted project fabrik-tests ("),
        "{stderr}"
    );
    assert!(world.sandbox.coolify.project_names().is_empty(), "{stderr}");

    // History shows the destroy; status hides destroyed apps unless asked.
    let history = world.run(&["history", "test-api"]).await;
    let (history, _) = text(&history);
    let first_line = history.lines().next().unwrap_or_default();
    assert!(
        first_line.starts_with("destroy")
            && first_line.contains("DESTROYED")
            && first_line.contains("1 deleted, 1 already gone"),
        "{history}"
    );
    let shown = status(&world, &[]).await;
    assert!(
        !shown.contains("test-api") && shown.contains("2 destroyed apps are not shown"),
        "{shown}"
    );
    let all = status(&world, &["--all"]).await;
    assert!(
        all.contains("test-api: DESTROYED") && all.contains("other-api: DESTROYED"),
        "{all}"
    );
    let named = status(&world, &["test-api"]).await;
    assert!(named.contains("test-api: DESTROYED"), "{named}");

    // Applied again after the destroy: the project is created anew, and COMPLETE.
    let again = world.apply(&first, &[]).await;
    assert_eq!(again.status.code(), Some(0), "{:?}", text(&again));
    assert_eq!(world.sandbox.coolify.project_names(), ["fabrik-tests"]);
}

/// A failed update is rolled back to the previous settings, and the restore is a deploy
/// like any other: followed to its end and verified. Here the update's health check path
/// is wrong (404) while the restored version's is right: ROLLED_BACK, and the summary and
/// JSON say the restored version is healthy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restored_version_is_followed_and_verified() {
    let world = World::start().await;
    let spec = world.spec("app.yaml", |s| s.replace("timeout: 30", "timeout: 2"));
    let first = world.apply(&spec, &[]).await;
    assert_eq!(first.status.code(), Some(0), "{:?}", text(&first));

    let broken = world.spec("app.yaml", |s| {
        s.replace("timeout: 30", "timeout: 2")
            .replace("path: /health", "path: /nope")
            .replace("LOG_LEVEL: info", "LOG_LEVEL: debug")
    });
    // Deployments now take longer than the health check's 2 s: a restore verified
    // without following its deployment to the end would find nothing serving.
    world
        .sandbox
        .coolify
        .set_timing(fabrik_sim::coolify::Timing {
            service_start: std::time::Duration::from_secs(3),
            ..fabrik_sim::coolify::Timing::default()
        });
    let failed = world.apply(&broken, &["--output", "json"]).await;
    let (stdout, stderr) = text(&failed);
    assert_eq!(failed.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains("\"state\":\"ROLLED_BACK\"")
            && stdout.contains("\"action\":\"restored\"")
            && stdout.contains("\"verified\":true"),
        "{stdout}"
    );
    let again = world.apply(&broken, &[]).await;
    let (stdout, stderr) = text(&again);
    assert!(
        stdout.contains("the restored version is deployed and healthy"),
        "{stdout}{stderr}"
    );
    // The restore's own probe of the restored version's health path is in the log.
    assert!(
        stderr.contains("https://api.example.com/health answered 200"),
        "{stderr}"
    );
}

/// The restored version does not come up healthy either: a distinct, loud outcome
/// (FAILED, "not healthy either", a `next:` line that points at earlier versions).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restored_version_that_is_not_healthy_is_a_loud_failure() {
    let world = World::start().await;
    let spec = world.spec("app.yaml", |s| s.replace("timeout: 30", "timeout: 2"));
    let first = world.apply(&spec, &[]).await;
    assert_eq!(first.status.code(), Some(0), "{:?}", text(&first));

    world
        .sandbox
        .app
        .set("api.example.com", fabrik_sim::app::Behaviour::Fail(500));
    let changed = world.spec("app.yaml", |s| {
        s.replace("timeout: 30", "timeout: 2")
            .replace("LOG_LEVEL: info", "LOG_LEVEL: debug")
    });
    let failed = world.apply(&changed, &[]).await;
    let (stdout, stderr) = text(&failed);
    assert_eq!(failed.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stdout.starts_with("test-api: FAILED"), "{stdout}");
    assert!(
        stdout.contains("the restored version is NOT healthy")
            && stdout.contains("is not healthy either")
            && stdout
                .contains("next: look at the app's logs in Coolify; `fabrik history test-api`"),
        "{stdout}"
    );
    let json = world
        .run(&["history", "test-api", "--output", "json"])
        .await;
    assert!(
        text(&json).0.contains("\"state\":\"FAILED\""),
        "{:?}",
        text(&json)
    );
}

/// The uuid of the service named `name` in the simulated Coolify.
fn service_uuid(world: &World, name: &str) -> String {
    world
        .sandbox
        .coolify
        .resources()
        .into_iter()
        .find(|(_, _, n, _)| n == name)
        .map(|(_, uuid, _, _)| uuid)
        .unwrap_or_else(|| panic!("no service {name}"))
}

/// A git source: the branch is resolved to its commit, which Coolify receives as the
/// build context; an unchanged branch is a no-op; a push is a change the plan shows with
/// both ids and a plain apply deploys; `fabrik rollback` brings back the old commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moved_branch_is_deployed_by_a_plain_apply_and_rolled_back_to_its_commit() {
    let world = World::start().await;
    let repository = "https://github.com/acme/shop";
    let spec = world.spec("app.yaml", |s| {
        s.replace("template: python-api", "template: node-api")
            .replace(
                "  image: ghcr.io/acme/test-api:1.4",
                &format!("  git: {repository}\n  branch: main"),
            )
    });
    let first_commit = world.sandbox.app.sources.head(repository, "main");
    let first = world.apply(&spec, &[]).await;
    let (stdout, stderr) = text(&first);
    assert_eq!(first.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stderr.contains(&format!(
            "test-api: source main of {repository} is {}",
            &first_commit[..7]
        )),
        "{stderr}"
    );
    let uuid = service_uuid(&world, "test-api");
    let compose = world.sandbox.coolify.compose_of(&uuid).expect("compose");
    assert!(
        compose.contains(&format!("{repository}.git#{first_commit}")),
        "Coolify builds the resolved commit: {compose}"
    );

    let same = world.apply(&spec, &[]).await;
    assert!(text(&same).0.contains("(no changes)"), "{:?}", text(&same));

    // A push: plan shows both ids; a plain apply ships it.
    let second_commit = world.sandbox.app.sources.push(repository, "main");
    let plan = world.run(&["plan", spec.to_str().expect("utf-8")]).await;
    let (plan_out, plan_err) = text(&plan);
    assert!(
        plan_out.contains(&format!(
            "source: main {} → {}",
            &first_commit[..7],
            &second_commit[..7]
        )),
        "{plan_out}{plan_err}"
    );
    let shipped = world.apply(&spec, &[]).await;
    let (stdout, stderr) = text(&shipped);
    assert_eq!(shipped.status.code(), Some(0), "{stdout}{stderr}");
    assert!(!stdout.contains("(no changes)"), "{stdout}");
    let compose = world.sandbox.coolify.compose_of(&uuid).expect("compose");
    assert!(compose.contains(&second_commit), "{compose}");

    // Offline, plan says it could not look and assumes the deployed commit: no change.
    let offline = world
        .run(&["--offline", "plan", spec.to_str().expect("utf-8")])
        .await;
    let (offline_out, offline_err) = text(&offline);
    assert!(
        offline_err.contains("not resolved")
            && offline_err.contains(&format!("still at {} (deployed)", &second_commit[..7]))
            && offline_out.contains("Plan: 0 to add, 0 to change, 0 to destroy."),
        "{offline_out}{offline_err}"
    );

    // Rollback deploys the first commit again, not the branch's head.
    let rolled = world.run(&["rollback", "test-api"]).await;
    let (stdout, stderr) = text(&rolled);
    assert_eq!(rolled.status.code(), Some(0), "{stdout}{stderr}");
    let compose = world.sandbox.coolify.compose_of(&uuid).expect("compose");
    assert!(
        compose.contains(&first_commit) && !compose.contains(&second_commit),
        "{compose}"
    );

    // A branch that does not exist: apply refuses before anything changes.
    let missing = world.spec("missing.yaml", |s| {
        s.replace("name: test-api", "name: other-api")
            .replace("domain: api.example.com", "domain: new.example.com")
            .replace("template: python-api", "template: node-api")
            .replace(
                "  image: ghcr.io/acme/test-api:1.4",
                &format!("  git: {repository}\n  branch: nope"),
            )
    });
    let before = world.mutating_calls();
    let refused = world.apply(&missing, &[]).await;
    let (stdout, stderr) = text(&refused);
    assert_eq!(refused.status.code(), Some(2), "{stdout}{stderr}");
    assert!(
        stderr.contains("has no branch or tag `nope`; its branches: main")
            && stderr.contains("nothing was changed"),
        "{stderr}"
    );
    assert_eq!(world.mutating_calls(), before);
}

/// An image tag: resolved to its manifest digest, which Coolify receives (`name@sha256:…`);
/// a tag pushed again is a change a plain apply deploys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moved_image_tag_is_deployed_by_its_digest() {
    let world = World::start().await;
    let spec = world.spec("app.yaml", |s| s);
    let first_digest = world
        .sandbox
        .app
        .sources
        .image_digest("ghcr.io/acme/test-api", "1.4");
    let first = world.apply(&spec, &[]).await;
    assert_eq!(first.status.code(), Some(0), "{:?}", text(&first));
    let uuid = service_uuid(&world, "test-api");
    let compose = world.sandbox.coolify.compose_of(&uuid).expect("compose");
    assert!(
        compose.contains(&format!("ghcr.io/acme/test-api@{first_digest}")),
        "{compose}"
    );
    let second_digest = world
        .sandbox
        .app
        .sources
        .push_image("ghcr.io/acme/test-api", "1.4");
    let shipped = world.apply(&spec, &[]).await;
    let (stdout, stderr) = text(&shipped);
    assert_eq!(shipped.status.code(), Some(0), "{stdout}{stderr}");
    assert!(!stdout.contains("(no changes)"), "{stdout}");
    let compose = world.sandbox.coolify.compose_of(&uuid).expect("compose");
    assert!(compose.contains(&second_digest), "{compose}");
}

/// Words: a change made in the spec is announced as an update (and what the run is about
/// to do is said before its first change); a change made by hand is drift.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spec_change_is_an_update_and_a_hand_edit_is_drift() {
    let world = World::start().await;
    let spec = world.spec("app.yaml", |s| s);
    let first = world.apply(&spec, &[]).await;
    let (_, stderr) = text(&first);
    assert!(
        stderr.contains("about to apply: 2 to add, 0 to change, 0 to destroy (+ dns-record api.example.com; + service test-api)"),
        "{stderr}"
    );

    let changed = world.spec("app.yaml", |s| {
        s.replace("LOG_LEVEL: info", "LOG_LEVEL: debug")
    });
    let updated = world.apply(&changed, &[]).await;
    let (stdout, stderr) = text(&updated);
    assert_eq!(updated.status.code(), Some(0), "{stdout}{stderr}");
    let about = stderr
        .find("about to apply: 0 to add, 1 to change, 0 to destroy (~ service test-api: compose, env.LOG_LEVEL)")
        .unwrap_or_else(|| panic!("{stderr}"));
    let first_change = stderr
        .find("updating service test-api: env.LOG_LEVEL")
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(about < first_change, "said before the change: {stderr}");
    assert!(!stderr.contains("drift"), "{stderr}");

    let uuid = service_uuid(&world, "test-api");
    world.sandbox.coolify.edit_env(&uuid, "PORT", "9999");
    let repaired = world.apply(&changed, &[]).await;
    let (stdout, stderr) = text(&repaired);
    assert_eq!(repaired.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stderr.contains("repairing drift: service test-api: env.PORT"),
        "{stderr}"
    );
    assert!(!stderr.contains("updating service"), "{stderr}");
}

/// `apply --redeploy` deploys an unchanged spec on purpose: a run, and a new deployment
/// in Coolify, where a plain apply is a no-op.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redeploy_deploys_an_unchanged_spec_on_purpose() {
    let world = World::start().await;
    let spec = world.spec("app.yaml", |s| s);
    let first = world.apply(&spec, &[]).await;
    assert_eq!(first.status.code(), Some(0), "{:?}", text(&first));
    let deployments = world.calls_of("coolify.deploy");
    let noop = world.apply(&spec, &[]).await;
    assert!(text(&noop).0.contains("(no changes)"), "{:?}", text(&noop));
    assert_eq!(world.calls_of("coolify.deploy"), deployments);

    let again = world.apply(&spec, &["--redeploy"]).await;
    let (stdout, stderr) = text(&again);
    assert_eq!(again.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stdout.starts_with("test-api: COMPLETE") && !stdout.contains("(no changes)"),
        "{stdout}"
    );
    assert!(stderr.contains("deployed again (--redeploy)"), "{stderr}");
    assert_eq!(
        world.calls_of("coolify.deploy"),
        deployments + 1,
        "{stderr}"
    );
    let history = world.run(&["history", "test-api"]).await;
    assert_eq!(text(&history).0.lines().count(), 2, "{:?}", text(&history));
}

/// Health-check failures say what was expected and what came, and one last attempt is
/// made at the deadline itself: an app that comes up in the final pause passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_health_check_says_expected_versus_received_and_tries_at_the_deadline() {
    let world = World::start().await;
    let spec = world.spec("app.yaml", |s| {
        s.replace("timeout: 30", "timeout: 2")
            .replace("expect_status: 200", "expect_status: 204")
    });
    let failed = world.apply(&spec, &[]).await;
    let (stdout, stderr) = text(&failed);
    assert_eq!(failed.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stderr.contains("GET /health → 200 (expected 204)")
            && stdout.contains("last answer 200 (expected 204)"),
        "{stdout}{stderr}"
    );

    // Attempts at 0, 0.2, 0.6 and 1.4 s, then the pause would pass the 2 s deadline:
    // the last attempt is made at 2 s. The app is healthy from 1.7 s on.
    let spec = world.spec("app.yaml", |s| {
        s.replace("timeout: 30", "timeout: 2")
            .replace("interval: 1", "interval: 2")
    });
    world
        .sandbox
        .app
        .set("api.example.com", fabrik_sim::app::Behaviour::Fail(503));
    let app = world.sandbox.app.clone();
    let command = world.command(&spec);
    let before = app.hits("api.example.com");
    let heal = tokio::spawn(async move {
        // From this apply's first probe on.
        while app.hits("api.example.com") == before {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(1700)).await;
        app.set("api.example.com", fabrik_sim::app::Behaviour::Healthy);
    });
    let passed = World::output(command).await;
    heal.await.expect("healed");
    let (stdout, stderr) = text(&passed);
    assert_eq!(passed.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stderr.contains("after 5 attempt(s)"), "{stderr}");
}

/// `fabrik init` names the project (and ignores `.env` and `.fabrik/` in git); without
/// it, commands warn that the directory's name is the project's; a project renamed
/// after it deployed (its directory, here) is refused instead of losing its resources.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_names_the_project_and_a_renamed_project_is_refused() {
    let world = World::start().await;
    let parent = tempfile::tempdir().expect("tempdir");
    let alpha = parent.path().join("alpha");
    std::fs::create_dir(&alpha).expect("mkdir");
    let spec_text = std::fs::read_to_string(crate::support::root().join("fixtures/test-api.yaml"))
        .expect("fixture");
    std::fs::write(alpha.join("app.yaml"), &spec_text).expect("spec");
    let run_in = |dir: &std::path::Path, args: &[&str]| {
        let mut cmd = world.fabrik();
        cmd.current_dir(dir).args(args);
        World::output(cmd)
    };

    let applied = run_in(&alpha, &["apply", "app.yaml"]).await;
    let (stdout, stderr) = text(&applied);
    assert_eq!(applied.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stderr
            .contains("warning: no fabrik.toml: the project is named `alpha` after its directory"),
        "{stderr}"
    );
    assert_eq!(
        stderr.matches("warning: no fabrik.toml").count(),
        1,
        "once: {stderr}"
    );

    // The directory renamed: its resources carry `fabrik:alpha/…`; apply refuses.
    let gamma = parent.path().join("gamma");
    std::fs::rename(&alpha, &gamma).expect("rename");
    let before = world.mutating_calls();
    let refused = run_in(&gamma, &["apply", "app.yaml"]).await;
    let (stdout, stderr) = text(&refused);
    assert_eq!(refused.status.code(), Some(2), "{stdout}{stderr}");
    assert!(
        stderr.contains("holds apps of project `alpha` only")
            && stderr.contains("fabrik init alpha"),
        "{stderr}"
    );
    assert_eq!(world.mutating_calls(), before);

    // `fabrik init` with another name is refused too; with the old name it keeps them.
    let wrong = run_in(&gamma, &["init", "gamma"]).await;
    assert_eq!(wrong.status.code(), Some(2), "{:?}", text(&wrong));
    let init = run_in(&gamma, &["init", "alpha"]).await;
    let (stdout, stderr) = text(&init);
    assert_eq!(init.status.code(), Some(0), "{stdout}{stderr}");
    let toml = std::fs::read_to_string(gamma.join("fabrik.toml")).expect("fabrik.toml");
    assert!(toml.contains("name = \"alpha\""), "{toml}");
    let ignore = std::fs::read_to_string(gamma.join(".gitignore")).expect(".gitignore");
    assert!(
        ignore.lines().any(|l| l == ".env")
            && ignore.lines().any(|l| l == ".env.*")
            && ignore.lines().any(|l| l == ".fabrik/"),
        "{ignore}"
    );
    let again = run_in(&gamma, &["apply", "app.yaml"]).await;
    let (stdout, stderr) = text(&again);
    assert_eq!(again.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("(no changes)"), "{stdout}{stderr}");
    assert!(!stderr.contains("no fabrik.toml"), "{stderr}");
    let twice = run_in(&gamma, &["init", "alpha"]).await;
    assert_eq!(twice.status.code(), Some(2), "{:?}", text(&twice));
}

/// `fabrik doctor SPEC` reads and never writes: a line per check, a hint per failure.
/// A spec ready to deploy passes; a server typo, a record someone else owns and a refused
/// token each fail with their hint; nothing is ever sent that changes anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_checks_without_changing_anything() {
    let world = World::start().await;
    let spec = world.spec("app.yaml", |s| s);
    let path = spec.to_str().expect("utf-8");
    let before = world.mutating_calls();

    let healthy = world.run(&["doctor", path]).await;
    let (stdout, stderr) = text(&healthy);
    assert_eq!(healthy.status.code(), Some(0), "{stdout}{stderr}");
    for line in [
        "ok    project  project acme: named in fabrik.toml",
        "note  coolify  server vps1: found, with the private address 127.0.0.1",
        "ok    coolify  destination: a new resource has a destination Coolify accepts",
        "ok    coolify  service test-api: nothing there yet: apply creates it",
        "ok    dns      dns-record api.example.com: nothing there yet: apply creates it",
        "ok    source   source ghcr.io/acme/test-api:1.4: resolves to sha256:",
    ] {
        assert!(stdout.contains(line), "{line}\n{stdout}{stderr}");
    }

    // A second Docker network on the server, which the spec does not choose from.
    world.sandbox.coolify.add_destination("vps1", "other-net");
    let ambiguous = world.run(&["doctor", path]).await;
    let (stdout, stderr) = text(&ambiguous);
    assert_eq!(ambiguous.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains("FAIL  coolify  destination:")
            && stdout.contains("set `coolify.destination`"),
        "{stdout}{stderr}"
    );

    // A record someone made by hand, and a server that does not exist.
    world
        .sandbox
        .cloudflare
        .insert_record("new.example.com", "A", "203.0.113.7", "");
    let other = world.spec("other.yaml", |s| {
        s.replace("name: test-api", "name: other-api")
            .replace("domain: api.example.com", "domain: new.example.com")
            .replace("server: vps1", "server: vps9")
    });
    let failing = world
        .run(&["doctor", other.to_str().expect("utf-8"), "--output", "json"])
        .await;
    let (stdout, stderr) = text(&failing);
    assert_eq!(failing.status.code(), Some(1), "{stdout}{stderr}");
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let find = |subject: &str| {
        lines
            .iter()
            .find(|l| l["subject"] == subject)
            .unwrap_or_else(|| panic!("{subject}: {stdout}"))
            .clone()
    };
    let server = find("server vps9");
    assert_eq!(server["status"], "failed", "{server}");
    let record = find("dns-record new.example.com");
    assert_eq!(record["status"], "failed", "{record}");
    assert!(
        record["problem"]
            .as_str()
            .is_some_and(|p| p.contains("without an owner tag"))
            && record["hint"]
                .as_str()
                .is_some_and(|h| h.contains("set its comment to `fabrik:acme/other-api`")),
        "{record}"
    );

    // A refused Coolify token.
    let mut cmd = world.fabrik();
    cmd.args(["doctor", path]).env("COOLIFY_TOKEN", "9|revoked");
    let refused = World::output(cmd).await;
    let (stdout, stderr) = text(&refused);
    assert_eq!(refused.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains("FAIL  coolify  server vps1") && stdout.contains("refused the token"),
        "{stdout}{stderr}"
    );

    assert_eq!(world.mutating_calls(), before, "doctor changed something");
    assert!(
        !world.dir.path().join(".fabrik/state.db").exists(),
        "doctor wrote a state"
    );
}

/// An environment Fabrik created in a project someone else made: destroy removes the
/// environment once empty, never the project.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destroy_removes_an_environment_it_created_and_keeps_a_project_it_did_not() {
    let world = World::start().await;
    let created = reqwest::Client::new()
        .post(format!("{}/projects", world.sandbox.coolify_url))
        .bearer_auth(&world.sandbox.config.coolify_token)
        .header("accept", "application/json")
        .header("content-type", "application/json")
        .body(r#"{"name": "ops", "description": "The ops team's"}"#)
        .send()
        .await
        .expect("coolify answers");
    assert_eq!(created.status(), 201);
    let spec = world.spec("app.yaml", |s| {
        s.replace("project: fabrik-tests", "project: ops")
            .replace("environment: production", "environment: staging")
    });
    let applied = world.apply(&spec, &[]).await;
    assert_eq!(applied.status.code(), Some(0), "{:?}", text(&applied));
    assert_eq!(
        world.sandbox.coolify.environment_names("ops"),
        ["production", "staging"]
    );

    let destroyed = world.run(&["destroy", "test-api", "--yes"]).await;
    let (stdout, stderr) = text(&destroyed);
    assert_eq!(destroyed.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stderr.contains("deleted environment ops/staging ("),
        "{stderr}"
    );
    assert!(!stderr.contains("project ops"), "{stderr}");
    assert_eq!(world.sandbox.coolify.project_names(), ["ops"]);
    assert_eq!(
        world.sandbox.coolify.environment_names("ops"),
        ["production"]
    );
}

/// An update whose call fails after it was sent may have changed the app (a provider's
/// update is several requests): the run is never recorded as "changed nothing", the
/// app is not shown as still COMPLETE, and the next apply sends the change again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_update_is_never_said_to_have_changed_nothing() {
    let world = World::start().await;
    let spec = world.spec("app.yaml", |s| s);
    let first = world.apply(&spec, &[]).await;
    assert_eq!(first.status.code(), Some(0), "{:?}", text(&first));

    let changed = world.spec("app.yaml", |s| {
        s.replace("LOG_LEVEL: info", "LOG_LEVEL: debug")
    });
    world.sandbox.coolify.faults.on_nth(
        "coolify.update_service",
        1,
        fabrik_sim::faults::Fault::Status {
            status: 400,
            retry_after: None,
        },
    );
    let failed = world.apply(&changed, &[]).await;
    let (stdout, stderr) = text(&failed);
    assert_eq!(failed.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        !stdout.contains("nothing was changed") && stdout.contains("may have changed"),
        "{stdout}"
    );
    let shown = status(&world, &["test-api"]).await;
    assert!(!shown.starts_with("test-api: COMPLETE"), "{shown}");

    world.sandbox.coolify.faults.clear();
    let again = world.apply(&changed, &[]).await;
    let (stdout, stderr) = text(&again);
    assert_eq!(again.status.code(), Some(0), "{stdout}{stderr}");
    assert!(!stdout.contains("(no changes)"), "{stdout}");
    let uuid = service_uuid(&world, "test-api");
    assert!(
        world
            .sandbox
            .coolify
            .env_of(&uuid)
            .contains(&("LOG_LEVEL".to_owned(), "debug".to_owned())),
        "{stderr}"
    );
}

/// `fabrik init` keeps a name a state already holds even if it would not pass today's
/// name rules (a directory called `MyShop`), and adds the name to a fabrik.toml that
/// has none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_keeps_the_name_a_state_holds_and_completes_a_nameless_fabrik_toml() {
    let world = World::start().await;
    let parent = tempfile::tempdir().expect("tempdir");
    let dir = parent.path().join("MyShop");
    std::fs::create_dir(&dir).expect("mkdir");
    std::fs::copy(
        crate::support::root().join("fixtures/test-api.yaml"),
        dir.join("app.yaml"),
    )
    .expect("spec");
    let run_in = |args: &[&str]| {
        let mut cmd = world.fabrik();
        cmd.current_dir(&dir).args(args);
        World::output(cmd)
    };
    let applied = run_in(&["apply", "app.yaml"]).await;
    assert_eq!(applied.status.code(), Some(0), "{:?}", text(&applied));
    let init = run_in(&["init", "MyShop"]).await;
    assert_eq!(init.status.code(), Some(0), "{:?}", text(&init));
    let toml = std::fs::read_to_string(dir.join("fabrik.toml")).expect("fabrik.toml");
    assert!(toml.contains("name = \"MyShop\""), "{toml}");

    let other = parent.path().join("other");
    std::fs::create_dir(&other).expect("mkdir");
    std::fs::write(other.join("fabrik.toml"), "# providers come later\n").expect("toml");
    // A name that could not be an owner tag is refused, and nothing is written.
    let mut cmd = world.fabrik();
    cmd.current_dir(&other).args(["init", "bad name"]);
    let refused = World::output(cmd).await;
    let (stdout, stderr) = text(&refused);
    assert_eq!(refused.status.code(), Some(2), "{stdout}{stderr}");
    assert!(
        stderr.contains("project name `bad name` may hold only lowercase letters"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(other.join("fabrik.toml")).expect("fabrik.toml"),
        "# providers come later\n"
    );
    let mut cmd = world.fabrik();
    cmd.current_dir(&other).args(["init", "shop"]);
    let named = World::output(cmd).await;
    assert_eq!(named.status.code(), Some(0), "{:?}", text(&named));
    let toml = std::fs::read_to_string(other.join("fabrik.toml")).expect("fabrik.toml");
    assert!(
        toml.starts_with("# providers come later\n") && toml.contains("[project]\nname = \"shop\""),
        "{toml}"
    );
}

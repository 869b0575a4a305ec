//! Environments (issue 24): one spec with `staging` and `production` deploys two apps of
//! their own (lock, runs, resources, owner tags, secrets), which never touch each other;
//! `fabrik promote` deploys to production the digest staging verified, not where the tag
//! points now; `preview-*` environments come and go by name.

use std::path::{Path, PathBuf};

use fabrik_sim::app::Behaviour;

use crate::deploy::{World, text};

/// The fixture with `environments`: staging on `new.example.com` with its own log level,
/// production on the fixture's domain, and previews on `<name>.example.com`. The
/// fixture's Coolify environment goes: each environment gets its own by default.
fn spec_with_environments(world: &World, file: &str, extra: &str) -> PathBuf {
    world.spec(file, |s| {
        format!(
            "{}environments:\n  staging:\n    domain: new.example.com\n    env:\n      LOG_LEVEL: debug\n{extra}  production: {{}}\n  preview-*:\n    domain: \"{{{{ env }}}}.example.com\"\n    healthcheck:\n      timeout: 5\n",
            s.replace("  environment: production\n", "")
        )
    })
}

fn path(spec: &Path) -> &str {
    spec.to_str().expect("utf-8")
}

/// `fabrik ARGS`, exit code checked, stdout and stderr together.
async fn ok(world: &World, args: &[&str]) -> String {
    let output = world.run(args).await;
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{args:?}: {stdout}{stderr}");
    format!("{stdout}{stderr}")
}

/// `fabrik apply SPEC --env ENV`, with the previews' domains resolved to the sandbox.
async fn apply_env(world: &World, spec: &Path, env: &str) -> std::process::Output {
    let mut cmd = world.command(spec);
    cmd.args(["--env", env]);
    let mut resolve: Vec<String> = ["api", "new", env]
        .iter()
        .map(|host| format!("{host}.example.com:443:{}", world.sandbox.app_addr))
        .collect();
    resolve.extend(world.source_overrides());
    cmd.env("FABRIK_RESOLVE", resolve.join(","));
    World::output(cmd).await
}

/// The Coolify resources named `test-api`, as (uuid, description).
fn coolify_apps(world: &World) -> Vec<(String, String)> {
    world
        .sandbox
        .coolify
        .resources()
        .into_iter()
        .filter(|(_, _, name, _)| name == "test-api")
        .map(|(_, uuid, _, description)| (uuid, description))
        .collect()
}

/// The uuid of the Coolify resource whose owner tag names `key`.
fn uuid_of(world: &World, key: &str) -> String {
    coolify_apps(world)
        .into_iter()
        .find(|(_, description)| description.contains(&format!("fabrik:acme/{key}")))
        .unwrap_or_else(|| panic!("no Coolify resource of {key}: {:?}", coolify_apps(world)))
        .0
}

/// The DNS records, as (name, comment).
fn records(world: &World) -> Vec<(String, String)> {
    world
        .sandbox
        .cloudflare
        .records()
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap_or_default().to_owned(),
                r["comment"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn dotenv_value(dir: &Path, file: &str, name: &str) -> Option<String> {
    let text = std::fs::read_to_string(dir.join(file)).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}=")))
        .map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staging_and_production_are_separate_apps_that_never_touch_each_other() {
    let world = World::start().await;
    let spec = spec_with_environments(&world, "app.yaml", "");

    // A command that changes something needs an environment; nothing is called without.
    let refused = world.apply(&spec, &[]).await;
    let (stdout, stderr) = text(&refused);
    assert_eq!(refused.status.code(), Some(2), "{stdout}{stderr}");
    assert!(
        stderr.contains("has environments (staging, production, preview-*)")
            && stderr.contains("--env"),
        "{stderr}"
    );
    assert_eq!(world.mutating_calls(), 0);
    // An environment the spec does not have is refused with the ones it has.
    let unknown = apply_env(&world, &spec, "prod").await;
    let (stdout, stderr) = text(&unknown);
    assert_eq!(unknown.status.code(), Some(2), "{stdout}{stderr}");
    assert!(
        stderr.contains("has no environment `prod` (it has staging, production, preview-*)"),
        "{stderr}"
    );

    for env in ["staging", "production"] {
        let applied = apply_env(&world, &spec, env).await;
        let (stdout, stderr) = text(&applied);
        assert_eq!(applied.status.code(), Some(0), "{env}: {stdout}{stderr}");
    }
    // Two resources, each in its own Coolify environment and tagged with its own key.
    let apps = coolify_apps(&world);
    assert_eq!(apps.len(), 2, "{apps:?}");
    let staging = uuid_of(&world, "test-api@staging");
    let production = uuid_of(&world, "test-api@production");
    assert_ne!(staging, production);
    let staging_compose = world.sandbox.coolify.compose_of(&staging).expect("compose");
    assert!(
        staging_compose.contains("LOG_LEVEL: debug"),
        "{staging_compose}"
    );
    let records = records(&world);
    assert!(
        records.contains(&(
            "new.example.com".to_owned(),
            "fabrik:acme/test-api@staging".to_owned()
        )) && records.contains(&(
            "api.example.com".to_owned(),
            "fabrik:acme/test-api@production".to_owned()
        )),
        "{records:?}"
    );
    // Each environment's generated secret is its own, in `.env.<env>`; `.env` has none.
    let dir = world.dir.path();
    let staging_key = dotenv_value(dir, ".env.staging", "API_KEY").expect("staging's key");
    let production_key = dotenv_value(dir, ".env.production", "API_KEY").expect("production's key");
    assert_ne!(staging_key, production_key);
    assert_eq!(dotenv_value(dir, ".env", "API_KEY"), None);

    // `status` shows both; its JSON names the environment.
    let shown = ok(&world, &["status"]).await;
    assert!(
        shown.contains("test-api@production: COMPLETE")
            && shown.contains("test-api@staging: COMPLETE"),
        "{shown}"
    );
    let json = ok(
        &world,
        &["status", "test-api", "--env", "staging", "--output", "json"],
    )
    .await;
    assert!(
        json.contains("\"app\":\"test-api\"") && json.contains("\"environment\":\"staging\""),
        "{json}"
    );
    assert!(!json.contains("production"), "{json}");

    // A failing staging apply rolls staging back and leaves production as it was.
    let production_before = world
        .sandbox
        .coolify
        .compose_of(&production)
        .expect("compose");
    world
        .sandbox
        .app
        .set("new.example.com", Behaviour::Fail(500));
    let broken = spec_with_environments(&world, "app.yaml", "    healthcheck:\n      timeout: 2\n");
    std::fs::write(
        &broken,
        std::fs::read_to_string(&broken)
            .expect("spec")
            .replace("LOG_LEVEL: debug", "LOG_LEVEL: trace"),
    )
    .expect("spec");
    let failed = apply_env(&world, &broken, "staging").await;
    let (stdout, stderr) = text(&failed);
    assert_eq!(failed.status.code(), Some(1), "{stdout}{stderr}");
    assert_eq!(
        world.sandbox.coolify.compose_of(&production).as_deref(),
        Some(production_before.as_str())
    );
    let before = world.mutating_calls();
    let again = apply_env(&world, &broken, "production").await;
    let (stdout, stderr) = text(&again);
    assert_eq!(again.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("(no changes)"), "{stdout}{stderr}");
    assert_eq!(world.mutating_calls(), before, "{stdout}{stderr}");

    // `history` of the app shows each environment's runs.
    let history = ok(&world, &["history", "test-api"]).await;
    assert!(
        history.contains("test-api@production:") && history.contains("test-api@staging:"),
        "{history}"
    );

    // Destroy needs the environment, and removes only that one.
    let refused = world.run(&["destroy", "test-api", "--yes"]).await;
    let (stdout, stderr) = text(&refused);
    assert_eq!(refused.status.code(), Some(2), "{stdout}{stderr}");
    assert!(
        stderr.contains("has environments (production, staging)"),
        "{stderr}"
    );
    // So does `unlock`, and a name and `--env` that disagree are refused.
    let refused = world.run(&["unlock", "test-api"]).await;
    let (stdout, stderr) = text(&refused);
    assert_eq!(refused.status.code(), Some(2), "{stdout}{stderr}");
    assert!(
        stderr.contains("has environments (production, staging)"),
        "{stderr}"
    );
    let refused = world
        .run(&["unlock", "test-api@staging", "--env", "production"])
        .await;
    assert_eq!(refused.status.code(), Some(2), "{:?}", text(&refused));
    ok(&world, &["unlock", "test-api", "--env", "staging"]).await;
    ok(
        &world,
        &["destroy", "test-api", "--env", "staging", "--yes"],
    )
    .await;
    assert_eq!(coolify_apps(&world).len(), 1, "{:?}", coolify_apps(&world));
    uuid_of(&world, "test-api@production");
    let still = apply_env(&world, &spec, "production").await;
    assert!(
        text(&still).0.contains("(no changes)"),
        "{:?}",
        text(&still)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promote_deploys_the_digest_staging_verified_not_where_the_tag_is_now() {
    let world = World::start().await;
    let spec = spec_with_environments(&world, "app.yaml", "");
    let image = "ghcr.io/acme/test-api";
    let verified = world.sandbox.app.sources.push_image(image, "1.4");

    // Nothing to promote before staging has run.
    let early = world
        .run(&[
            "promote",
            "test-api",
            "--from",
            "staging",
            "--to",
            "production",
        ])
        .await;
    let (stdout, stderr) = text(&early);
    assert_eq!(early.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stderr.contains("has never been deployed"), "{stderr}");

    let staged = apply_env(&world, &spec, "staging").await;
    assert_eq!(staged.status.code(), Some(0), "{:?}", text(&staged));
    // The tag moves after staging verified its digest.
    let moved = world.sandbox.app.sources.push_image(image, "1.4");
    assert_ne!(moved, verified);

    let dry = world
        .run(&[
            "promote",
            "test-api",
            "--from",
            "staging",
            "--to",
            "production",
            "--dry-run",
        ])
        .await;
    let (stdout, stderr) = text(&dry);
    assert_eq!(dry.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stderr.contains(&format!("image {image}:1.4 at {verified}"))
            && stderr.contains("`test-api@production` has no verified version yet"),
        "{stderr}"
    );
    assert!(
        stdout.contains("Plan for `test-api@production`"),
        "{stdout}"
    );
    assert!(coolify_apps(&world).len() == 1, "a dry run changes nothing");

    let promoted = world
        .run(&[
            "promote",
            "test-api",
            "--from",
            "staging",
            "--to",
            "production",
        ])
        .await;
    let (stdout, stderr) = text(&promoted);
    assert_eq!(promoted.status.code(), Some(0), "{stdout}{stderr}");
    let production = world
        .sandbox
        .coolify
        .compose_of(&uuid_of(&world, "test-api@production"))
        .expect("compose");
    assert!(
        production.contains(&verified) && !production.contains(&moved),
        "{production}"
    );
    // Production's own domain and settings, not staging's.
    assert!(!production.contains("LOG_LEVEL: debug"), "{production}");
    let history = ok(&world, &["history", "test-api", "--env", "production"]).await;
    assert!(
        history.contains(&format!("(promotion of {verified} from run "))
            && history.contains(" of test-api@staging)"),
        "{history}"
    );
    let json = ok(
        &world,
        &["history", "test-api@production", "--output", "json"],
    )
    .await;
    assert!(
        json.contains("\"origin\":\"promotion\"")
            && json.contains("\"promoted_from\":{")
            && json.contains("\"environment\":\"staging\""),
        "{json}"
    );
    let again = world
        .run(&[
            "promote",
            "test-api",
            "--from",
            "staging",
            "--to",
            "production",
        ])
        .await;
    let (stdout, stderr) = text(&again);
    assert_eq!(again.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stderr.contains("already runs it"), "{stderr}");
    assert!(stdout.contains("(no changes)"), "{stdout}{stderr}");

    // A staging run that did not complete is never promoted.
    world
        .sandbox
        .app
        .set("new.example.com", Behaviour::Fail(500));
    let broken = spec_with_environments(
        &world,
        "broken.yaml",
        "    healthcheck:\n      timeout: 2\n",
    );
    let failed = apply_env(&world, &broken, "staging").await;
    assert_eq!(failed.status.code(), Some(1), "{:?}", text(&failed));
    let refused = world
        .run(&[
            "promote",
            "test-api",
            "--from",
            "staging",
            "--to",
            "production",
            "--spec",
            path(&spec),
        ])
        .await;
    let (stdout, stderr) = text(&refused);
    assert_eq!(refused.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stderr.contains("not COMPLETE: only what an environment verified is promoted")
            && stderr.contains("apply the spec with `--env staging`"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preview_environments_come_and_go_by_name() {
    let world = World::start().await;
    let spec = spec_with_environments(&world, "app.yaml", "");
    for preview in ["preview-7", "preview-8"] {
        let applied = apply_env(&world, &spec, preview).await;
        let (stdout, stderr) = text(&applied);
        assert_eq!(
            applied.status.code(),
            Some(0),
            "{preview}: {stdout}{stderr}"
        );
        assert!(
            records(&world).contains(&(
                format!("{preview}.example.com"),
                format!("fabrik:acme/test-api@{preview}")
            )),
            "{:?}",
            records(&world)
        );
    }
    let shown = ok(&world, &["status"]).await;
    assert!(
        shown.contains("test-api@preview-7: COMPLETE") && shown.contains(", age 0m"),
        "{shown}"
    );
    ok(
        &world,
        &["destroy", "test-api", "--env", "preview-7", "--yes"],
    )
    .await;
    let shown = ok(&world, &["status"]).await;
    assert!(
        !shown.contains("test-api@preview-7") && shown.contains("test-api@preview-8: COMPLETE"),
        "{shown}"
    );
    assert!(
        !records(&world)
            .iter()
            .any(|(name, _)| name == "preview-7.example.com"),
        "{:?}",
        records(&world)
    );
    // A name the pattern does not stand for is refused.
    let refused = apply_env(&world, &spec, "preview-").await;
    assert_eq!(refused.status.code(), Some(2), "{:?}", text(&refused));

    // `--env` over the project's specs works on those that have the environment and
    // says which it left alone.
    world.spec("worker.yaml", |s| {
        s.replace("name: test-api", "name: worker")
            .replace("domain: api.example.com", "domain: bad.example.com")
    });
    let output = world.run(&["plan", "--env", "preview-8"]).await;
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("Plan for `test-api@preview-8`"), "{stdout}");
    assert!(
        stderr.contains("note: `worker.yaml` has no environment `preview-8`: left alone"),
        "{stderr}"
    );
}

/// Validation reports an environment's problems with file, line and field, named as the
/// environment's; a problem every environment shares is said once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_environments_problems_are_located_in_it() {
    let world = World::start().await;
    let spec = world.spec("app.yaml", |s| {
        format!(
            "{}environments:\n  staging:\n    domain: localhost\n  production:\n    source: {{image: x}}\n  preview-*:\n    domain: previews.example.com\n",
            s.replace("  environment: production\n", "")
        )
    });
    let output = world.run(&["validate", path(&spec)]).await;
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(2), "{stdout}{stderr}");
    let file = path(&spec);
    for expected in [
        format!("{file}:25:13 environments.staging.domain:"),
        format!("{file}:27:5 environments.production.source: cannot differ between environments"),
        "environments.preview-*.domain: `preview-1` and `preview-9999999` would share the domain previews.example.com".to_owned(),
    ] {
        assert!(stderr.contains(&expected), "{expected}\n{stderr}");
    }
    // A problem of the spec itself, which every environment shares, is said once, where
    // it is written.
    let base = world.spec("base.yaml", |s| {
        format!(
            "{}environments:\n  staging:\n    domain: new.example.com\n  production: {{}}\n",
            s.replace("  environment: production\n", "")
                .replace("port: 8000", "port: 0")
        )
    });
    let output = world.run(&["validate", path(&base)]).await;
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(2), "{stdout}{stderr}");
    let file = path(&base);
    assert_eq!(
        stderr.matches(&format!("{file}:8:7 port:")).count(),
        1,
        "{stderr}"
    );
    assert!(!stderr.contains(".port:"), "{stderr}");

    // The fixture's `coolify.environment` for every environment: they would share it.
    let shared = world.spec("shared.yaml", |s| {
        format!("{s}environments:\n  staging:\n    domain: new.example.com\n  production: {{}}\n")
    });
    let output = world.run(&["validate", path(&shared)]).await;
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(2), "{stdout}{stderr}");
    assert!(
        stderr.contains("environments.production.coolify.environment: `staging` and `production` would share the Coolify project `fabrik-tests` and environment `production`")
            && stderr.contains("remove `coolify.environment` from the spec"),
        "{stderr}"
    );
}

/// A state the previous release wrote (`fixtures/state/v2`: three applies and a
/// rollback, schema version 2) opens with this one, is migrated, and keeps working: the
/// app is the deployment without an environment, its history is whole, the next apply
/// completes, and an environment of the same app is added beside it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_of_the_previous_release_opens_migrates_and_keeps_working() {
    use std::os::unix::fs::PermissionsExt;
    let world = World::start().await;
    let dir = world.dir.path();
    let fixture = crate::support::root().join("fixtures/state/v2");
    std::fs::create_dir_all(dir.join(".fabrik")).expect("mkdir");
    for (from, to) in [
        ("state.db", ".fabrik/state.db"),
        ("fingerprint.key", ".fabrik/fingerprint.key"),
        ("dotenv", ".env"),
        ("app.yaml", "app.yaml"),
    ] {
        std::fs::copy(fixture.join(from), dir.join(to)).expect("copy");
        std::fs::set_permissions(dir.join(to), std::fs::Permissions::from_mode(0o600))
            .expect("mode");
    }
    // The secret the old release's applies saw in their environment.
    let run = |args: &[&str]| {
        let mut cmd = world.fabrik();
        cmd.env("DATABASE_URL", "postgres://app:pw@db.internal:5432/app")
            .args(args);
        World::output(cmd)
    };
    let output = run(&["status"]).await;
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stdout.starts_with("test-api: COMPLETE (app.yaml), spec ddf6be9af05b"),
        "{stdout}"
    );
    let output = run(&["history", "test-api"]).await;
    let (history, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{history}{stderr}");
    assert_eq!(history.lines().count(), 3, "{history}");
    assert!(
        history.contains("(rollback to the version of run 63a66bbde671232b)"),
        "{history}"
    );
    let export = run(&["state", "export"]).await;
    let export: serde_json::Value =
        serde_json::from_slice(&export.stdout).expect("the export is JSON");
    assert_eq!(export["schema_version"], 3, "migrated");
    assert_eq!(export["deployments"][0]["environment"], "");

    // The spec moved on after the rollback: the plan says so, and the apply deploys it
    // (into this sandbox, where the old one's resources never existed).
    let output = run(&["plan", "app.yaml"]).await;
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains(r#"env.LOG_LEVEL: "info" → "debug""#),
        "{stdout}"
    );
    let output = run(&["apply", "app.yaml"]).await;
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}{stderr}");
    let output = run(&["apply", "app.yaml"]).await;
    assert!(
        text(&output).0.contains("(no changes)"),
        "{:?}",
        text(&output)
    );

    // Environments added to the spec: a staging deployment beside the old one.
    let spec = dir.join("app.yaml");
    let text_now = std::fs::read_to_string(&spec).expect("spec");
    std::fs::write(
        &spec,
        format!(
            "{}environments:\n  staging:\n    domain: new.example.com\n",
            text_now.replace("  environment: production\n", "")
        ),
    )
    .expect("spec");
    let output = run(&["apply", "app.yaml", "--env", "staging"]).await;
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}{stderr}");
    let output = run(&["status"]).await;
    let (stdout, _) = text(&output);
    assert!(
        stdout.contains("test-api: COMPLETE") && stdout.contains("test-api@staging: COMPLETE"),
        "{stdout}"
    );
}

/// The webhook's JSON document names the environment, and a promotion's the run it
/// promoted; a chat line names the app with its environment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_name_the_environment_and_what_a_promotion_promoted() {
    let world = World::start().await;
    let (hook, url) = crate::lifecycle::Receiver::start(&[]).await;
    let spec = spec_with_environments(&world, "app.yaml", "");
    std::fs::write(
        &spec,
        format!(
            "{}notify:\n  - url: {url}\n    format: json\n",
            std::fs::read_to_string(&spec).expect("spec")
        ),
    )
    .expect("spec");
    let staged = apply_env(&world, &spec, "staging").await;
    assert_eq!(staged.status.code(), Some(0), "{:?}", text(&staged));
    let promoted = world
        .run(&[
            "promote",
            "test-api",
            "--from",
            "staging",
            "--to",
            "production",
        ])
        .await;
    assert_eq!(promoted.status.code(), Some(0), "{:?}", text(&promoted));
    let bodies = hook.bodies();
    assert_eq!(bodies.len(), 2, "{bodies:?}");
    assert_eq!(bodies[0]["app"], "test-api");
    assert_eq!(bodies[0]["environment"], "staging");
    assert_eq!(bodies[0]["origin"], "apply");
    let staging_run = bodies[0]["run_id"].clone();
    assert_eq!(bodies[1]["environment"], "production");
    assert_eq!(bodies[1]["origin"], "promotion");
    assert_eq!(bodies[1]["restores_run"], staging_run, "{bodies:?}");
}

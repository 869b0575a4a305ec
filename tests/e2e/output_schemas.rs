//! Every command that prints data with `--output json` prints lines its documented
//! schema (`docs/schemas/output/`, described in `docs/output.md`) accepts: the happy
//! path, failures, a changed plan, a rollback, and gc's orphans.

use std::process::Output;

use serde_json::Value;

use crate::deploy::{World, text};
use crate::schemas::schema_problems;

/// The JSON lines of `output`, each checked against `docs/schemas/output/SCHEMA.json`;
/// their `event` fields (or `-` for lines without one).
fn checked(schema: &str, output: &Output) -> Vec<String> {
    let (stdout, stderr) = text(output);
    assert!(
        !stdout.trim().is_empty(),
        "{schema}: no JSON line:\n{stderr}"
    );
    let mut events = Vec::new();
    for line in stdout.lines() {
        let value: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("{schema}: not JSON ({e}): {line}\n{stderr}"));
        let problems = schema_problems(&format!("output/{schema}.json"), &value);
        assert!(problems.is_empty(), "{schema}: {problems:?} in\n{line}");
        events.push(value["event"].as_str().unwrap_or("-").to_owned());
    }
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_json_line_matches_its_documented_schema() {
    let world = World::start().await;
    // Everything printed, scanned for secret values at the end.
    let mut seen: Vec<String> = Vec::new();
    let mut check = |schema: &str, output: &Output| {
        let (stdout, stderr) = text(output);
        seen.push(format!("{stdout}{stderr}"));
        checked(schema, output)
    };
    let spec = world.spec("app.yaml", |s| s);
    let spec_arg = spec.to_str().expect("utf-8");
    let broken = world.spec("broken.yaml", |s| s.replace("timeout: 30", "timeot: 30"));
    let broken_arg = broken.to_str().expect("utf-8");

    let events = check(
        "validate",
        &world
            .run(&["validate", "--output", "json", spec_arg, broken_arg])
            .await,
    );
    assert_eq!(events, ["invalid", "valid"]);
    let events = check(
        "plan",
        &world.run(&["plan", "--output", "json", spec_arg]).await,
    );
    assert_eq!(events, ["plan", "plan_summary"]);
    let events = check(
        "doctor",
        &world.run(&["doctor", "--output", "json", spec_arg]).await,
    );
    assert!(
        events.len() >= 5 && events.iter().all(|e| e == "check"),
        "{events:?}"
    );

    let applied = world.apply(&spec, &["--output", "json"]).await;
    assert_eq!(applied.status.code(), Some(0), "{:?}", text(&applied));
    let events = check("apply", &applied);
    assert_eq!(events.last().map(String::as_str), Some("summary"));
    assert!(events.contains(&"resource".to_owned()), "{events:?}");

    let changed = world.spec("app.yaml", |s| {
        s.replace("LOG_LEVEL: info", "LOG_LEVEL: debug")
    });
    let changed_arg = changed.to_str().expect("utf-8");
    check(
        "plan",
        &world.run(&["plan", "--output", "json", changed_arg]).await,
    );
    let again = world.apply(&changed, &["--output", "json"]).await;
    assert_eq!(again.status.code(), Some(0), "{:?}", text(&again));
    check("apply", &again);
    let rolled = world
        .run(&[
            "rollback",
            "test-api",
            "--output",
            "json",
            "--deploy-timeout",
            "20",
        ])
        .await;
    assert_eq!(rolled.status.code(), Some(0), "{:?}", text(&rolled));
    check("apply", &rolled);

    // A failure with a rollback, and an invalid spec given to apply.
    let bad = world.bad_spec(500, |s| s);
    let failed = world.apply(&bad, &["--output", "json"]).await;
    assert_eq!(failed.status.code(), Some(1), "{:?}", text(&failed));
    let events = check("apply", &failed);
    assert_eq!(events.last().map(String::as_str), Some("summary"));
    let invalid = world.apply(&broken, &["--output", "json"]).await;
    assert_eq!(check("apply", &invalid), ["invalid"]);

    let events = check("status", &world.run(&["status", "--output", "json"]).await);
    assert_eq!(events.len(), 2, "one line per deployment: {events:?}");
    let runs = check(
        "history",
        &world
            .run(&["history", "test-api", "--output", "json"])
            .await,
    );
    assert_eq!(runs.len(), 3, "apply, apply, rollback: {runs:?}");
    check(
        "providers-list",
        &world.run(&["providers", "list", "--output", "json"]).await,
    );
    // The kit, with a step skipped (no --edit) and the rest passed.
    check(
        "providers-test",
        &world
            .run(&[
                "providers",
                "test",
                "dns",
                "--name",
                "kit.example.com",
                "--output",
                "json",
            ])
            .await,
    );
    // A project template that loads and one that does not, beside the built-in ones.
    let templates = world.dir.path().join("templates");
    std::fs::create_dir_all(&templates).expect("templates");
    std::fs::write(
        templates.join("mine.yaml"),
        "description: mine\nsources: [image]\nservice: app\n---\nservices:\n  app:\n    image: {{ image }}\n",
    )
    .expect("template");
    std::fs::write(templates.join("broken.yaml"), "no header\n").expect("template");
    let listed = world.run(&["templates", "--output", "json"]).await;
    check("templates", &listed);
    let (stdout, _) = text(&listed);
    assert!(stdout.contains("\"broken\":"), "{stdout}");
    assert!(stdout.contains("\"name\":\"mine\""), "{stdout}");
    // A destroy is in the history too, and the app is DESTROYED in status.
    let destroyed = world.run(&["destroy", "test-api", "--yes"]).await;
    assert_eq!(destroyed.status.code(), Some(0), "{:?}", text(&destroyed));
    let lines = check(
        "history",
        &world
            .run(&["history", "test-api", "--output", "json"])
            .await,
    );
    assert_eq!(lines.len(), 4, "a destroy, then the runs: {lines:?}");
    check(
        "status",
        &world.run(&["status", "test-api", "--output", "json"]).await,
    );
    let applied = world.apply(&spec, &[]).await;
    assert_eq!(applied.status.code(), Some(0), "{:?}", text(&applied));

    // The state lost: every resource is an orphan gc lists, then deletes.
    std::fs::rename(
        world.dir.path().join(".fabrik/state.db"),
        world.dir.path().join("lost.db"),
    )
    .expect("state moved away");
    let orphans = check("gc", &world.run(&["gc", "--output", "json"]).await);
    assert!(orphans.len() >= 2, "{orphans:?}");
    check(
        "gc",
        &world
            .run(&["gc", "--delete", "--yes", "--output", "json"])
            .await,
    );
    let printed = seen.join("\n");
    crate::deploy::assert_no_secret(&world, &[("JSON output", &printed)]);
}

/// The warnings a run gives before it starts (a short secret, a plain variable holding a
/// secret's value) are lines of the documented schema too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warning_lines_match_the_schema() {
    let world = World::start().await;
    let spec = world.spec("app.yaml", |t| {
        t.replace(
            "LOG_LEVEL: info",
            &format!("LOG_LEVEL: info\n  COPY: {}", crate::deploy::DATABASE_URL),
        )
    });
    std::fs::write(world.dir.path().join(".env"), "API_KEY=abc\n").expect(".env");
    let output = world.apply(&spec, &["--output", "json"]).await;
    assert_eq!(output.status.code(), Some(0), "{:?}", text(&output));
    let events = checked("apply", &output);
    assert!(
        events.iter().filter(|e| *e == "warning").count() >= 2,
        "{events:?}"
    );

    // Credentials over plain HTTP (the run then fails: the name does not resolve).
    let mut cmd = world.command(&spec);
    cmd.args(["--output", "json"])
        .env("CLOUDFLARE_API_URL", "http://cloudflare.invalid");
    let output = World::output(cmd).await;
    checked("apply", &output);
    assert!(
        text(&output)
            .0
            .contains("\"warning\":\"cleartext_credential\""),
        "{:?}",
        text(&output)
    );
}

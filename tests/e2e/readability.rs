//! What people and scripts read after a deploy: `status` and `history` in both formats,
//! times as RFC 3339, short hashes, one wording for an unknown app, and the plan's
//! summary line and before/after values.

use serde_json::Value;

use crate::deploy::{World, text};

fn json_lines(output: &std::process::Output) -> Vec<Value> {
    let (stdout, stderr) = text(output);
    assert_eq!(output.status.code(), Some(0), "{stdout}{stderr}");
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn is_rfc3339(value: &Value) -> bool {
    value.as_str().is_some_and(|t| {
        t.len() == 20
            && t.ends_with('Z')
            && t.as_bytes()[10] == b'T'
            && t[..4].parse::<u32>().is_ok()
    })
}

#[tokio::test]
async fn status_and_history_read_well_in_both_formats() {
    let world = World::start().await;
    let spec = world.spec("app.yaml", |s| s);
    let applied = world.apply(&spec, &[]).await;
    assert_eq!(applied.status.code(), Some(0), "{:?}", text(&applied));

    // Human: an RFC 3339 time and a 12-digit hash, not epoch seconds and 64 hex digits.
    let history = world.run(&["history", "test-api"]).await;
    let (out, err) = text(&history);
    assert_eq!(history.status.code(), Some(0), "{out}{err}");
    let line = out.lines().next().expect("a run");
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(words[1], "COMPLETE", "{line}");
    assert!(is_rfc3339(&Value::from(words[2])), "{line}");
    let hash = line.split("spec ").nth(1).expect("a spec hash");
    assert_eq!(hash.len(), 12, "{line}");
    let status = world.run(&["status"]).await;
    let (out, _) = text(&status);
    assert!(out.starts_with("test-api: COMPLETE"), "{out}");
    assert_eq!(
        out.lines()
            .next()
            .and_then(|l| l.split("spec ").nth(1))
            .map(str::len),
        Some(12),
        "{out}"
    );

    // JSON: one object per deployment / run, times in RFC 3339.
    let deployments = json_lines(&world.run(&["status", "--output", "json"]).await);
    assert_eq!(deployments.len(), 1);
    assert_eq!(deployments[0]["app"], "test-api");
    assert_eq!(deployments[0]["state"], "COMPLETE");
    let kinds: Vec<&str> = deployments[0]["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .filter_map(|r| r["kind"].as_str())
        .collect();
    assert_eq!(kinds, ["dns-record", "service"]);
    let runs = json_lines(
        &world
            .run(&["history", "test-api", "--output", "json"])
            .await,
    );
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["state"], "COMPLETE");
    assert!(is_rfc3339(&runs[0]["started_at"]), "{}", runs[0]);
    assert!(is_rfc3339(&runs[0]["finished_at"]), "{}", runs[0]);
    assert!(
        runs[0]["seconds"].as_f64().is_some_and(|s| s >= 0.0),
        "{}",
        runs[0]
    );
    assert!(
        runs[0]["spec_hash"]
            .as_str()
            .is_some_and(|h| h.starts_with("sha256:"))
    );

    // The state export gives its times the same way.
    let export = world.run(&["state", "export"]).await;
    let dump: Value = serde_json::from_slice(&export.stdout).expect("JSON");
    assert!(
        is_rfc3339(&dump["runs"][0]["started_at"]),
        "{}",
        dump["runs"][0]
    );
    assert!(
        is_rfc3339(&dump["deployments"][0]["created_at"]),
        "{}",
        dump["deployments"][0]
    );
}

#[tokio::test]
async fn an_unknown_app_gets_the_same_words_from_status_and_history() {
    let world = World::start().await;
    let spec = world.spec("app.yaml", |s| s);
    assert_eq!(world.apply(&spec, &[]).await.status.code(), Some(0));
    let mut errors = Vec::new();
    for args in [["status", "nope"], ["history", "nope"]] {
        let output = world.run(&args).await;
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        let (_, err) = text(&output);
        assert!(err.contains("hint: the project's apps: test-api"), "{err}");
        errors.push(err);
    }
    assert_eq!(errors[0], errors[1]);
    assert!(
        errors[0].starts_with("error: no deployment named `nope` in project `"),
        "{}",
        errors[0]
    );

    // From another directory with the same state: both say whose apps the state holds,
    // neither lists another project's apps as its own.
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let state = world.dir.path().join(".fabrik/state.db");
    for args in [vec!["status"], vec!["history", "test-api"]] {
        let output = world
            .fabrik()
            .current_dir(elsewhere.path())
            .env("FABRIK_STATE_DB", &state)
            .args(&args)
            .output()
            .expect("runs");
        let (out, err) = text(&output);
        assert!(!out.contains("test-api: COMPLETE"), "{args:?}: {out}");
        assert!(err.contains("holds apps of project `"), "{args:?}: {err}");
    }
}

#[tokio::test]
async fn the_plan_counts_its_changes_and_shows_values_before_and_after() {
    let world = World::start().await;
    let spec = world.spec("app.yaml", |s| s);
    assert_eq!(world.apply(&spec, &[]).await.status.code(), Some(0));
    let changed = world.spec("app.yaml", |s| {
        s.replace("LOG_LEVEL: info", "LOG_LEVEL: debug")
    });
    let plan = world.run(&["plan", changed.to_str().expect("utf-8")]).await;
    let (out, err) = text(&plan);
    assert!(
        out.contains("Plan: 0 to add, 1 to change, 0 to destroy."),
        "{out}{err}"
    );
    assert!(!out.contains("changed (21 → 21 lines)"), "{out}");
    assert!(out.contains("compose: 1 line removed, 1 added"), "{out}");

    let lines = json_lines(
        &world
            .run(&["plan", "--output", "json", changed.to_str().expect("utf-8")])
            .await,
    );
    let changes = lines[0]["plan"]["steps"][1]["changes"]
        .as_array()
        .expect("changes");
    let log = changes
        .iter()
        .find(|c| c["field"] == "env.LOG_LEVEL")
        .expect("the variable's change");
    assert_eq!(
        (&log["before"], &log["after"]),
        (&Value::from("info"), &Value::from("debug"))
    );
    assert_eq!(
        lines.last().expect("a summary"),
        &serde_json::json!({ "event": "plan_summary", "add": 0, "change": 1, "destroy": 0 })
    );
}

use predicates::prelude::*;

use crate::support::fabrik;

#[test]
fn dry_run_prints_the_plan_without_credentials_or_network() {
    // `fabrik()` clears the environment: no tokens, no proxy, no HOME.
    fabrik()
        .args(["apply", "--dry-run", "fixtures/test-api.yaml"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("Plan for `test-api` (fixtures/test-api.yaml):"))
        .stdout(predicate::str::contains("+ dns-record api.example.com: A record to the IP of Coolify server `vps1` [rollback: manual]"))
        .stdout(predicate::str::contains("+ service test-api: python-api template, image ghcr.io/acme/test-api:1.4, port 8000"))
        .stdout(predicate::str::contains("> verification https://api.example.com/health: GET until 200, every 1 s, for up to 30 s"))
        .stdout(predicate::str::contains("no provider was called"));
}

#[test]
fn plan_is_the_same_as_dry_run() {
    let plan = fabrik()
        .args(["plan", "fixtures/test-api.yaml"])
        .output()
        .expect("runs");
    let dry = fabrik()
        .args(["apply", "--dry-run", "fixtures/test-api.yaml"])
        .output()
        .expect("runs");
    assert_eq!(plan.status.code(), Some(0));
    assert_eq!(plan.stdout, dry.stdout);
}

#[test]
fn detailed_exitcode_reports_changes() {
    fabrik()
        .args([
            "apply",
            "--dry-run",
            "--detailed-exitcode",
            "fixtures/test-api.yaml",
        ])
        .assert()
        .code(3);
    fabrik()
        .args(["plan", "--detailed-exitcode", "fixtures/test-api.yaml"])
        .assert()
        .code(3);
}

#[test]
fn json_plan_is_one_object_per_spec() {
    let output = fabrik()
        .args([
            "apply",
            "--dry-run",
            "--output",
            "json",
            "fixtures/test-api.yaml",
            "fixtures/test-api.yaml",
        ])
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(0));
    let stdout = String::from_utf8(output.stdout).expect("utf-8");
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(
        lines[2],
        serde_json::json!({ "event": "plan_summary", "add": 4, "change": 0, "destroy": 0 })
    );
    let steps = lines[0]["plan"]["steps"].as_array().expect("steps");
    let kinds: Vec<&str> = steps.iter().filter_map(|s| s["kind"].as_str()).collect();
    assert_eq!(
        kinds,
        ["dns-record", "service", "deployment", "verification"]
    );
    assert_eq!(steps[0]["action"], "create");
    assert_eq!(steps[0]["rollback"], "manual");
}

#[test]
fn invalid_spec_stops_apply_before_anything_else() {
    fabrik()
        .args([
            "apply",
            "--dry-run",
            "fixtures/test-api.yaml",
            "fixtures/bad/domain-localhost.yaml",
        ])
        .assert()
        .code(2)
        .stdout(predicate::str::is_empty())
        .stderr(predicate::str::contains(
            "domain: \"localhost\" is not a public DNS name",
        ));
}

#[test]
fn a_real_apply_without_credentials_names_what_to_set_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(
        crate::support::root().join("fixtures/test-api.yaml"),
        dir.path().join("app.yaml"),
    )
    .expect("copy");
    fabrik()
        .current_dir(dir.path())
        .args(["apply", "app.yaml"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("`base-url` is required"))
        .stderr(predicate::str::contains("COOLIFY_URL"));
}

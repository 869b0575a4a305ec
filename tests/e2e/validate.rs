use predicates::prelude::*;

use crate::support::{expectations, fabrik, root};

#[test]
fn canonical_fixture_is_valid() {
    fabrik()
        .args(["validate", "fixtures/test-api.yaml"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains(
            "ok: fixtures/test-api.yaml (test-api",
        ));
}

/// Every bad fixture exits with the validation code and prints each error it declares,
/// naming file:line:column and field; none panics.
#[test]
fn every_bad_fixture_produces_its_declared_errors() {
    let mut fixtures: Vec<String> = std::fs::read_dir(root().join("fixtures/bad"))
        .expect("fixtures/bad exists")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .map(|p| {
            format!(
                "fixtures/bad/{}",
                p.file_name().and_then(|n| n.to_str()).expect("utf-8 name")
            )
        })
        .collect();
    fixtures.push("fixtures/bad/project-template/app.yaml".to_owned());
    fixtures.sort();
    assert!(
        fixtures.len() >= 15,
        "expected the bad fixtures, found {fixtures:?}"
    );
    for fixture in fixtures {
        let expected = expectations(&fixture);
        assert!(
            !expected.is_empty(),
            "{fixture} declares no `# expect:` line"
        );
        let output = fabrik()
            .args(["validate", &fixture])
            .output()
            .expect("runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{fixture}: {stderr}");
        assert!(!stderr.contains("panicked"), "{fixture} panicked: {stderr}");
        for line in expected {
            assert!(
                stderr.contains(&line),
                "{fixture}: expected `{line}` in:\n{stderr}"
            );
        }
    }
}

#[test]
fn reports_problems_of_every_spec_and_validates_the_rest() {
    fabrik()
        .args([
            "validate",
            "fixtures/bad/env.yaml",
            "fixtures/test-api.yaml",
            "fixtures/bad/rollback.yaml",
        ])
        .assert()
        .code(2)
        .stdout(predicate::str::contains("ok: fixtures/test-api.yaml"))
        .stderr(predicate::str::contains(
            "fixtures/bad/env.yaml:12:3 env.1BAD",
        ))
        .stderr(predicate::str::contains(
            "fixtures/bad/rollback.yaml:9:12 rollback.coolify",
        ));
}

#[test]
fn json_output_carries_located_diagnostics() {
    let output = fabrik()
        .args([
            "validate",
            "--output",
            "json",
            "fixtures/bad/healthcheck.yaml",
        ])
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(2));
    let line = String::from_utf8(output.stdout).expect("utf-8");
    let event: serde_json::Value = serde_json::from_str(line.trim()).expect("one JSON line");
    assert_eq!(event["event"], "invalid");
    let diagnostics = event["diagnostics"].as_array().expect("diagnostics");
    assert_eq!(diagnostics.len(), 2);
    assert_eq!(diagnostics[0]["field"], "healthcheck.path");
    assert_eq!(diagnostics[0]["location"]["line"], 9);
    assert_eq!(diagnostics[0]["location"]["column"], 9);
    assert_eq!(diagnostics[1]["field"], "healthcheck.timeout");
}

#[test]
fn a_missing_file_is_a_clear_error() {
    fabrik()
        .args(["validate", "fixtures/does-not-exist.yaml"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "cannot read `fixtures/does-not-exist.yaml`",
        ));
}

/// With no spec named, `validate`, `plan` and `apply` take the project's: `fabrik.yaml`
/// if there is one, else every spec in the project's directory (not other YAML files).
#[test]
fn the_project_s_specs_are_used_when_none_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = |args: &[&str]| {
        fabrik()
            .current_dir(dir.path())
            .args(args)
            .output()
            .expect("runs")
    };
    let empty = run(&["plan"]);
    assert_eq!(empty.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&empty.stderr);
    assert!(
        stderr.contains("error: no spec named, and no spec in "),
        "{stderr}"
    );
    assert!(stderr.contains("fabrik new --template"), "{stderr}");

    for name in ["web", "api"] {
        let new = run(&["new", "--template", "node-api", name, "--server", "vps1"]);
        assert_eq!(new.status.code(), Some(0));
    }
    std::fs::write(
        dir.path().join("compose.yaml"),
        "services:\n  web:\n    image: nginx\n",
    )
    .expect("compose");
    let validate = run(&["validate"]);
    let stderr = String::from_utf8_lossy(&validate.stderr);
    assert_eq!(validate.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("using the project's specs: api.yaml, web.yaml"),
        "{stderr}"
    );
    let plan = run(&["plan"]);
    let stdout = String::from_utf8_lossy(&plan.stdout);
    assert!(
        stdout.contains("Plan for `api`") && stdout.contains("Plan for `web`"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Plan: 4 to add, 0 to change, 0 to destroy."),
        "{stdout}"
    );

    // `fabrik.yaml` is the project's spec by convention.
    std::fs::rename(dir.path().join("web.yaml"), dir.path().join("fabrik.yaml")).expect("rename");
    let plan = run(&["plan"]);
    let stdout = String::from_utf8_lossy(&plan.stdout);
    assert!(stdout.contains("Plan for `web` (fabrik.yaml)"), "{stdout}");
    assert!(!stdout.contains("Plan for `api`"), "{stdout}");
}

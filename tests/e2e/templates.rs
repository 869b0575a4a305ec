use predicates::prelude::*;

use crate::support::fabrik;

#[test]
fn lists_the_built_in_templates() {
    let output = fabrik().arg("templates").output().expect("runs");
    assert_eq!(output.status.code(), Some(0));
    let stdout = String::from_utf8(output.stdout).expect("utf-8");
    for name in ["python-api", "node-api", "static-site", "docker-image"] {
        assert!(
            stdout.lines().any(|l| l.starts_with(name)),
            "{name} missing from:\n{stdout}"
        );
    }
}

#[test]
fn lists_and_uses_project_templates() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("templates")).expect("mkdir");
    std::fs::write(dir.path().join("fabrik.toml"), "").expect("project file");
    std::fs::write(
        dir.path().join("templates/go-api.yaml"),
        "description: Go API for tests\ndefault_port: 9000\nsources: [image]\n---\nservices:\n  app:\n    image: {{ image }}\n    expose: [{{ port }}]\n",
    )
    .expect("template");
    fabrik()
        .current_dir(dir.path())
        .args(["templates", "--output", "json"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("\"name\":\"go-api\""))
        .stdout(predicate::str::contains("\"default_port\":9000"));
    std::fs::create_dir(dir.path().join("apps")).expect("mkdir");
    std::fs::write(
        dir.path().join("apps/svc.yaml"),
        "name: svc\ntemplate: go-api\ndomain: svc.example.com\nserver: vps1\nsource: {image: 'ghcr.io/acme/svc:2'}\n",
    )
    .expect("spec");
    // The spec is in a subdirectory: the project is found through fabrik.toml.
    fabrik()
        .current_dir(dir.path())
        .args(["plan", "apps/svc.yaml"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains(
            "go-api template, image ghcr.io/acme/svc:2, port 9000",
        ));
}

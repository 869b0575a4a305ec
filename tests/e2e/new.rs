use predicates::prelude::*;

use crate::support::fabrik;

#[test]
fn every_template_gives_a_spec_that_validates() {
    let dir = tempfile::tempdir().expect("tempdir");
    for template in ["python-api", "node-api", "static-site", "docker-image"] {
        let name = format!("app-{template}");
        fabrik()
            .current_dir(dir.path())
            .args(["new", "--template", template, &name])
            .assert()
            .code(0)
            .stderr(predicate::str::contains(format!("wrote ./{name}.yaml")));
        fabrik()
            .current_dir(dir.path())
            .args(["validate", &format!("{name}.yaml")])
            .assert()
            .code(0);
    }
}

#[test]
fn refuses_to_overwrite_without_force() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("svc.yaml");
    std::fs::write(&path, "keep me\n").expect("write");
    fabrik()
        .current_dir(dir.path())
        .args(["new", "--template", "node-api", "svc"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("already exists"))
        .stderr(predicate::str::contains("--force"));
    assert_eq!(std::fs::read_to_string(&path).expect("read"), "keep me\n");
    fabrik()
        .current_dir(dir.path())
        .args(["new", "--template", "node-api", "svc", "--force"])
        .assert()
        .code(0);
    assert!(
        std::fs::read_to_string(&path)
            .expect("read")
            .contains("template: node-api")
    );
}

#[test]
fn rejects_bad_names_and_unknown_templates() {
    let dir = tempfile::tempdir().expect("tempdir");
    fabrik()
        .current_dir(dir.path())
        .args(["new", "--template", "node-api", "Bad_Name"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "\"Bad_Name\" is not a valid app name",
        ))
        .stderr(predicate::str::contains(
            "fabrik new --template node-api bad-name",
        ))
        // Not an error located in a file that was never written.
        .stderr(predicate::str::contains(".yaml").not());
    fabrik()
        .current_dir(dir.path())
        .args(["new", "--template", "rails", "web"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("`rails` is not a template"));
    assert_eq!(
        std::fs::read_dir(dir.path()).expect("read dir").count(),
        0,
        "nothing written"
    );
}

#[test]
fn domain_and_server_can_be_given_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    fabrik()
        .current_dir(dir.path())
        .args([
            "new",
            "--template",
            "node-api",
            "shop",
            "--domain",
            "shop.example.com",
            "--server",
            "vps1",
        ])
        .assert()
        .code(0)
        .stderr(predicate::str::contains(
            "set `source`, then run `fabrik plan ./shop.yaml`",
        ));
    let text = std::fs::read_to_string(dir.path().join("shop.yaml")).expect("read");
    assert!(text.contains("\ndomain: shop.example.com "), "{text}");
    assert!(text.contains("\nserver: vps1 "), "{text}");
    fabrik()
        .current_dir(dir.path())
        .args([
            "new",
            "--template",
            "node-api",
            "bad",
            "--domain",
            "localhost",
        ])
        .assert()
        .code(2);
    assert!(!dir.path().join("bad.yaml").exists());
}

//! A newcomer's first deploy, as the README tells it: `fabrik new`, then `apply` in the
//! local sandbox (the real `fabrik-sandbox` binary), then `status` in the same directory.

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::support::{cache_dir, kept_env};

/// `fabrik-sandbox`, built beside `fabrik` by `cargo test --workspace`.
fn sandbox_binary() -> PathBuf {
    let path = Path::new(env!("CARGO_BIN_EXE_fabrik")).with_file_name("fabrik-sandbox");
    assert!(
        path.is_file(),
        "{} is missing: build it with `cargo build -p fabrik-sim` (or run `cargo test --workspace`)",
        path.display()
    );
    path
}

/// Runs `fabrik ARGS` in `dir`, inside a sandbox when `sandboxed`.
fn run(dir: &Path, sandboxed: bool, args: &[&str]) -> Output {
    let fabrik = env!("CARGO_BIN_EXE_fabrik");
    let mut command = if sandboxed {
        let mut c = std::process::Command::new(sandbox_binary());
        c.args(["--exec", fabrik]);
        c
    } else {
        std::process::Command::new(fabrik)
    };
    command
        .current_dir(dir)
        .env_clear()
        .envs(kept_env())
        .env("FABRIK_CACHE_DIR", cache_dir())
        .args(args)
        .output()
        .expect("runs")
}

fn text(output: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}--- stderr\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn from_fabrik_new_to_a_deployed_app_with_no_failed_apply() {
    let project = tempfile::tempdir().expect("tempdir");
    let dir = project.path();
    // Any name in the sandbox's zone is served, not only the fixture's.
    let new = run(
        dir,
        false,
        &[
            "new",
            "--template",
            "node-api",
            "shop",
            "--domain",
            "shop.example.com",
            "--server",
            "vps1",
        ],
    );
    assert_eq!(new.status.code(), Some(0), "{}", text(&new));

    let apply = run(dir, true, &["apply", "shop.yaml"]);
    assert_eq!(apply.status.code(), Some(0), "{}", text(&apply));
    let out = text(&apply);
    assert!(
        out.contains("shop: COMPLETE https://shop.example.com/health"),
        "{out}"
    );
    assert!(
        out.contains("using resolve override shop.example.com:443"),
        "the override printed is the one used: {out}"
    );

    // The project's own state: `status` in the same directory shows the deployment.
    let status = run(dir, false, &["status"]);
    assert_eq!(status.status.code(), Some(0), "{}", text(&status));
    let shown = String::from_utf8_lossy(&status.stdout);
    assert!(shown.starts_with("shop: COMPLETE"), "{}", text(&status));

    // A new sandbox has forgotten everything: the next apply finds the resources gone
    // and creates them again.
    let again = run(dir, true, &["apply", "shop.yaml"]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert!(
        text(&again).contains("drift: service shop is gone"),
        "{}",
        text(&again)
    );
}

#[test]
fn an_unknown_server_is_reported_with_the_servers_coolify_has() {
    let project = tempfile::tempdir().expect("tempdir");
    let dir = project.path();
    let new = run(dir, false, &["new", "--template", "node-api", "blog"]);
    assert_eq!(new.status.code(), Some(0), "{}", text(&new));
    let apply = run(dir, true, &["apply", "blog.yaml"]);
    assert_eq!(apply.status.code(), Some(1), "{}", text(&apply));
    let out = text(&apply);
    assert!(
        out.contains("Coolify has no server named `my-server`; it has: vps1"),
        "{out}"
    );
    assert!(out.contains("nothing was changed"), "{out}");
}

//! The provider kit: any `dns` provider, loaded by path, run through the sequence a user
//! would against the sandbox: pin, apply, a no-op, a record edited by hand (repaired), a
//! lost state (`fabrik gc` finds and collects the orphans), apply again, destroy. The
//! providers written from `docs/providers.md` pass it: `simple-dns` (Rust, the SDK) and
//! `python-dns` (componentize-py).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::deploy::World;
use crate::support::{root, test_plugin};

fn text(output: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

async fn run_kit(component: &Path, name: &str) {
    let world = World::start().await;
    let dir = world.dir.path();
    std::fs::create_dir(dir.join("plugins")).expect("mkdir");
    std::fs::copy(component, dir.join("plugins/dns.wasm")).expect("copy");
    // The base URL and token come from the environment the sandbox sets: the project
    // file does not change when the sandbox's ports do.
    std::fs::write(
        dir.join("fabrik.toml"),
        "[project]\nname = \"acme\"\n\n[providers.dns]\npath = \"plugins/dns.wasm\"\n\
         config = { zone = \"example.com\" }\n\
         config-env = { base-url = \"CLOUDFLARE_API_URL\" }\n\
         secrets = { api-token = \"CLOUDFLARE_API_TOKEN\" }\n",
    )
    .expect("fabrik.toml");
    let spec = world.spec("app.yaml", |t| t);
    let records = || world.sandbox.cloudflare.records();

    let locked = world.run(&["providers", "lock"]).await;
    assert_eq!(locked.status.code(), Some(0), "{}", text(&locked));
    assert!(
        text(&locked).contains(&format!("dns: {name} ")),
        "{}",
        text(&locked)
    );

    let applied = world.apply(&spec, &[]).await;
    assert_eq!(applied.status.code(), Some(0), "{}", text(&applied));
    let record = records();
    assert_eq!(record.len(), 1, "{record:?}");
    assert_eq!(record[0]["name"], "api.example.com");
    assert_eq!(record[0]["comment"], "fabrik:acme/test-api");

    let again = world.apply(&spec, &[]).await;
    assert!(text(&again).contains("(no changes)"), "{}", text(&again));

    world
        .sandbox
        .cloudflare
        .edit_content("api.example.com", "198.51.100.99");
    let repaired = world.apply(&spec, &[]).await;
    assert_eq!(repaired.status.code(), Some(0), "{}", text(&repaired));
    assert_ne!(
        records()[0]["content"],
        "198.51.100.99",
        "the hand edit was repaired"
    );

    std::fs::remove_dir_all(dir.join(".fabrik")).expect("lose the state");
    let found = world.run(&["gc"]).await;
    assert!(
        text(&found).contains("orphan: dns dns-record api.example.com"),
        "{}",
        text(&found)
    );
    let collected = world.run(&["gc", "--delete", "--yes"]).await;
    assert_eq!(collected.status.code(), Some(0), "{}", text(&collected));
    assert!(records().is_empty(), "{:?}", records());

    let fresh = world.apply(&spec, &[]).await;
    assert_eq!(fresh.status.code(), Some(0), "{}", text(&fresh));
    let destroyed = world.run(&["destroy", "--yes", "test-api"]).await;
    assert_eq!(destroyed.status.code(), Some(0), "{}", text(&destroyed));
    assert!(records().is_empty(), "{:?}", records());
    assert!(world.sandbox.coolify.resources().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rust_provider_written_with_the_sdk_passes_the_kit() {
    run_kit(&test_plugin("simple-dns"), "simple-dns").await;
}

/// `tests/plugins/python-dns` built with componentize-py, once per run; without
/// componentize-py the test fails saying so (it never passes without running).
fn python_dns() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let out = root().join("target/test-plugins/python_dns.wasm");
            let status = std::process::Command::new("componentize-py")
                .current_dir(root().join("tests/plugins/python-dns"))
                .args(["-d", "../../../wit", "-w", "provider-plugin", "componentize", "app", "-o"])
                .arg(&out)
                .status();
            match status {
                Ok(status) if status.success() => out,
                Ok(status) => panic!("componentize-py failed ({status})"),
                Err(e) => panic!(
                    "NOT RUN: the Python kit needs componentize-py ({e}): `python3 -m pip install componentize-py==0.25.1` (README, \"Tests\")"
                ),
            }
        })
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_provider_passes_the_kit() {
    let component = python_dns();
    run_kit(&component, "python-dns").await;
}

//! The provider kit. `fabrik providers test` (the kit as a command) run against every
//! bundled provider and the test providers, each against its API: the sandbox's
//! Cloudflare and Coolify, a real PowerDNS server. And the kit's original form, the whole
//! `apply` sequence a user would run (pin, apply, a no-op, a record edited by hand, a
//! lost state collected by `fabrik gc`, destroy) with a DNS provider loaded by path or
//! bundled: `simple-dns` (Rust, the SDK), `python-dns` (componentize-py) and PowerDNS
//! against a real server, whose records have no automatic TTL and no proxy.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use fabrik_sim::powerdns::PowerDns;

use crate::deploy::World;
use crate::support::{root, test_plugin};

fn text(output: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A hand edit of a sandbox Cloudflare record, as the author of a DNS provider that
/// speaks Cloudflare's API would write it.
fn cloudflare_edit() -> String {
    format!(
        "python3 {}",
        root().join("fixtures/kit/cloudflare-edit.py").display()
    )
}

/// `fabrik providers test ARGS` must pass every step, none skipped.
async fn kit_passes(world: &World, dir: &Path, args: &[&str]) -> String {
    let mut cmd = world.fabrik_in(dir);
    cmd.args(["providers", "test"]).args(args);
    let output = World::output(cmd).await;
    let said = text(&output);
    assert_eq!(output.status.code(), Some(0), "{said}");
    for step in [
        "lock",
        "apply",
        "no-op",
        "hand edit",
        "gc",
        "destroy",
        "refused credentials",
    ] {
        assert!(
            said.lines()
                .any(|l| l.starts_with(&format!("ok   {step} "))),
            "step {step} did not pass:\n{said}"
        );
    }
    assert!(said.contains("0 failed, 0 skipped"), "{said}");
    // The credentials the kit used, and the wrong one it presented, are never shown.
    let env = std::fs::read_to_string(dir.join(".env")).unwrap_or_default();
    let pdns_key = env.lines().find_map(|l| l.strip_prefix("PDNS_API_KEY="));
    for secret in [
        Some(world.sandbox.config.cloudflare_token.as_str()),
        Some(world.sandbox.config.coolify_token.as_str()),
        pdns_key,
        Some("fabrik-kit-wrong-credential"),
    ]
    .into_iter()
    .flatten()
    {
        assert!(
            !said.contains(secret),
            "a credential in the kit's output:\n{said}"
        );
    }
    said
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kit_passes_the_bundled_cloudflare_provider() {
    let world = World::start().await;
    let said = kit_passes(
        &world,
        world.dir.path(),
        &[
            "dns",
            "--name",
            "kit.example.com",
            "--edit",
            &cloudflare_edit(),
        ],
    )
    .await;
    assert!(said.contains("cloudflare"), "{said}");
    assert!(
        world.sandbox.cloudflare.records().is_empty(),
        "the kit leaves nothing behind: {:?}",
        world.sandbox.cloudflare.records()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kit_passes_the_bundled_coolify_provider() {
    let world = World::start().await;
    let spec = world.spec("app.yaml", |t| t);
    let edit = r#"curl -sf -X PATCH -H "Authorization: Bearer $COOLIFY_TOKEN" -H 'content-type: application/json' "$COOLIFY_URL/services/$FABRIK_KIT_ID/envs/bulk" -d '{"data":[{"key":"LOG_LEVEL","value":"trace"}]}' >/dev/null"#;
    let said = kit_passes(
        &world,
        world.dir.path(),
        &[
            "coolify",
            "--spec",
            spec.to_str().expect("utf-8"),
            "--edit",
            edit,
        ],
    )
    .await;
    assert!(said.contains("LOG_LEVEL"), "the edit was seen: {said}");
    assert!(
        world.sandbox.coolify.resources().is_empty(),
        "the kit leaves nothing behind"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kit_passes_the_test_providers_by_path() {
    let world = World::start().await;
    std::fs::write(
        world.dir.path().join("fabrik.toml"),
        "[project]\nname = \"acme\"\n\n[providers.dns]\npath = \"plugins/dns.wasm\"\n\
         config = { zone = \"example.com\" }\n\
         config-env = { base-url = \"CLOUDFLARE_API_URL\" }\n\
         secrets = { api-token = \"CLOUDFLARE_API_TOKEN\" }\n",
    )
    .expect("fabrik.toml");
    for component in [test_plugin("simple-dns"), python_dns()] {
        let said = kit_passes(
            &world,
            world.dir.path(),
            &[
                "dns",
                "--component",
                component.to_str().expect("utf-8"),
                "--name",
                "kit.example.com",
                "--edit",
                &cloudflare_edit(),
            ],
        )
        .await;
        assert!(said.contains("path:"), "{said}");
        assert!(world.sandbox.cloudflare.records().is_empty());
    }
}

/// A PowerDNS server with the zone `example.com`; "NOT RUN" when it cannot start.
async fn powerdns() -> PowerDns {
    PowerDns::start(&["example.com"])
        .await
        .unwrap_or_else(|why| panic!("{why}"))
}

/// Makes the world's project use the bundled PowerDNS provider against `server` at
/// `base_url` (its key in `.env`).
fn use_powerdns(world: &World, server: &PowerDns, base_url: &str) {
    std::fs::write(
        world.dir.path().join("fabrik.toml"),
        format!(
            "[project]\nname = \"acme\"\n\n[providers.dns]\nbundled = \"powerdns\"\n\
             config = {{ base-url = \"{base_url}\" }}\nsecrets = {{ api-key = \"PDNS_API_KEY\" }}\n"
        ),
    )
    .expect("fabrik.toml");
    std::fs::write(
        world.dir.path().join(".env"),
        format!("PDNS_API_KEY={}\n", server.api_key),
    )
    .expect(".env");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kit_passes_the_bundled_powerdns_provider_against_a_real_server() {
    let world = World::start().await;
    let server = powerdns().await;
    use_powerdns(&world, &server, &server.base_url);
    let edit = format!(
        r#"curl -sf -X PATCH -H "X-API-Key: {key}" "{base}/api/v1/servers/localhost/zones/example.com." -d '{{"rrsets":[{{"name":"kit.example.com.","type":"A","ttl":300,"changetype":"REPLACE","records":[{{"content":"198.51.100.99","disabled":false}}]}}]}}'"#,
        key = server.api_key,
        base = server.base_url
    );
    let said = kit_passes(
        &world,
        world.dir.path(),
        &["dns", "--name", "kit.example.com", "--edit", &edit],
    )
    .await;
    assert!(said.contains("powerdns"), "{said}");
    assert!(
        said.contains("ttl is 300, the spec says automatic"),
        "a TTL changed by hand is drift: {said}"
    );
    assert!(server.rrsets("example.com").await.is_empty());
}

/// The kit fails, and says why, for a provider that breaks the contract: a base URL
/// that is not the API (PowerDNS's 404 trap), and the refused-credential step when a
/// provider reports a wrong key as something else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kit_reports_what_fails() {
    let world = World::start().await;
    let server = powerdns().await;
    use_powerdns(&world, &server, &format!("{}/nope", server.base_url));
    let mut cmd = world.fabrik();
    cmd.args(["providers", "test", "dns", "--name", "kit.example.com"]);
    let output = World::output(cmd).await;
    let said = text(&output);
    assert_eq!(output.status.code(), Some(1), "{said}");
    assert!(
        said.contains("FAIL apply") && said.contains("no PowerDNS API there"),
        "{said}"
    );
    assert!(said.contains("skip no-op"), "{said}");
    assert!(said.contains("1 passed, 1 failed, 5 skipped"), "{said}");

    // A Cloudflare-speaking provider that skips the hand edit is told so, not passed.
    let world = World::start().await;
    let mut cmd = world.fabrik();
    cmd.args(["providers", "test", "dns", "--name", "kit.example.com"]);
    let output = World::output(cmd).await;
    let said = text(&output);
    assert_eq!(output.status.code(), Some(0), "{said}");
    assert!(said.contains("skip hand edit"), "{said}");
    assert!(said.contains("6 passed, 0 failed, 1 skipped"), "{said}");
}

async fn run_kit(world: &World, name: &str, dns: impl Fn() -> Vec<(String, String)>) {
    let dir = world.dir.path();
    let spec = world.spec("app.yaml", |t| t);

    let locked = world.run(&["providers", "lock"]).await;
    assert_eq!(locked.status.code(), Some(0), "{}", text(&locked));
    assert!(
        text(&locked).contains(&format!("dns: {name} ")),
        "{}",
        text(&locked)
    );

    let applied = world.apply(&spec, &[]).await;
    assert_eq!(applied.status.code(), Some(0), "{}", text(&applied));
    let record = dns();
    assert_eq!(record.len(), 1, "{record:?}");
    assert_eq!(record[0].0, "api.example.com");

    let again = world.apply(&spec, &[]).await;
    assert!(text(&again).contains("(no changes)"), "{}", text(&again));
    std::fs::remove_dir_all(dir.join(".fabrik")).expect("lose the state");
    let found = world.run(&["gc"]).await;
    assert!(
        text(&found).contains("orphan: dns dns-record api.example.com"),
        "{}",
        text(&found)
    );
    let collected = world.run(&["gc", "--delete", "--yes"]).await;
    assert_eq!(collected.status.code(), Some(0), "{}", text(&collected));
    assert!(dns().is_empty(), "{:?}", dns());

    let fresh = world.apply(&spec, &[]).await;
    assert_eq!(fresh.status.code(), Some(0), "{}", text(&fresh));
    let destroyed = world.run(&["destroy", "--yes", "test-api"]).await;
    assert_eq!(destroyed.status.code(), Some(0), "{}", text(&destroyed));
    assert!(dns().is_empty(), "{:?}", dns());
    assert!(world.sandbox.coolify.resources().is_empty());
}

/// A DNS provider speaking the sandbox's Cloudflare API, loaded by path, through the
/// whole `apply` sequence, a record edited by hand repaired on the way.
async fn run_kit_by_path(component: &Path, name: &str) {
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
    let records = || {
        world
            .sandbox
            .cloudflare
            .records()
            .iter()
            .map(|r| {
                assert_eq!(r["comment"], "fabrik:acme/test-api");
                let text = |k: &str| r[k].as_str().unwrap_or_default().to_owned();
                (text("name"), text("content"))
            })
            .collect::<Vec<_>>()
    };
    let spec = world.spec("app.yaml", |t| t);
    let applied = world.apply(&spec, &[]).await;
    assert_eq!(applied.status.code(), Some(0), "{}", text(&applied));
    world
        .sandbox
        .cloudflare
        .edit_content("api.example.com", "198.51.100.99");
    let repaired = world.apply(&spec, &[]).await;
    assert_eq!(repaired.status.code(), Some(0), "{}", text(&repaired));
    assert_ne!(
        records()[0].1,
        "198.51.100.99",
        "the hand edit was repaired"
    );
    let destroyed = world.run(&["destroy", "--yes", "test-api"]).await;
    assert_eq!(destroyed.status.code(), Some(0), "{}", text(&destroyed));
    run_kit(&world, name, records).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rust_provider_written_with_the_sdk_passes_the_kit() {
    run_kit_by_path(&test_plugin("simple-dns"), "simple-dns").await;
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
    run_kit_by_path(&component, "python-dns").await;
}

/// Issue 27: a DNS API without automatic TTL or proxy (PowerDNS) through the whole
/// sequence: the second apply is a no-op, a TTL changed by hand is repaired.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn powerdns_passes_the_kit_with_no_drift_on_a_second_apply() {
    let world = World::start().await;
    let server = powerdns().await;
    use_powerdns(&world, &server, &server.base_url);
    let spec = world.spec("app.yaml", |t| t);
    let applied = world.apply(&spec, &[]).await;
    assert_eq!(applied.status.code(), Some(0), "{}", text(&applied));
    let rrsets = server.rrsets("example.com").await;
    assert_eq!(rrsets.len(), 1, "{rrsets:?}");
    assert_eq!(rrsets[0]["ttl"], 3600, "automatic is the default TTL");
    assert_eq!(rrsets[0]["comments"][0]["content"], "fabrik:acme/test-api");

    let again = world.apply(&spec, &[]).await;
    assert!(text(&again).contains("(no changes)"), "{}", text(&again));

    server
        .patch(
            "example.com",
            serde_json::json!({
                "name": "api.example.com.", "type": "A", "ttl": 60, "changetype": "REPLACE",
                "records": [{ "content": "127.0.0.1", "disabled": false }],
            }),
        )
        .await;
    let repaired = world.apply(&spec, &[]).await;
    assert_eq!(repaired.status.code(), Some(0), "{}", text(&repaired));
    assert!(
        text(&repaired).contains("ttl is 60, the spec says automatic"),
        "{}",
        text(&repaired)
    );
    assert_eq!(server.rrsets("example.com").await[0]["ttl"], 3600);
    let destroyed = world.run(&["destroy", "--yes", "test-api"]).await;
    assert_eq!(destroyed.status.code(), Some(0), "{}", text(&destroyed));
    assert!(server.rrsets("example.com").await.is_empty());
}

/// The kit fails a provider for each way it breaks the contract, saying what is wrong
/// (`tests/plugins/liar-dns` lies in one way at a time), and cleans up only what still
/// reads as its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kit_fails_a_provider_that_breaks_the_contract() {
    let world = World::start().await;
    let liar = test_plugin("liar-dns");
    for (lie, failed_step, said, cleanup) in [
        ("none", None, "", None),
        (
            "delete-any-owner",
            Some("destroy"),
            "was not refused: a provider must check the tag before deleting",
            // The stranger's delete removed it: nothing left to clean up.
            None,
        ),
        (
            "ttl",
            Some("apply"),
            "ttl is 300, the spec says automatic",
            Some("ok  "),
        ),
        (
            "unlisted",
            Some("gc"),
            "with its state lost, gc would never find it",
            Some("ok  "),
        ),
        (
            "untagged",
            Some("apply"),
            "returned the owner \"\", not the tag",
            Some("FAIL"),
        ),
    ] {
        std::fs::write(
            world.dir.path().join("fabrik.toml"),
            format!(
                "[project]\nname = \"acme\"\n\n[providers.dns]\npath = \"{}\"\nconfig = {{ lie = \"{lie}\" }}\n",
                liar.display()
            ),
        )
        .expect("fabrik.toml");
        let output = world
            .run(&["providers", "test", "dns", "--name", "kit.example.com"])
            .await;
        let text = text(&output);
        match failed_step {
            None => {
                assert_eq!(output.status.code(), Some(0), "{lie}: {text}");
                assert!(
                    text.contains("5 passed, 0 failed, 2 skipped"),
                    "{lie}: {text}"
                );
            }
            Some(step) => {
                assert_eq!(output.status.code(), Some(1), "{lie}: {text}");
                let line = text
                    .lines()
                    .find(|l| l.starts_with(&format!("FAIL {step} ")))
                    .unwrap_or_else(|| panic!("{lie}: no FAIL {step}:\n{text}"));
                assert!(line.contains(said), "{lie}: {line}");
            }
        }
        if let Some(mark) = cleanup {
            assert!(
                text.lines()
                    .any(|l| l.starts_with(&format!("{mark} cleanup"))),
                "{lie}: cleanup {mark}:\n{text}"
            );
        }
    }
}

/// A `read` answered `not-found` means gone, at every level: the next apply says the
/// record is gone and creates it again, instead of failing on it. (`liar-dns` keeps its
/// records in the instance's memory, so every apply finds the last one's gone.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_answered_not_found_is_a_resource_gone() {
    let world = World::start().await;
    std::fs::write(
        world.dir.path().join("fabrik.toml"),
        format!(
            "[project]\nname = \"acme\"\n\n[providers.dns]\npath = \"{}\"\nconfig = {{ lie = \"not-found\" }}\n",
            test_plugin("liar-dns").display()
        ),
    )
    .expect("fabrik.toml");
    let spec = world.spec("app.yaml", |t| t);
    let first = world.apply(&spec, &[]).await;
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let again = world.apply(&spec, &[]).await;
    let said = text(&again);
    assert_eq!(again.status.code(), Some(0), "{said}");
    assert!(
        said.contains("dns-record api.example.com is gone"),
        "{said}"
    );
    assert!(
        said.contains("created dns-record api.example.com"),
        "{said}"
    );
}

/// What `fabrik providers test` is asked wrongly is said, before any provider is called.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kits_arguments_are_checked_first() {
    let world = World::start().await;
    for (args, said) in [
        (vec!["dns"], "needs `--name FQDN`"),
        (vec!["coolify"], "needs `--spec SPEC`"),
        (vec!["storage", "--name", "x.example.com"], "storage"),
        (
            vec![
                "dns",
                "--name",
                "x.example.com",
                "--component",
                "no/such.wasm",
            ],
            "no component at",
        ),
        (vec!["coolify", "--spec", "missing.yaml"], "missing.yaml"),
    ] {
        let mut cmd = world.fabrik();
        cmd.args(["providers", "test"]).args(&args);
        let output = World::output(cmd).await;
        let text = text(&output);
        assert_ne!(output.status.code(), Some(0), "{args:?}: {text}");
        assert!(text.contains(said), "{args:?}: {text}");
        assert!(!text.contains("ok   lock"), "{args:?}: nothing ran: {text}");
    }
    assert!(world.sandbox.cloudflare.faults.calls().is_empty());
    assert!(world.sandbox.coolify.faults.calls().is_empty());
}

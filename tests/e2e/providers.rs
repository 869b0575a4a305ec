//! `fabrik providers`, third-party providers by path, and pinning with `fabrik.lock`.

use std::path::Path;

use predicates::prelude::*;

use crate::support::{artifacts, fabrik, root, test_plugin};

fn hex64(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_ascii_hexdigit())
        .filter(|w| w.len() == 64)
        .map(str::to_owned)
        .collect()
}

#[test]
fn lists_the_bundled_providers_with_versions_and_hashes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = fabrik()
        .current_dir(dir.path())
        .args(["providers", "list"])
        .output()
        .expect("runs");
    let stdout = String::from_utf8(output.stdout).expect("utf-8");
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        stdout.contains(&format!(
            "coolify: coolify {version} (bundled), contract fabrik:provider@0.4.0"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "dns: cloudflare {version} (bundled), contract fabrik:provider@0.4.0"
        )),
        "{stdout}"
    );
    assert!(stdout.contains("kinds: dns-record"), "{stdout}");
    // The budgets the bundled providers declare (contract 0.3), which Fabrik paces under.
    assert!(
        stdout.contains("rate limit: 200 requests per 60 s"),
        "{stdout}"
    );
    assert!(
        stdout.contains("rate limit: 1200 requests per 300 s"),
        "{stdout}"
    );
    assert_eq!(hex64(&stdout).len(), 2, "{stdout}");
}

#[test]
fn json_listing_carries_every_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = fabrik()
        .current_dir(dir.path())
        .args(["providers", "list", "--output", "json"])
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(0));
    let stdout = String::from_utf8(output.stdout).expect("utf-8");
    let rows: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert_eq!(rows.len(), 2);
    for row in rows {
        for field in [
            "role", "name", "version", "source", "wit", "sha256", "kinds",
        ] {
            assert!(!row[field].is_null(), "{field} missing in {row}");
        }
        assert!(row["config"].as_array().is_some_and(|c| {
            c.iter()
                .any(|k| k["name"] == "api-token" && k["secret"] == true)
        }));
    }
}

/// A project whose `dns` provider is the third-party `echo` component, loaded by path.
fn third_party_project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("plugins")).expect("mkdir");
    std::fs::copy(test_plugin("echo"), dir.path().join("plugins/echo.wasm")).expect("copy");
    std::fs::write(
        dir.path().join("fabrik.toml"),
        "[project]\nname = \"acme\"\n\n[providers]\ndns = { path = \"plugins/echo.wasm\" }\n",
    )
    .expect("fabrik.toml");
    std::fs::copy(
        root().join("fixtures/test-api.yaml"),
        dir.path().join("app.yaml"),
    )
    .expect("spec");
    dir
}

fn flip_a_byte(path: &Path) {
    let mut bytes = std::fs::read(path).expect("read");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(path, bytes).expect("write");
}

#[test]
fn a_third_party_provider_loads_by_path_is_pinned_and_a_changed_byte_is_refused() {
    let project = third_party_project();
    let dir = project.path();
    let output = fabrik()
        .current_dir(dir)
        .args(["providers", "list"])
        .output()
        .expect("runs");
    let stdout = String::from_utf8(output.stdout).expect("utf-8");
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("dns: echo 0.3.1 (path:plugins/echo.wasm), contract fabrik:provider@0.4.0"),
        "{stdout}"
    );

    fabrik()
        .current_dir(dir)
        .args(["providers", "lock"])
        .assert()
        .code(0)
        .stderr(predicate::str::contains(
            "dns: echo 0.3.1 (path:plugins/echo.wasm) sha256:",
        ))
        .stderr(predicate::str::contains("wrote"));
    let lock = std::fs::read_to_string(dir.join("fabrik.lock")).expect("fabrik.lock");
    let pinned = hex64(&lock);
    assert_eq!(pinned.len(), 2, "{lock}");
    assert!(
        lock.contains("source = \"path:plugins/echo.wasm\""),
        "{lock}"
    );
    assert!(lock.contains("wit = \"0.4.0\""), "{lock}");
    fabrik()
        .current_dir(dir)
        .args(["apply", "--dry-run", "app.yaml"])
        .assert()
        .code(0);

    flip_a_byte(&dir.join("plugins/echo.wasm"));
    // Refused before anything is compiled: a fresh cache stays without artifacts.
    let cache = tempfile::tempdir().expect("cache");
    let output = fabrik()
        .current_dir(dir)
        .env("FABRIK_CACHE_DIR", cache.path())
        .args(["apply", "--dry-run", "app.yaml"])
        .output()
        .expect("runs");
    assert_eq!(
        artifacts(cache.path()),
        0,
        "a refused component was compiled"
    );
    let stderr = String::from_utf8(output.stderr).expect("utf-8");
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("provider `dns` (path:plugins/echo.wasm) does not match `fabrik.lock`"),
        "{stderr}"
    );
    let hashes = hex64(&stderr);
    assert_eq!(hashes.len(), 2, "both hashes are named: {stderr}");
    assert!(
        pinned.contains(&hashes[0]) && !pinned.contains(&hashes[1]),
        "{stderr}"
    );
    assert!(stderr.contains("run `fabrik providers lock`"), "{stderr}");
    assert!(output.stdout.is_empty(), "no plan is printed");
}

#[test]
fn a_provider_for_an_incompatible_contract_is_refused() {
    let project = third_party_project();
    std::fs::copy(
        test_plugin("future"),
        project.path().join("plugins/echo.wasm"),
    )
    .expect("copy");
    let cache = tempfile::tempdir().expect("cache");
    fabrik()
        .current_dir(project.path())
        .env("FABRIK_CACHE_DIR", cache.path())
        .args(["providers", "list"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "it targets contract `fabrik:provider@0.9.0`, which this fabrik does not support (it supports 0.4.x, 0.3.x, 0.2.x, 0.1.x)",
        ));
    assert_eq!(
        artifacts(cache.path()),
        0,
        "the contract is read from the bytes, before compiling"
    );
}

#[test]
fn a_bad_project_file_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("fabrik.toml"),
        "[providers.dns]\nbundled = \"route53\"\n",
    )
    .expect("write");
    fabrik()
        .current_dir(dir.path())
        .args(["providers", "list"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "`route53` is not a bundled provider (bundled: cloudflare, coolify, powerdns, uptime-kuma)",
        ));
    std::fs::write(
        dir.path().join("fabrik.toml"),
        "[providers.dns.secrets]\napi-token = \"cf-0123456789abcdef secret\"\n",
    )
    .expect("write");
    fabrik()
        .current_dir(dir.path())
        .args(["providers", "list"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "must name an environment variable, not hold a value",
        ))
        .stderr(predicate::str::contains("0123456789abcdef").not());
    // `[[notify]]` follows the spec's rules for webhooks.
    for (toml, expected) in [
        (
            "[[notify]]\nurl = \"ftp://hooks.example.com\"\n",
            "notify[0].url: \"ftp://hooks.example.com\" must be an `https://` (or `http://`) URL",
        ),
        (
            "[[notify]]\nurl_env = \"not a name\"\n",
            "notify[0].url_env: \"not a name\" is not a variable name",
        ),
        (
            "[[notify]]\nurl = \"https://a.example.com\"\nurl_env = \"HOOK\"\n",
            "notify[0]: set `url` or `url_env` (one of them)",
        ),
        (
            "[[notify]]\nurl = \"https://a.example.com\"\non = [\"done\"]\n",
            "notify[0].on: \"done\" is not an event (use complete, failed, rolled_back)",
        ),
    ] {
        std::fs::write(dir.path().join("fabrik.toml"), toml).expect("write");
        fabrik()
            .current_dir(dir.path())
            .args(["providers", "list"])
            .assert()
            .code(1)
            .stderr(predicate::str::contains(expected));
    }
}

/// A component of the frozen 0.3.0 contract still loads, is pinned and is called, now
/// that the SDK and the bundled providers speak 0.4.
#[test]
fn a_provider_of_contract_0_3_is_still_served() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("plugins")).expect("mkdir");
    std::fs::copy(
        test_plugin("contract-0-3"),
        dir.path().join("plugins/dns.wasm"),
    )
    .expect("copy");
    std::fs::write(
        dir.path().join("fabrik.toml"),
        "[project]\nname = \"acme\"\n\n[providers]\ndns = { path = \"plugins/dns.wasm\" }\n",
    )
    .expect("fabrik.toml");
    std::fs::copy(
        root().join("fixtures/test-api.yaml"),
        dir.path().join("app.yaml"),
    )
    .expect("spec");
    let listed = fabrik()
        .current_dir(dir.path())
        .args(["providers", "list"])
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&listed.stdout);
    assert!(
        stdout.contains(
            "dns: contract-0-3 0.3.1 (path:plugins/dns.wasm), contract fabrik:provider@0.3.0"
        ),
        "{stdout}"
    );
    fabrik()
        .current_dir(dir.path())
        .args(["providers", "lock"])
        .assert()
        .code(0);
    let lock = std::fs::read_to_string(dir.path().join("fabrik.lock")).expect("fabrik.lock");
    assert!(lock.contains("wit = \"0.3.0\""), "{lock}");
}

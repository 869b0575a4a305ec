//! Issue 27, point 2: the SDK is self-contained. A provider written as the guide says
//! builds against a copy of `providers/sdk` outside this repository (no workspace to
//! inherit from), for the component target.

use std::path::Path;
use std::process::Command;

use crate::support::root;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("dir");
    for entry in std::fs::read_dir(from).expect("read") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

#[test]
fn a_provider_builds_against_a_copy_of_the_sdk_outside_the_repository() {
    let outside = tempfile::tempdir().expect("tempdir");
    let sdk = outside.path().join("fabrik-provider-sdk");
    for part in ["src", "wit"] {
        copy_dir(&root().join("providers/sdk").join(part), &sdk.join(part));
    }
    for file in ["Cargo.toml", "README.md"] {
        std::fs::copy(root().join("providers/sdk").join(file), sdk.join(file)).expect("copy");
    }
    // The crate as docs/providers.md writes it, with a path to the copy; the code is the
    // echo test provider's.
    let crate_dir = outside.path().join("my-provider");
    std::fs::create_dir_all(crate_dir.join("src")).expect("src");
    std::fs::write(
        crate_dir.join("Cargo.toml"),
        "[package]\nname = \"my-provider\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n[lib]\ncrate-type = [\"cdylib\"]\n\n[dependencies]\nfabrik-provider-sdk = { path = \"../fabrik-provider-sdk\" }\n\n[profile.release]\nopt-level = \"s\"\nlto = true\ncodegen-units = 1\npanic = \"abort\"\nstrip = \"debuginfo\"\n",
    )
    .expect("manifest");
    std::fs::copy(
        root().join("tests/plugins/echo/src/lib.rs"),
        crate_dir.join("src/lib.rs"),
    )
    .expect("code");
    // Offline: the dependencies are those this repository's build already fetched.
    let output = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
        .current_dir(&crate_dir)
        .env("CARGO_TARGET_DIR", outside.path().join("target"))
        .args([
            "build",
            "--offline",
            "--release",
            "--target",
            "wasm32-wasip2",
        ])
        .output()
        .expect("cargo runs");
    assert!(
        output.status.success(),
        "a provider against a copied SDK does not build:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let wasm = outside
        .path()
        .join("target/wasm32-wasip2/release/my_provider.wasm");
    let size = std::fs::metadata(&wasm).expect("the component").len();
    assert!(
        size < 1 << 20,
        "{size} bytes: the guide's profile keeps it small"
    );
}

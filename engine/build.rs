//! Builds the bundled provider components (`providers/*`) for `wasm32-wasip2` so that a
//! plain `cargo build` embeds them in `fabrik`, as wasmtime's and Spin's test-program
//! crates do. They are built by a nested cargo into `<target>/providers`, shared by every
//! profile of the host, so that `build`, `test` and `clippy` compile them once.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

const PROVIDERS: &[(&str, &str)] = &[
    ("coolify", "fabrik-provider-coolify"),
    ("cloudflare", "fabrik-provider-cloudflare"),
    ("powerdns", "fabrik-provider-powerdns"),
    ("uptime-kuma", "fabrik-provider-uptime-kuma"),
];
const TARGET: &str = "wasm32-wasip2";
const PROFILE: &str = "provider";

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = manifest_dir
        .parent()
        .expect("engine/ is inside the workspace")
        .to_path_buf();
    for watched in ["providers", "wit", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("set by cargo"));
    let target_dir = shared_target_dir(&out_dir).join("providers");

    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut command = Command::new(cargo);
    command
        .current_dir(&root)
        .args([
            "build",
            "--locked",
            "--target",
            TARGET,
            "--profile",
            PROFILE,
        ])
        .arg("--target-dir")
        .arg(&target_dir);
    for (_, package) in PROVIDERS {
        command.args(["-p", package]);
    }
    // Settings meant for the host build must not leak into the guest build.
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "RUSTC_WORKSPACE_WRAPPER",
        // cargo-llvm-cov instruments through a wrapper; guests cannot link its runtime.
        "RUSTC_WRAPPER",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_PRIMARY_PACKAGE",
    ] {
        command.env_remove(var);
    }
    let status = command.status();
    if !status.as_ref().is_ok_and(|s| s.success()) {
        eprintln!(
            "error: building the bundled provider components failed ({status:?}); see cargo's output above.\n\
             If the `{TARGET}` target is missing, run `rustup target add {TARGET}`."
        );
        std::process::exit(1);
    }
    for (name, package) in PROVIDERS {
        let wasm = target_dir
            .join(TARGET)
            .join(PROFILE)
            .join(format!("{}.wasm", package.replace('-', "_")));
        if !wasm.is_file() {
            eprintln!("error: `{}` was not produced", wasm.display());
            std::process::exit(1);
        }
        println!(
            "cargo:rustc-env=FABRIK_BUNDLED_{}={}",
            name.to_uppercase().replace('-', "_"),
            wasm.display()
        );
        // The digest `fabrik.lock` pins, so that no run hashes the embedded bytes again.
        let bytes = std::fs::read(&wasm).expect("the provider component was just built");
        let sha256: String = Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        println!(
            "cargo:rustc-env=FABRIK_BUNDLED_{}_SHA256={sha256}",
            name.to_uppercase().replace('-', "_")
        );
    }
}

/// `<target>` from `<target>/<profile>/build/<pkg>/out` (or with a triple in between).
fn shared_target_dir(out_dir: &Path) -> PathBuf {
    out_dir
        .ancestors()
        .find(|p| p.file_name().is_some_and(|n| n == "build"))
        .and_then(Path::parent)
        .and_then(Path::parent)
        .map_or_else(|| out_dir.to_path_buf(), Path::to_path_buf)
}

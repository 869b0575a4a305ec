//! The third-party style test plugins (`tests/plugins`, their own workspace), built for
//! `wasm32-wasip2` on first use, for tests and benchmarks.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The repository's root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Builds `tests/plugins` once per process and returns the path of `name`'s component.
pub fn test_plugin(name: &str) -> PathBuf {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let dir = BUILT.get_or_init(|| {
        let target_dir = root().join("target").join("test-plugins");
        let mut cargo = std::process::Command::new(
            std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()),
        );
        cargo
            .current_dir(root().join("tests/plugins"))
            .args([
                "build",
                "--locked",
                "--release",
                "--target",
                "wasm32-wasip2",
                "--target-dir",
            ])
            .arg(&target_dir);
        for var in [
            "CARGO_ENCODED_RUSTFLAGS",
            "RUSTFLAGS",
            "CARGO_TARGET_DIR",
            "CARGO_BUILD_TARGET",
            "RUSTC_WORKSPACE_WRAPPER",
            // cargo-llvm-cov instruments through a wrapper; guests cannot link its runtime.
            "RUSTC_WRAPPER",
        ] {
            cargo.env_remove(var);
        }
        let output = cargo
            .output()
            .map_err(|e| format!("cannot run cargo: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "building tests/plugins failed:\n{}",
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        Ok(target_dir.join("wasm32-wasip2").join("release"))
    });
    match dir {
        Ok(dir) => dir.join(format!(
            "fabrik_test_provider_{}.wasm",
            name.replace('-', "_")
        )),
        Err(e) => panic!("{e}"),
    }
}

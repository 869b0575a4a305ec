//! Helpers shared by the end-to-end tests.

use std::path::{Path, PathBuf};

use assert_cmd::Command;

/// The workspace root, where `fixtures/` lives.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ has a parent")
        .to_path_buf()
}

/// `fabrik` run from the workspace root with an empty environment: no credentials, no
/// proxy settings, nothing inherited that could make a test pass by accident.
pub fn fabrik() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fabrik"));
    cmd.current_dir(root())
        .env_clear()
        .envs(kept_env())
        .env("FABRIK_CACHE_DIR", cache_dir());
    cmd
}

/// What a cleared environment keeps: where a coverage run's profiler writes
/// (cargo-llvm-cov sets `LLVM_PROFILE_FILE`; without it each process would drop its
/// profile in its working directory and count for nothing).
pub fn kept_env() -> Vec<(String, String)> {
    std::env::vars()
        .filter(|(k, _)| k == "LLVM_PROFILE_FILE")
        .collect()
}

/// The `# expect:` lines of a bad-spec fixture, with `{file}` replaced by its path.
pub fn expectations(relative: &str) -> Vec<String> {
    let text = std::fs::read_to_string(root().join(relative)).expect("fixture is readable");
    text.lines()
        .filter_map(|line| line.strip_prefix("# expect: "))
        .map(|line| line.replace("{file}", relative))
        .collect()
}

/// A compiled-component cache shared by the tests, so each component compiles once.
pub fn cache_dir() -> PathBuf {
    root().join("target").join("test-cache")
}

/// Builds the third-party test plugins (`tests/plugins`) once per test run and returns the
/// path of `name`'s component.
pub fn test_plugin(name: &str) -> PathBuf {
    static BUILT: std::sync::OnceLock<Result<PathBuf, String>> = std::sync::OnceLock::new();
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
        Ok(dir) => dir.join(format!("fabrik_test_provider_{name}.wasm")),
        Err(e) => panic!("{e}"),
    }
}

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
/// proxy settings, nothing inherited that could make a test pass by accident. Its state
/// is a path of its own that does not exist: the repository's own state (what the quick
/// start deployed) never changes what a test sees. A test that needs the project's state
/// removes `FABRIK_STATE_DB`.
pub fn fabrik() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fabrik"));
    cmd.current_dir(root())
        .env_clear()
        .envs(kept_env())
        .env("FABRIK_CACHE_DIR", cache_dir())
        .env("FABRIK_STATE_DB", absent_state());
    cmd
}

/// A state path no other command uses and nothing has created.
fn absent_state() -> PathBuf {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    std::env::temp_dir()
        .join(format!("fabrik-e2e-{}", std::process::id()))
        .join(format!("state-{n}.db"))
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

/// The third-party test plugin `name` (`tests/plugins`), built once per test run.
pub fn test_plugin(name: &str) -> PathBuf {
    fabrik_sim::plugins::test_plugin(name)
}

/// The shell line `command` run by `script` under a pseudo-terminal, in `dir`, with the
/// environment `like` sets (and nothing else from this process but `kept_env`), as
/// `xterm`.
pub fn under_terminal(
    command: &str,
    dir: &Path,
    like: &std::process::Command,
) -> std::process::Command {
    let mut script = std::process::Command::new("script");
    script
        .args(["-qec", command, "/dev/null"])
        .current_dir(dir)
        .env_clear()
        .envs(kept_env())
        .envs(like.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .env("TERM", "xterm")
        .env("PATH", "/usr/bin:/bin");
    script
}

/// Compiled artifacts in a component cache.
pub fn artifacts(cache: &Path) -> usize {
    std::fs::read_dir(cache).map_or(0, |entries| {
        entries
            .filter_map(Result::ok)
            .filter(|e| e.path().extension().is_some_and(|x| x == "cwasm"))
            .count()
    })
}

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
    cmd.current_dir(root()).env_clear();
    cmd
}

/// The `# expect:` lines of a bad-spec fixture, with `{file}` replaced by its path.
pub fn expectations(relative: &str) -> Vec<String> {
    let text = std::fs::read_to_string(root().join(relative)).expect("fixture is readable");
    text.lines()
        .filter_map(|line| line.strip_prefix("# expect: "))
        .map(|line| line.replace("{file}", relative))
        .collect()
}

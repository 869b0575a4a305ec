//! README's first two sections, run exactly as written: the commands of "Quick start"
//! and "Your first app in the sandbox", read from README.md itself, in a fresh copy of
//! the repository (its tracked files only: no state, no `.env`), one after the other.
//! Only the build steps are skipped (`rustup`, `cargo build`, `cargo test`: this test is
//! part of that build); `target/debug/` in the copy links to the binaries under test.
//! If the README changes, this test runs what it says now.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{cache_dir, kept_env, root};

/// The shell commands of every ```sh block of `## {heading}`, in order.
fn commands_under(readme: &str, heading: &str) -> Vec<String> {
    let start = readme
        .find(&format!("\n## {heading}\n"))
        .unwrap_or_else(|| panic!("README.md has no section `## {heading}`"));
    let section = &readme[start + 1..];
    let section = &section[..section[3..]
        .find("\n## ")
        .map_or(section.len(), |end| end + 3)];
    let blocks: Vec<&str> = section
        .split("```sh\n")
        .skip(1)
        .map(|block| &block[..block.find("```").expect("the block is closed")])
        .collect();
    assert!(!blocks.is_empty(), "`## {heading}` has no ```sh block");
    blocks
        .iter()
        .flat_map(|block| block.lines())
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

/// A command line without its build steps (`A && cargo build && B` runs `B`).
fn without_build_steps(line: &str) -> Option<String> {
    let kept: Vec<&str> = line
        .split(" && ")
        .map(str::trim)
        .filter(|part| !part.starts_with("rustup ") && !part.starts_with("cargo "))
        .collect();
    (!kept.is_empty()).then(|| kept.join(" && "))
}

/// The repository's tracked files, copied into `into`.
fn fresh_copy(into: &Path) {
    let listed = Command::new("git")
        .args(["ls-files", "-z"])
        .current_dir(root())
        .output()
        .expect("git runs (the repository is a git checkout)");
    assert!(listed.status.success(), "git ls-files failed");
    for name in listed.stdout.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let name = Path::new(std::str::from_utf8(name).expect("tracked names are UTF-8"));
        let from = root().join(name);
        // A file deleted in the work tree but still tracked is not part of the copy.
        if !from.is_file() {
            continue;
        }
        let to = into.join(name);
        std::fs::create_dir_all(to.parent().expect("a file has a parent")).expect("mkdir");
        std::fs::copy(&from, &to).expect("copy");
    }
    let bin = into.join("target").join("debug");
    std::fs::create_dir_all(&bin).expect("mkdir target/debug");
    let fabrik = PathBuf::from(env!("CARGO_BIN_EXE_fabrik"));
    let sandbox = fabrik.with_file_name("fabrik-sandbox");
    assert!(sandbox.is_file(), "{} is missing", sandbox.display());
    std::os::unix::fs::symlink(&fabrik, bin.join("fabrik")).expect("link fabrik");
    std::os::unix::fs::symlink(&sandbox, bin.join("fabrik-sandbox")).expect("link sandbox");
}

/// Runs one README command line with `sh` in `dir`; returns stdout and stderr.
fn run(dir: &Path, line: &str) -> String {
    let output = Command::new("sh")
        .args(["-c", line])
        .current_dir(dir)
        .env_clear()
        .envs(kept_env())
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("FABRIK_CACHE_DIR", cache_dir())
        .output()
        .expect("sh runs");
    let text = format!(
        "--- stdout\n{}--- stderr\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "README command `{line}` exited {:?}\n{text}",
        output.status.code()
    );
    text
}

#[test]
fn readme_quick_start_then_first_app_end_complete() {
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README.md");
    let quick_start: Vec<String> = commands_under(&readme, "Quick start")
        .iter()
        .filter_map(|l| without_build_steps(l))
        .collect();
    let first_app = commands_under(&readme, "Your first app in the sandbox");
    assert_eq!(
        quick_start,
        [
            "target/debug/fabrik-sandbox --exec target/debug/fabrik apply fixtures/test-api.yaml",
            "target/debug/fabrik status",
        ],
        "the quick start's deploy and status (its build and test steps are skipped)"
    );
    assert!(first_app.len() >= 2, "{first_app:?}");

    let copy = tempfile::tempdir().expect("tempdir");
    let dir = copy.path();
    fresh_copy(dir);

    let deployed = run(dir, &quick_start[0]);
    assert!(
        deployed.contains("test-api: COMPLETE https://api.example.com/health"),
        "{deployed}"
    );
    // "In the same directory, afterwards": `fabrik status` shows it.
    let status = run(dir, &quick_start[1]);
    assert!(status.contains("test-api: COMPLETE"), "{status}");

    // Then "Your first app in the sandbox", with the quick start's state still there:
    // a new sandbox's resources must not collide with what that state holds.
    let mut outputs = Vec::new();
    for line in &first_app {
        outputs.push(run(dir, line));
    }
    let all = outputs.join("\n");
    assert!(
        all.contains("shop: COMPLETE https://shop.example.com/health"),
        "{all}"
    );
    let status = run(dir, "target/debug/fabrik status");
    assert!(status.contains("shop: COMPLETE"), "{status}");
    assert!(status.contains("test-api: COMPLETE"), "{status}");

    // Then "Staging and production": staging applied, promoted to production.
    let mut outputs = Vec::new();
    for line in commands_under(&readme, "Staging and production") {
        outputs.push(run(dir, &line));
    }
    let all = outputs.join("\n");
    for expected in [
        "blog@staging: COMPLETE https://staging.blog.example.com/health",
        "Promoting `blog` from staging to production: branch main at ",
        "blog@production: COMPLETE https://blog.example.com/health",
        "blog@production: COMPLETE (blog.yaml)",
        "blog@staging: COMPLETE (blog.yaml)",
        " of blog@staging)",
    ] {
        assert!(all.contains(expected), "{expected}\n{all}");
    }
}

use predicates::prelude::*;

use crate::support::fabrik;

#[test]
fn version_names_the_binary() {
    fabrik()
        .arg("--version")
        .assert()
        .code(0)
        .stdout(predicate::str::starts_with(format!(
            "fabrik {}",
            env!("CARGO_PKG_VERSION")
        )));
}

#[test]
fn help_documents_exit_codes() {
    fabrik()
        .arg("--help")
        .assert()
        .code(0)
        .stdout(predicate::str::contains("Exit codes:"))
        .stdout(predicate::str::contains("3  with --detailed-exitcode"));
}

#[test]
fn usage_errors_exit_with_2() {
    fabrik().arg("frobnicate").assert().code(2);
    fabrik().arg("validate").assert().code(2);
    fabrik()
        .args(["apply", "--detailed-exitcode", "fixtures/test-api.yaml"])
        .assert()
        .code(2);
    // A deletion cannot be confirmed in no time.
    fabrik()
        .args(["destroy", "api", "--yes", "--timeout", "0"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--timeout"));
}

#[test]
fn use_orchestrator_is_an_accepted_hidden_no_op() {
    let with = fabrik()
        .args([
            "--use-orchestrator",
            "apply",
            "--dry-run",
            "fixtures/test-api.yaml",
        ])
        .output()
        .expect("runs");
    let after = fabrik()
        .args([
            "apply",
            "--use-orchestrator",
            "--dry-run",
            "fixtures/test-api.yaml",
        ])
        .output()
        .expect("runs");
    let without = fabrik()
        .args(["apply", "--dry-run", "fixtures/test-api.yaml"])
        .output()
        .expect("runs");
    assert_eq!(with.status.code(), Some(0));
    assert_eq!(with.stdout, without.stdout);
    assert_eq!(after.stdout, without.stdout);
    fabrik()
        .arg("--help")
        .assert()
        .stdout(predicate::str::contains("use-orchestrator").not());
}

#[test]
fn completions_are_generated_for_each_shell() {
    for (shell, marker) in [
        ("bash", "_fabrik()"),
        ("zsh", "#compdef fabrik"),
        ("fish", "complete -c fabrik"),
    ] {
        fabrik()
            .args(["completions", shell])
            .assert()
            .code(0)
            .stdout(predicate::str::contains(marker))
            .stdout(predicate::str::contains("use-orchestrator").not());
    }
    // `new --template` completes template names, not file names.
    let bash = fabrik()
        .args(["completions", "bash"])
        .output()
        .expect("runs");
    let bash = String::from_utf8(bash.stdout).expect("utf-8");
    let template = bash
        .lines()
        .skip_while(|l| !l.contains("fabrik__subcmd__new)"))
        .skip_while(|l| !l.trim_start().starts_with("--template)"))
        .nth(1)
        .expect("a completion for `new --template`");
    assert!(
        template.contains("node-api") && !template.contains("compgen -f"),
        "{template}"
    );
}

/// `fabrik templates | head -1` and the like: a reader that is gone before the first
/// line is written. The command ends quietly with its own exit status, never a panic.
#[test]
fn a_closed_stdout_ends_quietly() {
    let project = tempfile::tempdir().expect("tempdir");
    for args in [
        vec!["templates"],
        vec!["providers", "list"],
        vec!["providers", "list", "--output", "json"],
        vec!["status"],
    ] {
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_fabrik"))
            .current_dir(project.path())
            .env_clear()
            .envs(crate::support::kept_env())
            .env("FABRIK_CACHE_DIR", crate::support::cache_dir())
            .args(&args)
            .stdout(writer)
            .output()
            .expect("runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(!stderr.contains("Broken pipe"), "{args:?}: {stderr}");
    }
}

/// Colour on a terminal only, `NO_COLOR` honoured, `--color` deciding over both.
#[test]
fn colour_is_for_terminals_and_can_be_forced_or_refused() {
    let project = tempfile::tempdir().expect("tempdir");
    let bad = project.path().join("bad.yaml");
    std::fs::write(&bad, "name: Not_Valid\n").expect("spec");
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let mut cmd = fabrik();
        cmd.current_dir(project.path()).args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let output = cmd.output().expect("runs");
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let escape = '\u{1b}';
    // Piped (these tests' stderr is a pipe): no colour, and `-v` logs carry no ANSI.
    let piped = run(&["-v", "validate", "bad.yaml"], &[]);
    assert!(
        piped.contains("error:") && !piped.contains(escape),
        "{piped:?}"
    );
    // Forced: the prefix is coloured, even piped; NO_COLOR does not override a choice.
    let forced = run(
        &["--color", "always", "validate", "bad.yaml"],
        &[("NO_COLOR", "1")],
    );
    assert!(forced.contains(&format!("{escape}[")), "{forced:?}");
    assert!(forced.contains("error:\u{1b}[0m"), "{forced:?}");
    let never = run(&["--color", "never", "validate", "bad.yaml"], &[]);
    assert!(!never.contains(escape), "{never:?}");

    // On a terminal: coloured, unless NO_COLOR is set.
    let under_terminal = |no_color: bool| {
        let command = format!("{} validate bad.yaml", env!("CARGO_BIN_EXE_fabrik"));
        let mut like = std::process::Command::new("fabrik");
        like.env("FABRIK_CACHE_DIR", crate::support::cache_dir());
        if no_color {
            like.env("NO_COLOR", "1");
        }
        let mut script = crate::support::under_terminal(&command, project.path(), &like);
        String::from_utf8_lossy(&script.output().expect("script runs").stdout).into_owned()
    };
    let terminal = under_terminal(false);
    assert!(terminal.contains("error:\u{1b}[0m"), "{terminal:?}");
    let no_color = under_terminal(true);
    assert!(
        no_color.contains("error:") && !no_color.contains(escape),
        "{no_color:?}"
    );
}

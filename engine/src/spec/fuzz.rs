//! Fuzzing the parsers Fabrik exposes to files a user (or a checkout) provides: the spec,
//! `fabrik.toml`, templates, and the compose documents templates render. Inputs are mutations of valid documents (YAML and TOML
//! punctuation, tabs, odd Unicode, deleted and repeated spans); every one must end, fast,
//! without a panic, and every spec error must be located inside the file.
//!
//! CI runs a few hundred cases per parser; for a long run:
//! `FABRIK_FUZZ_CASES=100000 cargo test -p fabrik-engine --lib fuzz -- --nocapture`.

use std::path::Path;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use super::TemplateRegistry;

const SPEC: &str = include_str!("../../../fixtures/test-api.yaml");

const TOML: &str = "[project]\nname = \"acme\"\n\n[providers.coolify]\nbundled = \"coolify\"\nconfig = { base-url = \"https://coolify.example.com/api/v1\" }\nconfig-env = { api-token = \"COOLIFY_TOKEN\" }\n\n[[notify]]\nurl_env = \"TEAM_HOOK\"\non = [\"failed\"]\nformat = \"slack\"\n\n[state]\nbackend = \"sqlite\"\n";

const TEMPLATE: &str = "description: fuzzed\ndefault_port: 8080\nsources: [image]\n---\nservices:\n  app:\n    image: {{ image }}\n    environment: {{ environment }}\n    {% for p in [1, 2] %}# {{ p }}\n    {% endfor %}ports: ['{{ port }}']\n";

/// One parse may take this long at most (the template fuel bounds the slowest).
const DEADLINE: Duration = Duration::from_secs(2);

fn cases() -> u32 {
    std::env::var("FABRIK_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(300)
}

/// A piece to splice in: structure characters, whitespace, and odd text.
fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::sample::select(vec![
            ":",
            "- ",
            "[",
            "]",
            "{",
            "}",
            "&a ",
            "*a",
            "<<: *a",
            "!!binary ",
            "|",
            ">",
            "'",
            "\"",
            "#",
            "%",
            "@",
            "`",
            "\t",
            "\n",
            "\r\n",
            "  ",
            "---\n",
            "...\n",
            "~",
            "null",
            "true",
            "0x1F",
            "1e999",
            "-0",
            "{{",
            "}}",
            "{%",
            "%}",
            "{{ x }}",
            "${X}",
            "$$",
            "\\",
            "\u{0}",
            "\u{1b}[2K",
            "\u{feff}",
            "é",
            "日本",
            "\u{202e}",
            "=",
            "[[",
            "]]",
            "\"\"\"",
            "'''",
        ])
        .prop_map(str::to_owned),
        "[a-z_.-]{0,12}",
        any::<String>().prop_map(|s| s.chars().take(16).collect()),
    ]
}

/// `base` with up to six random edits: a span replaced by a piece, a span deleted, or a
/// span repeated.
fn mutated(base: &'static str) -> impl Strategy<Value = String> {
    proptest::collection::vec(
        (any::<prop::sample::Index>(), 0usize..24, 0u8..3, piece()),
        1..6,
    )
    .prop_map(move |edits| {
        let mut text: Vec<char> = base.chars().collect();
        for (at, len, kind, piece) in edits {
            let start = at.index(text.len() + 1);
            let end = (start + len).min(text.len());
            match kind {
                0 => {
                    text.splice(start..end, piece.chars());
                }
                1 => {
                    text.drain(start..end);
                }
                _ => {
                    let span: Vec<char> = text[start..end].to_vec();
                    text.splice(start..start, span);
                }
            }
        }
        text.into_iter().collect()
    })
}

fn runner() -> TestRunner {
    TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    })
}

#[test]
fn fuzz_the_spec_parser() {
    let templates = TemplateRegistry::load(Path::new("/nonexistent")).expect("built-ins");
    runner()
        .run(&mutated(SPEC), |text| {
            let started = Instant::now();
            let result = super::parse(Path::new("app.yaml"), &text, &templates);
            prop_assert!(started.elapsed() < DEADLINE, "took {:?}", started.elapsed());
            if let Err(super::SpecError::Invalid { diagnostics, .. }) = result {
                prop_assert!(!diagnostics.is_empty());
                let lines = text.split('\n').count().max(1);
                for d in diagnostics {
                    prop_assert!(
                        d.location.line >= 1
                            && d.location.line <= lines + 1
                            && d.location.column >= 1,
                        "unlocated: {d:?} in a file of {lines} lines"
                    );
                }
            }
            Ok(())
        })
        .expect("no panic, hang or unlocated error");
}

#[test]
fn fuzz_the_project_file_parser() {
    let dir = tempfile::tempdir().expect("tempdir");
    runner()
        .run(&mutated(TOML), |text| {
            std::fs::write(dir.path().join("fabrik.toml"), &text).expect("write");
            let started = Instant::now();
            let result = crate::project::Project::load(dir.path());
            prop_assert!(started.elapsed() < DEADLINE, "took {:?}", started.elapsed());
            if let Err(error) = result {
                // Errors name the file and never quote it whole.
                let message = error.to_string();
                prop_assert!(message.contains("fabrik.toml"), "{message}");
            }
            Ok(())
        })
        .expect("no panic or hang");
}

#[test]
fn fuzz_the_template_parser_and_renderer() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("templates")).expect("templates");
    let spec = SPEC.replace("template: python-api", "template: fuzzed");
    runner()
        .run(&mutated(TEMPLATE), |text| {
            std::fs::write(dir.path().join("templates/fuzzed.yaml"), &text).expect("write");
            let started = Instant::now();
            if let Ok(templates) = TemplateRegistry::load(dir.path()) {
                let _ = super::parse(Path::new("app.yaml"), &spec, &templates);
            }
            prop_assert!(started.elapsed() < DEADLINE, "took {:?}", started.elapsed());
            Ok(())
        })
        .expect("no panic or hang");
}

const COMPOSE: &str = "services:\n  app:\n    image: x\n    privileged: '${OFF:-false}'\n    network_mode: bridge\n    cap_add: [CHOWN]\n    security_opt: [no-new-privileges]\n    volumes: ['data:/d', './s:/s', {type: bind, source: /srv, target: /t}]\n    build: {context: ./app, dockerfile: Dockerfile, additional_contexts: {a: ./b}}\n    ports: ['8080:80']\n    extends: db\n  db:\n    image: y\nvolumes:\n  data: {driver_opts: {type: none, o: bind, device: /srv/d}}\nnetworks: {n: {driver: bridge}}\nsecrets: {k: {file: ./k}}\n";

/// The compose check reads documents a project's template renders: any mutation must
/// end without a panic, and whatever it accepts must keep the routed service.
#[test]
fn fuzz_the_compose_check() {
    let env: std::collections::BTreeMap<String, String> = [("OFF", "false"), ("X", "/")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    runner()
        .run(&mutated(COMPOSE), |text| {
            let started = Instant::now();
            if let Ok(mut document) = serde_yaml::from_str::<serde_yaml::Value>(&text)
                && document.apply_merge().is_ok()
                && super::compose_lint::lint(&document, "app", &env).is_ok()
            {
                prop_assert!(document["services"].get("app").is_some(), "{text}");
            }
            prop_assert!(started.elapsed() < DEADLINE, "took {:?}", started.elapsed());
            Ok(())
        })
        .expect("no panic or hang");
}

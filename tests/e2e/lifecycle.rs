//! An app's life after its first deploy, end to end against the simulators: `plan`
//! against the state, `rollback NAME`, a changed domain, webhooks and hooks.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;

use crate::deploy::{DATABASE_URL, World, assert_no_secret, text};

/// Changes `LOG_LEVEL: info` in the fixture to `value`.
fn log_level(value: &str) -> impl Fn(String) -> String + '_ {
    move |t: String| t.replace("LOG_LEVEL: info", &format!("LOG_LEVEL: {value}"))
}

fn env_value(world: &World, key: &str) -> Option<String> {
    let resources = world.sandbox.coolify.resources();
    let (_, uuid, _, _) = resources.first()?;
    world
        .sandbox
        .coolify
        .env_of(uuid)
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
}

fn total_calls(world: &World) -> usize {
    world.sandbox.coolify.faults.calls().len() + world.sandbox.cloudflare.faults.calls().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_diffs_the_spec_against_the_state_offline() {
    let world = World::start().await;
    let spec = world.spec("app.yaml", |t| t);
    let spec_arg = spec.to_str().expect("utf-8");

    let fresh = world.run(&["plan", spec_arg]).await;
    let (stdout, _) = text(&fresh);
    assert!(stdout.contains("+ dns-record api.example.com"), "{stdout}");

    let applied = world.apply(&spec, &[]).await;
    assert_eq!(applied.status.code(), Some(0), "{:?}", text(&applied));

    // Nothing changed: no changes, and not a single call to either API.
    let calls = total_calls(&world);
    let same = world.run(&["plan", "--detailed-exitcode", spec_arg]).await;
    let (stdout, stderr) = text(&same);
    assert_eq!(same.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("= dns-record api.example.com: unchanged"),
        "{stdout}"
    );
    assert!(stdout.contains("= service test-api: unchanged"), "{stdout}");
    assert!(stdout.contains("No changes"), "{stdout}");
    assert_eq!(total_calls(&world), calls, "plan calls no provider");

    // A changed variable and a changed secret: an update, each difference named, the
    // secret's value never shown. Without any credential.
    world.spec("app.yaml", log_level("debug"));
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_fabrik"));
    cmd.current_dir(world.dir.path())
        .env_clear()
        .envs(crate::support::kept_env())
        .env("FABRIK_CACHE_DIR", crate::support::cache_dir())
        .env("DATABASE_URL", "postgres://changed-value-1234@db/app")
        .args(["plan", "--detailed-exitcode", spec_arg]);
    let changed = cmd.output().expect("runs");
    let (stdout, stderr) = text(&changed);
    assert_eq!(changed.status.code(), Some(3), "{stdout}\n{stderr}");
    assert!(stdout.contains("~ service test-api"), "{stdout}");
    assert!(
        stdout.contains(r#"env.LOG_LEVEL: "info" → "debug""#),
        "{stdout}"
    );
    assert!(
        stdout.contains("secret DATABASE_URL: value changed"),
        "{stdout}"
    );
    assert!(!stdout.contains("changed-value-1234"), "{stdout}");
    assert!(stdout.contains("= dns-record api.example.com"), "{stdout}");
    assert_eq!(total_calls(&world), calls, "plan calls no provider");

    // JSON output carries the same plan.
    let json = world.run(&["plan", "--output", "json", spec_arg]).await;
    let line = String::from_utf8_lossy(&json.stdout);
    let event: serde_json::Value =
        serde_json::from_str(line.lines().next().expect("a line")).expect("json");
    assert_eq!(event["plan"]["steps"][1]["action"], "update");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_deploys_the_previous_completed_version_again() {
    let world = World::start().await;
    let spec = world.spec("app.yaml", |t| t);
    let too_early = world.apply(&spec, &[]).await;
    assert_eq!(too_early.status.code(), Some(0));
    let nothing = world.run(&["rollback", "test-api"]).await;
    let (_, stderr) = text(&nothing);
    assert_eq!(nothing.status.code(), Some(1));
    assert!(
        stderr.contains("has no earlier completed version"),
        "{stderr}"
    );

    let v2 = world.spec("app.yaml", log_level("debug"));
    let second = world.apply(&v2, &[]).await;
    assert_eq!(second.status.code(), Some(0), "{:?}", text(&second));
    assert_eq!(env_value(&world, "LOG_LEVEL").as_deref(), Some("debug"));

    let rolled = world.run(&["rollback", "test-api"]).await;
    let (stdout, stderr) = text(&rolled);
    assert_eq!(rolled.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("test-api: COMPLETE"), "{stdout}");
    assert!(
        stderr.contains("Rolling `test-api` back to run"),
        "{stderr}"
    );
    assert!(
        stderr.contains("still describes the newer version"),
        "{stderr}"
    );
    assert_eq!(env_value(&world, "LOG_LEVEL").as_deref(), Some("info"));
    assert_eq!(
        env_value(&world, "DATABASE_URL").as_deref(),
        Some(DATABASE_URL),
        "secrets are deployed again from their current values"
    );
    assert_eq!(
        world.sandbox.coolify.resources().len(),
        1,
        "updated in place"
    );
    assert_eq!(world.sandbox.cloudflare.records().len(), 1);

    let history = world.run(&["history", "test-api"]).await;
    let (listed, _) = text(&history);
    assert_eq!(listed.lines().count(), 3, "{listed}");
    assert!(
        listed
            .lines()
            .next()
            .is_some_and(|l| l.contains("rollback to the version of run")),
        "{listed}"
    );

    // The spec file still says `debug`: plan shows the way forward again.
    let plan = world
        .run(&["plan", "--detailed-exitcode", v2.to_str().expect("utf-8")])
        .await;
    let (stdout, _) = text(&plan);
    assert_eq!(plan.status.code(), Some(3), "{stdout}");
    assert!(
        stdout.contains(r#"env.LOG_LEVEL: "info" → "debug""#),
        "{stdout}"
    );

    // The snapshots, the rollback run and its output hold no secret value.
    let export = world.run(&["state", "export"]).await;
    let (exported, _) = text(&export);
    assert!(
        exported.contains("\"snapshot\""),
        "runs carry their snapshot"
    );
    assert_no_secret(
        &world,
        &[
            ("rollback stdout", &stdout),
            ("rollback stderr", &stderr),
            ("history", &listed),
            ("export", &exported),
        ],
    );

    let unknown = world
        .run(&["rollback", "test-api", "--to", "ffffffff"])
        .await;
    assert_eq!(unknown.status.code(), Some(2), "{:?}", text(&unknown));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_domain_gets_a_new_record_and_the_old_one_is_removed() {
    let world = World::start().await;
    let spec = world.spec("app.yaml", |t| t);
    assert_eq!(world.apply(&spec, &[]).await.status.code(), Some(0));
    let moved = world.spec("app.yaml", |t| {
        t.replace("domain: api.example.com", "domain: new.example.com")
    });
    let plan = world.run(&["plan", moved.to_str().expect("utf-8")]).await;
    let (stdout, _) = text(&plan);
    assert!(stdout.contains("+ dns-record new.example.com"), "{stdout}");
    assert!(stdout.contains("- dns-record api.example.com"), "{stdout}");

    let output = world.apply(&moved, &[]).await;
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("deleted dns-record api.example.com"),
        "{stderr}"
    );
    let records = world.sandbox.cloudflare.records();
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["name"], "new.example.com");
    assert_eq!(world.sandbox.coolify.resources().len(), 1);
    // And the next apply is a no-op again.
    let again = world.apply(&moved, &[]).await;
    assert!(String::from_utf8_lossy(&again.stdout).contains("(no changes)"));
}

/// A webhook receiver on loopback: records every body, answers with the queued statuses
/// (then 200).
#[derive(Clone, Default)]
pub(crate) struct Receiver {
    bodies: Arc<Mutex<Vec<serde_json::Value>>>,
    statuses: Arc<Mutex<VecDeque<u16>>>,
}

impl Receiver {
    pub(crate) async fn start(statuses: &[u16]) -> (Self, String) {
        let receiver = Self::default();
        receiver
            .statuses
            .lock()
            .expect("lock")
            .extend(statuses.iter().copied());
        let state = receiver.clone();
        let app = Router::new().route(
            "/hook",
            post(move |body: String| {
                let state = state.clone();
                async move {
                    let value = serde_json::from_str(&body).unwrap_or(serde_json::Value::Null);
                    state.bodies.lock().expect("lock").push(value);
                    let status = state
                        .statuses
                        .lock()
                        .expect("lock")
                        .pop_front()
                        .unwrap_or(200);
                    StatusCode::from_u16(status).unwrap_or(StatusCode::OK)
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        (receiver, url)
    }

    pub(crate) fn bodies(&self) -> Vec<serde_json::Value> {
        self.bodies.lock().expect("lock").clone()
    }
}

/// Slack and Discord refuse Fabrik's JSON document: each gets the message it accepts
/// (`format`, or found from their webhook hosts), with the app, the outcome and the URL;
/// a secret in a failure reason never reaches the chat.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_webhooks_get_the_message_their_service_accepts() {
    let world = World::start().await;
    let (slack, slack_url) = Receiver::start(&[]).await;
    let (discord, discord_url) = Receiver::start(&[]).await;
    let notify = format!(
        "notify:\n  - url: {slack_url}\n    format: slack\n  - url: {discord_url}\n    format: discord\n"
    );
    let spec = world.spec("app.yaml", |t| format!("{t}{notify}"));
    let done = world.apply(&spec, &[]).await;
    assert_eq!(done.status.code(), Some(0), "{:?}", text(&done));
    let bad = world.bad_spec(500, |t| format!("{t}{notify}"));
    let failed = world.apply(&bad, &[]).await;
    assert_eq!(failed.status.code(), Some(1), "{:?}", text(&failed));

    let slack = slack.bodies();
    assert_eq!(slack.len(), 2, "{slack:?}");
    assert_eq!(
        slack[0].as_object().map(|o| o.len()),
        Some(1),
        "only `text`: {slack:?}"
    );
    let first = slack[0]["text"].as_str().expect("text");
    assert!(
        first.starts_with("✅ *test-api* deployed: <https://api.example.com/health|https://api.example.com/health>"),
        "{first}"
    );
    assert!(
        first.contains(" · in Coolify: <http://127.0.0.1:"),
        "{first}"
    );
    let second = slack[1]["text"].as_str().expect("text");
    assert!(
        second.contains("*bad-api* failed and was rolled back"),
        "{second}"
    );
    assert!(
        second.contains("\nwhat went wrong: ") && second.contains("500"),
        "{second}"
    );

    let discord = discord.bodies();
    assert_eq!(discord.len(), 2, "{discord:?}");
    let content = discord[1]["content"].as_str().expect("content");
    assert!(
        content.starts_with(
            "↩️ **bad-api** failed and was rolled back: https://bad.example.com/health"
        ),
        "{content}"
    );
    assert!(content.chars().count() <= 2000);
    assert_eq!(
        discord[1]["allowed_mentions"]["parse"],
        serde_json::json!([])
    );
    for body in slack.iter().chain(&discord) {
        crate::deploy::assert_no_secret(&world, &[("webhook", &body.to_string())]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_hear_how_runs_end_and_never_change_the_result() {
    let world = World::start().await;
    let (spec_hook, spec_url) = Receiver::start(&[]).await;
    let (flaky, flaky_url) = Receiver::start(&[500, 503]).await;
    std::fs::write(
        world.dir.path().join("fabrik.toml"),
        "[project]\nname = \"acme\"\n\n[[notify]]\nurl_env = \"TEAM_HOOK\"\non = [\"complete\"]\n\n[[notify]]\nurl = \"http://127.0.0.1:1/unreachable\"\n",
    )
    .expect("fabrik.toml");
    let notify = format!("notify:\n  - url: {spec_url}\n  - url_env: NOT_SET_ANYWHERE\n");
    let spec = world.spec("app.yaml", |t| format!("{t}{notify}"));
    let mut cmd = world.command(&spec);
    cmd.env("TEAM_HOOK", &flaky_url);
    let output = World::output(cmd).await;
    let (stdout, stderr) = text(&output);
    assert_eq!(
        output.status.code(),
        Some(0),
        "a webhook never fails a deploy:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("test-api: COMPLETE"), "{stdout}");
    assert!(
        stdout.contains(
            "warning: could not tell webhook 127.0.0.1: cannot connect (after 3 attempts)"
        ),
        "{stdout}"
    );
    assert!(
        stderr.contains("webhook `$NOT_SET_ANYWHERE`: the variable is not set"),
        "{stderr}"
    );
    assert!(
        stderr.contains("told webhook $TEAM_HOOK (complete, attempt 3)"),
        "{stderr}"
    );
    assert!(
        !stderr.contains(&flaky_url) && !stdout.contains(&flaky_url),
        "a URL from a variable is never printed"
    );

    let bodies = spec_hook.bodies();
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    assert_eq!(bodies[0]["event"], "complete");
    assert_eq!(bodies[0]["app"], "test-api");
    assert_eq!(bodies[0]["project"], "acme");
    assert_eq!(bodies[0]["state"], "COMPLETE");
    assert_eq!(bodies[0]["url"], "https://api.example.com/health");
    assert!(
        bodies[0]["page"].as_str().is_some_and(
            |p| p.starts_with(&world.sandbox.coolify_url.replace("/api/v1", "/project/"))
        ),
        "the app's page in Coolify: {}",
        bodies[0]
    );
    assert!(bodies[0]["run_id"].is_string());
    assert_eq!(flaky.bodies().len(), 3, "retried after 500 and 503");

    // A failed verification: the spec's webhook hears `rolled_back` with the reason; the
    // project's, which wants `complete` only, hears nothing.
    let bad = world.bad_spec(500, |t| format!("{t}{notify}"));
    let mut cmd = world.command(&bad);
    cmd.env("TEAM_HOOK", &flaky_url);
    let failed = World::output(cmd).await;
    assert_eq!(failed.status.code(), Some(1));
    let bodies = spec_hook.bodies();
    assert_eq!(bodies.len(), 2);
    assert_eq!(bodies[1]["event"], "rolled_back");
    assert_eq!(bodies[1]["state"], "ROLLED_BACK");
    assert!(
        bodies[1]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("500")),
        "{:?}",
        bodies[1]
    );
    assert!(
        bodies[1]["undone"]
            .as_array()
            .is_some_and(|u| !u.is_empty()),
        "{:?}",
        bodies[1]
    );
    assert_eq!(flaky.bodies().len(), 3, "`on: [complete]` is respected");
    let dotenv = std::fs::read_to_string(world.dir.path().join(".env")).expect(".env");
    let api_key = dotenv
        .lines()
        .find_map(|l| l.strip_prefix("API_KEY="))
        .expect("generated");
    for body in spec_hook.bodies().iter().chain(flaky.bodies().iter()) {
        let body = body.to_string();
        assert!(
            !body.contains(api_key) && !body.contains("pw-9f8e7d6c5b4a"),
            "{body}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hooks_run_around_the_deployment_and_a_failing_one_rolls_back() {
    let world = World::start().await;
    let hooks = "hooks:\n  pre_deploy: echo \"$FABRIK_HOOK $FABRIK_APP $FABRIK_URL\" > pre.txt; echo \"${COOLIFY_TOKEN:-no token} ${CLOUDFLARE_API_TOKEN:-no token} ${#API_KEY}\" > env.txt\n  post_deploy: test -f pre.txt && echo smoke-ok && echo \"db=$DATABASE_URL\"\n";
    let spec = world.spec("app.yaml", |t| format!("{t}{hooks}"));
    let output = world.apply(&spec, &[]).await;
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    let pre = std::fs::read_to_string(world.dir.path().join("pre.txt"))
        .expect("pre_deploy ran in the project");
    assert_eq!(
        pre.trim(),
        "pre_deploy test-api https://api.example.com/health"
    );
    // Hooks get the app's secrets (API_KEY comes from `.env`), never the providers'
    // credentials.
    let seen = std::fs::read_to_string(world.dir.path().join("env.txt")).expect("env.txt");
    assert_eq!(seen.trim(), "no token no token 32");
    assert!(stderr.contains("post_deploy: smoke-ok"), "{stderr}");
    // A hook that prints a secret (it inherits the environment) has it redacted.
    assert!(stderr.contains("post_deploy: db=[redacted]"), "{stderr}");
    assert!(!stderr.contains(DATABASE_URL) && !stdout.contains(DATABASE_URL));

    // A new version whose smoke test fails: the run is rolled back and the service's
    // previous variables are restored.
    let failing = "hooks:\n  post_deploy: echo \"smoke failed for $FABRIK_APP\"; exit 4\n";
    let spec = world.spec("app.yaml", |t| {
        format!("{}{failing}", log_level("debug")(t))
    });
    let output = world.apply(&spec, &[]).await;
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains("test-api: ROLLED_BACK"), "{stdout}");
    assert!(stdout.contains("post_deploy hook"), "{stdout}");
    assert!(stdout.contains("smoke failed for test-api"), "{stdout}");
    assert!(
        stdout.contains("undone: restored service test-api"),
        "{stdout}"
    );
    assert_eq!(env_value(&world, "LOG_LEVEL").as_deref(), Some("info"));
    assert_eq!(world.sandbox.coolify.resources().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_is_live_on_a_terminal_and_plain_lines_otherwise() {
    let world = World::start().await;
    let spec = world.spec("app.yaml", |t| t);
    // Piped: plain timed lines with step timings, no terminal escapes.
    let piped = world.apply(&spec, &[]).await;
    let (stdout, stderr) = text(&piped);
    assert_eq!(piped.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(!stderr.contains('\u{1b}'), "{stderr}");
    assert!(
        stderr.contains("test-api: DEPLOYING (provisioning took"),
        "{stderr}"
    );

    // On a terminal (`script` gives the command a pseudo-terminal): a live line, unless
    // plain lines are asked for.
    let under_terminal = |extra: &'static str| {
        let changed = world.spec("app.yaml", log_level(extra));
        let command = format!(
            "{} apply --deploy-timeout 20 {} {}",
            env!("CARGO_BIN_EXE_fabrik"),
            changed.display(),
            if extra == "plain" {
                "--progress plain"
            } else {
                ""
            }
        );
        crate::support::under_terminal(&command, world.dir.path(), &world.fabrik())
    };
    for (mode, live) in [("live", true), ("plain", false)] {
        let mut script = under_terminal(mode);
        let output = tokio::task::spawn_blocking(move || script.output().expect("script runs"))
            .await
            .expect("joined");
        let seen = String::from_utf8_lossy(&output.stdout);
        assert_eq!(output.status.code(), Some(0), "{seen}");
        assert!(seen.contains("test-api: COMPLETE"), "{seen}");
        assert_eq!(seen.contains('\u{1b}'), live, "{mode}: {seen}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_output_is_one_event_per_line_ending_with_the_summary() {
    let world = World::start().await;
    let spec = world.spec("app.yaml", |t| t);
    let output = world.apply(&spec, &["--output", "json"]).await;
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    let events: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let states: Vec<&str> = events
        .iter()
        .filter(|e| e["event"] == "state")
        .filter_map(|e| e["message"].as_str())
        .collect();
    assert_eq!(
        states,
        [
            "VALIDATING",
            "PROVISIONING",
            "DEPLOYING",
            "VERIFYING",
            "COMPLETE"
        ]
    );
    assert!(
        events.iter().any(|e| e["event"] == "state"
            && e["previous_step"] == "DEPLOYING"
            && e["previous_step_s"].as_f64().is_some()),
        "step timings: {stdout}"
    );
    let summary = events.last().expect("events");
    assert_eq!(summary["event"], "summary");
    assert_eq!(summary["outcome"]["state"], "COMPLETE");
    assert_eq!(summary["outcome"]["url"], "https://api.example.com/health");
    assert!(!stdout.contains(DATABASE_URL) && !stderr.contains(DATABASE_URL));
    assert_no_secret(&world, &[("json stdout", &stdout), ("stderr", &stderr)]);
    assert!(
        !stderr.contains("VALIDATING"),
        "events go to stdout only: {stderr}"
    );
}

/// Three apps applied at once on a terminal: what stays on the screen (rendered by a
/// terminal emulator) has every app's summary line and no leftover spinner line. The
/// live lines on stderr must never overwrite a summary written to stdout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_terminal_every_summary_stays_and_no_spinner_is_left() {
    let world = World::start().await;
    let specs: Vec<String> = ["api", "new", "bad"]
        .iter()
        .map(|name| {
            let path = world.spec(&format!("{name}.yaml"), |t| {
                t.replace("name: test-api", &format!("name: {name}-app"))
                    .replace(
                        "domain: api.example.com",
                        &format!("domain: {name}.example.com"),
                    )
            });
            path.display().to_string()
        })
        .collect();
    let command = format!(
        "stty cols 120 rows 40; {} apply --deploy-timeout 20 --parallel 3 {}",
        env!("CARGO_BIN_EXE_fabrik"),
        specs.join(" ")
    );
    let mut script = crate::support::under_terminal(&command, world.dir.path(), &world.fabrik());
    let output = tokio::task::spawn_blocking(move || script.output().expect("script runs"))
        .await
        .expect("joined");
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    // A screen as tall as everything printed, so nothing scrolls away.
    let size = |n: u16| std::num::NonZero::new(n).expect("not zero");
    let mut screen = vt100::Parser::new(size(400), size(120), 0);
    screen.process(&output.stdout);
    let shown = screen.screen().contents();
    for name in ["api", "new", "bad"] {
        assert!(
            shown.contains(&format!(
                "{name}-app: COMPLETE https://{name}.example.com/health"
            )),
            "the summary of {name}-app was overwritten:\n{shown}"
        );
    }
    let spinners = [
        '⠁', '⠂', '⠄', '⡀', '⢀', '⠠', '⠐', '⠈', '⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏',
    ];
    assert!(
        !shown.lines().any(|l| l.trim_start().starts_with(spinners)),
        "a spinner line was left on the screen:\n{shown}"
    );
}

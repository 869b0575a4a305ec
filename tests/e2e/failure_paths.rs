//! The paths a failed run can take: each rollback policy, a rollback that fails
//! itself, retries that run out, and where secret values come from.

use fabrik_sim::app::Behaviour;
use fabrik_sim::faults::Fault;

use crate::deploy::{DATABASE_URL, World, interrupt, spawn_until, text};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_policy_never_leaves_everything_and_says_so() {
    let world = World::start().await;
    let spec = world.bad_spec(503, |t| {
        t.replace("coolify: auto", "coolify: never")
            .replace("dns: manual", "dns: never")
    });
    let output = world.apply(&spec, &[]).await;
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains("(rollback policy: never)"), "{stdout}");
    assert_eq!(world.sandbox.cloudflare.records().len(), 1);
    assert_eq!(world.sandbox.coolify.resources().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_that_fails_ends_failed_with_what_was_left() {
    let world = World::start().await;
    // Every delete of the service fails: retries run out, the rollback cannot finish.
    world.sandbox.coolify.faults.always(
        "coolify.delete_service",
        Fault::Status {
            status: 500,
            retry_after: None,
        },
    );
    let spec = world.bad_spec(503, |t| t);
    let output = world.apply(&spec, &[]).await;
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains("FAILED"), "{stdout}");
    assert!(stdout.contains("rollback incomplete"), "{stdout}");
    assert!(
        stderr.contains("attempt 3 of 3"),
        "the retries ran out: {stderr}"
    );
    let status = world.run(&["status", "bad-api"]).await;
    assert!(text(&status).0.contains("FAILED"), "{}", text(&status).0);
    // The service is still tracked: a later destroy removes it.
    world.sandbox.coolify.faults.clear();
    let destroyed = world.run(&["destroy", "bad-api", "--yes"]).await;
    assert_eq!(destroyed.status.code(), Some(0), "{}", text(&destroyed).1);
    assert!(world.sandbox.coolify.resources().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_environment_wins_over_dotenv() {
    let world = World::start().await;
    std::fs::write(
        world.dir.path().join(".env"),
        "DATABASE_URL=postgres://from-dotenv@db/x\nAPI_KEY=from-dotenv-key-0123456789abcdef\n",
    )
    .expect(".env");
    let spec = world.spec("app.yaml", |t| t);
    let output = world.apply(&spec, &[]).await;
    assert_eq!(output.status.code(), Some(0), "{}", text(&output).1);
    let uuid = world.sandbox.coolify.resources()[0].1.clone();
    let env = world.sandbox.coolify.env_of(&uuid);
    assert!(
        env.contains(&("DATABASE_URL".to_owned(), DATABASE_URL.to_owned())),
        "the environment's value, not .env's"
    );
    assert!(
        env.contains(&(
            "API_KEY".to_owned(),
            "from-dotenv-key-0123456789abcdef".to_owned()
        )),
        ".env when the environment has none"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_health_check_redirected_off_its_origin_is_not_followed() {
    let world = World::start().await;
    let spec = world.bad_spec(503, |t| t);
    world.sandbox.app.set(
        "bad.example.com",
        Behaviour::Redirect("https://api.example.com/health".to_owned()),
    );
    let output = world.apply(&spec, &[]).await;
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains("last answer 302"), "{stdout}");
    assert_eq!(
        world.sandbox.app.hits("api.example.com"),
        0,
        "the other origin was never asked"
    );
    // Look-alikes of the origin are other origins: a name that starts with the domain,
    // another port on the same (checked) address, user information.
    for location in [
        "https://bad.example.com.evil.test/health",
        "https://bad.example.com:8443/health",
        "https://x@bad.example.com/health",
    ] {
        world
            .sandbox
            .app
            .set("bad.example.com", Behaviour::Redirect(location.to_owned()));
        let output = world.apply(&spec, &[]).await;
        let (stdout, stderr) = text(&output);
        assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
        assert!(stdout.contains("last answer 302"), "{location}: {stdout}");
    }
}

/// A state database that cannot be written mid-run is a fault of the engine, not a
/// failed deploy: the run stops where it is (nothing rolled back, nothing deleted
/// behind the state's back) and says why; the next apply recovers it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_database_fault_stops_the_run_without_a_rollback() {
    let world = World::start().await;
    // The hook hands over to the test, which holds the database's write lock for longer
    // than fabrik's busy timeout (10 s) before the run's next transition.
    let hooks = "hooks:\n  pre_deploy: if [ ! -f once ]; then touch once hold-now; while [ ! -f held ]; do sleep 0.05; done; fi\n";
    let spec = world.spec("app.yaml", |t| format!("{t}{hooks}"));
    let mut cmd = world.command(&spec);
    let apply = tokio::task::spawn_blocking(move || cmd.output().expect("fabrik runs"));
    let dir = world.dir.path().to_path_buf();
    let holder = tokio::task::spawn_blocking(move || {
        let started = std::time::Instant::now();
        while !dir.join("hold-now").exists() {
            assert!(
                started.elapsed() < std::time::Duration::from_secs(30),
                "the hook never ran"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let db = rusqlite::Connection::open(dir.join(".fabrik/state.db")).expect("open");
        db.execute_batch("BEGIN EXCLUSIVE").expect("write lock");
        std::fs::write(dir.join("held"), "").expect("held");
        std::thread::sleep(std::time::Duration::from_secs(13));
        db.execute_batch("COMMIT").expect("released");
    });
    let output = apply.await.expect("joined");
    holder.await.expect("holder");
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("state database error") && stderr.contains("locked"),
        "the fault is named: {stderr}"
    );
    assert!(
        !stdout.contains("ROLLED_BACK") && !stderr.contains("ROLLING_BACK"),
        "a database fault is not a deploy failure: {stdout}\n{stderr}"
    );
    assert_eq!(
        world.sandbox.coolify.resources().len(),
        1,
        "nothing was rolled back"
    );
    assert_eq!(world.sandbox.cloudflare.records().len(), 1);

    // The next apply closes the stopped run and finishes the deploy.
    let again = world.apply(&spec, &[]).await;
    let (stdout, stderr) = text(&again);
    assert_eq!(again.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert_eq!(world.sandbox.coolify.resources().len(), 1);
    assert_eq!(world.sandbox.cloudflare.records().len(), 1);
}

/// A failure reads in three parts: one line for what went wrong (short: no repeated
/// causes, no jargon), a line per resource undone or left (or that nothing changed), and
/// a `next:` line with the command to run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_summary_says_what_went_wrong_what_was_left_and_what_to_do_next() {
    let world = World::start().await;
    let spec = world.spec("app.yaml", |t| t);
    let mut cmd = world.command(&spec);
    cmd.env("COOLIFY_URL", "http://127.0.0.1:9/api/v1");
    let output = World::output(cmd).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{stdout}");
    assert_eq!(lines[0], "test-api: ROLLED_BACK");
    assert!(
        lines[1].starts_with("  what went wrong: ")
            && lines[1].contains("cannot connect to http://127.0.0.1:9: Connection refused"),
        "{stdout}"
    );
    assert!(lines[1].len() < 200, "one short line: {}", lines[1]);
    for jargon in [
        "(transient",
        "error sending request",
        "client error (Connect)",
    ] {
        assert!(!stdout.contains(jargon), "{jargon}: {stdout}");
    }
    assert_eq!(lines[2], "  nothing was changed");
    assert_eq!(
        lines[3],
        format!(
            "  next: fix what went wrong, then `fabrik apply {}`",
            spec.display()
        )
    );

    // A failed health check: the Coolify resource is undone, the DNS record (policy
    // `manual`) left, and the next step is the command that removes it.
    let bad = world.bad_spec(500, |t| t);
    let output = world.apply(&bad, &[]).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    // While it waited, each probe said what it asked and what it got (issue 15, point 5).
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("bad-api: GET /health → 500 (expected 200), attempt 1, 0 s of 2"),
        "{stderr}"
    );
    assert!(stdout.contains("\n  undone: "), "{stdout}");
    assert!(
        stdout.contains("\n  left in place: dns-record bad.example.com"),
        "{stdout}"
    );
    assert!(
        stdout.contains("\n  next: `fabrik destroy bad-api --yes` removes what was left"),
        "{stdout}"
    );
}

/// An apply that waits for another run's lock says whose lock it waits for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_for_a_lock_names_its_holder() {
    let world = World::start().await;
    let spec = world.spec("app.yaml", |t| t);
    let held = fabrik_engine::lock::acquire(
        &world.dir.path().join(".fabrik/locks"),
        "test-api",
        "run-of-someone-else",
        std::time::Duration::ZERO,
    )
    .expect("the test holds the lock");
    let output = world.apply(&spec, &["--lock-timeout", "1"]).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_ne!(output.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "test-api: waiting for the lock held by pid {} on ",
            std::process::id()
        )) && stderr.contains("run run-of-someone-else")
            && stderr.contains("(up to 1 s)"),
        "{stderr}"
    );
    drop(held);
}

/// Ctrl-C during a deployment: the process says it was interrupted, what was left and
/// the command that recovers, exits 130, the state does not show a dead run as still
/// running, and the next apply finishes the job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_says_what_was_left_and_the_next_apply_recovers() {
    let world = World::start().await;
    world
        .sandbox
        .coolify
        .set_timing(fabrik_sim::coolify::Timing {
            service_start: std::time::Duration::from_secs(30),
            ..fabrik_sim::coolify::Timing::default()
        });
    let spec = world.spec("app.yaml", |t| t);
    let (mut child, reader) = spawn_until(
        world.command(&spec),
        "DEPLOYING",
        "the apply reaches DEPLOYING",
    );
    interrupt(&child);
    let status = child.wait().expect("exits");
    let stderr = reader.join().expect("reader");
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("interrupted: test-api stopped while DEPLOYING"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "next: `fabrik apply {}` finishes or undoes it",
            spec.display()
        )),
        "{stderr}"
    );

    let shown = world.run(&["status", "test-api"]).await;
    let shown = format!(
        "{}{}",
        String::from_utf8_lossy(&shown.stdout),
        String::from_utf8_lossy(&shown.stderr)
    );
    assert!(
        !shown.contains("DEPLOYING"),
        "a dead run shown as running: {shown}"
    );

    world
        .sandbox
        .coolify
        .set_timing(fabrik_sim::coolify::Timing::default());
    let again = world.apply(&spec, &[]).await;
    assert_eq!(
        again.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
}

/// Without credentials, every missing setting of every provider is reported at once,
/// and nothing is written: no `.env` with generated secrets, no state database.
#[test]
fn missing_credentials_are_all_reported_before_anything_is_written() {
    let project = tempfile::tempdir().expect("tempdir");
    std::fs::copy(
        crate::support::root().join("fixtures/test-api.yaml"),
        project.path().join("app.yaml"),
    )
    .expect("spec");
    let output = crate::support::fabrik()
        .current_dir(project.path())
        .args(["apply", "app.yaml"])
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    for missing in ["COOLIFY_URL", "COOLIFY_TOKEN", "CLOUDFLARE_API_TOKEN"] {
        assert!(stderr.contains(missing), "{missing} is not named: {stderr}");
    }
    assert!(stderr.contains("nothing was changed"), "{stderr}");
    assert!(
        !project.path().join(".env").exists(),
        "a secret was generated"
    );
    assert!(
        !project.path().join(".fabrik/state.db").exists(),
        "a state was created"
    );
}

/// Issue 15, point 4: credentials that are present but wrong (or an API that is down)
/// stop the run before the other provider has changed anything: both are observed before
/// either changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dns_provider_that_refuses_its_token_stops_the_run_before_coolify_changes() {
    let world = World::start().await;
    let spec = world.spec("app.yaml", |s| s);
    let first = world.apply(&spec, &[]).await;
    assert_eq!(first.status.code(), Some(0), "{:?}", text(&first));

    // An update (a new variable) with a revoked DNS token; then a fresh app likewise.
    let changed = world.spec("app.yaml", |s| {
        s.replace("LOG_LEVEL: info", "LOG_LEVEL: debug")
    });
    let fresh = world.spec("fresh.yaml", |s| {
        s.replace("name: test-api", "name: fresh-api")
            .replace("domain: api.example.com", "domain: new.example.com")
    });
    for spec in [&changed, &fresh] {
        let before = world.mutating_calls();
        let mut cmd = world.command(spec);
        cmd.env("CLOUDFLARE_API_TOKEN", "revoked-token");
        let output = World::output(cmd).await;
        let (stdout, stderr) = text(&output);
        assert_eq!(output.status.code(), Some(1), "{stdout}{stderr}");
        assert_eq!(
            world.mutating_calls(),
            before,
            "nothing was sent that changes Coolify or Cloudflare:\n{stdout}{stderr}"
        );
        assert!(stdout.contains("nothing was changed"), "{stdout}");
        assert!(
            !stdout.contains("restored") && !stderr.contains("restored"),
            "{stdout}{stderr}"
        );
        // Only the host knows where the refused credential came from: it says so.
        assert!(
            format!("{stdout}{stderr}")
                .contains("(the credentials come from `CLOUDFLARE_API_TOKEN`)"),
            "{stdout}{stderr}"
        );
    }
    // The next apply with the right token deploys the change.
    let fixed = world.apply(&changed, &[]).await;
    assert_eq!(fixed.status.code(), Some(0), "{:?}", text(&fixed));
}

/// Ctrl-C while a hook runs stops everything the hook started (its process group), not
/// only its shell: the hook's group is not the terminal's, so only Fabrik can stop it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_during_a_hook_stops_what_the_hook_started() {
    let world = World::start().await;
    let pid_file = world.dir.path().join("sleeper.pid");
    let spec = world.spec("app.yaml", |t| {
        format!(
            "{t}hooks:\n  pre_deploy: \"sleep 120 & echo $! > {}; wait\"\n",
            pid_file.display()
        )
    });
    let (mut child, reader) = spawn_until(
        world.command(&spec),
        "running pre_deploy",
        "the hook starts",
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let sleeper: u32 = loop {
        if let Some(pid) = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|t| t.trim().parse().ok())
        {
            break pid;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the hook never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let alive = |pid: u32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
            !stat
                .split(") ")
                .nth(1)
                .is_some_and(|rest| rest.starts_with('Z'))
        })
    };
    assert!(alive(sleeper));
    interrupt(&child);
    let status = child.wait().expect("exits");
    let stderr = reader.join().expect("reader");
    assert_eq!(status.code(), Some(130), "{stderr}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while alive(sleeper) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(
        !alive(sleeper),
        "the hook's background process outlived the apply:\n{stderr}"
    );
}

/// Issue 16, point 2: special-purpose addresses the old hand list missed (benchmarking
/// 198.18.0.0/15, NAT64 and other IPv6 forms that embed an IPv4 address) are refused as
/// a server's address before anything changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_on_a_special_purpose_address_is_refused_before_anything_changes() {
    let world = World::start().await;
    let spec = world.spec("app.yaml", |s| {
        s.replace("domain: api.example.com", "domain: other.example.com")
    });
    for ip in [
        "198.18.0.7",
        "64:ff9b::c612:7",
        "::ffff:192.168.1.1",
        "2002:c0a8:101::1",
    ] {
        world.sandbox.coolify.set_server_ip("vps1", ip);
        let output = world.apply(&spec, &[]).await;
        let (stdout, stderr) = text(&output);
        assert_eq!(output.status.code(), Some(1), "{ip}: {stdout}{stderr}");
        assert!(
            stdout.contains(&format!("has the private address {ip}")),
            "{ip}: {stdout}"
        );
        assert_eq!(world.mutating_calls(), 0, "{ip}: nothing changed");
    }
}

/// Found by the model test (seed 5157): a create answered with a body that is not JSON,
/// and that the lookup then does not find, left its intent pending after the run had
/// ended. The intent is closed; the next apply creates the record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_answered_with_garbage_leaves_no_pending_intent() {
    let world = World::start().await;
    let spec = world.spec("app.yaml", |s| s);
    world.sandbox.cloudflare.faults.on_nth(
        "cloudflare.create_record",
        1,
        fabrik_sim::faults::Fault::Malformed,
    );
    let failed = world.apply(&spec, &[]).await;
    let (stdout, stderr) = text(&failed);
    assert_eq!(failed.status.code(), Some(1), "{stdout}{stderr}");
    let export = world.run(&["state", "export"]).await;
    let state: serde_json::Value =
        serde_json::from_slice(&export.stdout).expect("the state as JSON");
    let pending: Vec<_> = state["resources"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["status"] == "pending")
        .collect();
    assert!(
        pending.is_empty(),
        "pending after the run ended: {pending:?}"
    );
    let again = world.apply(&spec, &[]).await;
    assert_eq!(again.status.code(), Some(0), "{:?}", text(&again));
    assert_eq!(world.sandbox.cloudflare.records().len(), 1);
}

/// Issue 27: a record that cannot be read on a no-op apply is not drift, and it is read
/// at one level only: the refresh's three attempts, then the run fails on it having
/// changed nothing (the app stays COMPLETE, the attempt is in its history).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_record_is_not_drift_and_is_read_once_per_attempt() {
    let world = World::start().await;
    let spec = world.spec("app.yaml", |t| t);
    let first = world.apply(&spec, &[]).await;
    assert_eq!(first.status.code(), Some(0), "{}", text(&first).1);
    world.sandbox.cloudflare.faults.clear_calls();
    let changes_before = world.mutating_calls();
    world.sandbox.cloudflare.faults.always(
        "cloudflare.get_record",
        Fault::Status {
            status: 500,
            retry_after: None,
        },
    );
    let output = world.apply(&spec, &[]).await;
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("could not read dns-record api.example.com")
            && stdout.contains("nothing was changed"),
        "{stdout}\n{stderr}"
    );
    assert!(!stderr.contains("drift"), "not drift: {stderr}");
    let reads = world
        .sandbox
        .cloudflare
        .faults
        .calls()
        .iter()
        .filter(|c| c.operation == "cloudflare.get_record")
        .count();
    assert_eq!(reads, 3, "three attempts, at one level");
    assert_eq!(
        world.mutating_calls(),
        changes_before,
        "nothing was changed"
    );
    world.sandbox.cloudflare.faults.clear();
    let status = world.run(&["status", "test-api"]).await;
    let shown = text(&status).0;
    assert!(shown.starts_with("test-api: COMPLETE"), "{shown}");
    assert!(shown.contains("could not read dns-record"), "{shown}");
    let again = world.apply(&spec, &[]).await;
    let (stdout, stderr) = text(&again);
    assert!(
        stdout.contains("(no changes)") || stderr.contains("(no changes)"),
        "{stdout}\n{stderr}"
    );
}

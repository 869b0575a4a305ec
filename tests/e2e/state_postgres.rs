//! Projects whose state is in PostgreSQL (`[state] backend = "postgres"`), against a real
//! server (`FABRIK_TEST_POSTGRES_URL`, else one the tests start): the same lifecycle as with
//! SQLite, and locks shared by every machine using the database.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fabrik_sim::coolify::Timing;

use crate::deploy::{World, text};

/// The server's connection string: `FABRIK_TEST_POSTGRES_URL`, else a throwaway cluster
/// the tests start (`fabrik_sim::postgres`); without either the test fails, naming what
/// to install: it never passes without running.
fn postgres_url() -> String {
    fabrik_sim::postgres::server().url.clone()
}

fn fresh_schema() -> String {
    let mut bytes = [0u8; 6];
    getrandom::fill(&mut bytes).expect("random");
    format!("e2e_{}", hex::encode(bytes))
}

const API_KEY: &str = "team-api-key-0123456789abcdef";

/// Makes `dir` a project named `project` whose state is in `schema`; the connection
/// string and the team's secret are in its `.env`, as a team would keep them.
fn use_postgres(dir: &Path, project: &str, url: &str, schema: &str) {
    std::fs::write(
        dir.join("fabrik.toml"),
        format!("[project]\nname = \"{project}\"\n\n[state]\nbackend = \"postgres\"\nschema = \"{schema}\"\n"),
    )
    .expect("fabrik.toml");
    std::fs::write(
        dir.join(".env"),
        format!("FABRIK_STATE_URL=\"{url}\"\nAPI_KEY={API_KEY}\n"),
    )
    .expect(".env");
}

/// A second machine: another project directory (same project, same database) with the
/// spec copied.
fn second_machine(world: &World, url: &str, schema: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    use_postgres(dir.path(), "acme", url, schema);
    let spec = dir.path().join("app.yaml");
    std::fs::copy(world.dir.path().join("app.yaml"), &spec).expect("spec");
    (dir, spec)
}

fn apply_in(world: &World, dir: &Path, spec: &Path) -> std::process::Command {
    let mut cmd = world.fabrik();
    cmd.current_dir(dir)
        .args(["apply", "--deploy-timeout", "300"])
        .arg(spec);
    cmd
}

fn hold_deployments(world: &World, hold: bool) {
    let slow = if hold {
        Duration::from_secs(600)
    } else {
        Duration::ZERO
    };
    world.sandbox.coolify.set_timing(Timing {
        queued: Duration::ZERO,
        building: slow,
        service_start: slow,
        service_degraded: Duration::ZERO,
        delete_delay: Duration::from_millis(100),
        service_deploy_answer: Duration::ZERO,
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_project_on_postgres_deploys_rolls_back_and_keeps_no_state_file() {
    let url = postgres_url();
    let world = World::start().await;
    use_postgres(world.dir.path(), "acme", &url, &fresh_schema());
    let spec = world.spec("app.yaml", |t| t);

    let first = world.apply(&spec, &[]).await;
    let (stdout, stderr) = text(&first);
    assert_eq!(first.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("test-api: COMPLETE"), "{stdout}");
    let again = world.apply(&spec, &[]).await;
    let (stdout, stderr) = text(&again);
    assert!(stdout.contains("(no changes)"), "{stdout}\n{stderr}");
    // Every apply, a no-op too, leaves the lock as it found it: the next one takes over
    // nothing.
    let third = world.apply(&spec, &[]).await;
    let (stdout, stderr) = text(&third);
    assert!(stdout.contains("(no changes)"), "{stdout}\n{stderr}");
    assert!(!stderr.contains("took over"), "{stderr}");

    let bad = world.bad_spec(503, |t| t);
    let failed = world.apply(&bad, &[]).await;
    let (stdout, _) = text(&failed);
    assert_eq!(failed.status.code(), Some(1));
    assert!(stdout.contains("bad-api: ROLLED_BACK"), "{stdout}");

    let status = world.run(&["status"]).await;
    let (listed, _) = text(&status);
    assert!(listed.contains("test-api: COMPLETE"), "{listed}");
    assert!(listed.contains("bad-api: ROLLED_BACK"), "{listed}");
    let plan = world.run(&["plan", spec.to_str().expect("utf-8")]).await;
    assert!(
        text(&plan).0.contains("No changes"),
        "plan reads the shared state: {}",
        text(&plan).0
    );
    let export = world.run(&["state", "export"]).await;
    let (exported, _) = text(&export);
    assert!(exported.contains("\"test-api\""), "{exported}");
    assert!(!exported.contains(API_KEY), "no secret value in the state");
    assert!(
        !world.dir.path().join(".fabrik/state.db").exists(),
        "the state is in PostgreSQL only"
    );
    for output in [&first, &again, &failed, &status, &export] {
        let (stdout, stderr) = text(output);
        assert!(
            !stdout.contains(&url) && !stderr.contains(&url),
            "never the connection string"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_machines_applying_one_app_ten_times_at_once_deploy_it_once() {
    let url = postgres_url();
    let world = World::start().await;
    let schema = fresh_schema();
    use_postgres(world.dir.path(), "acme", &url, &schema);
    let spec_a = world.spec("app.yaml", |t| t);
    let (machine_b, spec_b) = second_machine(&world, &url, &schema);
    // The deployment does not finish until the test says so: every apply starts while
    // the first holds the lock.
    hold_deployments(&world, true);
    let mut children: Vec<_> = (0..10)
        .map(|i| {
            let mut cmd = if i % 2 == 0 {
                apply_in(&world, world.dir.path(), &spec_a)
            } else {
                apply_in(&world, machine_b.path(), &spec_b)
            };
            cmd.spawn().expect("fabrik starts")
        })
        .collect();
    let started = Instant::now();
    loop {
        let mut exited = 0;
        for child in &mut children {
            if child.try_wait().ok().flatten().is_some() {
                exited += 1;
            }
        }
        if exited == 9 {
            break;
        }
        assert!(
            exited < 10 && started.elapsed() < Duration::from_secs(120),
            "{exited} of 10 applies ended while the deployment was held"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    hold_deployments(&world, false);
    let outputs = tokio::task::spawn_blocking(move || {
        children
            .into_iter()
            .map(|c| c.wait_with_output().expect("waits"))
            .collect::<Vec<_>>()
    })
    .await
    .expect("joined");
    let (mut deployed, mut refused) = (0, 0);
    for output in &outputs {
        let (stdout, stderr) = text(output);
        if stdout.contains("test-api: COMPLETE") {
            deployed += 1;
        } else {
            assert!(
                stderr.contains("is being applied by another fabrik (pid ")
                    && stderr.contains(" on ")
                    && stderr.contains("run "),
                "neither deployed nor refused with the holder named:\n{stdout}\n{stderr}"
            );
            refused += 1;
        }
    }
    assert_eq!((deployed, refused), (1, 9));
    assert_eq!(world.sandbox.cloudflare.records().len(), 1);
    assert_eq!(world.sandbox.coolify.resources().len(), 1);
}

/// Starts an apply whose `pre_deploy` hook waits for `go` in the project, and waits until
/// the hook runs (the lock is held then).
async fn apply_held_in_hook(world: &World, spec: &Path) -> std::process::Child {
    let child = world.command(spec).spawn().expect("fabrik starts");
    let started = Instant::now();
    while !world.dir.path().join("in-hook").exists() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the hook never ran"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child
}

const WAITING_HOOK: &str = "hooks:\n  pre_deploy: if [ ! -f once ]; then touch once in-hook; while [ ! -f go ]; do sleep 0.05; done; fi\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_holder_frees_the_lock_at_once_and_the_next_apply_recovers() {
    let url = postgres_url();
    let world = World::start().await;
    use_postgres(world.dir.path(), "acme", &url, &fresh_schema());
    let spec = world.spec("app.yaml", |t| format!("{t}{WAITING_HOOK}"));
    let mut holder = apply_held_in_hook(&world, &spec).await;
    holder.kill().expect("SIGKILL");
    let _ = holder.wait();
    let started = Instant::now();
    let output = world.apply(&spec, &["--lock-timeout", "10"]).await;
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the lock was free as soon as the holder's connection closed"
    );
    assert!(stderr.contains("took over a stale lock"), "{stderr}");
    assert!(
        stderr.contains("interrupted"),
        "the killed run was closed: {stderr}"
    );
    assert_eq!(world.sandbox.coolify.resources().len(), 1);
    assert_eq!(world.sandbox.cloudflare.records().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unlock_names_a_live_holder_and_force_stops_its_run_safely() {
    let url = postgres_url();
    let world = World::start().await;
    use_postgres(world.dir.path(), "acme", &url, &fresh_schema());
    let spec = world.spec("app.yaml", |t| format!("{t}{WAITING_HOOK}"));
    let holder = apply_held_in_hook(&world, &spec).await;

    let refused = world.run(&["unlock", "test-api"]).await;
    let (_, stderr) = text(&refused);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("is held by pid ") && stderr.contains("--force"),
        "{stderr}"
    );
    steal_the_lock(&world).await;

    // The holder's run goes on to its next provider call, finds its lock gone and stops
    // there: nothing rolled back, nothing deleted.
    std::fs::write(world.dir.path().join("go"), "").expect("go");
    let output = tokio::task::spawn_blocking(move || holder.wait_with_output().expect("waits"))
        .await
        .expect("joined");
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stderr.contains("lock of `test-api` was lost"), "{stderr}");
    assert!(!stdout.contains("ROLLED_BACK"), "{stdout}");
    assert_eq!(
        world.sandbox.coolify.resources().len(),
        1,
        "nothing deleted"
    );

    let again = world.apply(&spec, &[]).await;
    let (stdout, stderr) = text(&again);
    assert_eq!(again.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("test-api: COMPLETE"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_projects_with_the_same_app_name_in_one_database_never_block_each_other() {
    let url = postgres_url();
    let world = World::start().await;
    let schema = fresh_schema();
    use_postgres(world.dir.path(), "acme", &url, &schema);
    let spec = world.spec("app.yaml", |t| format!("{t}{WAITING_HOOK}"));
    let holder = apply_held_in_hook(&world, &spec).await;

    // Another project deploying an app of the same name into its own Coolify and DNS,
    // with its state in the same schema.
    let other = World::start().await;
    use_postgres(other.dir.path(), "globex", &url, &schema);
    let other_spec = other.spec("app.yaml", |t| t);
    let output = other.apply(&other_spec, &[]).await;
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("test-api: COMPLETE"), "{stdout}");

    std::fs::write(world.dir.path().join("go"), "").expect("go");
    let held = tokio::task::spawn_blocking(move || holder.wait_with_output().expect("waits"))
        .await
        .expect("joined");
    assert_eq!(held.status.code(), Some(0), "{}", text(&held).1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_machine_sees_the_same_version_and_never_regenerates_a_secret() {
    let url = postgres_url();
    let world = World::start().await;
    let schema = fresh_schema();
    use_postgres(world.dir.path(), "acme", &url, &schema);
    // SESSION_KEY is in no .env: machine A generates it.
    let spec_a = world.spec("app.yaml", |t| {
        t.replace(
            "secrets: [DATABASE_URL, API_KEY]",
            "secrets: [DATABASE_URL, API_KEY, SESSION_KEY]",
        )
    });
    let first = world.apply(&spec_a, &[]).await;
    let (stdout, stderr) = text(&first);
    assert_eq!(first.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stderr.contains("generated secret SESSION_KEY"), "{stderr}");
    let generated = std::fs::read_to_string(world.dir.path().join(".env")).expect(".env");
    let session_key = generated
        .lines()
        .find_map(|l| l.strip_prefix("SESSION_KEY="))
        .expect("generated into A's .env")
        .to_owned();

    // Machine B has the team's secrets but not A's generated one: it refuses, naming
    // the secret and where it was made, and changes nothing.
    let (machine_b, spec_b) = second_machine(&world, &url, &schema);
    let calls = world.mutating_calls();
    let refused = apply_in(&world, machine_b.path(), &spec_b)
        .output()
        .expect("runs");
    let (stdout, stderr) = text(&refused);
    assert_eq!(refused.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("secret SESSION_KEY of `test-api` was generated on "),
        "{stderr}"
    );
    assert_eq!(world.mutating_calls(), calls, "nothing changed");
    let env_b = std::fs::read_to_string(machine_b.path().join(".env")).expect(".env");
    assert!(!env_b.contains("SESSION_KEY"), "no other value generated");

    // With the same value but without the team's fingerprint key (never in the state),
    // B refuses, saying where the key is, and changes nothing.
    std::fs::write(
        machine_b.path().join(".env"),
        format!("{env_b}SESSION_KEY={session_key}\n"),
    )
    .expect(".env");
    let refused = apply_in(&world, machine_b.path(), &spec_b)
        .output()
        .expect("runs");
    let (stdout, stderr) = text(&refused);
    assert_eq!(refused.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("copy FABRIK_FINGERPRINT_KEY from a teammate's .env"),
        "{stderr}"
    );
    assert_eq!(world.mutating_calls(), calls, "nothing changed");

    // With the team's key, B computes the same version: its plan and apply find
    // nothing to do.
    let key = team_key(world.dir.path());
    std::fs::write(
        machine_b.path().join(".env"),
        format!("{env_b}SESSION_KEY={session_key}\nFABRIK_FINGERPRINT_KEY={key}\n"),
    )
    .expect(".env");
    let mut plan = world.fabrik();
    plan.current_dir(machine_b.path()).arg("plan").arg(&spec_b);
    let planned = plan.output().expect("plan");
    assert!(
        text(&planned).0.contains("No changes"),
        "{}\n{}",
        text(&planned).0,
        text(&planned).1
    );
    let again = apply_in(&world, machine_b.path(), &spec_b)
        .output()
        .expect("runs");
    let (stdout, stderr) = text(&again);
    assert_eq!(again.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("(no changes)"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_moves_to_postgres_and_back_unchanged() {
    let url = postgres_url();
    let world = World::start().await;
    let schema = fresh_schema();
    std::fs::write(
        world.dir.path().join(".env"),
        format!("API_KEY={API_KEY}\n"),
    )
    .expect(".env");
    // A SQLite project with history: two versions, a failure and a rollback.
    let spec = world.spec("app.yaml", |t| t);
    assert_eq!(world.apply(&spec, &[]).await.status.code(), Some(0));
    let spec = world.spec("app.yaml", |t| {
        t.replace("LOG_LEVEL: info", "LOG_LEVEL: debug")
    });
    assert_eq!(world.apply(&spec, &[]).await.status.code(), Some(0));
    let bad = world.bad_spec(503, |t| t);
    assert_eq!(world.apply(&bad, &[]).await.status.code(), Some(1));
    let rolled = world.run(&["rollback", "test-api"]).await;
    assert_eq!(rolled.status.code(), Some(0), "{}", text(&rolled).1);
    let before = text(&world.run(&["state", "export"]).await).0;
    // What is live now is the first version, which the rollback deployed again.
    let spec = world.spec("app.yaml", |t| t);

    // To PostgreSQL: the [state] settings name the target, the backend is still SQLite.
    use_postgres(world.dir.path(), "acme", &url, &schema);
    let toml = world.dir.path().join("fabrik.toml");
    let postgres_toml = std::fs::read_to_string(&toml).expect("toml");
    std::fs::write(
        &toml,
        postgres_toml.replace("backend = \"postgres\"", "backend = \"sqlite\""),
    )
    .expect("toml");
    let moved = world.run(&["state", "migrate", "--to", "postgres"]).await;
    let (_, stderr) = text(&moved);
    assert_eq!(moved.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("checked row by row"), "{stderr}");
    assert_eq!(
        text(&world.run(&["state", "export"]).await).0,
        before,
        "the source is unchanged"
    );
    let again = world.run(&["state", "migrate", "--to", "postgres"]).await;
    assert_eq!(again.status.code(), Some(1), "never over an existing state");
    assert!(
        text(&again).1.contains("already holds a state"),
        "{}",
        text(&again).1
    );

    // On PostgreSQL the project is where it was: nothing to do, the same history.
    std::fs::write(&toml, &postgres_toml).expect("toml");
    let history = text(&world.run(&["history", "test-api"]).await).0;
    assert!(
        history.contains("rollback to the version of run"),
        "{history}"
    );
    let noop = world.apply(&spec, &[]).await;
    let (stdout, stderr) = text(&noop);
    assert!(stdout.contains("(no changes)"), "{stdout}\n{stderr}");

    // And back to a new SQLite file.
    std::fs::rename(
        world.dir.path().join(".fabrik/state.db"),
        world.dir.path().join("old-state.db"),
    )
    .expect("moved away");
    for side in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(world.dir.path().join(format!(".fabrik/state.db{side}")));
    }
    let back = world.run(&["state", "migrate", "--to", "sqlite"]).await;
    assert_eq!(back.status.code(), Some(0), "{}", text(&back).1);
    std::fs::write(
        &toml,
        postgres_toml.replace("backend = \"postgres\"", "backend = \"sqlite\""),
    )
    .expect("toml");
    let noop = world.apply(&spec, &[]).await;
    assert!(text(&noop).0.contains("(no changes)"), "{}", text(&noop).0);
    assert_eq!(
        text(&world.run(&["history", "test-api"]).await).0,
        history,
        "the same history"
    );
}

/// `pg_dump` of a project's schema holds no secret value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dump_of_the_database_holds_no_secret() {
    let url = postgres_url();
    let world = World::start().await;
    let schema = fresh_schema();
    use_postgres(world.dir.path(), "acme", &url, &schema);
    let spec = world.spec("app.yaml", |t| {
        t.replace(
            "secrets: [DATABASE_URL, API_KEY]",
            "secrets: [DATABASE_URL, API_KEY, SESSION_KEY]",
        )
    });
    assert_eq!(world.apply(&spec, &[]).await.status.code(), Some(0));
    let dotenv = std::fs::read_to_string(world.dir.path().join(".env")).expect(".env");
    let generated = dotenv
        .lines()
        .find_map(|l| l.strip_prefix("SESSION_KEY="))
        .expect("generated")
        .to_owned();
    let pg_dump = pg_program("pg_dump");
    let dump = std::process::Command::new(pg_dump)
        .args(["--schema", &schema, "--dbname", &url])
        .output()
        .expect("pg_dump runs");
    assert!(
        dump.status.success(),
        "{}",
        String::from_utf8_lossy(&dump.stderr)
    );
    let dump = String::from_utf8_lossy(&dump.stdout);
    assert!(dump.contains("test-api"), "the dump holds the state");
    // Nor the key of the fingerprints, which would let anyone holding the dump test
    // guesses of a secret offline (issue 28, point 5).
    let key = team_key(world.dir.path());
    for secret in [
        crate::deploy::DATABASE_URL,
        API_KEY,
        generated.as_str(),
        &key,
    ] {
        assert!(
            !dump.contains(secret),
            "a secret value is in the database dump"
        );
    }
}

/// The team's fingerprint key, as the project's `.env` holds it.
fn team_key(dir: &Path) -> String {
    std::fs::read_to_string(dir.join(".env"))
        .expect(".env")
        .lines()
        .find_map(|l| l.strip_prefix("FABRIK_FINGERPRINT_KEY="))
        .expect("the team's fingerprint key is in .env")
        .to_owned()
}

/// A PostgreSQL client program of the server the tests use (`psql`, `pg_dump`).
fn pg_program(name: &str) -> PathBuf {
    std::fs::read_dir("/usr/lib/postgresql")
        .ok()
        .and_then(|versions| {
            versions
                .filter_map(Result::ok)
                .map(|v| v.path().join("bin").join(name))
                .find(|p| p.exists())
        })
        .unwrap_or_else(|| PathBuf::from(name))
}

/// Runs `sql` in `schema`, as someone with the database's credentials could.
fn psql(url: &str, schema: &str, sql: &str) -> String {
    let output = std::process::Command::new(pg_program("psql"))
        .args(["--no-psqlrc", "-qAt", "--dbname", url, "-c"])
        .arg(format!("SET search_path = {schema}; {sql}"))
        .output()
        .expect("psql runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Issue 28, point 5: a state an earlier Fabrik wrote keeps the fingerprint key in the
/// database; the next apply moves it into `.env`, removes it from the database, says so,
/// and finds nothing to redeploy (the fingerprints are the same).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fingerprint_key_kept_in_the_database_moves_out_without_a_redeploy() {
    let url = postgres_url();
    let world = World::start().await;
    let schema = fresh_schema();
    use_postgres(world.dir.path(), "acme", &url, &schema);
    let spec = world.spec("app.yaml", |t| t);
    let first = world.apply(&spec, &[]).await;
    assert_eq!(first.status.code(), Some(0), "{:?}", text(&first));
    // As the previous release left it: the key in `settings`, none in `.env`.
    let key = team_key(world.dir.path());
    psql(
        &url,
        &schema,
        &format!(
            "DELETE FROM settings WHERE name LIKE 'fingerprint_key_id%'; INSERT INTO settings (name, value) VALUES ('fingerprint_key', '{key}');"
        ),
    );
    use_postgres(world.dir.path(), "acme", &url, &schema);
    let calls = world.mutating_calls();

    let again = world.apply(&spec, &[]).await;
    let (stdout, stderr) = text(&again);
    assert_eq!(again.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("(no changes)"), "{stdout}\n{stderr}");
    assert_eq!(world.mutating_calls(), calls, "nothing redeployed");
    assert!(
        stderr.contains("it is now FABRIK_FINGERPRINT_KEY in .env"),
        "{stderr}"
    );
    assert_eq!(team_key(world.dir.path()), key);
    assert_eq!(
        psql(
            &url,
            &schema,
            "SELECT count(*) FROM settings WHERE name = 'fingerprint_key';"
        )
        .trim(),
        "0",
        "the key left the database"
    );
    assert!(
        !psql(&url, &schema, "SELECT value FROM settings;").contains(&key),
        "only its id is kept"
    );
}

/// Needs no server: a PostgreSQL project without its connection string, or with a
/// `[state]` it cannot use, is refused with the fix named and nothing changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_setting_that_cannot_work_is_a_clear_error() {
    let world = World::start().await;
    let spec = world.spec("app.yaml", |t| t);
    let toml = world.dir.path().join("fabrik.toml");
    std::fs::write(
        &toml,
        "[project]\nname = \"acme\"\n\n[state]\nbackend = \"postgres\"\n",
    )
    .expect("toml");
    let output = world.apply(&spec, &[]).await;
    let (_, stderr) = text(&output);
    assert_ne!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("FABRIK_STATE_URL"), "{stderr}");
    assert_eq!(world.mutating_calls(), 0, "nothing changed");
    for (state, problem) in [
        ("backend = \"mysql\"", "expected `sqlite` or `postgres`"),
        (
            "backend = \"postgres\"\nschema = \"Team-A\"",
            "not a usable schema name",
        ),
        (
            "backend = \"postgres\"\nurl = \"postgresql://u:pw@db/x\"",
            "url",
        ),
    ] {
        std::fs::write(
            &toml,
            format!("[project]\nname = \"acme\"\n\n[state]\n{state}\n"),
        )
        .expect("toml");
        let output = world.apply(&spec, &[]).await;
        let (_, stderr) = text(&output);
        assert_ne!(output.status.code(), Some(0), "{state}: {stderr}");
        assert!(
            stderr.contains("fabrik.toml") && stderr.contains(problem),
            "{state}: {stderr}"
        );
        assert!(!stderr.contains("pw@db"), "never the value: {stderr}");
    }
    assert_eq!(world.mutating_calls(), 0);
}

/// Issue 16, point 12, on PostgreSQL: which app already tracks an id is found in the
/// shared database as in a SQLite file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_answered_with_an_id_another_app_holds_is_refused_on_postgres() {
    let url = postgres_url();
    let world = World::start().await;
    use_postgres(world.dir.path(), "acme", &url, &fresh_schema());
    crate::hardening::an_id_another_app_holds_is_refused(&world).await;
}

async fn history_json(world: &World) -> String {
    text(
        &world
            .run(&["history", "test-api", "--output", "json"])
            .await,
    )
    .0
}

/// Runs `fabrik ARGS` with every simulator call slowed down, ends the session holding
/// `test-api`'s lock once its first change is on its way, and returns how it ended and
/// how many changes the simulators had served before it started.
async fn interrupted_by_theft(world: &World, args: &[&str]) -> (std::process::Output, usize) {
    let before = world.mutating_calls();
    world
        .sandbox
        .coolify
        .faults
        .set_latency(Duration::from_millis(1500));
    world
        .sandbox
        .cloudflare
        .faults
        .set_latency(Duration::from_millis(1500));
    let child = world
        .fabrik()
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("fabrik starts");
    let started = Instant::now();
    while world.mutating_calls() <= before {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no mutating call came"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    steal_the_lock(world).await;
    let output = tokio::task::spawn_blocking(move || child.wait_with_output().expect("waits"))
        .await
        .expect("joined");
    world.sandbox.coolify.faults.set_latency(Duration::ZERO);
    world.sandbox.cloudflare.faults.set_latency(Duration::ZERO);
    (output, before)
}

/// Ends the session holding `test-api`'s lock, as `unlock --force` does
/// (`pg_terminate_backend`).
async fn steal_the_lock(world: &World) {
    let forced = world.run(&["unlock", "test-api", "--force"]).await;
    let (_, stderr) = text(&forced);
    assert_eq!(forced.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("ended the session"), "{stderr}");
}

/// Issue 28, point 2: a destroy whose lock session is ended mid-way (by
/// `pg_terminate_backend`) deletes nothing more and writes nothing more: before, it went
/// on deleting the DNS record and marked the app DESTROYED while a teammate's apply had
/// brought it back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destroy_whose_lock_is_stolen_midway_changes_nothing_after() {
    let url = postgres_url();
    let world = World::start().await;
    use_postgres(world.dir.path(), "acme", &url, &fresh_schema());
    let spec = world.spec("app.yaml", |t| t);
    let applied = world.apply(&spec, &[]).await;
    assert_eq!(applied.status.code(), Some(0), "{:?}", text(&applied));
    // The first deletion is on its way when the lock is stolen.
    let (output, before) = interrupted_by_theft(&world, &["destroy", "test-api", "--yes"]).await;
    let (stdout, stderr) = text(&output);
    assert_ne!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stderr.contains("lock of `test-api` was lost"), "{stderr}");
    assert_eq!(
        world.mutating_calls(),
        before + 1,
        "only the deletion sent before the theft: {stderr}"
    );
    assert_eq!(
        world.sandbox.coolify.resources().len() + world.sandbox.cloudflare.records().len(),
        1,
        "one of the two resources is left"
    );
    let status = world.run(&["status", "test-api"]).await;
    let (stdout, _) = text(&status);
    assert!(
        !stdout.contains("DESTROYED"),
        "not marked destroyed: {stdout}"
    );
    let again = world.apply(&spec, &[]).await;
    let (stdout, stderr) = text(&again);
    assert_eq!(again.status.code(), Some(0), "{stdout}\n{stderr}");
    assert_eq!(world.sandbox.coolify.resources().len(), 1);
    assert_eq!(world.sandbox.cloudflare.records().len(), 1);
}

/// Issue 28, point 2: `gc --delete` checks its lock before every deletion.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gc_whose_lock_is_stolen_midway_deletes_nothing_after() {
    let url = postgres_url();
    let world = World::start().await;
    use_postgres(world.dir.path(), "acme", &url, &fresh_schema());
    let spec = world.spec("app.yaml", |t| t);
    let applied = world.apply(&spec, &[]).await;
    assert_eq!(applied.status.code(), Some(0), "{:?}", text(&applied));
    // The state is lost (a new schema): both resources are orphans.
    use_postgres(world.dir.path(), "acme", &url, &fresh_schema());
    let (output, before) = interrupted_by_theft(&world, &["gc", "--delete", "--yes"]).await;
    let (stdout, stderr) = text(&output);
    assert_eq!(
        world.mutating_calls(),
        before + 1,
        "only the deletion sent before the theft: {stdout}\n{stderr}"
    );
    assert!(
        format!("{stdout}{stderr}").contains("lock of `test-api` was lost"),
        "{stdout}\n{stderr}"
    );
    assert_eq!(
        world.sandbox.coolify.resources().len() + world.sandbox.cloudflare.records().len(),
        1,
        "one orphan is left"
    );
}

/// Issue 28, point 2: a run whose lock was stolen while it waited writes nothing over
/// the records of the run that took the lock after it (before, it wrote its run and the
/// deployment's state after the new holder's COMPLETE).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_lost_its_lock_writes_nothing_over_the_next_holder() {
    let url = postgres_url();
    let world = World::start().await;
    use_postgres(world.dir.path(), "acme", &url, &fresh_schema());
    let spec = world.spec("app.yaml", |t| format!("{t}{WAITING_HOOK}"));
    let holder = apply_held_in_hook(&world, &spec).await;
    steal_the_lock(&world).await;
    // A teammate's apply takes the lock and completes.
    let next = world.apply(&spec, &[]).await;
    let (stdout, stderr) = text(&next);
    assert_eq!(next.status.code(), Some(0), "{stdout}\n{stderr}");
    let recorded = history_json(&world).await;
    // The first run goes on, finds its lock gone, and stops.
    std::fs::write(world.dir.path().join("go"), "").expect("go");
    let output = tokio::task::spawn_blocking(move || holder.wait_with_output().expect("waits"))
        .await
        .expect("joined");
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stderr.contains("lock of `test-api` was lost"), "{stderr}");
    assert_eq!(
        history_json(&world).await,
        recorded,
        "nothing written after"
    );
    let status = world.run(&["status", "test-api"]).await;
    assert!(text(&status).0.contains("COMPLETE"), "{:?}", text(&status));
}

/// Review of issue 28's fix: the lock is confirmed before every attempt of a call, not
/// only the first; a retry that comes after the lock was stolen is never sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_the_lock_was_stolen_is_never_sent() {
    let url = postgres_url();
    let world = World::start().await;
    use_postgres(world.dir.path(), "acme", &url, &fresh_schema());
    let spec = world.spec("app.yaml", |t| t);
    world.sandbox.cloudflare.faults.on_nth(
        "cloudflare.create_record",
        1,
        fabrik_sim::faults::Fault::Status {
            status: 503,
            retry_after: Some(3),
        },
    );
    let child = world.command(&spec).spawn().expect("fabrik starts");
    let started = Instant::now();
    while world.calls_of("cloudflare.create_record") == 0 {
        assert!(started.elapsed() < Duration::from_secs(30), "never called");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The run waits out the Retry-After: the lock is stolen meanwhile.
    steal_the_lock(&world).await;
    let output = tokio::task::spawn_blocking(move || child.wait_with_output().expect("waits"))
        .await
        .expect("joined");
    let (stdout, stderr) = text(&output);
    assert_ne!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    assert_eq!(
        world.calls_of("cloudflare.create_record"),
        1,
        "the retry was sent after the theft:\n{stdout}\n{stderr}"
    );
}

/// Review of issue 28's fix: a project whose key id is recorded is judged by it, not by
/// a key an earlier release kept for the whole schema (another project's, say).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_project_with_its_own_key_is_not_judged_by_a_schema_wide_legacy_key() {
    let url = postgres_url();
    let world = World::start().await;
    let schema = fresh_schema();
    use_postgres(world.dir.path(), "acme", &url, &schema);
    let spec = world.spec("app.yaml", |t| t);
    let first = world.apply(&spec, &[]).await;
    assert_eq!(first.status.code(), Some(0), "{:?}", text(&first));
    // Another project of the schema still has the key an earlier release kept there.
    psql(
        &url,
        &schema,
        &format!(
            "INSERT INTO settings (name, value) VALUES ('fingerprint_key', '{}');",
            "ab".repeat(32)
        ),
    );
    let again = world.apply(&spec, &[]).await;
    let (stdout, stderr) = text(&again);
    assert_eq!(again.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("(no changes)"), "{stdout}\n{stderr}");
}

/// An environment's generated secret is kept in `.env.<environment>` and recorded in the
/// shared state: the same machine's next apply finds it there (it was once refused as
/// "generated elsewhere"), and a second machine without it is refused with the file it
/// belongs in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_environments_generated_secret_is_found_again_in_its_own_file() {
    let url = postgres_url();
    let world = World::start().await;
    let schema = fresh_schema();
    use_postgres(world.dir.path(), "acme", &url, &schema);
    let spec = world.spec("app.yaml", |t| {
        format!(
            "{}environments:\n  staging:\n    domain: new.example.com\n",
            t.replace(
                "secrets: [DATABASE_URL, API_KEY]",
                "secrets: [DATABASE_URL, API_KEY, SESSION_KEY]",
            )
            .replace("  environment: production\n", "")
        )
    });
    for attempt in ["generates", "finds"] {
        let output = world.apply(&spec, &["--env", "staging"]).await;
        let (stdout, stderr) = text(&output);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{attempt}: {stdout}\n{stderr}"
        );
    }
    let staging = std::fs::read_to_string(world.dir.path().join(".env.staging")).expect("file");
    assert!(staging.contains("SESSION_KEY="), "{staging}");

    let (machine_b, spec_b) = second_machine(&world, &url, &schema);
    let refused = apply_in(&world, machine_b.path(), &spec_b)
        .args(["--env", "staging"])
        .output()
        .expect("runs");
    let (stdout, stderr) = text(&refused);
    assert_eq!(refused.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("secret SESSION_KEY of `test-api@staging` was generated on ")
            && stderr.contains("the project's .env.staging"),
        "{stderr}"
    );
}

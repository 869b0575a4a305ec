//! `fabrik apply` end to end: the real binary against the simulators.

use std::path::{Path, PathBuf};
use std::process::Output;

use fabrik_sim::app::Behaviour;
use fabrik_sim::coolify::Kind;
use fabrik_sim::{Sandbox, SandboxConfig};

use crate::support::{cache_dir, root};

pub const DATABASE_URL: &str = "postgres://app:pw-9f8e7d6c5b4a@db.internal:5432/app";

/// A project directory and a running sandbox (simulated Coolify, Cloudflare and app).
pub struct World {
    pub sandbox: Sandbox,
    pub dir: tempfile::TempDir,
    pub ca: PathBuf,
}

impl World {
    pub async fn start() -> Self {
        Self::start_with(SandboxConfig::default()).await
    }

    /// [`World::start`] with a sandbox configured as `config` says.
    pub async fn start_with(config: SandboxConfig) -> Self {
        let sandbox = Sandbox::start(config).await.expect("sandbox");
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("fabrik.toml"),
            "[project]\nname = \"acme\"\n",
        )
        .expect("fabrik.toml");
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, sandbox.ca.pem()).expect("ca");
        Self { sandbox, dir, ca }
    }

    /// Writes `file` into the project: `fixtures/test-api.yaml` passed through `edit`.
    pub fn spec(&self, file: &str, edit: impl Fn(String) -> String) -> PathBuf {
        let text = std::fs::read_to_string(root().join("fixtures/test-api.yaml")).expect("fixture");
        let path = self.dir.path().join(file);
        std::fs::write(&path, edit(text)).expect("spec");
        path
    }

    /// `bad.yaml`: the fixture as app `bad-api` on `bad.example.com`, whose endpoint
    /// answers `status`, with a 2 s health-check timeout, then `edit`.
    pub fn bad_spec(&self, status: u16, edit: impl Fn(String) -> String) -> PathBuf {
        self.sandbox
            .app
            .set("bad.example.com", Behaviour::Fail(status));
        self.spec("bad.yaml", |t| {
            edit(
                t.replace("name: test-api", "name: bad-api")
                    .replace("domain: api.example.com", "domain: bad.example.com")
                    .replace("timeout: 30", "timeout: 2"),
            )
        })
    }

    /// The resolve overrides of the sandbox's git hosts and registries (`github.com`,
    /// `ghcr.io`…), where specs' sources resolve.
    pub fn source_overrides(&self) -> Vec<String> {
        fabrik_sim::sources::GIT_HOSTS
            .iter()
            .chain(&fabrik_sim::sources::REGISTRY_HOSTS)
            .map(|host| format!("{host}:443:{}", self.sandbox.app_addr))
            .collect()
    }

    /// `fabrik` in the project with the sandbox's credentials, CA and resolve overrides
    /// for `api`, `bad` and `new` `.example.com` and the sources' hosts, and nothing else
    /// from this environment.
    pub fn fabrik(&self) -> std::process::Command {
        self.fabrik_in(self.dir.path())
    }

    /// [`World::fabrik`] in another project directory, against the same sandbox.
    pub fn fabrik_in(&self, dir: &Path) -> std::process::Command {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_fabrik"));
        let mut resolve: Vec<String> = ["api", "bad", "new"]
            .iter()
            .map(|host| format!("{host}.example.com:443:{}", self.sandbox.app_addr))
            .collect();
        resolve.extend(self.source_overrides());
        cmd.current_dir(dir)
            .env_clear()
            .envs(crate::support::kept_env())
            .env("FABRIK_CACHE_DIR", cache_dir())
            .env("COOLIFY_URL", &self.sandbox.coolify_url)
            .env("COOLIFY_TOKEN", &self.sandbox.config.coolify_token)
            .env("CLOUDFLARE_API_URL", &self.sandbox.cloudflare_url)
            .env(
                "CLOUDFLARE_API_TOKEN",
                &self.sandbox.config.cloudflare_token,
            )
            .env("UPTIME_KUMA_URL", &self.sandbox.uptime_kuma_url)
            .env(
                "UPTIME_KUMA_USERNAME",
                &self.sandbox.config.uptime_kuma_user.0,
            )
            .env(
                "UPTIME_KUMA_PASSWORD",
                &self.sandbox.config.uptime_kuma_user.1,
            )
            .env("DATABASE_URL", DATABASE_URL)
            .env("FABRIK_CA_FILE", &self.ca)
            .env("FABRIK_RESOLVE", resolve.join(","))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        cmd
    }

    /// Runs `fabrik ARGS`, off the runtime that serves the simulators.
    pub async fn run(&self, args: &[&str]) -> Output {
        let mut cmd = self.fabrik();
        cmd.args(args);
        Self::output(cmd).await
    }

    /// Runs `cmd` to its end, off the runtime that serves the simulators.
    pub async fn output(mut cmd: std::process::Command) -> Output {
        tokio::task::spawn_blocking(move || cmd.output().expect("fabrik runs"))
            .await
            .expect("joined")
    }

    /// Runs `fabrik apply SPEC EXTRA...`.
    pub async fn apply(&self, spec: &Path, extra: &[&str]) -> Output {
        let mut cmd = self.command(spec);
        cmd.args(extra);
        Self::output(cmd).await
    }

    /// `fabrik apply SPEC`, not started.
    pub fn command(&self, spec: &Path) -> std::process::Command {
        let mut cmd = self.fabrik();
        cmd.args(["apply", "--deploy-timeout", "20"]).arg(spec);
        cmd
    }

    pub fn mutating_calls(&self) -> usize {
        let coolify = self
            .sandbox
            .coolify
            .faults
            .calls()
            .into_iter()
            .filter(|c| c.is_mutating())
            .count();
        let cloudflare = self
            .sandbox
            .cloudflare
            .faults
            .calls()
            .into_iter()
            .filter(|c| c.is_mutating())
            .count();
        coolify + cloudflare
    }
}

/// Starts `cmd` with its stderr read on a thread, and returns once a line contains
/// `needle` (within 30 s, else panics with `what`): the running child, and the reader,
/// which yields everything the child printed on stderr once it ends.
pub fn spawn_until(
    mut cmd: std::process::Command,
    needle: &'static str,
    what: &str,
) -> (std::process::Child, std::thread::JoinHandle<String>) {
    use std::io::BufRead;
    let mut child = cmd.spawn().expect("fabrik starts");
    let stderr = child.stderr.take().expect("stderr");
    let (seen, seen_rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if line.contains(needle) {
                let _ = seen.send(());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    seen_rx
        .recv_timeout(std::time::Duration::from_secs(30))
        .unwrap_or_else(|_| panic!("{what}"));
    (child, reader)
}

/// Sends SIGINT (Ctrl-C) to `child`.
pub fn interrupt(child: &std::process::Child) {
    let sent = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(sent.success());
}

/// Fails if any secret value of the project (the app's secrets, generated or not, and the
/// sandbox's API tokens) appears in `outputs`, or in the state database and its journal.
pub fn assert_no_secret(world: &World, outputs: &[(&str, &str)]) {
    let dotenv = std::fs::read_to_string(world.dir.path().join(".env")).unwrap_or_default();
    let mut secrets: Vec<String> = dotenv
        .lines()
        .filter_map(|l| l.split_once('=').map(|(_, v)| v.to_owned()))
        .collect();
    secrets.extend([
        DATABASE_URL.to_owned(),
        "pw-9f8e7d6c5b4a".to_owned(),
        world.sandbox.config.coolify_token.clone(),
        world.sandbox.config.cloudflare_token.clone(),
    ]);
    let mut haystacks: Vec<(String, String)> = outputs
        .iter()
        .map(|(name, text)| ((*name).to_owned(), (*text).to_owned()))
        .collect();
    for file in ["state.db", "state.db-wal"] {
        if let Ok(bytes) = std::fs::read(world.dir.path().join(".fabrik").join(file)) {
            haystacks.push((
                file.to_owned(),
                String::from_utf8_lossy(&bytes).into_owned(),
            ));
        }
    }
    for (name, haystack) in &haystacks {
        for secret in secrets.iter().filter(|s| s.len() >= 6) {
            assert!(
                !haystack.contains(secret.as_str()),
                "{name} contains a secret value"
            );
        }
    }
}

pub fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fresh_deploy_no_op_update_and_no_secret_anywhere() {
    let world = World::start().await;
    let spec = world.spec("app.yaml", |t| t);

    let first = world.apply(&spec, &[]).await;
    let (stdout, stderr) = text(&first);
    assert_eq!(
        first.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stdout.contains("test-api: COMPLETE https://api.example.com/health"),
        "{stdout}"
    );
    assert!(
        stderr.contains("using resolve override api.example.com:443"),
        "overrides are reported: {stderr}"
    );
    let records = world.sandbox.cloudflare.records();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["comment"], "fabrik:acme/test-api");
    assert_eq!(records[0]["content"], "127.0.0.1");
    let resources = world.sandbox.coolify.resources();
    assert_eq!(resources.len(), 1);
    assert_eq!(resources[0].0, Kind::Service);
    let env = world.sandbox.coolify.env_of(&resources[0].1);
    assert!(
        env.iter()
            .any(|(k, v)| k == "DATABASE_URL" && v == DATABASE_URL)
    );
    let dotenv = std::fs::read_to_string(world.dir.path().join(".env"))
        .expect("generated secrets are saved");
    let api_key = dotenv
        .lines()
        .find_map(|l| l.strip_prefix("API_KEY="))
        .expect("API_KEY generated")
        .to_owned();
    assert_eq!(api_key.len(), 32);
    assert!(env.iter().any(|(k, v)| k == "API_KEY" && *v == api_key));

    // Re-apply: nothing changed, so nothing is changed.
    let before = world.mutating_calls();
    let second = world.apply(&spec, &[]).await;
    let (stdout2, stderr2) = text(&second);
    assert_eq!(second.status.code(), Some(0), "{stdout2}\n{stderr2}");
    assert!(stdout2.contains("(no changes)"), "{stdout2}");
    assert_eq!(
        world.mutating_calls(),
        before,
        "a no-op apply makes no mutating call"
    );

    // A changed env value updates in place: no duplicate.
    let changed = world.spec("app.yaml", |t| {
        t.replace("LOG_LEVEL: info", "LOG_LEVEL: debug")
    });
    let third = world.apply(&changed, &[]).await;
    let (stdout3, stderr3) = text(&third);
    assert_eq!(third.status.code(), Some(0), "{stdout3}\n{stderr3}");
    assert_eq!(world.sandbox.coolify.resources().len(), 1);
    assert_eq!(world.sandbox.cloudflare.records().len(), 1);
    let env = world.sandbox.coolify.env_of(&resources[0].1);
    assert!(
        env.iter().any(|(k, v)| k == "LOG_LEVEL" && v == "debug"),
        "{env:?}"
    );

    // No secret value in the database file, the export, or any output.
    let export = std::process::Command::new(env!("CARGO_BIN_EXE_fabrik"))
        .current_dir(world.dir.path())
        .args(["state", "export"])
        .output()
        .expect("export");
    assert_eq!(export.status.code(), Some(0));
    let mut haystacks = vec![
        (
            "export",
            String::from_utf8_lossy(&export.stdout).into_owned(),
        ),
        ("stdout", stdout + &stdout2 + &stdout3),
        ("stderr", stderr + &stderr2 + &stderr3),
    ];
    for file in ["state.db", "state.db-wal"] {
        if let Ok(bytes) = std::fs::read(world.dir.path().join(".fabrik").join(file)) {
            haystacks.push((file, String::from_utf8_lossy(&bytes).into_owned()));
        }
    }
    for (name, haystack) in haystacks {
        for secret in [
            DATABASE_URL,
            "pw-9f8e7d6c5b4a",
            api_key.as_str(),
            world.sandbox.config.coolify_token.as_str(),
            world.sandbox.config.cloudflare_token.as_str(),
        ] {
            assert!(!haystack.contains(secret), "{name} contains a secret value");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_verification_rolls_back_what_the_run_created() {
    let world = World::start().await;
    let spec = world.bad_spec(500, |t| t.replace("dns: manual", "dns: auto"));
    let output = world.apply(&spec, &[]).await;
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains("bad-api: ROLLED_BACK"), "{stdout}");
    assert!(
        stdout.contains("last answer 500"),
        "the reason shows the last status: {stdout}"
    );
    assert!(
        stdout.contains("undone: deleted service bad-api"),
        "{stdout}"
    );
    assert!(
        stdout.contains("undone: deleted dns-record bad.example.com"),
        "{stdout}"
    );
    assert!(
        world.sandbox.cloudflare.records().is_empty(),
        "no fabrik-owned record is left"
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        world.sandbox.coolify.resources().is_empty(),
        "no fabrik-owned resource is left"
    );
    assert!(
        world
            .sandbox
            .coolify
            .deletions()
            .iter()
            .all(|d| d.delete_volumes),
        "what this run created is purged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resource_the_state_does_not_know_is_never_deleted_by_a_rollback() {
    let world = World::start().await;
    let spec = world.spec("app.yaml", |t| t);
    assert_eq!(world.apply(&spec, &[]).await.status.code(), Some(0));
    // The state is lost; the app in Coolify carries our owner tag.
    for file in ["state.db", "state.db-wal", "state.db-shm"] {
        let _ = std::fs::remove_file(world.dir.path().join(".fabrik").join(file));
    }
    world
        .sandbox
        .app
        .set("api.example.com", Behaviour::Fail(500));
    let failing = world.spec("app.yaml", |t| {
        t.replace("LOG_LEVEL: info", "LOG_LEVEL: debug")
            .replace("timeout: 30", "timeout: 2")
            .replace("dns: manual", "dns: auto")
    });
    let output = world.apply(&failing, &[]).await;
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("by its owner tag, not in the state"),
        "{stderr}"
    );
    assert!(
        stdout.contains("it existed before this run and no earlier settings are known; left as is"),
        "{stdout}"
    );
    assert!(
        world.sandbox.coolify.deletions().is_empty(),
        "nothing deleted"
    );
    assert_eq!(world.sandbox.coolify.resources().len(), 1);
    assert_eq!(world.sandbox.cloudflare.records().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_whose_answer_was_lost_is_found_not_duplicated() {
    use fabrik_sim::faults::Fault;
    let world = World::start().await;
    // Both creates take effect, then a proxy answers 502 instead of the result.
    world.sandbox.coolify.faults.on_nth(
        "coolify.create_service",
        1,
        Fault::LoseAnswer { status: 502 },
    );
    world.sandbox.cloudflare.faults.on_nth(
        "cloudflare.create_record",
        1,
        Fault::LoseAnswer { status: 502 },
    );
    let spec = world.spec("app.yaml", |t| t);
    let output = world.apply(&spec, &[]).await;
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stderr.contains("retrying in"), "{stderr}");
    assert_eq!(
        world.calls_of("coolify.create_service"),
        1,
        "found, not created again"
    );
    assert_eq!(
        world.calls_of("cloudflare.create_record"),
        1,
        "found, not created again"
    );
    let resources = world.sandbox.coolify.resources();
    assert_eq!(resources.len(), 1);
    assert_eq!(world.sandbox.cloudflare.records().len(), 1);
    // The half-made service was finished: its variables are set.
    let env = world.sandbox.coolify.env_of(&resources[0].1);
    assert!(
        env.iter()
            .any(|(k, v)| k == "DATABASE_URL" && v == DATABASE_URL)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_dns_policy_keeps_the_record_and_prints_the_command() {
    let world = World::start().await;
    let spec = world.bad_spec(503, |t| t);
    let output = world.apply(&spec, &[]).await;
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("left in place: dns-record bad.example.com"),
        "{stdout}"
    );
    assert!(
        stdout.contains("`fabrik destroy bad-api --yes`"),
        "{stdout}"
    );
    assert_eq!(
        world.sandbox.cloudflare.records().len(),
        1,
        "the manual record stays"
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        world.sandbox.coolify.resources().is_empty(),
        "the auto-policy service is removed"
    );
}

impl World {
    pub fn calls_of(&self, operation: &str) -> usize {
        let all = if operation.starts_with("coolify.") {
            self.sandbox.coolify.faults.calls()
        } else {
            self.sandbox.cloudflare.faults.calls()
        };
        all.iter().filter(|c| c.operation == operation).count()
    }
}

/// Starts `fabrik apply SPEC` and kills it (SIGKILL) while it waits on `operation`,
/// which hangs until then.
async fn kill_during(world: &World, spec: &Path, operation: &str) {
    let faults = if operation.starts_with("coolify.") {
        &world.sandbox.coolify.faults
    } else {
        &world.sandbox.cloudflare.faults
    };
    let before = world.calls_of(operation);
    faults.always(operation, fabrik_sim::faults::Fault::Hang);
    let mut child = world.command(spec).spawn().expect("fabrik starts");
    let started = std::time::Instant::now();
    while world.calls_of(operation) == before {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "{operation} was never called"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    faults.clear();
}

/// The next apply of `spec` completes, takes over the dead run's lock, and leaves exactly
/// one record and one service, both owned by `app` and tracked in the state.
async fn assert_recovered(world: &World, spec: &Path, app: &str, after: &str) {
    let output = world.apply(spec, &[]).await;
    let (stdout, stderr) = text(&output);
    assert_eq!(
        output.status.code(),
        Some(0),
        "after a kill {after}:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains(&format!("{app}: COMPLETE")), "{stdout}");
    assert!(stderr.contains("took over a stale lock"), "{stderr}");
    let records = world.sandbox.cloudflare.records();
    assert_eq!(
        records.len(),
        1,
        "after a kill {after}: no duplicate record"
    );
    let live = world.sandbox.coolify.resources();
    assert_eq!(
        live.len(),
        1,
        "after a kill {after}: no duplicate service: {live:?}"
    );
    assert_eq!(live[0].3, format!("fabrik:acme/{app}"));
    // Everything live is tracked in the state.
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_fabrik"))
        .current_dir(world.dir.path())
        .args(["status", app])
        .output()
        .expect("status");
    let listed = String::from_utf8_lossy(&status.stdout);
    assert!(
        listed.contains(&live[0].1),
        "the service is tracked: {listed}"
    );
    let record_id = records[0]["id"].as_str().expect("id").to_owned();
    assert!(
        listed.contains(&record_id),
        "the record is tracked: {listed}"
    );
    // The killed run is closed in the history, not left half-way.
    let history = std::process::Command::new(env!("CARGO_BIN_EXE_fabrik"))
        .current_dir(world.dir.path())
        .args(["history", app])
        .output()
        .expect("history");
    let runs = String::from_utf8_lossy(&history.stdout);
    let lines: Vec<&str> = runs.lines().collect();
    assert!(lines[0].contains("COMPLETE"), "{runs}");
    assert!(
        lines.iter().all(|l| ["COMPLETE", "FAILED", "ROLLED_BACK"]
            .iter()
            .any(|s| l.contains(s))),
        "every run ended: {runs}"
    );
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.contains("FAILED") && l.contains("interrupted"))
            .count(),
        1,
        "{runs}"
    );
}

/// A first apply killed while it waits on `operation` is recovered by the next apply.
async fn killed_while(operation: &str) {
    let world = World::start().await;
    let spec = world.spec("app.yaml", |t| t);
    kill_during(&world, &spec, operation).await;
    assert_recovered(&world, &spec, "test-api", &format!("in {operation}")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_while_triggering_the_deployment_is_recovered() {
    killed_while("coolify.deploy").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_while_updating_in_place_is_recovered() {
    let world = World::start().await;
    let spec = world.spec("app.yaml", |t| t);
    assert_eq!(world.apply(&spec, &[]).await.status.code(), Some(0));
    let changed = world.spec("app.yaml", |t| {
        t.replace("LOG_LEVEL: info", "LOG_LEVEL: debug")
    });
    kill_during(&world, &changed, "coolify.bulk_envs").await;
    assert_recovered(&world, &changed, "test-api", "while updating").await;
    let (_, uuid, _, _) = world.sandbox.coolify.resources()[0].clone();
    let env = world.sandbox.coolify.env_of(&uuid);
    assert!(
        env.iter().any(|(k, v)| k == "LOG_LEVEL" && v == "debug"),
        "{env:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_while_rolling_back_is_recovered() {
    let world = World::start().await;
    let spec = world.bad_spec(500, |t| t);
    kill_during(&world, &spec, "coolify.delete_service").await;
    world.sandbox.app.set("bad.example.com", Behaviour::Healthy);
    assert_recovered(&world, &spec, "bad-api", "while rolling back").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_in_the_pre_deploy_hook_is_recovered() {
    let world = World::start().await;
    // The hook hangs the first time only.
    let hooks = "hooks:\n  pre_deploy: if [ ! -f started ]; then touch started; sleep 30; fi\n";
    let spec = world.spec("app.yaml", |t| format!("{t}{hooks}"));
    let mut child = world.command(&spec).spawn().expect("fabrik starts");
    let started = std::time::Instant::now();
    while !world.dir.path().join("started").exists() {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "the hook never ran"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    assert_recovered(&world, &spec, "test-api", "in the pre_deploy hook").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_before_the_dns_record_exists_is_recovered() {
    killed_while("cloudflare.create_record").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_after_the_service_was_created_but_not_recorded_is_recovered() {
    // `bulk_envs` runs inside the provider's create, after `POST /services` succeeded.
    killed_while("coolify.bulk_envs").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_while_deploying_is_recovered() {
    killed_while("coolify.get_service").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_while_verifying_is_recovered() {
    let world = World::start().await;
    world.sandbox.app.set("api.example.com", Behaviour::Hang);
    let spec = world.spec("app.yaml", |t| t);
    let mut child = world.command(&spec).spawn().expect("fabrik starts");
    let started = std::time::Instant::now();
    while world.sandbox.app.hits("api.example.com") == 0 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "never verified"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    world.sandbox.app.set("api.example.com", Behaviour::Healthy);
    let output = world.apply(&spec, &[]).await;
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    assert_eq!(world.sandbox.cloudflare.records().len(), 1);
    assert_eq!(world.sandbox.coolify.resources().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_concurrent_applies_of_one_app_deploy_it_once() {
    use fabrik_sim::coolify::Timing;
    use std::time::Duration;
    let world = World::start().await;
    // The deployment does not finish until the test says so: every apply starts while
    // the first holds the lock, however slowly this machine starts processes.
    let slow = Duration::from_secs(600);
    world.sandbox.coolify.set_timing(Timing {
        queued: Duration::ZERO,
        building: slow,
        service_start: slow,
        service_degraded: Duration::ZERO,
        delete_delay: Duration::from_millis(100),
        service_deploy_answer: Duration::ZERO,
    });
    let spec = world.spec("app.yaml", |t| t);
    let mut children: Vec<_> = (0..10)
        .map(|_| {
            let mut cmd = world.fabrik();
            cmd.args(["apply", "--deploy-timeout", "300"]).arg(&spec);
            cmd.spawn().expect("fabrik starts")
        })
        .collect();
    let started = std::time::Instant::now();
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
    world.sandbox.coolify.set_timing(Timing {
        queued: Duration::ZERO,
        building: Duration::ZERO,
        service_start: Duration::ZERO,
        service_degraded: Duration::ZERO,
        delete_delay: Duration::from_millis(100),
        service_deploy_answer: Duration::ZERO,
    });
    let outputs = tokio::task::spawn_blocking(move || {
        children
            .into_iter()
            .map(|c| c.wait_with_output().expect("waits"))
            .collect::<Vec<_>>()
    })
    .await
    .expect("joined");
    let mut deployed = 0;
    let mut refused = 0;
    for output in &outputs {
        let (stdout, stderr) = text(output);
        if stdout.contains("test-api: COMPLETE") && !stdout.contains("(no changes)") {
            deployed += 1;
        } else {
            assert!(
                stderr.contains("is being applied by another fabrik (pid ")
                    && stderr.contains(" on ")
                    && stderr.contains("run "),
                "neither deployed nor refused with the holder named:\n{stdout}\n{stderr}"
            );
            // No wait was asked for: no "waited 1.833µs".
            assert!(!stderr.contains("waited"), "{stderr}");
            assert_eq!(output.status.code(), Some(1));
            refused += 1;
        }
    }
    assert_eq!(deployed, 1, "exactly one apply deploys");
    assert_eq!(refused, 9, "the others report the holder");
    assert_eq!(world.sandbox.cloudflare.records().len(), 1);
    assert_eq!(world.sandbox.coolify.resources().len(), 1);
}

/// `fabrik apply --parallel N` of the fixture as apps `names`, each on
/// `<name>.example.com` (which the sandbox serves), passed through `edit`.
fn apply_together(
    world: &World,
    names: &[&str],
    edit: impl Fn(String) -> String,
) -> std::process::Command {
    let mut resolve = world.source_overrides();
    let mut specs = Vec::new();
    for name in names {
        let domain = format!("{name}.example.com");
        resolve.push(format!("{domain}:443:{}", world.sandbox.app_addr));
        specs.push(world.spec(&format!("{name}.yaml"), |t| {
            edit(
                t.replace("name: test-api", &format!("name: {name}"))
                    .replace("domain: api.example.com", &format!("domain: {domain}")),
            )
        }));
    }
    let mut cmd = world.command(&specs[0]);
    cmd.env("FABRIK_RESOLVE", resolve.join(","))
        .args(&specs[1..])
        .args(["--parallel", &names.len().to_string()]);
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_specs_in_one_apply_run_concurrently() {
    let world = World::start().await;
    let names = ["one", "two", "three"];
    let cmd = apply_together(&world, &names, |t| t);
    let output = World::output(cmd).await;
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    for name in names {
        assert!(
            stdout.contains(&format!(
                "{name}: COMPLETE https://{name}.example.com/health"
            )),
            "{stdout}"
        );
    }
    assert_eq!(world.sandbox.cloudflare.records().len(), 3);
    assert_eq!(world.sandbox.coolify.resources().len(), 3);
    // One Coolify project for the three, though each app's provider instance found none
    // and created one: the later ones deleted theirs and joined the oldest.
    assert_eq!(
        world.sandbox.coolify.project_names(),
        ["fabrik-tests"],
        "Coolify's project names are not unique: one apply must make one project"
    );
    // One `.env`: each generated secret was written once, not once per app.
    let dotenv = std::fs::read_to_string(world.dir.path().join(".env")).expect(".env");
    assert_eq!(dotenv.matches("API_KEY=").count(), 1, "{dotenv}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_deploy_that_answers_slowly_is_waited_for_and_sent_once() {
    use fabrik_sim::coolify::Timing;
    use std::time::Duration;
    let world = World::start().await;
    // Coolify parses the compose and starts the service over SSH before it answers
    // `POST /deploy`: longer than a read may take (the SDK's 20 s).
    world.sandbox.coolify.set_timing(Timing {
        service_deploy_answer: Duration::from_secs(22),
        ..Timing::default()
    });
    let spec = world.spec("api.yaml", |t| t);
    let output = world.apply(&spec, &[]).await;
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("COMPLETE"), "{stdout}");
    assert_eq!(
        world.calls_of("coolify.deploy"),
        1,
        "the deploy was sent once, not again after a timeout\n{stderr}"
    );
}

/// A `POST /deploy` whose answer is lost after Coolify queued the deployment (a proxy's
/// 502) is not sent again: the provider finds the queued deployment and follows it. One
/// that Coolify did not act on (503) is sent again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_whose_answer_was_lost_is_looked_up_not_sent_twice() {
    use fabrik_sim::faults::Fault;
    let world = World::start().await;
    let image = |tag: &'static str| {
        move |t: String| {
            t.replace("template: python-api", "template: docker-image")
                .replace("test-api:1.4", tag)
        }
    };
    let spec = world.spec("app.yaml", image("test-api:1.4"));
    let first = world.apply(&spec, &[]).await;
    let (stdout, stderr) = text(&first);
    assert_eq!(first.status.code(), Some(0), "{stdout}\n{stderr}");
    let uuid = world.sandbox.coolify.resources()[0].1.clone();
    assert_eq!(world.sandbox.coolify.resources()[0].0, Kind::Application);

    // An update: its deploy is queued, then a proxy answers 502.
    let calls = world.calls_of("coolify.deploy");
    world.sandbox.coolify.faults.on_nth(
        "coolify.deploy",
        calls as u32 + 1,
        Fault::LoseAnswer { status: 502 },
    );
    let spec = world.spec("app.yaml", image("test-api:1.5"));
    let updated = world.apply(&spec, &["-v"]).await;
    let (stdout, stderr) = text(&updated);
    assert_eq!(updated.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("COMPLETE"), "{stdout}");
    assert!(
        stderr.contains("following it, not deploying again"),
        "{stderr}"
    );
    assert_eq!(world.calls_of("coolify.deploy"), calls + 1, "{stderr}");
    let deployments = world.sandbox.coolify.deployments_of(&uuid);
    assert_eq!(
        deployments.len(),
        2,
        "one deployment per apply: {deployments:?}"
    );
    let digest = world
        .sandbox
        .app
        .sources
        .image_digest("ghcr.io/acme/test-api", "1.5");
    let deployed = world
        .sandbox
        .coolify
        .deployed_image(&uuid)
        .expect("deployed");
    assert!(deployed.ends_with(&digest), "{deployed}");

    // Refused before it was queued: sent again, once.
    let calls = world.calls_of("coolify.deploy");
    world.sandbox.coolify.faults.on_nth(
        "coolify.deploy",
        calls as u32 + 1,
        Fault::Status {
            status: 503,
            retry_after: None,
        },
    );
    let spec = world.spec("app.yaml", image("test-api:1.6"));
    let updated = world.apply(&spec, &[]).await;
    let (stdout, stderr) = text(&updated);
    assert_eq!(updated.status.code(), Some(0), "{stdout}\n{stderr}");
    assert_eq!(world.calls_of("coolify.deploy"), calls + 2, "{stderr}");
    assert_eq!(world.sandbox.coolify.deployments_of(&uuid).len(), 3);
}

/// Coolify builds at most `concurrent_builds` deployments at once on a server; the others
/// wait in its queue (`next_queuable`). An apply of more applications than that follows
/// each queued deployment until it has run, and every app completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployments_beyond_the_servers_concurrent_builds_wait_in_its_queue() {
    use fabrik_sim::coolify::Timing;
    use std::time::{Duration, Instant};
    let world = World::start().await;
    let build = Duration::from_secs(2);
    world.sandbox.coolify.set_timing(Timing {
        building: build,
        ..Timing::default()
    });
    world.sandbox.coolify.set_concurrent_builds(1);
    let names = ["one", "two", "three"];
    let cmd = apply_together(&world, &names, |t| {
        t.replace("template: python-api", "template: docker-image")
    });
    let started = Instant::now();
    let output = World::output(cmd).await;
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    for name in names {
        assert!(stdout.contains(&format!("{name}: COMPLETE")), "{stdout}");
    }
    // One build at a time: the three took at least three builds' time.
    assert!(started.elapsed() >= 3 * build, "{:?}", started.elapsed());
    let resources = world.sandbox.coolify.resources();
    assert_eq!(resources.len(), 3);
    for (kind, uuid, _, _) in resources {
        assert_eq!(kind, Kind::Application);
        assert_eq!(world.sandbox.coolify.deployments_of(&uuid).len(), 1);
    }
}

/// Coolify's compose parser makes env rows of its own for `environment` values that
/// start with `$` (`serviceParser`): a literal `$5 off` (`$$5 off` in the compose) makes
/// row `$5 off`, a template's `${APP_MODE:-fast}` row `APP_MODE`, and every start makes
/// them again. They are neither deleted (they would come back) nor taken for edits by
/// hand, so the second apply changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn env_rows_coolify_s_parser_makes_are_left_alone_and_the_next_apply_is_a_no_op() {
    let world = World::start().await;
    let templates = world.dir.path().join("templates");
    std::fs::create_dir_all(&templates).expect("templates");
    std::fs::write(
        templates.join("knobs.yaml"),
        "description: an app with a knob\ndefault_port: 8000\nsources: [image]\nservice: app\n---\nservices:\n  app:\n    image: {{ image }}\n    environment:\n      MODE: ${APP_MODE:-fast}\n{% for key, value in environment | items %}      {{ key }}: {{ value }}\n{% endfor %}",
    )
    .expect("template");
    let spec = world.spec("app.yaml", |t| {
        t.replace("template: python-api", "template: knobs")
            .replace(
                "  LOG_LEVEL: info\n",
                "  LOG_LEVEL: info\n  PRICE: \"$5 off\"\n",
            )
    });
    let first = world.apply(&spec, &[]).await;
    let (stdout, stderr) = text(&first);
    assert_eq!(first.status.code(), Some(0), "{stdout}\n{stderr}");
    let uuid = world.sandbox.coolify.resources()[0].1.clone();
    let keys: Vec<String> = world
        .sandbox
        .coolify
        .env_of(&uuid)
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    for key in ["$5 off", "APP_MODE", "PRICE"] {
        assert!(keys.iter().any(|k| k == key), "{key} in {keys:?}");
    }
    let again = world.apply(&spec, &["-v"]).await;
    let (stdout, stderr) = text(&again);
    assert_eq!(again.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("(no changes)"), "{stdout}\n{stderr}");
    assert!(!stderr.contains("drift"), "{stderr}");
}

/// On a server whose proxy is None, Coolify drops an application's new domains from a
/// PATCH without a word (`isProxyShouldRun`), so every apply would send it again: the
/// provider reads the server's proxy before changing domains and says what to do, and
/// nothing is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_domains_on_a_server_without_a_proxy_are_refused_before_anything_changes() {
    let world = World::start().await;
    let spec = world.spec("app.yaml", |t| {
        t.replace("template: python-api", "template: docker-image")
    });
    let first = world.apply(&spec, &[]).await;
    assert_eq!(first.status.code(), Some(0), "{:?}", text(&first));
    world.sandbox.coolify.set_server_proxy("vps1", "NONE");
    let moved = world.spec("app.yaml", |t| {
        t.replace("template: python-api", "template: docker-image")
            .replace("domain: api.example.com", "domain: new.example.com")
    });
    let (patches, deploys) = (
        world.calls_of("coolify.update_application"),
        world.calls_of("coolify.deploy"),
    );
    let output = world.apply(&moved, &[]).await;
    let (stdout, stderr) = text(&output);
    assert_ne!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        format!("{stdout}{stderr}").contains("runs no proxy (its proxy type is None)"),
        "{stdout}\n{stderr}"
    );
    assert_eq!(world.calls_of("coolify.update_application"), patches);
    assert_eq!(world.calls_of("coolify.deploy"), deploys);
}

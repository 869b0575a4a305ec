//! Issue 16: what a planted file, a hostile endpoint or a bad provider could make Fabrik
//! do, each class driven through the real binary.

use crate::deploy::{World, spawn_until, text};

/// A file a link points at, with content that must survive.
fn precious(world: &World) -> std::path::PathBuf {
    let target = world.dir.path().join("precious.txt");
    std::fs::write(&target, "keep me\n").expect("write");
    target
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fabrik_never_writes_through_a_link_planted_where_its_own_files_go() {
    let world = World::start().await;
    let spec = world.spec("app.yaml", |s| s);
    let target = precious(&world);
    let fabrik_dir = world.dir.path().join(".fabrik");
    std::fs::create_dir_all(fabrik_dir.join("locks")).expect("dirs");

    // The app's lock file.
    let lock = fabrik_dir.join("locks/test-api.lock");
    std::os::unix::fs::symlink(&target, &lock).expect("symlink");
    let output = world.apply(&spec, &[]).await;
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stderr.contains("is a symbolic link") || stdout.contains("is a symbolic link"),
        "{stdout}{stderr}"
    );
    assert_eq!(std::fs::read_to_string(&target).expect("read"), "keep me\n");
    assert_eq!(world.mutating_calls(), 0);
    std::fs::remove_file(&lock).expect("unlink");

    // The fingerprint key.
    let key = fabrik_dir.join("fingerprint.key");
    std::os::unix::fs::symlink(&target, &key).expect("symlink");
    let output = world.apply(&spec, &[]).await;
    let (stdout, stderr) = text(&output);
    assert_ne!(output.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        format!("{stdout}{stderr}").contains("is a symbolic link"),
        "{stdout}{stderr}"
    );
    assert_eq!(std::fs::read_to_string(&target).expect("read"), "keep me\n");
    std::fs::remove_file(&key).expect("unlink");

    // The state database and its write-ahead log: SQLite would create or write the
    // files they point to.
    let state = fabrik_dir.join("state.db");
    let elsewhere = world.dir.path().join("elsewhere.db");
    // What the refused applies above left (a state with no resource) goes first.
    for file in ["state.db", "state.db-wal", "state.db-shm"] {
        let _ = std::fs::remove_file(fabrik_dir.join(file));
    }
    for (link, to) in [
        (state.clone(), &elsewhere),
        (fabrik_dir.join("state.db-wal"), &target),
    ] {
        std::os::unix::fs::symlink(to, &link).expect("symlink");
        let output = world.apply(&spec, &[]).await;
        let (stdout, stderr) = text(&output);
        assert_ne!(output.status.code(), Some(0), "{stdout}{stderr}");
        assert!(
            stderr.contains("is a symbolic link") && stderr.contains("--state"),
            "{stdout}{stderr}"
        );
        assert!(
            !elsewhere.exists(),
            "the state was created through the link"
        );
        assert_eq!(std::fs::read_to_string(&target).expect("read"), "keep me\n");
        assert_eq!(world.mutating_calls(), 0);
        std::fs::remove_file(&link).expect("unlink");
        let _ = std::fs::remove_file(&state);
    }

    // Without the links, the same apply deploys.
    let output = world.apply(&spec, &[]).await;
    assert_eq!(output.status.code(), Some(0), "{:?}", text(&output));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_linked_dotenv_is_read_but_never_appended_to() {
    let world = World::start().await;
    let spec = world.spec("app.yaml", |s| s);
    let shared = world.dir.path().join("shared.env");
    std::fs::write(&shared, "LOG_HINT=1\n").expect("write");
    std::os::unix::fs::symlink(&shared, world.dir.path().join(".env")).expect("symlink");

    // API_KEY would be generated: not into the linked file.
    let output = world.apply(&spec, &[]).await;
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stderr.contains("secret API_KEY must be generated, and `")
            && stderr.contains(".env` is a symbolic link"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(&shared).expect("read"),
        "LOG_HINT=1\n"
    );
    assert_eq!(world.mutating_calls(), 0);

    // Set by the user in the linked file: read through the link, and deployed.
    std::fs::write(&shared, "API_KEY=set-by-the-user-0123456789\n").expect("write");
    let output = world.apply(&spec, &[]).await;
    assert_eq!(output.status.code(), Some(0), "{:?}", text(&output));
}

/// Issue 16, point 4: a project's template is checked as Docker would run it: merge keys
/// resolved, `"true"` read as true, mount paths normalised.
#[test]
fn a_template_cannot_slip_past_the_compose_check() {
    let project = tempfile::tempdir().expect("tempdir");
    let templates = project.path().join("templates");
    std::fs::create_dir_all(&templates).expect("templates");
    let header = "description: sneaky\ndefault_port: 8080\nsources: [image]\n---\n";
    let cases = [
        (
            "string",
            "services:\n  app:\n    image: {{ image }}\n    privileged: \"true\"\n",
            "services.app.privileged is true",
        ),
        (
            "merged",
            "x-base: &base\n  privileged: true\nservices:\n  app:\n    <<: *base\n    image: {{ image }}\n",
            "services.app.privileged is true",
        ),
        (
            "socket",
            "services:\n  app:\n    image: {{ image }}\n    volumes: ['/var/run/../run//docker.sock:/s']\n",
            "mounts `/var/run/docker.sock`",
        ),
        // Coolify's parser makes it a ServiceDatabase, which no domain can name.
        (
            "database",
            "services:\n  app:\n    image: postgres:16\n    environment: [POSTGRES_PASSWORD=x]\n",
            "`postgres:16` is one Coolify takes for a database",
        ),
        // Coolify passes volumes to a shell and refuses metacharacters in them.
        (
            "shell",
            "services:\n  app:\n    image: {{ image }}\n    volumes: ['data:/srv/$(id)']\n",
            "which Coolify refuses in a volume",
        ),
        // Issue 28, point 1: the allow list, read after Compose's interpolation.
        (
            "interpolated",
            "services:\n  app:\n    image: {{ image }}\n    privileged: '${PRIV}'\n",
            "services.app.privileged is true",
        ),
        (
            "envfile",
            "services:\n  app:\n    image: {{ image }}\n    env_file: /data/coolify/source/.env\n",
            "services.app.env_file reads a file on the server",
        ),
        (
            "driveropts",
            "services:\n  app:\n    image: {{ image }}\n    volumes: ['root:/host']\nvolumes:\n  root:\n    driver_opts: {type: none, o: bind, device: /}\n",
            "volumes.root: `/` mounts `/`",
        ),
        (
            "unknown",
            "services:\n  app:\n    image: {{ image }}\n    use_api_socket: true\n",
            "services.app.use_api_socket gives the container the Docker API",
        ),
    ];
    for (name, body, expected) in cases {
        std::fs::write(
            templates.join(format!("{name}.yaml")),
            format!("{header}{body}"),
        )
        .expect("template");
        std::fs::write(
            project.path().join("app.yaml"),
            format!("name: my-api\ntemplate: {name}\ndomain: api.example.com\nserver: vps1\nsource: {{image: ghcr.io/acme/my-api:1.4}}\nenv: {{PRIV: 'yes'}}\n"),
        )
        .expect("spec");
        let output = crate::support::fabrik()
            .current_dir(project.path())
            .args(["validate", "app.yaml"])
            .output()
            .expect("runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{name}: {stderr}");
        assert!(stderr.contains(expected), "{name}: {stderr}");
    }
}

/// Issue 28, point 3: ownership is compared on the raw tag, before redaction: a secret
/// whose value is the app's name (so part of its owner tag) once made every apply fail
/// with the resources it had created left untracked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_equal_to_the_apps_name_does_not_make_its_own_tags_foreign() {
    let world = World::start().await;
    let spec = world.spec("app.yaml", |t| t.to_owned());
    std::fs::write(world.dir.path().join(".env"), "API_KEY=test-api\n").expect(".env");
    let output = world.apply(&spec, &[]).await;
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}{stderr}");
    let output = world.apply(&spec, &[]).await;
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("(no changes)"), "{stdout}{stderr}");
}

/// Issue 28, point 4: a project named like another project's shortened owner tag
/// (`<prefix>~<hash>`) would carry that project's tags, adopt its resources and let its
/// `gc --delete` delete them; such a name is refused before anything is read or changed.
#[test]
fn a_project_name_that_forges_another_projects_tags_is_refused() {
    let project = tempfile::tempdir().expect("tempdir");
    // The shortened tag of a long project name (`engine/src/orchestrator/owner.rs`).
    let long = "the-platform-team-of-a-rather-large-company".repeat(3);
    let hash = blake3::hash(long.as_bytes()).to_hex();
    // `fabrik:` + 76 characters of the name + `~` + 12 hex digits + `/api`: 100 bytes.
    let forging = format!("{}~{}", &long[..76], &hash[..12]);
    std::fs::write(
        project.path().join("fabrik.toml"),
        format!("[project]\nname = \"{forging}\"\n"),
    )
    .expect("toml");
    std::fs::write(
        project.path().join("app.yaml"),
        "name: my-api\ntemplate: docker-image\ndomain: api.example.com\nserver: vps1\nport: 8080\nsource: {image: ghcr.io/acme/my-api:1.4}\n",
    )
    .expect("spec");
    for args in [&["plan", "app.yaml"][..], &["gc"][..]] {
        let output = crate::support::fabrik()
            .current_dir(project.path())
            .args(args)
            .output()
            .expect("runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_ne!(output.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(
            stderr.contains("has characters a project name may not have"),
            "{args:?}: {stderr}"
        );
    }
}

/// A project named after a directory whose name cannot be a project name is refused
/// with the way out, and `fabrik init` takes it.
#[test]
fn a_directory_whose_name_cannot_be_a_project_name_is_named_by_init() {
    let parent = tempfile::tempdir().expect("tempdir");
    let dir = parent.path().join("odd+name");
    std::fs::create_dir(&dir).expect("dir");
    std::fs::write(
        dir.join("app.yaml"),
        "name: my-api\ntemplate: docker-image\ndomain: api.example.com\nserver: vps1\nport: 8080\nsource: {image: ghcr.io/acme/my-api:1.4}\n",
    )
    .expect("spec");
    // An unnamed fabrik.toml (providers only) does not name the project either.
    std::fs::write(dir.join("fabrik.toml"), "[state]\nbackend = \"sqlite\"\n").expect("toml");
    let run = |args: &[&str]| {
        crate::support::fabrik()
            .current_dir(&dir)
            .args(args)
            .output()
            .expect("runs")
    };
    let refused = run(&["plan", "app.yaml"]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_ne!(refused.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("fabrik init NAME"), "{stderr}");
    let named = run(&["init", "shop"]);
    assert_eq!(
        named.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&named.stderr)
    );
    let planned = run(&["plan", "app.yaml"]);
    assert_eq!(
        planned.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&planned.stderr)
    );
}

/// Issue 16, points 9 and 12: a `.env` value that `$` expansion changes is named (never
/// shown), with the way to keep it literal; a world-writable `.env` is pointed out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dotenv_expansion_and_a_world_writable_dotenv_are_warned_about() {
    use std::os::unix::fs::PermissionsExt;
    let world = World::start().await;
    let spec = world.spec("app.yaml", |s| s);
    let dotenv = world.dir.path().join(".env");
    std::fs::write(
        &dotenv,
        "API_KEY=Pa$word123$HOME\nLITERAL='Pa$word123'\nPLAIN=no-dollar\n",
    )
    .expect("write");
    let output = world.run(&["plan", spec.to_str().expect("utf-8")]).await;
    let (_, stderr) = text(&output);
    assert!(
        stderr.contains(".env line 1: `$` expansion changed the value of API_KEY")
            && stderr.contains("single quotes"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("LITERAL") && !stderr.contains("PLAIN"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("word123"),
        "a value is never shown: {stderr}"
    );
    assert!(!stderr.contains("writable by every user"), "{stderr}");

    std::fs::set_permissions(&dotenv, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    let output = world.apply(&spec, &[]).await;
    let (stdout, stderr) = text(&output);
    assert!(
        stderr.contains("is writable by every user of this machine"),
        "{stdout}{stderr}"
    );
    assert!(
        stderr.contains("`$` expansion changed the value of API_KEY"),
        "{stderr}"
    );
}

/// Issue 16, point 6: what comes from outside (here a hook's output) cannot forge or
/// erase lines on the terminal: control characters are shown, not obeyed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_characters_from_a_hook_are_shown_not_obeyed() {
    let world = World::start().await;
    let spec = world.spec("app.yaml", |t| {
        format!(
            "{t}hooks:\n  post_deploy: \"printf 'ok\\\\033[2K\\\\rtest-api: FORGED\\\\033]0;title\\\\007\\\\n'\"\n"
        )
    });
    let output = world.apply(&spec, &[]).await;
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stderr.contains("ok\\x1b[2K\\rtest-api: FORGED\\x1b]0;title\\x07"),
        "{stderr}"
    );
    assert!(
        !stderr.contains('\r') && !stderr.contains("\u{1b}[2K"),
        "{stderr:?}"
    );
}

/// Issue 16, point 7: the lock lives with the state it protects. Two checkouts of one
/// project sharing one state file cannot both apply an app: the second is refused while
/// the first runs, and nothing of the first is touched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_checkouts_sharing_a_state_share_its_locks() {
    let world = World::start().await;
    let shared = world.dir.path().join("shared");
    std::fs::create_dir_all(&shared).expect("dir");
    let state = shared.join("state.db");
    let toml = "[project]\nname = \"acme\"\n";
    std::fs::write(world.dir.path().join("fabrik.toml"), toml).expect("toml");
    let spec = world.spec("app.yaml", |s| s);
    let other = tempfile::tempdir().expect("checkout");
    std::fs::write(other.path().join("fabrik.toml"), toml).expect("toml");
    std::fs::copy(&spec, other.path().join("app.yaml")).expect("spec");
    std::fs::copy(world.dir.path().join(".env"), other.path().join(".env")).ok();

    world
        .sandbox
        .coolify
        .set_timing(fabrik_sim::coolify::Timing {
            service_start: std::time::Duration::from_secs(4),
            ..fabrik_sim::coolify::Timing::default()
        });
    let mut first = world.command(&spec);
    first.env("FABRIK_STATE_DB", &state);
    let (mut child, reader) = spawn_until(first, "DEPLOYING", "the first apply deploys");

    let second = world
        .fabrik()
        .current_dir(other.path())
        .env("FABRIK_STATE_DB", &state)
        .args(["apply", "app.yaml"])
        .output()
        .expect("second apply");
    let (stdout, stderr) = text(&second);
    assert_eq!(second.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        format!("{stdout}{stderr}").contains("is being applied by another fabrik"),
        "{stdout}{stderr}"
    );
    let status = child.wait().expect("first ends");
    reader.join().expect("reader");
    assert!(status.success(), "the first apply completes untouched");
    assert_eq!(world.sandbox.cloudflare.records().len(), 1);
}

/// Issue 16, point 8: inputs Fabrik does not control are bounded, and every error is
/// located: a provider path that never ends, a template that loops for ever, a spec that
/// is not UTF-8.
#[test]
fn unbounded_inputs_are_refused_quickly_and_located() {
    let project = tempfile::tempdir().expect("tempdir");
    let dir = project.path();
    let run = |args: &[&str]| {
        let started = std::time::Instant::now();
        let output = crate::support::fabrik()
            .current_dir(dir)
            .args(args)
            .timeout(std::time::Duration::from_secs(30))
            .output()
            .expect("runs");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "{args:?} took {:?}",
            started.elapsed()
        );
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };

    std::fs::write(
        dir.join("fabrik.toml"),
        "[providers.dns]\npath = \"/dev/zero\"\n",
    )
    .expect("toml");
    let (code, stderr) = run(&["providers", "list"]);
    assert_ne!(code, Some(0));
    assert!(
        stderr.contains("/dev/zero`: it is not a regular file"),
        "{stderr}"
    );
    assert_eq!(
        stderr.matches("not a regular file").count(),
        1,
        "the cause is said once: {stderr}"
    );
    std::fs::remove_file(dir.join("fabrik.toml")).expect("rm");

    std::fs::create_dir_all(dir.join("templates")).expect("templates");
    std::fs::write(
        dir.join("templates/loops.yaml"),
        "description: loops\ndefault_port: 8080\nsources: [image]\n---\n{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}\nservices:\n  app:\n    image: {{ image }}\n",
    )
    .expect("template");
    std::fs::write(
        dir.join("app.yaml"),
        "name: my-api\ntemplate: loops\ndomain: api.example.com\nserver: vps1\nsource: {image: 'x:1'}\n",
    )
    .expect("spec");
    let (code, stderr) = run(&["validate", "app.yaml"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("app.yaml:2:11 template:") && stderr.contains("ran out of fuel"),
        "{stderr}"
    );

    std::fs::write(
        dir.join("bad.yaml"),
        b"name: my-api\ntemplate: node-api\ndomain: api.ex\xffample.com\n",
    )
    .expect("spec");
    let (code, stderr) = run(&["validate", "bad.yaml"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("bad.yaml:3:15 the file is not UTF-8 text"),
        "{stderr}"
    );

    // A `.env` and a `fabrik.lock` that never end (links a checkout can carry).
    std::fs::write(
        dir.join("app.yaml"),
        "name: my-api\ntemplate: node-api\ndomain: api.example.com\nserver: vps1\nsource: {image: 'x:1'}\n",
    )
    .expect("spec");
    for file in [".env", "fabrik.lock"] {
        std::os::unix::fs::symlink("/dev/zero", dir.join(file)).expect("symlink");
        let (code, stderr) = run(&["plan", "app.yaml"]);
        assert_ne!(code, Some(0), "{file}: {stderr}");
        assert!(
            stderr.contains(file) && stderr.contains("not a regular file"),
            "{file}: {stderr}"
        );
        std::fs::remove_file(dir.join(file)).expect("unlink");
    }
    // A FIFO, which opening alone would wait on for ever.
    let fifo = std::process::Command::new("mkfifo")
        .arg(dir.join(".env"))
        .status()
        .expect("mkfifo runs");
    assert!(fifo.success());
    let (code, stderr) = run(&["plan", "app.yaml"]);
    assert_ne!(code, Some(0), "{stderr}");
    assert!(stderr.contains("not a regular file"), "{stderr}");
}

/// Issue 16, point 10: a multi-line secret is hidden line by line too (hook output is read
/// a line at a time); a secret too short to be hidden, and a plain variable holding a
/// secret's value, are warned about.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redaction_gaps_are_closed_or_warned_about() {
    let world = World::start().await;
    let spec = world.spec("app.yaml", |t| {
        format!("{t}hooks:\n  post_deploy: \"printf '%s\\\\n' \\\"$API_KEY\\\"\"\n").replace(
            "LOG_LEVEL: info",
            "LOG_LEVEL: info\n  COPY: shared-value-0123",
        )
    });
    std::fs::write(
        world.dir.path().join(".env"),
        "API_KEY=\"first-line-aaaa\nmiddle-line-bbbb\nlast-line-cccc\"\n",
    )
    .expect(".env");
    let output = world.apply(&spec, &[]).await;
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}{stderr}");
    for line in ["first-line-aaaa", "middle-line-bbbb", "last-line-cccc"] {
        assert!(
            !stderr.contains(line) && !stdout.contains(line),
            "{line} leaked:\n{stderr}"
        );
    }
    assert!(stderr.contains("post_deploy: [redacted]"), "{stderr}");

    // A short secret, and a plain variable with a secret's value.
    let spec = world.spec("app.yaml", |t| {
        t.replace(
            "LOG_LEVEL: info",
            "LOG_LEVEL: info\n  COPY: shared-value-0123",
        )
    });
    std::fs::write(world.dir.path().join(".env"), "API_KEY=abc\n").expect(".env");
    let mut cmd = world.command(&spec);
    cmd.env("DATABASE_URL", "shared-value-0123");
    let output = World::output(cmd).await;
    let (stdout, stderr) = text(&output);
    assert!(
        format!("{stdout}{stderr}").contains("secret API_KEY is shorter than 6 characters"),
        "{stdout}{stderr}"
    );
    assert!(
        format!("{stdout}{stderr}").contains("env.COPY has the value of secret DATABASE_URL"),
        "{stdout}{stderr}"
    );
}

/// A hook never sees a credential: the providers' token variables and the shared
/// state's connection string are withheld from its environment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hook_never_sees_a_credential() {
    let world = World::start().await;
    let spec = world.spec("app.yaml", |t| {
        format!(
            "{t}hooks:\n  post_deploy: \"echo state=${{FABRIK_STATE_URL:-unset}} coolify=${{COOLIFY_TOKEN:-unset}} dns=${{CLOUDFLARE_API_TOKEN:-unset}} pg=${{PGPASSWORD:-unset}} key=${{FABRIK_FINGERPRINT_KEY:-unset}}\"\n"
        )
    });
    let mut cmd = world.command(&spec);
    cmd.env(
        "FABRIK_STATE_URL",
        "postgresql://fabrik:pg-password-0123@db/state",
    );
    // libpq's own password variable, as a teammate's shell holds it for psql.
    cmd.env("PGPASSWORD", "pg-password-4567");
    // The team's key of secret fingerprints.
    cmd.env("FABRIK_FINGERPRINT_KEY", "ab".repeat(32));
    let output = World::output(cmd).await;
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stderr.contains("post_deploy: state=unset coolify=unset dns=unset pg=unset key=unset"),
        "{stderr}"
    );
}

/// Issue 16, point 12: an apply right after `destroy` never adopts the service Coolify is
/// still deleting (Coolify deletes after it answers): destroy returns once a read no
/// longer finds what it deleted, and the apply creates the app again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_right_after_destroy_creates_the_app_again() {
    let world = World::start().await;
    world
        .sandbox
        .coolify
        .set_timing(fabrik_sim::coolify::Timing {
            delete_delay: std::time::Duration::from_secs(1),
            ..fabrik_sim::coolify::Timing::default()
        });
    let spec = world.spec("app.yaml", |s| s);
    assert_eq!(world.apply(&spec, &[]).await.status.code(), Some(0));
    let destroyed = world.run(&["destroy", "test-api", "--yes"]).await;
    assert_eq!(destroyed.status.code(), Some(0), "{:?}", text(&destroyed));
    // No pause: the next command runs at once.
    let again = world.apply(&spec, &[]).await;
    let (stdout, stderr) = text(&again);
    assert_eq!(again.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stderr.contains("created service test-api"), "{stderr}");
    assert!(
        !stderr.contains("adopted") && !stderr.contains("found untracked"),
        "{stderr}"
    );
    assert_eq!(world.sandbox.coolify.resources().len(), 1);
}

/// Issue 16, point 12: a create answered with a resource another owner holds is never
/// recorded as this run's, so no rollback deletes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_answered_with_someone_elses_resource_is_never_recorded_as_created() {
    let world = World::start().await;
    world
        .sandbox
        .coolify
        .describe_next_service_as("fabrik:someone-else/their-app");
    let spec = world.spec("app.yaml", |s| s);
    let output = world.apply(&spec, &[]).await;
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains("fabrik:someone-else/their-app"),
        "the foreign owner is named: {stdout}"
    );
    assert!(
        world.sandbox.coolify.deletions().is_empty(),
        "the rollback deleted a resource it does not own: {stdout}{stderr}"
    );
    let status = world.run(&["status", "--output", "json"]).await;
    let (out, _) = text(&status);
    assert!(!out.contains("\"kind\":\"service\""), "recorded: {out}");
}

/// A create answered with no owner tag is refused too: the host cannot tell it from a
/// resource that is not this app's. The next apply finds what was created by its tag.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_answered_without_an_owner_tag_is_never_recorded_as_created() {
    let world = World::start().await;
    world.sandbox.coolify.describe_next_service_as("");
    let spec = world.spec("app.yaml", |s| s);
    let output = world.apply(&spec, &[]).await;
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains("answered with no owner tag, not `fabrik:"),
        "{stdout}"
    );
    assert!(
        world.sandbox.coolify.deletions().is_empty(),
        "{stdout}{stderr}"
    );
}

/// Makes the project's `dns` provider the misbehaving test provider, configured by
/// `config` (an inline TOML table's contents), at the end of its `fabrik.toml`.
pub fn with_evil_dns(world: &World, config: &str) {
    let dir = world.dir.path();
    std::fs::create_dir_all(dir.join("plugins")).expect("mkdir");
    std::fs::copy(
        crate::support::test_plugin("evil"),
        dir.join("plugins/evil.wasm"),
    )
    .expect("copy");
    let toml = dir.join("fabrik.toml");
    let text = std::fs::read_to_string(&toml).expect("fabrik.toml");
    // A second call replaces the section the first one added (it comes last).
    let project = text.split("\n[providers.dns]").next().unwrap_or_default();
    std::fs::write(
        toml,
        format!(
            "{project}\n[providers.dns]\npath = \"plugins/evil.wasm\"\nconfig = {{ {config} }}\n"
        ),
    )
    .expect("fabrik.toml");
}

/// Issue 16, point 12: a create answered with the id of a resource another app's state
/// already tracks (with this app's owner tag: a confused provider echoes the tag it was
/// given) is refused, so the second app's rollback never deletes the first app's record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_answered_with_an_id_another_app_holds_is_never_recorded_as_created() {
    let world = World::start().await;
    an_id_another_app_holds_is_refused(&world).await;
}

/// Two apps of one project whose DNS provider answers every create with the same id:
/// the second is refused and tracks nothing; the first keeps its record.
pub async fn an_id_another_app_holds_is_refused(world: &World) {
    with_evil_dns(world, "answer-id = \"record-shared\"");
    let first = world.spec("first.yaml", |s| s);
    let applied = world.apply(&first, &[]).await;
    assert_eq!(applied.status.code(), Some(0), "{:?}", text(&applied));

    let second = world.spec("second.yaml", |s| {
        s.replace("name: test-api", "name: other-api")
            .replace("domain: api.example.com", "domain: new.example.com")
    });
    let output = world.apply(&second, &["--output", "json"]).await;
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains("\"code\":\"id_already_tracked\"")
            && stdout.contains("already tracks as `api.example.com` of app `acme/test-api`"),
        "{stdout}"
    );
    // The create was answered: the summary never claims that nothing was changed.
    let human = world.apply(&second, &[]).await;
    let (human_out, human_err) = text(&human);
    assert!(
        human_out.contains(
            "not tracked: dns-record new.example.com (record-shared) may have been created"
        ) && !human_out.contains("nothing was changed"),
        "{human_out}{human_err}"
    );

    // The first app still tracks its record; the second tracks none, and its rollback
    // removed only its own Coolify service.
    let status = |app: &'static str| async move {
        let output = world.run(&["status", app, "--output", "json"]).await;
        text(&output).0
    };
    let first_status = status("test-api").await;
    assert!(first_status.contains("record-shared"), "{first_status}");
    let second_status = status("other-api").await;
    let resources = serde_json::from_str::<serde_json::Value>(&second_status)
        .map(|v| v["resources"].to_string())
        .unwrap_or_else(|_| panic!("{second_status}"));
    assert!(!resources.contains("record-shared"), "{second_status}");
    let services: Vec<String> = world
        .sandbox
        .coolify
        .resources()
        .into_iter()
        .map(|(_, _, name, _)| name)
        .collect();
    assert_eq!(services, ["test-api"], "{stdout}{stderr}");

    // A lookup that "finds" the first app's record for the second: refused before any
    // update is sent (this provider's update fails, which would be the failure then).
    with_evil_dns(world, "lookup-id = \"record-shared\"");
    let output = world.apply(&second, &["--output", "json"]).await;
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains("\"code\":\"id_already_tracked\""),
        "{stdout}{stderr}"
    );
    let first_status = status("test-api").await;
    assert!(first_status.contains("record-shared"), "{first_status}");
}

/// Issue 16, point 12: a provider that crashes in `configure` stops `apply` before the
/// state has a deployment or a run of the app (it used to leave a PENDING deployment
/// with no run in its history).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_that_crashes_in_configure_leaves_no_pending_deployment() {
    let world = World::start().await;
    with_evil_dns(&world, "crash-in = \"configure\"");
    let spec = world.spec("app.yaml", |s| s);
    let output = world.apply(&spec, &[]).await;
    let (stdout, stderr) = text(&output);
    assert_ne!(output.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stderr.contains("crashed in `configure`"),
        "the crash is named: {stdout}{stderr}"
    );
    assert_eq!(world.mutating_calls(), 0);
    let status = world.run(&["status", "--output", "json"]).await;
    let (out, err) = text(&status);
    assert!(
        !out.contains("test-api") && !out.contains("PENDING"),
        "the state has the app: {out}{err}"
    );
}

/// `fabrik ARGS` as a user who can read the project but write none of it: as root (CI),
/// the command runs as `nobody` (`setpriv`, util-linux), since no permission stops root.
fn as_reader(world: &World, args: &[&str]) -> std::process::Command {
    let fabrik = world.fabrik();
    let is_root = std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false);
    if !is_root {
        let mut cmd = fabrik;
        cmd.args(args);
        return cmd;
    }
    // Its own copy of the binary and an empty component cache it cannot write either:
    // the checkout (and its `target`) may be closed to other users.
    let bin = world.dir.path().join("bin");
    if !bin.exists() {
        std::fs::create_dir(&bin).expect("mkdir");
        std::fs::copy(fabrik.get_program(), bin.join("fabrik")).expect("copy fabrik");
        std::fs::create_dir(world.dir.path().join("cache")).expect("mkdir");
    }
    let mut cmd = std::process::Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(bin.join("fabrik"))
        .args(args)
        .env_clear()
        .current_dir(world.dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for (key, value) in fabrik.get_envs() {
        if let Some(value) = value {
            cmd.env(key, value);
        }
    }
    cmd.env("FABRIK_CACHE_DIR", world.dir.path().join("cache"));
    cmd
}

fn set_mode(path: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// Issue 16, point 11: a state directory its user cannot write (a read-only checkout,
/// another user's state) is still read by the commands that only read, and `apply` says
/// the state cannot be written, never that it is damaged (whose advice, to move it away,
/// would later duplicate every resource).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_that_cannot_be_written_is_read_and_never_called_damaged() {
    let world = World::start().await;
    let spec = world.spec("app.yaml", |s| s);
    assert_eq!(world.apply(&spec, &[]).await.status.code(), Some(0));
    let state_dir = world.dir.path().join(".fabrik");
    let state = state_dir.join("state.db");
    let before = std::fs::read(&state).expect("state");
    set_mode(world.dir.path(), 0o755);
    set_mode(&state_dir, 0o555);
    set_mode(&state, 0o444);
    set_mode(&spec, 0o444);
    // The secrets generated by the first apply: readable by this user, as in a checkout
    // of its own that it cannot write.
    set_mode(&world.dir.path().join(".env"), 0o444);
    // A fingerprint key this user cannot read: the plan cannot tell whether a secret
    // changed, and says so instead of calling every secret changed.
    let key = state_dir.join("fingerprint.key");
    let output = World::output(as_reader(&world, &["plan", "app.yaml"])).await;
    let (stdout, stderr) = text(&output);
    assert_ne!(output.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stderr.contains("cannot read") && stderr.contains("fingerprint.key"),
        "{stdout}{stderr}"
    );
    set_mode(&key, 0o444);

    let mut seen = Vec::new();
    for args in [
        &["status"][..],
        &["history", "test-api"],
        &["state", "export"],
        &["plan", "app.yaml"],
    ] {
        let output = World::output(as_reader(&world, args)).await;
        let (stdout, stderr) = text(&output);
        assert_eq!(output.status.code(), Some(0), "{args:?}: {stdout}{stderr}");
        seen.push(stdout);
    }
    assert!(
        seen[0].contains("test-api") && seen[0].contains("COMPLETE"),
        "{}",
        seen[0]
    );
    assert!(seen[3].contains("No changes"), "{}", seen[3]);

    let calls = world.mutating_calls();
    let output = World::output(as_reader(&world, &["apply", "app.yaml"])).await;
    let (stdout, stderr) = text(&output);
    assert_ne!(output.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stderr.contains("cannot be written") && !stderr.contains("damaged"),
        "{stdout}{stderr}"
    );
    assert_eq!(world.mutating_calls(), calls, "{stdout}{stderr}");
    set_mode(&state_dir, 0o755);
    set_mode(&state, 0o644);
    assert_eq!(
        std::fs::read(&state).expect("state"),
        before,
        "the state changed"
    );
}

/// SECURITY.md §4, left last time: a provider origin over plain HTTP is allowed (a
/// self-hosted Coolify is often `http://ip:8000`), but apply says the credentials travel
/// in clear. This machine's loopback (the sandbox) is not warned about.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_sent_over_plain_http_are_warned_about() {
    let world = World::start().await;
    let spec = world.spec("app.yaml", |s| s);
    let output = world.apply(&spec, &[]).await;
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}{stderr}");
    assert!(!stderr.contains("plain HTTP"), "{stderr}");

    let mut cmd = world.command(&spec);
    cmd.env("CLOUDFLARE_API_URL", "http://cloudflare.invalid");
    let calls = world.mutating_calls();
    let output = World::output(cmd).await;
    let (stdout, stderr) = text(&output);
    assert!(
        stderr.contains(
            "the dns provider's credentials go to http://cloudflare.invalid over plain HTTP"
        ),
        "{stdout}{stderr}"
    );
    assert_eq!(world.mutating_calls(), calls, "{stdout}{stderr}");
}

/// Issue 16, point 12: a deletion Coolify accepted but never carried out (its job
/// failed) is not counted as done: destroy reads back, says the resource still exists,
/// keeps tracking it, and the next destroy deletes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deletion_accepted_but_never_done_is_noticed_and_kept_tracked() {
    let world = World::start().await;
    let spec = world.spec("app.yaml", |s| s);
    assert_eq!(world.apply(&spec, &[]).await.status.code(), Some(0));
    world.sandbox.coolify.fail_next_deletion(true);
    let output = world
        .run(&["destroy", "test-api", "--yes", "--timeout", "2"])
        .await;
    let (stdout, stderr) = text(&output);
    assert_ne!(output.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stderr.contains("was accepted but it still exists after 2 s"),
        "{stdout}{stderr}"
    );
    assert_eq!(world.sandbox.coolify.resources().len(), 1);
    let status = world.run(&["status", "--output", "json"]).await;
    assert!(
        text(&status).0.contains("\"kind\":\"service\""),
        "the service is still tracked: {:?}",
        text(&status)
    );
    // Status says the destroy did not finish, not just COMPLETE (issue 28, point 7).
    let line: serde_json::Value =
        serde_json::from_str(text(&status).0.trim()).expect("one JSON line");
    let problems = crate::schemas::schema_problems("output/status.json", &line);
    assert!(problems.is_empty(), "{problems:?} in {line}");
    assert_eq!(line["last_destroy"]["complete"], false, "{line}");
    assert_eq!(line["last_destroy"]["failed"], 1, "{line}");
    let human = world.run(&["status"]).await;
    assert!(
        text(&human).0.contains(
            "last destroy: incomplete, 1 deleted, 1 could not be deleted and is still tracked; `fabrik destroy test-api` again deletes the rest"
        ),
        "{:?}",
        text(&human)
    );

    let output = world.run(&["destroy", "test-api", "--yes"]).await;
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}{stderr}");
    assert!(world.sandbox.coolify.resources().is_empty(), "{stderr}");
    let status = world.run(&["status", "--all"]).await;
    assert!(
        !text(&status).0.contains("last destroy"),
        "{:?}",
        text(&status)
    );
}

/// SECURITY.md names the code that enforces each claim, as "(`path.rs` `Name`, ...)":
/// every such file exists and holds every name after it, so the document cannot drift
/// from the code unnoticed. Paths are under `engine/src/` unless they start with a
/// top-level directory.
#[test]
fn every_code_pointer_in_security_md_names_code_that_exists() {
    // A pointer names a definition, not any text that contains it: an item (`fn`,
    // `struct`, `const`...), a variant or a field, as a whole word.
    fn defines(source: &str, name: &str) -> bool {
        let name = regex::escape(name);
        let item =
            format!(r"\b(?:fn|struct|enum|const|static|trait|type|mod|macro_rules!)\s+{name}\b");
        let member = format!(r"(?m)^\s*(?:pub(?:\([^)]*\))?\s+)?{name}\s*(?:[({{,:]|$)");
        [item, member]
            .iter()
            .any(|pattern| regex::Regex::new(pattern).is_ok_and(|r| r.is_match(source)))
    }
    assert!(defines("pub(crate) fn run_it(x: u8) {}", "run_it"));
    assert!(!defines("let x = run_it_more();", "run_it"));
    assert!(!defines("// see run_it", "run_it"));
    assert!(defines("enum E {\n    Variant { a: u8 },\n}", "Variant"));
    let root = crate::support::root();
    let text = std::fs::read_to_string(root.join("SECURITY.md")).expect("SECURITY.md");
    let is_name = |token: &str| {
        token
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && token
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    };
    // Names in a group without a file are looked for in all the code.
    fn sources(dir: &std::path::Path, into: &mut String) {
        for entry in std::fs::read_dir(dir).expect("dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                sources(&path, into);
            } else if path.extension().is_some_and(|e| e == "rs") {
                into.push_str(&std::fs::read_to_string(&path).expect("source"));
            }
        }
    }
    let mut all = String::new();
    sources(&root.join("engine/src"), &mut all);
    sources(&root.join("host/src"), &mut all);
    let mut checked = 0;
    let mut problems = Vec::new();
    // A parenthesised group may span lines: join the document first.
    let joined = text.replace('\n', " ");
    for group in joined.split('(').skip(1) {
        let group = group.split(')').next().unwrap_or_default();
        let mut file: Option<(String, String)> = None;
        for (i, token) in group.split('`').enumerate() {
            if i % 2 == 0 {
                continue;
            }
            if token.ends_with(".rs") {
                let path = if ["host/", "engine/", "tests/", "providers/"]
                    .iter()
                    .any(|top| token.starts_with(top))
                {
                    root.join(token)
                } else {
                    root.join("engine/src").join(token)
                };
                match std::fs::read_to_string(&path) {
                    Ok(source) => file = Some((token.to_owned(), source)),
                    Err(_) => {
                        problems.push(format!("`{token}` does not exist"));
                        file = None;
                    }
                }
            } else if is_name(token) {
                let name = token.rsplit("::").next().unwrap_or(token);
                checked += 1;
                // A name is defined there, or (a path such as `Pins::Report`) used there as
                // written and defined somewhere; a value is a string literal (a variable,
                // a capability); a crate is used as a path (`iprfc::`).
                let whole = |source: &str| {
                    regex::Regex::new(&format!(r"(^|[^\w:]){}\b", regex::escape(token)))
                        .is_ok_and(|r| r.is_match(source))
                };
                let found = |source: &str| {
                    defines(source, name)
                        || (token.contains("::") && whole(source) && defines(&all, name))
                        || source.contains(&format!("\"{token}\""))
                        || (!token.contains("::") && source.contains(&format!("{token}::")))
                };
                match &file {
                    Some((path, source)) if !found(source) => {
                        problems.push(format!("`{path}` has no `{token}`"));
                    }
                    None if !found(&all) => {
                        problems.push(format!("no code defines `{token}`"));
                    }
                    _ => {}
                }
            }
        }
    }
    assert!(problems.is_empty(), "SECURITY.md: {problems:#?}");
    assert!(
        checked > 50,
        "only {checked} pointers were found: is the format the same?"
    );
}

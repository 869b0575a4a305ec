//! The bundled Coolify component, through the wasmtime host, against the simulator.

use fabrik_engine::plugins::types::{ProgressState, ProviderError};
use fabrik_sim::coolify::Kind;
use fabrik_sim::faults::Fault;
use serde_json::{Value, json};

use crate::provider_support::{Fixture, OWNER, assert_no_token, settle, text};

/// An application's desired state with `env`.
pub(crate) fn application(env: Value) -> Value {
    json!({
        "project": "fabrik-tests",
        "environment": "production",
        "server": "vps1",
        "image": "ghcr.io/acme/test-api:1.4",
        "port": 8000,
        "domains": ["https://api.example.com"],
        "env": env,
    })
}

fn service(env: Value) -> Value {
    json!({
        "project": "fabrik-tests",
        "environment": "staging",
        "server": "vps1",
        "compose": "services:\n  app:\n    image: ghcr.io/acme/web:2\n    environment:\n      API_KEY: ${API_KEY}\n",
        "service": "app",
        "domains": ["https://web.example.com"],
        "env": env,
    })
}

#[tokio::test]
async fn servers_are_found_by_name_with_their_ip() {
    let fx = Fixture::start().await;
    let mut coolify = fx.instance("coolify").await;
    let server = coolify
        .lookup("server", "vps1", OWNER, None)
        .await
        .expect("lookup")
        .expect("found");
    assert_eq!(server.outputs["ip"], "127.0.0.1");
    assert!(
        coolify
            .lookup("server", "vps9", OWNER, None)
            .await
            .expect("lookup")
            .is_none()
    );
}

#[tokio::test]
async fn application_lifecycle_with_env_sync_deploy_and_delete() {
    let fx = Fixture::start().await;
    let sim = &fx.sandbox.coolify;
    let mut coolify = fx.instance("coolify").await;
    let created = coolify
        .create(
            "application",
            "test-api",
            &application(json!({ "LOG_LEVEL": "info", "DATABASE_URL": "postgres://u:p@db/x" })),
            OWNER,
        )
        .await
        .expect("created");
    assert_eq!(
        created.owner.as_deref(),
        Some(OWNER),
        "the owner tag is the description"
    );
    assert_eq!(created.live["image"], "ghcr.io/acme/test-api:1.4");
    assert_eq!(
        created.live["env_keys"],
        json!(["DATABASE_URL", "LOG_LEVEL"])
    );
    assert!(
        created.outputs["deployment_uuid"]
            .as_str()
            .is_some_and(|d| !d.is_empty())
    );
    assert_eq!(
        settle(&mut coolify, "application", &created.id).await.0,
        ProgressState::Ready
    );
    assert!(sim.is_serving("api.example.com"));

    // Update: a changed value, a removed key; deployed again.
    let updated = coolify
        .update(
            "application",
            &created.id,
            &application(json!({ "LOG_LEVEL": "debug" })),
        )
        .await
        .expect("updated");
    assert_eq!(updated.id, created.id);
    assert_eq!(
        sim.env_of(&created.id),
        [("LOG_LEVEL".to_owned(), "debug".to_owned())]
    );
    assert_eq!(
        settle(&mut coolify, "application", &created.id).await.0,
        ProgressState::Ready
    );

    // Found by name across the team, and where its document places it; not in another
    // environment.
    let found = coolify
        .lookup("application", "test-api", OWNER, None)
        .await
        .expect("lookup")
        .expect("found");
    assert_eq!(found.id, created.id);
    let placed = application(json!({}));
    let found = coolify
        .lookup("application", "test-api", OWNER, Some(&placed))
        .await
        .expect("lookup")
        .expect("found in its environment");
    assert_eq!(found.id, created.id);
    let mut elsewhere = placed.clone();
    elsewhere["environment"] = json!("staging");
    assert!(
        coolify
            .lookup("application", "test-api", OWNER, Some(&elsewhere))
            .await
            .expect("lookup")
            .is_none(),
        "not looked for outside the environment the document names"
    );
    assert_eq!(sim.resources().len(), 1, "no duplicate");

    coolify
        .delete("application", &created.id, OWNER, false)
        .await
        .expect("deleted");
    assert!(
        !sim.deletions()[0].delete_volumes,
        "data is kept unless purging"
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        coolify
            .read("application", &created.id)
            .await
            .expect("read")
            .is_none(),
        "the queued delete completed"
    );
    coolify
        .delete("application", &created.id, OWNER, true)
        .await
        .expect("deleting what is gone succeeds");
    assert_eq!(
        sim.missing_accept(),
        0,
        "every call sent Accept: application/json"
    );
}

#[tokio::test]
async fn service_from_compose() {
    let fx = Fixture::start().await;
    let sim = &fx.sandbox.coolify;
    let mut coolify = fx.instance("coolify").await;
    let created = coolify
        .create(
            "service",
            "web",
            &service(json!({ "API_KEY": "k-123" })),
            OWNER,
        )
        .await
        .expect("created");
    assert_eq!(
        settle(&mut coolify, "service", &created.id).await.0,
        ProgressState::Ready
    );
    assert!(sim.is_serving("web.example.com"));
    assert_eq!(
        sim.env_of(&created.id),
        [("API_KEY".to_owned(), "k-123".to_owned())]
    );
    let resources = sim.resources();
    assert_eq!(resources.len(), 1);
    assert_eq!(resources[0].0, Kind::Service);
    coolify
        .delete("service", &created.id, OWNER, true)
        .await
        .expect("deleted");
    assert!(
        sim.deletions()[0].delete_volumes,
        "purge deletes volumes of what this run created"
    );
}

#[tokio::test]
async fn a_failed_deployment_is_reported() {
    let fx = Fixture::start().await;
    fx.sandbox.coolify.fail_next_deployment("test-api");
    let mut coolify = fx.instance("coolify").await;
    let created = coolify
        .create("application", "test-api", &application(json!({})), OWNER)
        .await
        .expect("created");
    let (state, message) = settle(&mut coolify, "application", &created.id).await;
    assert_eq!(state, ProgressState::Failed);
    assert!(message.is_some_and(|m| m.starts_with("deployment failed")));
}

#[tokio::test]
async fn an_update_while_a_deployment_runs_deploys_the_new_configuration() {
    let fx = Fixture::start().await;
    let sim = &fx.sandbox.coolify;
    let mut coolify = fx.instance("coolify").await;
    let created = coolify
        .create("application", "test-api", &application(json!({})), OWNER)
        .await
        .expect("created");
    // A new image while the first deployment is still queued: unforced, Coolify would
    // skip queueing (same application, commit HEAD) and answer with a uuid it never
    // stored, and the run would follow the old deployment.
    let mut newer = application(json!({ "A": "1" }));
    newer["image"] = json!("ghcr.io/acme/test-api:1.5");
    let updated = coolify
        .update("application", &created.id, &newer)
        .await
        .expect("updated");
    assert_eq!(updated.live["image"], "ghcr.io/acme/test-api:1.5");
    let rows = sim.deployments_of(&created.id);
    assert_eq!(rows.len(), 2, "the update queued a deployment of its own");
    assert_eq!(
        updated.outputs["deployment_uuid"], rows[1].0,
        "the provider knows which deployment is its own"
    );
    assert_eq!(
        settle(&mut coolify, "application", &created.id).await.0,
        ProgressState::Ready
    );
    assert_eq!(
        sim.deployed_image(&created.id).as_deref(),
        Some("ghcr.io/acme/test-api:1.5"),
        "what runs is the new image"
    );
}

#[tokio::test]
async fn images_are_sent_as_name_and_tag_and_digests_as_coolify_parses_them() {
    let fx = Fixture::start().await;
    let sim = &fx.sandbox.coolify;
    let mut coolify = fx.instance("coolify").await;
    let created = coolify
        .create("application", "test-api", &application(json!({})), OWNER)
        .await
        .expect("created");
    settle(&mut coolify, "application", &created.id).await;
    let digest = format!("ghcr.io/acme/test-api@sha256:{}", "ab12".repeat(16));
    for image in [digest.as_str(), "ghcr.io/acme/test-api:2.0", "nginx"] {
        let mut desired = application(json!({}));
        desired["image"] = json!(image);
        let updated = coolify
            .update("application", &created.id, &desired)
            .await
            .unwrap_or_else(|e| panic!("updating to {image}: {e}"));
        settle(&mut coolify, "application", &created.id).await;
        let expected = if image.contains(':') {
            image.to_owned()
        } else {
            format!("{image}:latest")
        };
        assert_eq!(updated.live["image"], expected.as_str());
        assert_eq!(
            sim.deployed_image(&created.id).as_deref(),
            Some(expected.as_str())
        );
    }
}

#[tokio::test]
async fn conflicts_and_faults_map_to_provider_errors() {
    let fx = Fixture::start().await;
    let sim = &fx.sandbox.coolify;
    let mut coolify = fx.instance("coolify").await;
    coolify
        .create("application", "test-api", &application(json!({})), OWNER)
        .await
        .expect("created");
    let error = coolify
        .create("application", "other-api", &application(json!({})), OWNER)
        .await
        .expect_err("domain in use");
    assert!(
        text(&error).contains(
            "domain conflict in Coolify: https://api.example.com is used by application `test-api`"
        ),
        "{error}"
    );

    let mut desired = application(json!({}));
    // (The server list is kept by the instance after its first read, so the 5xx is
    // injected on the create itself.)
    sim.faults.always(
        "coolify.create_application",
        Fault::Status {
            status: 503,
            retry_after: None,
        },
    );
    desired["domains"] = json!(["https://c.example.com"]);
    let result = coolify
        .create("application", "c-api", &desired, OWNER)
        .await;
    assert!(
        matches!(&result, Err(ProviderError::Transient { message, .. }) if message.contains("Coolify error 503")),
        "{result:?}"
    );
    sim.faults.clear();
    sim.faults
        .always("coolify.get_application", Fault::Malformed);
    let found = coolify.read("application", "anything").await;
    assert!(
        matches!(&found, Err(ProviderError::Permanent(m)) if m.contains("not JSON")),
        "{found:?}"
    );
    sim.faults.clear();
    let error = coolify
        .create("application", "d-api", &json!({ "project": "p" }), OWNER)
        .await
        .expect_err("invalid desired");
    assert!(
        text(&error).contains("invalid desired application"),
        "{error}"
    );
    sim.faults.on_nth(
        "coolify.deploy",
        2,
        Fault::Status {
            status: 429,
            // Longer than the call may wait for it (see provider_cloudflare's
            // `a_429_the_call_can_wait_for_is_sent_again_by_the_host`).
            retry_after: Some(600),
        },
    );
    // Last, as it closes the origin for ten minutes.
    desired["domains"] = json!(["https://b.example.com"]);
    match coolify
        .create("application", "b-api", &desired, OWNER)
        .await
    {
        Err(ProviderError::Transient { retry_after, .. }) => {
            assert_eq!(retry_after, Some(std::time::Duration::from_secs(600)))
        }
        other => panic!("expected transient, got {other:?}"),
    }
}

#[tokio::test]
async fn a_wrong_token_is_unauthorized_and_never_echoed() {
    let fx = Fixture::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("fabrik.toml"),
        format!(
            "[providers.coolify]\nconfig = {{ base-url = \"{}\" }}\n",
            fx.sandbox.coolify_url
        ),
    )
    .expect("toml");
    std::fs::write(
        dir.path().join(".env"),
        "COOLIFY_TOKEN='2|not-the-right-token'\n",
    )
    .expect("env");
    let project = fabrik_engine::project::Project::load(dir.path()).expect("project");
    let set = fabrik_engine::plugins::ProviderSet::load(
        &project,
        &fabrik_engine::plugins::cache::ComponentCache::at(&crate::support::cache_dir()),
        fabrik_engine::plugins::Pins::Enforce,
    )
    .expect("load");
    let env = fabrik_engine::secrets::EnvSource::load(dir.path()).expect("env");
    let mut coolify = set
        .instantiate(fabrik_engine::domain::Role::Coolify, &env)
        .await
        .expect("instance");
    let error = coolify
        .create("application", "x", &application(json!({})), OWNER)
        .await
        .expect_err("unauthorized");
    let ProviderError::Unauthorized(message) = &error else {
        panic!("{error:?}")
    };
    assert!(
        message.contains("Unauthenticated.") && message.contains("read, write and deploy"),
        "{message}"
    );
    assert!(!text(&error).contains("not-the-right-token"));
    assert_no_token(&fx.sandbox, &text(&error));
}

#[tokio::test]
async fn a_missing_token_names_the_variable_to_set() {
    let fx = Fixture::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("fabrik.toml"),
        format!(
            "[providers.coolify]\nconfig = {{ base-url = \"{}\" }}\n",
            fx.sandbox.coolify_url
        ),
    )
    .expect("toml");
    let project = fabrik_engine::project::Project::load(dir.path()).expect("project");
    let set = fabrik_engine::plugins::ProviderSet::load(
        &project,
        &fabrik_engine::plugins::cache::ComponentCache::at(&crate::support::cache_dir()),
        fabrik_engine::plugins::Pins::Enforce,
    )
    .expect("load");
    let env = fabrik_engine::secrets::EnvSource::load(dir.path()).expect("env");
    let error = set
        .instantiate(fabrik_engine::domain::Role::Coolify, &env)
        .await
        .err()
        .expect("refused");
    assert!(
        error
            .to_string()
            .contains("set the environment variable `COOLIFY_TOKEN`"),
        "{error}"
    );
}

#[tokio::test]
async fn several_destinations_need_one_named_and_nothing_is_created_before() {
    let fx = Fixture::start().await;
    let sim = &fx.sandbox.coolify;
    let second = sim.add_destination("vps1", "apps");
    let mut coolify = fx.instance("coolify").await;
    let error = coolify
        .create("application", "test-api", &application(json!({})), OWNER)
        .await
        .expect_err("Coolify would refuse the create");
    let message = text(&error);
    assert!(
        message.contains("several destinations") && message.contains("vps1-apps"),
        "{message}"
    );
    assert!(message.contains(&second), "the uuids are listed: {message}");
    assert!(
        !sim.faults.calls().iter().any(|c| c.is_mutating()),
        "nothing was created: {:?}",
        sim.faults.calls()
    );
    let server = coolify
        .lookup("server", "vps1", OWNER, None)
        .await
        .expect("lookup")
        .expect("found");
    // Lookup leaves the destinations out (an update does not need them); `read` of the
    // server gives them, which the host asks for before a create.
    assert!(
        server.outputs.get("destinations").is_none(),
        "{:?}",
        server.outputs
    );
    let read = coolify
        .read("server", &server.id)
        .await
        .expect("read")
        .expect("found");
    assert_eq!(read.outputs["ip"], server.outputs["ip"]);
    assert_eq!(
        read.outputs["destinations"].as_array().map(Vec::len),
        Some(2),
        "the host sees the destinations too"
    );

    let mut named = application(json!({}));
    named["destination"] = json!("apps");
    let created = coolify
        .create("application", "test-api", &named, OWNER)
        .await
        .expect("created on the named destination");
    assert_eq!(
        sim.destination_of(&created.id).as_deref(),
        Some(second.as_str())
    );

    let mut unknown = service(json!({}));
    unknown["destination"] = json!("nowhere");
    let error = coolify
        .create("service", "web", &unknown, OWNER)
        .await
        .expect_err("no such destination");
    assert!(text(&error).contains("no destination `nowhere`"), "{error}");
}

#[tokio::test]
async fn values_coolify_generated_for_a_service_survive_every_update() {
    let fx = Fixture::start().await;
    let sim = &fx.sandbox.coolify;
    let mut coolify = fx.instance("coolify").await;
    let mut desired = service(json!({ "API_KEY": "k-1" }));
    desired["compose"] = json!(
        "services:\n  app:\n    image: ghcr.io/acme/web:2\n    environment:\n      API_KEY: ${API_KEY}\n      DB_PASSWORD: ${SERVICE_PASSWORD_DB}\n      DB_USER: ${SERVICE_USER_DB}\n      JWT: ${SERVICE_BASE64_64_JWT}\n"
    );
    let created = coolify
        .create("service", "web", &desired, OWNER)
        .await
        .expect("created");
    let generated = |env: Vec<(String, String)>| -> Vec<(String, String)> {
        env.into_iter()
            .filter(|(k, _)| k.starts_with("SERVICE_"))
            .collect()
    };
    let before = generated(sim.env_of(&created.id));
    assert_eq!(before.len(), 3, "Coolify generated them: {before:?}");
    desired["env"] = json!({ "API_KEY": "k-2" });
    coolify
        .update("service", &created.id, &desired)
        .await
        .expect("updated");
    assert_eq!(
        generated(sim.env_of(&created.id)),
        before,
        "a generated password is never deleted (it guards an existing volume)"
    );
    assert!(
        sim.env_of(&created.id)
            .contains(&("API_KEY".to_owned(), "k-2".to_owned()))
    );
}

#[tokio::test]
async fn a_degraded_service_is_followed_until_it_runs() {
    use fabrik_sim::coolify::Timing;
    use std::time::Duration;
    let fx = Fixture::start().await;
    fx.sandbox.coolify.set_timing(Timing {
        service_start: Duration::from_millis(100),
        service_degraded: Duration::from_millis(800),
        ..Timing::default()
    });
    let mut coolify = fx.instance("coolify").await;
    let created = coolify
        .create("service", "web", &service(json!({})), OWNER)
        .await
        .expect("created");
    let mut saw_degraded = false;
    let state = loop {
        let progress = coolify
            .progress("service", &created.id)
            .await
            .expect("progress");
        saw_degraded |= progress
            .message
            .as_deref()
            .is_some_and(|m| m.contains("degraded"));
        if matches!(progress.state, ProgressState::Ready | ProgressState::Failed) {
            break progress.state;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(saw_degraded, "the simulator reported degraded on the way");
    assert_eq!(
        state,
        ProgressState::Ready,
        "degraded while starting is not a failure"
    );
}

#[tokio::test]
async fn a_service_reads_its_domains_from_its_compose_services() {
    let fx = Fixture::start().await;
    let mut coolify = fx.instance("coolify").await;
    let created = coolify
        .create("service", "web", &service(json!({})), OWNER)
        .await
        .expect("created");
    assert_eq!(created.live["domains"], json!(["https://web.example.com"]));
    let read = coolify
        .read("service", &created.id)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(read.live["domains"], json!(["https://web.example.com"]));
}

#[tokio::test]
async fn application_preview_copies_follow_the_environment() {
    let fx = Fixture::start().await;
    let sim = &fx.sandbox.coolify;
    let mut coolify = fx.instance("coolify").await;
    let created = coolify
        .create(
            "application",
            "test-api",
            &application(json!({ "TOKEN": "old", "GONE": "x" })),
            OWNER,
        )
        .await
        .expect("created");
    coolify
        .update(
            "application",
            &created.id,
            &application(json!({ "TOKEN": "new" })),
        )
        .await
        .expect("updated");
    assert_eq!(
        sim.env_of(&created.id),
        [("TOKEN".to_owned(), "new".to_owned())]
    );
    assert_eq!(
        sim.preview_env_of(&created.id),
        [("TOKEN".to_owned(), "new".to_owned())],
        "no old or removed value is left in the preview copies"
    );
}

/// Coolify's parser makes a compose service with a database image a `ServiceDatabase`
/// (`isDatabaseImage`), and `urls` can name only applications: the create is refused and
/// leaves nothing (spec validation refuses such a template before this can happen).
#[tokio::test]
async fn urls_for_a_service_coolify_takes_for_a_database_are_refused() {
    let fx = Fixture::start().await;
    let sim = &fx.sandbox.coolify;
    let mut coolify = fx.instance("coolify").await;
    let mut desired = service(json!({}));
    desired["compose"] = json!(
        "services:\n  app:\n    image: postgres:16\n    environment: [POSTGRES_PASSWORD=x]\n"
    );
    let refused = coolify
        .create("service", "web", &desired, OWNER)
        .await
        .expect_err("refused");
    assert!(
        matches!(&refused, ProviderError::Permanent(m) if m.contains("Service container with 'app' not found")),
        "{refused:?}"
    );
    assert!(sim.resources().is_empty());
    // The same image serving HTTP, as its health check shows, is an application.
    desired["compose"] = json!(
        "services:\n  app:\n    image: redis:7\n    healthcheck:\n      test: [CMD, wget, -q, 'http://localhost/health']\n"
    );
    coolify
        .create("service", "web", &desired, OWNER)
        .await
        .expect("created");
}

/// Coolify refuses shell metacharacters in a compose's service names and volumes before it
/// saves anything (`validateDockerComposeForInjection`): a 422 the provider reports as
/// permanent, with Coolify's reason (spec validation refuses such a template first).
#[tokio::test]
async fn a_compose_with_shell_metacharacters_is_refused_and_nothing_is_saved() {
    let fx = Fixture::start().await;
    let sim = &fx.sandbox.coolify;
    let mut coolify = fx.instance("coolify").await;
    let mut desired = service(json!({}));
    desired["compose"] = json!(
        "services:\n  app:\n    image: ghcr.io/acme/web:2\n    volumes: [{type: volume, source: data, target: '/srv/`id`'}]\n"
    );
    let refused = coolify
        .create("service", "web", &desired, OWNER)
        .await
        .expect_err("refused");
    assert!(
        matches!(&refused, ProviderError::Permanent(m) if m.contains("docker_compose_raw: Invalid Docker volume definition") && m.contains("backtick")),
        "{refused:?}"
    );
    assert!(sim.resources().is_empty());
}

//! The bundled Coolify component, through the wasmtime host, against the simulator.

use fabrik::plugins::types::{ProgressState, ProviderError};
use fabrik_sim::coolify::Kind;
use fabrik_sim::faults::Fault;
use serde_json::{Value, json};

use crate::provider_support::{Fixture, OWNER, assert_no_token, settle, text};

fn application(env: Value) -> Value {
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
        .lookup("server", "vps1", OWNER)
        .await
        .expect("lookup")
        .expect("found");
    assert_eq!(server.outputs["ip"], "127.0.0.1");
    assert!(
        coolify
            .lookup("server", "vps9", OWNER)
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

    let found = coolify
        .lookup("application", "test-api", OWNER)
        .await
        .expect("lookup")
        .expect("found");
    assert_eq!(found.id, created.id);
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
async fn a_deduplicated_deployment_is_followed_through_the_application() {
    let fx = Fixture::start().await;
    let mut coolify = fx.instance("coolify").await;
    let created = coolify
        .create("application", "test-api", &application(json!({})), OWNER)
        .await
        .expect("created");
    // Deploying again while the first is queued: Coolify answers with an id it never
    // stored; progress falls back to the application's latest deployment.
    coolify
        .update(
            "application",
            &created.id,
            &application(json!({ "A": "1" })),
        )
        .await
        .expect("updated");
    let deploys: Vec<_> = fx
        .sandbox
        .coolify
        .faults
        .calls()
        .into_iter()
        .filter(|c| c.operation == "coolify.deploy")
        .collect();
    assert_eq!(deploys.len(), 2);
    assert_eq!(
        settle(&mut coolify, "application", &created.id).await.0,
        ProgressState::Ready
    );
    assert!(
        fx.sandbox
            .coolify
            .faults
            .calls()
            .iter()
            .any(|c| c.operation == "coolify.list_app_deployments")
    );
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

    sim.faults.on_nth(
        "coolify.deploy",
        2,
        Fault::Status {
            status: 429,
            retry_after: Some(60),
        },
    );
    let mut desired = application(json!({}));
    desired["domains"] = json!(["https://b.example.com"]);
    match coolify
        .create("application", "b-api", &desired, OWNER)
        .await
    {
        Err(ProviderError::Transient { retry_after, .. }) => {
            assert_eq!(retry_after, Some(std::time::Duration::from_secs(60)))
        }
        other => panic!("expected transient, got {other:?}"),
    }
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
    let project = fabrik::project::Project::load(dir.path()).expect("project");
    let set = fabrik::plugins::ProviderSet::load(
        &project,
        &fabrik::plugins::cache::ComponentCache::at(&crate::support::cache_dir()),
    )
    .expect("load");
    let env = fabrik::secrets::EnvSource::load(dir.path()).expect("env");
    let mut coolify = set.instantiate("coolify", &env).await.expect("instance");
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
    let project = fabrik::project::Project::load(dir.path()).expect("project");
    let set = fabrik::plugins::ProviderSet::load(
        &project,
        &fabrik::plugins::cache::ComponentCache::at(&crate::support::cache_dir()),
    )
    .expect("load");
    let env = fabrik::secrets::EnvSource::load(dir.path()).expect("env");
    let error = set
        .instantiate("coolify", &env)
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

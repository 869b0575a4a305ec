//! The bundled Cloudflare component, through the wasmtime host, against the simulator.

use std::time::Duration;

use fabrik_engine::plugins::types::ProviderError;
use fabrik_sim::faults::Fault;
use fabrik_sim::{Sandbox, SandboxConfig};
use serde_json::json;

use crate::provider_support::{Fixture, OWNER, assert_no_token, text};

const KIND: &str = "dns-record";
const NAME: &str = "api.example.com";

#[tokio::test]
async fn create_lookup_update_delete() {
    let fx = Fixture::start().await;
    let mut dns = fx.instance("dns").await;
    let created = dns
        .create(KIND, NAME, &json!({ "content": "127.0.0.1" }), OWNER)
        .await
        .expect("created");
    assert_eq!(created.name, NAME);
    assert_eq!(created.owner.as_deref(), Some(OWNER));
    assert_eq!(
        created.live,
        json!({ "type": "A", "content": "127.0.0.1", "ttl": 1, "proxied": false })
    );
    let records = fx.sandbox.cloudflare.records();
    assert_eq!(records.len(), 1);
    assert_eq!(
        records[0]["comment"], OWNER,
        "the owner tag is in the comment"
    );
    assert_eq!(records[0]["proxied"], false, "proxied is always sent");

    let found = dns
        .lookup(KIND, NAME, OWNER, None)
        .await
        .expect("lookup")
        .expect("found");
    assert_eq!(found.id, created.id);
    assert_eq!(
        dns.read(KIND, &created.id)
            .await
            .expect("read")
            .expect("exists")
            .live,
        created.live
    );

    let updated = dns
        .update(
            KIND,
            &created.id,
            &json!({ "content": "127.0.0.2", "ttl": 300 }),
        )
        .await
        .expect("updated");
    assert_eq!(updated.id, created.id);
    assert_eq!(fx.sandbox.cloudflare.records()[0]["content"], "127.0.0.2");
    assert_eq!(fx.sandbox.cloudflare.records()[0]["ttl"], 300);

    dns.delete(KIND, &created.id, OWNER, false)
        .await
        .expect("deleted");
    assert!(fx.sandbox.cloudflare.records().is_empty());
    dns.delete(KIND, &created.id, OWNER, false)
        .await
        .expect("deleting what is gone succeeds");
    assert!(dns.read(KIND, &created.id).await.expect("read").is_none());
    assert!(
        dns.lookup(KIND, NAME, OWNER, None)
            .await
            .expect("lookup")
            .is_none()
    );
}

#[tokio::test]
async fn an_existing_record_is_adopted_only_when_it_is_ours() {
    let fx = Fixture::start().await;
    let mut dns = fx.instance("dns").await;
    let first = dns
        .create(KIND, NAME, &json!({ "content": "127.0.0.1" }), OWNER)
        .await
        .expect("created");
    // 81058 "identical record exists" → adopted, no duplicate.
    let again = dns
        .create(KIND, NAME, &json!({ "content": "127.0.0.1" }), OWNER)
        .await
        .expect("adopted");
    assert_eq!(again.id, first.id);
    assert_eq!(fx.sandbox.cloudflare.records().len(), 1);

    let foreign = fx.sandbox.cloudflare.insert_record(
        "www.example.com",
        "A",
        "10.1.2.3",
        "owned by someone else",
    );
    let error = dns
        .create(
            KIND,
            "www.example.com",
            &json!({ "content": "10.1.2.3" }),
            OWNER,
        )
        .await
        .expect_err("conflict");
    let ProviderError::Permanent(message) = &error else {
        panic!("{error:?}")
    };
    assert!(
        message.starts_with("conflict: A www.example.com -> 10.1.2.3 (id "),
        "{message}"
    );
    assert!(
        message.contains("is not owned by `fabrik:tests/test-api`"),
        "{message}"
    );

    let zone = first.id.split('/').next().expect("zone");
    let refused = dns
        .delete(KIND, &format!("{zone}/{foreign}"), OWNER, false)
        .await
        .expect_err("refused");
    assert!(
        text(&refused).contains("refusing to delete dns-record www.example.com"),
        "{refused}"
    );
    assert_eq!(
        fx.sandbox.cloudflare.records().len(),
        2,
        "the foreign record is still there"
    );
}

#[tokio::test]
async fn a_429_the_call_can_wait_for_is_sent_again_by_the_host() {
    let fx = Fixture::start().await;
    let cf = &fx.sandbox.cloudflare;
    let mut dns = fx.instance("dns").await;
    cf.faults.on_nth(
        "cloudflare.create_record",
        1,
        Fault::Status {
            status: 429,
            retry_after: Some(1),
        },
    );
    let started = std::time::Instant::now();
    let created = dns
        .create(KIND, NAME, &json!({ "content": "127.0.0.1" }), OWNER)
        .await
        .expect("created once the server's Retry-After passed");
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(created.owner.as_deref(), Some(OWNER));
    let creates = cf
        .faults
        .calls()
        .iter()
        .filter(|c| c.operation == "cloudflare.create_record")
        .count();
    assert_eq!(creates, 2, "refused once, sent again once");
    assert_eq!(cf.records().len(), 1);
}

#[tokio::test]
async fn faults_map_to_provider_errors() {
    let fx = Fixture::start().await;
    let cf = &fx.sandbox.cloudflare;
    let mut dns = fx.instance("dns").await;
    let desired = json!({ "content": "127.0.0.1" });

    cf.faults.on_nth(
        "cloudflare.create_record",
        1,
        Fault::Status {
            status: 502,
            retry_after: None,
        },
    );
    assert!(matches!(
        dns.create(KIND, NAME, &desired, OWNER).await,
        Err(ProviderError::Transient { .. })
    ));
    cf.faults
        .on_nth("cloudflare.create_record", 2, Fault::Malformed);
    let error = dns
        .create(KIND, NAME, &desired, OWNER)
        .await
        .expect_err("malformed");
    assert!(
        matches!(&error, ProviderError::Permanent(m) if m.contains("not the API's JSON envelope")),
        "{error:?}"
    );
    // The third call goes through: the faults did not break the provider.
    dns.create(KIND, NAME, &desired, OWNER)
        .await
        .expect("created");

    let error = dns
        .create(KIND, "api.example.org", &desired, OWNER)
        .await
        .expect_err("no zone");
    assert!(
        text(&error).contains("no Cloudflare zone for `api.example.org`"),
        "{error}"
    );
    let error = dns
        .create(KIND, "x.example.com", &json!({ "content": "nope" }), OWNER)
        .await
        .expect_err("invalid");
    assert!(text(&error).contains("needs an IPv4 address"), "{error}");

    // Last, as it closes the origin for ten minutes: a Retry-After longer than the call
    // may wait (half of what remains of its 150 s) reaches the provider, which reports
    // it; the engine waits outside the call.
    cf.faults.on_nth(
        "cloudflare.create_record",
        4,
        Fault::Status {
            status: 429,
            retry_after: Some(600),
        },
    );
    match dns.create(KIND, "late.example.com", &desired, OWNER).await {
        Err(ProviderError::Transient {
            retry_after,
            message,
        }) => {
            assert_eq!(retry_after, Some(Duration::from_secs(600)));
            assert!(message.contains("rate limited"), "{message}");
        }
        other => panic!("expected transient, got {other:?}"),
    }
    // Every request to the origin now waits: the next is held back by the host itself.
    match dns.lookup(KIND, "other.example.com", OWNER, None).await {
        Err(ProviderError::Transient { retry_after, .. }) => {
            assert!(retry_after.is_some_and(|d| d > Duration::from_secs(590)));
        }
        other => panic!("expected the host to hold the request back, got {other:?}"),
    }
}

#[tokio::test]
async fn a_wrong_token_is_unauthorized_with_a_hint_and_never_echoed() {
    let sandbox = Sandbox::start(SandboxConfig::default())
        .await
        .expect("sandbox");
    let fx = Fixture::for_sandbox(sandbox, None);
    // Point the provider at the simulator with a token it does not accept.
    let wrong = fabrik_sim::cloudflare::Cloudflare::new("another-token", &["example.com"]);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let router = wrong.router();
    tokio::spawn(async move { axum::serve(listener, router).await });
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("fabrik.toml"),
        format!("[providers.dns]\nconfig = {{ base-url = \"http://{addr}/client/v4\" }}\n"),
    )
    .expect("toml");
    std::fs::write(
        dir.path().join(".env"),
        format!(
            "CLOUDFLARE_API_TOKEN='{}'\n",
            fx.sandbox.config.cloudflare_token
        ),
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
    let mut dns = set
        .instantiate(fabrik_engine::domain::Role::Dns, &env)
        .await
        .expect("instance");
    let error = dns
        .create(KIND, NAME, &json!({ "content": "127.0.0.1" }), OWNER)
        .await
        .expect_err("unauthorized");
    let ProviderError::Unauthorized(message) = &error else {
        panic!("{error:?}")
    };
    assert!(message.contains("9109 Invalid access token"), "{message}");
    assert!(message.contains("Zone:Read and DNS:Edit"), "{message}");
    assert_no_token(&fx.sandbox, &text(&error));
}

/// Issue 27: a request that hangs ends before its call's deadline (1 s here), so the
/// provider says which API did not answer, `transient`, instead of being abandoned.
#[tokio::test]
async fn a_hanging_api_times_out_within_the_call() {
    let sandbox = Sandbox::start(SandboxConfig::default())
        .await
        .expect("sandbox");
    let fx = Fixture::for_sandbox(sandbox, Some(Duration::from_secs(1)));
    fx.sandbox
        .cloudflare
        .faults
        .always("cloudflare.list_zones", Fault::Hang);
    let mut dns = fx.instance("dns").await;
    let started = std::time::Instant::now();
    let error = dns
        .create(KIND, NAME, &json!({ "content": "127.0.0.1" }), OWNER)
        .await
        .expect_err("hang");
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
    assert!(
        matches!(error, ProviderError::Transient { .. })
            && text(&error).contains("Cloudflare did not answer in time"),
        "{error:?}"
    );
    fx.sandbox.cloudflare.faults.clear();
    assert!(
        dns.describe().await.is_ok(),
        "the host serves the next call"
    );
}

#[tokio::test]
async fn the_zone_is_looked_up_once_per_instance() {
    let fx = Fixture::start().await;
    let mut dns = fx.instance("dns").await;
    let created = dns
        .create(KIND, NAME, &json!({ "content": "127.0.0.1" }), OWNER)
        .await
        .expect("created");
    dns.lookup(KIND, NAME, OWNER, None).await.expect("lookup");
    dns.update(KIND, &created.id, &json!({ "content": "127.0.0.2" }))
        .await
        .expect("updated");
    dns.lookup(KIND, NAME, OWNER, None).await.expect("lookup");
    let zone_calls = fx
        .sandbox
        .cloudflare
        .faults
        .calls()
        .into_iter()
        .filter(|c| c.operation == "cloudflare.list_zones")
        .count();
    // `api.example.com` (not a zone), then `example.com`: once, not per call.
    assert_eq!(zone_calls, 2);
}

#[tokio::test]
async fn an_address_record_where_a_cname_is_is_a_conflict_named_as_such() {
    let fx = Fixture::start().await;
    fx.sandbox
        .cloudflare
        .insert_record(NAME, "CNAME", "elsewhere.example.net", "someone else's");
    let mut dns = fx.instance("dns").await;
    let error = dns
        .create(KIND, NAME, &json!({ "content": "127.0.0.1" }), OWNER)
        .await
        .expect_err("conflict");
    let message = text(&error);
    assert!(
        message.contains("already exists and is not owned") && message.contains("CNAME"),
        "{message}"
    );
}

#[tokio::test]
async fn a_comment_longer_than_the_plan_allows_is_refused() {
    let fx = Fixture::start().await;
    let mut dns = fx.instance("dns").await;
    let long = format!("fabrik:{}/api", "p".repeat(100));
    let error = dns
        .create(KIND, NAME, &json!({ "content": "127.0.0.1" }), &long)
        .await
        .expect_err("Free zones cap comments at 100 characters");
    assert!(text(&error).contains("100 characters"), "{error}");
    fx.sandbox
        .cloudflare
        .set_plan("example.com", fabrik_sim::cloudflare::rules::Plan::Paid);
    dns.create(KIND, NAME, &json!({ "content": "127.0.0.1" }), &long)
        .await
        .expect("paid plans allow 500");
}

/// A zone Cloudflare does not serve (`pending`: its nameservers are not Cloudflare's yet;
/// `moved`: they went elsewhere) would hold a record that never resolves: the apply stops
/// at the lookup, before anything changes, and says what to do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zone_cloudflare_does_not_serve_stops_the_apply_before_any_change() {
    let world = crate::deploy::World::start().await;
    let spec = world.spec("app.yaml", |s| s);
    for (status, words) in [("pending", "is pending"), ("moved", "is moved")] {
        world
            .sandbox
            .cloudflare
            .set_zone_status("example.com", status);
        let before = world.mutating_calls();
        let output = world.apply(&spec, &[]).await;
        let (stdout, stderr) = crate::deploy::text(&output);
        assert_eq!(output.status.code(), Some(1), "{stdout}{stderr}");
        assert!(
            stdout.contains(&format!("the Cloudflare zone example.com {words}"))
                && stdout.contains("nothing was changed"),
            "{stdout}{stderr}"
        );
        assert_eq!(world.mutating_calls(), before, "{stdout}");
    }
    world
        .sandbox
        .cloudflare
        .set_zone_status("example.com", "active");
    let applied = world.apply(&spec, &[]).await;
    assert_eq!(
        applied.status.code(),
        Some(0),
        "{:?}",
        crate::deploy::text(&applied)
    );
}

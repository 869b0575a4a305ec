//! The documents of each kind (`docs/schemas/`, the contract authors write against) hold
//! for what the host sends and for what the bundled providers return.

use std::collections::BTreeMap;

use fabrik_engine::orchestrator::desired;
use fabrik_engine::plugins::types::Resource;
use fabrik_engine::spec::template::TemplateRegistry;
use serde_json::{Value, json};

use crate::provider_support::{Fixture, OWNER, settle};
use crate::support::root;

fn check(schema: &str, document: &Value) {
    let problems = schema_problems(&format!("{schema}.json"), document);
    assert!(problems.is_empty(), "{schema}: {problems:?} in {document}");
}

/// What the schema `docs/schemas/RELATIVE` finds wrong with `document` (formats checked).
pub fn schema_problems(relative: &str, document: &Value) -> Vec<String> {
    let path = root().join("docs/schemas").join(relative);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let schema_doc: Value = serde_json::from_str(&text).expect("a schema is JSON");
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .build(&schema_doc)
        .unwrap_or_else(|e| panic!("{relative} is not a valid JSON Schema: {e}"));
    validator
        .iter_errors(document)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

fn check_resource(resource: &Resource) {
    check(&format!("{}.live", resource.kind), &resource.live);
    check(&format!("{}.outputs", resource.kind), &resource.outputs);
}

#[test]
fn what_the_host_sends_is_what_the_guide_documents() {
    let dir = tempfile::tempdir().expect("tempdir");
    let templates = TemplateRegistry::load(dir.path()).expect("templates");
    let fixture = std::fs::read_to_string(root().join("fixtures/test-api.yaml")).expect("fixture");
    let secrets: BTreeMap<String, String> = [("DATABASE_URL", "postgres://x"), ("API_KEY", "k")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let mut kinds = Vec::new();
    for (file, text) in [
        ("service.yaml", fixture.clone()),
        (
            "application.yaml",
            fixture.replace("template: python-api", "template: docker-image"),
        ),
    ] {
        let path = dir.path().join(file);
        std::fs::write(&path, &text).expect("spec");
        let loaded = fabrik_engine::spec::load(&path, &templates).expect("a valid spec");
        let resource = desired::coolify_resource(&loaded, &secrets).expect("a resource");
        check(&format!("{}.desired", resource.kind), &resource.desired);
        kinds.push(resource.kind);
        for ip in ["203.0.113.7", "2001:db8::7"] {
            let record = desired::dns_record(&loaded, ip);
            check("dns-record.desired", &record.desired);
        }
    }
    assert_eq!(kinds, ["service", "application"]);
}

#[tokio::test]
async fn what_the_bundled_providers_return_is_what_the_guide_documents() {
    let fx = Fixture::start().await;
    let mut coolify = fx.instance("coolify").await;
    let server = coolify
        .lookup("server", "vps1", OWNER, None)
        .await
        .expect("lookup")
        .expect("found");
    check_resource(&server);
    check_resource(
        &coolify
            .read("server", &server.id)
            .await
            .expect("read")
            .expect("found"),
    );

    let application = crate::provider_coolify::application(json!({ "LOG_LEVEL": "info" }));
    check("application.desired", &application);
    let created = coolify
        .create("application", "test-api", &application, OWNER)
        .await
        .expect("created");
    check_resource(&created);
    settle(&mut coolify, "application", &created.id).await;
    check_resource(
        &coolify
            .read("application", &created.id)
            .await
            .expect("read")
            .expect("found"),
    );

    let service = json!({
        "project": "fabrik-tests", "environment": "production", "server": "vps1",
        "compose": "services:\n  app:\n    image: ghcr.io/acme/web:2\n", "service": "app",
        "domains": ["https://web.example.com"], "env": {},
    });
    check("service.desired", &service);
    let created = coolify
        .create("service", "web", &service, OWNER)
        .await
        .expect("created");
    check_resource(&created);
    let listed = coolify
        .list("service", "fabrik:", None)
        .await
        .expect("list")
        .expect("contract 0.2");
    listed.resources.iter().for_each(check_resource);

    let mut dns = fx.instance("dns").await;
    let record = json!({ "type": "A", "content": "203.0.113.7", "ttl": 1, "proxied": false });
    check("dns-record.desired", &record);
    let created = dns
        .create("dns-record", "api.example.com", &record, OWNER)
        .await
        .expect("created");
    check_resource(&created);
    check_resource(
        &dns.read("dns-record", &created.id)
            .await
            .expect("read")
            .expect("found"),
    );
}

/// The schemas are strict enough to catch a mistake an author would make.
#[test]
fn the_schemas_refuse_what_they_do_not_describe() {
    for (schema, wrong) in [
        (
            "dns-record.desired",
            json!({ "type": "MX", "content": "x" }),
        ),
        (
            "dns-record.desired",
            json!({ "content": "203.0.113.7", "ttl": 30 }),
        ),
        (
            "dns-record.desired",
            json!({ "content": "203.0.113.7", "comment": "x" }),
        ),
        (
            "server.outputs",
            json!({ "uuid": "u", "ip": "not an address" }),
        ),
        ("application.outputs", json!({ "id": "u" })),
        (
            "service.desired",
            json!({ "project": "p", "environment": "e", "server": "s" }),
        ),
    ] {
        let refused = std::panic::catch_unwind(|| check(schema, &wrong));
        assert!(refused.is_err(), "{schema} accepted {wrong}");
    }
}

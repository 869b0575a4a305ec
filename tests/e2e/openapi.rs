//! The simulators' responses conform to the real OpenAPI documents (vendored in
//! `tests/sim/api`, copied from `shared/api`), so they cannot drift from the APIs.

use std::path::Path;

use fabrik_sim::faults::Fault;
use fabrik_sim::{Sandbox, SandboxConfig};
use serde_json::{Value, json};

use crate::support::root;

fn api_dir() -> std::path::PathBuf {
    root().join("tests/sim/api")
}

fn load(name: &str) -> Value {
    let path = api_dir().join(name);
    let text = std::fs::read_to_string(&path).expect("OpenAPI document");
    let mut doc: Value = if name.ends_with(".json") {
        serde_json::from_str(&text).expect("json")
    } else {
        serde_yaml::from_str(&text).expect("yaml")
    };
    openapi_to_json_schema(&mut doc);
    correct_known_mismatches(&mut doc);
    doc
}

/// OpenAPI's `nullable: true` is not JSON Schema: turn it into a `null` type.
fn openapi_to_json_schema(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if map.get("nullable") == Some(&Value::Bool(true)) {
                match map.get("type").cloned() {
                    Some(Value::String(t)) => {
                        map.insert("type".to_owned(), json!([t, "null"]));
                    }
                    None => {}
                    Some(_) => {}
                }
                if let Some(Value::Array(options)) = map.get_mut("enum")
                    && !options.contains(&Value::Null)
                {
                    options.push(Value::Null);
                }
            }
            for child in map.values_mut() {
                openapi_to_json_schema(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(openapi_to_json_schema),
        _ => {}
    }
}

/// A JSON-pointer segment.
fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// Corrections for places where a document contradicts the real API, each one
/// documented in `shared/api/*.md`. The simulators follow the real API.
fn correct_known_mismatches(doc: &mut Value) {
    // COOLIFY.md §3: `POST /applications/dockerimage` sets `build_pack` to `dockerimage`,
    // which the Application schema's enum omits.
    if let Some(options) = doc
        .pointer_mut("/components/schemas/Application/properties/build_pack/enum")
        .and_then(Value::as_array_mut)
    {
        options.push(json!("dockerimage"));
    }
    // CLOUDFLARE.md §5: rate-limited calls carry error code 971, below the documented
    // minimum of 1000 for message codes.
    for messages in ["dns-records_messages", "zones_messages"] {
        if let Some(code) = doc
            .pointer_mut(&format!(
                "/components/schemas/{messages}/items/properties/code"
            ))
            .and_then(Value::as_object_mut)
        {
            code.remove("minimum");
        }
    }
    // COOLIFY.md §1: `errors` in a 422 is not uniform (`{field: [msg]}`, `{field: msg}` or
    // a list); the document only allows the first shape.
    if let Some(errors) = doc
        .pointer_mut("/components/responses/422/content/application~1json/schema/properties/errors")
    {
        *errors = json!({ "type": ["object", "array"] });
    }
}

/// The JSON pointer of the response schema for `method template` answering `status`.
fn schema_pointer(doc: &Value, template: &str, method: &str, status: u16) -> String {
    // Cloudflare's DNS operations declare their `4xx` body as `allOf` the success
    // response and the failure envelope (`success: true` and `false` at once), which no
    // body satisfies; the failure envelope is what the API sends (CLOUDFLARE.md §2).
    if status >= 400 && template.contains("dns_records") {
        return "/components/schemas/dns-records_api-response-common-failure".to_owned();
    }
    let responses = &doc["paths"][template][method]["responses"];
    let exact = status.to_string();
    let range = format!("{}xx", status / 100);
    let key = [exact.clone(), range.clone(), range.to_uppercase()]
        .into_iter()
        .find(|k| !responses[k.as_str()].is_null())
        .unwrap_or_else(|| panic!("{method} {template} documents no {status} response"));
    let mut pointer = format!(
        "/paths/{}/{method}/responses/{}",
        escape(template),
        escape(&key)
    );
    if let Some(reference) = responses[key.as_str()]["$ref"].as_str() {
        pointer = reference.trim_start_matches('#').to_owned();
    }
    format!("{pointer}/content/application~1json/schema")
}

fn check(doc: &Value, uri: &str, pointer: &str, what: &str, body: &Value) {
    let resolved = doc
        .pointer(pointer)
        .unwrap_or_else(|| panic!("{what}: no schema at {pointer}"));
    assert!(!resolved.is_null());
    let validator = jsonschema::options()
        .with_resource(uri, jsonschema::Resource::from_contents(doc.clone()))
        .build(&json!({ "$ref": format!("{uri}#{}", pointer.replace('{', "%7B").replace('}', "%7D")) }))
        .unwrap_or_else(|e| panic!("{what}: cannot build a validator: {e}"));
    let errors: Vec<String> = validator
        .iter_errors(body)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{what} does not conform to the OpenAPI document:\n{}\nbody: {body}",
        errors.join("\n")
    );
}

/// One simulated API, its document, and a token.
struct Api {
    doc: Value,
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Api {
    fn new(doc: &Value, base: &str, token: &str) -> Self {
        Self {
            doc: doc.clone(),
            base: base.to_owned(),
            token: token.to_owned(),
            http: reqwest::Client::new(),
        }
    }

    async fn send(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .header("accept", "application/json");
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let response = request.send().await.expect("simulator answers");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// Sends a request and validates the answer against `method template` in the document.
    async fn exchange(
        &self,
        method: &str,
        template: &str,
        path: &str,
        body: Option<Value>,
        expect: u16,
    ) -> Value {
        let (status, answer) = self.send(method, path, body).await;
        let what = format!("{} {path} -> {status}", method.to_uppercase());
        assert_eq!(status, expect, "{what}: {answer}");
        let pointer = schema_pointer(&self.doc, template, method, status);
        check(&self.doc, "urn:fabrik:openapi", &pointer, &what, &answer);
        answer
    }
}

#[tokio::test]
async fn cloudflare_simulator_answers_as_documented() {
    let doc = load("cloudflare-dns-openapi.json");
    let sandbox = Sandbox::start(SandboxConfig::default())
        .await
        .expect("sandbox");
    let api = Api::new(
        &doc,
        &sandbox.cloudflare_url,
        &sandbox.config.cloudflare_token,
    );
    let zones = api
        .exchange("get", "/zones", "/zones?name=example.com", None, 200)
        .await;
    let zone = zones["result"][0]["id"]
        .as_str()
        .expect("zone id")
        .to_owned();
    api.exchange(
        "get",
        "/zones/{zone_id}",
        &format!("/zones/{zone}"),
        None,
        200,
    )
    .await;
    let record = json!({ "type": "A", "name": "api.example.com", "content": "127.0.0.1", "ttl": 1, "proxied": false, "comment": "fabrik:p/a" });
    let list = format!("/zones/{zone}/dns_records");
    let created = api
        .exchange(
            "post",
            "/zones/{zone_id}/dns_records",
            &list,
            Some(record.clone()),
            200,
        )
        .await;
    let id = created["result"]["id"]
        .as_str()
        .expect("record id")
        .to_owned();
    let one = "/zones/{zone_id}/dns_records/{dns_record_id}";
    let path = format!("/zones/{zone}/dns_records/{id}");
    api.exchange(
        "get",
        "/zones/{zone_id}/dns_records",
        &format!("{list}?name=api.example.com&type=A"),
        None,
        200,
    )
    .await;
    api.exchange("get", one, &path, None, 200).await;
    api.exchange(
        "patch",
        one,
        &path,
        Some(json!({ "content": "127.0.0.2" })),
        200,
    )
    .await;
    api.exchange("put", one, &path, Some(record.clone()), 200)
        .await;
    api.exchange(
        "post",
        "/zones/{zone_id}/dns_records",
        &list,
        Some(record),
        400,
    )
    .await;
    api.exchange(
        "get",
        "/user/tokens/verify",
        "/user/tokens/verify",
        None,
        200,
    )
    .await;
    api.exchange("delete", one, &path, None, 200).await;
    api.exchange("get", one, &path, None, 404).await;
    sandbox.cloudflare.faults.on_nth(
        "cloudflare.list_zones",
        2,
        Fault::Status {
            status: 429,
            retry_after: Some(1),
        },
    );
    api.exchange("get", "/zones", "/zones?name=example.com", None, 429)
        .await;
    let wrong = Api::new(&doc, &sandbox.cloudflare_url, "wrong");
    wrong.exchange("get", "/zones", "/zones", None, 403).await;
}

#[tokio::test]
async fn coolify_simulator_answers_as_documented() {
    let doc = load("coolify-openapi.yaml");
    let sandbox = Sandbox::start(SandboxConfig::default())
        .await
        .expect("sandbox");
    let api = Api::new(&doc, &sandbox.coolify_url, &sandbox.config.coolify_token);
    let servers = api.exchange("get", "/servers", "/servers", None, 200).await;
    let server = servers[0]["uuid"].as_str().expect("server").to_owned();
    let project = api
        .exchange(
            "post",
            "/projects",
            "/projects",
            Some(json!({ "name": "project-p" })),
            201,
        )
        .await["uuid"]
        .as_str()
        .expect("uuid")
        .to_owned();
    api.exchange("get", "/projects", "/projects", None, 200)
        .await;
    api.exchange(
        "get",
        "/projects/{uuid}",
        &format!("/projects/{project}"),
        None,
        200,
    )
    .await;
    let environments = format!("/projects/{project}/environments");
    api.exchange(
        "post",
        "/projects/{uuid}/environments",
        &environments,
        Some(json!({ "name": "staging" })),
        201,
    )
    .await;
    api.exchange(
        "get",
        "/projects/{uuid}/environments",
        &environments,
        None,
        200,
    )
    .await;
    let app = json!({
        "project_uuid": project, "server_uuid": server, "environment_name": "production", "name": "a", "description": "fabrik:p/a",
        "docker_registry_image_name": "ghcr.io/acme/a:1", "ports_exposes": "8000", "domains": "https://a.example.com", "instant_deploy": false,
    });
    let create = "/applications/dockerimage";
    let app_uuid = api.exchange("post", create, create, Some(app), 201).await["uuid"]
        .as_str()
        .expect("uuid")
        .to_owned();
    let clash = json!({ "project_uuid": project, "server_uuid": server, "environment_name": "production", "name": "b", "docker_registry_image_name": "x", "domains": "https://a.example.com" });
    api.exchange("post", create, create, Some(clash), 409).await;
    api.exchange(
        "get",
        "/projects/{uuid}/{environment_name_or_uuid}",
        &format!("/projects/{project}/production"),
        None,
        200,
    )
    .await;
    let app_path = format!("/applications/{app_uuid}");
    api.exchange("get", "/applications/{uuid}", &app_path, None, 200)
        .await;
    api.exchange(
        "patch",
        "/applications/{uuid}",
        &app_path,
        Some(json!({ "docker_registry_image_name": "ghcr.io/acme/a", "docker_registry_image_tag": "2" })),
        200,
    )
    .await;
    // [spec≠code] PATCH has no tag in the name (dockerImageNameRules()): Coolify answers
    // a 422 the document does not list.
    let (status, refused) = api
        .send(
            "patch",
            &app_path,
            Some(json!({ "docker_registry_image_name": "ghcr.io/acme/a:2" })),
        )
        .await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(
        refused["errors"]["docker_registry_image_name"][0],
        "The docker registry image name field format is invalid."
    );
    let item = json!({ "key": "A", "value": "1", "is_preview": false, "is_literal": true, "is_multiline": false, "is_shown_once": false, "is_runtime": true, "is_buildtime": false });
    let envs = api
        .exchange(
            "patch",
            "/applications/{uuid}/envs/bulk",
            &format!("{app_path}/envs/bulk"),
            Some(json!({ "data": [item] })),
            201,
        )
        .await;
    api.exchange(
        "get",
        "/applications/{uuid}/envs",
        &format!("{app_path}/envs"),
        None,
        200,
    )
    .await;
    let env_uuid = envs[0]["uuid"].as_str().expect("env uuid").to_owned();
    api.exchange(
        "delete",
        "/applications/{uuid}/envs/{env_uuid}",
        &format!("{app_path}/envs/{env_uuid}"),
        None,
        200,
    )
    .await;
    let deployed = api
        .exchange(
            "post",
            "/deploy",
            "/deploy",
            Some(json!({ "uuid": app_uuid, "force": false })),
            200,
        )
        .await;
    let deployment = deployed["deployments"][0]["deployment_uuid"]
        .as_str()
        .expect("deployment uuid")
        .to_owned();
    api.exchange(
        "get",
        "/deployments/{uuid}",
        &format!("/deployments/{deployment}"),
        None,
        200,
    )
    .await;
    // [spec≠code]: the document says Application[]; Coolify returns {count, deployments}
    // (COOLIFY.md §6). Each deployment is checked against ApplicationDeploymentQueue.
    let (status, listed) = api
        .send(
            "get",
            &format!("/deployments/applications/{app_uuid}?take=1"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(listed["count"], 1);
    check(
        &doc,
        "urn:fabrik:openapi",
        "/components/schemas/ApplicationDeploymentQueue",
        "a listed deployment",
        &listed["deployments"][0],
    );

    let compose = base64_encode("services:\n  app:\n    image: nginx:1\n");
    let service = json!({ "project_uuid": project, "server_uuid": server, "environment_name": "staging", "name": "s", "description": "fabrik:p/s", "docker_compose_raw": compose, "urls": [{ "name": "app", "url": "https://s.example.com" }], "instant_deploy": false });
    let service_uuid = api
        .exchange("post", "/services", "/services", Some(service), 201)
        .await["uuid"]
        .as_str()
        .expect("uuid")
        .to_owned();
    let service_path = format!("/services/{service_uuid}");
    api.exchange("get", "/services/{uuid}", &service_path, None, 200)
        .await;
    api.exchange(
        "patch",
        "/services/{uuid}",
        &service_path,
        Some(json!({ "description": "x" })),
        200,
    )
    .await;
    api.exchange(
        "get",
        "/services/{uuid}/envs",
        &format!("{service_path}/envs"),
        None,
        200,
    )
    .await;
    let raw = json!({ "project_uuid": project, "server_uuid": server, "environment_name": "staging", "docker_compose_raw": "services: {}" });
    api.exchange("post", "/services", "/services", Some(raw), 422)
        .await;
    api.exchange(
        "post",
        "/projects",
        "/projects",
        Some(json!({ "name": "q", "color": "red" })),
        422,
    )
    .await;
    api.exchange(
        "get",
        "/applications/{uuid}",
        "/applications/nope",
        None,
        404,
    )
    .await;
    api.exchange("delete", "/services/{uuid}", &service_path, None, 200)
        .await;
    api.exchange(
        "delete",
        "/applications/{uuid}",
        &format!("{app_path}?delete_volumes=false"),
        None,
        200,
    )
    .await;
    Api::new(&doc, &sandbox.coolify_url, "1|wrong")
        .exchange("get", "/servers", "/servers", None, 401)
        .await;
    // Version is plain text.
    assert_eq!(
        api.send("get", "/version", None).await,
        (200, Value::String("4.3.11".into()))
    );
}

fn base64_encode(text: &str) -> String {
    use std::fmt::Write;
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = text.as_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= chunk.len() {
                let _ = out.write_char(TABLE[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The vendored documents are the shared ones, byte for byte.
#[test]
fn vendored_documents_match_the_shared_ones() {
    let shared = root().join("../shared/api");
    assert!(
        shared.is_dir(),
        "NOT RUN: the team's shared folder is not beside this repository ({}); clone it as `../shared`",
        shared.display()
    );
    for name in ["coolify-openapi.yaml", "cloudflare-dns-openapi.json"] {
        let vendored = std::fs::read(api_dir().join(name)).expect("vendored");
        let original = std::fs::read(Path::new(&shared).join(name)).expect("shared");
        assert!(
            vendored == original,
            "tests/sim/api/{name} differs from shared/api/{name}"
        );
    }
}

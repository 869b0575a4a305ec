//! A Coolify v4 REST API simulator (`/api/v1`), following `shared/api/coolify-openapi.yaml`
//! and the behaviour `shared/api/COOLIFY.md` documents: bearer auth, strict allow-lists
//! (422 "This field is not allowed."), base64 `docker_compose_raw`, env bulk upsert by key,
//! `POST /deploy` (GET is 405), the deployment lifecycle queued → in_progress → finished |
//! failed with configurable timing, the dedupe quirk (a returned deployment id that 404s),
//! queued (asynchronous) deletes, and HTML error pages without `Accept: application/json`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post};
use base64::Engine as _;
use serde_json::{Value, json};

use crate::faults::{Fault, Faults};

/// How long simulated work takes.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub queued: Duration,
    pub building: Duration,
    pub service_start: Duration,
    pub delete_delay: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            queued: Duration::from_millis(100),
            building: Duration::from_millis(300),
            service_start: Duration::from_millis(300),
            delete_delay: Duration::from_millis(200),
        }
    }
}

/// Which kind of resource an env list or domain belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Application,
    Service,
}

#[derive(Debug, Clone)]
struct Resource {
    kind: Kind,
    id: u64,
    uuid: String,
    name: String,
    description: String,
    environment_id: u64,
    domains: Vec<String>,
    image: String,
    ports_exposes: String,
    compose: String,
    /// When the service was last started (services only).
    started: Option<Instant>,
    deleting: Option<Instant>,
}

#[derive(Debug, Clone)]
struct Deployment {
    id: u64,
    uuid: String,
    application_uuid: String,
    application_name: String,
    created: Instant,
    fails: bool,
    force: bool,
}

#[derive(Debug, Clone)]
struct Environment {
    id: u64,
    uuid: String,
    name: String,
}

#[derive(Debug, Clone)]
struct Project {
    id: u64,
    uuid: String,
    name: String,
    description: String,
    environments: Vec<Environment>,
}

/// One `delete` the simulator received, with its query flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deletion {
    pub uuid: String,
    pub delete_volumes: bool,
}

#[derive(Debug, Default)]
struct Store {
    next: u64,
    servers: Vec<Value>,
    projects: Vec<Project>,
    resources: BTreeMap<String, Resource>,
    envs: BTreeMap<String, Vec<Value>>,
    deployments: Vec<Deployment>,
    deletions: Vec<Deletion>,
    /// App names whose next deployment fails.
    fail_next: Vec<String>,
}

/// Shared state of one simulator.
#[derive(Clone)]
pub struct Coolify {
    token: Arc<str>,
    store: Arc<Mutex<Store>>,
    timing: Arc<Mutex<Timing>>,
    missing_accept: Arc<AtomicUsize>,
    pub faults: Faults,
}

const VERSION: &str = "4.3.11";
const TIMESTAMP: &str = "2026-11-23T00:00:00.000000Z";

fn message(status: StatusCode, text: &str) -> Response {
    (status, axum::Json(json!({ "message": text }))).into_response()
}

fn not_allowed(fields: &[String]) -> Response {
    let errors: serde_json::Map<String, Value> = fields
        .iter()
        .map(|f| (f.clone(), json!(["This field is not allowed."])))
        .collect();
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        axum::Json(json!({ "message": "Validation failed.", "errors": errors })),
    )
        .into_response()
}

fn invalid(field: &str, text: Value) -> Response {
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        axum::Json(json!({ "message": "Validation failed.", "errors": { field: text } })),
    )
        .into_response()
}

fn injected(fault: Fault) -> Response {
    match fault {
        Fault::Status {
            status,
            retry_after,
        } => {
            let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let text = match status {
                429 => "Too Many Attempts.",
                s if s >= 500 => "Server Error",
                _ => "Injected failure.",
            };
            let mut response = message(code, text);
            if let Some(seconds) = retry_after
                && let Ok(value) = seconds.to_string().parse()
            {
                response.headers_mut().insert("retry-after", value);
            }
            response
        }
        Fault::Malformed => (StatusCode::OK, "{\"uuid\": ").into_response(),
        // `Faults::enter` never returns these: hangs wait forever, lost answers are
        // replaced by the `lose_answers` middleware after the handler ran.
        Fault::Hang | Fault::LoseAnswer { .. } => StatusCode::GATEWAY_TIMEOUT.into_response(),
    }
}

/// Keys every application create variant accepts (one shared allow-list in Coolify).
const APPLICATION_CREATE_KEYS: &[&str] = &[
    "project_uuid",
    "server_uuid",
    "environment_name",
    "environment_uuid",
    "destination_uuid",
    "name",
    "description",
    "domains",
    "autogenerate_domain",
    "force_domain_override",
    "instant_deploy",
    "tags",
    "ports_exposes",
    "ports_mappings",
    "docker_registry_image_name",
    "docker_registry_image_tag",
    "git_repository",
    "git_branch",
    "git_commit_sha",
    "build_pack",
    "health_check_enabled",
    "health_check_path",
    "health_check_port",
    "health_check_host",
    "health_check_method",
    "health_check_return_code",
    "health_check_scheme",
    "health_check_response_text",
    "health_check_interval",
    "health_check_timeout",
    "health_check_retries",
    "health_check_start_period",
    "limits_memory",
    "limits_cpus",
    "custom_labels",
    "custom_docker_run_options",
    "redirect",
    "is_force_https_enabled",
    "is_auto_deploy_enabled",
];
const APPLICATION_UPDATE_FORBIDDEN: &[&str] = &[
    "project_uuid",
    "server_uuid",
    "environment_name",
    "environment_uuid",
    "destination_uuid",
];
const SERVICE_CREATE_KEYS: &[&str] = &[
    "project_uuid",
    "server_uuid",
    "environment_name",
    "environment_uuid",
    "destination_uuid",
    "name",
    "description",
    "docker_compose_raw",
    "type",
    "instant_deploy",
    "urls",
    "force_domain_override",
    "is_container_label_escape_enabled",
    "tags",
];
const SERVICE_UPDATE_KEYS: &[&str] = &[
    "name",
    "description",
    "docker_compose_raw",
    "urls",
    "force_domain_override",
    "instant_deploy",
    "connect_to_docker_network",
    "is_container_label_escape_enabled",
];
const ENV_ITEM_FLAGS: &[&str] = &[
    "is_preview",
    "is_literal",
    "is_multiline",
    "is_shown_once",
    "is_runtime",
    "is_buildtime",
];

impl Coolify {
    /// A simulator accepting `token`, with `servers` as `(name, ip)`.
    pub fn new(token: &str, servers: &[(&str, &str)]) -> Self {
        let mut store = Store::default();
        for (name, ip) in servers {
            store.next += 1;
            store.servers.push(json!({
                "id": store.next,
                "uuid": uuid(store.next),
                "name": name,
                "description": "",
                "ip": ip,
                "user": "root",
                "port": 22,
                "proxy_type": "traefik",
                "is_reachable": true,
                "is_usable": true,
                "settings": { "is_build_server": false, "is_reachable": true, "is_usable": true },
            }));
        }
        Self {
            token: Arc::from(token),
            store: Arc::new(Mutex::new(store)),
            timing: Arc::new(Mutex::new(Timing::default())),
            missing_accept: Arc::new(AtomicUsize::new(0)),
            faults: Faults::default(),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Store) -> T) -> T {
        let mut guard = match self.store.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut guard)
    }

    fn timing(&self) -> Timing {
        self.timing.lock().map(|t| *t).unwrap_or_default()
    }

    pub fn set_timing(&self, timing: Timing) {
        if let Ok(mut t) = self.timing.lock() {
            *t = timing;
        }
    }

    /// Makes the next deployment of the app named `name` fail.
    pub fn fail_next_deployment(&self, name: &str) {
        self.with(|s| s.fail_next.push(name.to_owned()));
    }

    /// Calls that came without `Accept: application/json`.
    pub fn missing_accept(&self) -> usize {
        self.missing_accept.load(Ordering::Relaxed)
    }

    /// Every delete received.
    pub fn deletions(&self) -> Vec<Deletion> {
        self.with(|s| s.deletions.clone())
    }

    /// Live (not deleted) resources: `(kind, uuid, name, description)`.
    pub fn resources(&self) -> Vec<(Kind, String, String, String)> {
        let now = Instant::now();
        let delay = self.timing().delete_delay;
        self.with(|s| {
            s.resources
                .values()
                .filter(|r| r.deleting.is_none_or(|d| now < d + delay))
                .map(|r| {
                    (
                        r.kind,
                        r.uuid.clone(),
                        r.name.clone(),
                        r.description.clone(),
                    )
                })
                .collect()
        })
    }

    /// Environment variables of a resource, as `(key, value)`.
    pub fn env_of(&self, uuid: &str) -> Vec<(String, String)> {
        self.with(|s| {
            s.envs
                .get(uuid)
                .map(|list| {
                    list.iter()
                        .map(|e| {
                            (
                                e["key"].as_str().unwrap_or_default().to_owned(),
                                e["value"].as_str().unwrap_or_default().to_owned(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default()
        })
    }

    /// Whether the app or service serving `domain` has a finished deployment (or a
    /// started service), so the deployed-app endpoint can serve it.
    pub fn is_serving(&self, domain: &str) -> bool {
        let now = Instant::now();
        let timing = self.timing();
        self.with(|s| {
            s.resources.values().any(|r| {
                r.deleting.is_none()
                    && r.domains.iter().any(|d| {
                        d.trim_end_matches('/')
                            .strip_prefix("https://")
                            .or(d.strip_prefix("http://"))
                            == Some(domain)
                    })
                    && match r.kind {
                        Kind::Service => r.started.is_some_and(|t| now >= t + timing.service_start),
                        Kind::Application => s
                            .deployments
                            .iter()
                            .rev()
                            .find(|d| d.application_uuid == r.uuid)
                            .is_some_and(|d| deployment_status(d, &timing, now) == "finished"),
                    }
            })
        })
    }

    /// The axum router, mounted at `/api/v1`.
    pub fn router(&self) -> Router {
        let api = Router::new()
            .route("/version", get(version))
            .route("/health", get(health))
            .route("/servers", get(list_servers))
            .route("/projects", get(list_projects).post(create_project))
            .route("/projects/{uuid}", get(get_project))
            .route(
                "/projects/{uuid}/environments",
                get(list_environments).post(create_environment),
            )
            .route("/projects/{uuid}/{environment}", get(get_environment))
            .route("/applications/dockerimage", post(create_application))
            .route(
                "/applications/{uuid}",
                get(get_application)
                    .patch(update_application)
                    .delete(delete_resource),
            )
            .route("/applications/{uuid}/envs", get(list_envs))
            .route("/applications/{uuid}/envs/bulk", patch(bulk_envs))
            .route("/applications/{uuid}/envs/{env}", delete(delete_env))
            .route("/services", post(create_service))
            .route(
                "/services/{uuid}",
                get(get_service)
                    .patch(update_service)
                    .delete(delete_resource),
            )
            .route("/services/{uuid}/envs", get(list_envs))
            .route("/services/{uuid}/envs/bulk", patch(bulk_envs))
            .route("/services/{uuid}/envs/{env}", delete(delete_env))
            .route("/deploy", post(deploy).get(deploy_get))
            .route("/deployments/{uuid}", get(get_deployment))
            .route(
                "/deployments/applications/{uuid}",
                get(list_app_deployments),
            )
            .with_state(self.clone());
        Router::new()
            .nest("/api/v1", api)
            .layer(axum::middleware::from_fn(crate::faults::lose_answers))
    }

    /// Fault injection and authentication; `Err` is the response to send instead.
    async fn enter(
        &self,
        operation: &str,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
    ) -> Result<(), Response> {
        let accepts_json = headers
            .get("accept")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("application/json"));
        if !accepts_json {
            self.missing_accept.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(fault) = self
            .faults
            .enter(&format!("coolify.{operation}"), method.as_str(), uri.path())
            .await
        {
            return Err(injected(fault));
        }
        let token = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if token != Some(&*self.token) {
            return Err(if accepts_json {
                message(StatusCode::UNAUTHORIZED, "Unauthenticated.")
            } else {
                // Laravel redirects unauthenticated browsers to a login page.
                (StatusCode::FOUND, [("location", "/login")], "").into_response()
            });
        }
        Ok(())
    }
}

fn uuid(n: u64) -> String {
    // Coolify's ids are 24-character lowercase alphanumerics (cuid2-like).
    let alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut x = n.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x5bd1_e995;
    (0..24)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            alphabet[(x % 36) as usize] as char
        })
        .collect()
}

fn deployment_status(d: &Deployment, timing: &Timing, now: Instant) -> &'static str {
    let age = now.saturating_duration_since(d.created);
    if age < timing.queued {
        "queued"
    } else if age < timing.queued + timing.building {
        "in_progress"
    } else if d.fails {
        "failed"
    } else {
        "finished"
    }
}

/// Checks Content-Type and parses a JSON object body as Coolify's
/// `validateIncomingRequest` does.
fn json_body(
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<serde_json::Map<String, Value>, Response> {
    let json_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let invalid_request = |error: &str| {
        (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({ "message": "Invalid request.", "error": error })),
        )
            .into_response()
    };
    if !json_type {
        return Err(invalid_request("Content-Type must be application/json."));
    }
    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) else {
        return Err(invalid_request("Invalid JSON."));
    };
    if map.is_empty() {
        return Err(invalid_request("Empty JSON."));
    }
    Ok(map)
}

fn unknown_keys(body: &serde_json::Map<String, Value>, allowed: &[&str]) -> Vec<String> {
    body.keys()
        .filter(|k| !allowed.contains(&k.as_str()))
        .cloned()
        .collect()
}

fn str_field(body: &serde_json::Map<String, Value>, key: &str) -> String {
    body.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

async fn version(
    State(sim): State<Coolify>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = sim.enter("version", &method, &uri, &headers).await {
        return r;
    }
    (
        StatusCode::OK,
        [("content-type", "text/html; charset=UTF-8")],
        VERSION,
    )
        .into_response()
}

async fn health() -> Response {
    (StatusCode::OK, "OK").into_response()
}

async fn list_servers(
    State(sim): State<Coolify>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = sim.enter("list_servers", &method, &uri, &headers).await {
        return r;
    }
    axum::Json(Value::Array(sim.with(|s| s.servers.clone()))).into_response()
}

fn project_json(p: &Project) -> Value {
    json!({ "id": p.id, "uuid": p.uuid, "name": p.name, "description": p.description })
}

fn environment_json(e: &Environment, project: &Project) -> Value {
    json!({ "id": e.id, "uuid": e.uuid, "name": e.name, "project_id": project.id, "created_at": TIMESTAMP, "updated_at": TIMESTAMP, "description": "" })
}

async fn list_projects(
    State(sim): State<Coolify>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = sim.enter("list_projects", &method, &uri, &headers).await {
        return r;
    }
    axum::Json(Value::Array(
        sim.with(|s| s.projects.iter().map(project_json).collect()),
    ))
    .into_response()
}

async fn create_project(
    State(sim): State<Coolify>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(r) = sim.enter("create_project", &method, &uri, &headers).await {
        return r;
    }
    let body = match json_body(&headers, &body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let unknown = unknown_keys(&body, &["name", "description"]);
    if !unknown.is_empty() {
        return not_allowed(&unknown);
    }
    let name = str_field(&body, "name");
    if name.is_empty() {
        return invalid("name", json!(["The name field is required."]));
    }
    sim.with(|s| {
        s.next += 1;
        let id = s.next;
        s.next += 1;
        // Coolify creates a `production` environment with every project.
        let production = Environment {
            id: s.next,
            uuid: uuid(s.next),
            name: "production".to_owned(),
        };
        let project = Project {
            id,
            uuid: uuid(id),
            name,
            description: str_field(&body, "description"),
            environments: vec![production],
        };
        let created = json!({ "uuid": project.uuid });
        s.projects.push(project);
        (StatusCode::CREATED, axum::Json(created)).into_response()
    })
}

fn find_project<'a>(s: &'a mut Store, uuid: &str) -> Option<&'a mut Project> {
    s.projects.iter_mut().find(|p| p.uuid == uuid)
}

async fn get_project(
    State(sim): State<Coolify>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(project): Path<String>,
) -> Response {
    if let Err(r) = sim.enter("get_project", &method, &uri, &headers).await {
        return r;
    }
    sim.with(|s| match find_project(s, &project) {
        Some(p) => {
            let mut body = project_json(p);
            body["environments"] = p
                .environments
                .iter()
                .map(|e| environment_json(e, p))
                .collect();
            axum::Json(body).into_response()
        }
        None => message(StatusCode::NOT_FOUND, "Project not found."),
    })
}

async fn list_environments(
    State(sim): State<Coolify>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(project): Path<String>,
) -> Response {
    if let Err(r) = sim
        .enter("list_environments", &method, &uri, &headers)
        .await
    {
        return r;
    }
    sim.with(|s| match find_project(s, &project) {
        Some(p) => axum::Json(
            p.environments
                .iter()
                .map(|e| json!({ "id": e.id, "name": e.name, "uuid": e.uuid }))
                .collect::<Value>(),
        )
        .into_response(),
        None => message(StatusCode::NOT_FOUND, "Project not found."),
    })
}

async fn create_environment(
    State(sim): State<Coolify>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(project): Path<String>,
    body: Bytes,
) -> Response {
    if let Err(r) = sim
        .enter("create_environment", &method, &uri, &headers)
        .await
    {
        return r;
    }
    let body = match json_body(&headers, &body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let unknown = unknown_keys(&body, &["name", "description"]);
    if !unknown.is_empty() {
        return not_allowed(&unknown);
    }
    let name = str_field(&body, "name");
    sim.with(|s| {
        s.next += 1;
        let id = s.next;
        let Some(p) = find_project(s, &project) else {
            return message(StatusCode::NOT_FOUND, "Project not found.");
        };
        if p.environments.iter().any(|e| e.name == name) {
            return message(
                StatusCode::CONFLICT,
                "Environment with this name already exists.",
            );
        }
        let environment = Environment {
            id,
            uuid: uuid(id),
            name,
        };
        let created = json!({ "uuid": environment.uuid });
        p.environments.push(environment);
        (StatusCode::CREATED, axum::Json(created)).into_response()
    })
}

fn application_json(r: &Resource, status: &str) -> Value {
    let (image, tag) = match r.image.rsplit_once(':').filter(|(_, t)| !t.contains('/')) {
        Some((image, tag)) => (image.to_owned(), tag.to_owned()),
        None => (r.image.clone(), "latest".to_owned()),
    };
    json!({
        "id": r.id,
        "uuid": r.uuid,
        "name": r.name,
        "description": r.description,
        "fqdn": r.domains.join(","),
        "status": status,
        "build_pack": "dockerimage",
        "docker_registry_image_name": image,
        "docker_registry_image_tag": tag,
        "git_repository": "coollabsio/coolify",
        "git_branch": "main",
        "ports_exposes": r.ports_exposes,
        "environment_id": r.environment_id,
        "destination_id": 1,
        "health_check_enabled": false,
        "health_check_path": "/",
        "created_at": TIMESTAMP,
        "updated_at": TIMESTAMP,
    })
}

fn service_json(r: &Resource, status: &str) -> Value {
    json!({
        "id": r.id,
        "uuid": r.uuid,
        "name": r.name,
        "description": r.description,
        "environment_id": r.environment_id,
        "server_id": 1,
        "destination_id": 1,
        "destination_type": "App\\Models\\StandaloneDocker",
        "connect_to_docker_network": false,
        "is_container_label_escape_enabled": true,
        "config_hash": format!("{:x}", r.compose.len()),
        "status": status,
        "server_status": true,
        "created_at": TIMESTAMP,
        "updated_at": TIMESTAMP,
        "applications": [{ "name": "app", "status": status }],
        "databases": [],
    })
}

impl Coolify {
    fn status_of(&self, s: &Store, r: &Resource) -> String {
        let now = Instant::now();
        let timing = self.timing();
        match r.kind {
            Kind::Application => match s
                .deployments
                .iter()
                .rev()
                .find(|d| d.application_uuid == r.uuid)
            {
                Some(d) => match deployment_status(d, &timing, now) {
                    "finished" => "running:unknown".to_owned(),
                    "failed" => "exited".to_owned(),
                    _ => "starting:unknown".to_owned(),
                },
                None => "exited".to_owned(),
            },
            Kind::Service => match r.started {
                Some(t) if now >= t + timing.service_start => "running:healthy".to_owned(),
                Some(_) => "starting:unhealthy".to_owned(),
                None => "exited".to_owned(),
            },
        }
    }

    /// The live resource `uuid` of `kind`, hiding ones whose queued delete has completed.
    fn live(&self, s: &Store, uuid: &str, kind: Kind) -> Option<Resource> {
        let delay = self.timing().delete_delay;
        let now = Instant::now();
        s.resources
            .get(uuid)
            .filter(|r| r.kind == kind && r.deleting.is_none_or(|d| now < d + delay))
            .cloned()
    }
}

async fn get_environment(
    State(sim): State<Coolify>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path((project, environment)): Path<(String, String)>,
) -> Response {
    if let Err(r) = sim.enter("get_environment", &method, &uri, &headers).await {
        return r;
    }
    sim.with(|s| {
        let Some(p) = s.projects.iter().find(|p| p.uuid == project).cloned() else {
            return message(StatusCode::NOT_FOUND, "Project not found.");
        };
        let Some(e) = p
            .environments
            .iter()
            .find(|e| e.name == environment || e.uuid == environment)
        else {
            return message(StatusCode::NOT_FOUND, "Environment not found.");
        };
        let uuids: Vec<(String, Kind)> = s
            .resources
            .values()
            .filter(|r| r.environment_id == e.id)
            .map(|r| (r.uuid.clone(), r.kind))
            .collect();
        let mut applications = Vec::new();
        let mut services = Vec::new();
        for (uuid, kind) in uuids {
            if let Some(r) = sim.live(s, &uuid, kind) {
                let status = sim.status_of(s, &r);
                match kind {
                    Kind::Application => applications.push(application_json(&r, &status)),
                    Kind::Service => services.push(service_json(&r, &status)),
                }
            }
        }
        let mut body = environment_json(e, &p);
        for key in ["postgresqls", "redis", "mongodbs", "mysqls", "mariadbs"] {
            body[key] = json!([]);
        }
        body["applications"] = Value::Array(applications);
        body["services"] = Value::Array(services);
        axum::Json(body).into_response()
    })
}

/// Resolves project, environment and server of a create request.
fn placement(s: &Store, body: &serde_json::Map<String, Value>) -> Result<(u64, String), Response> {
    let project = str_field(body, "project_uuid");
    let Some(p) = s.projects.iter().find(|p| p.uuid == project) else {
        return Err(message(StatusCode::NOT_FOUND, "Project not found."));
    };
    let (name, env_uuid) = (
        str_field(body, "environment_name"),
        str_field(body, "environment_uuid"),
    );
    if name.is_empty() && env_uuid.is_empty() {
        return Err(message(
            StatusCode::UNPROCESSABLE_ENTITY,
            "You need to provide at least one of environment_name or environment_uuid.",
        ));
    }
    let Some(e) = p.environments.iter().find(|e| {
        (!name.is_empty() && e.name == name) || (!env_uuid.is_empty() && e.uuid == env_uuid)
    }) else {
        return Err(message(StatusCode::NOT_FOUND, "Environment not found."));
    };
    let server = str_field(body, "server_uuid");
    if !s.servers.iter().any(|v| v["uuid"] == server) {
        return Err(message(StatusCode::NOT_FOUND, "Server not found."));
    }
    Ok((e.id, server))
}

/// 409 if another resource already serves one of `domains`.
fn domain_conflicts(
    sim: &Coolify,
    s: &Store,
    domains: &[String],
    except: &str,
) -> Option<Response> {
    let conflicts: Vec<Value> = s
        .resources
        .values()
        .filter(|r| r.uuid != except && r.deleting.is_none())
        .flat_map(|r| {
            domains.iter().filter(|d| r.domains.contains(d)).map(move |d| {
                json!({
                    "domain": d,
                    "resource_name": r.name,
                    "resource_uuid": r.uuid,
                    "resource_type": if r.kind == Kind::Application { "application" } else { "service" },
                    "message": format!("Domain {d} is already in use by {}", r.name),
                })
            })
        })
        .collect();
    let _ = sim;
    (!conflicts.is_empty()).then(|| {
        (StatusCode::CONFLICT, axum::Json(json!({
            "message": "Domain conflicts detected. Use force_domain_override=true to proceed.",
            "conflicts": conflicts,
            "warning": "Using the same domain for multiple resources can cause routing conflicts and unpredictable behavior.",
        })))
            .into_response()
    })
}

fn split_domains(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(str::to_owned)
        .collect()
}

async fn create_application(
    State(sim): State<Coolify>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(r) = sim
        .enter("create_application", &method, &uri, &headers)
        .await
    {
        return r;
    }
    let body = match json_body(&headers, &body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let unknown = unknown_keys(&body, APPLICATION_CREATE_KEYS);
    if !unknown.is_empty() {
        return not_allowed(&unknown);
    }
    let image = str_field(&body, "docker_registry_image_name");
    if image.is_empty() {
        return invalid(
            "docker_registry_image_name",
            json!(["The docker registry image name field is required."]),
        );
    }
    let ports = str_field(&body, "ports_exposes");
    if !ports.is_empty()
        && !ports
            .split(',')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    {
        return invalid(
            "ports_exposes",
            json!(["The ports exposes field format is invalid."]),
        );
    }
    let domains = split_domains(&str_field(&body, "domains"));
    let force = body
        .get("force_domain_override")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    sim.with(|s| {
        let (environment_id, _server) = match placement(s, &body) {
            Ok(p) => p,
            Err(r) => return r,
        };
        if !force && let Some(conflict) = domain_conflicts(&sim, s, &domains, "") {
            return conflict;
        }
        s.next += 1;
        let id = s.next;
        let tag = str_field(&body, "docker_registry_image_tag");
        let resource = Resource {
            kind: Kind::Application,
            id,
            uuid: uuid(id),
            name: Some(str_field(&body, "name"))
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| format!("docker-image-{id}")),
            description: str_field(&body, "description"),
            environment_id,
            domains: domains.clone(),
            image: if tag.is_empty() {
                image
            } else {
                format!("{image}:{tag}")
            },
            ports_exposes: ports,
            compose: String::new(),
            started: None,
            deleting: None,
        };
        let created = json!({ "uuid": resource.uuid, "domains": domains.join(",") });
        s.resources.insert(resource.uuid.clone(), resource);
        (StatusCode::CREATED, axum::Json(created)).into_response()
    })
}

async fn get_application(
    State(sim): State<Coolify>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(uuid): Path<String>,
) -> Response {
    if let Err(r) = sim.enter("get_application", &method, &uri, &headers).await {
        return r;
    }
    sim.with(|s| match sim.live(s, &uuid, Kind::Application) {
        Some(r) => axum::Json(application_json(&r, &sim.status_of(s, &r))).into_response(),
        None => message(StatusCode::NOT_FOUND, "Application not found"),
    })
}

async fn update_application(
    State(sim): State<Coolify>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(uuid): Path<String>,
    body: Bytes,
) -> Response {
    if let Err(r) = sim
        .enter("update_application", &method, &uri, &headers)
        .await
    {
        return r;
    }
    let body = match json_body(&headers, &body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let mut unknown = unknown_keys(&body, APPLICATION_CREATE_KEYS);
    unknown.extend(
        body.keys()
            .filter(|k| APPLICATION_UPDATE_FORBIDDEN.contains(&k.as_str()))
            .cloned(),
    );
    if !unknown.is_empty() {
        return not_allowed(&unknown);
    }
    sim.with(|s| {
        let Some(mut r) = sim.live(s, &uuid, Kind::Application) else {
            return message(StatusCode::NOT_FOUND, "Application not found");
        };
        if let Some(domains) = body.get("domains").and_then(Value::as_str) {
            let domains = split_domains(domains);
            let force = body
                .get("force_domain_override")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            if !force && let Some(conflict) = domain_conflicts(&sim, s, &domains, &uuid) {
                return conflict;
            }
            r.domains = domains;
        }
        if body.contains_key("docker_registry_image_name")
            || body.contains_key("docker_registry_image_tag")
        {
            let name = body
                .get("docker_registry_image_name")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .unwrap_or_else(|| {
                    r.image
                        .rsplit_once(':')
                        .map_or(r.image.clone(), |(n, _)| n.to_owned())
                });
            let tag = str_field(&body, "docker_registry_image_tag");
            r.image = if tag.is_empty() {
                name
            } else {
                format!("{name}:{tag}")
            };
        }
        if let Some(ports) = body.get("ports_exposes").and_then(Value::as_str) {
            r.ports_exposes = ports.to_owned();
        }
        if let Some(name) = body.get("name").and_then(Value::as_str) {
            r.name = name.to_owned();
        }
        if let Some(description) = body.get("description").and_then(Value::as_str) {
            r.description = description.to_owned();
        }
        s.resources.insert(uuid.clone(), r);
        axum::Json(json!({ "uuid": uuid })).into_response()
    })
}

async fn delete_resource(
    State(sim): State<Coolify>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(uuid): Path<String>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let kind = if uri.path().contains("/services/") {
        Kind::Service
    } else {
        Kind::Application
    };
    let operation = if kind == Kind::Service {
        "delete_service"
    } else {
        "delete_application"
    };
    if let Err(r) = sim.enter(operation, &method, &uri, &headers).await {
        return r;
    }
    sim.with(|s| {
        if sim
            .live(s, &uuid, kind)
            .is_none_or(|r| r.deleting.is_some())
        {
            return message(
                StatusCode::NOT_FOUND,
                if kind == Kind::Service {
                    "Service not found."
                } else {
                    "Application not found"
                },
            );
        }
        if let Some(r) = s.resources.get_mut(&uuid) {
            r.deleting = Some(Instant::now());
        }
        s.deletions.push(Deletion {
            uuid: uuid.clone(),
            // Every delete flag defaults to true.
            delete_volumes: query.get("delete_volumes").is_none_or(|v| v != "false"),
        });
        let what = if kind == Kind::Service {
            "Service"
        } else {
            "Application"
        };
        axum::Json(json!({ "message": format!("{what} deletion request queued.") })).into_response()
    })
}

fn kind_of(uri: &Uri) -> Kind {
    if uri.path().contains("/services/") {
        Kind::Service
    } else {
        Kind::Application
    }
}

async fn list_envs(
    State(sim): State<Coolify>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(uuid): Path<String>,
) -> Response {
    if let Err(r) = sim.enter("list_envs", &method, &uri, &headers).await {
        return r;
    }
    sim.with(|s| match sim.live(s, &uuid, kind_of(&uri)) {
        Some(_) => {
            axum::Json(Value::Array(s.envs.get(&uuid).cloned().unwrap_or_default())).into_response()
        }
        None => message(StatusCode::NOT_FOUND, "Resource not found."),
    })
}

async fn bulk_envs(
    State(sim): State<Coolify>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(uuid): Path<String>,
    body: Bytes,
) -> Response {
    if let Err(r) = sim.enter("bulk_envs", &method, &uri, &headers).await {
        return r;
    }
    let body = match json_body(&headers, &body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Some(items) = body
        .get("data")
        .and_then(Value::as_array)
        .filter(|d| !d.is_empty())
        .cloned()
    else {
        return message(StatusCode::BAD_REQUEST, "Bulk data is required.");
    };
    sim.with(|s| {
        if sim.live(s, &uuid, kind_of(&uri)).is_none() {
            return message(StatusCode::NOT_FOUND, "Resource not found.");
        }
        let mut next = s.next;
        let list = s.envs.entry(uuid.clone()).or_default();
        // Items are applied one by one, without a transaction; unknown keys are dropped.
        for (index, item) in items.iter().enumerate() {
            let key = item["key"].as_str().unwrap_or_default().trim().replace(' ', "_");
            let valid = key.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
            if !valid {
                return invalid(&format!("data.{index}.key"), json!(["The key field format is invalid."]));
            }
            let mut env = match list.iter().position(|e| e["key"] == key) {
                Some(position) => list.remove(position),
                None => {
                    next += 1;
                    json!({ "id": next, "uuid": uuid_for_env(next), "key": key, "is_shared": false, "version": "4.3.11", "created_at": TIMESTAMP })
                }
            };
            env["value"] = item["value"].clone();
            env["real_value"] = item["value"].clone();
            // A flag left out is compared as null: it is reset to false (runtime and
            // buildtime default to true only on creation).
            for flag in ENV_ITEM_FLAGS {
                env[*flag] = json!(item[*flag].as_bool().unwrap_or(false));
            }
            env["comment"] = item.get("comment").cloned().unwrap_or(Value::Null);
            env["updated_at"] = json!(TIMESTAMP);
            list.push(env);
        }
        let result = Value::Array(list.clone());
        s.next = next;
        (StatusCode::CREATED, axum::Json(result)).into_response()
    })
}

fn uuid_for_env(n: u64) -> String {
    uuid(n.wrapping_add(1_000_003))
}

async fn delete_env(
    State(sim): State<Coolify>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path((uuid, env)): Path<(String, String)>,
) -> Response {
    if let Err(r) = sim.enter("delete_env", &method, &uri, &headers).await {
        return r;
    }
    sim.with(|s| {
        let Some(list) = s.envs.get_mut(&uuid) else {
            return message(StatusCode::NOT_FOUND, "Environment variable not found.");
        };
        match list.iter().position(|e| e["uuid"] == env) {
            Some(position) => {
                list.remove(position);
                axum::Json(json!({ "message": "Environment variable deleted." })).into_response()
            }
            None => message(StatusCode::NOT_FOUND, "Environment variable not found."),
        }
    })
}

/// Decodes and checks `docker_compose_raw`; returns the YAML and its service names.
fn decode_compose(raw: &str) -> Result<(String, Vec<String>), Response> {
    let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(raw.trim()) else {
        return Err(invalid(
            "docker_compose_raw",
            json!("The docker_compose_raw should be base64 encoded."),
        ));
    };
    let Ok(text) = String::from_utf8(bytes) else {
        return Err(invalid(
            "docker_compose_raw",
            json!("The docker_compose_raw should be base64 encoded."),
        ));
    };
    let services: Vec<String> = serde_yaml::from_str::<serde_yaml::Value>(&text)
        .ok()
        .and_then(|doc| {
            doc.get("services").and_then(|s| s.as_mapping()).map(|m| {
                m.keys()
                    .filter_map(|k| k.as_str().map(str::to_owned))
                    .collect()
            })
        })
        .unwrap_or_default();
    if services.is_empty() {
        return Err(invalid(
            "docker_compose_raw",
            json!("Invalid docker-compose file: it has no services."),
        ));
    }
    Ok((text, services))
}

/// Checks `urls` against the compose service names; returns the domains.
fn service_urls(
    body: &serde_json::Map<String, Value>,
    services: &[String],
) -> Result<Vec<String>, Response> {
    let Some(urls) = body.get("urls") else {
        return Ok(Vec::new());
    };
    let Some(list) = urls.as_array() else {
        return Err(invalid("urls", json!(["The urls field must be an array."])));
    };
    let mut domains = Vec::new();
    for entry in list {
        let name = entry["name"].as_str().unwrap_or_default();
        if !services.iter().any(|s| s == name) {
            return Err(invalid(
                "urls",
                json!([format!(
                    "Service {name} does not exist in the compose file."
                )]),
            ));
        }
        domains.extend(split_domains(entry["url"].as_str().unwrap_or_default()));
    }
    Ok(domains)
}

async fn create_service(
    State(sim): State<Coolify>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(r) = sim.enter("create_service", &method, &uri, &headers).await {
        return r;
    }
    let body = match json_body(&headers, &body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let unknown = unknown_keys(&body, SERVICE_CREATE_KEYS);
    if !unknown.is_empty() {
        return not_allowed(&unknown);
    }
    if body.contains_key("type") && body.contains_key("docker_compose_raw") {
        return invalid(
            "type",
            json!(["You cannot provide both service type and docker_compose_raw."]),
        );
    }
    let (compose, services) = match decode_compose(&str_field(&body, "docker_compose_raw")) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let domains = match service_urls(&body, &services) {
        Ok(d) => d,
        Err(r) => return r,
    };
    let force = body
        .get("force_domain_override")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let instant = body
        .get("instant_deploy")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    sim.with(|s| {
        let (environment_id, _server) = match placement(s, &body) {
            Ok(p) => p,
            Err(r) => return r,
        };
        if !force && let Some(conflict) = domain_conflicts(&sim, s, &domains, "") {
            return conflict;
        }
        s.next += 1;
        let id = s.next;
        let resource = Resource {
            kind: Kind::Service,
            id,
            uuid: uuid(id),
            name: Some(str_field(&body, "name"))
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| format!("service-{}", uuid(id + 7)[..10].to_owned())),
            description: str_field(&body, "description"),
            environment_id,
            domains: domains.clone(),
            image: String::new(),
            ports_exposes: String::new(),
            compose,
            started: instant.then(Instant::now),
            deleting: None,
        };
        let created = json!({ "uuid": resource.uuid, "domains": domains });
        s.resources.insert(resource.uuid.clone(), resource);
        (StatusCode::CREATED, axum::Json(created)).into_response()
    })
}

async fn get_service(
    State(sim): State<Coolify>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(uuid): Path<String>,
) -> Response {
    if let Err(r) = sim.enter("get_service", &method, &uri, &headers).await {
        return r;
    }
    sim.with(|s| match sim.live(s, &uuid, Kind::Service) {
        Some(r) => {
            let mut body = service_json(&r, &sim.status_of(s, &r));
            body["fqdn"] = json!(r.domains.join(","));
            axum::Json(body).into_response()
        }
        None => message(StatusCode::NOT_FOUND, "Service not found."),
    })
}

async fn update_service(
    State(sim): State<Coolify>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(uuid): Path<String>,
    body: Bytes,
) -> Response {
    if let Err(r) = sim.enter("update_service", &method, &uri, &headers).await {
        return r;
    }
    let body = match json_body(&headers, &body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let unknown = unknown_keys(&body, SERVICE_UPDATE_KEYS);
    if !unknown.is_empty() {
        return not_allowed(&unknown);
    }
    sim.with(|s| {
        let Some(mut r) = sim.live(s, &uuid, Kind::Service) else {
            return message(StatusCode::NOT_FOUND, "Service not found.");
        };
        let mut services: Vec<String> = serde_yaml::from_str::<serde_yaml::Value>(&r.compose)
            .ok()
            .and_then(|d| {
                d.get("services").and_then(|s| s.as_mapping()).map(|m| {
                    m.keys()
                        .filter_map(|k| k.as_str().map(str::to_owned))
                        .collect()
                })
            })
            .unwrap_or_default();
        if let Some(raw) = body.get("docker_compose_raw").and_then(Value::as_str) {
            match decode_compose(raw) {
                Ok((compose, names)) => {
                    r.compose = compose;
                    services = names;
                }
                Err(response) => return response,
            }
        }
        if body.contains_key("urls") {
            match service_urls(&body, &services) {
                Ok(domains) => {
                    let force = body
                        .get("force_domain_override")
                        .and_then(Value::as_bool)
                        .unwrap_or(false);
                    if !force && let Some(conflict) = domain_conflicts(&sim, s, &domains, &uuid) {
                        return conflict;
                    }
                    r.domains = domains;
                }
                Err(response) => return response,
            }
        }
        if let Some(name) = body.get("name").and_then(Value::as_str) {
            r.name = name.to_owned();
        }
        if let Some(description) = body.get("description").and_then(Value::as_str) {
            r.description = description.to_owned();
        }
        if body.get("instant_deploy").and_then(Value::as_bool) == Some(true) {
            r.started = Some(Instant::now());
        }
        let domains = r.domains.clone();
        s.resources.insert(uuid.clone(), r);
        axum::Json(json!({ "uuid": uuid, "domains": domains })).into_response()
    })
}

async fn deploy_get() -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        [("allow", "POST")],
        axum::Json(json!({ "message": "This endpoint has changed to a POST request." })),
    )
        .into_response()
}

async fn deploy(
    State(sim): State<Coolify>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
    body: Bytes,
) -> Response {
    if let Err(r) = sim.enter("deploy", &method, &uri, &headers).await {
        return r;
    }
    // Parameters come in the query string or a JSON body.
    let mut params: serde_json::Map<String, Value> = query
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    if !body.is_empty() {
        match json_body(&headers, &body) {
            Ok(b) => params.extend(b),
            Err(r) => return r,
        }
    }
    let text = |k: &str| {
        params
            .get(k)
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
            .unwrap_or_default()
    };
    let (uuids, tag) = (text("uuid"), text("tag"));
    if !uuids.is_empty() && !tag.is_empty() {
        return message(
            StatusCode::BAD_REQUEST,
            "You can only use uuid or tag, not both.",
        );
    }
    if uuids.is_empty() {
        return message(StatusCode::BAD_REQUEST, "You must provide uuid or tag.");
    }
    let force = matches!(text("force").as_str(), "true" | "1");
    let timing = sim.timing();
    sim.with(|s| {
        let mut deployments = Vec::new();
        for uuid in uuids.split(',').map(str::trim) {
            let Some(r) = sim.live(s, uuid, Kind::Application).or_else(|| sim.live(s, uuid, Kind::Service)) else {
                continue;
            };
            match r.kind {
                Kind::Service => {
                    if let Some(service) = s.resources.get_mut(uuid) {
                        service.started = Some(Instant::now());
                    }
                    deployments.push(json!({ "message": format!("Service {} started. It could take a while, be patient.", r.name), "resource_uuid": uuid }));
                }
                Kind::Application => {
                    let now = Instant::now();
                    let running = s.deployments.iter().any(|d| d.application_uuid == uuid && matches!(deployment_status(d, &timing, now), "queued" | "in_progress"));
                    s.next += 1;
                    let fresh = uuid_for_env(s.next.wrapping_mul(31));
                    if running && !force {
                        // The dedupe quirk: a fresh id that is never stored.
                        deployments.push(json!({ "message": "Deployment already queued for this commit.", "resource_uuid": uuid, "deployment_uuid": fresh }));
                        continue;
                    }
                    let fails = match s.fail_next.iter().position(|n| *n == r.name) {
                        Some(position) => {
                            s.fail_next.remove(position);
                            true
                        }
                        None => false,
                    };
                    s.deployments.push(Deployment { id: s.next, uuid: fresh.clone(), application_uuid: uuid.to_owned(), application_name: r.name.clone(), created: now, fails, force });
                    deployments.push(json!({ "message": format!("Application {} deployment queued.", r.name), "resource_uuid": uuid, "deployment_uuid": fresh }));
                }
            }
        }
        if deployments.is_empty() {
            return message(StatusCode::NOT_FOUND, "No resources found.");
        }
        axum::Json(json!({ "deployments": deployments })).into_response()
    })
}

fn deployment_json(d: &Deployment, timing: &Timing) -> Value {
    let status = deployment_status(d, timing, Instant::now());
    json!({
        "id": d.id,
        "application_id": d.application_uuid,
        "deployment_uuid": d.uuid,
        "pull_request_id": 0,
        "force_rebuild": d.force,
        "commit": "HEAD",
        "status": status,
        "is_webhook": false,
        "is_api": true,
        "created_at": TIMESTAMP,
        "updated_at": TIMESTAMP,
        "restart_only": false,
        "git_type": "",
        "server_id": 1,
        "application_name": d.application_name,
        "server_name": "localhost",
        "deployment_url": format!("/project/deployment/{}", d.uuid),
        "destination_id": "1",
    })
}

async fn get_deployment(
    State(sim): State<Coolify>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(uuid): Path<String>,
) -> Response {
    if let Err(r) = sim.enter("get_deployment", &method, &uri, &headers).await {
        return r;
    }
    let timing = sim.timing();
    sim.with(|s| match s.deployments.iter().find(|d| d.uuid == uuid) {
        Some(d) => axum::Json(deployment_json(d, &timing)).into_response(),
        None => message(StatusCode::NOT_FOUND, "Deployment not found."),
    })
}

async fn list_app_deployments(
    State(sim): State<Coolify>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(uuid): Path<String>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    if let Err(r) = sim
        .enter("list_app_deployments", &method, &uri, &headers)
        .await
    {
        return r;
    }
    let skip = query
        .get("skip")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0usize);
    let take = query
        .get("take")
        .and_then(|v| v.parse().ok())
        .unwrap_or(10usize);
    let timing = sim.timing();
    sim.with(|s| {
        if sim.live(s, &uuid, Kind::Application).is_none() {
            return message(StatusCode::NOT_FOUND, "Application not found");
        }
        let all: Vec<&Deployment> = s
            .deployments
            .iter()
            .rev()
            .filter(|d| d.application_uuid == uuid)
            .collect();
        let page: Vec<Value> = all
            .iter()
            .skip(skip)
            .take(take)
            .map(|d| deployment_json(d, &timing))
            .collect();
        axum::Json(json!({ "count": all.len(), "deployments": page })).into_response()
    })
}

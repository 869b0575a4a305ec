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

pub mod rules;

use rules::Errors;

/// How long simulated work takes.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub queued: Duration,
    pub building: Duration,
    pub service_start: Duration,
    /// How long a started service reports `degraded:unhealthy` after `service_start`
    /// (a container restarting, or a one-shot container that exited), before running.
    pub service_degraded: Duration,
    pub delete_delay: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            queued: Duration::from_millis(100),
            building: Duration::from_millis(300),
            service_start: Duration::from_millis(300),
            service_degraded: Duration::ZERO,
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
    destination: String,
    domains: Vec<String>,
    /// `docker_registry_image_name` and `docker_registry_image_tag` as stored.
    image: String,
    tag: String,
    ports_exposes: String,
    compose: String,
    /// The compose service `urls` gave the domains to (services only).
    url_service: String,
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
    /// The image reference the deployment pulls (name and tag when it was queued).
    image: String,
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
    /// Server uuid → its Docker destinations (`GET /servers/{uuid}/destinations`).
    destinations: BTreeMap<String, Vec<Value>>,
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

/// ServicesController::create_service, first-pass `$allowedFields`.
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
            // Every server gets the `coolify` network as its first destination.
            store.next += 1;
            let destination = destination_json(store.next, &uuid(store.next - 1), name, "coolify");
            store
                .destinations
                .insert(uuid(store.next - 1), vec![destination]);
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

    /// Adds a Docker destination (network `network`) to the server named `server`; returns
    /// its uuid. A server with several destinations refuses creates that name none.
    pub fn add_destination(&self, server: &str, network: &str) -> String {
        self.with(|s| {
            let server_uuid = s
                .servers
                .iter()
                .find(|v| v["name"] == server)
                .and_then(|v| v["uuid"].as_str())
                .expect("the server exists")
                .to_owned();
            s.next += 1;
            let destination = destination_json(s.next, &server_uuid, server, network);
            let id = destination["uuid"].as_str().unwrap_or_default().to_owned();
            s.destinations
                .entry(server_uuid)
                .or_default()
                .push(destination);
            id
        })
    }

    /// A server's address changed (a new machine behind the same name).
    pub fn set_server_ip(&self, server: &str, ip: &str) {
        self.with(|s| {
            for entry in s.servers.iter_mut().filter(|v| v["name"] == server) {
                entry["ip"] = json!(ip);
            }
        });
    }

    /// The destination uuid a resource was created on.
    pub fn destination_of(&self, uuid: &str) -> Option<String> {
        self.with(|s| s.resources.get(uuid).map(|r| r.destination.clone()))
    }

    /// The image the newest finished deployment of application `uuid` pulled.
    pub fn deployed_image(&self, uuid: &str) -> Option<String> {
        let timing = self.timing();
        let now = Instant::now();
        self.with(|s| {
            s.deployments
                .iter()
                .rev()
                .find(|d| {
                    d.application_uuid == uuid && deployment_status(d, &timing, now) == "finished"
                })
                .map(|d| d.image.clone())
        })
    }

    /// The domains (URLs) a resource serves.
    pub fn domains_of(&self, uuid: &str) -> Vec<String> {
        self.with(|s| {
            s.resources
                .get(uuid)
                .map(|r| r.domains.clone())
                .unwrap_or_default()
        })
    }

    /// Every deployment row of application `uuid`, oldest first: `(uuid, image)`.
    pub fn deployments_of(&self, uuid: &str) -> Vec<(String, String)> {
        self.with(|s| {
            s.deployments
                .iter()
                .filter(|d| d.application_uuid == uuid)
                .map(|d| (d.uuid.clone(), d.image.clone()))
                .collect()
        })
    }

    /// An edit made by hand in Coolify's UI: sets (or adds) a non-preview env var.
    pub fn edit_env(&self, uuid: &str, key: &str, value: &str) {
        self.with(|s| {
            s.next += 1;
            let next = s.next;
            let list = s.envs.entry(uuid.to_owned()).or_default();
            match list
                .iter_mut()
                .find(|e| e["key"] == key && e["is_preview"] != true)
            {
                Some(env) => {
                    env["value"] = json!(value);
                    env["real_value"] = json!(value);
                }
                None => list.push(new_env(next, key, value, false)),
            }
        });
    }

    /// An edit made by hand in Coolify's UI: the application's image name and tag.
    pub fn edit_image(&self, uuid: &str, name: &str, tag: &str) {
        self.with(|s| {
            if let Some(r) = s.resources.get_mut(uuid) {
                r.image = name.to_owned();
                r.tag = tag.to_owned();
            }
        });
    }

    /// A resource deleted by hand in Coolify's UI (at once, without the queued job).
    pub fn remove_by_hand(&self, uuid: &str) {
        self.with(|s| {
            s.resources.remove(uuid);
            s.envs.remove(uuid);
        });
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

    /// Environment variables of a resource that its deployments get (not the preview
    /// copies), as `(key, value)`.
    pub fn env_of(&self, uuid: &str) -> Vec<(String, String)> {
        self.env_rows(uuid, false)
    }

    /// The preview copies of an application's environment variables.
    pub fn preview_env_of(&self, uuid: &str) -> Vec<(String, String)> {
        self.env_rows(uuid, true)
    }

    fn env_rows(&self, uuid: &str, preview: bool) -> Vec<(String, String)> {
        self.with(|s| {
            s.envs
                .get(uuid)
                .map(|list| {
                    list.iter()
                        .filter(|e| e["is_preview"].as_bool().unwrap_or(false) == preview)
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
                        Kind::Service => r.started.is_some_and(|t| {
                            now >= t + timing.service_start + timing.service_degraded
                        }),
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
            .route("/servers/{uuid}/destinations", get(list_destinations))
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

/// A destination as `DestinationsController::transform` shows it.
fn destination_json(id: u64, server_uuid: &str, server: &str, network: &str) -> Value {
    json!({
        "uuid": uuid(id),
        "name": format!("{server}-{network}"),
        "network": network,
        "type": "standalone",
        "server_uuid": server_uuid,
        "created_at": TIMESTAMP,
        "updated_at": TIMESTAMP,
    })
}

/// A new env var row with the defaults of a create (`is_runtime`/`is_buildtime` true).
fn new_env(id: u64, key: &str, value: &str, preview: bool) -> Value {
    json!({
        "id": id, "uuid": uuid_for_env(id), "key": key, "value": value, "real_value": value,
        "is_preview": preview, "is_literal": false, "is_multiline": false, "is_shown_once": false,
        "is_runtime": true, "is_buildtime": true, "comment": null, "is_shared": false,
        "version": VERSION, "created_at": TIMESTAMP, "updated_at": TIMESTAMP,
    })
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

/// `DestinationsController::index_by_server`.
async fn list_destinations(
    State(sim): State<Coolify>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(server): Path<String>,
) -> Response {
    if let Err(r) = sim
        .enter("list_destinations", &method, &uri, &headers)
        .await
    {
        return r;
    }
    sim.with(|s| match s.destinations.get(&server) {
        Some(list) => axum::Json(Value::Array(list.clone())).into_response(),
        None => message(
            StatusCode::NOT_FOUND,
            "No query results for model [App\\Models\\Server].",
        ),
    })
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
    // ProjectController::create_project: `nameRules()` and `descriptionRules()`.
    let name = str_field(&body, "name");
    let mut errors = Errors::default();
    if let Some(problem) = rules::name_problem(&name) {
        errors.add("name", problem);
    }
    if let Some(problem) = rules::description_problem(&str_field(&body, "description")) {
        errors.add("description", problem);
    }
    if let Some(r) = errors.response() {
        return r;
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
    // ProjectController::create_environment: the same `nameRules()` as a project.
    if let Some(problem) = rules::name_problem(&name) {
        let mut errors = Errors::default();
        errors.add("name", problem);
        if let Some(r) = errors.response() {
            return r;
        }
    }
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
    let (image, tag) = (&r.image, &r.tag);
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
    // ServicesController::service_by_uuid: no top-level `fqdn`; each compose service is an
    // application (or a database) with its own `fqdn`.
    let applications: Vec<Value> = compose_services(&r.compose)
        .into_iter()
        .map(|name| {
            let fqdn =
                (name == r.url_service && !r.domains.is_empty()).then(|| r.domains.join(","));
            json!({ "name": name, "status": status, "fqdn": fqdn, "exclude_from_status": false })
        })
        .collect();
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
        "applications": applications,
        "databases": [],
    })
}

/// The service names of a compose file.
fn compose_services(compose: &str) -> Vec<String> {
    serde_yaml::from_str::<serde_yaml::Value>(compose)
        .ok()
        .and_then(|doc| {
            doc.get("services").and_then(|s| s.as_mapping()).map(|m| {
                m.keys()
                    .filter_map(|k| k.as_str().map(str::to_owned))
                    .collect()
            })
        })
        .unwrap_or_default()
}

/// The variables Coolify's compose parser creates for a service (`serviceParser` in
/// bootstrap/helpers/parsers.php, values from `generateEnvValue` in
/// bootstrap/helpers/shared.php): every `${SERVICE_<COMMAND>_<NAME>}` the compose refers
/// to, created once and never regenerated. URL and FQDN values are left empty here.
fn generated_envs(compose: &str) -> Vec<(String, String)> {
    static MAGIC: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"\$\{?(SERVICE_[A-Za-z0-9_]+)").expect("valid pattern")
    });
    let mut found: Vec<(String, String)> = Vec::new();
    for capture in MAGIC.captures_iter(compose) {
        let key = capture[1].to_owned();
        if found.iter().any(|(k, _)| *k == key) {
            continue;
        }
        let value = if key.starts_with("SERVICE_FQDN_") || key.starts_with("SERVICE_URL_") {
            String::new()
        } else {
            // A deterministic stand-in for the random value; what matters is that it is
            // kept, not what it is.
            format!("generated-{:016x}", {
                let mut h: u64 = 0xcbf2_9ce4_8422_2325;
                for b in key.bytes().chain(compose.len().to_le_bytes()) {
                    h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
                }
                h
            })
        };
        found.push((key, value));
    }
    found
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
            // Service::getStatusAttribute: `starting:unhealthy` while the start runs, then
            // the aggregate of the containers (ContainerStatusAggregator).
            Kind::Service => match r.started {
                Some(t) if now >= t + timing.service_start + timing.service_degraded => {
                    "running:healthy".to_owned()
                }
                Some(t) if now >= t + timing.service_start => "degraded:unhealthy".to_owned(),
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

/// The destination a create lands on (ApplicationsController::create_application and
/// ServicesController::create_service, "destination" block): the only one, whatever was
/// sent; with several, `destination_uuid` must name one of them.
fn choose_destination(
    s: &Store,
    server: &str,
    body: &serde_json::Map<String, Value>,
) -> Result<String, Response> {
    let destinations = s.destinations.get(server).cloned().unwrap_or_default();
    let uuid_of = |d: &Value| d["uuid"].as_str().unwrap_or_default().to_owned();
    match destinations.as_slice() {
        [] => Err(message(
            StatusCode::BAD_REQUEST,
            "Server has no destinations.",
        )),
        [only] => Ok(uuid_of(only)),
        several => {
            if !body.contains_key("destination_uuid") {
                return Err(message(
                    StatusCode::BAD_REQUEST,
                    "Server has multiple destinations and you do not set destination_uuid.",
                ));
            }
            let wanted = str_field(body, "destination_uuid");
            several
                .iter()
                .find(|d| d["uuid"] == wanted.as_str())
                .map(uuid_of)
                .ok_or_else(|| {
                    invalid(
                        "destination_uuid",
                        json!("Provided destination_uuid does not belong to the specified server."),
                    )
                })
        }
    }
}

/// What `queue_application_deployment` did.
enum Queued {
    Queued(String),
    /// A deployment of the same application and commit is queued or running, and the
    /// call was not forced: no row is created.
    Skipped,
}

/// `queue_application_deployment` (bootstrap/helpers/applications.php): de-duplicates on
/// application, commit (`HEAD` for docker images), pull request and tag unless forced.
fn queue_deployment(s: &mut Store, r: &Resource, timing: &Timing, force: bool) -> Queued {
    let now = Instant::now();
    let running = s.deployments.iter().any(|d| {
        d.application_uuid == r.uuid
            && matches!(deployment_status(d, timing, now), "queued" | "in_progress")
    });
    if running && !force {
        return Queued::Skipped;
    }
    let fails = match s.fail_next.iter().position(|n| *n == r.name) {
        Some(position) => {
            s.fail_next.remove(position);
            true
        }
        None => false,
    };
    s.next += 1;
    let id = uuid_for_env(s.next.wrapping_mul(31));
    s.deployments.push(Deployment {
        id: s.next,
        uuid: id.clone(),
        application_uuid: r.uuid.clone(),
        application_name: r.name.clone(),
        created: now,
        fails,
        force,
        image: image_reference(&r.image, &r.tag),
    });
    Queued::Queued(id)
}

/// The reference the deploy job pulls (`ApplicationDeploymentJob::generate_image_names`).
fn image_reference(name: &str, tag: &str) -> String {
    let tag = if tag.is_empty() { "latest" } else { tag };
    match tag.strip_prefix("sha256-") {
        Some(hex) => format!("{}@sha256:{hex}", name.trim_end_matches("@sha256")),
        None => format!("{name}:{tag}"),
    }
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
    // ApplicationsController::create_application: the allow-list and the basic rules
    // answer together, in one bag.
    let mut errors = Errors::default();
    rules::not_allowed(&body, rules::APPLICATION_CREATE_FIELDS, &mut errors);
    rules::optional_string(&body, "name", Some(255), false, &mut errors);
    rules::optional_string(&body, "description", None, true, &mut errors);
    rules::required_string(&body, "project_uuid", &mut errors);
    rules::required_string(&body, "server_uuid", &mut errors);
    rules::optional_string(&body, "environment_name", None, true, &mut errors);
    rules::optional_string(&body, "environment_uuid", None, true, &mut errors);
    rules::optional_string(&body, "destination_uuid", None, false, &mut errors);
    rules::boolean(&body, "autogenerate_domain", &mut errors);
    if let Some(r) = errors.response() {
        return r;
    }
    sim.with(|s| {
        let (environment_id, server) = match placement(s, &body) {
            Ok(p) => p,
            Err(r) => return r,
        };
        let destination = match choose_destination(s, &server, &body) {
            Ok(d) => d,
            Err(r) => return r,
        };
        // The dockerimage variant's own validator runs after the lookups.
        let mut errors = Errors::default();
        let image = str_field(&body, "docker_registry_image_name");
        match body.get("docker_registry_image_name") {
            None | Some(Value::Null) => {
                errors.add("docker_registry_image_name", "This field is required.")
            }
            Some(_) => {
                if let Some(problem) = rules::image_format_problem(&image) {
                    errors.add("docker_registry_image_name", problem);
                }
            }
        }
        let tag = body
            .get("docker_registry_image_tag")
            .and_then(Value::as_str);
        if let Some(problem) = tag.and_then(rules::image_tag_problem) {
            errors.add("docker_registry_image_tag", problem);
        }
        let ports = str_field(&body, "ports_exposes");
        if let Some(problem) = body
            .get("ports_exposes")
            .and_then(Value::as_str)
            .and_then(rules::ports_problem)
        {
            errors.add("ports_exposes", problem);
        }
        let domains_text = str_field(&body, "domains");
        for problem in rules::domain_problems(&domains_text) {
            errors.add("domains", problem);
        }
        if let Some(r) = errors.response() {
            return r;
        }
        let domains: Vec<String> = rules::split_domains(&domains_text)
            .iter()
            .map(|d| rules::normalize_domain(d))
            .collect();
        let force = body
            .get("force_domain_override")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if !force && let Some(conflict) = domain_conflicts(&sim, s, &domains, "") {
            return conflict;
        }
        s.next += 1;
        let id = s.next;
        let (image, tag) = rules::parse_image(&image, tag);
        let resource = Resource {
            kind: Kind::Application,
            id,
            uuid: uuid(id),
            name: Some(str_field(&body, "name"))
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| format!("docker-image-{}", uuid(id + 11))),
            description: str_field(&body, "description"),
            environment_id,
            destination,
            domains: domains.clone(),
            image,
            tag,
            ports_exposes: ports,
            compose: String::new(),
            url_service: String::new(),
            started: None,
            deleting: None,
        };
        let created = json!({
            "uuid": resource.uuid,
            "domains": if domains.is_empty() { Value::Null } else { json!(domains.join(",")) },
        });
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
    let timing = sim.timing();
    sim.with(|s| {
        let Some(mut r) = sim.live(s, &uuid, Kind::Application) else {
            return message(StatusCode::NOT_FOUND, "Application not found");
        };
        // ApplicationsController::update_by_uuid, in its order: the ports check, then
        // the domains (errors as a plain list, then conflicts), then the allow-list merged
        // with sharedDataApplications() in one bag.
        if let Some(ports) = body.get("ports_exposes").and_then(Value::as_str)
            && !ports
                .split(',')
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        {
            return invalid(
                "ports_exposes",
                json!("The ports_exposes should be a comma separated list of numbers."),
            );
        }
        let mut new_domains = None;
        if let Some(text) = body.get("domains").and_then(Value::as_str) {
            let problems = rules::domain_problems(text);
            if !problems.is_empty() {
                return (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    axum::Json(json!({ "message": "Validation failed.", "errors": problems })),
                )
                    .into_response();
            }
            let domains: Vec<String> = rules::split_domains(text)
                .iter()
                .map(|d| rules::normalize_domain(d))
                .collect();
            let force = body
                .get("force_domain_override")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            if !force && let Some(conflict) = domain_conflicts(&sim, s, &domains, &uuid) {
                return conflict;
            }
            new_domains = Some(domains);
        }
        let mut errors = Errors::default();
        rules::not_allowed(&body, &rules::application_update_fields(), &mut errors);
        rules::optional_string(&body, "name", Some(255), false, &mut errors);
        rules::optional_string(&body, "description", None, true, &mut errors);
        let name = body
            .get("docker_registry_image_name")
            .and_then(Value::as_str);
        if let Some(problem) = name.and_then(rules::image_name_problem) {
            errors.add("docker_registry_image_name", problem);
        }
        let tag = body
            .get("docker_registry_image_tag")
            .and_then(Value::as_str);
        if let Some(problem) = tag.and_then(rules::image_tag_problem) {
            errors.add("docker_registry_image_tag", problem);
        }
        if let Some(problem) = body
            .get("ports_exposes")
            .and_then(Value::as_str)
            .and_then(rules::ports_problem)
        {
            errors.add("ports_exposes", problem);
        }
        if let Some(response) = errors.response() {
            return response;
        }
        // Stored as sent: PATCH does not parse image references.
        if let Some(name) = name {
            r.image = name.to_owned();
        }
        if let Some(tag) = tag {
            r.tag = tag.to_owned();
        }
        if let Some(domains) = new_domains {
            r.domains = domains;
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
        let instant = body.get("instant_deploy").and_then(Value::as_bool) == Some(true);
        s.resources.insert(uuid.clone(), r.clone());
        if instant && let Queued::Skipped = queue_deployment(s, &r, &timing, false) {
            return axum::Json(json!({ "message": "Deployment already queued for this commit." }))
                .into_response();
        }
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
    let kind = kind_of(&uri);
    sim.with(|s| match sim.live(s, &uuid, kind) {
        // ApplicationsController::envs: the non-preview rows, then the preview rows.
        Some(_) => {
            let list = s.envs.get(&uuid).cloned().unwrap_or_default();
            let (preview, plain): (Vec<Value>, Vec<Value>) =
                list.into_iter().partition(|e| e["is_preview"] == true);
            axum::Json(Value::Array(plain.into_iter().chain(preview).collect())).into_response()
        }
        None => message(
            StatusCode::NOT_FOUND,
            if kind == Kind::Service {
                "Service not found."
            } else {
                "Application not found"
            },
        ),
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
    // ApplicationsController::create_bulk_envs (and the services' twin): `data` must be a
    // non-empty list; other top-level keys and unknown item keys are ignored.
    let Some(items) = body
        .get("data")
        .and_then(Value::as_array)
        .filter(|d| !d.is_empty())
        .cloned()
    else {
        return message(StatusCode::BAD_REQUEST, "Bulk data is required.");
    };
    let kind = kind_of(&uri);
    sim.with(|s| {
        if sim.live(s, &uuid, kind).is_none() {
            return message(
                StatusCode::NOT_FOUND,
                if kind == Kind::Service {
                    "Service not found."
                } else {
                    "Application not found"
                },
            );
        }
        let mut next = s.next;
        let list = s.envs.entry(uuid.clone()).or_default();
        let mut upserted = Vec::new();
        // Items are validated and saved one by one, without a transaction: the first bad
        // item answers 422 with its errors under the item's own field names, and the
        // items before it stay saved.
        for item in &items {
            let key = item["key"].as_str().unwrap_or_default().trim().to_owned();
            let mut errors = Errors::default();
            if let Some(problem) = rules::env_key_problem(&key) {
                errors.add("key", problem);
            }
            if !matches!(
                item.get("value"),
                None | Some(Value::Null | Value::String(_))
            ) {
                errors.add("value", "The value field must be a string.");
            }
            for flag in ENV_ITEM_FLAGS {
                if !matches!(item.get(*flag), None | Some(Value::Bool(_))) {
                    errors.add(
                        flag,
                        format!(
                            "The {} field must be true or false.",
                            flag.replace('_', " ")
                        ),
                    );
                }
            }
            if let Some(response) = errors.response() {
                s.next = next;
                return response;
            }
            let preview = item["is_preview"].as_bool().unwrap_or(false);
            let value = item["value"].clone();
            let position = list.iter().position(|e| {
                e["key"] == key.as_str() && e["is_preview"].as_bool().unwrap_or(false) == preview
            });
            let env = match position {
                Some(position) => {
                    // Found: the value is always overwritten (null if left out), these
                    // three flags reset to what was sent; the others change only when sent.
                    let env = &mut list[position];
                    env["value"] = value.clone();
                    env["real_value"] = value.clone();
                    for flag in ["is_literal", "is_multiline", "is_shown_once"] {
                        env[flag] = json!(item[flag].as_bool().unwrap_or(false));
                    }
                    for flag in ["is_runtime", "is_buildtime"] {
                        if let Some(v) = item[flag].as_bool() {
                            env[flag] = json!(v);
                        }
                    }
                    if let Some(comment) = item.get("comment") {
                        env["comment"] = comment.clone();
                    }
                    env.clone()
                }
                None => {
                    next += 1;
                    let mut env = new_env(next, &key, value.as_str().unwrap_or_default(), preview);
                    env["value"] = value.clone();
                    env["real_value"] = value.clone();
                    for flag in ENV_ITEM_FLAGS {
                        if let Some(v) = item[*flag].as_bool() {
                            env[*flag] = json!(v);
                        }
                    }
                    list.push(env.clone());
                    // EnvironmentVariable::booted, `created`: an application's new
                    // non-preview variable gets a preview copy (updates and deletes are
                    // not mirrored).
                    if kind == Kind::Application
                        && !preview
                        && !list
                            .iter()
                            .any(|e| e["key"] == key.as_str() && e["is_preview"] == true)
                    {
                        next += 1;
                        let mut copy = env.clone();
                        copy["id"] = json!(next);
                        copy["uuid"] = json!(uuid_for_env(next));
                        copy["is_preview"] = json!(true);
                        copy["is_shown_once"] = json!(false);
                        list.push(copy);
                    }
                    env
                }
            };
            upserted.push(env);
        }
        s.next = next;
        (StatusCode::CREATED, axum::Json(Value::Array(upserted))).into_response()
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
) -> Result<Option<(String, Vec<String>)>, Response> {
    let Some(urls) = body.get("urls") else {
        return Ok(None);
    };
    let Some(list) = urls.as_array() else {
        return Err(invalid("urls", json!(["The urls field must be an array."])));
    };
    // ServicesController::applyServiceUrls: problems come back as a plain list.
    let mut problems = Vec::new();
    let mut chosen = None;
    for (index, entry) in list.iter().enumerate() {
        if !entry.is_object()
            || entry
                .as_object()
                .is_some_and(|o| o.keys().any(|k| k != "name" && k != "url"))
        {
            return Err(invalid(
                &format!("urls.{index}"),
                json!([
                    "An item in the urls array has invalid fields. Only name and url fields are supported."
                ]),
            ));
        }
        let name = entry["name"].as_str().unwrap_or_default();
        let url = entry["url"].as_str().unwrap_or_default();
        if name.is_empty() {
            problems.push("Service container name is required to apply URLs.".to_owned());
            continue;
        }
        problems.extend(rules::domain_problems(url));
        if !services.iter().any(|s| s == name) {
            problems.push(format!("Service container with '{name}' not found."));
            continue;
        }
        let domains = rules::split_domains(url)
            .iter()
            .map(|d| rules::normalize_domain(d))
            .collect();
        chosen = Some((name.to_owned(), domains));
    }
    if !problems.is_empty() {
        return Err((
            StatusCode::UNPROCESSABLE_ENTITY,
            axum::Json(json!({ "message": "Validation failed.", "errors": problems })),
        )
            .into_response());
    }
    Ok(chosen)
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
    // ServicesController::create_service, first pass: allow-list and rules in one bag.
    let mut errors = Errors::default();
    rules::not_allowed(&body, SERVICE_CREATE_KEYS, &mut errors);
    rules::optional_string(&body, "name", Some(255), false, &mut errors);
    rules::optional_string(&body, "description", None, true, &mut errors);
    rules::required_string(&body, "project_uuid", &mut errors);
    rules::required_string(&body, "server_uuid", &mut errors);
    rules::optional_string(&body, "destination_uuid", None, true, &mut errors);
    rules::boolean(&body, "instant_deploy", &mut errors);
    rules::boolean(&body, "force_domain_override", &mut errors);
    if !body.contains_key("type") && !body.contains_key("docker_compose_raw") {
        errors.add(
            "docker_compose_raw",
            "The docker compose raw field is required when type is not present.",
        );
    }
    if let Some(r) = errors.response() {
        return r;
    }
    if body.contains_key("type") && body.contains_key("docker_compose_raw") {
        return message(
            StatusCode::UNPROCESSABLE_ENTITY,
            "You cannot provide both service type and docker_compose_raw. Use one or the other.",
        );
    }
    let force = body
        .get("force_domain_override")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let instant = body
        .get("instant_deploy")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    sim.with(|s| {
        let (environment_id, server) = match placement(s, &body) {
            Ok(p) => p,
            Err(r) => return r,
        };
        let destination = match choose_destination(s, &server, &body) {
            Ok(d) => d,
            Err(r) => return r,
        };
        let (compose, services) = match decode_compose(&str_field(&body, "docker_compose_raw")) {
            Ok(c) => c,
            Err(r) => return r,
        };
        // URLs are applied after the service exists; on a problem it is deleted again.
        let (url_service, domains) = match service_urls(&body, &services) {
            Ok(urls) => urls.unwrap_or_default(),
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
            destination,
            domains: domains.clone(),
            image: String::new(),
            tag: String::new(),
            ports_exposes: String::new(),
            compose: compose.clone(),
            url_service,
            started: instant.then(Instant::now),
            deleting: None,
        };
        let mut envs = Vec::new();
        for (key, value) in generated_envs(&compose) {
            s.next += 1;
            envs.push(new_env(s.next, &key, &value, false));
        }
        s.envs.insert(resource.uuid.clone(), envs);
        let created = json!({ "uuid": resource.uuid, "domains": if domains.is_empty() { vec![] } else { vec![domains.join(",")] } });
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
        Some(r) => axum::Json(service_json(&r, &sim.status_of(s, &r))).into_response(),
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
        let mut services = compose_services(&r.compose);
        if let Some(raw) = body.get("docker_compose_raw").and_then(Value::as_str) {
            match decode_compose(raw) {
                Ok((compose, names)) => {
                    // The parser runs again: new magic variables are created, existing
                    // ones keep their values.
                    let list = s.envs.entry(uuid.clone()).or_default();
                    for (key, value) in generated_envs(&compose) {
                        if !list.iter().any(|e| e["key"] == key.as_str()) {
                            s.next += 1;
                            list.push(new_env(s.next, &key, &value, false));
                        }
                    }
                    r.compose = compose;
                    services = names;
                }
                Err(response) => return response,
            }
        }
        if body.contains_key("urls") {
            match service_urls(&body, &services) {
                Ok(urls) => {
                    let (url_service, domains) = urls.unwrap_or_default();
                    let force = body
                        .get("force_domain_override")
                        .and_then(Value::as_bool)
                        .unwrap_or(false);
                    if !force && let Some(conflict) = domain_conflicts(&sim, s, &domains, &uuid) {
                        return conflict;
                    }
                    r.domains = domains;
                    r.url_service = url_service;
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
                    // DeployController::deploy_resource answers with the uuid it generated
                    // even when the queue skipped: a uuid that was never stored.
                    s.next += 1;
                    let fresh = uuid_for_env(s.next.wrapping_mul(31));
                    match queue_deployment(s, &r, &timing, force) {
                        Queued::Queued(id) => deployments.push(json!({ "message": format!("Application {} deployment queued.", r.name), "resource_uuid": uuid, "deployment_uuid": id })),
                        Queued::Skipped => deployments.push(json!({ "message": "Deployment already queued for this commit.", "resource_uuid": uuid, "deployment_uuid": fresh })),
                    }
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

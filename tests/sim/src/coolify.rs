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

mod applications;
mod deployments;
mod envs;
mod parser;
mod projects;
pub mod rules;
mod servers;
mod services;

use applications::*;
use deployments::*;
use envs::*;
use projects::*;
use servers::*;
use services::*;

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
    /// How long `POST /deploy` of a service takes to answer (its parsing and SSH work).
    pub service_deploy_answer: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            queued: Duration::from_millis(100),
            building: Duration::from_millis(300),
            service_start: Duration::from_millis(300),
            service_degraded: Duration::ZERO,
            delete_delay: Duration::from_millis(200),
            service_deploy_answer: Duration::ZERO,
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
    /// When the queue started it (see `deployments::schedule`); `None` while queued.
    start: Option<Instant>,
    /// The uuid of the server it builds on.
    server: String,
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
    /// Settable only by `PATCH` (`ProjectController::update_environment`).
    description: String,
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
    /// A description the next created service gets instead of the one sent (a confused
    /// or hostile API: the create answers with someone else's resource).
    next_description: Option<String>,
    /// The next deletion is queued and answered as usual, but its job fails: the
    /// resource stays (Coolify's `DeleteResourceJob` failing after the API answered).
    fail_next_deletion: bool,
}

/// Shared state of one simulator.
#[derive(Clone)]
pub struct Coolify {
    token: Arc<str>,
    store: Arc<Mutex<Store>>,
    timing: Arc<Mutex<Timing>>,
    missing_accept: Arc<AtomicUsize>,
    pub faults: Faults,
    /// Laravel's `api` throttle, 200 a minute per user by default (see `ratelimit`).
    pub rate_limit: crate::ratelimit::RateLimiter,
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
                // Shown by `GET /servers/{uuid}` only (`ServersController::servers`
                // selects a few columns); `Server::proxyType()` reads its `type`.
                "proxy": { "type": "TRAEFIK" },
                "is_reachable": true,
                "is_usable": true,
                "settings": {
                    "is_build_server": false, "is_reachable": true, "is_usable": true,
                    // ServerSetting defaults (migrations 2024_01_24_095449 and
                    // 2025_12_04_134435): two builds at once, 25 queued.
                    "concurrent_builds": 2, "deployment_queue_limit": 25,
                },
            }));
            // Every server gets the `coolify` network as its first destination.
            store.next += 1;
            let destination = destination_json(store.next, &uuid(store.next - 1), name, "coolify");
            store
                .destinations
                .insert(uuid(store.next - 1), vec![destination]);
        }
        store.next += crate::start_offset();
        Self {
            token: Arc::from(token),
            store: Arc::new(Mutex::new(store)),
            timing: Arc::new(Mutex::new(Timing::default())),
            missing_accept: Arc::new(AtomicUsize::new(0)),
            faults: Faults::default(),
            rate_limit: crate::ratelimit::RateLimiter::coolify(),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Store) -> T) -> T {
        let mut guard = match self.store.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        // Deployments leave the queue as Coolify's would have by now.
        schedule(&mut guard, &self.timing());
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
    /// Sets every server's `concurrent_builds` (Coolify's default is 2): how many
    /// deployments build at once on one server; the others wait `queued`.
    pub fn set_concurrent_builds(&self, builds: u64) {
        self.with(|s| {
            for server in &mut s.servers {
                server["settings"]["concurrent_builds"] = json!(builds);
            }
        });
    }

    /// Sets the proxy type (`TRAEFIK`, `CADDY`, `NONE`) of the server named `server`.
    pub fn set_server_proxy(&self, server: &str, proxy: &str) {
        self.with(|s| {
            for entry in s.servers.iter_mut().filter(|v| v["name"] == server) {
                entry["proxy"]["type"] = json!(proxy);
            }
        });
    }

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

    /// The compose document a service holds (as its last create or update sent it).
    pub fn compose_of(&self, uuid: &str) -> Option<String> {
        self.with(|s| s.resources.get(uuid).map(|r| r.compose.clone()))
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

    /// Makes the next service created carry `description` instead of the one it was sent.
    pub fn describe_next_service_as(&self, description: &str) {
        self.with(|s| s.next_description = Some(description.to_owned()));
    }

    /// Makes the next deletion's job fail after the API accepted it (the resource stays),
    /// or, with `false`, takes that back.
    pub fn fail_next_deletion(&self, fail: bool) {
        self.with(|s| s.fail_next_deletion = fail);
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
    /// The names of the environments of project `name`.
    pub fn environment_names(&self, name: &str) -> Vec<String> {
        self.with(|s| {
            s.projects
                .iter()
                .filter(|p| p.name == name)
                .flat_map(|p| p.environments.iter().map(|e| e.name.clone()))
                .collect()
        })
    }

    /// The names of the projects Coolify has.
    pub fn project_names(&self) -> Vec<String> {
        self.with(|s| s.projects.iter().map(|p| p.name.clone()).collect())
    }

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
            .route("/servers/{uuid}", get(get_server))
            .route("/servers/{uuid}/destinations", get(list_destinations))
            .route("/projects", get(list_projects).post(create_project))
            .route("/projects/{uuid}", get(get_project).delete(delete_project))
            .route(
                "/projects/{uuid}/environments",
                get(list_environments).post(create_environment),
            )
            .route(
                "/projects/{uuid}/environments/{environment}",
                axum::routing::patch(update_environment).delete(delete_environment),
            )
            .route("/projects/{uuid}/{environment}", get(get_environment))
            .route("/applications", get(list_applications))
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
            .route("/services", get(list_services).post(create_service))
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
            .with_state(self.clone())
            // The `api` middleware group, throttle included, runs before the routes'
            // own `auth:sanctum` (routes/api.php).
            .layer(axum::middleware::from_fn_with_state(
                self.rate_limit.clone(),
                crate::ratelimit::enforce,
            ));
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

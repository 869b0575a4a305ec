//! Coolify provider plugin: Coolify applications, services and deployments, spoken
//! through Coolify's REST API (`/api/v1`). Built as a WebAssembly component of the
//! `fabrik:provider` world; the host attaches the API token.
//!
//! Kinds and their desired state (JSON):
//! - `server` (read-only): `lookup` by name; outputs `uuid`, `ip`.
//! - `application`: a docker-image application (`POST /applications/dockerimage`):
//!   `{"project", "environment", "server", "image", "port", "domains": ["https://…"], "env": {…}}`.
//! - `service`: a compose service (`POST /services`): `{"project", "environment", "server",
//!   "compose": "<yaml>", "service": "<compose service with the domain>", "domains", "env"}`.
//!
//! The owner tag is stored in the resource's `description`. Creating or updating syncs the
//! environment (bulk upsert with the full flag set, then deletes keys the spec removed)
//! and triggers a deployment with `POST /deploy`; `progress` follows it.

// Natively (unit tests) the component is not exported, so nothing calls the provider.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

mod api;
mod compose_env;

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};

use base64::Engine as _;
use fabrik_provider_sdk::config::Config;
use fabrik_provider_sdk::http::{self, Api, Delivery};
use fabrik_provider_sdk::{
    ConfigKey, LogLevel, Method, ProgressReport, ProgressState, Provider, ProviderError,
    ProviderInfo, RateLimit, Resource, ResourcePage, owner,
};
use serde::Deserialize;
use serde_json::{Value, json};

/// Versions older than this lack `POST /services` and the `is_buildtime` env flag.
const MIN_VERSION: (u64, u64) = (4, 1);

#[derive(Default)]
struct State {
    api: Option<Api>,
    version_checked: bool,
    /// Application uuid → the deployment uuid `POST /deploy` returned.
    deployments: HashMap<String, String>,
    /// `GET /servers`, kept for the life of this instance (one apply): the host looks the
    /// server up for the DNS record, then `create` needs its uuid; servers do not come and
    /// go within an apply, and the second call was one more serial round trip.
    servers: Option<Value>,
    /// Server uuid → its destinations, kept for the same reason.
    destinations: HashMap<String, Option<Vec<Value>>>,
    /// Whether `prefetch` ran.
    prefetched: bool,
    /// `GET /version` as `prefetch` received it, until `check_version` reads it.
    version_reply: Option<Result<api::Reply, api::Failure>>,
    /// `GET /projects`, kept and extended with the projects this instance creates.
    projects: Option<Value>,
    /// Projects created during this apply (by this instance, or by another app's moments
    /// ago): their `production` environment exists (`Project::booted`).
    new_projects: HashSet<String>,
    /// `(project uuid, environment)` this instance has seen exist (a lookup read it).
    environments: HashSet<(String, String)>,
    /// What lookups by name read (an environment's detail, or the team's whole
    /// `GET /applications` or `/services`), by path; dropped whenever this instance
    /// writes anything.
    lists: HashMap<String, Value>,
    /// Resource uuid → its env list as last read; dropped when its env is written.
    envs: HashMap<String, Value>,
    /// Resource uuid → its detail as last read; dropped when it is written.
    details: HashMap<String, Value>,
}

/// Reads what most calls of an apply need in one round trip (`http-send-many`): the
/// version, the servers and the projects. Once per instance. A read that failed is not
/// kept: its reader asks again and reports the error.
fn prefetch() -> Result<(), ProviderError> {
    if STATE.with(|s| s.borrow().prefetched) {
        return Ok(());
    }
    let api = api()?;
    const PATHS: [&str; 3] = ["/version", "/servers", "/projects"];
    let answers = http::send_many(PATHS.iter().map(|path| api.get(path)).collect());
    STATE.with(|s| {
        let mut state = s.borrow_mut();
        state.prefetched = true;
        for (path, answer) in PATHS.into_iter().zip(answers) {
            let answer = api::answer(answer);
            if path == "/version" {
                state.version_reply = Some(answer);
                continue;
            }
            let Some(value) = answer.ok().and_then(|reply| reply.json().ok()) else {
                continue;
            };
            match path {
                "/servers" => state.servers = Some(value),
                _ => state.projects = Some(value),
            }
        }
    });
    Ok(())
}

/// Forgets what may change when this instance writes: the lists lookups read, and what
/// was read of `uuid`.
fn written(uuid: Option<&str>) {
    STATE.with(|s| {
        let mut state = s.borrow_mut();
        state.lists.clear();
        if let Some(uuid) = uuid {
            state.envs.remove(uuid);
            state.details.remove(uuid);
        }
    });
}

thread_local! {
    static STATE: RefCell<State> = RefCell::new(State::default());
}

/// The API as `configure` set it up.
fn api() -> Result<Api, ProviderError> {
    STATE
        .with(|s| s.borrow().api.clone())
        .ok_or_else(|| permanent("the provider was called before `configure` (a host bug)"))
}

use fabrik_provider_sdk::error::permanent;

/// The desired state of an application or a service.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Desired {
    project: String,
    environment: String,
    server: String,
    #[serde(default)]
    image: Option<String>,
    #[serde(default)]
    port: Option<u16>,
    #[serde(default)]
    compose: Option<String>,
    #[serde(default)]
    service: Option<String>,
    #[serde(default)]
    domains: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    /// The Docker destination on the server, by name, network or uuid; needed when the
    /// server has several.
    #[serde(default)]
    destination: Option<String>,
}

fn parse_desired(kind: &str, text: &str) -> Result<Desired, ProviderError> {
    let desired: Desired = serde_json::from_str(text)
        .map_err(|e| permanent(format!("invalid desired {kind}: {e}")))?;
    match kind {
        "application" if desired.image.is_none() || desired.port.is_none() => {
            Err(permanent("an application needs `image` and `port`"))
        }
        "service" if desired.compose.is_none() || desired.service.is_none() => {
            Err(permanent("a service needs `compose` and `service`"))
        }
        "application" | "service" => Ok(desired),
        other => Err(permanent(format!(
            "the Coolify provider cannot create `{other}`"
        ))),
    }
}

/// Reads `GET /version` once and refuses versions this provider cannot drive.
fn check_version() -> Result<(), ProviderError> {
    if STATE.with(|s| s.borrow().version_checked) {
        return Ok(());
    }
    let prefetched = STATE.with(|s| s.borrow_mut().version_reply.take());
    let reply = match prefetched {
        Some(answer) => answer,
        None => api::call(&api()?, Method::Get, "/version", None),
    }
    .map_err(|f| f.error)?;
    let text = String::from_utf8_lossy(&reply.body)
        .trim()
        .trim_matches('"')
        .trim_start_matches('v')
        .to_owned();
    let mut parts = text
        .split(['.', '-'])
        .map(|p| p.parse::<u64>().unwrap_or(0));
    let version = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    if version < MIN_VERSION {
        return Err(ProviderError::InvalidConfig(format!(
            "Coolify {text} is too old: this provider needs {}.{} or newer",
            MIN_VERSION.0, MIN_VERSION.1
        )));
    }
    fabrik_provider_sdk::log(LogLevel::Debug, &format!("Coolify version {text}"));
    STATE.with(|s| s.borrow_mut().version_checked = true);
    Ok(())
}

/// The usable server named `name`: `(uuid, ip)`.
fn find_server(name: &str) -> Result<Option<(String, String)>, ProviderError> {
    server_where(name, |s| s["name"].as_str() == Some(name))
}

/// The usable server `pick` chooses (`what` names it in errors): `(uuid, ip)`.
fn server_where(
    what: &str,
    pick: impl Fn(&Value) -> bool,
) -> Result<Option<(String, String)>, ProviderError> {
    let name = what;
    let cached = STATE.with(|s| s.borrow().servers.clone());
    let servers = match cached {
        Some(servers) => servers,
        None => {
            let servers = api::json(&api()?, Method::Get, "/servers", None)?;
            STATE.with(|s| s.borrow_mut().servers = Some(servers.clone()));
            servers
        }
    };
    let Some(server) = servers
        .as_array()
        .and_then(|all| all.iter().find(|s| pick(s)))
        .cloned()
    else {
        return Ok(None);
    };
    let flag = |key: &str| {
        server[key]
            .as_bool()
            .or(server["settings"][key].as_bool())
            .unwrap_or(false)
    };
    if !flag("is_usable") || !flag("is_reachable") {
        return Err(permanent(format!(
            "Coolify server `{name}` is not usable and reachable; check it in Coolify's Servers page"
        )));
    }
    if server["settings"]["is_build_server"].as_bool() == Some(true) {
        return Err(permanent(format!(
            "Coolify server `{name}` is a build server and cannot host apps"
        )));
    }
    let text = |key: &str| server[key].as_str().unwrap_or_default().to_owned();
    Ok(Some((text("uuid"), text("ip"))))
}

/// Coolify stores an application's domains only where the server's proxy should run
/// (`ApplicationsController::update_by_uuid` checks `Server::isProxyShouldRun()`: a proxy
/// type other than NONE, on a server that is not a build server); elsewhere a PATCH drops
/// them without a word and every apply would send it again. The proxy is shown only by
/// `GET /servers/{uuid}`, read when the domains are about to change.
fn check_proxy(server: &str) -> Result<(), ProviderError> {
    let Some((uuid, _)) = find_server(server)? else {
        return Ok(());
    };
    let detail = api::json(&api()?, Method::Get, &format!("/servers/{uuid}"), None)?;
    let proxy = detail["proxy"]["type"].as_str().unwrap_or_default();
    if proxy.eq_ignore_ascii_case("none") {
        return Err(permanent(format!(
            "Coolify server `{server}` runs no proxy (its proxy type is None), and Coolify keeps no domain of an application on such a server: the new domains would be dropped. Choose Traefik or Caddy in Coolify (Servers → {server} → Proxy), then apply again"
        )));
    }
    Ok(())
}

/// The server's Docker destinations (`GET /servers/{uuid}/destinations`,
/// DestinationsController::index_by_server); `None` on a Coolify without that endpoint.
fn destinations(server: &str) -> Result<Option<Vec<Value>>, ProviderError> {
    if let Some(known) = STATE.with(|s| s.borrow().destinations.get(server).cloned()) {
        return Ok(known);
    }
    let found = match api::call(
        &api()?,
        Method::Get,
        &format!("/servers/{server}/destinations"),
        None,
    ) {
        Ok(reply) => Some(reply.json()?.as_array().cloned().unwrap_or_default()),
        Err(f) if f.status == 404 => None,
        Err(f) => return Err(f.error),
    };
    STATE.with(|s| {
        s.borrow_mut()
            .destinations
            .insert(server.to_owned(), found.clone())
    });
    Ok(found)
}

fn describe_destinations(list: &[Value]) -> String {
    list.iter()
        .map(|d| {
            format!(
                "`{}` (network {}, uuid {})",
                d["name"].as_str().unwrap_or("?"),
                d["network"].as_str().unwrap_or("?"),
                d["uuid"].as_str().unwrap_or("?")
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The `destination_uuid` to send on create, decided before anything is created.
///
/// Coolify ignores the field when the server has one destination and refuses the create
/// when it has several and none is named (400 "Server has multiple destinations and you
/// do not set destination_uuid.", ApplicationsController::create_application and
/// ServicesController::create_service).
fn destination_for(
    server_name: &str,
    server: &str,
    wanted: Option<&str>,
) -> Result<Option<String>, ProviderError> {
    let Some(list) = destinations(server)? else {
        // An older Coolify cannot list them: a named one is passed as given.
        return Ok(wanted.map(str::to_owned));
    };
    let field = |d: &Value, key: &str| d[key].as_str().unwrap_or_default().to_owned();
    match wanted {
        Some(wanted) => list
            .iter()
            .find(|d| {
                [field(d, "uuid"), field(d, "name"), field(d, "network")]
                    .contains(&wanted.to_owned())
            })
            .map(|d| Some(field(d, "uuid")))
            .ok_or_else(|| {
                permanent(format!(
                    "Coolify server `{server_name}` has no destination `{wanted}`; it has {}",
                    describe_destinations(&list)
                ))
            }),
        None if list.len() > 1 => Err(permanent(format!(
            "Coolify server `{server_name}` has several destinations ({}); name one with `coolify.destination` in the spec",
            describe_destinations(&list)
        ))),
        None => Ok(None),
    }
}

/// The project's uuid; created when `create` is set.
/// The uuid of the project `name` from the projects already read (the prefetch): never a
/// call of its own.
fn cached_project_uuid(name: &str) -> Option<String> {
    STATE.with(|s| oldest_named(s.borrow().projects.as_ref()?, name))
}

fn project_uuid(name: &str, create: bool) -> Result<Option<String>, ProviderError> {
    let cached = STATE.with(|s| s.borrow().projects.clone());
    let projects = match cached {
        Some(projects) => projects,
        None => {
            let projects = api::json(&api()?, Method::Get, "/projects", None)?;
            STATE.with(|s| s.borrow_mut().projects = Some(projects.clone()));
            projects
        }
    };
    if let Some(uuid) = oldest_named(&projects, name) {
        return Ok(Some(uuid));
    }
    if !create {
        return Ok(None);
    }
    // Coolify's project names are not unique: another app of the apply may have
    // created it since this instance read the list (the host runs the first create of
    // a role alone for that reason). Two applies in two processes can still race here;
    // every reader then uses the oldest of the name.
    let projects = api::json(&api()?, Method::Get, "/projects", None)?;
    STATE.with(|s| s.borrow_mut().projects = Some(projects.clone()));
    if let Some(uuid) = oldest_named(&projects, name) {
        // Not there when this instance first read the list: another app of the apply
        // created it a moment ago, with its `production` environment.
        STATE.with(|s| s.borrow_mut().new_projects.insert(uuid.clone()));
        return Ok(Some(uuid));
    }
    let created = api::json(
        &api()?,
        Method::Post,
        "/projects",
        Some(&json!({ "name": name, "description": CREATED_BY_FABRIK })),
    )?;
    let uuid = created["uuid"].as_str().map(str::to_owned);
    if let Some(uuid) = &uuid {
        STATE.with(|s| {
            let mut state = s.borrow_mut();
            state.new_projects.insert(uuid.clone());
            if let Some(Value::Array(all)) = state.projects.as_mut() {
                all.push(json!({ "name": name, "uuid": uuid }));
            }
        });
    }
    Ok(uuid)
}

/// The uuid of the oldest project named `name` (the lowest id; list order otherwise).
fn oldest_named(projects: &Value, name: &str) -> Option<String> {
    projects
        .as_array()?
        .iter()
        .filter(|p| p["name"].as_str() == Some(name))
        .min_by_key(|p| p["id"].as_u64().unwrap_or(u64::MAX))
        .and_then(|p| p["uuid"].as_str())
        .map(str::to_owned)
}

/// Makes sure `environment` exists in the project. Coolify creates `production` with
/// every project (coollabsio/coolify app/Models/Project.php, `booted`: `static::created`
/// creates the `production` Environment), so a project this instance just created is
/// not asked.
fn ensure_environment(project: &str, environment: &str) -> Result<(), ProviderError> {
    let known = STATE.with(|s| {
        let state = s.borrow();
        (environment == "production" && state.new_projects.contains(project))
            || state
                .environments
                .contains(&(project.to_owned(), environment.to_owned()))
    });
    if known {
        return Ok(());
    }
    let list = api::json(
        &api()?,
        Method::Get,
        &format!("/projects/{project}/environments"),
        None,
    )?;
    if list
        .as_array()
        .is_some_and(|all| all.iter().any(|e| e["name"].as_str() == Some(environment)))
    {
        return Ok(());
    }
    match api::call(
        &api()?,
        Method::Post,
        &format!("/projects/{project}/environments"),
        Some(&json!({ "name": environment })),
    ) {
        // Marked as Fabrik's, so that `destroy` may remove it once empty: the create
        // takes only a name (`ProjectController::create_environment`), the description
        // is set by `update_environment`.
        Ok(_) => api::call(
            &api()?,
            Method::Patch,
            &format!("/projects/{project}/environments/{environment}"),
            Some(&json!({ "description": CREATED_BY_FABRIK })),
        )
        .map(drop)
        .map_err(|f| f.error),
        Err(f) if f.status == 409 => Ok(()),
        Err(f) => Err(f.error),
    }
}

/// An image reference as Coolify stores it: `docker_registry_image_name` and
/// `docker_registry_image_tag`.
///
/// Only create parses a reference (`DockerImageParser`); `PATCH /applications/{uuid}`
/// validates the name with `dockerImageNameRules()`, which has no tag part and admits a
/// digest only as a bare `@sha256` suffix, and the tag with `dockerImageTagRules()`, which
/// has no `:` (coollabsio/coolify app/Support/ValidationPatterns.php,
/// `DOCKER_IMAGE_NAME_PATTERN`; app/Services/DockerImageParser.php). So the provider splits
/// the reference itself, as the parser does: `repo@sha256:<hex>` is name `repo@sha256`
/// and tag `<hex>` (the deploy job pulls `name:tag`, i.e. `repo@sha256:<hex>`);
/// `repo:tag` is name `repo` and tag `tag`; a bare `repo` is tag `latest`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ImageParts {
    name: String,
    tag: String,
}

impl ImageParts {
    fn parse(reference: &str) -> Self {
        if let Some((name, digest)) = reference.split_once("@sha256:") {
            return Self {
                name: format!("{name}@sha256"),
                tag: digest.to_owned(),
            };
        }
        let last_slash = reference.rfind('/').map_or(0, |i| i + 1);
        match reference[last_slash..].rfind(':') {
            Some(i) => Self {
                name: reference[..last_slash + i].to_owned(),
                tag: reference[last_slash + i + 1..].to_owned(),
            },
            None => Self {
                name: reference.to_owned(),
                tag: "latest".to_owned(),
            },
        }
    }

    /// The reference Coolify deploys (`ApplicationDeploymentJob::generate_image_names`):
    /// `name:tag`, where a name ending in `@sha256` makes it a digest; a tag written as
    /// `sha256-<hex>` is a digest too.
    fn reference(name: &str, tag: &str) -> String {
        if tag.is_empty() {
            return format!("{name}:latest");
        }
        if let Some(hex) = tag.strip_prefix("sha256-") {
            return format!("{}@sha256:{hex}", name.trim_end_matches("@sha256"));
        }
        format!("{name}:{tag}")
    }
}

fn plural(kind: &str) -> &'static str {
    if kind == "service" {
        "services"
    } else {
        "applications"
    }
}

fn to_resource(kind: &str, value: &Value, env: Option<BTreeMap<String, Value>>) -> Resource {
    let text = |key: &str| value[key].as_str().unwrap_or_default().to_owned();
    let description = text("description");
    // An application's domains are its `fqdn`; a service has none of its own: they are
    // the `fqdn` of its compose services, `applications[]` (ServicesController::
    // service_by_uuid).
    let fqdns: Vec<String> = if kind == "service" {
        value["applications"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a["fqdn"].as_str().map(str::to_owned))
            .collect()
    } else {
        vec![text("fqdn")]
    };
    let domains: Vec<String> = fqdns
        .iter()
        .flat_map(|f| f.split(','))
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(str::to_owned)
        .collect();
    let mut live = json!({ "domains": domains, "status": value["status"] });
    if kind == "application" {
        live["image"] = json!(ImageParts::reference(
            &text("docker_registry_image_name"),
            &text("docker_registry_image_tag")
        ));
        live["port"] = json!(
            text("ports_exposes")
                .split(',')
                .next()
                .and_then(|p| p.parse::<u16>().ok())
        );
    }
    if let Some(env) = env {
        live["env_keys"] = json!(env.keys().collect::<Vec<_>>());
        live["env"] = json!(env);
    }
    let uuid = text("uuid");
    Resource {
        kind: kind.to_owned(),
        id: uuid.clone(),
        name: text("name"),
        owner: (!description.is_empty()).then_some(description),
        live: live.to_string(),
        outputs: json!({ "uuid": uuid }).to_string(),
    }
}

/// Keys Coolify generates: its compose parser stores `SERVICE_FQDN_*`, `SERVICE_URL_*`,
/// `SERVICE_PASSWORD_*`, `SERVICE_USER_*`, `SERVICE_BASE64_*` and more for every magic
/// variable a compose file names (coollabsio/coolify bootstrap/helpers/parsers.php).
/// Every `SERVICE_` name is Coolify's: deleting a password would make Coolify generate a
/// new one under an existing volume. The spec validator reserves the prefix.
fn is_generated(key: &str) -> bool {
    key.starts_with("SERVICE_")
}

/// The rows the bulk upsert writes for `env`: every key with the full flag set (a flag
/// left out would be reset). An application's preview copies (created by Coolify with
/// every new variable, never updated with it: EnvironmentVariable::booted) are kept
/// equal too, so a removed or rotated secret leaves no old value behind.
fn env_rows(kind: &str, env: &BTreeMap<String, String>) -> Vec<Value> {
    let previews: &[bool] = if kind == "application" {
        &[false, true]
    } else {
        &[false]
    };
    previews
        .iter()
        .flat_map(|preview| env.iter().map(move |(key, value)| (*preview, key, value)))
        .map(|(preview, key, value)| {
            let mut item = json!({
                "key": key,
                "value": value,
                "is_literal": true,
                "is_multiline": value.contains('\n'),
                "is_shown_once": false,
                "is_runtime": true,
                "is_buildtime": false,
            });
            if kind == "application" {
                item["is_preview"] = json!(preview);
            }
            item
        })
        .collect()
}

/// Whether `current` (an env list as read) already holds every row of `rows`, values
/// and flags: then the upsert would change nothing. A value Coolify does not show (a
/// token without `read:sensitive`) never matches.
fn env_holds(current: &Value, rows: &[Value]) -> bool {
    let Some(current) = current.as_array() else {
        return false;
    };
    rows.iter().all(|row| {
        let preview = row["is_preview"].as_bool().unwrap_or(false);
        current.iter().any(|have| {
            have["key"] == row["key"]
                && have["is_preview"].as_bool().unwrap_or(false) == preview
                && row
                    .as_object()
                    .into_iter()
                    .flatten()
                    .filter(|(field, _)| *field != "key" && *field != "is_preview")
                    .all(|(field, want)| have[field] == *want)
        })
    })
}

/// Makes the resource's environment exactly `env`: bulk upsert, then delete keys the
/// spec no longer has. The list the deletions are decided on is the one read just before
/// (`read`), else it is read alongside the upsert (one round trip for both: the upsert
/// does not depend on it, and keys it writes are never deleted). An upsert that would
/// change nothing is not sent.
fn sync_env(
    kind: &str,
    uuid: &str,
    env: &BTreeMap<String, String>,
    compose: Option<&str>,
) -> Result<(), ProviderError> {
    // Rows the compose parser makes would come back at the next start.
    let parsed = compose.map(compose_env::parser_keys).unwrap_or_default();
    let api = api()?;
    let path = format!("/{}/{uuid}/envs", plural(kind));
    let known = STATE.with(|s| s.borrow_mut().envs.remove(uuid));
    let rows = env_rows(kind, env);
    let upsert =
        (!rows.is_empty() && !known.as_ref().is_some_and(|c| env_holds(c, &rows))).then(|| {
            api::request(
                &api,
                Method::Patch,
                &format!("{path}/bulk"),
                Some(&json!({ "data": rows })),
            )
        });
    let current = match (known, upsert) {
        (Some(current), Some(upsert)) => {
            api::answer(upsert.send()).map_err(|f| f.error)?;
            current
        }
        (Some(current), None) => current,
        (None, Some(upsert)) => {
            let mut answers = http::send_many(vec![upsert, api.get(&path)]).into_iter();
            let (Some(upserted), Some(listed)) = (answers.next(), answers.next()) else {
                return Err(permanent("the host answered fewer requests than were sent"));
            };
            api::answer(upserted).map_err(|f| f.error)?;
            api::answer(listed).map_err(|f| f.error)?.json()?
        }
        (None, None) => api::json(&api, Method::Get, &path, None)?,
    };
    for existing in current.as_array().into_iter().flatten() {
        let key = existing["key"].as_str().unwrap_or_default();
        if env.contains_key(key) || is_generated(key) || parsed.contains(key) {
            continue;
        }
        if let Some(env_uuid) = existing["uuid"].as_str() {
            match api::call(&api, Method::Delete, &format!("{path}/{env_uuid}"), None) {
                Ok(_) => {}
                Err(f) if f.status == 404 => {}
                Err(f) => return Err(f.error),
            }
        }
    }
    Ok(())
}

/// `POST /deploy` (see `deploy_and_read`).
///
/// Always `force: true`. Without it, `queue_application_deployment`
/// (coollabsio/coolify bootstrap/helpers/applications.php) skips queueing while a
/// deployment of the same application and commit is queued or running (the commit of a
/// docker-image application is always `HEAD`), and `DeployController::deploy_resource`
/// still answers with a fresh deployment uuid that it never stored: the new image and
/// env would not be deployed, and the run would follow someone else's deployment. Forced,
/// a row is always created; for a docker image the only cost is no build cache, which a
/// pull does not use.
fn deploy_request(api: &Api, uuid: &str) -> fabrik_provider_sdk::http::Request {
    api::request(
        api,
        Method::Post,
        "/deploy",
        Some(&json!({ "uuid": uuid, "force": true })),
    )
    // A service's deploy parses its compose and starts it over SSH before Coolify
    // answers (`DeployController::deploy_resource`): longer than a read may take. The
    // host allows a changing request 120 s and the call 150 s.
    .timeout_ms(DEPLOY_TIMEOUT_MS)
}

/// How long a `POST /deploy` may take to answer.
const DEPLOY_TIMEOUT_MS: u32 = 100_000;

/// Deploys the resource and reads it back in one round trip: the read does not depend on
/// the deployment (it reads the settings and env just written). Returns the deployment
/// uuid of an application and the resource.
///
/// `written_env` is the env list when this instance knows it without reading it: the
/// rows it just upserted into a resource it just created (which holds no other row of
/// Fabrik's). Every request counts against Coolify's rate limit, shared by all the apps
/// of an apply.
fn deploy_and_read(
    kind: &str,
    uuid: &str,
    written_env: Option<Value>,
) -> Result<(Option<String>, Resource), ProviderError> {
    let api = api()?;
    let plural = plural(kind);
    let mut requests = vec![
        deploy_request(&api, uuid),
        api.get(&format!("/{plural}/{uuid}")),
    ];
    if written_env.is_none() {
        requests.push(api.get(&format!("/{plural}/{uuid}/envs")));
    }
    let mut answers = http::deliver_many(requests).into_iter();
    let (Some(deployed), Some(detail)) = (answers.next(), answers.next()) else {
        return Err(permanent("the host answered fewer requests than were sent"));
    };
    let envs = match written_env {
        Some(envs) => Ok(envs),
        None => match answers.next() {
            Some(answer) => api::answer(answer.into_result())
                .map_err(|f| f.error)
                .and_then(|r| r.json()),
            None => return Err(permanent("the host answered fewer requests than were sent")),
        },
    };
    let deployment = deployment_of(kind, uuid, deployed)?;
    let resource = resource_from(kind, uuid, api::answer(detail.into_result()), envs)?
        .ok_or_else(|| permanent(format!("the {kind} {uuid} cannot be read back")))?;
    Ok((deployment, resource))
}

/// What `POST /deploy` did for `uuid`: its answer says, or, when it has none that says
/// (no answer in time, a gateway's 502 or 504, Coolify's own 500 after it may have
/// queued), Coolify is asked before anything is sent again (`unanswered_deploy`).
fn deployment_of(
    kind: &str,
    uuid: &str,
    deployed: Delivery,
) -> Result<Option<String>, ProviderError> {
    let (error, status) = match deployed {
        Delivery::Answered(response) => {
            let status = response.status;
            match api::answer(Ok(response)) {
                Ok(reply) => return deployed_uuid(kind, uuid, &reply.json()?),
                Err(f) if matches!(status, 500 | 502 | 504) => (f.error, Some(status)),
                Err(f) => return Err(f.error),
            }
        }
        Delivery::Unanswered(error) => (error, None),
        Delivery::NotSent(error) => return Err(error),
    };
    unanswered_deploy(kind, uuid, error, status)
}

/// A `POST /deploy` that may have been acted on without saying so is never sent again
/// blind (two deployments of one configuration, a service restarted twice).
///
/// An application's deployment is queued before Coolify answers
/// (`queue_application_deployment`): if its newest deployment is queued or in progress,
/// that is this request's, and it is followed. Otherwise nothing was queued, and the
/// error stands (the engine retries the call).
///
/// A service is started before Coolify answers (`DeployController::deploy_resource` →
/// `StartService::run`), and nothing it shows tells a start that happened from one that
/// did not (its `config_hash` changes only with its images, domains and env). A request
/// that timed out, or that a gateway timed out (504), reached Coolify, which goes on
/// with it: it is taken as sent and the service's status is followed; sending it again
/// would recreate its containers a second time. Any other failure is retried.
fn unanswered_deploy(
    kind: &str,
    uuid: &str,
    error: ProviderError,
    status: Option<u16>,
) -> Result<Option<String>, ProviderError> {
    let reason = match status {
        Some(status) => format!("{status} from Coolify or a gateway before it"),
        None => "no answer in time".to_owned(),
    };
    if kind == "service" {
        if !matches!(status, None | Some(504)) {
            return Err(error);
        }
        fabrik_provider_sdk::log(
            LogLevel::Warn,
            &format!(
                "POST /deploy of service {uuid} got {reason}: Coolify starts a service before it answers, so the start is taken as sent and the service's status followed, not sent again"
            ),
        );
        STATE.with(|s| {
            s.borrow_mut()
                .deployments
                .insert(uuid.to_owned(), String::new())
        });
        return Ok(None);
    }
    let newest = api::json(
        &api()?,
        Method::Get,
        &format!("/deployments/applications/{uuid}?skip=0&take=1"),
        None,
    )?;
    let queued = newest["deployments"]
        .as_array()
        .and_then(|list| list.first())
        .filter(|d| matches!(d["status"].as_str(), Some("queued" | "in_progress")))
        .and_then(|d| d["deployment_uuid"].as_str());
    let Some(deployment) = queued else {
        fabrik_provider_sdk::log(
            LogLevel::Info,
            &format!(
                "POST /deploy of application {uuid} got {reason} and Coolify has no queued or running deployment of it: it will be sent again"
            ),
        );
        return Err(error);
    };
    fabrik_provider_sdk::log(
        LogLevel::Info,
        &format!(
            "POST /deploy of application {uuid} got {reason}; Coolify has queued deployment {deployment}: following it, not deploying again"
        ),
    );
    STATE.with(|s| {
        s.borrow_mut()
            .deployments
            .insert(uuid.to_owned(), deployment.to_owned())
    });
    Ok(Some(deployment.to_owned()))
}

/// What `POST /deploy` answered for `uuid`; remembers an application's deployment.
fn deployed_uuid(kind: &str, uuid: &str, reply: &Value) -> Result<Option<String>, ProviderError> {
    let entry = reply["deployments"]
        .as_array()
        .and_then(|d| d.iter().find(|e| e["resource_uuid"].as_str() == Some(uuid)))
        .cloned()
        .unwrap_or(Value::Null);
    if kind == "service" {
        STATE.with(|s| {
            s.borrow_mut()
                .deployments
                .insert(uuid.to_owned(), String::new())
        });
        return Ok(None);
    }
    // A 200 without a deployment uuid is how Coolify reports a per-resource refusal.
    let Some(deployment) = entry["deployment_uuid"].as_str().filter(|d| !d.is_empty()) else {
        return Err(permanent(format!(
            "Coolify did not queue a deployment for application {uuid}: {}",
            entry["message"]
                .as_str()
                .unwrap_or("no deployment uuid in the answer")
        )));
    };
    STATE.with(|s| {
        s.borrow_mut()
            .deployments
            .insert(uuid.to_owned(), deployment.to_owned())
    });
    Ok(Some(deployment.to_owned()))
}

/// Reads a resource and its environment: the keys, and each value where Coolify shows it
/// (only to tokens with `read:sensitive`; otherwise `null`). Preview copies and Coolify's
/// own `SERVICE_` variables are left out. The host compares this with the desired state
/// to find drift; it never stores or prints it.
fn read_resource(kind: &str, uuid: &str) -> Result<Option<Resource>, ProviderError> {
    let api = api()?;
    let plural = plural(kind);
    // The detail and the env list in one round trip.
    let mut answers = http::send_many(vec![
        api.get(&format!("/{plural}/{uuid}")),
        api.get(&format!("/{plural}/{uuid}/envs")),
    ])
    .into_iter();
    let (Some(detail), Some(envs)) = (answers.next(), answers.next()) else {
        return Err(permanent("the host answered fewer requests than were sent"));
    };
    resource_from(
        kind,
        uuid,
        api::answer(detail),
        api::answer(envs)
            .map_err(|f| f.error)
            .and_then(|r| r.json()),
    )
}

/// The resource from its detail and env list as read (`None` if it does not exist); both
/// are kept for the next write of this instance (`update`, `sync_env`).
fn resource_from(
    kind: &str,
    uuid: &str,
    detail: Result<api::Reply, api::Failure>,
    envs: Result<Value, ProviderError>,
) -> Result<Option<Resource>, ProviderError> {
    let value = match detail {
        Ok(reply) => reply.json()?,
        Err(f) if f.status == 404 => return Ok(None),
        Err(f) => return Err(f.error),
    };
    let envs = envs?;
    // Rows the compose parser created and Fabrik never wrote (Fabrik's are literal) are
    // Coolify's, like its generated `SERVICE_` ones: not an edit by hand. The compose is
    // shown only to tokens with `read:sensitive`, as are the values.
    let parsed = value["docker_compose_raw"]
        .as_str()
        .map(compose_env::parser_keys)
        .unwrap_or_default();
    let env: BTreeMap<String, Value> = envs
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["is_preview"].as_bool() != Some(true))
        .filter_map(|e| {
            let key = e["key"].as_str()?;
            let parsers = parsed.contains(key) && e["is_literal"].as_bool() != Some(true);
            (!is_generated(key) && !parsers).then(|| (key.to_owned(), e["value"].clone()))
        })
        .collect();
    let resource = to_resource(kind, &value, Some(env));
    STATE.with(|s| {
        let mut state = s.borrow_mut();
        state.envs.insert(uuid.to_owned(), envs);
        state.details.insert(uuid.to_owned(), value);
    });
    Ok(Some(resource))
}

/// Whether `detail` (as read) already has the settings `update` would send, so that the
/// PATCH can be left out. Only what the detail shows counts: a service's compose is shown
/// only to tokens with `read:sensitive` (`Service::$hidden`), and without it the PATCH is
/// always sent.
fn settings_hold(kind: &str, detail: &Value, desired: &Desired) -> bool {
    let domains = desired.domains.join(",");
    if kind == "application" {
        let image = ImageParts::parse(desired.image.as_deref().unwrap_or_default());
        return detail["docker_registry_image_name"].as_str() == Some(image.name.as_str())
            && detail["docker_registry_image_tag"].as_str() == Some(image.tag.as_str())
            && detail["ports_exposes"].as_str() == desired.port.map(|p| p.to_string()).as_deref()
            && detail["fqdn"].as_str().unwrap_or_default() == domains;
    }
    let (Some(raw), Some(compose), Some(service)) = (
        detail["docker_compose_raw"].as_str(),
        desired.compose.as_deref(),
        desired.service.as_deref(),
    ) else {
        return false;
    };
    same_compose(raw, compose)
        && detail["applications"].as_array().is_some_and(|apps| {
            apps.iter().any(|a| {
                a["name"].as_str() == Some(service)
                    && a["fqdn"].as_str().unwrap_or_default() == domains
            })
        })
}

/// Whether the compose Coolify holds says what Fabrik sent. Coolify stores
/// `docker_compose_raw` re-dumped by Symfony's YAML (`ServicesController::create_service`
/// and `update_by_uuid`: `Yaml::dump(Yaml::parse(…))`, again in `serviceParser`): quoting,
/// indentation and multi-line strings change, so the texts never match; the documents
/// are compared instead.
fn same_compose(stored: &str, sent: &str) -> bool {
    match (
        serde_yaml::from_str::<Value>(stored),
        serde_yaml::from_str::<Value>(sent),
    ) {
        (Ok(stored), Ok(sent)) => stored == sent,
        _ => stored == sent,
    }
}

fn with_deployment(mut resource: Resource, deployment: Option<String>) -> Resource {
    if let Some(deployment) = deployment {
        resource.outputs =
            json!({ "uuid": resource.id, "deployment_uuid": deployment }).to_string();
    }
    resource
}

/// The Coolify page of the project `project` (a uuid) in the web UI: the API's base URL
/// without its `/api/v1` (routes/web.php, `project/{project_uuid}`). The resource's own
/// page also needs its environment's uuid, which costs a call: the project page lists
/// it one click away.
fn project_page(project: &str) -> Option<String> {
    let api = api().ok()?;
    let base = api.base().trim_end_matches('/');
    let origin = base
        .strip_suffix("/api/v1")
        .or_else(|| base.strip_suffix("/api"))
        .unwrap_or(base);
    Some(format!("{origin}/project/{project}"))
}

/// `resource` with the page of its project among its outputs, when it is known without
/// a call.
fn with_page(mut resource: Resource, project: Option<&str>) -> Resource {
    if let Some(page) = project.and_then(project_page)
        && let Ok(mut outputs) = serde_json::from_str::<Value>(&resource.outputs)
        && let Some(map) = outputs.as_object_mut()
    {
        map.insert("page".to_owned(), json!(page));
        resource.outputs = outputs.to_string();
    }
    resource
}

fn deployment_progress(status: &str, detail: &str) -> ProgressReport {
    let (state, message) = match status {
        "queued" => (ProgressState::Pending, "deployment queued".to_owned()),
        "in_progress" => (ProgressState::Running, "deployment in progress".to_owned()),
        "finished" => (ProgressState::Ready, "deployment finished".to_owned()),
        "failed" => (
            ProgressState::Failed,
            format!("deployment failed ({detail})"),
        ),
        "cancelled-by-user" => (
            ProgressState::Failed,
            format!("deployment cancelled in Coolify ({detail})"),
        ),
        other => (
            ProgressState::Running,
            format!("deployment status `{other}`"),
        ),
    };
    ProgressReport {
        state,
        message: Some(message),
    }
}

fn application_progress(uuid: &str) -> Result<ProgressReport, ProviderError> {
    let known = STATE.with(|s| s.borrow().deployments.get(uuid).cloned());
    if let Some(deployment) = known.filter(|d| !d.is_empty()) {
        match api::call(
            &api()?,
            Method::Get,
            &format!("/deployments/{deployment}"),
            None,
        ) {
            Ok(reply) => {
                let value = reply.json()?;
                return Ok(deployment_progress(
                    value["status"].as_str().unwrap_or(""),
                    &format!("deployment {deployment}"),
                ));
            }
            // Coolify answered `POST /deploy` with this uuid but has no such deployment:
            // it did not queue one (the de-duplication quirk). Following the newest
            // deployment instead could report someone else's, with the old configuration.
            Err(f) if f.status == 404 => {
                return Ok(ProgressReport {
                    state: ProgressState::Failed,
                    message: Some(format!(
                        "Coolify answered deployment {deployment} but has no such deployment: it did not queue this configuration"
                    )),
                });
            }
            Err(f) => return Err(f.error),
        }
    }
    let list = api::json(
        &api()?,
        Method::Get,
        &format!("/deployments/applications/{uuid}?skip=0&take=1"),
        None,
    )?;
    let Some(latest) = list["deployments"]
        .as_array()
        .and_then(|d| d.first())
        .cloned()
    else {
        return Ok(ProgressReport {
            state: ProgressState::Failed,
            message: Some(format!("Coolify has no deployment for application {uuid}")),
        });
    };
    let id = latest["deployment_uuid"].as_str().unwrap_or("?").to_owned();
    Ok(deployment_progress(
        latest["status"].as_str().unwrap_or(""),
        &format!("deployment {id}"),
    ))
}

fn service_progress(uuid: &str) -> Result<ProgressReport, ProviderError> {
    let value = api::json(&api()?, Method::Get, &format!("/services/{uuid}"), None)?;
    let status = value["status"].as_str().unwrap_or("unknown").to_owned();
    let (state, message) = if status.starts_with("running:") {
        (ProgressState::Ready, format!("service is {status}"))
    } else if status.starts_with("starting") || status.starts_with("restarting") {
        (ProgressState::Running, format!("service is {status}"))
    } else if status.starts_with("degraded") {
        // Coolify's aggregate (app/Services/ContainerStatusAggregator.php) reports
        // `degraded` while a container restarts, or when one exited while the others run:
        // often a start in progress. Keep following it; the host's deploy timeout bounds
        // the wait, and this message says what to change if it never clears.
        (
            ProgressState::Running,
            format!(
                "service is {status}: a container is restarting or has exited while others run (a one-shot container needs `restart: \"no\"` or `exclude_from_hc: true` in the compose for Coolify to leave it out of the status)"
            ),
        )
    } else {
        // `exited` right after a start is the status job lagging: keep waiting.
        (ProgressState::Pending, format!("service is {status}"))
    };
    Ok(ProgressReport {
        state,
        message: Some(message),
    })
}

struct Coolify;

impl Provider for Coolify {
    fn describe() -> ProviderInfo {
        ProviderInfo {
            name: "coolify".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            description: "Coolify applications, services and deployments".to_owned(),
            kinds: vec![
                "server".to_owned(),
                "application".to_owned(),
                "service".to_owned(),
            ],
            config: vec![
                ConfigKey {
                    name: "base-url".to_owned(),
                    description: "Coolify API base URL, e.g. https://coolify.example.com/api/v1"
                        .to_owned(),
                    secret: false,
                    required: true,
                },
                ConfigKey {
                    name: "api-token".to_owned(),
                    description: "Coolify API token (Keys & Tokens; abilities read, write, deploy)"
                        .to_owned(),
                    secret: true,
                    required: true,
                },
            ],
            default_origins: Vec::new(),
            // `API_RATE_LIMIT`, 200 a minute per user unless the instance sets another
            // (coollabsio/coolify config/api.php; app/Providers/RouteServiceProvider.php,
            // `configureRateLimiting`). The host learns another value from the
            // `X-RateLimit-Limit` header Laravel's throttle sends.
            rate_limit: Some(RateLimit {
                requests: 200,
                window_seconds: 60,
            }),
        }
    }

    fn configure(config: Vec<(String, String)>) -> Result<(), ProviderError> {
        let config = Config::new(config);
        if config.get("base-url").is_none_or(str::is_empty) {
            return Err(ProviderError::InvalidConfig(
                "`base-url` is required: the Coolify API URL, e.g. https://coolify.example.com/api/v1".to_owned(),
            ));
        }
        let base = config.base_url("")?;
        STATE.with(|s| {
            *s.borrow_mut() = State {
                api: Some(Api::new("Coolify", base).bearer("api-token")),
                ..State::default()
            };
        });
        Ok(())
    }

    fn read(kind: String, id: String) -> Result<Option<Resource>, ProviderError> {
        match kind.as_str() {
            "application" | "service" => read_resource(&kind, &id),
            "server" => {
                prefetch()?;
                let Some((uuid, ip)) =
                    server_where(&id, |s| s["uuid"].as_str() == Some(id.as_str()))?
                else {
                    return Ok(None);
                };
                server_resource(kind, &uuid, &ip, true).map(Some)
            }
            other => Err(permanent(format!(
                "the Coolify provider cannot read `{other}`"
            ))),
        }
    }

    fn create(
        kind: String,
        name: String,
        desired: String,
        owner: String,
    ) -> Result<Resource, ProviderError> {
        let desired = parse_desired(&kind, &desired)?;
        prefetch()?;
        check_version()?;
        written(None);
        let Some((server, _ip)) = find_server(&desired.server)? else {
            return Err(permanent(format!(
                "Coolify has no server named `{}`",
                desired.server
            )));
        };
        // Before anything is created: a create Coolify would refuse must not leave a new
        // project or environment behind.
        let destination =
            destination_for(&desired.server, &server, desired.destination.as_deref())?;
        let project = project_uuid(&desired.project, true)?
            .ok_or_else(|| permanent("Coolify did not return the new project's uuid"))?;
        ensure_environment(&project, &desired.environment)?;
        let created = if kind == "application" {
            let image = ImageParts::parse(desired.image.as_deref().unwrap_or_default());
            let mut body = json!({
                "project_uuid": project,
                "server_uuid": server,
                "environment_name": desired.environment,
                "name": name,
                "description": owner,
                "docker_registry_image_name": image.name,
                "docker_registry_image_tag": image.tag,
                "ports_exposes": desired.port.map(|p| p.to_string()),
                "domains": desired.domains.join(","),
                "autogenerate_domain": false,
                "instant_deploy": false,
            });
            if let Some(destination) = &destination {
                body["destination_uuid"] = json!(destination);
            }
            api::json(
                &api()?,
                Method::Post,
                "/applications/dockerimage",
                Some(&body),
            )?
        } else {
            let compose = desired.compose.clone().unwrap_or_default();
            let mut body = json!({
                "project_uuid": project,
                "server_uuid": server,
                "environment_name": desired.environment,
                "name": name,
                "description": owner,
                "docker_compose_raw": base64::engine::general_purpose::STANDARD.encode(compose),
                "urls": [{ "name": desired.service, "url": desired.domains.join(",") }],
                "instant_deploy": false,
            });
            if let Some(destination) = &destination {
                body["destination_uuid"] = json!(destination);
            }
            api::json(&api()?, Method::Post, "/services", Some(&body))?
        };
        let uuid = created["uuid"]
            .as_str()
            .ok_or_else(|| {
                permanent(format!(
                    "Coolify created the {kind} but returned no uuid: {created}"
                ))
            })?
            .to_owned();
        // Environment first, then the deployment: otherwise it would start without them.
        // A resource just created holds no variable of Fabrik's: nothing to read before
        // the upsert, nothing to delete after it.
        STATE.with(|s| s.borrow_mut().envs.insert(uuid.clone(), json!([])));
        sync_env(&kind, &uuid, &desired.env, desired.compose.as_deref())?;
        let written = Value::Array(env_rows(&kind, &desired.env));
        let (deployment, resource) = deploy_and_read(&kind, &uuid, Some(written))?;
        // Those rows lack the uuids a later delete needs: the next write reads the list.
        STATE.with(|s| s.borrow_mut().envs.remove(&uuid));
        Ok(with_page(
            with_deployment(resource, deployment),
            Some(project.as_str()),
        ))
    }

    fn update(kind: String, id: String, desired: String) -> Result<Resource, ProviderError> {
        let desired = parse_desired(&kind, &desired)?;
        prefetch()?;
        check_version()?;
        let read = STATE.with(|s| s.borrow().details.get(&id).cloned());
        if read
            .as_ref()
            .is_some_and(|detail| settings_hold(&kind, detail, &desired))
        {
            // Only the environment differs (or nothing the detail shows): no PATCH, and
            // the env list read with the detail still holds.
            STATE.with(|s| s.borrow_mut().lists.clear());
            sync_env(&kind, &id, &desired.env, desired.compose.as_deref())?;
            written(Some(&id));
            let (deployment, resource) = deploy_and_read(&kind, &id, None)?;
            let project = cached_project_uuid(&desired.project);
            return Ok(with_page(
                with_deployment(resource, deployment),
                project.as_deref(),
            ));
        }
        let stored = read.as_ref().and_then(|d| d["fqdn"].as_str());
        if kind == "application" && stored != Some(desired.domains.join(",").as_str()) {
            check_proxy(&desired.server)?;
        }
        written(Some(&id));
        let body = if kind == "application" {
            let image = ImageParts::parse(desired.image.as_deref().unwrap_or_default());
            json!({
                "docker_registry_image_name": image.name,
                "docker_registry_image_tag": image.tag,
                "ports_exposes": desired.port.map(|p| p.to_string()),
                "domains": desired.domains.join(","),
            })
        } else {
            json!({
                "docker_compose_raw": base64::engine::general_purpose::STANDARD.encode(desired.compose.clone().unwrap_or_default()),
                "urls": [{ "name": desired.service, "url": desired.domains.join(",") }],
            })
        };
        api::json(
            &api()?,
            Method::Patch,
            &format!("/{}/{id}", plural(&kind)),
            Some(&body),
        )?;
        sync_env(&kind, &id, &desired.env, desired.compose.as_deref())?;
        let (deployment, resource) = deploy_and_read(&kind, &id, None)?;
        let project = cached_project_uuid(&desired.project);
        Ok(with_page(
            with_deployment(resource, deployment),
            project.as_deref(),
        ))
    }

    fn delete(kind: String, id: String, owner: String, purge: bool) -> Result<(), ProviderError> {
        written(Some(&id));
        if kind == "project" {
            return delete_project(&id);
        }
        if kind == "environment" {
            return delete_environment(&id);
        }
        let path = format!("/{}/{id}", plural(&kind));
        let current = match api::call(&api()?, Method::Get, &path, None) {
            Ok(reply) => reply.json()?,
            Err(f) if f.status == 404 => return Ok(()),
            Err(f) => return Err(f.error),
        };
        let description = current["description"].as_str().unwrap_or_default();
        if description != owner {
            return Err(permanent(format!(
                "refusing to delete {kind} `{}` ({id}): its description is {description:?}, not the owner tag `{owner}`",
                current["name"].as_str().unwrap_or("?")
            )));
        }
        // Data survives unless this run created the resource (`purge`).
        let query = format!(
            "?delete_volumes={purge}&delete_configurations=true&docker_cleanup=true&delete_connected_networks=true"
        );
        match api::call(&api()?, Method::Delete, &format!("{path}{query}"), None) {
            Ok(_) => Ok(()),
            Err(f) if f.status == 404 => Ok(()),
            Err(f) => Err(f.error),
        }
    }

    fn progress(kind: String, id: String) -> Result<ProgressReport, ProviderError> {
        match kind.as_str() {
            "application" => application_progress(&id),
            "service" => service_progress(&id),
            other => Err(permanent(format!("`{other}` has no progress to follow"))),
        }
    }

    /// Applications or services whose description starts with the owner prefix. Coolify's
    /// list endpoints return everything at once (no pages).
    fn list(
        kind: String,
        owner_prefix: String,
        _cursor: Option<String>,
    ) -> Result<ResourcePage, ProviderError> {
        // Servers are Coolify's, never created or owned by Fabrik: with an empty prefix,
        // every one (the host names them when a spec's `server` is unknown).
        if kind == "server" {
            if !owner_prefix.is_empty() {
                return Ok(ResourcePage {
                    resources: Vec::new(),
                    next: None,
                });
            }
            prefetch()?;
            let servers = match STATE.with(|s| s.borrow().servers.clone()) {
                Some(servers) => servers,
                None => {
                    let servers = api::json(&api()?, Method::Get, "/servers", None)?;
                    STATE.with(|s| s.borrow_mut().servers = Some(servers.clone()));
                    servers
                }
            };
            let resources = servers
                .as_array()
                .into_iter()
                .flatten()
                .map(|server| {
                    let text = |key: &str| server[key].as_str().unwrap_or_default();
                    server_resource(kind.clone(), text("uuid"), text("ip"), false)
                })
                .collect::<Result<_, _>>()?;
            return Ok(ResourcePage {
                resources,
                next: None,
            });
        }
        if kind != "application" && kind != "service" {
            return Err(permanent(format!(
                "the Coolify provider cannot list `{kind}`"
            )));
        }
        let all = api::json(&api()?, Method::Get, &format!("/{}", plural(&kind)), None)?;
        let resources = all
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| owner::has_prefix(r["description"].as_str(), &owner_prefix))
            .map(|r| to_resource(&kind, r, None))
            .collect();
        Ok(ResourcePage {
            resources,
            next: None,
        })
    }

    fn lookup(
        kind: String,
        name: String,
        owner: String,
        desired: Option<String>,
    ) -> Result<Option<Resource>, ProviderError> {
        prefetch()?;
        if kind == "server" {
            let Some((uuid, ip)) = find_server(&name)? else {
                return Ok(None);
            };
            // Without its destinations: the host reads them (`read`) only when it is about
            // to create a resource, one round trip an update does not need.
            return server_resource(kind, &uuid, &ip, false).map(Some);
        }
        if kind == "project" {
            return project_resource(&name);
        }
        if kind == "environment" {
            return environment_resource(&name);
        }
        if kind != "application" && kind != "service" {
            return Err(permanent(format!(
                "the Coolify provider has no kind `{kind}`"
            )));
        }
        // Coolify's names are not unique, not even within an environment: the place a
        // resource would be created in is where it is looked for, so that a same-named
        // one in another project (another repository's `api`) neither blocks a first
        // deploy nor is taken. Without a desired document (a lookup by name alone), the
        // whole team is searched.
        let place = desired.as_deref().map(placement).transpose()?;
        let Some(candidates) = candidates(&kind, place.as_ref())? else {
            return Ok(None);
        };
        let found: Vec<&Value> = candidates
            .iter()
            .filter(|r| r["name"].as_str() == Some(name.as_str()))
            .collect();
        match owner::ours_first(&found, &owner, |r| r["description"].as_str())
            .and_then(|r| r["uuid"].as_str())
        {
            Some(uuid) => read_resource(&kind, uuid),
            None => Ok(None),
        }
    }
}

/// The Coolify project and environment a desired document places its resource in.
fn placement(desired: &str) -> Result<(String, String), ProviderError> {
    let desired: Value = serde_json::from_str(desired)
        .map_err(|e| permanent(format!("invalid desired document: {e}")))?;
    match (desired["project"].as_str(), desired["environment"].as_str()) {
        (Some(project), Some(environment)) => Ok((project.to_owned(), environment.to_owned())),
        _ => Err(permanent(
            "a desired document names its `project` and `environment`",
        )),
    }
}

/// The applications or services (`kind`) a lookup chooses from: those of the
/// environment `place` names (`GET /projects/{uuid}/{environment}` lists them), or the
/// team's whole list. `None` when the project or environment does not exist: nothing
/// can be there. Read once per instance until it writes.
fn candidates(
    kind: &str,
    place: Option<&(String, String)>,
) -> Result<Option<Vec<Value>>, ProviderError> {
    let plural = plural(kind);
    let path = match place {
        Some((project, environment)) => {
            let Some(uuid) = project_uuid(project, false)? else {
                return Ok(None);
            };
            format!("/projects/{uuid}/{environment}")
        }
        None => format!("/{plural}"),
    };
    let cached = STATE.with(|s| s.borrow().lists.get(&path).cloned());
    let read = match cached {
        Some(read) => read,
        None => {
            let read: Value = match api::call(&api()?, Method::Get, &path, None) {
                Ok(reply) => reply.json()?,
                Err(f) if f.status == 404 && place.is_some() => return Ok(None),
                Err(f) => return Err(f.error),
            };
            if let Some((project, environment)) = place
                && let Some(uuid) = project_uuid(project, false)?
            {
                // It exists: a create there need not ask again.
                STATE.with(|s| {
                    s.borrow_mut()
                        .environments
                        .insert((uuid, environment.clone()))
                });
            }
            STATE.with(|s| s.borrow_mut().lists.insert(path, read.clone()));
            read
        }
    };
    let list = if place.is_some() {
        &read[plural]
    } else {
        &read
    };
    Ok(Some(list.as_array().cloned().unwrap_or_default()))
}

/// What a project Fabrik created says in its description (`nameRules`' sibling
/// `descriptionRules()` admits no `:`, so a project cannot carry an owner tag).
const CREATED_BY_FABRIK: &str = "Created by fabrik";

/// The project `name` as `lookup("project", …)` returns it (for `destroy`): its uuid and
/// whether Fabrik created it (`created_by_fabrik` in outputs); never owned by an app.
fn project_resource(name: &str) -> Result<Option<Resource>, ProviderError> {
    let Some(uuid) = project_uuid(name, false)? else {
        return Ok(None);
    };
    let project = match api::call(&api()?, Method::Get, &format!("/projects/{uuid}"), None) {
        Ok(reply) => reply.json()?,
        Err(f) if f.status == 404 => return Ok(None),
        Err(f) => return Err(f.error),
    };
    let description = project["description"].as_str().unwrap_or_default();
    Ok(Some(Resource {
        kind: "project".to_owned(),
        id: uuid.clone(),
        name: name.to_owned(),
        owner: None,
        live: json!({ "description": description }).to_string(),
        outputs: json!({ "uuid": uuid, "created_by_fabrik": description == CREATED_BY_FABRIK })
            .to_string(),
    }))
}

/// The environment `project/environment` as `lookup("environment", …)` returns it (for
/// `destroy`): id `<project uuid>/<environment name>`, and whether Fabrik created it.
fn environment_resource(name: &str) -> Result<Option<Resource>, ProviderError> {
    let Some((project, environment)) = name.split_once('/') else {
        return Err(permanent(format!(
            "an environment is named `project/environment`, not `{name}`"
        )));
    };
    let Some(uuid) = project_uuid(project, false)? else {
        return Ok(None);
    };
    let path = format!("/projects/{uuid}/{environment}");
    let found = match api::call(&api()?, Method::Get, &path, None) {
        Ok(reply) => reply.json()?,
        Err(f) if f.status == 404 => return Ok(None),
        Err(f) => return Err(f.error),
    };
    let description = found["description"].as_str().unwrap_or_default();
    Ok(Some(Resource {
        kind: "environment".to_owned(),
        id: format!("{uuid}/{environment}"),
        name: name.to_owned(),
        owner: None,
        live: json!({ "description": description }).to_string(),
        outputs: json!({ "created_by_fabrik": description == CREATED_BY_FABRIK }).to_string(),
    }))
}

/// Deletes an environment Fabrik created, if Coolify finds it empty (400 otherwise,
/// `Environment::isEmpty()`, `ProjectController::delete_environment`).
fn delete_environment(id: &str) -> Result<(), ProviderError> {
    let Some((uuid, environment)) = id.split_once('/') else {
        return Err(permanent(format!("`{id}` is not an environment's id")));
    };
    let path = format!("/projects/{uuid}/{environment}");
    let found = match api::call(&api()?, Method::Get, &path, None) {
        Ok(reply) => reply.json()?,
        Err(f) if f.status == 404 => return Err(ProviderError::NotFound(path)),
        Err(f) => return Err(f.error),
    };
    if found["description"].as_str() != Some(CREATED_BY_FABRIK) {
        return Err(permanent(format!(
            "refusing to delete environment `{environment}`: Fabrik did not create it"
        )));
    }
    let path = format!("/projects/{uuid}/environments/{environment}");
    match api::call(&api()?, Method::Delete, &path, None) {
        Ok(_) => Ok(()),
        Err(f) if f.status == 404 => Err(ProviderError::NotFound(path)),
        Err(f) if f.status == 400 => Err(permanent("it holds other resources".to_owned())),
        Err(f) => Err(f.error),
    }
}

/// Deletes a project Fabrik created, if Coolify finds it empty: Coolify itself refuses a
/// project with any application, database or service in it (400, `Project::isEmpty()`,
/// app/Http/Controllers/Api/ProjectController.php `delete_project`), which this passes on
/// as a permanent error; a project someone else created is never deleted.
fn delete_project(uuid: &str) -> Result<(), ProviderError> {
    let path = format!("/projects/{uuid}");
    let project = match api::call(&api()?, Method::Get, &path, None) {
        Ok(reply) => reply.json()?,
        Err(f) if f.status == 404 => return Err(ProviderError::NotFound(path)),
        Err(f) => return Err(f.error),
    };
    let description = project["description"].as_str().unwrap_or_default();
    if description != CREATED_BY_FABRIK {
        return Err(permanent(format!(
            "refusing to delete project `{}`: Fabrik did not create it (its description is {description:?})",
            project["name"].as_str().unwrap_or("?")
        )));
    }
    // Coolify deletes a project's environments with it, and counts only applications,
    // databases and services as contents (`Project::isEmpty`): an environment someone
    // added (it may hold shared variables) keeps the project.
    let others: Vec<&str> = project["environments"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["name"].as_str())
        .filter(|name| *name != "production")
        .collect();
    if !others.is_empty() {
        return Err(permanent(format!(
            "it holds other environments ({})",
            others.join(", ")
        )));
    }
    match api::call(&api()?, Method::Delete, &path, None) {
        Ok(_) => Ok(()),
        Err(f) if f.status == 404 => Err(ProviderError::NotFound(path)),
        Err(f) if f.status == 400 => Err(permanent("it holds other resources".to_owned())),
        Err(f) => Err(f.error),
    }
}

/// A server as `lookup` and `read` return it: outputs `uuid`, `ip` and, when asked for,
/// `destinations` (each `uuid`, `name`, `network`; `null` on a Coolify that cannot list
/// them).
fn server_resource(
    kind: String,
    uuid: &str,
    ip: &str,
    with_destinations: bool,
) -> Result<Resource, ProviderError> {
    let mut outputs = json!({ "uuid": uuid, "ip": ip });
    if with_destinations {
        let destinations: Option<Vec<Value>> = destinations(uuid)?.map(|list| {
            list.iter()
                .map(|d| json!({ "uuid": d["uuid"], "name": d["name"], "network": d["network"] }))
                .collect()
        });
        outputs["destinations"] = json!(destinations);
    }
    let name = STATE
        .with(|s| {
            s.borrow().servers.as_ref().and_then(|all| {
                all.as_array()?
                    .iter()
                    .find(|s| s["uuid"].as_str() == Some(uuid))
                    .and_then(|s| s["name"].as_str().map(str::to_owned))
            })
        })
        .unwrap_or_default();
    Ok(Resource {
        kind,
        id: uuid.to_owned(),
        name,
        owner: None,
        live: json!({ "ip": ip }).to_string(),
        outputs: outputs.to_string(),
    })
}

// Only the component exports the contract: natively, the export names (which contain `:`)
// cannot be linked into a shared library, and native builds exist for unit tests.
#[cfg(target_arch = "wasm32")]
fabrik_provider_sdk::export_provider!(Coolify);

#[cfg(test)]
mod tests {
    #[test]
    fn a_compose_coolify_re_dumped_is_the_same_document() {
        let sent = "services:\n  app:\n    image: ghcr.io/acme/api@sha256:ab\n    expose:\n    - '8000'\n    command: \"a\\nb\"\n";
        // What Symfony's dump makes of it: quoted differently, sequences indented, a
        // literal block for the multi-line string.
        let stored = "services:\n  app:\n    image: 'ghcr.io/acme/api@sha256:ab'\n    expose:\n      - '8000'\n    command: |-\n      a\n      b\n";
        assert!(super::same_compose(stored, sent));
        assert!(!super::same_compose(
            &stored.replace("'8000'", "'9000'"),
            sent
        ));
    }

    use super::*;

    #[test]
    fn desired_state_is_checked_per_kind() {
        let base = r#""project":"p","environment":"production","server":"vps1""#;
        assert!(
            parse_desired(
                "application",
                &format!("{{{base},\"image\":\"nginx:1\",\"port\":80}}")
            )
            .is_ok()
        );
        assert!(
            parse_desired("application", &format!("{{{base},\"image\":\"nginx:1\"}}")).is_err()
        );
        assert!(
            parse_desired(
                "service",
                &format!("{{{base},\"compose\":\"services: {{}}\",\"service\":\"app\"}}")
            )
            .is_ok()
        );
        assert!(parse_desired("service", &format!("{{{base},\"compose\":\"x\"}}")).is_err());
        assert!(parse_desired("database", &format!("{{{base}}}")).is_err());
        assert!(
            parse_desired(
                "application",
                &format!("{{{base},\"image\":\"a\",\"port\":1,\"nope\":1}}")
            )
            .is_err()
        );
    }

    #[test]
    fn image_references_split_as_coolify_stores_them() {
        let digest = "0123456789abcdef".repeat(4);
        for (reference, name, tag, back) in [
            (
                "ghcr.io/acme/api:1.4",
                "ghcr.io/acme/api",
                "1.4",
                "ghcr.io/acme/api:1.4",
            ),
            ("nginx", "nginx", "latest", "nginx:latest"),
            (
                "localhost:5000/team/app",
                "localhost:5000/team/app",
                "latest",
                "localhost:5000/team/app:latest",
            ),
            (
                "localhost:5000/app:2",
                "localhost:5000/app",
                "2",
                "localhost:5000/app:2",
            ),
            (
                &format!("nginx@sha256:{digest}"),
                "nginx@sha256",
                &digest,
                &format!("nginx@sha256:{digest}"),
            ),
        ] {
            let parts = ImageParts::parse(reference);
            assert_eq!((parts.name.as_str(), parts.tag.as_str()), (name, tag));
            assert_eq!(ImageParts::reference(&parts.name, &parts.tag), back);
        }
        assert_eq!(
            ImageParts::reference("nginx", &format!("sha256-{digest}")),
            format!("nginx@sha256:{digest}")
        );
    }

    #[test]
    fn generated_keys_are_left_alone() {
        assert!(is_generated("SERVICE_FQDN_APP"));
        assert!(is_generated("SERVICE_URL_APP_8000"));
        assert!(is_generated("SERVICE_PASSWORD_POSTGRES"));
        assert!(is_generated("SERVICE_USER_ADMIN"));
        assert!(is_generated("SERVICE_BASE64_64_SECRET"));
        assert!(!is_generated("DATABASE_URL"));
    }
}

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

mod api;
mod compose_env;
mod deploy;
mod desired;
mod env_sync;
mod lookups;
mod projects;
mod resources;
mod servers;
mod state;

use crate::deploy::{application_progress, deploy_and_read, service_progress, with_deployment};
use crate::desired::{ImageParts, parse_desired, plural};
use crate::env_sync::{env_rows, sync_env};
use crate::lookups::{candidates, placement};
use crate::projects::{
    cached_project_uuid, delete_environment, delete_project, ensure_environment,
    environment_resource, project_resource, project_uuid, with_page,
};
use crate::resources::{read_resource, settings_hold, to_resource};
use crate::servers::{check_proxy, destination_for, find_server, server_resource, server_where};
use crate::state::{STATE, State, check_version, client, prefetch, written};
use base64::Engine as _;
use fabrik_provider_sdk::config::Config;
use fabrik_provider_sdk::error::permanent;
use fabrik_provider_sdk::http::Api;
use fabrik_provider_sdk::{
    ConfigKey, Method, ProgressReport, Provider, ProviderError, ProviderInfo, RateLimit, Resource,
    ResourcePage, owner,
};
use serde_json::{Value, json};

/// The provider. Public so that, natively (where nothing exports it), what it calls is
/// still live code to the compiler.
pub struct Coolify;

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
        // A fresh state: whatever an earlier configure of this instance read is gone.
        STATE.set(State {
            api: Some(Api::new("Coolify", base).bearer("api-token")),
            ..State::default()
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
        written(None)?;
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
                &client()?,
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
            api::json(&client()?, Method::Post, "/services", Some(&body))?
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
        STATE.with(|s| s.envs.insert(uuid.clone(), json!([])))?;
        sync_env(&kind, &uuid, &desired.env, desired.compose.as_deref())?;
        let written = Value::Array(env_rows(&kind, &desired.env));
        let (deployment, resource) = deploy_and_read(&kind, &uuid, Some(written))?;
        // Those rows lack the uuids a later delete needs: the next write reads the list.
        STATE.with(|s| s.envs.remove(&uuid))?;
        Ok(with_page(
            with_deployment(resource, deployment),
            Some(project.as_str()),
        ))
    }

    fn update(kind: String, id: String, desired: String) -> Result<Resource, ProviderError> {
        let desired = parse_desired(&kind, &desired)?;
        prefetch()?;
        check_version()?;
        let read = STATE.with(|s| s.details.get(&id).cloned())?;
        if read
            .as_ref()
            .is_some_and(|detail| settings_hold(&kind, detail, &desired))
        {
            // Only the environment differs (or nothing the detail shows): no PATCH, and
            // the env list read with the detail still holds.
            STATE.with(|s| s.lists.clear())?;
            sync_env(&kind, &id, &desired.env, desired.compose.as_deref())?;
            written(Some(&id))?;
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
        written(Some(&id))?;
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
            &client()?,
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
        written(Some(&id))?;
        if kind == "project" {
            return delete_project(&id);
        }
        if kind == "environment" {
            return delete_environment(&id);
        }
        let path = format!("/{}/{id}", plural(&kind));
        let current = match api::call(&client()?, Method::Get, &path, None) {
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
        match api::call(&client()?, Method::Delete, &format!("{path}{query}"), None) {
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
            let servers = match STATE.with(|s| s.servers.clone())? {
                Some(servers) => servers,
                None => {
                    let servers = api::json(&client()?, Method::Get, "/servers", None)?;
                    STATE.with(|s| s.servers = Some(servers.clone()))?;
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
        let all = api::json(
            &client()?,
            Method::Get,
            &format!("/{}", plural(&kind)),
            None,
        )?;
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
// Only the component exports the contract: natively, the export names (which contain `:`)
// cannot be linked into a shared library, and native builds exist for unit tests.
#[cfg(target_arch = "wasm32")]
fabrik_provider_sdk::export_provider!(Coolify);

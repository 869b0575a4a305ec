//! Coolify servers and their Docker destinations: found by name, checked usable, and
//! their proxy (domains need one).

use fabrik_provider_sdk::error::permanent;
use fabrik_provider_sdk::{Method, ProviderError, Resource};
use serde_json::{Value, json};

use crate::api;
use crate::state::{STATE, client};

/// The usable server named `name`: `(uuid, ip)`.
pub(crate) fn find_server(name: &str) -> Result<Option<(String, String)>, ProviderError> {
    server_where(name, |s| s["name"].as_str() == Some(name))
}

/// The usable server `pick` chooses (`what` names it in errors): `(uuid, ip)`.
pub(crate) fn server_where(
    what: &str,
    pick: impl Fn(&Value) -> bool,
) -> Result<Option<(String, String)>, ProviderError> {
    let name = what;
    let cached = STATE.with(|s| s.servers.clone())?;
    let servers = match cached {
        Some(servers) => servers,
        None => {
            let servers = api::json(&client()?, Method::Get, "/servers", None)?;
            STATE.with(|s| s.servers = Some(servers.clone()))?;
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
pub(crate) fn check_proxy(server: &str) -> Result<(), ProviderError> {
    let Some((uuid, _)) = find_server(server)? else {
        return Ok(());
    };
    let detail = api::json(&client()?, Method::Get, &format!("/servers/{uuid}"), None)?;
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
pub(crate) fn destinations(server: &str) -> Result<Option<Vec<Value>>, ProviderError> {
    if let Some(known) = STATE.with(|s| s.destinations.get(server).cloned())? {
        return Ok(known);
    }
    let found = match api::call(
        &client()?,
        Method::Get,
        &format!("/servers/{server}/destinations"),
        None,
    ) {
        Ok(reply) => Some(reply.json()?.as_array().cloned().unwrap_or_default()),
        Err(f) if f.status == 404 => None,
        Err(f) => return Err(f.error),
    };
    STATE.with(|s| s.destinations.insert(server.to_owned(), found.clone()))?;
    Ok(found)
}

pub(crate) fn describe_destinations(list: &[Value]) -> String {
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
pub(crate) fn destination_for(
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

/// A server as `lookup` and `read` return it: outputs `uuid`, `ip` and, when asked for,
/// `destinations` (each `uuid`, `name`, `network`; `null` on a Coolify that cannot list
/// them).
pub(crate) fn server_resource(
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
            s.servers.as_ref().and_then(|all| {
                all.as_array()?
                    .iter()
                    .find(|s| s["uuid"].as_str() == Some(uuid))
                    .and_then(|s| s["name"].as_str().map(str::to_owned))
            })
        })?
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

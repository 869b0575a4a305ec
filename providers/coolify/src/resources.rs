//! Resources as read back from Coolify (detail and env list), and whether a detail
//! already holds the settings an update would send.

use std::collections::BTreeMap;

use fabrik_provider_sdk::error::permanent;
use fabrik_provider_sdk::http::{self};
use fabrik_provider_sdk::{ProviderError, Resource};
use serde_json::{Value, json};

use crate::desired::{Desired, ImageParts, plural};
use crate::env_sync::is_generated;
use crate::state::{STATE, client};
use crate::{api, compose_env};

pub(crate) fn to_resource(
    kind: &str,
    value: &Value,
    env: Option<BTreeMap<String, Value>>,
) -> Resource {
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

/// Reads a resource and its environment: the keys, and each value where Coolify shows it
/// (only to tokens with `read:sensitive`; otherwise `null`). Preview copies and Coolify's
/// own `SERVICE_` variables are left out. The host compares this with the desired state
/// to find drift; it never stores or prints it.
pub(crate) fn read_resource(kind: &str, uuid: &str) -> Result<Option<Resource>, ProviderError> {
    let api = client()?;
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
pub(crate) fn resource_from(
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
    STATE.with(|state| {
        state.envs.insert(uuid.to_owned(), envs);
        state.details.insert(uuid.to_owned(), value);
    })?;
    Ok(Some(resource))
}

/// Whether `detail` (as read) already has the settings `update` would send, so that the
/// PATCH can be left out. Only what the detail shows counts: a service's compose is shown
/// only to tokens with `read:sensitive` (`Service::$hidden`), and without it the PATCH is
/// always sent.
pub(crate) fn settings_hold(kind: &str, detail: &Value, desired: &Desired) -> bool {
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
pub(crate) fn same_compose(stored: &str, sent: &str) -> bool {
    match (
        serde_yaml::from_str::<Value>(stored),
        serde_yaml::from_str::<Value>(sent),
    ) {
        (Ok(stored), Ok(sent)) => stored == sent,
        _ => stored == sent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_compose_coolify_re_dumped_is_the_same_document() {
        let sent = "services:\n  app:\n    image: ghcr.io/acme/api@sha256:ab\n    expose:\n    - '8000'\n    command: \"a\\nb\"\n";
        // What Symfony's dump makes of it: quoted differently, sequences indented, a
        // literal block for the multi-line string.
        let stored = "services:\n  app:\n    image: 'ghcr.io/acme/api@sha256:ab'\n    expose:\n      - '8000'\n    command: |-\n      a\n      b\n";
        assert!(same_compose(stored, sent));
        assert!(!same_compose(&stored.replace("'8000'", "'9000'"), sent));
    }
}

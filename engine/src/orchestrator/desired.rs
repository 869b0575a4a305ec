//! The desired state of an app's resources, as the providers receive it: a DNS record and
//! a Coolify application or service. Built in one place so that `apply` and `plan` agree.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::domain::Role;
use crate::spec::LoadedSpec;
use crate::spec::model::Source;
use crate::store::ResourceRow;

/// Kind of the app's DNS record (the `dns` role's resource).
pub const DNS_KIND: &str = "dns-record";

/// Kind of the app's uptime monitor (the `monitor` role's resource).
pub const MONITOR_KIND: &str = "monitor";

/// A resource the app wants, by the key the store knows it by; known without any call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    pub role: Role,
    pub kind: String,
    pub name: String,
}

/// The resources `loaded` wants: its DNS record, its Coolify resource and, if the spec
/// asks for one, its monitor.
pub fn wanted(loaded: &LoadedSpec) -> Vec<Wanted> {
    let mut wanted = vec![
        Wanted {
            role: Role::Dns,
            kind: DNS_KIND.to_owned(),
            name: loaded.spec.domain.clone(),
        },
        Wanted {
            role: Role::Coolify,
            kind: loaded.rendered.coolify_resource.to_string(),
            name: loaded.spec.name.clone(),
        },
    ];
    if loaded.spec.monitor.is_some() {
        wanted.push(Wanted {
            role: Role::Monitor,
            kind: MONITOR_KIND.to_owned(),
            name: monitor_name(&loaded.spec),
        });
    }
    wanted
}

/// The monitor's name: the deployment's key (`api`, `api@staging`), unique in a project.
pub fn monitor_name(spec: &crate::spec::Spec) -> String {
    spec.key()
}

/// The monitor of the app's health URL (`docs/schemas/monitor.desired.json`), watching
/// (`active`) or paused while the app deploys; `None` if the spec asks for none.
pub fn monitor(loaded: &LoadedSpec, active: bool) -> Option<DesiredResource> {
    let spec = &loaded.spec;
    let wanted = spec.monitor.as_ref()?;
    let mut desired = json!({
        "url": spec.health_url(),
        "interval": wanted.interval,
        "retries": wanted.retries,
        "active": active,
    });
    if let Some(keyword) = &wanted.keyword {
        desired["keyword"] = json!(keyword);
    }
    if let Some(status) = wanted.expect_status {
        desired["expect_status"] = json!(status);
    }
    Some(DesiredResource {
        role: Role::Monitor,
        kind: MONITOR_KIND.to_owned(),
        name: monitor_name(spec),
        desired,
    })
}

/// Whether `row` is one of `wanted`.
pub fn is_wanted(row: &ResourceRow, wanted: &[Wanted]) -> bool {
    wanted.iter().any(|w| row.is(w.role, &w.kind, &w.name))
}

/// One resource as the app wants it.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredResource {
    pub role: Role,
    pub kind: String,
    pub name: String,
    pub desired: Value,
}

/// The DNS record pointing the app's domain at `ip`.
pub fn dns_record(loaded: &LoadedSpec, ip: &str) -> DesiredResource {
    let record_type = if ip.contains(':') { "AAAA" } else { "A" };
    DesiredResource {
        role: Role::Dns,
        kind: DNS_KIND.to_owned(),
        name: loaded.spec.domain.clone(),
        // No `ttl` (automatic, each provider maps it) and no `proxied` (never asked of a
        // DNS API that has no proxy): docs/schemas/dns-record.desired.json.
        desired: json!({ "type": record_type, "content": ip }),
    }
}

/// The Coolify resource, with `secrets` as the values of the spec's secret variables
/// (real values for a provider, markers for the store and plans).
pub fn coolify_resource(
    loaded: &LoadedSpec,
    secrets: &BTreeMap<String, String>,
) -> Result<DesiredResource, String> {
    let spec = &loaded.spec;
    let kind = loaded.rendered.coolify_resource.to_string();
    let mut env = spec.env.clone();
    for (name, value) in secrets {
        env.insert(name.clone(), value.clone());
    }
    env.entry("PORT".to_owned())
        .or_insert_with(|| spec.port.to_string());
    let mut desired = json!({
        "project": spec.coolify.project,
        "environment": spec.coolify.environment,
        "server": spec.server,
        "domains": [format!("https://{}", spec.domain)],
        "env": env,
    });
    if let Some(destination) = &spec.coolify.destination {
        desired["destination"] = json!(destination);
    }
    if kind == "application" {
        let Some(image) = spec.source.as_ref().and_then(Source::image_reference) else {
            return Err("an application needs an image source".to_owned());
        };
        desired["image"] = json!(image);
        desired["port"] = json!(spec.port);
    } else {
        desired["compose"] = json!(loaded.rendered.compose);
        desired["service"] = json!(loaded.rendered.service);
    }
    Ok(DesiredResource {
        role: Role::Coolify,
        kind,
        name: spec.name.clone(),
        desired,
    })
}

/// Checks the spec's `coolify.destination` against the server's destinations, when the
/// provider listed them in the server's outputs (`destinations: [{uuid, name, network}]`):
/// a server with several needs one named, and a named one must exist. Coolify refuses
/// the create otherwise, after the DNS record would have been changed.
pub fn check_destination(spec: &crate::spec::Spec, server: &Value) -> Result<(), String> {
    let Some(list) = server["destinations"].as_array() else {
        return Ok(());
    };
    let text = |d: &Value, key: &str| d[key].as_str().unwrap_or_default().to_owned();
    let listed = || {
        list.iter()
            .map(|d| {
                format!(
                    "`{}` (network {}, uuid {})",
                    text(d, "name"),
                    text(d, "network"),
                    text(d, "uuid")
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    match &spec.coolify.destination {
        Some(wanted)
            if !list.iter().any(|d| {
                [text(d, "uuid"), text(d, "name"), text(d, "network")].contains(wanted)
            }) =>
        {
            Err(format!(
                "Coolify server `{}` has no destination `{wanted}`; it has {}",
                spec.server,
                listed()
            ))
        }
        None if list.len() > 1 => Err(format!(
            "Coolify server `{}` has several destinations ({}); name one with `coolify.destination` in the spec",
            spec.server,
            listed()
        )),
        _ => Ok(()),
    }
}

/// Refuses a change of where an existing Coolify resource lives (server, project,
/// environment, destination): Coolify's API cannot move a resource, so the change would
/// be recorded but never made.
pub fn check_placement(app: &str, before: &Value, after: &Value) -> Result<(), String> {
    for field in ["server", "project", "environment", "destination"] {
        if before.get(field) != after.get(field) {
            let show = |v: Option<&Value>| match v {
                Some(Value::String(s)) => format!("`{s}`"),
                _ => "none".to_owned(),
            };
            return Err(format!(
                "`{app}` lives in Coolify {field} {}; moving it to {} is not supported (Coolify cannot move a resource): keep the old value, or `fabrik destroy {app} --yes` and apply again",
                show(before.get(field)),
                show(after.get(field))
            ));
        }
    }
    Ok(())
}

/// The marker the store keeps in place of a secret's value.
pub fn secret_marker(name: &str) -> String {
    format!("${{secret:{name}}}")
}

/// Each secret name mapped to its marker.
pub fn markers(names: &[String]) -> BTreeMap<String, String> {
    names
        .iter()
        .map(|n| (n.clone(), secret_marker(n)))
        .collect()
}

/// The desired state with each secret value replaced by its marker: what the store keeps.
pub fn without_secrets(desired: &Value, secrets: &[String]) -> Value {
    let mut stored = desired.clone();
    if let Some(env) = stored.get_mut("env").and_then(Value::as_object_mut) {
        for name in secrets {
            if env.contains_key(name) {
                env.insert(name.clone(), json!(secret_marker(name)));
            }
        }
    }
    stored
}

/// The stored desired state with the secret markers replaced by the current values.
pub fn with_secrets(stored: &Value, values: &BTreeMap<String, secrecy::SecretString>) -> Value {
    use secrecy::ExposeSecret;
    let mut desired = stored.clone();
    if let Some(env) = desired.get_mut("env").and_then(Value::as_object_mut) {
        for (name, value) in values {
            if env.get(name).and_then(Value::as_str) == Some(secret_marker(name).as_str()) {
                env.insert(name.clone(), json!(value.expose_secret()));
            }
        }
    }
    desired
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_desired_state_never_holds_secret_values() {
        let desired = json!({ "env": { "API_KEY": "k-123456", "LOG": "info" }, "image": "x" });
        let stored = without_secrets(&desired, &["API_KEY".to_owned()]);
        assert_eq!(stored["env"]["API_KEY"], "${secret:API_KEY}");
        assert_eq!(stored["env"]["LOG"], "info");
        assert!(!stored.to_string().contains("k-123456"));
        let values = BTreeMap::from([(
            "API_KEY".to_owned(),
            secrecy::SecretString::from("k-123456".to_owned()),
        )]);
        assert_eq!(with_secrets(&stored, &values), desired);
    }
}

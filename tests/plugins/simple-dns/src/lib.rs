//! A DNS provider written from `docs/providers.md` with the Rust SDK, as a third party
//! would: the `dns` role's `dns-record` kind, in one zone (config `zone`) of a
//! Cloudflare-style API (`base-url`, token `api-token`). The owner tag is the record's
//! comment. `tests/plugins/python-dns` is the same provider in Python; both pass the
//! provider kit (`tests/e2e/provider_kit.rs`).

use fabrik_provider_sdk::config::Config;
use fabrik_provider_sdk::error::{not_found, permanent};
use fabrik_provider_sdk::http::{Api, query_escape};
use fabrik_provider_sdk::{
    ConfigKey, Instance, Method, ProgressReport, ProgressState, Provider, ProviderError,
    ProviderInfo, Resource, ResourcePage, check_kind, export_provider, owner, parse_desired,
};
use serde::Deserialize;
use serde_json::{Value, json};

const KIND: &str = "dns-record";

struct State {
    api: Api,
    zone_name: String,
    /// The zone's id, found on first use.
    zone_id: Option<String>,
}

static STATE: Instance<State> = Instance::new();

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Desired {
    #[serde(rename = "type", default = "a")]
    record_type: String,
    content: String,
    #[serde(default = "automatic")]
    ttl: u32,
    #[serde(default)]
    proxied: bool,
}

fn a() -> String {
    "A".to_owned()
}

fn automatic() -> u32 {
    1
}

/// The API's answer: `result` on success, else an error from its `errors`.
fn call(method: Method, path: &str, body: Option<&Value>) -> Result<Value, ProviderError> {
    let request = STATE.with(|s| s.api.request(method, path).json_opt(body))?;
    let response = request.send()?;
    let envelope: Value = response.json()?;
    if response.is_success() && envelope["success"].as_bool() == Some(true) {
        return Ok(envelope["result"].clone());
    }
    Err(response.error(&envelope["errors"].to_string()))
}

fn zone() -> Result<String, ProviderError> {
    if let Some(id) = STATE.with(|s| s.zone_id.clone())? {
        return Ok(id);
    }
    let name = STATE.with(|s| s.zone_name.clone())?;
    let zones = call(Method::Get, &format!("/zones?name={}", query_escape(&name)), None)?;
    let id = zones
        .as_array()
        .and_then(|all| all.iter().find(|z| z["name"] == name.as_str()))
        .and_then(|z| z["id"].as_str())
        .ok_or_else(|| permanent(format!("the token cannot see a zone named {name}")))?
        .to_owned();
    STATE.with(|s| s.zone_id = Some(id.clone()))?;
    Ok(id)
}

fn to_resource(record: &Value) -> Resource {
    let text = |key: &str| record[key].as_str().unwrap_or_default().to_owned();
    Resource {
        kind: KIND.to_owned(),
        id: text("id"),
        name: text("name"),
        owner: record["comment"].as_str().filter(|c| !c.is_empty()).map(str::to_owned),
        live: json!({
            "type": record["type"],
            "content": record["content"],
            "ttl": record["ttl"],
            "proxied": record["proxied"].as_bool().unwrap_or(false),
        })
        .to_string(),
        outputs: json!({ "record_id": record["id"], "name": record["name"] }).to_string(),
    }
}

fn body(desired: &Desired) -> Value {
    json!({
        "type": desired.record_type,
        "content": desired.content,
        "ttl": desired.ttl,
        "proxied": desired.proxied,
    })
}

fn get(id: &str) -> Result<Option<Value>, ProviderError> {
    match call(Method::Get, &format!("/zones/{}/dns_records/{id}", zone()?), None) {
        Ok(record) => Ok(Some(record)),
        Err(ProviderError::NotFound(_)) => Ok(None),
        Err(other) => Err(other),
    }
}

fn named(name: &str) -> Result<Vec<Value>, ProviderError> {
    let records = call(
        Method::Get,
        &format!("/zones/{}/dns_records?name={}", zone()?, query_escape(name)),
        None,
    )?;
    Ok(records.as_array().cloned().unwrap_or_default())
}

struct SimpleDns;

impl Provider for SimpleDns {
    fn describe() -> ProviderInfo {
        let key = |name: &str, description: &str, secret: bool| ConfigKey {
            name: name.to_owned(),
            description: description.to_owned(),
            secret,
            required: true,
        };
        ProviderInfo {
            name: "simple-dns".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            description: "DNS records in one zone of a Cloudflare-style API".to_owned(),
            kinds: vec![KIND.to_owned()],
            config: vec![
                key("base-url", "the API's base URL", false),
                key("zone", "the zone the records live in", false),
                key("api-token", "a token that can edit the zone's records", true),
            ],
            default_origins: vec![],
            rate_limit: None,
        }
    }

    fn configure(config: Vec<(String, String)>) -> Result<(), ProviderError> {
        let config = Config::new(config);
        STATE.set(State {
            api: Api::new("the DNS API", config.base_url("")?).bearer("api-token"),
            zone_name: config.require("zone")?.to_owned(),
            zone_id: None,
        });
        Ok(())
    }

    fn read(kind: String, id: String) -> Result<Option<Resource>, ProviderError> {
        check_kind(&kind, &[KIND])?;
        Ok(get(&id)?.as_ref().map(to_resource))
    }

    fn create(
        kind: String,
        name: String,
        desired: String,
        owner_tag: String,
    ) -> Result<Resource, ProviderError> {
        check_kind(&kind, &[KIND])?;
        let desired: Desired = parse_desired(KIND, &desired)?;
        // A retried create finds its own record: adopt it.
        let existing = named(&name)?;
        if let Some(mine) = existing
            .iter()
            .find(|r| r["comment"].as_str() == Some(owner_tag.as_str()))
        {
            let id = mine["id"].as_str().unwrap_or_default();
            return Ok(to_resource(&call(
                Method::Patch,
                &format!("/zones/{}/dns_records/{id}", zone()?),
                Some(&body(&desired)),
            )?));
        }
        let mut record = body(&desired);
        record["name"] = json!(name);
        record["comment"] = json!(owner_tag);
        let created = call(
            Method::Post,
            &format!("/zones/{}/dns_records", zone()?),
            Some(&record),
        )?;
        Ok(to_resource(&created))
    }

    fn update(kind: String, id: String, desired: String) -> Result<Resource, ProviderError> {
        check_kind(&kind, &[KIND])?;
        let desired: Desired = parse_desired(KIND, &desired)?;
        if get(&id)?.is_none() {
            return Err(not_found(format!("record {id} no longer exists")));
        }
        Ok(to_resource(&call(
            Method::Patch,
            &format!("/zones/{}/dns_records/{id}", zone()?),
            Some(&body(&desired)),
        )?))
    }

    fn delete(kind: String, id: String, owner_tag: String, _purge: bool) -> Result<(), ProviderError> {
        check_kind(&kind, &[KIND])?;
        let Some(current) = get(&id)? else {
            return Ok(());
        };
        let found = current["comment"].as_str().filter(|c| !c.is_empty());
        owner::ensure_owned(found, &owner_tag, &format!("dns-record {id}"))?;
        match call(Method::Delete, &format!("/zones/{}/dns_records/{id}", zone()?), None) {
            Ok(_) | Err(ProviderError::NotFound(_)) => Ok(()),
            Err(other) => Err(other),
        }
    }

    fn progress(kind: String, _id: String) -> Result<ProgressReport, ProviderError> {
        check_kind(&kind, &[KIND])?;
        Ok(ProgressReport {
            state: ProgressState::Ready,
            message: None,
        })
    }

    fn list(
        kind: String,
        owner_prefix: String,
        cursor: Option<String>,
    ) -> Result<ResourcePage, ProviderError> {
        check_kind(&kind, &[KIND])?;
        let page: u32 = cursor.as_deref().unwrap_or("1").parse().unwrap_or(1);
        let records = call(
            Method::Get,
            &format!(
                "/zones/{}/dns_records?comment.startswith={}&per_page=100&page={page}",
                zone()?,
                query_escape(&owner_prefix)
            ),
            None,
        )?;
        let records = records.as_array().cloned().unwrap_or_default();
        let full = records.len() == 100;
        Ok(ResourcePage {
            resources: records
                .iter()
                .filter(|r| owner::has_prefix(r["comment"].as_str(), &owner_prefix))
                .map(to_resource)
                .collect(),
            next: full.then(|| (page + 1).to_string()),
        })
    }

    fn lookup(kind: String, name: String, owner_tag: String, _desired: Option<String>) -> Result<Option<Resource>, ProviderError> {
        check_kind(&kind, &[KIND])?;
        let records = named(&name)?;
        Ok(owner::ours_first(&records, &owner_tag, |r| r["comment"].as_str()).map(to_resource))
    }
}

export_provider!(SimpleDns);

//! PowerDNS Authoritative provider plugin: DNS records (A, AAAA, CNAME) in the zones of a
//! PowerDNS server you run, through its HTTP API (`/api/v1`, PowerDNS 4.x). Built as a
//! WebAssembly component of the `fabrik:provider` world; the host attaches the API key
//! (`X-API-Key`).
//!
//! Kind `dns-record`, as `docs/schemas/dns-record.*.json` define it for any DNS API:
//! - PowerDNS has no automatic TTL: *automatic* (no `ttl`, or the 0.2 documents' `1`) is
//!   the `default-ttl` setting (3600 if unset), and a record with that TTL is reported
//!   without `ttl`;
//! - PowerDNS has no proxy: `live` never has `proxied`, and a desired `proxied: true` is
//!   refused;
//! - PowerDNS keys records by name and type (an rrset), so the id is `<name>./<type>`
//!   (`api.example.com./A`): an `update` that changes the type returns a new id.
//!
//! The owner tag is the rrset's comment (account `fabrik`). The zone is the `zone`
//! setting, else the most specific zone of the server that contains the name.
//!
//! A wrong `base-url` answers 404 like a missing record would: the first call of an
//! instance asks for the server (`GET /api/v1/servers/<server-id>`) and refuses anything
//! that is not PowerDNS's answer, so that a wrong URL is never taken for "not found".

use fabrik_provider_sdk::config::Config;
use fabrik_provider_sdk::error::{invalid_config, not_found, permanent};
use fabrik_provider_sdk::http::{Api, Response, query_escape};
use fabrik_provider_sdk::{
    ConfigKey, Instance, ProgressReport, ProgressState, Provider, ProviderError, ProviderInfo,
    Resource, ResourcePage, owner,
};
use serde::Deserialize;
use serde_json::{Value, json};

const KIND: &str = "dns-record";
const MANAGED_TYPES: [&str; 3] = ["A", "AAAA", "CNAME"];
/// What *automatic* means when `default-ttl` is not set: PowerDNS's own default for new
/// records (`default-ttl` in pdns.conf).
const DEFAULT_TTL: u32 = 3600;
/// The account written with the owner comment, so that people see who wrote it.
const COMMENT_ACCOUNT: &str = "fabrik";

struct State {
    /// `<base-url>/api/v1/servers/<server-id>`.
    api: Api,
    /// Whether the base URL was checked to be PowerDNS's API (see the crate docs).
    verified: bool,
    /// The `zone` setting, as a PowerDNS zone id (`example.com.`).
    zone: Option<String>,
    /// The server's zones, read once per instance when no zone is set.
    zones: Option<Vec<String>>,
    default_ttl: u32,
}

static STATE: Instance<State> = Instance::new();

/// The desired record (`docs/schemas/dns-record.desired.json`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct Desired {
    #[serde(rename = "type", default = "default_type")]
    record_type: String,
    content: String,
    #[serde(default)]
    ttl: Option<u32>,
    #[serde(default)]
    proxied: bool,
}

fn default_type() -> String {
    "A".to_owned()
}

/// What *automatic* is on this server (`default-ttl`).
fn default_ttl() -> u32 {
    STATE.with(|s| s.default_ttl).unwrap_or(DEFAULT_TTL)
}

fn parse_desired(text: &str) -> Result<Desired, ProviderError> {
    let desired: Desired = fabrik_provider_sdk::parse_desired(KIND, text)?;
    let content = desired.content.as_str();
    match desired.record_type.as_str() {
        "A" if content.parse::<std::net::Ipv4Addr>().is_err() => Err(permanent(format!(
            "an A record needs an IPv4 address, not {content:?}"
        ))),
        "AAAA" if content.parse::<std::net::Ipv6Addr>().is_err() => Err(permanent(format!(
            "an AAAA record needs an IPv6 address, not {content:?}"
        ))),
        "CNAME" if content.trim().is_empty() => Err(permanent("a CNAME record needs a target")),
        "A" | "AAAA" | "CNAME" => Ok(()),
        other => Err(permanent(format!(
            "record type {other} is not supported (A, AAAA, CNAME)"
        ))),
    }?;
    if let Some(ttl) = desired.ttl.filter(|ttl| *ttl != 1)
        && !(60..=86400).contains(&ttl)
    {
        return Err(permanent(format!(
            "ttl {ttl} is invalid: none (automatic) or 60 to 86400"
        )));
    }
    if desired.ttl.is_some_and(|ttl| ttl == default_ttl()) {
        // Reported as automatic (no `ttl`), it would differ from itself at every apply.
        return Err(permanent(format!(
            "ttl {} is this provider's automatic TTL (`default-ttl`): leave `ttl` out",
            default_ttl()
        )));
    }
    if desired.proxied {
        return Err(permanent(
            "PowerDNS has no proxy: a record cannot be `proxied` (this provider reports no `proxied`, so the host never asks for it)",
        ));
    }
    Ok(desired)
}

/// `name` as PowerDNS spells names: absolute, with the final dot, in lowercase (PowerDNS
/// stores names lowercased, so a name compared as sent would never be found again).
fn absolute(name: &str) -> String {
    format!("{}.", name.trim_end_matches('.').to_ascii_lowercase())
}

/// A resource id: `<name>./<type>`.
fn id_of(name: &str, record_type: &str) -> String {
    format!("{}/{record_type}", absolute(name))
}

fn split_id(id: &str) -> Result<(String, String), ProviderError> {
    match id.rsplit_once('/') {
        Some((name, record_type)) if !name.is_empty() && MANAGED_TYPES.contains(&record_type) => {
            Ok((absolute(name), record_type.to_owned()))
        }
        _ => Err(permanent(format!(
            "`{id}` is not a dns-record id of this provider (<name>./<type>, e.g. api.example.com./A)"
        ))),
    }
}

/// The API, after checking once per instance that the base URL is PowerDNS's.
fn api() -> Result<Api, ProviderError> {
    let (api, verified) = STATE.with(|s| (s.api.clone(), s.verified))?;
    if !verified {
        verify(&api)?;
        STATE.with(|s| s.verified = true)?;
    }
    Ok(api)
}

/// `GET /api/v1/servers/<id>` answers `{"type": "Server", ...}` on a PowerDNS server;
/// anything else means `base-url` or `server-id` is wrong (a 404 from the wrong path
/// would otherwise read as "the record is gone").
fn verify(api: &Api) -> Result<(), ProviderError> {
    let answer = api.get("").send()?;
    let hint = "`base-url` is the PowerDNS web server's root (e.g. http://127.0.0.1:8081, without /api/v1) and `server-id` its server (`localhost`)";
    match answer.status {
        200..=299 => match answer.json::<Value>() {
            Ok(body) if body["type"] == "Server" => Ok(()),
            _ => Err(invalid_config(format!(
                "{} is not PowerDNS's API (it answered {}: {}); {hint}",
                api.base(),
                answer.status,
                answer.excerpt()
            ))),
        },
        401 | 403 => Err(answer.error(&answer.excerpt())),
        404 => Err(invalid_config(format!(
            "{} answered 404: no PowerDNS API there; {hint}",
            api.base()
        ))),
        _ => Err(answer.error(&answer.excerpt())),
    }
}

/// The zone holding `fqdn` (absolute): the `zone` setting, else the most specific of the
/// server's zones.
fn zone_for(fqdn: &str) -> Result<String, ProviderError> {
    let in_zone = |zone: &str| fqdn == zone || fqdn.ends_with(&format!(".{zone}"));
    if let Some(zone) = STATE.with(|s| s.zone.clone())? {
        return if in_zone(&zone) {
            Ok(zone)
        } else {
            Err(permanent(format!(
                "{fqdn} is not in the zone {zone} this provider is configured for (`zone`)"
            )))
        };
    }
    zones()?
        .into_iter()
        .filter(|zone| in_zone(zone))
        .max_by_key(String::len)
        .ok_or_else(|| {
            permanent(format!(
                "no zone of this PowerDNS server contains {fqdn}; create the zone first (`pdnsutil create-zone`)"
            ))
        })
}

/// The server's zones (`example.com.`), read once per instance.
fn zones() -> Result<Vec<String>, ProviderError> {
    if let Some(zones) = STATE.with(|s| s.zones.clone())? {
        return Ok(zones);
    }
    let listed: Vec<Value> = api()?.get("/zones").send()?.success()?.json()?;
    let zones: Vec<String> = listed
        .iter()
        .filter_map(|z| z["name"].as_str().map(str::to_owned))
        .collect();
    STATE.with(|s| s.zones = Some(zones.clone()))?;
    Ok(zones)
}

/// The zone's path: PowerDNS zone ids are the names, with `/` escaped as `=2F`.
fn zone_path(zone: &str) -> String {
    format!("/zones/{}", query_escape(&zone.replace('/', "=2F")))
}

/// The rrsets of `zone` (all, or those named `fqdn`) of the types this provider manages,
/// with at least one record. PowerDNS 4.7 also returns, for a name filter, rrsets of other
/// names that have comments but no records: both are filtered here.
fn rrsets(zone: &str, fqdn: Option<&str>) -> Result<Vec<Value>, ProviderError> {
    let api = api()?;
    let path = match fqdn {
        Some(name) => format!("{}?rrset_name={}", zone_path(zone), query_escape(name)),
        None => zone_path(zone),
    };
    let answer = api.get(&path).send()?;
    if answer.status == 404 {
        // The server was verified: a 404 here is the zone.
        return Err(permanent(format!(
            "the zone {zone} does not exist on this PowerDNS server"
        )));
    }
    let body: Value = answer.success()?.json()?;
    Ok(body["rrsets"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| MANAGED_TYPES.contains(&r["type"].as_str().unwrap_or_default()))
        .filter(|r| fqdn.is_none_or(|name| r["name"].as_str() == Some(name)))
        .filter(|r| {
            r["records"]
                .as_array()
                .is_some_and(|records| !records.is_empty())
        })
        .cloned()
        .collect())
}

fn find(fqdn: &str, record_type: &str) -> Result<Option<Value>, ProviderError> {
    let zone = zone_for(fqdn)?;
    Ok(rrsets(&zone, Some(fqdn))?
        .into_iter()
        .find(|r| r["type"].as_str() == Some(record_type)))
}

/// The owner tag of an rrset: its comment that is a tag, else its first comment.
fn owner_of(rrset: &Value) -> Option<String> {
    let comments: Vec<&str> = rrset["comments"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["content"].as_str())
        .filter(|c| !c.is_empty())
        .collect();
    comments
        .iter()
        .find(|c| c.starts_with("fabrik:"))
        .or(comments.first())
        .map(|c| (*c).to_owned())
}

fn to_resource(rrset: &Value) -> Result<Resource, ProviderError> {
    let default_ttl = STATE.with(|s| s.default_ttl)?;
    let name = rrset["name"].as_str().unwrap_or_default();
    let record_type = rrset["type"].as_str().unwrap_or_default();
    if name.is_empty() || record_type.is_empty() {
        return Err(permanent(format!(
            "PowerDNS returned an rrset without a name or type: {rrset}"
        )));
    }
    // Only enabled records resolve: a disabled one reads as missing content (drift).
    let contents: Vec<&str> = rrset["records"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["disabled"].as_bool() != Some(true))
        .filter_map(|r| r["content"].as_str())
        .map(|c| c.trim_end_matches('.'))
        .collect();
    let mut live = json!({ "type": record_type, "content": contents.join(", ") });
    match rrset["ttl"].as_u64() {
        Some(ttl) if ttl == u64::from(default_ttl) => {}
        Some(ttl) => live["ttl"] = json!(ttl),
        None => {}
    }
    let name = name.trim_end_matches('.');
    Ok(Resource {
        kind: KIND.to_owned(),
        id: id_of(name, record_type),
        name: name.to_owned(),
        owner: owner_of(rrset),
        live: live.to_string(),
        outputs: json!({ "name": name, "type": record_type }).to_string(),
    })
}

/// The rrset change that makes `fqdn` hold `desired`; `owner`, when given, is written
/// as its comment (without it PowerDNS keeps the rrset's comments).
fn replace(fqdn: &str, desired: &Desired, owner: Option<&str>) -> Result<Value, ProviderError> {
    let default_ttl = STATE.with(|s| s.default_ttl)?;
    let ttl = desired.ttl.filter(|ttl| *ttl != 1).unwrap_or(default_ttl);
    let content = if desired.record_type == "CNAME" {
        absolute(&desired.content)
    } else {
        desired.content.clone()
    };
    let mut rrset = json!({
        "name": fqdn,
        "type": desired.record_type,
        "ttl": ttl,
        "changetype": "REPLACE",
        "records": [{ "content": content, "disabled": false }],
    });
    if let Some(owner) = owner {
        rrset["comments"] = json!([{ "content": owner, "account": COMMENT_ACCOUNT }]);
    }
    Ok(rrset)
}

fn delete_change(fqdn: &str, record_type: &str) -> Value {
    json!({ "name": fqdn, "type": record_type, "changetype": "DELETE" })
}

/// Applies rrset changes to `fqdn`'s zone in one request (PowerDNS applies them
/// together or not at all).
fn patch(fqdn: &str, changes: Vec<Value>) -> Result<(), ProviderError> {
    let zone = zone_for(fqdn)?;
    let answer = api()?
        .patch(&zone_path(&zone), &json!({ "rrsets": changes }))
        .send()?;
    if answer.is_success() {
        Ok(())
    } else {
        Err(refused(&answer))
    }
}

/// PowerDNS's error bodies are `{"error": "..."}`.
fn refused(answer: &Response) -> ProviderError {
    let message = answer
        .json::<Value>()
        .ok()
        .and_then(|b| b["error"].as_str().map(str::to_owned))
        .unwrap_or_else(|| answer.excerpt());
    answer.error(&message)
}

/// Reads back what a change made; it must be there.
fn read_back(fqdn: &str, record_type: &str) -> Result<Resource, ProviderError> {
    match find(fqdn, record_type)? {
        Some(rrset) => to_resource(&rrset),
        None => Err(permanent(format!(
            "PowerDNS accepted the {record_type} record {fqdn} but does not show it"
        ))),
    }
}

/// The provider. Public so that, natively (where nothing exports it), what it calls is
/// still live code to the compiler.
pub struct PowerDns;

impl Provider for PowerDns {
    fn describe() -> ProviderInfo {
        let key = |name: &str, description: &str, secret: bool, required: bool| ConfigKey {
            name: name.to_owned(),
            description: description.to_owned(),
            secret,
            required,
        };
        ProviderInfo {
            name: "powerdns".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            description: "PowerDNS Authoritative records (A, AAAA, CNAME) through its HTTP API"
                .to_owned(),
            kinds: vec![KIND.to_owned()],
            config: vec![
                key(
                    "base-url",
                    "the web server's root, e.g. http://127.0.0.1:8081 (pdns.conf `webserver-address`, `webserver-port`)",
                    false,
                    true,
                ),
                key("api-key", "pdns.conf `api-key`", true, true),
                key(
                    "server-id",
                    "the server in the API's paths (default `localhost`)",
                    false,
                    false,
                ),
                key(
                    "zone",
                    "the zone of the records (default: the most specific zone of the server that contains the name)",
                    false,
                    false,
                ),
                key(
                    "default-ttl",
                    "the TTL of an automatic record, in seconds (default 3600)",
                    false,
                    false,
                ),
            ],
            // Self-hosted: only the configured base URL is ever granted.
            default_origins: Vec::new(),
            // PowerDNS has no rate limit of its own.
            rate_limit: None,
        }
    }

    fn configure(config: Vec<(String, String)>) -> Result<(), ProviderError> {
        let config = Config::new(config);
        let base = config.required_base_url()?;
        let base = base.trim_end_matches("/api/v1").to_owned();
        let server = config.get("server-id").unwrap_or("localhost").trim();
        if server.is_empty() || server.contains('/') {
            return Err(invalid_config(format!(
                "`server-id` {server:?} is not a server id"
            )));
        }
        let default_ttl = match config.get("default-ttl") {
            None => DEFAULT_TTL,
            Some(text) => text
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|ttl| (60..=86400).contains(ttl))
                .ok_or_else(|| {
                    invalid_config(format!("`default-ttl` {text:?} is not 60 to 86400 seconds"))
                })?,
        };
        STATE.set(State {
            api: Api::new(
                "PowerDNS",
                format!("{base}/api/v1/servers/{}", query_escape(server)),
            )
            .credential_header("api-key", "X-API-Key"),
            verified: false,
            zone: config
                .get("zone")
                .map(str::trim)
                .filter(|z| !z.is_empty())
                .map(absolute),
            zones: None,
            default_ttl,
        });
        Ok(())
    }

    fn read(kind: String, id: String) -> Result<Option<Resource>, ProviderError> {
        fabrik_provider_sdk::check_kind(&kind, &[KIND])?;
        let (fqdn, record_type) = split_id(&id)?;
        find(&fqdn, &record_type)?
            .map(|rrset| to_resource(&rrset))
            .transpose()
    }

    fn create(
        kind: String,
        name: String,
        desired: String,
        owner: String,
    ) -> Result<Resource, ProviderError> {
        fabrik_provider_sdk::check_kind(&kind, &[KIND])?;
        let desired = parse_desired(&desired)?;
        let fqdn = absolute(&name);
        let zone = zone_for(&fqdn)?;
        // A name holds a CNAME or other records, never both: any managed rrset there
        // that is not ours is a conflict; ours (a create that answered late) is updated.
        let existing = rrsets(&zone, Some(&fqdn))?;
        if let Some(foreign) = existing
            .iter()
            .find(|r| owner_of(r).as_deref() != Some(owner.as_str()))
        {
            return Err(permanent(format!(
                "conflict: the {} record {name} already exists and is not owned by `{owner}` ({}); remove it or choose another domain",
                foreign["type"].as_str().unwrap_or("?"),
                owner_of(foreign)
                    .map_or("no owner comment".to_owned(), |o| format!("comment {o:?}"))
            )));
        }
        let mut changes: Vec<Value> = existing
            .iter()
            .filter_map(|r| r["type"].as_str())
            .filter(|t| *t != desired.record_type)
            .map(|t| delete_change(&fqdn, t))
            .collect();
        changes.push(replace(&fqdn, &desired, Some(&owner))?);
        patch(&fqdn, changes)?;
        read_back(&fqdn, &desired.record_type)
    }

    fn update(kind: String, id: String, desired: String) -> Result<Resource, ProviderError> {
        fabrik_provider_sdk::check_kind(&kind, &[KIND])?;
        let desired = parse_desired(&desired)?;
        let (fqdn, record_type) = split_id(&id)?;
        let Some(current) = find(&fqdn, &record_type)? else {
            return Err(not_found(format!("dns-record {id} no longer exists")));
        };
        let changes = if record_type == desired.record_type {
            vec![replace(&fqdn, &desired, None)?]
        } else {
            // Another type at the name must be ours or absent: a foreign AAAA is never
            // overwritten and re-tagged, and a CNAME shares its name with nothing.
            let ours = owner_of(&current);
            let zone = zone_for(&fqdn)?;
            if let Some(foreign) = rrsets(&zone, Some(&fqdn))?.iter().find(|r| {
                let other = r["type"].as_str().unwrap_or_default();
                other != record_type
                    && (other == desired.record_type
                        || desired.record_type == "CNAME"
                        || other == "CNAME")
                    && owner_of(r) != ours
            }) {
                return Err(permanent(format!(
                    "conflict: the {} record {} exists and is not owned by this app ({}); remove it or choose another domain",
                    foreign["type"].as_str().unwrap_or("?"),
                    fqdn.trim_end_matches('.'),
                    owner_of(foreign)
                        .map_or("no owner comment".to_owned(), |o| format!("comment {o:?}"))
                )));
            }
            // Another type is another rrset (a new id): the old one goes in the same
            // request, and its owner comment moves with it.
            vec![
                delete_change(&fqdn, &record_type),
                replace(&fqdn, &desired, owner_of(&current).as_deref())?,
            ]
        };
        patch(&fqdn, changes)?;
        read_back(&fqdn, &desired.record_type)
    }

    fn delete(kind: String, id: String, owner: String, _purge: bool) -> Result<(), ProviderError> {
        fabrik_provider_sdk::check_kind(&kind, &[KIND])?;
        let (fqdn, record_type) = split_id(&id)?;
        // Re-read first: never delete a record that no longer carries our owner tag.
        let Some(current) = find(&fqdn, &record_type)? else {
            return Ok(());
        };
        owner::ensure_owned(
            owner_of(&current).as_deref(),
            &owner,
            &format!("dns-record {id}"),
        )?;
        patch(&fqdn, vec![delete_change(&fqdn, &record_type)])
    }

    fn progress(kind: String, _id: String) -> Result<ProgressReport, ProviderError> {
        fabrik_provider_sdk::check_kind(&kind, &[KIND])?;
        Ok(ProgressReport {
            state: ProgressState::Ready,
            message: Some("PowerDNS serves a change as soon as it is made".to_owned()),
        })
    }

    fn lookup(
        kind: String,
        name: String,
        owner: String,
        desired: Option<String>,
    ) -> Result<Option<Resource>, ProviderError> {
        fabrik_provider_sdk::check_kind(&kind, &[KIND])?;
        let fqdn = absolute(&name);
        let zone = zone_for(&fqdn)?;
        let mut found = rrsets(&zone, Some(&fqdn))?;
        // The wanted type first, so that of several rrsets of ours the one to keep is
        // found; then ours before a foreign one.
        if let Some(wanted) = desired
            .as_deref()
            .and_then(|d| serde_json::from_str::<Value>(d).ok())
            .and_then(|d| d["type"].as_str().map(str::to_owned))
        {
            found.sort_by_key(|r| r["type"].as_str() != Some(wanted.as_str()));
        }
        let owners: Vec<Option<String>> = found.iter().map(owner_of).collect();
        let index = owners
            .iter()
            .position(|o| o.as_deref() == Some(owner.as_str()))
            .or((!found.is_empty()).then_some(0));
        index.map(|i| to_resource(&found[i])).transpose()
    }

    fn list(
        kind: String,
        owner_prefix: String,
        cursor: Option<String>,
    ) -> Result<ResourcePage, ProviderError> {
        fabrik_provider_sdk::check_kind(&kind, &[KIND])?;
        let zones = match STATE.with(|s| s.zone.clone())? {
            Some(zone) => vec![zone],
            None => zones()?,
        };
        // One zone per page, in name order; the cursor names the zone, so that a zone
        // added or removed between pages shifts nothing.
        let mut zones = zones;
        zones.sort();
        let zone = match cursor.as_deref() {
            None => zones.first(),
            Some(text) => {
                let after = text.strip_prefix("zone:").ok_or_else(|| {
                    permanent(format!("`{text}` is not a cursor of this provider"))
                })?;
                zones.iter().find(|z| z.as_str() >= after)
            }
        };
        let Some(zone) = zone.cloned() else {
            return Ok(ResourcePage {
                resources: Vec::new(),
                next: None,
            });
        };
        let resources = rrsets(&zone, None)?
            .iter()
            .filter(|r| owner::has_prefix(owner_of(r).as_deref(), &owner_prefix))
            .map(to_resource)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ResourcePage {
            resources,
            next: zones
                .iter()
                .find(|z| z.as_str() > zone.as_str())
                .map(|z| format!("zone:{z}")),
        })
    }
}

// Only the component exports the contract: natively, the export names (which contain `:`)
// cannot be linked into a shared library, and native builds exist for unit tests.
#[cfg(target_arch = "wasm32")]
fabrik_provider_sdk::export_provider!(PowerDns);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn desired_records_are_checked() {
        assert!(parse_desired(r#"{"content":"203.0.113.7"}"#).is_ok());
        assert!(parse_desired(r#"{"content":"203.0.113.7","ttl":1,"proxied":false}"#).is_ok());
        assert!(parse_desired(r#"{"type":"AAAA","content":"2001:db8::1","ttl":300}"#).is_ok());
        assert!(parse_desired(r#"{"content":"203.0.113.7","proxied":true}"#).is_err());
        assert!(parse_desired(r#"{"content":"203.0.113.7","ttl":30}"#).is_err());
        assert!(parse_desired(r#"{"content":"not-an-ip"}"#).is_err());
        assert!(parse_desired(r#"{"type":"MX","content":"x"}"#).is_err());
    }

    #[test]
    fn ids_are_name_and_type() {
        assert_eq!(id_of("api.example.com", "A"), "api.example.com./A");
        assert_eq!(
            split_id("api.example.com./AAAA").ok(),
            Some(("api.example.com.".to_owned(), "AAAA".to_owned()))
        );
        assert!(split_id("api.example.com").is_err());
        assert!(split_id("api.example.com./MX").is_err());
    }

    use fabrik_provider_sdk::testing::{FakeHost, reply};

    const BASE: &str = "http://127.0.0.1:8081";
    const SERVER: &str = "http://127.0.0.1:8081/api/v1/servers/localhost";

    fn configured() {
        PowerDns::configure(vec![("base-url".to_owned(), BASE.to_owned())]).expect("configured");
    }

    /// The 404 trap (issue 27): a base URL that is not PowerDNS's API answers 404 for
    /// everything; the provider says the URL is wrong instead of "the record is gone".
    #[test]
    fn a_wrong_base_url_is_never_taken_for_a_missing_record() {
        let host = FakeHost::serve(|_| reply(404, "Not Found"));
        configured();
        let read = PowerDns::read(KIND.to_owned(), "api.example.com./A".to_owned());
        assert!(
            matches!(&read, Err(ProviderError::InvalidConfig(m)) if m.contains("no PowerDNS API there")),
            "{read:?}"
        );
        assert_eq!(host.requests()[0].url, SERVER);
    }

    #[test]
    fn a_refused_key_is_unauthorized() {
        let _host = FakeHost::serve(|_| reply(401, r#"{"error": "Unauthorized"}"#));
        configured();
        let found = PowerDns::lookup(
            KIND.to_owned(),
            "api.example.com".to_owned(),
            "o".to_owned(),
            None,
        );
        assert!(
            matches!(found, Err(ProviderError::Unauthorized(_))),
            "{found:?}"
        );
    }

    /// `create` writes the owner as the rrset's comment, automatic as `default-ttl`, and
    /// reports the record without `ttl` and without `proxied`.
    #[test]
    fn a_created_record_carries_its_owner_and_reports_automatic_as_absent() {
        let patched = std::rc::Rc::new(std::cell::RefCell::new(None::<Value>));
        let seen = patched.clone();
        let host = FakeHost::serve(move |request| {
            let url = request.url.as_str();
            let body = request
                .body
                .as_ref()
                .and_then(|b| serde_json::from_slice::<Value>(b).ok());
            if url == SERVER {
                return reply(200, r#"{"type": "Server", "id": "localhost"}"#);
            }
            if url.ends_with("/zones") {
                return reply(200, r#"[{"name": "example.com."}]"#);
            }
            if let Some(body) = body {
                *seen.borrow_mut() = Some(body);
                return reply(204, "");
            }
            let rrsets = match &*seen.borrow() {
                None => json!([]),
                Some(patch) => {
                    let mut rrset = patch["rrsets"][0].clone();
                    rrset.as_object_mut().map(|o| o.remove("changetype"));
                    json!([rrset])
                }
            };
            reply(200, &json!({ "rrsets": rrsets }).to_string())
        });
        configured();
        let created = PowerDns::create(
            KIND.to_owned(),
            "api.example.com".to_owned(),
            r#"{"type": "A", "content": "192.0.2.1"}"#.to_owned(),
            "fabrik:acme/api".to_owned(),
        )
        .expect("created");
        let sent = patched.borrow().clone().expect("a PATCH was sent");
        assert_eq!(sent["rrsets"][0]["ttl"], 3600);
        assert_eq!(
            sent["rrsets"][0]["comments"][0]["content"],
            "fabrik:acme/api"
        );
        assert_eq!(created.id, "api.example.com./A");
        assert_eq!(created.owner.as_deref(), Some("fabrik:acme/api"));
        let live: Value = serde_json::from_str(&created.live).expect("JSON");
        assert_eq!(live, json!({ "type": "A", "content": "192.0.2.1" }));
        assert!(
            host.requests()
                .iter()
                .all(|r| r.credential.as_ref().is_some_and(|c| c.key == "api-key"))
        );
    }

    /// A zone holding `rrsets` (as PowerDNS shows them) behind a verified server; every
    /// PATCH is kept.
    fn server_with(rrsets: Value) -> (FakeHost, std::rc::Rc<std::cell::RefCell<Vec<Value>>>) {
        let patches = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        let kept = patches.clone();
        let host = FakeHost::serve(move |request| {
            let url = request.url.as_str();
            if url == SERVER {
                return reply(200, r#"{"type": "Server"}"#);
            }
            if url.ends_with("/zones") {
                return reply(200, r#"[{"name": "example.com."}]"#);
            }
            if let Some(body) = request.body.as_ref() {
                kept.borrow_mut()
                    .push(serde_json::from_slice::<Value>(body).expect("JSON"));
                return reply(204, "");
            }
            reply(200, &json!({ "rrsets": rrsets }).to_string())
        });
        (host, patches)
    }

    /// Review of issue 27: an A record of ours moving to AAAA never overwrites (and
    /// re-tags) an AAAA someone else holds at the name.
    #[test]
    fn a_type_change_never_takes_a_foreign_record() {
        let (_host, patches) = server_with(json!([
            { "name": "api.example.com.", "type": "A", "ttl": 3600,
              "records": [{ "content": "192.0.2.1", "disabled": false }],
              "comments": [{ "content": "fabrik:acme/api" }] },
            { "name": "api.example.com.", "type": "AAAA", "ttl": 3600,
              "records": [{ "content": "2001:db8::9", "disabled": false }],
              "comments": [{ "content": "set by hand" }] },
        ]));
        configured();
        let updated = PowerDns::update(
            KIND.to_owned(),
            "api.example.com./A".to_owned(),
            r#"{"type": "AAAA", "content": "2001:db8::1"}"#.to_owned(),
        );
        assert!(
            matches!(&updated, Err(ProviderError::Permanent(m)) if m.contains("not owned")),
            "{updated:?}"
        );
        assert!(patches.borrow().is_empty(), "nothing was sent");
    }

    #[test]
    fn wrong_settings_are_invalid_config_naming_the_key() {
        let configure = |pairs: &[(&str, &str)]| {
            PowerDns::configure(
                pairs
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            )
        };
        for (pairs, key) in [
            (vec![], "base-url"),
            (vec![("base-url", "127.0.0.1:8081")], "base-url"),
            (
                vec![("base-url", BASE), ("default-ttl", "30")],
                "default-ttl",
            ),
            (
                vec![("base-url", BASE), ("default-ttl", "soon")],
                "default-ttl",
            ),
            (vec![("base-url", BASE), ("server-id", "a/b")], "server-id"),
        ] {
            let refused = configure(&pairs);
            assert!(
                matches!(&refused, Err(ProviderError::InvalidConfig(m)) if m.contains(key)),
                "{pairs:?}: {refused:?}"
            );
        }
    }

    #[test]
    fn names_are_lowercased_as_powerdns_stores_them() {
        assert_eq!(absolute("API.Example.COM"), "api.example.com.");
        assert_eq!(id_of("Api.Example.com", "A"), "api.example.com./A");
    }

    #[test]
    fn a_ttl_equal_to_the_automatic_one_is_refused() {
        let refused = parse_desired(r#"{"content": "192.0.2.1", "ttl": 3600}"#);
        assert!(
            matches!(&refused, Err(ProviderError::Permanent(m)) if m.contains("leave `ttl` out")),
            "{refused:?}"
        );
    }

    #[test]
    fn the_owner_is_the_tag_among_the_comments() {
        let rrset = json!({ "comments": [
            { "content": "set by hand", "account": "bob" },
            { "content": "fabrik:acme/api", "account": "fabrik" },
        ]});
        assert_eq!(owner_of(&rrset).as_deref(), Some("fabrik:acme/api"));
        let untagged = json!({ "comments": [{ "content": "set by hand" }] });
        assert_eq!(owner_of(&untagged).as_deref(), Some("set by hand"));
        assert_eq!(owner_of(&json!({ "comments": [] })), None);
    }
}

//! Cloudflare DNS provider plugin: DNS records (A, AAAA, CNAME) in Cloudflare zones,
//! spoken through Cloudflare's v4 API. Built as a WebAssembly component of the
//! `fabrik:provider` world; the host attaches the API token.
//!
//! Kind `dns-record`. Desired state (JSON): `{"type": "A", "content": "203.0.113.7",
//! "ttl": 1, "proxied": false}`; `type` defaults to `A`, `ttl` to 1 (automatic), `proxied`
//! to false and is always sent, so the proxy never flips by omission. The resource name is
//! the record's full name. The owner tag is stored in the record's `comment`. Resource ids
//! are `<zone id>/<record id>`. Outputs: `zone_id`, `record_id`, `name`.
//!
//! `list` walks every zone the token can read, 25 zones per page, asking all of a page's
//! zones at once (one `http-send-many`) for the records whose comment starts with the
//! owner prefix.

mod api;

use std::collections::HashMap;

use fabrik_provider_sdk::config::Config;
use fabrik_provider_sdk::error::permanent;
use fabrik_provider_sdk::http::{self, Api, query_escape};
use fabrik_provider_sdk::{
    ConfigKey, Instance, Method, ProgressReport, ProgressState, Provider, ProviderError,
    ProviderInfo, RateLimit, Resource, ResourcePage, owner,
};
use serde::Deserialize;
use serde_json::{Value, json};

const KIND: &str = "dns-record";
const DEFAULT_BASE: &str = "https://api.cloudflare.com/client/v4";

/// Zones asked at once by `list`: one `http-send-many` per page of zones.
const LIST_ZONES_PER_PAGE: u32 = 25;

struct State {
    api: Api,
    /// Name → the id of the most specific zone that contains it, for the life of this
    /// instance (one apply): zones do not move within an apply, and each lookup costs one
    /// `GET /zones?name=` per label tried.
    zones: HashMap<String, String>,
}

static STATE: Instance<State> = Instance::new();

fn api() -> Result<Api, ProviderError> {
    STATE.with(|s| s.api.clone())
}

/// The desired record.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct Desired {
    #[serde(rename = "type", default = "default_type")]
    record_type: String,
    content: String,
    #[serde(default = "default_ttl")]
    ttl: u32,
    #[serde(default)]
    proxied: bool,
}

fn default_type() -> String {
    "A".to_owned()
}
fn default_ttl() -> u32 {
    1
}

fn parse_desired(text: &str) -> Result<Desired, ProviderError> {
    let desired: Desired = fabrik_provider_sdk::parse_desired(KIND, text)?;
    match desired.record_type.as_str() {
        "A" if desired.content.parse::<std::net::Ipv4Addr>().is_err() => {
            return Err(permanent(format!(
                "an A record needs an IPv4 address, not {:?}",
                desired.content
            )));
        }
        "AAAA" if desired.content.parse::<std::net::Ipv6Addr>().is_err() => {
            return Err(permanent(format!(
                "an AAAA record needs an IPv6 address, not {:?}",
                desired.content
            )));
        }
        "CNAME" if desired.content.trim().is_empty() => {
            return Err(permanent("a CNAME record needs a target name"));
        }
        "A" | "AAAA" | "CNAME" => {}
        other => {
            return Err(permanent(format!(
                "record type {other} is not supported (A, AAAA, CNAME)"
            )));
        }
    }
    if desired.ttl != 1 && !(60..=86400).contains(&desired.ttl) {
        return Err(permanent(format!(
            "ttl {} is invalid: 1 (automatic) or 60 to 86400",
            desired.ttl
        )));
    }
    if desired.proxied && desired.ttl != 1 {
        return Err(permanent(
            "a proxied record always has ttl 1 (automatic); Cloudflare would never converge",
        ));
    }
    Ok(desired)
}

fn check_kind(kind: &str) -> Result<(), ProviderError> {
    fabrik_provider_sdk::check_kind(kind, &[KIND])
}

/// The most specific zone that contains `fqdn`: asks for `a.b.example.com`,
/// `b.example.com` and `example.com` at once (`GET /zones?name=`, one round trip) and
/// takes the longest that exists.
fn find_zone(fqdn: &str) -> Result<String, ProviderError> {
    if let Some(id) = STATE.with(|s| s.zones.get(fqdn).cloned())? {
        return Ok(id);
    }
    let api = api()?;
    let labels: Vec<&str> = fqdn.split('.').collect();
    let candidates: Vec<String> = (0..labels.len().saturating_sub(1))
        .map(|start| labels[start..].join("."))
        .collect();
    let answers = http::send_many(
        candidates
            .iter()
            .map(|c| api.get(&format!("/zones?name={}", query_escape(c))))
            .collect(),
    );
    for (candidate, answer) in candidates.iter().zip(answers) {
        let envelope = api::envelope(answer).map_err(|f| f.error)?;
        let zone = envelope.result.as_array().and_then(|zones| {
            zones
                .iter()
                .find(|z| z["name"].as_str() == Some(candidate.as_str()))
        });
        // A zone Cloudflare does not serve: a record there would not resolve, and the
        // health check would wait for it in vain (schema `zones_status`).
        match zone.and_then(|z| z["status"].as_str()) {
            Some("pending" | "initializing") => {
                return Err(permanent(format!(
                    "the Cloudflare zone {candidate} is pending: its nameservers are not Cloudflare's yet, so a record there would not resolve; set the nameservers Cloudflare shows for the zone at your registrar, then apply again"
                )));
            }
            Some("moved") => {
                return Err(permanent(format!(
                    "the Cloudflare zone {candidate} is moved: its nameservers point elsewhere, so Cloudflare no longer answers for it; point them back at Cloudflare or use the DNS host that serves it"
                )));
            }
            _ => {}
        }
        let found = zone.and_then(|z| z["id"].as_str().map(str::to_owned));
        if let Some(id) = found {
            STATE.with(|s| s.zones.insert(fqdn.to_owned(), id.clone()))?;
            return Ok(id);
        }
    }
    Err(permanent(format!(
        "no Cloudflare zone for `{fqdn}` is visible to this token (tried {}); the token needs Zone:Read on the zone",
        candidates.join(", ")
    )))
}

fn split_id(id: &str) -> Result<(&str, &str), ProviderError> {
    id.split_once('/').ok_or_else(|| {
        permanent(format!(
            "`{id}` is not a dns-record id (<zone id>/<record id>)"
        ))
    })
}

fn to_resource(zone: &str, record: &Value) -> Result<Resource, ProviderError> {
    let text = |key: &str| record[key].as_str().unwrap_or_default().to_owned();
    let id = text("id");
    if id.is_empty() {
        return Err(permanent(format!(
            "Cloudflare returned a record without an id: {record}"
        )));
    }
    let comment = text("comment");
    Ok(Resource {
        kind: KIND.to_owned(),
        id: format!("{zone}/{id}"),
        name: text("name"),
        owner: (!comment.is_empty()).then_some(comment),
        live: json!({
            "type": record["type"],
            "content": record["content"],
            "ttl": record["ttl"],
            "proxied": record["proxied"].as_bool().unwrap_or(false),
        })
        .to_string(),
        outputs: json!({ "zone_id": zone, "record_id": id, "name": record["name"] }).to_string(),
    })
}

fn live_matches(record: &Value, desired: &Desired) -> bool {
    record["type"].as_str() == Some(desired.record_type.as_str())
        && record["content"].as_str() == Some(desired.content.as_str())
        && record["ttl"].as_u64() == Some(u64::from(desired.ttl))
        && record["proxied"].as_bool().unwrap_or(false) == desired.proxied
}

/// Records named `fqdn` of the types this provider manages.
fn records_named(zone: &str, fqdn: &str) -> Result<Vec<Value>, ProviderError> {
    let envelope = api::call(
        &api()?,
        Method::Get,
        &format!(
            "/zones/{zone}/dns_records?name={}&per_page=100",
            query_escape(fqdn)
        ),
        None,
    )
    .map_err(|f| f.error)?;
    Ok(envelope
        .result
        .as_array()
        .map(|all| {
            all.iter()
                .filter(|r| matches!(r["type"].as_str(), Some("A" | "AAAA" | "CNAME")))
                .cloned()
                .collect()
        })
        .unwrap_or_default())
}

fn get_record(zone: &str, record: &str) -> Result<Option<Value>, ProviderError> {
    match api::call(
        &api()?,
        Method::Get,
        &format!("/zones/{zone}/dns_records/{record}"),
        None,
    ) {
        Ok(envelope) => Ok(Some(envelope.result)),
        Err(f) if f.status == 404 || f.has_code(&[api::RECORD_MISSING_CODE]) => Ok(None),
        Err(f) => Err(f.error),
    }
}

fn patch(zone: &str, record: &str, desired: &Desired) -> Result<Value, ProviderError> {
    let body = json!({
        "type": desired.record_type,
        "content": desired.content,
        "ttl": desired.ttl,
        "proxied": desired.proxied,
    });
    api::call(
        &api()?,
        Method::Patch,
        &format!("/zones/{zone}/dns_records/{record}"),
        Some(&body),
    )
    .map(|e| e.result)
    .map_err(|f| f.error)
}

/// Records of `zones` whose comment starts with `prefix`, asked in one round trip.
fn owned_records(zones: &[String], prefix: &str) -> Result<Vec<Resource>, ProviderError> {
    let api = api()?;
    let mut resources = Vec::new();
    let mut pending: Vec<(String, u32)> = zones.iter().map(|z| (z.clone(), 1)).collect();
    // Usually one round: a zone with more tagged records than a page asks again.
    while !pending.is_empty() {
        let requests = pending
            .iter()
            .map(|(zone, page)| {
                api.get(&format!(
                    "/zones/{zone}/dns_records?comment.startswith={}&per_page=1000&page={page}",
                    query_escape(prefix)
                ))
            })
            .collect();
        let answers = http::send_many(requests);
        let mut next = Vec::new();
        for ((zone, page), answer) in pending.into_iter().zip(answers) {
            let envelope = api::envelope(answer).map_err(|f| f.error)?;
            for record in envelope.result.as_array().into_iter().flatten() {
                let tagged = owner::has_prefix(record["comment"].as_str(), prefix);
                let managed = matches!(record["type"].as_str(), Some("A" | "AAAA" | "CNAME"));
                if tagged && managed {
                    resources.push(to_resource(&zone, record)?);
                }
            }
            if envelope.has_next_page() {
                next.push((zone, page + 1));
            }
        }
        pending = next;
    }
    Ok(resources)
}

/// The provider. Public so that, natively (where nothing exports it), what it calls is
/// still live code to the compiler.
pub struct Cloudflare;

impl Provider for Cloudflare {
    fn describe() -> ProviderInfo {
        ProviderInfo {
            name: "cloudflare".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            description: "Cloudflare DNS records (A, AAAA, CNAME)".to_owned(),
            kinds: vec![KIND.to_owned()],
            config: vec![
                ConfigKey {
                    name: "base-url".to_owned(),
                    description: format!("API base URL (default {DEFAULT_BASE})"),
                    secret: false,
                    required: false,
                },
                ConfigKey {
                    name: "api-token".to_owned(),
                    description: "Cloudflare API token with Zone:Read and DNS:Edit on the zone"
                        .to_owned(),
                    secret: true,
                    required: true,
                },
            ],
            default_origins: vec!["https://api.cloudflare.com".to_owned()],
            // 1,200 requests per five minutes per user, whatever the token
            // (developers.cloudflare.com/fundamentals/api/reference/limits); the host
            // also reads the `Ratelimit` and `Ratelimit-Policy` headers the API sends.
            rate_limit: Some(RateLimit {
                requests: 1200,
                window_seconds: 300,
            }),
        }
    }

    fn configure(config: Vec<(String, String)>) -> Result<(), ProviderError> {
        let base = Config::new(config).base_url(DEFAULT_BASE)?;
        STATE.set(State {
            api: Api::new("Cloudflare", base).bearer("api-token"),
            zones: HashMap::new(),
        });
        Ok(())
    }

    fn read(kind: String, id: String) -> Result<Option<Resource>, ProviderError> {
        check_kind(&kind)?;
        let (zone, record) = split_id(&id)?;
        get_record(zone, record)?
            .map(|r| to_resource(zone, &r))
            .transpose()
    }

    fn create(
        kind: String,
        name: String,
        desired: String,
        owner: String,
    ) -> Result<Resource, ProviderError> {
        check_kind(&kind)?;
        let desired = parse_desired(&desired)?;
        let zone = find_zone(&name)?;
        let body = json!({
            "type": desired.record_type,
            "name": name,
            "content": desired.content,
            "ttl": desired.ttl,
            "proxied": desired.proxied,
            "comment": owner,
        });
        match api::call(
            &api()?,
            Method::Post,
            &format!("/zones/{zone}/dns_records"),
            Some(&body),
        ) {
            Ok(envelope) => to_resource(&zone, &envelope.result),
            Err(f) if f.has_code(api::DUPLICATE_CODES) || f.has_code(api::HOST_CONFLICT_CODES) => {
                // It exists already: adopt it only if it carries our owner tag.
                let existing = records_named(&zone, &name)?;
                let ours = existing.iter().find(|r| {
                    r["type"].as_str() == Some(desired.record_type.as_str())
                        && r["comment"].as_str() == Some(owner.as_str())
                });
                match ours {
                    Some(record) => {
                        let record_id = record["id"].as_str().unwrap_or_default().to_owned();
                        let record = if live_matches(record, &desired) {
                            record.clone()
                        } else {
                            patch(&zone, &record_id, &desired)?
                        };
                        to_resource(&zone, &record)
                    }
                    None => {
                        let names: Vec<String> = existing
                            .iter()
                            .map(|r| {
                                format!(
                                    "{} {} -> {} (id {}, comment {:?})",
                                    r["type"].as_str().unwrap_or("?"),
                                    name,
                                    r["content"].as_str().unwrap_or("?"),
                                    r["id"].as_str().unwrap_or("?"),
                                    r["comment"].as_str().unwrap_or("")
                                )
                            })
                            .collect();
                        Err(permanent(format!(
                            "conflict: {} already exists and is not owned by `{owner}`; remove it or choose another domain",
                            if names.is_empty() {
                                format!("a record for {name}")
                            } else {
                                names.join(", ")
                            }
                        )))
                    }
                }
            }
            Err(f) => Err(f.error),
        }
    }

    fn update(kind: String, id: String, desired: String) -> Result<Resource, ProviderError> {
        check_kind(&kind)?;
        let desired = parse_desired(&desired)?;
        let (zone, record) = split_id(&id)?;
        match get_record(zone, record)? {
            None => Err(ProviderError::NotFound(format!(
                "dns-record {id} no longer exists"
            ))),
            Some(current) if live_matches(&current, &desired) => to_resource(zone, &current),
            Some(_) => to_resource(zone, &patch(zone, record, &desired)?),
        }
    }

    fn delete(kind: String, id: String, owner: String, _purge: bool) -> Result<(), ProviderError> {
        check_kind(&kind)?;
        let (zone, record) = split_id(&id)?;
        // Re-read first: never delete a record that no longer carries our owner tag.
        let Some(current) = get_record(zone, record)? else {
            return Ok(());
        };
        let comment = current["comment"].as_str().filter(|c| !c.is_empty());
        owner::ensure_owned(
            comment,
            &owner,
            &format!(
                "dns-record {} ({id})",
                current["name"].as_str().unwrap_or("?")
            ),
        )?;
        match api::call(
            &api()?,
            Method::Delete,
            &format!("/zones/{zone}/dns_records/{record}"),
            None,
        ) {
            Ok(_) => Ok(()),
            Err(f) if f.status == 404 || f.has_code(&[api::RECORD_MISSING_CODE]) => Ok(()),
            Err(f) => Err(f.error),
        }
    }

    fn progress(kind: String, _id: String) -> Result<ProgressReport, ProviderError> {
        check_kind(&kind)?;
        Ok(ProgressReport {
            state: ProgressState::Ready,
            message: Some("DNS records apply immediately".to_owned()),
        })
    }

    fn lookup(
        kind: String,
        name: String,
        owner: String,
        // A DNS record's name is unique in its zone: the document adds nothing.
        _desired: Option<String>,
    ) -> Result<Option<Resource>, ProviderError> {
        check_kind(&kind)?;
        let zone = find_zone(&name)?;
        let records = records_named(&zone, &name)?;
        // Ours first; otherwise a foreign record is returned so the host can refuse it.
        owner::ours_first(&records, &owner, |r| r["comment"].as_str())
            .map(|r| to_resource(&zone, r))
            .transpose()
    }

    fn list(
        kind: String,
        owner_prefix: String,
        cursor: Option<String>,
    ) -> Result<ResourcePage, ProviderError> {
        check_kind(&kind)?;
        let page = match cursor.as_deref() {
            None => 1,
            Some(text) => text
                .strip_prefix("zones-page:")
                .and_then(|n| n.parse::<u32>().ok())
                .ok_or_else(|| permanent(format!("`{text}` is not a cursor of this provider")))?,
        };
        let envelope = api::call(
            &api()?,
            Method::Get,
            &format!("/zones?per_page={LIST_ZONES_PER_PAGE}&page={page}"),
            None,
        )
        .map_err(|f| f.error)?;
        let zones: Vec<String> = envelope
            .result
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|z| z["id"].as_str().map(str::to_owned))
            .collect();
        Ok(ResourcePage {
            resources: owned_records(&zones, &owner_prefix)?,
            next: envelope
                .has_next_page()
                .then(|| format!("zones-page:{}", page + 1)),
        })
    }
}

// Only the component exports the contract: natively, the export names (which contain `:`)
// cannot be linked into a shared library, and native builds exist for unit tests.
#[cfg(target_arch = "wasm32")]
fabrik_provider_sdk::export_provider!(Cloudflare);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn desired_records_are_checked() {
        assert!(parse_desired(r#"{"content":"203.0.113.7"}"#).is_ok());
        assert!(parse_desired(r#"{"type":"AAAA","content":"2001:db8::1","ttl":300}"#).is_ok());
        assert!(parse_desired(r#"{"content":"not-an-ip"}"#).is_err());
        assert!(parse_desired(r#"{"content":"203.0.113.7","ttl":300,"proxied":true}"#).is_err());
        assert!(parse_desired(r#"{"content":"203.0.113.7","ttl":30}"#).is_err());
        assert!(parse_desired(r#"{"type":"MX","content":"x"}"#).is_err());
        assert!(parse_desired(r#"{"content":"203.0.113.7","extra":1}"#).is_err());
    }
}

//! The `monitor` kind (`docs/schemas/monitor.*.json`) as an Uptime Kuma HTTP monitor.
//!
//! - `desired`: `{url, interval, retries, keyword?, expect_status?, active}`; a keyword
//!   makes it Uptime Kuma's `keyword` type (the page must contain it), else `http`;
//!   `expect_status` is the one accepted status (else any 2xx, `200-299`).
//! - The owner tag is the monitor's `description` (free text, no limit on either
//!   version); the resource's name is the monitor's `name`; its id the monitor id.
//! - What `add` must contain on both versions (upstream `server/server.js` `add`, and
//!   the simulator's `monitor.rs`): `accepted_statuscodes` as strings, a `timeout` (0
//!   would make the check's timeout absurd), and on 2.x `conditions: []` (NOT NULL), a
//!   key 1.23 refuses: `add` is tried with it, then without if the server has no such
//!   column.

use fabrik_provider_sdk::error::permanent;
use fabrik_provider_sdk::{ProviderError, Resource, ResourceBuilder};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

pub const KIND: &str = "monitor";

/// The monitor the app wants.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Desired {
    pub url: String,
    pub interval: u32,
    pub retries: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyword: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_status: Option<u16>,
    #[serde(default = "active")]
    pub active: bool,
}

fn active() -> bool {
    true
}

pub fn parse(text: &str) -> Result<Desired, ProviderError> {
    let desired: Desired = fabrik_provider_sdk::parse_desired(KIND, text)?;
    if !desired.url.starts_with("https://") && !desired.url.starts_with("http://") {
        return Err(permanent(format!(
            "a monitor checks an http(s) URL, not {:?}",
            desired.url
        )));
    }
    if !(20..=86_400).contains(&desired.interval) {
        return Err(permanent(format!(
            "interval {} is out of range: 20 to 86400 seconds (Uptime Kuma 1.23 refuses less than 20)",
            desired.interval
        )));
    }
    if desired.retries > 10 {
        return Err(permanent(format!(
            "retries {} is out of range: 0 to 10",
            desired.retries
        )));
    }
    Ok(desired)
}

/// The seconds a check may take: 80 % of the interval, at most 48 (Uptime Kuma's UI
/// default for a 60 s interval).
fn timeout(interval: u32) -> f64 {
    (f64::from(interval) * 0.8).min(48.0)
}

/// Sets `desired`'s fields on an Uptime Kuma monitor object (a new one, or one read
/// back with `getMonitor` for `editMonitor`, which stores what it is sent).
pub fn apply(monitor: &mut Map<String, Value>, name: &str, owner: &str, desired: &Desired) {
    let kind = if desired.keyword.is_some() {
        "keyword"
    } else {
        "http"
    };
    let statuses = match desired.expect_status {
        Some(status) => json!([status.to_string()]),
        None => json!(["200-299"]),
    };
    for (key, value) in [
        ("type", json!(kind)),
        ("name", json!(name)),
        ("description", json!(owner)),
        ("url", json!(desired.url)),
        ("method", json!("GET")),
        ("interval", json!(desired.interval)),
        ("retryInterval", json!(desired.interval)),
        ("maxretries", json!(desired.retries)),
        ("timeout", json!(timeout(desired.interval))),
        ("keyword", json!(desired.keyword)),
        ("accepted_statuscodes", statuses),
    ] {
        monitor.insert(key.to_owned(), value);
    }
}

/// A new monitor for `add` (2.x's `conditions` included when `with_conditions`).
pub fn new_monitor(name: &str, owner: &str, desired: &Desired, with_conditions: bool) -> Value {
    let mut monitor = Map::new();
    apply(&mut monitor, name, owner, desired);
    monitor.insert("active".to_owned(), json!(desired.active));
    monitor.insert("notificationIDList".to_owned(), json!({}));
    monitor.insert("resendInterval".to_owned(), json!(0));
    if with_conditions {
        monitor.insert("conditions".to_owned(), json!([]));
    }
    Value::Object(monitor)
}

/// What a monitor of Uptime Kuma is, as the kind's `live` document.
pub fn live(monitor: &Value) -> Value {
    let statuses: Vec<&str> = monitor["accepted_statuscodes"]
        .as_array()
        .map(|codes| codes.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let expect_status = match statuses.as_slice() {
        [one] => one.parse::<u16>().ok(),
        _ => None,
    };
    let keyword = monitor["keyword"]
        .as_str()
        .filter(|k| !k.is_empty() && monitor["type"] == "keyword");
    let mut live = json!({
        "url": monitor["url"],
        "interval": monitor["interval"],
        "retries": monitor["maxretries"],
        "active": monitor["active"].as_bool().unwrap_or(true),
    });
    if let Some(keyword) = keyword {
        live["keyword"] = json!(keyword);
    }
    if let Some(status) = expect_status {
        live["expect_status"] = json!(status);
    } else if statuses != ["200-299"] {
        live["accepted_statuses"] = json!(statuses);
    }
    live
}

/// The resource of a monitor read back.
pub fn resource(monitor: &Value) -> Result<Resource, ProviderError> {
    let id = super::socket::id_text(&monitor["id"]);
    let owner = monitor["description"].as_str().filter(|d| !d.is_empty());
    ResourceBuilder::new(KIND, &id, monitor["name"].as_str().unwrap_or_default())
        .owner(owner)
        .live(&live(monitor))
        .outputs(&json!({
            "active": monitor["active"].as_bool().unwrap_or(true),
            "url": monitor["url"],
        }))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desired() -> Desired {
        Desired {
            url: "https://api.example.com/health".to_owned(),
            interval: 60,
            retries: 1,
            keyword: None,
            expect_status: Some(200),
            active: true,
        }
    }

    #[test]
    fn a_new_monitor_reads_back_as_it_was_wanted() {
        let mut added = new_monitor("api", "fabrik:acme/api", &desired(), true);
        // What `toJSON` adds.
        added["id"] = json!(7);
        let live = live(&added);
        assert_eq!(
            live,
            json!({"url": "https://api.example.com/health", "interval": 60, "retries": 1, "active": true, "expect_status": 200})
        );
        assert_eq!(added["timeout"], json!(48.0));
        assert_eq!(added["accepted_statuscodes"], json!(["200"]));
        assert_eq!(added["conditions"], json!([]));
    }

    #[test]
    fn a_keyword_makes_a_keyword_monitor_and_bad_documents_are_refused() {
        let mut wanted = desired();
        wanted.keyword = Some("ok".to_owned());
        wanted.expect_status = None;
        let monitor = new_monitor("api", "o", &wanted, false);
        assert_eq!(monitor["type"], "keyword");
        assert!(monitor.get("conditions").is_none());
        assert_eq!(live(&monitor)["keyword"], "ok");
        for bad in [
            r#"{"url":"ftp://x","interval":60,"retries":0}"#,
            r#"{"url":"https://x","interval":5,"retries":0}"#,
            r#"{"url":"https://x","interval":60,"retries":99}"#,
            r#"{"url":"https://x","interval":60,"retries":0,"color":"red"}"#,
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}

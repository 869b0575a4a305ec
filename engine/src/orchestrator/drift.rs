//! Drift: what a provider reads back (`resource.live`) compared with what the app wants.
//!
//! Only fields a provider reports are compared, and a comparison says whether it saw
//! every field that matters (`complete`): Coolify hides env values from tokens without
//! `read:sensitive` and never shows a service's compose file. Apply treats a resource
//! whose visible fields agree as unchanged when the state says that what was last
//! deployed equals the spec (what `plan` shows as `=`), so a hand edit of a hidden field
//! goes unseen (README, "Drift"). Live env values are never printed (a plain variable
//! may hold what used to be a secret), only the spec's own plain values.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

/// The result of comparing one resource.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Comparison {
    /// Each field that differs, readable, without secret values.
    pub differences: Vec<String>,
    /// Whether every desired field could be compared.
    pub complete: bool,
}

impl Comparison {
    /// Live matches desired, as far as can be seen.
    pub fn is_clean(&self) -> bool {
        self.differences.is_empty()
    }
}

/// Compares `live` with `desired` for a resource of `kind`; `secrets` are the env keys
/// whose values must not be shown.
pub fn compare(kind: &str, desired: &Value, live: &Value, secrets: &[String]) -> Comparison {
    let mut comparison = match kind {
        "dns-record" => compare_record(desired, live),
        "application" | "service" => compare_coolify(kind, desired, live, secrets),
        "monitor" => compare_monitor(desired, live),
        _ => Comparison::default(),
    };
    // A provider's `live` may be megabytes (every key of a huge env, a value of any
    // length): what is said of it is bounded, each value and the list.
    if comparison.differences.len() > MAX_DIFFERENCES {
        let more = comparison.differences.len() - MAX_DIFFERENCES;
        comparison.differences.truncate(MAX_DIFFERENCES);
        comparison
            .differences
            .push(format!("… and {more} more differences"));
    }
    comparison
}

/// The most differences said of one resource.
pub const MAX_DIFFERENCES: usize = 20;
/// The longest value quoted from what a provider read back, in characters.
pub const MAX_SHOWN: usize = 120;

/// A value read back from a provider, as a difference quotes it: on one line, bounded.
fn shown(value: &dyn std::fmt::Display) -> String {
    crate::plugins::returned::one_line(&value.to_string(), MAX_SHOWN)
}

/// A DNS record as `docs/schemas/dns-record.*.json` (contract 0.3) define it, for every
/// DNS API and not only Cloudflare's: an absent `ttl` is *automatic*, which each provider
/// maps to its API's own value (Cloudflare's `1`, a zone default) and reports back as
/// absent; `1` means automatic too (the 0.1 and 0.2 documents said so). An absent
/// `proxied` in `live` means the API has no proxy: there is nothing to compare.
/// A monitor (`docs/schemas/monitor.*.json`): every field of the desired document as the
/// provider reads it back; an optional one (`keyword`, `expect_status`) left out of the
/// desired document must be absent from `live` too (a keyword added by hand is drift).
fn compare_monitor(desired: &Value, live: &Value) -> Comparison {
    let mut differences = Vec::new();
    for field in [
        "url",
        "interval",
        "retries",
        "active",
        "keyword",
        "expect_status",
    ] {
        let (want, have) = (&desired[field], &live[field]);
        if want != have {
            differences.push(format!("{field}: {} → {}", shown(have), shown(want)));
        }
    }
    // Statuses set by hand that are neither one status nor any 2xx.
    if let Some(accepted) = live.get("accepted_statuses").filter(|a| !a.is_null()) {
        differences.push(format!(
            "accepted statuses: {} → {}",
            shown(accepted),
            desired["expect_status"]
                .as_u64()
                .map_or_else(|| "any 2xx".to_owned(), |s| s.to_string())
        ));
    }
    Comparison {
        differences,
        complete: true,
    }
}

fn compare_record(desired: &Value, live: &Value) -> Comparison {
    let mut out = Comparison {
        complete: true,
        ..Comparison::default()
    };
    for (key, default) in [("type", Value::from("A")), ("content", Value::Null)] {
        let want = desired.get(key).cloned().unwrap_or(default);
        match live.get(key) {
            None => out.complete = false,
            Some(have) if !same_scalar(key, have, &want) => out
                .differences
                .push(format!("{key} is {}, the spec says {want}", shown(have))),
            Some(_) => {}
        }
    }
    let (want, have) = (ttl(desired.get("ttl")), ttl(live.get("ttl")));
    if want != have {
        out.differences.push(format!(
            "ttl is {}, the spec says {want}",
            match live.get("ttl") {
                Some(raw) if have != Ttl::Automatic => shown(raw),
                _ => have.to_string(),
            }
        ));
    }
    if let Some(have) = live.get("proxied") {
        let want = desired
            .get("proxied")
            .cloned()
            .unwrap_or(Value::Bool(false));
        if *have != want {
            out.differences
                .push(format!("proxied is {}, the spec says {want}", shown(have)));
        }
    }
    out
}

/// A record's TTL as the contract means it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ttl {
    Automatic,
    Seconds(u64),
    /// Not a number of seconds (a provider's mistake): never equal to what is wanted.
    Unreadable,
}

fn ttl(value: Option<&Value>) -> Ttl {
    match value {
        None | Some(Value::Null) => Ttl::Automatic,
        Some(value) => match value.as_u64() {
            Some(1) => Ttl::Automatic,
            Some(seconds) => Ttl::Seconds(seconds),
            None => Ttl::Unreadable,
        },
    }
}

impl std::fmt::Display for Ttl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ttl::Automatic => f.write_str("automatic"),
            Ttl::Seconds(seconds) => write!(f, "{seconds}"),
            Ttl::Unreadable => f.write_str("unreadable"),
        }
    }
}

/// Addresses in canonical form, names without case or a final dot.
fn same_scalar(key: &str, have: &Value, want: &Value) -> bool {
    if have == want {
        return true;
    }
    match (key, have.as_str(), want.as_str()) {
        ("content", Some(a), Some(b)) => {
            if let (Ok(a), Ok(b)) = (a.parse::<std::net::IpAddr>(), b.parse::<std::net::IpAddr>()) {
                return a == b;
            }
            a.trim_end_matches('.')
                .eq_ignore_ascii_case(b.trim_end_matches('.'))
        }
        _ => false,
    }
}

fn compare_coolify(kind: &str, desired: &Value, live: &Value, secrets: &[String]) -> Comparison {
    let mut out = Comparison {
        complete: true,
        ..Comparison::default()
    };
    if kind == "application" {
        match live["image"].as_str() {
            Some(have) => {
                let want = desired["image"].as_str().unwrap_or_default();
                if normalize_image(have) != normalize_image(want) {
                    out.differences
                        .push(format!("image is {}, the spec says {want}", shown(&have)));
                }
            }
            None => out.complete = false,
        }
        match (live["port"].as_u64(), desired["port"].as_u64()) {
            (Some(have), Some(want)) if have != want => out
                .differences
                .push(format!("port is {have}, the spec says {want}")),
            (None, Some(_)) => out.complete = false,
            _ => {}
        }
    } else {
        // A service's compose file is not shown by Coolify's API.
        out.complete = false;
    }
    match live["domains"].as_array() {
        Some(have) => {
            let have: BTreeSet<String> = have
                .iter()
                .filter_map(Value::as_str)
                .map(normalize_url)
                .collect();
            let want: BTreeSet<String> = desired["domains"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(normalize_url)
                .collect();
            if have != want {
                out.differences.push(format!(
                    "domains are {}, the spec says {}",
                    shown(&join(&have)),
                    join(&want)
                ));
            }
        }
        None => out.complete = false,
    }
    let want: BTreeMap<String, String> = desired["env"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default();
    if let Some(have) = live["env"].as_object() {
        for (key, value) in &want {
            match have.get(key) {
                None => out.differences.push(format!("env.{key} is missing")),
                // A hidden value (a token without `read:sensitive`) cannot be compared.
                Some(Value::Null) => out.complete = false,
                Some(have) if have.as_str() != Some(value.as_str()) => {
                    if secrets.contains(key) {
                        out.differences
                            .push(format!("env.{key} differs (a secret: not shown)"));
                    } else {
                        out.differences
                            .push(format!("env.{key} differs, the spec says {value:?}"));
                    }
                }
                Some(_) => {}
            }
        }
        for key in have.keys().filter(|k| !want.contains_key(*k)) {
            out.differences.push(format!(
                "env.{} is set, the spec does not name it",
                shown(key)
            ));
        }
    } else if let Some(keys) = live["env_keys"].as_array() {
        let have: BTreeSet<&str> = keys.iter().filter_map(Value::as_str).collect();
        let wanted: BTreeSet<&str> = want.keys().map(String::as_str).collect();
        for key in wanted.difference(&have) {
            out.differences.push(format!("env.{key} is missing"));
        }
        for key in have.difference(&wanted) {
            out.differences.push(format!(
                "env.{} is set, the spec does not name it",
                shown(key)
            ));
        }
        out.complete = false;
    } else {
        out.complete = false;
    }
    out
}

/// `nginx` and `nginx:latest` are the same image.
fn normalize_image(image: &str) -> String {
    let last_slash = image.rfind('/').map_or(0, |i| i + 1);
    if image.contains('@') || image[last_slash..].contains(':') {
        image.to_owned()
    } else {
        format!("{image}:latest")
    }
}

/// Scheme and host lower-cased, no trailing `/` (Coolify normalises both).
fn normalize_url(url: &str) -> String {
    url.trim().trim_end_matches('/').to_ascii_lowercase()
}

fn join(set: &BTreeSet<String>) -> String {
    if set.is_empty() {
        "none".to_owned()
    } else {
        set.iter().cloned().collect::<Vec<_>>().join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Live equals desired, and every desired field was seen.
    fn equal_and_seen(c: &Comparison) -> bool {
        c.complete && c.is_clean()
    }

    #[test]
    fn a_record_is_compared_field_by_field() {
        let desired = json!({ "type": "A", "content": "192.0.2.1", "ttl": 1, "proxied": false });
        let same = json!({ "type": "A", "content": "192.0.2.1", "ttl": 1, "proxied": false });
        assert!(equal_and_seen(&compare("dns-record", &desired, &same, &[])));
        let edited = json!({ "type": "A", "content": "198.51.100.9", "ttl": 1, "proxied": false });
        let c = compare("dns-record", &desired, &edited, &[]);
        assert_eq!(
            c.differences,
            ["content is \"198.51.100.9\", the spec says \"192.0.2.1\""]
        );
        let v6 = json!({ "type": "AAAA", "content": "2001:db8::1" });
        let canonical =
            json!({ "type": "AAAA", "content": "2001:0db8:0:0::1", "ttl": 1, "proxied": false });
        assert!(equal_and_seen(&compare("dns-record", &v6, &canonical, &[])));
    }

    /// Issue 27: what the host sends says nothing of Cloudflare. Automatic is an absent
    /// `ttl` on both sides (or the 0.2 documents' `1`); a provider without a proxy leaves
    /// `proxied` out; a real TTL that is not the automatic one is drift.
    #[test]
    fn a_record_means_the_same_for_every_dns_api() {
        let wanted = json!({ "type": "A", "content": "192.0.2.1" });
        for live in [
            json!({ "type": "A", "content": "192.0.2.1" }),
            json!({ "type": "A", "content": "192.0.2.1", "ttl": 1, "proxied": false }),
            json!({ "type": "A", "content": "192.0.2.1", "ttl": null }),
        ] {
            assert!(
                equal_and_seen(&compare("dns-record", &wanted, &live, &[])),
                "{live}"
            );
        }
        let edited = json!({ "type": "A", "content": "192.0.2.1", "ttl": 300 });
        assert_eq!(
            compare("dns-record", &wanted, &edited, &[]).differences,
            ["ttl is 300, the spec says automatic"]
        );
        let proxied = json!({ "type": "A", "content": "192.0.2.1", "proxied": true });
        assert_eq!(
            compare("dns-record", &wanted, &proxied, &[]).differences,
            ["proxied is true, the spec says false"]
        );
        let seconds = json!({ "type": "A", "content": "192.0.2.1", "ttl": 300 });
        assert!(equal_and_seen(&compare(
            "dns-record",
            &seconds,
            &edited,
            &[]
        )));
        let broken = json!({ "type": "A", "content": "192.0.2.1", "ttl": "soon" });
        assert_eq!(
            compare("dns-record", &wanted, &broken, &[]).differences,
            ["ttl is \"soon\", the spec says automatic"]
        );
    }

    #[test]
    fn an_application_shows_drift_without_secret_values() {
        let desired = json!({
            "image": "nginx", "port": 80, "domains": ["https://a.example.com"],
            "env": { "LOG": "info", "API_KEY": "s3cr3t-value" },
        });
        let live = json!({
            "image": "nginx:latest", "port": 80, "domains": ["https://A.example.com/"],
            "env": { "LOG": "info", "API_KEY": "s3cr3t-value" },
        });
        let secrets = ["API_KEY".to_owned()];
        assert!(equal_and_seen(&compare(
            "application",
            &desired,
            &live,
            &secrets
        )));
        let drifted = json!({
            "image": "nginx:1.0", "port": 80, "domains": ["https://a.example.com"],
            "env": { "LOG": "debug", "API_KEY": "hand-edited-value", "EXTRA": "1" },
        });
        let c = compare("application", &desired, &drifted, &secrets);
        assert_eq!(c.differences.len(), 4, "{:?}", c.differences);
        let text = c.differences.join("\n");
        assert!(
            !text.contains("s3cr3t") && !text.contains("hand-edited"),
            "{text}"
        );
    }

    #[test]
    fn hidden_values_and_a_service_compose_cannot_be_confirmed() {
        let desired = json!({ "domains": [], "env": { "A": "1" } });
        let hidden = json!({ "domains": [], "env": { "A": null } });
        let c = compare("service", &desired, &hidden, &[]);
        assert!(c.is_clean() && !c.complete);
    }

    /// Issue 28, point 6: a provider's megabytes of `live` are said in a few lines.
    #[test]
    fn what_is_said_of_a_huge_live_value_is_bounded() {
        let huge = "x".repeat(4 << 20);
        let mut env = serde_json::Map::new();
        for i in 0..10_000 {
            env.insert(format!("K{i}"), Value::from("v"));
        }
        let live = serde_json::json!({"image": huge, "port": 80, "domains": [huge], "env": env});
        let desired = serde_json::json!({"image": "nginx:1", "port": 80, "domains": ["https://a.example.com"], "env": {}});
        let comparison = compare("application", &desired, &live, &[]);
        let said = comparison.differences.join("\n");
        assert!(said.len() < 10_000, "{} bytes", said.len());
        assert_eq!(comparison.differences.len(), MAX_DIFFERENCES + 1);
        assert!(said.contains("more differences"), "{said}");
        let record = compare_record(
            &serde_json::json!({"content": "192.0.2.1"}),
            &serde_json::json!({"type": "A", "content": huge, "ttl": 1, "proxied": false}),
        );
        assert!(
            record.differences[0].len() < 400,
            "{}",
            record.differences[0].len()
        );
    }
}

//! A DNS provider that breaks the contract on purpose, for the provider kit's own tests:
//! `fabrik providers test` must fail it, saying what is wrong. Its records live in the
//! instance's memory (the kit drives one instance), so it needs no API. The `lie`
//! setting picks the one thing it gets wrong:
//!
//! - `none`: nothing (it passes);
//! - `delete-any-owner`: `delete` removes a record whatever the caller's owner tag;
//! - `ttl`: `live` always reports a TTL of 300 (drift that never settles);
//! - `unlisted`: `list` never returns anything (`fabrik gc` could never find orphans);
//! - `untagged`: `create` answers without the owner tag;
//! - `not-found`: `read` of a record it does not have answers `not-found` instead of
//!   `none` (which the host takes as gone, as the guide says).

use std::collections::BTreeMap;

use fabrik_provider_sdk::config::Config;
use fabrik_provider_sdk::error::{invalid_config, not_found, permanent};
use fabrik_provider_sdk::{
    ConfigKey, Instance, ProgressReport, ProgressState, Provider, ProviderError, ProviderInfo,
    Resource, ResourceBuilder, ResourcePage, check_kind, export_provider, owner,
};
use serde_json::{Value, json};

const KIND: &str = "dns-record";

struct Record {
    name: String,
    desired: Value,
    owner: String,
}

struct State {
    lie: String,
    records: BTreeMap<String, Record>,
    next_id: u64,
}

static STATE: Instance<State> = Instance::new();

fn lie() -> Result<String, ProviderError> {
    STATE.with(|s| s.lie.clone())
}

fn to_resource(id: &str, record: &Record, lie: &str) -> Result<Resource, ProviderError> {
    let mut live = json!({
        "type": record.desired["type"].as_str().unwrap_or("A"),
        "content": record.desired["content"],
    });
    if lie == "ttl" {
        live["ttl"] = json!(300);
    }
    ResourceBuilder::new(KIND, id, &record.name)
        .owner(Some(record.owner.as_str()).filter(|_| lie != "untagged"))
        .live(&live)
        .build()
}

fn read_id(id: &str) -> Result<Option<Resource>, ProviderError> {
    let lie = lie()?;
    STATE.with(|s| s.records.get(id).map(|r| to_resource(id, r, &lie)))?
        .transpose()
}

struct LiarDns;

impl Provider for LiarDns {
    fn describe() -> ProviderInfo {
        ProviderInfo {
            name: "liar-dns".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            description: "A DNS provider that lies, for the provider kit's tests".to_owned(),
            kinds: vec![KIND.to_owned()],
            config: vec![ConfigKey {
                name: "lie".to_owned(),
                description: "what to get wrong: none, delete-any-owner, ttl, unlisted, untagged, not-found"
                    .to_owned(),
                secret: false,
                required: true,
            }],
            default_origins: vec![],
            rate_limit: None,
        }
    }

    fn configure(config: Vec<(String, String)>) -> Result<(), ProviderError> {
        let lie = Config::new(config).require("lie")?.to_owned();
        if !["none", "delete-any-owner", "ttl", "unlisted", "untagged", "not-found"]
            .contains(&lie.as_str())
        {
            return Err(invalid_config(format!("no lie called {lie:?}")));
        }
        STATE.set(State {
            lie,
            records: BTreeMap::new(),
            next_id: 1,
        });
        Ok(())
    }

    fn read(kind: String, id: String) -> Result<Option<Resource>, ProviderError> {
        check_kind(&kind, &[KIND])?;
        match read_id(&id)? {
            None if lie()? == "not-found" => Err(not_found(format!("no record {id}"))),
            found => Ok(found),
        }
    }

    fn create(
        kind: String,
        name: String,
        desired: String,
        owner_tag: String,
    ) -> Result<Resource, ProviderError> {
        check_kind(&kind, &[KIND])?;
        let desired: Value = serde_json::from_str(&desired)
            .map_err(|e| permanent(format!("invalid desired: {e}")))?;
        let id = STATE.with(|s| {
            let id = format!("r{}", s.next_id);
            s.next_id += 1;
            s.records.insert(
                id.clone(),
                Record {
                    name,
                    desired,
                    owner: owner_tag,
                },
            );
            id
        })?;
        read_id(&id)?.ok_or_else(|| permanent("lost a record just made"))
    }

    fn update(kind: String, id: String, desired: String) -> Result<Resource, ProviderError> {
        check_kind(&kind, &[KIND])?;
        let desired: Value = serde_json::from_str(&desired)
            .map_err(|e| permanent(format!("invalid desired: {e}")))?;
        let found = STATE.with(|s| match s.records.get_mut(&id) {
            Some(record) => {
                record.desired = desired;
                true
            }
            None => false,
        })?;
        if !found {
            return Err(not_found(format!("record {id} no longer exists")));
        }
        read_id(&id)?.ok_or_else(|| permanent("lost a record just updated"))
    }

    fn delete(kind: String, id: String, owner_tag: String, _purge: bool) -> Result<(), ProviderError> {
        check_kind(&kind, &[KIND])?;
        let lie = lie()?;
        STATE.with(|s| {
            let Some(record) = s.records.get(&id) else {
                return Ok(());
            };
            if lie != "delete-any-owner" {
                owner::ensure_owned(Some(record.owner.as_str()), &owner_tag, &format!("record {id}"))?;
            }
            s.records.remove(&id);
            Ok(())
        })?
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
        _cursor: Option<String>,
    ) -> Result<ResourcePage, ProviderError> {
        check_kind(&kind, &[KIND])?;
        let lie = lie()?;
        let resources = if lie == "unlisted" {
            Vec::new()
        } else {
            STATE.with(|s| {
                s.records
                    .iter()
                    .filter(|(_, r)| owner::has_prefix(Some(r.owner.as_str()), &owner_prefix))
                    .map(|(id, r)| to_resource(id, r, &lie))
                    .collect::<Result<Vec<_>, _>>()
            })??
        };
        Ok(ResourcePage {
            resources,
            next: None,
        })
    }

    fn lookup(
        kind: String,
        name: String,
        owner_tag: String,
        _desired: Option<String>,
    ) -> Result<Option<Resource>, ProviderError> {
        check_kind(&kind, &[KIND])?;
        let lie = lie()?;
        STATE.with(|s| {
            let named: Vec<(&String, &Record)> =
                s.records.iter().filter(|(_, r)| r.name == name).collect();
            owner::ours_first(&named, &owner_tag, |(_, r)| Some(r.owner.as_str()))
                .map(|(id, r)| to_resource(id, r, &lie))
                .transpose()
        })?
    }
}

export_provider!(LiarDns);

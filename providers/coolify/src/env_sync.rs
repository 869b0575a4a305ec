//! A resource's environment made exactly the spec's: bulk upsert with the full flag
//! set, then deletes of what the spec dropped (never Coolify's own rows).

use std::collections::BTreeMap;

use fabrik_provider_sdk::error::permanent;
use fabrik_provider_sdk::http::{self};
use fabrik_provider_sdk::{Method, ProviderError};
use serde_json::{Value, json};

use crate::desired::plural;
use crate::state::{STATE, client};
use crate::{api, compose_env};

/// Keys Coolify generates: its compose parser stores `SERVICE_FQDN_*`, `SERVICE_URL_*`,
/// `SERVICE_PASSWORD_*`, `SERVICE_USER_*`, `SERVICE_BASE64_*` and more for every magic
/// variable a compose file names (coollabsio/coolify bootstrap/helpers/parsers.php).
/// Every `SERVICE_` name is Coolify's: deleting a password would make Coolify generate a
/// new one under an existing volume. The spec validator reserves the prefix.
pub(crate) fn is_generated(key: &str) -> bool {
    key.starts_with("SERVICE_")
}

/// The rows the bulk upsert writes for `env`: every key with the full flag set (a flag
/// left out would be reset). An application's preview copies (created by Coolify with
/// every new variable, never updated with it: EnvironmentVariable::booted) are kept
/// equal too, so a removed or rotated secret leaves no old value behind.
pub(crate) fn env_rows(kind: &str, env: &BTreeMap<String, String>) -> Vec<Value> {
    let previews: &[bool] = if kind == "application" {
        &[false, true]
    } else {
        &[false]
    };
    previews
        .iter()
        .flat_map(|preview| env.iter().map(move |(key, value)| (*preview, key, value)))
        .map(|(preview, key, value)| {
            let mut item = json!({
                "key": key,
                "value": value,
                "is_literal": true,
                "is_multiline": value.contains('\n'),
                "is_shown_once": false,
                "is_runtime": true,
                "is_buildtime": false,
            });
            if kind == "application" {
                item["is_preview"] = json!(preview);
            }
            item
        })
        .collect()
}

/// Whether `current` (an env list as read) already holds every row of `rows`, values
/// and flags: then the upsert would change nothing. A value Coolify does not show (a
/// token without `read:sensitive`) never matches.
pub(crate) fn env_holds(current: &Value, rows: &[Value]) -> bool {
    let Some(current) = current.as_array() else {
        return false;
    };
    rows.iter().all(|row| {
        let preview = row["is_preview"].as_bool().unwrap_or(false);
        current.iter().any(|have| {
            have["key"] == row["key"]
                && have["is_preview"].as_bool().unwrap_or(false) == preview
                && row
                    .as_object()
                    .into_iter()
                    .flatten()
                    .filter(|(field, _)| *field != "key" && *field != "is_preview")
                    .all(|(field, want)| have[field] == *want)
        })
    })
}

/// Makes the resource's environment exactly `env`: bulk upsert, then delete keys the
/// spec no longer has. The list the deletions are decided on is the one read just before
/// (`read`), else it is read alongside the upsert (one round trip for both: the upsert
/// does not depend on it, and keys it writes are never deleted). An upsert that would
/// change nothing is not sent.
pub(crate) fn sync_env(
    kind: &str,
    uuid: &str,
    env: &BTreeMap<String, String>,
    compose: Option<&str>,
) -> Result<(), ProviderError> {
    // Rows the compose parser makes would come back at the next start.
    let parsed = compose.map(compose_env::parser_keys).unwrap_or_default();
    let api = client()?;
    let path = format!("/{}/{uuid}/envs", plural(kind));
    let known = STATE.with(|s| s.envs.remove(uuid))?;
    let rows = env_rows(kind, env);
    let upsert =
        (!rows.is_empty() && !known.as_ref().is_some_and(|c| env_holds(c, &rows))).then(|| {
            api::request(
                &api,
                Method::Patch,
                &format!("{path}/bulk"),
                Some(&json!({ "data": rows })),
            )
        });
    let current = match (known, upsert) {
        (Some(current), Some(upsert)) => {
            api::answer(upsert.send()).map_err(|f| f.error)?;
            current
        }
        (Some(current), None) => current,
        (None, Some(upsert)) => {
            let mut answers = http::send_many(vec![upsert, api.get(&path)]).into_iter();
            let (Some(upserted), Some(listed)) = (answers.next(), answers.next()) else {
                return Err(permanent("the host answered fewer requests than were sent"));
            };
            api::answer(upserted).map_err(|f| f.error)?;
            api::answer(listed).map_err(|f| f.error)?.json()?
        }
        (None, None) => api::json(&api, Method::Get, &path, None)?,
    };
    for existing in current.as_array().into_iter().flatten() {
        let key = existing["key"].as_str().unwrap_or_default();
        if env.contains_key(key) || is_generated(key) || parsed.contains(key) {
            continue;
        }
        if let Some(env_uuid) = existing["uuid"].as_str() {
            match api::call(&api, Method::Delete, &format!("{path}/{env_uuid}"), None) {
                Ok(_) => {}
                Err(f) if f.status == 404 => {}
                Err(f) => return Err(f.error),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_left_alone() {
        assert!(is_generated("SERVICE_FQDN_APP"));
        assert!(is_generated("SERVICE_URL_APP_8000"));
        assert!(is_generated("SERVICE_PASSWORD_POSTGRES"));
        assert!(is_generated("SERVICE_USER_ADMIN"));
        assert!(is_generated("SERVICE_BASE64_64_SECRET"));
        assert!(!is_generated("DATABASE_URL"));
    }
}

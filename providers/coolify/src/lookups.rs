//! Finding applications and services by name where the spec places them: the project
//! and environment it names, never the whole team.

use fabrik_provider_sdk::error::permanent;
use fabrik_provider_sdk::{Method, ProviderError};
use serde_json::Value;

use crate::api;
use crate::desired::plural;
use crate::projects::project_uuid;
use crate::state::{STATE, client};

/// The Coolify project and environment a desired document places its resource in.
pub(crate) fn placement(desired: &str) -> Result<(String, String), ProviderError> {
    let desired: Value = serde_json::from_str(desired)
        .map_err(|e| permanent(format!("invalid desired document: {e}")))?;
    match (desired["project"].as_str(), desired["environment"].as_str()) {
        (Some(project), Some(environment)) => Ok((project.to_owned(), environment.to_owned())),
        _ => Err(permanent(
            "a desired document names its `project` and `environment`",
        )),
    }
}

/// The applications or services (`kind`) a lookup chooses from: those of the
/// environment `place` names (`GET /projects/{uuid}/{environment}` lists them), or the
/// team's whole list. `None` when the project or environment does not exist: nothing
/// can be there. Read once per instance until it writes.
pub(crate) fn candidates(
    kind: &str,
    place: Option<&(String, String)>,
) -> Result<Option<Vec<Value>>, ProviderError> {
    let plural = plural(kind);
    let path = match place {
        Some((project, environment)) => {
            let Some(uuid) = project_uuid(project, false)? else {
                return Ok(None);
            };
            format!("/projects/{uuid}/{environment}")
        }
        None => format!("/{plural}"),
    };
    let cached = STATE.with(|s| s.lists.get(&path).cloned())?;
    let read = match cached {
        Some(read) => read,
        None => {
            let read: Value = match api::call(&client()?, Method::Get, &path, None) {
                Ok(reply) => reply.json()?,
                Err(f) if f.status == 404 && place.is_some() => return Ok(None),
                Err(f) => return Err(f.error),
            };
            if let Some((project, environment)) = place
                && let Some(uuid) = project_uuid(project, false)?
            {
                // It exists: a create there need not ask again.
                STATE.with(|s| s.environments.insert((uuid, environment.clone())))?;
            }
            STATE.with(|s| s.lists.insert(path, read.clone()))?;
            read
        }
    };
    let list = if place.is_some() {
        &read[plural]
    } else {
        &read
    };
    Ok(Some(list.as_array().cloned().unwrap_or_default()))
}

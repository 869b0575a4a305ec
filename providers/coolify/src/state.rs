//! What one instance keeps between calls (one apply): the API set up by `configure`,
//! what `prefetch` read in one round trip, and what lookups and reads saw, dropped by
//! `written` whenever this instance changes something.

use std::collections::{HashMap, HashSet};

use fabrik_provider_sdk::error::permanent;
use fabrik_provider_sdk::http::{self, Api};
use fabrik_provider_sdk::{Instance, LogLevel, Method, ProviderError};
use serde_json::Value;

use crate::api;

/// Versions older than this lack `POST /services` and the `is_buildtime` env flag.
pub(crate) const MIN_VERSION: (u64, u64) = (4, 1);

#[derive(Default)]
pub(crate) struct State {
    pub(crate) api: Option<Api>,
    pub(crate) version_checked: bool,
    /// Application uuid → the deployment uuid `POST /deploy` returned.
    pub(crate) deployments: HashMap<String, String>,
    /// `GET /servers`, kept for the life of this instance (one apply): the host looks the
    /// server up for the DNS record, then `create` needs its uuid; servers do not come and
    /// go within an apply, and the second call was one more serial round trip.
    pub(crate) servers: Option<Value>,
    /// Server uuid → its destinations, kept for the same reason.
    pub(crate) destinations: HashMap<String, Option<Vec<Value>>>,
    /// Whether `prefetch` ran.
    pub(crate) prefetched: bool,
    /// `GET /version` as `prefetch` received it, until `check_version` reads it.
    pub(crate) version_reply: Option<Result<api::Reply, api::Failure>>,
    /// `GET /projects`, kept and extended with the projects this instance creates.
    pub(crate) projects: Option<Value>,
    /// Projects created during this apply (by this instance, or by another app's moments
    /// ago): their `production` environment exists (`Project::booted`).
    pub(crate) new_projects: HashSet<String>,
    /// `(project uuid, environment)` this instance has seen exist (a lookup read it).
    pub(crate) environments: HashSet<(String, String)>,
    /// What lookups by name read (an environment's detail, or the team's whole
    /// `GET /applications` or `/services`), by path; dropped whenever this instance
    /// writes anything.
    pub(crate) lists: HashMap<String, Value>,
    /// Resource uuid → its env list as last read; dropped when its env is written.
    pub(crate) envs: HashMap<String, Value>,
    /// Resource uuid → its detail as last read; dropped when it is written.
    pub(crate) details: HashMap<String, Value>,
}

/// Reads what most calls of an apply need in one round trip (`http-send-many`): the
/// version, the servers and the projects. Once per instance. A read that failed is not
/// kept: its reader asks again and reports the error.
pub(crate) fn prefetch() -> Result<(), ProviderError> {
    if STATE.with(|s| s.prefetched)? {
        return Ok(());
    }
    let api = client()?;
    const PATHS: [&str; 3] = ["/version", "/servers", "/projects"];
    let answers = http::send_many(PATHS.iter().map(|path| api.get(path)).collect());
    STATE.with(|state| {
        state.prefetched = true;
        for (path, answer) in PATHS.into_iter().zip(answers) {
            let answer = api::answer(answer);
            if path == "/version" {
                state.version_reply = Some(answer);
                continue;
            }
            let Some(value) = answer.ok().and_then(|reply| reply.json().ok()) else {
                continue;
            };
            match path {
                "/servers" => state.servers = Some(value),
                _ => state.projects = Some(value),
            }
        }
    })?;
    Ok(())
}

/// Forgets what may change when this instance writes: the lists lookups read, and what
/// was read of `uuid`.
pub(crate) fn written(uuid: Option<&str>) -> Result<(), ProviderError> {
    STATE.with(|state| {
        state.lists.clear();
        if let Some(uuid) = uuid {
            state.envs.remove(uuid);
            state.details.remove(uuid);
        }
    })
}

/// The instance's state: set by `configure`, which the host calls first.
pub(crate) static STATE: Instance<State> = Instance::new();

/// The API as `configure` set it up.
pub(crate) fn client() -> Result<Api, ProviderError> {
    STATE
        .with(|s| s.api.clone())?
        .ok_or_else(|| permanent("the provider was called before `configure` (a host bug)"))
}

/// Reads `GET /version` once and refuses versions this provider cannot drive.
pub(crate) fn check_version() -> Result<(), ProviderError> {
    if STATE.with(|s| s.version_checked)? {
        return Ok(());
    }
    let prefetched = STATE.with(|s| s.version_reply.take())?;
    let reply = match prefetched {
        Some(answer) => answer,
        None => api::call(&client()?, Method::Get, "/version", None),
    }
    .map_err(|f| f.error)?;
    let text = String::from_utf8_lossy(&reply.body)
        .trim()
        .trim_matches('"')
        .trim_start_matches('v')
        .to_owned();
    let mut parts = text
        .split(['.', '-'])
        .map(|p| p.parse::<u64>().unwrap_or(0));
    let version = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    if version < MIN_VERSION {
        return Err(ProviderError::InvalidConfig(format!(
            "Coolify {text} is too old: this provider needs {}.{} or newer",
            MIN_VERSION.0, MIN_VERSION.1
        )));
    }
    fabrik_provider_sdk::log(LogLevel::Debug, &format!("Coolify version {text}"));
    STATE.with(|s| s.version_checked = true)?;
    Ok(())
}

//! What a run deployed, kept with the run in the store so that `fabrik rollback` can
//! deploy that version again without the spec file it came from: the validated spec, the
//! rendered compose document and the keyed secret fingerprints. Never a secret value.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::domain::State;
use crate::spec::model::{Hooks, Notify};
use crate::spec::{LoadedSpec, Rendered, Spec};

/// Bumped when the layout changes; older snapshots are still read (missing fields default).
const SNAPSHOT_VERSION: u32 = 1;

/// One run's inputs, as stored in `runs.snapshot`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Snapshot {
    pub version: u32,
    pub spec: Spec,
    pub rendered: Rendered,
    /// Keyed fingerprints of the secret values the run deployed (see `secrets`).
    pub fingerprints: BTreeMap<String, String>,
    #[serde(default)]
    pub notify: Notify,
    #[serde(default)]
    pub hooks: Hooks,
}

impl Snapshot {
    pub fn of(loaded: &LoadedSpec, fingerprints: &BTreeMap<String, String>) -> Self {
        Self {
            version: SNAPSHOT_VERSION,
            spec: loaded.spec.clone(),
            rendered: loaded.rendered.clone(),
            fingerprints: fingerprints.clone(),
            notify: loaded.notify.clone(),
            hooks: loaded.hooks.clone(),
        }
    }

    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    pub fn from_json(value: &Value) -> Result<Self, serde_json::Error> {
        Self::deserialize(value)
    }

    /// The spec this snapshot was taken of, as if loaded again from `path`.
    pub fn into_loaded(self, path: PathBuf) -> LoadedSpec {
        LoadedSpec {
            path,
            spec: self.spec,
            rendered: self.rendered,
            notify: self.notify,
            hooks: self.hooks,
        }
    }
}

/// The snapshot of the version the state records as deployed: that of the newest
/// completed run with the deployment's spec hash.
pub fn deployed(
    runs: Vec<crate::store::RunRow>,
    deployment: &crate::store::Deployment,
) -> Option<Snapshot> {
    runs.into_iter()
        .find(|r| {
            r.state == State::Complete
                && deployment.spec_hash.as_deref() == Some(r.spec_hash.as_str())
        })
        .and_then(|r| r.snapshot)
        .and_then(|s| Snapshot::from_json(&s).ok())
}

/// The secret fingerprints of the version the state records as deployed. Plan and apply
/// both compare the current secrets with these.
pub fn deployed_fingerprints(
    runs: Vec<crate::store::RunRow>,
    deployment: &crate::store::Deployment,
) -> Option<BTreeMap<String, String>> {
    deployed(runs, deployment).map(|s| s.fingerprints)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_round_trips_and_holds_no_secret_value() {
        let templates = crate::spec::TemplateRegistry::load(std::path::Path::new("/nonexistent"))
            .expect("templates");
        let loaded = crate::spec::parse(
            std::path::Path::new("api.yaml"),
            "name: api\ntemplate: python-api\ndomain: api.example.com\nserver: vps1\n\
             source: { image: 'ghcr.io/acme/api:1' }\nenv: { LOG: info }\nsecrets: [API_KEY]\n",
            &templates,
        )
        .expect("valid");
        let fingerprints = BTreeMap::from([("API_KEY".to_owned(), "fp:abc".to_owned())]);
        let json = Snapshot::of(&loaded, &fingerprints).to_json();
        let back = Snapshot::from_json(&json)
            .expect("reads back")
            .into_loaded(PathBuf::from("api.yaml"));
        assert_eq!(back.spec, loaded.spec);
        assert_eq!(back.rendered.compose, loaded.rendered.compose);
        assert_eq!(back.rendered.canonical, loaded.rendered.canonical);
        assert_eq!(json["fingerprints"]["API_KEY"], "fp:abc");
        // Secrets appear only as `${NAME}` references in the compose document.
        assert!(
            json["rendered"]["compose"]
                .as_str()
                .is_some_and(|c| c.contains("${API_KEY}"))
        );
    }
}

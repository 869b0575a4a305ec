//! Loading the project's providers for a command: OCI providers fetched into the blob
//! cache first (by their pinned digests; never with `--offline`), then every component
//! loaded and checked; for `apply`, `plan` and `doctor`, the sets of every project the
//! specs belong to, checked against `fabrik.lock` before anything runs.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use fabrik_engine::plugins::cache::ComponentCache;
use fabrik_engine::plugins::lock::LockFile;
use fabrik_engine::plugins::oci::blobs::BlobCache;
use fabrik_engine::plugins::oci::{self, Fetch, FetchOptions};
use fabrik_engine::plugins::{Pins, ProviderSet};
use fabrik_engine::project::{Project, project_dir};
use fabrik_engine::spec::LoadedSpec;

static OFFLINE: AtomicBool = AtomicBool::new(false);

/// `--offline` (or `FABRIK_OFFLINE`), set once by `main`.
pub(super) fn set_offline(offline: bool) {
    OFFLINE.store(offline, Ordering::Relaxed);
}

pub(super) fn offline() -> bool {
    OFFLINE.load(Ordering::Relaxed)
}

/// Makes the project's OCI providers available in the cache; `check_tags` also reports
/// pinned tags that moved.
pub(super) async fn fetch(
    project: &Project,
    cache: &ComponentCache,
    check_tags: bool,
) -> anyhow::Result<Fetch> {
    if project.providers.values().all(|e| e.source.is_none()) {
        return Ok(Fetch::default());
    }
    let lock = LockFile::read(&project.dir)?;
    let options = FetchOptions {
        offline: offline(),
        check_tags,
    };
    Ok(oci::fetch(project, &BlobCache::of(cache), lock.as_ref(), options).await?)
}

/// Fetches (see [`fetch`]) and loads the project's providers, from a thread that is not
/// running async code.
pub(super) fn load(project: &Project, pins: Pins) -> anyhow::Result<ProviderSet> {
    let cache = ComponentCache::from_env();
    let fetched = if project.providers.values().any(|e| e.source.is_some()) {
        super::runtime()?.block_on(fetch(project, &cache, false))?
    } else {
        Fetch::default()
    };
    Ok(ProviderSet::load_fetched(
        project,
        &cache,
        pins,
        &fetched.components,
    )?)
}

/// The project directories of `specs`, each once.
pub(super) fn project_dirs(specs: &[LoadedSpec]) -> BTreeSet<PathBuf> {
    specs.iter().map(|s| project_dir(&s.path)).collect()
}

/// Loads the providers of every project the specs belong to and checks them against
/// `fabrik.lock`. Nothing is called on them. The loaded sets are returned by project
/// directory, for the deploy to use rather than load again.
pub(super) fn check_providers(
    specs: &[LoadedSpec],
) -> Result<BTreeMap<PathBuf, ProviderSet>, String> {
    let mut sets = BTreeMap::new();
    for dir in project_dirs(specs) {
        let project = Project::load(&dir).map_err(|e| e.to_string())?;
        // A spec that asks for a monitor needs the role's provider: said before anything
        // is loaded or changed.
        let has_monitor = project
            .providers
            .contains_key(&fabrik_engine::domain::Role::Monitor);
        if let Some(spec) = specs.iter().find(|s| {
            s.spec.monitor.is_some()
                && !has_monitor
                && fabrik_engine::project::project_dir(&s.path) == dir
        }) {
            return Err(format!(
                "{}: the spec asks for a monitor (`monitor:`), and {} configures no monitor provider\n  hint: add `[providers.monitor]` (the bundled Uptime Kuma provider, with UPTIME_KUMA_URL, UPTIME_KUMA_USERNAME and UPTIME_KUMA_PASSWORD), or remove `monitor:`",
                spec.path.display(),
                dir.join("fabrik.toml").display()
            ));
        }
        let set = load(&project, Pins::Enforce).map_err(|e| format!("{e:#}"))?;
        sets.insert(dir, set);
    }
    Ok(sets)
}

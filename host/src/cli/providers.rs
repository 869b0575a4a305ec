//! `fabrik providers list|lock`: what providers a project uses, and pinning them.

use fabrik_engine::domain::Role;
use fabrik_engine::plugins::cache::ComponentCache;
use fabrik_engine::plugins::lock::LockFile;
use fabrik_engine::plugins::oci::{self, blobs::BlobCache};
use fabrik_engine::plugins::{Pins, ProviderSet};
use fabrik_engine::project::Project;
use fabrik_engine::workspace::Workspace;

use super::{ExitStatus, OutputFormat, report};

/// The current project and its providers, loaded (nothing is called on them).
fn load() -> anyhow::Result<(Project, ProviderSet)> {
    let project = Workspace::current(None)?.project;
    let providers = super::loading::load(&project, Pins::Report)?;
    Ok((project, providers))
}

pub fn list(format: OutputFormat) -> anyhow::Result<ExitStatus> {
    let (project, set) = load()?;
    let runtime = super::runtime()?;
    let lock = LockFile::read(&project.dir)?;
    for provider in &set.providers {
        let info = runtime.block_on(set.describe(provider.role))?;
        let locked = lock.as_ref().map(|l| {
            l.check(provider.role, &provider.source, &provider.sha256)
                .is_ok()
        });
        match format {
            OutputFormat::Human => {
                outln!(
                    "{role}: {name} {version} ({source}), contract fabrik:provider@{wit}",
                    role = provider.role,
                    name = info.name,
                    version = info.version,
                    source = provider.source,
                    wit = provider.component.wit,
                );
                if let Some(manifest) = &provider.manifest {
                    outln!("  manifest {manifest}");
                }
                outln!(
                    "  sha256:{}  {} bytes{}",
                    provider.sha256,
                    provider.size,
                    match locked {
                        Some(true) => ", locked",
                        Some(false) => ", DIFFERS FROM fabrik.lock",
                        None => "",
                    }
                );
                outln!("  kinds: {}", info.kinds.join(", "));
                if let Some(limit) = info.rate_limit {
                    outln!(
                        "  rate limit: {} requests per {} s (paced, shared by every app of a run)",
                        limit.requests,
                        limit.window.as_secs()
                    );
                }
            }
            OutputFormat::Json => report::json_line(&serde_json::json!({
                "role": provider.role,
                "name": info.name,
                "version": info.version,
                "source": provider.source,
                "wit": provider.component.wit.to_string(),
                "sha256": provider.sha256,
                "manifest": provider.manifest,
                "size": provider.size,
                "kinds": info.kinds,
                "config": info.config,
                "locked": locked,
                "rate_limit": info.rate_limit,
            })),
        }
    }
    Ok(ExitStatus::Success)
}

pub fn lock() -> anyhow::Result<ExitStatus> {
    let project = Workspace::current(None)?.project;
    let runtime = super::runtime()?;
    let cache = ComponentCache::from_env();
    // Pinned OCI providers stay pinned; their tags are checked and a move is reported.
    let fetched = runtime.block_on(super::loading::fetch(&project, &cache, true))?;
    for moved in &fetched.moved {
        errln!(
            "warning: {}: the tag of {} now points at {}, not the pinned {}; the pin is kept\n  hint: `fabrik providers update {}` moves it",
            moved.role,
            moved.source,
            moved.now,
            moved.pinned,
            moved.role
        );
    }
    let set = ProviderSet::load_fetched(&project, &cache, Pins::Report, &fetched.components)?;
    write_lock(&project, &set, &runtime)
}

/// Writes `fabrik.lock` for `set` and says what changed.
fn write_lock(
    project: &Project,
    set: &ProviderSet,
    runtime: &tokio::runtime::Runtime,
) -> anyhow::Result<ExitStatus> {
    let entries = runtime.block_on(set.lock_entries())?;
    let previous = LockFile::read(&project.dir).ok().flatten();
    let lock = LockFile::new(entries);
    let path = lock.write(&project.dir)?;
    for entry in &lock.providers {
        let before = previous
            .as_ref()
            .and_then(|p| p.providers.iter().find(|e| e.role == entry.role));
        let change = match before {
            None => "added".to_owned(),
            Some(b) if b.sha256 == entry.sha256 => "unchanged".to_owned(),
            Some(b) => format!(
                "updated from {} {} sha256:{}",
                b.version, b.source, b.sha256
            ),
        };
        let manifest = entry
            .manifest
            .as_ref()
            .map(|m| format!(" manifest {m}"))
            .unwrap_or_default();
        errln!(
            "{}: {} {} ({}){manifest} sha256:{} ({change})",
            entry.role,
            entry.name,
            entry.version,
            entry.source,
            entry.sha256
        );
    }
    errln!("wrote {}", path.display());
    Ok(ExitStatus::Success)
}

/// `fabrik providers update [ROLE...]`: the newest matching tags, pinned.
pub fn update(roles: &[String]) -> anyhow::Result<ExitStatus> {
    let project = Workspace::current(None)?.project;
    let roles = roles
        .iter()
        .map(|r| r.parse::<Role>())
        .collect::<Result<Vec<_>, _>>()?;
    if super::loading::offline() {
        anyhow::bail!(
            "`fabrik providers update` asks the registries for their tags: run it without `--offline`"
        );
    }
    let runtime = super::runtime()?;
    let cache = ComponentCache::from_env();
    let lock = LockFile::read(&project.dir)?;
    let blobs = BlobCache::of(&cache);
    let updated = runtime.block_on(oci::update(&project, &blobs, lock.as_ref(), &roles))?;
    if updated.is_empty() {
        errln!("no OCI provider to update (`source = \"oci://…\"` in `fabrik.toml`)");
        return Ok(ExitStatus::Success);
    }
    // The other providers keep their pins.
    let mut fetched = runtime
        .block_on(super::loading::fetch(&project, &cache, false))?
        .components;
    for update in &updated {
        match &update.before {
            Some(before) if before.manifest == update.after.manifest => errln!(
                "{}: {} is the newest matching tag; unchanged",
                update.role,
                update.after.reference
            ),
            Some(before) => errln!(
                "{}: {} → {}\n  manifest {} → {}",
                update.role,
                before.reference,
                update.after.reference,
                before.manifest,
                update.after.manifest
            ),
            None => errln!(
                "{}: pinned {} (manifest {})",
                update.role,
                update.after.reference,
                update.after.manifest
            ),
        }
        fetched.insert(update.role, update.after.clone());
    }
    let set = ProviderSet::load_fetched(&project, &cache, Pins::Report, &fetched)?;
    write_lock(&project, &set, &runtime)
}

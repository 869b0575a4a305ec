//! `fabrik providers list|lock`: what providers a project uses, and pinning them.

use fabrik_engine::plugins::cache::ComponentCache;
use fabrik_engine::plugins::lock::LockFile;
use fabrik_engine::plugins::{Pins, ProviderSet};
use fabrik_engine::project::Project;
use fabrik_engine::workspace::Workspace;

use super::{ExitStatus, OutputFormat, report};

/// The current project and its providers, loaded (nothing is called on them).
fn load() -> anyhow::Result<(Project, ProviderSet)> {
    let project = Workspace::current(None)?.project;
    let providers = ProviderSet::load(&project, &ComponentCache::from_env(), Pins::Report)?;
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
                println!(
                    "{role}: {name} {version} ({source}), contract fabrik:provider@{wit}",
                    role = provider.role,
                    name = info.name,
                    version = info.version,
                    source = provider.source,
                    wit = provider.component.wit,
                );
                println!(
                    "  sha256:{}  {} bytes{}",
                    provider.sha256,
                    provider.size,
                    match locked {
                        Some(true) => ", locked",
                        Some(false) => ", DIFFERS FROM fabrik.lock",
                        None => "",
                    }
                );
                println!("  kinds: {}", info.kinds.join(", "));
            }
            OutputFormat::Json => report::json_line(&serde_json::json!({
                "role": provider.role,
                "name": info.name,
                "version": info.version,
                "source": provider.source,
                "wit": provider.component.wit.to_string(),
                "sha256": provider.sha256,
                "size": provider.size,
                "kinds": info.kinds,
                "config": info.config,
                "locked": locked,
            })),
        }
    }
    Ok(ExitStatus::Success)
}

pub fn lock() -> anyhow::Result<ExitStatus> {
    let (project, set) = load()?;
    let runtime = super::runtime()?;
    let entries = runtime.block_on(set.lock_entries())?;
    let previous = LockFile::read(&project.dir).ok().flatten();
    let lock = LockFile::new(entries);
    let path = lock.write(&project.dir)?;
    for entry in &lock.providers {
        let before = previous
            .as_ref()
            .and_then(|p| p.providers.iter().find(|e| e.role == entry.role));
        let change = match before {
            None => "added",
            Some(b) if b.sha256 == entry.sha256 => "unchanged",
            Some(_) => "updated",
        };
        eprintln!(
            "{}: {} {} sha256:{} ({change})",
            entry.role, entry.name, entry.version, entry.sha256
        );
    }
    eprintln!("wrote {}", path.display());
    Ok(ExitStatus::Success)
}

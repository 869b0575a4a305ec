//! `fabrik providers list|lock`: what providers a project uses, and pinning them.

use std::path::Path;

use anyhow::Context;

use super::{ExitStatus, OutputFormat, report};
use crate::plugins::ProviderSet;
use crate::plugins::cache::ComponentCache;
use crate::plugins::lock::LockFile;
use crate::project::{Project, find_root};

fn load(dir: &Path) -> anyhow::Result<(Project, ProviderSet)> {
    let project = Project::load(dir)?;
    let providers = ProviderSet::load(&project, &ComponentCache::from_env())?;
    Ok((project, providers))
}

fn project_dir() -> anyhow::Result<std::path::PathBuf> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    Ok(find_root(&cwd))
}

pub fn list(format: OutputFormat) -> anyhow::Result<ExitStatus> {
    let dir = project_dir()?;
    let (project, set) = load(&dir)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let lock = LockFile::read(&project.dir)?;
    for provider in &set.providers {
        let info = runtime.block_on(set.describe(&provider.role))?;
        let locked = lock.as_ref().map(|l| {
            l.check(&provider.role, &provider.source, &provider.sha256)
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
    let dir = project_dir()?;
    let (project, set) = load(&dir)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
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

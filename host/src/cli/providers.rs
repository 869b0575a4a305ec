//! `fabrik providers list|lock|update|test`: what providers a project uses, pinning them,
//! and the provider kit.

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

/// What `fabrik providers test` was asked.
pub struct TestArgs<'a> {
    pub role: &'a str,
    pub component: Option<&'a std::path::Path>,
    pub name: Option<&'a str>,
    pub spec: Option<&'a std::path::Path>,
    pub edit: Option<String>,
    pub deploy_timeout: std::time::Duration,
    pub format: OutputFormat,
}

/// `fabrik providers test ROLE`: the provider kit (`orchestrator::kit`).
pub fn test(args: TestArgs<'_>) -> anyhow::Result<ExitStatus> {
    use fabrik_engine::orchestrator::kit::{self, Outcome, Target};
    let role: Role = args.role.parse()?;
    let mut project = Workspace::current(None)?.project;
    if let Some(component) = args.component {
        let path = std::path::absolute(component)?;
        if !path.is_file() {
            anyhow::bail!("no component at {}", path.display());
        }
        let entry = project
            .providers
            .get_mut(&role)
            .ok_or_else(|| anyhow::anyhow!("the project has no `{role}` role"))?;
        entry.bundled = None;
        entry.source = None;
        entry.version = None;
        entry.path = Some(path);
    }
    let app = kit::kit_app();
    let target = match (role, args.name, args.spec) {
        (Role::Dns, Some(name), _) => Target::dns_record(name),
        (Role::Dns, None, _) => anyhow::bail!(
            "`fabrik providers test dns` needs `--name FQDN`: a record in one of your zones that nothing else uses (e.g. fabrik-kit.example.com)"
        ),
        (Role::Coolify, _, Some(spec)) => {
            let (mut loaded, valid) =
                super::validate::load_all(&[spec.to_path_buf()], args.format)?;
            match loaded.pop() {
                Some(loaded) if valid => {
                    Target::coolify(&loaded, &app).map_err(anyhow::Error::msg)?
                }
                _ => return Ok(ExitStatus::Invalid),
            }
        }
        (Role::Coolify, _, None) => anyhow::bail!(
            "`fabrik providers test coolify` needs `--spec SPEC`: the app whose resource the kit creates (renamed, at its own domain)"
        ),
        (Role::Monitor, _, _) => anyhow::bail!(
            "the provider kit does not drive `monitor` providers yet: `providers/uptime-kuma`'s tests show what a monitor provider is asked"
        ),
    };
    // The kit tests a component, pinned or not: the lock step says what it loaded.
    let providers = super::loading::load(&project, Pins::Report)?;
    let env = fabrik_engine::secrets::EnvSource::load(&project.dir)?;
    let options = kit::Options {
        role,
        target,
        edit: args.edit,
        deploy_timeout: args.deploy_timeout,
        app,
    };
    let human = args.format == OutputFormat::Human;
    if human {
        errln!(
            "testing the `{role}` provider with {} {} (owner tag app `{}`)",
            options.target.kind,
            options.target.name,
            options.app
        );
    }
    let runtime = super::runtime()?;
    let steps = runtime.block_on(kit::run(&project, &providers, &env, &options, |step| {
        if human {
            let (mark, detail) = match &step.outcome {
                Outcome::Passed(detail) => ("ok  ", detail),
                Outcome::Failed(detail) => ("FAIL", detail),
                Outcome::Skipped(detail) => ("skip", detail),
            };
            outln!("{mark} {:<19} {detail} ({:.1} s)", step.step, step.seconds);
        }
    }));
    let count = |f: fn(&Outcome) -> bool| steps.iter().filter(|s| f(&s.outcome)).count();
    let passed = count(|o| matches!(o, Outcome::Passed(_)));
    let failed = count(|o| matches!(o, Outcome::Failed(_)));
    let skipped = count(|o| matches!(o, Outcome::Skipped(_)));
    match args.format {
        OutputFormat::Json => outln!(
            "{}",
            serde_json::json!({
                "role": role,
                "kind": options.target.kind,
                "name": options.target.name,
                "steps": steps,
                "passed": passed,
                "failed": failed,
                "skipped": skipped,
            })
        ),
        OutputFormat::Human => errln!(
            "{passed} passed, {failed} failed, {skipped} skipped{}",
            if skipped > 0 {
                " (a skipped step did not run: it is not a pass)"
            } else {
                ""
            }
        ),
    }
    Ok(if failed > 0 {
        ExitStatus::Failure
    } else {
        ExitStatus::Success
    })
}

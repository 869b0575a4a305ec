//! `fabrik apply` and `fabrik plan`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::Context as _;

use super::validate::load_all;
use super::{ApplyArgs, ExitStatus, OutputFormat, RollbackArgs, RunArgs, report};
use crate::orchestrator::apply::{ApplyOptions, Context, RunOrigin, apply};
use crate::orchestrator::notify::Notifier;
use crate::orchestrator::plan::{Known, Plan};
use crate::orchestrator::report::Reporter;
use crate::orchestrator::snapshot::Snapshot;
use crate::orchestrator::state::State;
use crate::orchestrator::verify::VerifyOptions;
use crate::plugins::ProviderSet;
use crate::plugins::cache::ComponentCache;
use crate::project::{Project, project_dir};
use crate::secrets::EnvSource;
use crate::spec::LoadedSpec;
use crate::store::Store;

/// Loads the providers of every project the specs belong to and checks them against
/// `fabrik.lock`. Nothing is called on them.
fn check_providers(specs: &[LoadedSpec]) -> anyhow::Result<Result<(), String>> {
    let dirs: BTreeSet<PathBuf> = specs.iter().map(|s| project_dir(&s.path)).collect();
    let cache = ComponentCache::from_env();
    for dir in dirs {
        let project = match Project::load(&dir) {
            Ok(project) => project,
            Err(e) => return Ok(Err(e.to_string())),
        };
        let providers = match ProviderSet::load(&project, &cache) {
            Ok(set) => set,
            Err(e) => return Ok(Err(e.to_string())),
        };
        match providers.verify_lock(&project.dir) {
            Ok(true) => {}
            Ok(false) => {
                tracing::info!(project = %project.dir.display(), "no fabrik.lock: providers are not pinned (run `fabrik providers lock`)")
            }
            Err(e) => return Ok(Err(e.to_string())),
        }
    }
    Ok(Ok(()))
}

/// Every spec's required secrets are there (environment or `.env`), before any apply
/// starts: nothing changes when one is missing.
fn check_required_secrets(specs: &[LoadedSpec]) -> anyhow::Result<Result<(), String>> {
    let dirs: BTreeSet<PathBuf> = specs.iter().map(|s| project_dir(&s.path)).collect();
    for dir in dirs {
        let env = EnvSource::load(&dir).map_err(anyhow::Error::msg)?;
        for spec in specs.iter().filter(|s| project_dir(&s.path) == dir) {
            let missing: Vec<&str> = spec
                .spec
                .required_secrets
                .iter()
                .filter(|name| env.get(name).is_none())
                .map(String::as_str)
                .collect();
            if !missing.is_empty() {
                return Ok(Err(format!(
                    "{}: required secret{} {} not set in the environment or in .env (`generate: false` in the spec); nothing was changed",
                    spec.path.display(),
                    if missing.len() == 1 { "" } else { "s" },
                    missing.join(", ")
                )));
            }
        }
    }
    Ok(Ok(()))
}

fn options(args: &RunArgs) -> ApplyOptions {
    ApplyOptions {
        no_rollback: args.no_rollback,
        no_refresh: args.no_refresh,
        lock_timeout: super::seconds(args.lock_timeout),
        deploy_timeout: super::seconds(args.deploy_timeout),
        verify: VerifyOptions {
            resolve: args.resolve.clone(),
            ca_file: args.ca_file.clone(),
            lookup: Default::default(),
        },
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Runs `targets`, all of the project in `dir`, `parallel` at a time; prints each
/// outcome. Returns whether every one completed.
fn deploy(
    dir: &Path,
    targets: &[(&LoadedSpec, RunOrigin)],
    args: &RunArgs,
    parallel: u16,
    reporter: &Reporter,
) -> anyhow::Result<bool> {
    let project = Project::load(dir)?;
    let providers = ProviderSet::load(&project, &ComponentCache::from_env())?;
    let store_path = args
        .state
        .path
        .clone()
        .unwrap_or_else(|| crate::store::default_path(&project.dir));
    let store = Mutex::new(Store::open(&store_path)?);
    let env = tokio::sync::Mutex::new(EnvSource::load(&project.dir).map_err(anyhow::Error::msg)?);
    let options = options(args);
    let notifier = Notifier::default();
    let ctx = Context {
        project: &project,
        providers: &providers,
        store: &store,
        reporter,
        options: &options,
        notifier: &notifier,
    };
    let slots = tokio::sync::Semaphore::new(usize::from(parallel));
    let results = runtime()?.block_on(futures::future::join_all(targets.iter().map(
        |(spec, origin)| async {
            let _slot = slots.acquire().await;
            (*spec, apply(&ctx, spec, &env, origin).await)
        },
    )));
    let mut all_complete = true;
    for (spec, result) in results {
        match result {
            Ok(outcome) => {
                all_complete &= outcome.state == State::Complete;
                reporter.summary(&outcome);
            }
            Err(error) => {
                reporter.failed(&spec.spec.name, &error.to_string());
                all_complete = false;
            }
        }
    }
    Ok(all_complete)
}

pub fn run(args: &ApplyArgs) -> anyhow::Result<ExitStatus> {
    if args.dry_run {
        return plan(
            &args.specs,
            args.run.output.output,
            args.detailed_exitcode,
            args.run.state.path.as_deref(),
        );
    }
    let (loaded, all_valid) = load_all(&args.specs, args.run.output.output)?;
    if !all_valid {
        return Ok(ExitStatus::Invalid);
    }
    if let Err(problem) = check_providers(&loaded)? {
        eprintln!("error: {problem}");
        return Ok(ExitStatus::Invalid);
    }
    if let Err(problem) = check_required_secrets(&loaded)? {
        eprintln!("error: {problem}");
        return Ok(ExitStatus::Invalid);
    }
    let reporter = Reporter::new(args.run.output.output, args.run.progress);
    let mut status = ExitStatus::Success;
    let dirs: BTreeSet<PathBuf> = loaded.iter().map(|s| project_dir(&s.path)).collect();
    for dir in dirs {
        let targets: Vec<(&LoadedSpec, RunOrigin)> = loaded
            .iter()
            .filter(|s| project_dir(&s.path) == dir)
            .map(|s| (s, RunOrigin::Apply))
            .collect();
        if !deploy(&dir, &targets, &args.run, args.parallel, &reporter)? {
            status = ExitStatus::Failure;
        }
    }
    Ok(status)
}

/// `fabrik rollback NAME`: deploys again the version of an earlier completed run.
pub fn rollback(args: &RollbackArgs) -> anyhow::Result<ExitStatus> {
    let name = &args.name;
    let (project, store) = open_store(args.run.state.path.as_deref())?;
    let Some(deployment) = store.deployment(&project.name, name)? else {
        eprintln!(
            "error: no deployment named `{name}` in project `{}`",
            project.name
        );
        return Ok(ExitStatus::Failure);
    };
    let runs = store.runs(deployment.id)?;
    drop(store);
    let target = match &args.to {
        Some(prefix) => {
            let matching: Vec<_> = runs
                .iter()
                .filter(|r| r.id.starts_with(prefix.as_str()))
                .collect();
            match matching.as_slice() {
                [run] if run.state == "COMPLETE" && run.snapshot.is_some() => *run,
                [run] if run.state != "COMPLETE" => {
                    eprintln!(
                        "error: run {} of `{name}` ended {}; only a completed run can be deployed again",
                        run.id, run.state
                    );
                    return Ok(ExitStatus::Failure);
                }
                [run] => {
                    eprintln!(
                        "error: run {} of `{name}` was recorded by an older fabrik, without what it deployed",
                        run.id
                    );
                    return Ok(ExitStatus::Failure);
                }
                [] => {
                    eprintln!(
                        "error: `{name}` has no run `{prefix}`\n\nhint: `fabrik history {name}` lists them"
                    );
                    return Ok(ExitStatus::Invalid);
                }
                _ => {
                    eprintln!(
                        "error: `{prefix}` names {} runs of `{name}`; give more of the id",
                        matching.len()
                    );
                    return Ok(ExitStatus::Invalid);
                }
            }
        }
        None => {
            // After a run that did not complete (a failed update left by a `manual` or
            // `never` policy, or `--no-rollback`), what is live is not the recorded
            // version: that version is the one to restore. Otherwise the one before it.
            let last_completed = deployment.state == "COMPLETE" || deployment.state == "DESTROYED";
            let previous = runs.iter().find(|r| {
                r.state == "COMPLETE"
                    && r.snapshot.is_some()
                    && (!last_completed
                        || deployment.spec_hash.as_deref() != Some(r.spec_hash.as_str()))
            });
            let Some(previous) = previous else {
                eprintln!(
                    "error: `{name}` has no earlier completed version to go back to\n\nhint: `fabrik history {name}` lists its runs"
                );
                return Ok(ExitStatus::Failure);
            };
            previous
        }
    };
    // Both ways of choosing `target` above require a snapshot.
    let snapshot =
        Snapshot::from_json(target.snapshot.as_ref().unwrap_or(&serde_json::Value::Null))
            .with_context(|| format!("the snapshot of run {} cannot be read", target.id))?;
    let loaded = snapshot.into_loaded(PathBuf::from(&deployment.spec_path));
    eprintln!(
        "Rolling `{name}` back to run {} (spec {}, started {})",
        target.id, target.spec_hash, target.started_at
    );
    let reporter = Reporter::new(args.run.output.output, args.run.progress);
    let origin = RunOrigin::Rollback {
        restores: target.id.clone(),
    };
    let complete = deploy(&project.dir, &[(&loaded, origin)], &args.run, 1, &reporter)?;
    if complete {
        eprintln!(
            "note: `{}` still describes the newer version; the next `fabrik apply` of it deploys that again",
            deployment.spec_path
        );
        Ok(ExitStatus::Success)
    } else {
        Ok(ExitStatus::Failure)
    }
}

/// `fabrik unlock NAME`: clears the lock record left by a process that died.
pub fn unlock(name: &str) -> anyhow::Result<ExitStatus> {
    let dir = crate::project::find_root(
        &std::env::current_dir().context("cannot read the current directory")?,
    );
    match crate::lock::unlock(&crate::lock::lock_dir(&dir), name) {
        Ok(Some(holder)) => {
            eprintln!("unlocked `{name}` (was held by {holder}, which is no longer running)")
        }
        Ok(None) => eprintln!("`{name}` was not locked"),
        Err(error) => {
            eprintln!("error: {error}");
            return Ok(ExitStatus::Failure);
        }
    }
    Ok(ExitStatus::Success)
}

/// `fabrik state export`: the whole state as JSON on stdout.
pub fn export(path: Option<&std::path::Path>) -> anyhow::Result<ExitStatus> {
    let dir = crate::project::find_root(
        &std::env::current_dir().context("cannot read the current directory")?,
    );
    let path = path.map_or_else(
        || crate::store::default_path(&dir),
        std::path::Path::to_path_buf,
    );
    let store = Store::open(&path)?;
    println!("{}", serde_json::to_string_pretty(&store.export()?)?);
    Ok(ExitStatus::Success)
}

/// What a project's state and secrets say, read without changing anything: no database
/// is created and no secret generated. Read once per project, whatever its spec count.
struct PlanSource {
    project: Project,
    env: EnvSource,
    key: Option<Vec<u8>>,
    store: Option<Store>,
}

impl PlanSource {
    fn open(dir: &Path, state_path: Option<&Path>) -> anyhow::Result<Self> {
        let path = state_path.map_or_else(|| crate::store::default_path(dir), Path::to_path_buf);
        Ok(Self {
            project: Project::load(dir)?,
            env: EnvSource::load(dir).map_err(anyhow::Error::msg)?,
            key: crate::secrets::existing_fingerprint_key(dir),
            store: path.exists().then(|| Store::open(&path)).transpose()?,
        })
    }

    /// What the state knows of `loaded`'s app, and its secrets' fingerprints now.
    fn known(&self, loaded: &LoadedSpec) -> anyhow::Result<Known> {
        let mut known = Known::default();
        for name in &loaded.spec.secrets {
            let fingerprint = self.env.get(name).map(|value| match &self.key {
                Some(key) => crate::secrets::fingerprint(key, name, &value),
                None => "(no fingerprint key yet)".to_owned(),
            });
            known.current_fingerprints.insert(name.clone(), fingerprint);
        }
        let Some(store) = &self.store else {
            return Ok(known);
        };
        let Some(deployment) = store.deployment(&self.project.name, &loaded.spec.name)? else {
            return Ok(known);
        };
        known.rows = store.resources(deployment.id)?;
        known.deployed_fingerprints = crate::orchestrator::snapshot::deployed_fingerprints(
            store.runs(deployment.id)?,
            &deployment,
        );
        known.deployment = Some(deployment);
        Ok(known)
    }
}

/// Validates the specs and prints their plans against the state; calls no provider and
/// needs no credentials.
pub fn plan(
    paths: &[PathBuf],
    format: OutputFormat,
    detailed_exitcode: bool,
    state_path: Option<&Path>,
) -> anyhow::Result<ExitStatus> {
    let (loaded, all_valid) = load_all(paths, format)?;
    if !all_valid {
        return Ok(ExitStatus::Invalid);
    }
    if let Err(problem) = check_providers(&loaded)? {
        eprintln!("error: {problem}");
        return Ok(ExitStatus::Invalid);
    }
    let mut sources = std::collections::BTreeMap::new();
    let mut plans = Vec::new();
    for spec in &loaded {
        let source = match sources.entry(project_dir(&spec.path)) {
            std::collections::btree_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::btree_map::Entry::Vacant(entry) => {
                let source = PlanSource::open(entry.key(), state_path)?;
                entry.insert(source)
            }
        };
        plans.push(Plan::against(spec, &source.known(spec)?));
    }
    for plan in &plans {
        match format {
            OutputFormat::Human => print_plan(plan),
            OutputFormat::Json => {
                report::json_line(&serde_json::json!({ "event": "plan", "plan": plan }))
            }
        }
    }
    if format == OutputFormat::Human {
        println!("Dry run: no provider was called and nothing was changed.");
    }
    let changes = plans.iter().any(Plan::has_changes);
    Ok(if detailed_exitcode && changes {
        ExitStatus::Changes
    } else {
        ExitStatus::Success
    })
}

fn print_plan(plan: &Plan) {
    println!("Plan for `{}` ({}):", plan.app, plan.spec);
    for step in &plan.steps {
        let rollback = step
            .rollback
            .map(|mode| format!(" [rollback: {mode}]"))
            .unwrap_or_default();
        println!(
            "  {} {} {}: {}{rollback}",
            step.action.marker(),
            step.kind,
            step.name,
            step.detail
        );
        for change in &step.changes {
            println!("      {change}");
        }
    }
    if !plan.has_changes() {
        println!("  No changes: the state says this version is deployed.");
    }
}

fn open_store(path: Option<&std::path::Path>) -> anyhow::Result<(Project, Store)> {
    let dir = crate::project::find_root(
        &std::env::current_dir().context("cannot read the current directory")?,
    );
    let project = Project::load(&dir)?;
    let path = path.map_or_else(
        || crate::store::default_path(&dir),
        std::path::Path::to_path_buf,
    );
    Ok((project, Store::open(&path)?))
}

/// `fabrik status [NAME]`.
pub fn status(name: Option<&str>, path: Option<&std::path::Path>) -> anyhow::Result<ExitStatus> {
    let (_project, store) = open_store(path)?;
    let deployments: Vec<_> = store
        .deployments()?
        .into_iter()
        .filter(|d| name.is_none_or(|n| d.app == n))
        .collect();
    if deployments.is_empty() {
        eprintln!(
            "no deployment{}",
            name.map(|n| format!(" named `{n}`")).unwrap_or_default()
        );
        return Ok(if name.is_some() {
            ExitStatus::Failure
        } else {
            ExitStatus::Success
        });
    }
    for d in deployments {
        println!(
            "{}: {} ({}), spec {}",
            d.app,
            d.state,
            d.spec_path,
            d.spec_hash.as_deref().unwrap_or("never completed")
        );
        for r in store
            .resources(d.id)?
            .iter()
            .filter(|r| r.status != "deleted")
        {
            println!(
                "  {} {} {} [{}] {}",
                r.provider,
                r.kind,
                r.name,
                r.status,
                r.external_id.as_deref().unwrap_or("-")
            );
        }
    }
    Ok(ExitStatus::Success)
}

/// `fabrik history NAME`.
pub fn history(name: &str, path: Option<&std::path::Path>) -> anyhow::Result<ExitStatus> {
    let (project, store) = open_store(path)?;
    let Some(deployment) = store.deployment(&project.name, name)? else {
        eprintln!(
            "error: no deployment named `{name}` in project `{}`",
            project.name
        );
        return Ok(ExitStatus::Failure);
    };
    for run in store.runs(deployment.id)? {
        let took = match (&run.finished_at, run.started_at.parse::<f64>()) {
            (Some(end), Ok(start)) => end
                .parse::<f64>()
                .map(|e| format!(" in {:.1} s", e - start))
                .unwrap_or_default(),
            _ => String::new(),
        };
        let reason = run.reason.map(|r| format!(": {r}")).unwrap_or_default();
        let origin = run
            .restores_run
            .map(|r| format!(" (rollback to the version of run {r})"))
            .unwrap_or_default();
        println!(
            "{} {:<12} started {}{took}, spec {}{origin}{reason}",
            run.id, run.state, run.started_at, run.spec_hash
        );
    }
    Ok(ExitStatus::Success)
}

/// `fabrik destroy NAME`: deletes, newest first, the resources the state says Fabrik
/// created for the app; each provider re-checks the owner tag before deleting.
pub fn destroy(
    name: &str,
    yes: bool,
    purge: bool,
    path: Option<&std::path::Path>,
) -> anyhow::Result<ExitStatus> {
    use std::io::IsTerminal;
    let (project, store) = open_store(path)?;
    let Some(deployment) = store.deployment(&project.name, name)? else {
        eprintln!(
            "error: no deployment named `{name}` in project `{}`",
            project.name
        );
        return Ok(ExitStatus::Failure);
    };
    // The lock first: the rows read next must not change under this command.
    let _lock = crate::lock::acquire(
        &crate::lock::lock_dir(&project.dir),
        name,
        "destroy",
        std::time::Duration::ZERO,
    )?;
    // Live rows, and the intents a killed run left pending (looked up by name and
    // owner tag below: the resource may exist).
    let mut owned: Vec<_> = store
        .resources(deployment.id)?
        .into_iter()
        .filter(|r| r.is_live() || r.status == "pending")
        .collect();
    owned.reverse();
    if owned.is_empty() {
        if deployment.state != "DESTROYED" {
            store.mark_destroyed(deployment.id)?;
        }
        eprintln!("`{name}` has no resources to delete");
        return Ok(ExitStatus::Success);
    }
    if !yes {
        if !std::io::stdin().is_terminal() {
            eprintln!(
                "error: `fabrik destroy` deletes {} resource(s) of `{name}`; pass `--yes` to confirm",
                owned.len()
            );
            return Ok(ExitStatus::Invalid);
        }
        eprint!(
            "Delete {} resource(s) of `{name}` ({}){}? [y/N] ",
            owned.len(),
            owned
                .iter()
                .map(|r| format!("{} {}", r.kind, r.name))
                .collect::<Vec<_>>()
                .join(", "),
            if purge { ", with their data" } else { "" }
        );
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            eprintln!("nothing deleted");
            return Ok(ExitStatus::Failure);
        }
    }
    let providers = ProviderSet::load(&project, &ComponentCache::from_env())?;
    let env = EnvSource::load(&project.dir).map_err(anyhow::Error::msg)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut status = ExitStatus::Success;
    runtime.block_on(async {
        let mut instances = std::collections::BTreeMap::new();
        for row in &owned {
            if !instances.contains_key(&row.provider) {
                instances.insert(
                    row.provider.clone(),
                    providers.instantiate(&row.provider, &env).await?,
                );
            }
            let Some(instance) = instances.get_mut(&row.provider) else {
                continue;
            };
            let id = match &row.external_id {
                Some(id) if row.status != "pending" => id.clone(),
                _ => match instance.lookup(&row.kind, &row.name, &row.owner).await {
                    Ok(Some(found)) if found.owner.as_deref() == Some(row.owner.as_str()) => {
                        found.id
                    }
                    Ok(_) => {
                        // An intent whose resource never came to exist.
                        store.record(row.id, "", "deleted", None, None)?;
                        continue;
                    }
                    Err(error) => {
                        eprintln!("error: {} {}: {error}", row.kind, row.name);
                        status = ExitStatus::Failure;
                        continue;
                    }
                },
            };
            match crate::orchestrator::removal::delete_and_confirm(
                instance,
                &row.kind,
                &id,
                &row.owner,
                purge,
                crate::orchestrator::removal::DELETION_TIMEOUT,
            )
            .await
            {
                // Already gone (deleted by hand, or by a destroy that was interrupted).
                Ok(()) | Err(crate::plugins::types::ProviderError::NotFound(_)) => {
                    store.record(row.id, "", "deleted", None, None)?;
                    let kept = row.provider == crate::orchestrator::desired::COOLIFY_ROLE && !purge;
                    if kept {
                        eprintln!(
                            "deleted {} {} ({id}); its data volumes were kept on the server (`--purge` deletes them with the resource)",
                            row.kind, row.name
                        );
                    } else {
                        eprintln!("deleted {} {} ({id})", row.kind, row.name);
                    }
                }
                Err(error) => {
                    eprintln!("error: {} {} ({id}): {error}", row.kind, row.name);
                    status = ExitStatus::Failure;
                }
            }
        }
        anyhow::Ok(())
    })?;
    if status == ExitStatus::Success {
        store.mark_destroyed(deployment.id)?;
    }
    Ok(status)
}

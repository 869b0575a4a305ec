//! `fabrik apply` and `fabrik plan`.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Mutex;

use anyhow::Context as _;

use super::validate::load_all;
use super::{ApplyArgs, ExitStatus, OutputFormat, report};
use crate::orchestrator::apply::{ApplyOptions, Context, apply};
use crate::orchestrator::plan::Plan;
use crate::orchestrator::report::Reporter;
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

pub fn run(args: &ApplyArgs) -> anyhow::Result<ExitStatus> {
    if args.dry_run {
        return plan(&args.specs, args.output.output, args.detailed_exitcode);
    }
    let (loaded, all_valid) = load_all(&args.specs, args.output.output)?;
    if !all_valid {
        return Ok(ExitStatus::Invalid);
    }
    if let Err(problem) = check_providers(&loaded)? {
        eprintln!("error: {problem}");
        return Ok(ExitStatus::Invalid);
    }
    let options = ApplyOptions {
        no_rollback: args.no_rollback,
        no_refresh: args.no_refresh,
        lock_timeout: super::seconds(args.lock_timeout),
        deploy_timeout: super::seconds(args.deploy_timeout),
        verify: VerifyOptions {
            resolve: args.resolve.clone(),
            ca_file: args.ca_file.clone(),
        },
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let reporter = Reporter::new(args.output.output);
    let mut status = ExitStatus::Success;
    let dirs: BTreeSet<PathBuf> = loaded.iter().map(|s| project_dir(&s.path)).collect();
    for dir in dirs {
        let project = Project::load(&dir)?;
        let providers = ProviderSet::load(&project, &ComponentCache::from_env())?;
        let store_path = args
            .state
            .path
            .clone()
            .unwrap_or_else(|| crate::store::default_path(&project.dir));
        let store = Mutex::new(Store::open(&store_path)?);
        let env =
            tokio::sync::Mutex::new(EnvSource::load(&project.dir).map_err(anyhow::Error::msg)?);
        let ctx = Context {
            project: &project,
            providers: &providers,
            store: &store,
            reporter: &reporter,
            options: &options,
        };
        let specs: Vec<&crate::spec::LoadedSpec> = loaded
            .iter()
            .filter(|s| project_dir(&s.path) == dir)
            .collect();
        let slots = tokio::sync::Semaphore::new(usize::from(args.parallel));
        let results = runtime.block_on(futures::future::join_all(specs.iter().map(|spec| async {
            let _slot = slots.acquire().await;
            (*spec, apply(&ctx, spec, &env).await)
        })));
        for (spec, result) in results {
            match result {
                Ok(outcome) => {
                    if outcome.state != State::Complete {
                        status = ExitStatus::Failure;
                    }
                    reporter.summary(&outcome);
                }
                Err(error) => {
                    eprintln!(
                        "error: {}: {}",
                        spec.spec.name,
                        reporter.redact(&error.to_string())
                    );
                    status = ExitStatus::Failure;
                }
            }
        }
    }
    Ok(status)
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

/// Validates the specs and prints their plans; calls no provider.
pub fn plan(
    paths: &[PathBuf],
    format: OutputFormat,
    detailed_exitcode: bool,
) -> anyhow::Result<ExitStatus> {
    let (loaded, all_valid) = load_all(paths, format)?;
    if !all_valid {
        return Ok(ExitStatus::Invalid);
    }
    if let Err(problem) = check_providers(&loaded)? {
        eprintln!("error: {problem}");
        return Ok(ExitStatus::Invalid);
    }
    let plans: Vec<Plan> = loaded.iter().map(Plan::fresh).collect();
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
        println!(
            "{} {:<12} started {}{took}, spec {}{reason}",
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
    let mut owned: Vec<_> = store
        .resources(deployment.id)?
        .into_iter()
        .filter(|r| {
            matches!(r.status.as_str(), "created" | "updated" | "adopted")
                && r.external_id.is_some()
        })
        .collect();
    owned.reverse();
    if owned.is_empty() {
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
            "Delete {} resource(s) of `{name}` ({})? [y/N] ",
            owned.len(),
            owned
                .iter()
                .map(|r| format!("{} {}", r.kind, r.name))
                .collect::<Vec<_>>()
                .join(", ")
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
    let _lock = crate::lock::acquire(
        &crate::lock::lock_dir(&project.dir),
        name,
        "destroy",
        std::time::Duration::ZERO,
    )?;
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
            let id = row.external_id.clone().unwrap_or_default();
            match instance.delete(&row.kind, &id, &row.owner, false).await {
                Ok(()) => {
                    store.record(row.id, "", "deleted", None, None).ok();
                    eprintln!("deleted {} {} ({id})", row.kind, row.name);
                }
                Err(error) => {
                    eprintln!("error: {} {} ({id}): {error}", row.kind, row.name);
                    status = ExitStatus::Failure;
                }
            }
        }
        anyhow::Ok(())
    })?;
    Ok(status)
}

//! `fabrik apply`: checks everything a deploy needs, then has the engine apply each spec
//! (several at once), rendering its events and outcomes.

use fabrik_engine::domain::{RunOrigin, State};
use fabrik_engine::orchestrator::apply::{ApplyOptions, Context, apply};
use fabrik_engine::orchestrator::notify::Notifier;
use fabrik_engine::plugins::cache::ComponentCache;
use fabrik_engine::plugins::{Pins, ProviderSet};
use fabrik_engine::project::project_dir;
use fabrik_engine::retry::Backoff;
use fabrik_engine::secrets::EnvSource;
use fabrik_engine::spec::LoadedSpec;
use fabrik_engine::workspace::Workspace;

use super::loading::{check_providers, project_dirs};
use super::progress::Reporter;
use super::render::Again;
use super::validate::{Choose, load_for};
use super::{ApplyArgs, ExitStatus, RunArgs};

/// Every spec's required secrets are there (environment or `.env`), before any apply
/// starts: nothing changes when one is missing.
fn check_required_secrets(specs: &[LoadedSpec]) -> anyhow::Result<Result<(), String>> {
    for dir in project_dirs(specs) {
        let mut env = EnvSource::load(&dir)?;
        for spec in specs.iter().filter(|s| project_dir(&s.path) == dir) {
            let environment = spec.spec.environment.as_deref();
            if let Some(environment) = environment {
                env.with_environment(&dir, environment)?;
            }
            let missing: Vec<&str> = spec
                .spec
                .required_secrets
                .iter()
                .filter(|name| env.get_in(environment, name).is_none())
                .map(String::as_str)
                .collect();
            if !missing.is_empty() {
                return Ok(Err(format!(
                    "{}: required secret{} {} not set in the environment or in {} (`generate: false` in the spec); nothing was changed",
                    spec.path.display(),
                    if missing.len() == 1 { "" } else { "s" },
                    missing.join(", "),
                    match environment {
                        Some(environment) => format!(".env.{environment} or .env"),
                        None => ".env".to_owned(),
                    }
                )));
            }
        }
    }
    Ok(Ok(()))
}

fn options(args: &RunArgs) -> ApplyOptions {
    ApplyOptions {
        no_rollback: args.no_rollback,
        redeploy: args.redeploy,
        no_refresh: args.no_refresh,
        lock_timeout: super::seconds(args.lock_timeout),
        deploy_timeout: super::seconds(args.deploy_timeout),
        verify: args.reach.verify_options(),
        // A rate limit's pauses are waited out for as long as a deployment may take.
        backoff: Backoff {
            patience: super::seconds(args.deploy_timeout),
            ..Backoff::PROVIDER
        },
    }
}

/// How the runs of one `deploy` ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Deployed {
    AllComplete,
    SomeNotComplete,
    /// Ctrl-C: the runs were stopped and their state says so.
    Interrupted,
}

/// Runs `targets`, all of `workspace`'s project, `parallel` at a time; prints each
/// outcome. Ctrl-C stops every run at its next step: what they changed is in the state
/// (the next apply recovers it), each unfinished run is closed as interrupted, and the
/// user is told what was left and the command that recovers. `loaded` is the project's provider set
/// if the caller has already loaded and checked it.
pub(super) fn deploy(
    workspace: &Workspace,
    targets: &[(&LoadedSpec, RunOrigin)],
    args: &RunArgs,
    parallel: u16,
    reporter: &Reporter,
    loaded: Option<ProviderSet>,
    again: Option<&str>,
) -> anyhow::Result<Deployed> {
    let project = &workspace.project;
    let runtime = super::runtime()?;
    // Connecting to a database state takes a server round trip or two: it happens while
    // the provider components load.
    let (providers, store) = match loaded {
        Some(providers) => (providers, runtime.block_on(workspace.open_store())?),
        None => {
            let cache = ComponentCache::from_env();
            let fetched = runtime.block_on(super::loading::fetch(project, &cache, false))?;
            let (providers, store) = runtime.block_on(async {
                let loading = {
                    let project = project.clone();
                    tokio::task::spawn_blocking(move || {
                        ProviderSet::load_fetched(
                            &project,
                            &cache,
                            Pins::Enforce,
                            &fetched.components,
                        )
                    })
                };
                let store = workspace.open_store().await;
                (loading.await, store)
            });
            (providers??, store?)
        }
    };
    let env = tokio::sync::Mutex::new(EnvSource::load(&project.dir)?);
    let options = options(args);
    let notifier = Notifier::default();
    let locks = workspace.locks()?;
    let ctx = Context {
        project,
        providers: &providers,
        store: &store,
        locks: &locks,
        observer: reporter,
        options: &options,
        notifier: &notifier,
    };
    let slots = tokio::sync::Semaphore::new(usize::from(parallel));
    let work = futures::future::join_all(targets.iter().map(|(spec, origin)| async {
        let _slot = slots.acquire().await;
        (*spec, apply(&ctx, spec, &env, origin).await)
    }));
    let results = runtime.block_on(async {
        tokio::select! {
            results = work => Some(results),
            _ = tokio::signal::ctrl_c() => None,
        }
    });
    let Some(results) = results else {
        // The runs were dropped at their current step (their locks released, a hook's
        // process killed); close what they left unfinished, each under its lock again.
        let mut lines = Vec::new();
        for (spec, _) in targets {
            let app = &spec.spec.key();
            let closed = runtime.block_on(async {
                let _lock = locks
                    .acquire(&project.name, app, "interrupt", std::time::Duration::ZERO)
                    .await
                    .ok()?;
                let deployment = store.deployment(&project.name, app).await.ok()??;
                store
                    .close_unfinished_runs(deployment.id, "interrupted by the user (Ctrl-C)")
                    .await
                    .ok()
            });
            for (run, state) in closed.unwrap_or_default() {
                lines.push(format!(
                    "interrupted: {app} stopped while {state} (run {run}); what it changed is recorded\n  next: `fabrik apply {}{}` finishes or undoes it (`fabrik status {app}` shows it)",
                    spec.path.display(),
                    spec.spec
                        .environment
                        .as_deref()
                        .map_or_else(String::new, |e| format!(" --env {e}"))
                ));
            }
        }
        reporter.interrupted(&lines);
        return Ok(Deployed::Interrupted);
    };
    let mut all_complete = true;
    for (spec, result) in results {
        match result {
            Ok(outcome) => {
                all_complete &= outcome.state == State::Complete;
                let again = match again {
                    Some(command) => Again::Command(command),
                    None => Again::Apply(&spec.path),
                };
                reporter.summary(&outcome, Some(again));
            }
            Err(error) => {
                reporter.failed(&spec.spec.key(), &error.to_string());
                all_complete = false;
            }
        }
    }
    Ok(if all_complete {
        Deployed::AllComplete
    } else {
        Deployed::SomeNotComplete
    })
}

pub fn run(args: &ApplyArgs) -> anyhow::Result<ExitStatus> {
    if args.dry_run {
        return super::plan::run(
            &args.specs,
            args.run.output.output,
            args.detailed_exitcode,
            args.env.env.as_deref(),
            args.run.state.path.as_deref(),
            &args.run.reach.verify_options(),
        );
    }
    let (loaded, all_valid) = load_for(
        &args.specs,
        args.run.output.output,
        Choose::One(args.env.env.as_deref()),
    )?;
    if !all_valid {
        return Ok(ExitStatus::Invalid);
    }
    apply_loaded(loaded, &args.run, args.parallel, &RunOrigin::Apply, None)
}

/// Applies specs already loaded and valid, every run with `origin`: checks providers,
/// required secrets and settings, resolves moving sources (a pinned one stays as it is),
/// then deploys each project's specs.
pub(super) fn apply_loaded(
    loaded: Vec<LoadedSpec>,
    run_args: &RunArgs,
    parallel: u16,
    origin: &RunOrigin,
    again: Option<&str>,
) -> anyhow::Result<ExitStatus> {
    let mut provider_sets = match check_providers(&loaded) {
        Ok(sets) => sets,
        Err(problem) => {
            errln!("error: {problem}");
            return Ok(ExitStatus::Invalid);
        }
    };
    if let Err(problem) = check_required_secrets(&loaded)? {
        errln!("error: {problem}");
        return Ok(ExitStatus::Invalid);
    }
    // Every provider's configuration and credentials, all problems at once, before a
    // secret is generated or a state database created.
    let runtime = super::runtime()?;
    let mut problems = Vec::new();
    for (dir, set) in &provider_sets {
        let env = EnvSource::load(dir)?;
        for warning in env.warnings() {
            errln!("warning: {warning}");
        }
        problems.extend(runtime.block_on(set.check_settings(&env)));
    }
    drop(runtime);
    if !problems.is_empty() {
        for problem in &problems {
            errln!("error: {problem}");
        }
        errln!("nothing was changed: every problem above must be fixed first");
        return Ok(ExitStatus::Invalid);
    }
    // Branches and tags become the commits and digests they point at now: what is
    // deployed is exactly what was resolved, and a moved branch is a change.
    let loaded = match super::sources::resolve_all(
        loaded,
        &run_args.reach.verify_options(),
        super::sources::Purpose::Apply,
        |_| None,
    )? {
        Ok(loaded) => loaded,
        Err(unresolved) => {
            for u in &unresolved {
                errln!("error: {}: {}", u.app, u.message);
            }
            errln!(
                "nothing was changed: apply deploys a branch or tag only as the commit or digest it resolves to"
            );
            return Ok(if unresolved.iter().all(|u| u.unreachable) {
                ExitStatus::Failure
            } else {
                ExitStatus::Invalid
            });
        }
    };
    let reporter = Reporter::new(run_args.output.output, run_args.progress);
    let mut status = ExitStatus::Success;
    for dir in project_dirs(&loaded) {
        let workspace = Workspace::at(&dir, run_args.state.path.as_deref())?;
        if let Some(old) = super::init::renamed_from(&workspace)? {
            errln!(
                "error: project `{}`'s state holds apps of project `{old}` only: the project was renamed, and everything Fabrik created carries `fabrik:{old}/…` owner tags",
                workspace.project.name
            );
            errln!(
                "  hint: keep the name: `name = \"{old}\"` under [project] in {} (`fabrik init {old}` writes it when there is no fabrik.toml); nothing was changed",
                dir.join("fabrik.toml").display()
            );
            status = ExitStatus::Invalid;
            continue;
        }
        let targets: Vec<(&LoadedSpec, RunOrigin)> = loaded
            .iter()
            .filter(|s| project_dir(&s.path) == dir)
            .map(|s| (s, origin.clone()))
            .collect();
        let providers = provider_sets.remove(&dir);
        match deploy(
            &workspace, &targets, run_args, parallel, &reporter, providers, again,
        )? {
            Deployed::AllComplete => {}
            Deployed::SomeNotComplete => status = ExitStatus::Failure,
            Deployed::Interrupted => return Ok(ExitStatus::Interrupted),
        }
    }
    Ok(status)
}

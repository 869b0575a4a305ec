//! `fabrik plan` (and `apply --dry-run`): the plan of each spec against the state, with
//! no provider called and no credential needed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use fabrik_engine::orchestrator::plan::{Known, Plan, Tally};
use fabrik_engine::orchestrator::snapshot::deployed;
use fabrik_engine::orchestrator::verify::VerifyOptions;
use fabrik_engine::project::project_dir;
use fabrik_engine::secrets::{self, EnvSource};
use fabrik_engine::spec::LoadedSpec;
use fabrik_engine::store::Store;
use fabrik_engine::workspace::Workspace;

use super::loading::check_providers;
use super::validate::{Choose, load_for};
use super::{ExitStatus, OutputFormat, report};

/// What a project's state and secrets say, read without changing anything: no database
/// is created and no secret generated. Read once per project, whatever its spec count.
struct PlanSource {
    workspace: Workspace,
    env: EnvSource,
    key: Option<Vec<u8>>,
    store: Option<Store>,
}

impl PlanSource {
    async fn open(dir: &Path, state_path: Option<&Path>) -> anyhow::Result<Self> {
        let workspace = Workspace::at(dir, state_path)?;
        let store = workspace.existing_store().await?;
        let env = EnvSource::load(dir)?;
        for warning in env.warnings() {
            errln!("warning: {warning}");
        }
        // The team's key with a shared state, else the project's own; never created.
        let key =
            fabrik_engine::orchestrator::fingerprint_key::for_reading(store.as_ref(), &env, dir)
                .await?;
        Ok(Self {
            env,
            key,
            store,
            workspace,
        })
    }

    /// What the state knows of `loaded`'s app, and its secrets' fingerprints now.
    async fn known(&mut self, loaded: &LoadedSpec) -> anyhow::Result<Known> {
        let mut known = Known::default();
        let environment = loaded.spec.environment.as_deref();
        if let Some(environment) = environment {
            self.env
                .with_environment(&self.workspace.project.dir, environment)?;
        }
        for name in &loaded.spec.secrets {
            let fingerprint = self
                .env
                .get_in(environment, name)
                .map(|value| match &self.key {
                    Some(key) => secrets::fingerprint(key, name, &value),
                    None => "(no fingerprint key yet)".to_owned(),
                });
            known.current_fingerprints.insert(name.clone(), fingerprint);
        }
        let Some(store) = &self.store else {
            return Ok(known);
        };
        let project = &self.workspace.project.name;
        let Some(deployment) = store.deployment(project, &loaded.spec.key()).await? else {
            return Ok(known);
        };
        known.rows = store.resources(deployment.id).await?;
        let deployed = deployed(store.runs(deployment.id).await?, &deployment);
        known.deployed_source = deployed.as_ref().and_then(|s| s.spec.source.clone());
        known.deployed_fingerprints = deployed.map(|s| s.fingerprints);
        known.deployment = Some(deployment);
        Ok(known)
    }
}

/// Validates the specs and prints their plans against the state; calls no provider and
/// needs no credentials.
pub fn run(
    paths: &[PathBuf],
    format: OutputFormat,
    detailed_exitcode: bool,
    env: Option<&str>,
    state_path: Option<&Path>,
    verify: &VerifyOptions,
) -> anyhow::Result<ExitStatus> {
    let (loaded, all_valid) = load_for(paths, format, Choose::AllOr(env))?;
    if !all_valid {
        return Ok(ExitStatus::Invalid);
    }
    show(loaded, format, detailed_exitcode, state_path, verify)
}

/// Prints the plans of specs already loaded (`fabrik promote --dry-run` gives one pinned
/// to the promoted source).
pub(super) fn show(
    loaded: Vec<LoadedSpec>,
    format: OutputFormat,
    detailed_exitcode: bool,
    state_path: Option<&Path>,
    verify: &VerifyOptions,
) -> anyhow::Result<ExitStatus> {
    if let Err(problem) = check_providers(&loaded).map(drop) {
        errln!("error: {problem}");
        return Ok(ExitStatus::Invalid);
    }
    let runtime = super::runtime()?;
    let mut sources = BTreeMap::new();
    let mut knowns = Vec::new();
    for spec in &loaded {
        let source = match sources.entry(project_dir(&spec.path)) {
            std::collections::btree_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::btree_map::Entry::Vacant(entry) => {
                let source = runtime.block_on(PlanSource::open(entry.key(), state_path))?;
                entry.insert(source)
            }
        };
        knowns.push(runtime.block_on(source.known(spec))?);
    }
    drop(runtime);
    // Moving sources as apply would deploy them; unresolved ones are said, and assume
    // the deployed id (what the state knows of the same branch or tag).
    let deployed: Vec<_> = knowns.iter().map(|k| k.deployed_source.clone()).collect();
    let loaded = super::sources::resolve_all(loaded, verify, super::sources::Purpose::Plan, |i| {
        deployed.get(i).cloned().flatten()
    })?
    .unwrap_or_default();
    let plans: Vec<Plan> = loaded
        .iter()
        .zip(&knowns)
        .map(|(spec, known)| Plan::against(spec, known))
        .collect();
    for plan in &plans {
        match format {
            OutputFormat::Human => print_plan(plan),
            OutputFormat::Json => {
                report::json_line(&serde_json::json!({ "event": "plan", "plan": plan }))
            }
        }
    }
    let tally = Tally::of(&plans);
    match format {
        OutputFormat::Human => {
            outln!("Plan: {tally}.");
            outln!("Dry run: no provider was called and nothing was changed.");
        }
        OutputFormat::Json => report::json_line(&serde_json::json!({
            "event": "plan_summary",
            "add": tally.add,
            "change": tally.change,
            "destroy": tally.destroy,
        })),
    }
    let changes = plans.iter().any(Plan::has_changes);
    Ok(if detailed_exitcode && changes {
        ExitStatus::Changes
    } else {
        ExitStatus::Success
    })
}

fn print_plan(plan: &Plan) {
    outln!("Plan for `{}` ({}):", plan.app, plan.spec);
    for step in &plan.steps {
        let rollback = step
            .rollback
            .map(|mode| format!(" [rollback: {mode}]"))
            .unwrap_or_default();
        outln!(
            "  {} {} {}: {}{rollback}",
            super::colour::marker(step.action.marker()),
            step.kind,
            step.name,
            step.detail
        );
        for change in &step.changes {
            outln!("      {change}");
        }
    }
    if !plan.has_changes() {
        outln!("  No changes: the state says this version is deployed.");
    }
}

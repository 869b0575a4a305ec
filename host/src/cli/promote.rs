//! `fabrik promote APP --from staging --to production`: deploys to one environment the
//! commit or image digest another environment's last run deployed and verified, with the
//! target environment's own domain, env and secrets.

use std::path::{Path, PathBuf};

use fabrik_engine::domain::{RunOrigin, deployment_key};
use fabrik_engine::orchestrator::promote::promotion;
use fabrik_engine::orchestrator::snapshot::deployed;
use fabrik_engine::project::project_dir;
use fabrik_engine::spec::TemplateRegistry;
use fabrik_engine::workspace::Workspace;

use super::validate::{Choose, load_for};
use super::{ExitStatus, PromoteArgs};

pub fn run(args: &PromoteArgs) -> anyhow::Result<ExitStatus> {
    let (from, to) = (args.from.as_str(), args.to.as_str());
    if from == to {
        errln!(
            "error: `--from` and `--to` both name `{from}`: a promotion goes from one environment to another"
        );
        return Ok(ExitStatus::Invalid);
    }
    let Some(path) = spec_of(&args.app, args.spec.as_deref())? else {
        return Ok(ExitStatus::Invalid);
    };
    let format = args.run.output.output;
    let paths = [path.clone()];
    // Both must be environments of the spec; the target's is what is deployed.
    let (source_spec, valid) = load_for(&paths, format, Choose::One(Some(from)))?;
    let (target, valid_target) = load_for(&paths, format, Choose::One(Some(to)))?;
    let (Some(_), Some(target), true, true) = (
        source_spec.first(),
        target.into_iter().next(),
        valid,
        valid_target,
    ) else {
        return Ok(ExitStatus::Invalid);
    };
    if target.spec.name != args.app {
        errln!(
            "error: `{}` is the spec of `{}`, not `{}`",
            path.display(),
            target.spec.name,
            args.app
        );
        return Ok(ExitStatus::Invalid);
    }
    let dir = project_dir(&path);
    let workspace = Workspace::at(&dir, args.run.state.path.as_deref())?;
    let project = &workspace.project.name;
    let runtime = super::runtime()?;
    let Some(store) = runtime.block_on(workspace.existing_store())? else {
        errln!(
            "error: project `{project}` has no state yet: `{}` has never been deployed",
            deployment_key(&args.app, Some(from))
        );
        return Ok(ExitStatus::Failure);
    };
    let from_key = deployment_key(&args.app, Some(from));
    let Some(from_deployment) = runtime.block_on(store.deployment(project, &from_key))? else {
        errln!(
            "error: `{from_key}` has never been deployed: there is nothing to promote\n  hint: `fabrik apply {} --env {from}` first",
            path.display()
        );
        return Ok(ExitStatus::Failure);
    };
    let from_runs = runtime.block_on(store.runs(from_deployment.id))?;
    let chosen = match promotion(&from_deployment, from_runs, &target) {
        Ok(chosen) => chosen,
        Err(error) => {
            errln!("error: {error}");
            return Ok(ExitStatus::Failure);
        }
    };
    // What the target runs now, to say what moves.
    let to_key = target.spec.key();
    let now = match runtime.block_on(store.deployment(project, &to_key))? {
        Some(d) => {
            let runs = runtime.block_on(store.runs(d.id))?;
            deployed(runs, &d)
                .and_then(|s| s.spec.source.and_then(|s| s.resolved().map(str::to_owned)))
        }
        None => None,
    };
    drop(store);
    drop(runtime);
    let templates = TemplateRegistry::load(&dir)?;
    let promoted = chosen.apply_to(&target, &templates)?;
    let moves = match now.as_deref() {
        Some(now) if now == chosen.id => format!("`{to_key}` already runs it"),
        Some(now) => format!("`{to_key}` moves from {now}"),
        None => format!("`{to_key}` has no verified version yet"),
    };
    errln!(
        "Promoting `{}` from {from} to {to}: {} {} at {}, as run {} of `{from_key}` verified it; {moves}",
        args.app,
        match chosen.source {
            fabrik_engine::spec::model::Source::Git { .. } => "branch",
            fabrik_engine::spec::model::Source::Image { .. } => "image",
        },
        chosen.source.moving_name(),
        chosen.id,
        chosen.from_run.id,
    );
    if args.dry_run {
        return super::plan::show(
            vec![promoted],
            format,
            false,
            args.run.state.path.as_deref(),
            &args.run.reach.verify_options(),
        );
    }
    let again = format!(
        "fabrik promote {} --from {from} --to {to}{}",
        args.app,
        args.spec
            .as_ref()
            .map(|s| format!(" --spec {}", s.display()))
            .unwrap_or_default()
    );
    super::apply::apply_loaded(
        vec![promoted],
        &args.run,
        1,
        &RunOrigin::Promotion {
            from: chosen.from_run.id.clone(),
        },
        Some(&again),
    )
}

/// The spec of `app`: `given`, else the project's spec whose `name` is `app`; `None`
/// after saying why there is none.
fn spec_of(app: &str, given: Option<&Path>) -> anyhow::Result<Option<PathBuf>> {
    if let Some(given) = given {
        return Ok(Some(given.to_path_buf()));
    }
    let root = fabrik_engine::workspace::current_root()?;
    let cwd = std::env::current_dir()?;
    // Shown, and recorded as the deployment's spec, as the user would write it.
    let found: Vec<PathBuf> = super::specs::find(&root)?
        .into_iter()
        .filter(|path| super::specs::name_of(path).as_deref() == Some(app))
        .map(|path| {
            path.strip_prefix(&cwd)
                .map(Path::to_path_buf)
                .unwrap_or(path)
        })
        .collect();
    match found.as_slice() {
        [one] => Ok(Some(one.clone())),
        [] => {
            errln!(
                "error: no spec of app `{app}` in {}\n  hint: name it with `--spec FILE`",
                root.display()
            );
            Ok(None)
        }
        _ => {
            errln!(
                "error: several specs name app `{app}`: {}\n  hint: name one with `--spec FILE`",
                found
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            Ok(None)
        }
    }
}

//! `fabrik gc`: finds (and with `--delete` removes) resources that carry this project's
//! owner tag but that the state does not know.

use std::io::IsTerminal;
use std::path::Path;

use fabrik_engine::domain::split_key;
use fabrik_engine::orchestrator::gc::{self, Orphan};
use fabrik_engine::plugins::Pins;
use fabrik_engine::secrets::EnvSource;
use fabrik_engine::workspace::Workspace;

use super::{ExitStatus, OutputFormat, report};

fn describe(orphan: &Orphan) -> String {
    let r = &orphan.resource;
    format!(
        "{role} {kind} {name} (id {id}), tagged {tag}",
        role = orphan.role,
        kind = r.kind,
        name = r.name,
        id = r.id,
        tag = r.owner.as_deref().unwrap_or_default()
    )
}

fn json(orphan: &Orphan, status: &str, reason: Option<&str>) -> serde_json::Value {
    serde_json::json!({
        "role": orphan.role,
        "app": split_key(&orphan.app).0,
        "environment": split_key(&orphan.app).1,
        "kind": orphan.resource.kind,
        "name": orphan.resource.name,
        "id": orphan.resource.id,
        "owner": orphan.resource.owner,
        "status": status,
        "reason": reason,
    })
}

pub fn run(
    delete: bool,
    env: Option<&str>,
    yes: bool,
    format: OutputFormat,
    state: Option<&Path>,
) -> anyhow::Result<ExitStatus> {
    let workspace = Workspace::current(state)?;
    let project = &workspace.project;
    let runtime = super::runtime()?;
    let store = runtime.block_on(workspace.open_store())?;
    let providers = super::loading::load(project, Pins::Enforce)?;
    let environment = env;
    let env = EnvSource::load(&project.dir)?;
    let until = std::time::Instant::now() + gc::DEADLINE;
    let mut survey = runtime.block_on(gc::survey(project, &providers, &env, &store, until))?;
    if let Some(environment) = environment {
        // `--env preview-7`: only what is tagged for that environment of an app.
        survey
            .orphans
            .retain(|o| split_key(&o.app).1 == Some(environment));
    }
    match survey.stopped {
        Some(gc::Stopped::TooMany) => errln!(
            "warning: more than {} orphans: these are the first found; run `fabrik gc` again once they are deleted",
            gc::MAX_ORPHANS
        ),
        Some(gc::Stopped::Deadline) => errln!(
            "warning: the listing passed gc's {}-minute deadline: these are the orphans found until then; run `fabrik gc` again",
            gc::DEADLINE.as_secs() / 60
        ),
        None => {}
    }
    for (role, kind) in &survey.unlisted {
        errln!(
            "warning: provider `{role}` targets contract 0.1, which cannot list: its {kind} resources were not checked"
        );
    }
    if survey.orphans.is_empty() {
        if format == OutputFormat::Human {
            errln!(
                "no orphans: every resource tagged for project `{}` is in the state ({} checked)",
                project.name,
                survey.known
            );
        }
        return Ok(ExitStatus::Success);
    }
    if !delete {
        for orphan in &survey.orphans {
            match format {
                OutputFormat::Human => outln!("orphan: {}", describe(orphan)),
                OutputFormat::Json => report::json_line(&json(orphan, "orphan", None)),
            }
        }
        if format == OutputFormat::Human {
            errln!(
                "{} orphan(s) tagged for project `{}` that the state does not know\n  hint: `fabrik gc --delete` removes them (their data is kept)",
                survey.orphans.len(),
                project.name
            );
        }
        return Ok(ExitStatus::Success);
    }
    if !yes {
        if !std::io::stdin().is_terminal() {
            errln!(
                "error: `fabrik gc --delete` deletes {} resource(s); pass `--yes` to confirm",
                survey.orphans.len()
            );
            return Ok(ExitStatus::Invalid);
        }
        for orphan in &survey.orphans {
            errln!("  {}", describe(orphan));
        }
        eprint!("Delete these {} resource(s)? [y/N] ", survey.orphans.len());
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            errln!("nothing deleted");
            return Ok(ExitStatus::Failure);
        }
    }
    let locks = workspace.locks()?;
    let collected = runtime.block_on(gc::collect(
        project,
        &providers,
        &env,
        &store,
        &locks,
        survey.orphans,
        until,
    ))?;
    for orphan in &collected.deleted {
        match format {
            OutputFormat::Human => errln!("deleted {}", describe(orphan)),
            OutputFormat::Json => report::json_line(&json(orphan, "deleted", None)),
        }
    }
    for (orphan, reason) in &collected.failed {
        match format {
            OutputFormat::Human => errln!("error: not deleted {}: {reason}", describe(orphan)),
            OutputFormat::Json => report::json_line(&json(orphan, "failed", Some(reason))),
        }
    }
    Ok(if collected.failed.is_empty() {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    })
}

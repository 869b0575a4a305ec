//! `fabrik doctor [SPEC...]`: checks what an apply would meet, changing nothing: the
//! project, its providers and credentials, the required secrets, each spec's source, the
//! Coolify server and its address, and what exists at the spec's names. One line per
//! check, a hint per failure; JSON like every command.

use std::path::{Path, PathBuf};

use fabrik_engine::orchestrator::doctor::{self, Check, Verdict};
use fabrik_engine::orchestrator::verify::VerifyOptions;
use fabrik_engine::plugins::oci::credentials::Credentials;
use fabrik_engine::project::project_dir;
use fabrik_engine::secrets::EnvSource;
use fabrik_engine::sources::{Moving, Resolver, short};
use fabrik_engine::spec::LoadedSpec;
use fabrik_engine::workspace::{Workspace, current_root};

use super::loading::check_providers;
use super::validate::{Choose, load_for};
use super::{ExitStatus, OutputFormat, report};
use fabrik_engine::domain::split_key;

pub fn run(
    paths: &[PathBuf],
    env: Option<&str>,
    format: OutputFormat,
    verify: &VerifyOptions,
) -> anyhow::Result<ExitStatus> {
    let (loaded, all_valid) = load_for(paths, format, Choose::AllOr(env))?;
    if !all_valid {
        return Ok(ExitStatus::Invalid);
    }
    let dirs: Vec<PathBuf> = if loaded.is_empty() {
        vec![current_root()?]
    } else {
        let mut dirs: Vec<PathBuf> = loaded.iter().map(|s| project_dir(&s.path)).collect();
        dirs.sort();
        dirs.dedup();
        dirs
    };
    let mut failed = false;
    let runtime = super::runtime()?;
    let resolver = Resolver::new(verify, Credentials::from_docker_config()).ok();
    for dir in dirs {
        let specs: Vec<&LoadedSpec> = loaded
            .iter()
            .filter(|s| project_dir(&s.path) == dir)
            .collect();
        let workspace = Workspace::at(&dir, None)?;
        let env = EnvSource::load(&dir)?;
        let owned: Vec<LoadedSpec> = specs.iter().map(|s| (*s).clone()).collect();
        let providers = match check_providers_of(&dir, &owned) {
            Ok(providers) => providers,
            Err(problem) => {
                show(
                    format,
                    None,
                    &failure(
                        "project",
                        "providers",
                        problem,
                        "see `fabrik providers list`",
                    ),
                );
                failed = true;
                continue;
            }
        };
        if specs.is_empty() {
            let checks = runtime.block_on(doctor::examine(
                &workspace.project,
                &providers,
                &env,
                None,
                verify,
            ));
            failed |= show_all(format, None, &checks);
            if format == OutputFormat::Human {
                outln!("  (name a spec to check its server, zone, source and names)");
            }
            continue;
        }
        for spec in specs {
            let app = &spec.spec.key();
            if format == OutputFormat::Human {
                outln!("{app} ({}):", spec.path.display());
            }
            let mut checks = runtime.block_on(doctor::examine(
                &workspace.project,
                &providers,
                &env,
                Some(spec),
                verify,
            ));
            checks.extend(secrets(spec, &env));
            if let Some(check) = source(spec, resolver.as_ref(), &runtime) {
                checks.push(check);
            }
            failed |= show_all(format, Some(app), &checks);
        }
    }
    Ok(if failed {
        ExitStatus::Failure
    } else {
        ExitStatus::Success
    })
}

/// The project's providers, loaded and checked against `fabrik.lock`, as apply does.
fn check_providers_of(
    dir: &Path,
    specs: &[LoadedSpec],
) -> Result<fabrik_engine::plugins::ProviderSet, String> {
    if specs.is_empty() {
        let project = fabrik_engine::project::Project::load(dir).map_err(|e| e.to_string())?;
        return super::loading::load(&project, fabrik_engine::plugins::Pins::Enforce)
            .map_err(|e| format!("{e:#}"));
    }
    let mut sets = check_providers(specs)?;
    sets.remove(dir)
        .ok_or_else(|| "the project's providers were not loaded".to_owned())
}

fn failure(area: &'static str, subject: &str, problem: String, hint: &str) -> Check {
    Check {
        area,
        subject: subject.to_owned(),
        verdict: Verdict::Failed {
            problem,
            hint: hint.to_owned(),
        },
    }
}

/// The secrets apply must find (`generate: false`): present in the environment or `.env`.
fn secrets(spec: &LoadedSpec, env: &EnvSource) -> Vec<Check> {
    spec.spec
        .required_secrets
        .iter()
        .map(|name| match env.get(name) {
            Some(_) => Check {
                area: "secrets",
                subject: name.clone(),
                verdict: Verdict::Ok {
                    detail: "set".to_owned(),
                },
            },
            None => failure(
                "secrets",
                name,
                "required (`generate: false`) and not set in the environment or .env".to_owned(),
                "set it in the environment or in .env beside fabrik.toml",
            ),
        })
        .collect()
}

/// The spec's branch or tag, resolved as apply would.
fn source(
    spec: &LoadedSpec,
    resolver: Option<&Resolver>,
    runtime: &tokio::runtime::Runtime,
) -> Option<Check> {
    let source = spec.spec.source.as_ref()?;
    let moving = Moving::of(source)?;
    let subject = format!("source {}", source.moving_name());
    let Some(resolver) = resolver.filter(|_| !super::loading::offline()) else {
        return Some(Check {
            area: "source",
            subject,
            verdict: Verdict::Note {
                detail: "not resolved (--offline): apply needs to resolve it".to_owned(),
            },
        });
    };
    Some(match runtime.block_on(resolver.resolve_moving(&moving)) {
        Ok(id) => Check {
            area: "source",
            subject,
            verdict: Verdict::Ok {
                detail: format!("resolves to {}", short(&id)),
            },
        },
        Err(error) => failure(
            "source",
            &subject,
            error.to_string(),
            "apply deploys a branch or tag only as the commit or digest it resolves to: check the repository or image, or pin `source.commit` / `@sha256:`",
        ),
    })
}

/// Prints every check; whether one failed.
fn show_all(format: OutputFormat, app: Option<&str>, checks: &[Check]) -> bool {
    for check in checks {
        show(format, app, check);
    }
    checks.iter().any(Check::is_failed)
}

fn show(format: OutputFormat, app: Option<&str>, check: &Check) {
    if format == OutputFormat::Json {
        let mut line = serde_json::to_value(check).unwrap_or_default();
        let (app, environment) = app.map(split_key).unzip();
        line["app"] = serde_json::json!(app);
        line["environment"] = serde_json::json!(environment.flatten());
        line["event"] = serde_json::json!("check");
        report::json_line(&line);
        return;
    }
    match &check.verdict {
        Verdict::Ok { detail } => {
            outln!("  ok    {:<8} {}: {detail}", check.area, check.subject);
        }
        Verdict::Note { detail } => {
            outln!("  note  {:<8} {}: {detail}", check.area, check.subject);
        }
        Verdict::Failed { problem, hint } => {
            outln!("  FAIL  {:<8} {}: {problem}", check.area, check.subject);
            outln!("        hint: {hint}");
        }
    }
}

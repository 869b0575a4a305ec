//! Moving sources resolved before a plan or an apply: each spec whose source is a git
//! branch or an image tag is pinned to the commit or digest it points at now (the
//! engine's `sources`), and rendered again with it, so that what is planned, hashed and
//! deployed is exactly that code. Apply refuses a source it cannot resolve; plan says so
//! and assumes the deployed id (offline, or the host unreachable).

use fabrik_engine::orchestrator::verify::VerifyOptions;
use fabrik_engine::plugins::oci::credentials::Credentials;
use fabrik_engine::project::project_dir;
use fabrik_engine::sources::{Moving, Resolver, short};
use fabrik_engine::spec::model::Source;
use fabrik_engine::spec::{LoadedSpec, TemplateRegistry};

/// Why resolution is being asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Purpose {
    /// `plan`: an unresolved source is said, never an error.
    Plan,
    /// `apply`: every moving source must resolve before anything changes.
    Apply,
}

/// A source that could not be resolved, for apply to refuse.
pub(super) struct Unresolved {
    pub app: String,
    pub message: String,
    /// The host could not be reached (as opposed to a definite answer: no such branch).
    pub unreachable: bool,
}

/// `loaded` with every moving source pinned. For a plan, an unresolved one is said on
/// stderr and pinned to `deployed(i)` (the source the state says the `i`th spec's app
/// runs) when it names the same branch or tag, so that an offline plan shows what else
/// changed.
pub(super) fn resolve_all(
    loaded: Vec<LoadedSpec>,
    verify: &VerifyOptions,
    purpose: Purpose,
    deployed: impl Fn(usize) -> Option<Source>,
) -> anyhow::Result<Result<Vec<LoadedSpec>, Vec<Unresolved>>> {
    let moving: Vec<bool> = loaded
        .iter()
        .map(|l| l.spec.source.as_ref().and_then(Moving::of).is_some())
        .collect();
    if !moving.contains(&true) {
        return Ok(Ok(loaded));
    }
    let offline = super::loading::offline();
    let resolver = if offline {
        None
    } else {
        Some(Resolver::new(verify, Credentials::from_docker_config())?)
    };
    let runtime = super::runtime()?;
    let mut out = Vec::with_capacity(loaded.len());
    let mut unresolved = Vec::new();
    for (index, (spec, moving)) in loaded.into_iter().zip(moving).enumerate() {
        let Some(source) = spec.spec.source.clone().filter(|_| moving) else {
            out.push(spec);
            continue;
        };
        let app = spec.spec.key();
        let resolved = match &resolver {
            None => Err((
                "not resolved: --offline (FABRIK_OFFLINE) is set".to_owned(),
                true,
            )),
            Some(resolver) => runtime
                .block_on(resolver.resolve(&source))
                .map(|r| r.id)
                .map_err(|e| (e.to_string(), e.is_unreachable())),
        };
        match resolved {
            Ok(id) => {
                errln!(
                    "{app}: source {} is {}",
                    describe(&source),
                    short(&id).to_owned()
                );
                out.push(pin(&spec, &id)?);
            }
            Err((message, unreachable)) => {
                if purpose == Purpose::Apply {
                    unresolved.push(Unresolved {
                        app,
                        message,
                        unreachable,
                    });
                    continue;
                }
                let assumed = deployed(index).filter(|d| same_moving(d, &source));
                match assumed.as_ref().and_then(Source::resolved) {
                    Some(id) => {
                        errln!(
                            "note: {app}: source {} {message}; the plan assumes it is still at {} (deployed)",
                            describe(&source),
                            short(id)
                        );
                        let id = id.to_owned();
                        out.push(pin(&spec, &id)?);
                    }
                    None => {
                        errln!(
                            "note: {app}: source {} {message}; the plan shows the branch or tag, not the code it points at",
                            describe(&source)
                        );
                        out.push(spec);
                    }
                }
            }
        }
    }
    Ok(if unresolved.is_empty() {
        Ok(out)
    } else {
        Err(unresolved)
    })
}

/// `main of https://github.com/acme/shop`, `ghcr.io/acme/api:1.4`.
fn describe(source: &Source) -> String {
    match source {
        Source::Git {
            repository, branch, ..
        } => format!("{branch} of {repository}"),
        Source::Image { image, .. } => image.clone(),
    }
}

/// Whether two sources name the same branch of the same repository, or the same image.
fn same_moving(a: &Source, b: &Source) -> bool {
    match (a, b) {
        (
            Source::Git {
                repository: r1,
                branch: b1,
                ..
            },
            Source::Git {
                repository: r2,
                branch: b2,
                ..
            },
        ) => r1 == r2 && b1 == b2,
        (Source::Image { image: i1, .. }, Source::Image { image: i2, .. }) => i1 == i2,
        _ => false,
    }
}

fn pin(spec: &LoadedSpec, id: &str) -> anyhow::Result<LoadedSpec> {
    let templates = TemplateRegistry::load(&project_dir(&spec.path))?;
    Ok(spec.pinned(id, &templates)?)
}

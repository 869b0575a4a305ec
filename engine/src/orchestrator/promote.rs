//! `fabrik promote`: what one environment verified, chosen for another. The source of a
//! promotion is the newest run of the `from` environment, which must have completed: its
//! snapshot holds the commit or image digest it deployed and verified, and that id, not
//! whatever the branch or tag points at now, is what the other environment deploys.

use crate::domain::State;
use crate::spec::model::Source;
use crate::spec::{LoadedSpec, TemplateRegistry};
use crate::store::{Deployment, RunRow};

use super::snapshot::Snapshot;

/// What a promotion deploys: the run it comes from and the id it verified.
#[derive(Debug, Clone)]
pub struct Promotion {
    pub from_run: RunRow,
    /// The source as that run deployed it, pinned to its id.
    pub source: Source,
    /// The commit or image digest.
    pub id: String,
}

/// Why there is nothing to promote.
#[derive(Debug, thiserror::Error)]
pub enum PromoteError {
    #[error("`{from}` has never been deployed: there is nothing to promote")]
    NeverDeployed { from: String },
    #[error(
        "`{from}` was destroyed after its last run: there is nothing verified to promote\n  hint: apply the spec with `--env {}` first", crate::domain::split_key(from).1.unwrap_or_default()
    )]
    Destroyed { from: String },
    #[error(
        "the last run of `{from}` ({run}) ended {state}, not COMPLETE: only what an environment verified is promoted\n  hint: fix it and apply the spec with `--env {}` until it completes; `fabrik history {from}` shows its runs", crate::domain::split_key(from).1.unwrap_or_default()
    )]
    NotComplete {
        from: String,
        run: String,
        state: State,
    },
    #[error("the last run of `{from}` ({run}) kept no snapshot of what it deployed")]
    NoSnapshot { from: String, run: String },
    #[error(
        "the app has no source (its template builds none): there is no commit or image to promote"
    )]
    NoSource,
    #[error(
        "the last run of `{from}` ({run}) deployed {name} without a commit or digest it was pinned to: its exact version is not known, so it cannot be promoted\n  hint: apply the spec with `--env {}` again (the source is resolved on every apply), then promote", crate::domain::split_key(from).1.unwrap_or_default()
    )]
    NotPinned {
        from: String,
        run: String,
        name: String,
    },
    #[error(
        "`{from}` deployed {deployed}, and `{to}` deploys {wanted}: a promotion carries a version of the same source\n  hint: apply the current spec with `--env {}` first", crate::domain::split_key(from).1.unwrap_or_default()
    )]
    OtherSource {
        from: String,
        to: String,
        deployed: String,
        wanted: String,
    },
    #[error("cannot render the promoted spec: {0}")]
    Render(#[from] crate::spec::template::TemplateError),
}

/// What promoting `from` (its deployment and runs, newest first) into `to` deploys.
pub fn promotion(
    from: &Deployment,
    runs: Vec<RunRow>,
    to: &LoadedSpec,
) -> Result<Promotion, PromoteError> {
    let key = from.key();
    let Some(newest) = runs.into_iter().next() else {
        return Err(PromoteError::NeverDeployed { from: key });
    };
    if from.state == crate::domain::DeploymentState::Destroyed {
        return Err(PromoteError::Destroyed { from: key });
    }
    if newest.state != State::Complete {
        return Err(PromoteError::NotComplete {
            from: key,
            run: newest.id,
            state: newest.state,
        });
    }
    let Some(snapshot) = newest
        .snapshot
        .as_ref()
        .and_then(|s| Snapshot::from_json(s).ok())
    else {
        return Err(PromoteError::NoSnapshot {
            from: key,
            run: newest.id,
        });
    };
    let (Some(deployed), Some(wanted)) = (snapshot.spec.source, to.spec.source.as_ref()) else {
        return Err(PromoteError::NoSource);
    };
    let same = match (&deployed, wanted) {
        (Source::Git { repository: a, .. }, Source::Git { repository: b, .. }) => a == b,
        (Source::Image { image: a, .. }, Source::Image { image: b, .. }) => a == b,
        _ => false,
    };
    if !same {
        return Err(PromoteError::OtherSource {
            from: key,
            to: to.spec.key(),
            deployed: describe(&deployed),
            wanted: describe(wanted),
        });
    }
    let Some(id) = verified_id(&deployed) else {
        return Err(PromoteError::NotPinned {
            from: key,
            run: newest.id,
            name: describe(&deployed),
        });
    };
    Ok(Promotion {
        from_run: newest,
        source: deployed,
        id,
    })
}

impl Promotion {
    /// `to` with the promoted id as its source, rendered again: what is planned, hashed
    /// and deployed.
    pub fn apply_to(
        &self,
        to: &LoadedSpec,
        templates: &TemplateRegistry,
    ) -> Result<LoadedSpec, PromoteError> {
        Ok(to.pinned(&self.id, templates)?)
    }
}

/// The commit or image digest a run deployed: the one its branch or tag resolved to, or
/// the one the spec itself names (`image: name@sha256:…`, a 40-digit `branch`).
pub fn verified_id(source: &Source) -> Option<String> {
    if let Some(id) = source.resolved() {
        return Some(id.to_owned());
    }
    match source {
        Source::Image { image, .. } => image.split_once('@').map(|(_, digest)| digest.to_owned()),
        Source::Git { branch, .. } => {
            crate::sources::git::is_commit(branch).then(|| branch.clone())
        }
    }
}

/// A source as people name it: `https://git.example.com/app.git` branch `main`.
fn describe(source: &Source) -> String {
    match source {
        Source::Git {
            repository, branch, ..
        } => format!("{repository} ({branch})"),
        Source::Image { image, .. } => image.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_the_spec_pins_is_its_own_verified_id() {
        let digest = format!("sha256:{}", "a".repeat(64));
        let commit = "b".repeat(40);
        let cases = [
            (
                Source::Image {
                    image: format!("ghcr.io/acme/api@{digest}"),
                    digest: None,
                },
                Some(digest.clone()),
            ),
            (
                Source::Image {
                    image: "ghcr.io/acme/api:1.4".to_owned(),
                    digest: Some(digest.clone()),
                },
                Some(digest),
            ),
            (
                Source::Image {
                    image: "ghcr.io/acme/api:1.4".to_owned(),
                    digest: None,
                },
                None,
            ),
            (
                Source::Git {
                    repository: "https://github.com/acme/api".to_owned(),
                    branch: commit.clone(),
                    commit: None,
                },
                Some(commit),
            ),
            (
                Source::Git {
                    repository: "https://github.com/acme/api".to_owned(),
                    branch: "main".to_owned(),
                    commit: None,
                },
                None,
            ),
        ];
        for (source, want) in cases {
            assert_eq!(verified_id(&source), want, "{source:?}");
        }
    }
}

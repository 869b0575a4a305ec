//! Undoing a failed run (newest first, only what it created or changed, as the spec's
//! policy says), and choosing what `fabrik rollback` deploys again.

use std::collections::BTreeMap;

use secrecy::SecretString;

use super::desired::with_secrets;
use super::events::{ResourceRef, RunEvent, UndoAction};
use super::outcome::{Left, LeftBecause, RollbackProblem, RollbackReport, Undone};
use super::removal::{DELETION_TIMEOUT, delete_and_confirm};
use super::run::{Instances, Run};
use super::snapshot::Snapshot;
use crate::domain::{DeploymentState, ResourceStatus, Role, State};
use crate::plugins::types::ProviderError;
use crate::spec::LoadedSpec;
use crate::spec::model::RollbackMode;
use crate::store::{Deployment, ResourceRow, RunRow, StoreError};

/// The resources this run created or changed, newest first, the monitor last: it is
/// restored (resumed) once the app it watches is back and verified, never before.
pub(crate) async fn touched(run: &Run<'_, '_>) -> Result<Vec<ResourceRow>, StoreError> {
    let mut rows: Vec<_> = run
        .store()
        .resources(run.deployment)
        .await?
        .into_iter()
        .filter(|r| {
            r.changed_by_run.as_deref() == Some(run.run_id.as_str())
                && r.status != ResourceStatus::Deleted
        })
        .collect();
    rows.reverse();
    rows.sort_by_key(|r| r.provider == Role::Monitor);
    Ok(rows)
}

/// What `--no-rollback` leaves: everything the run touched.
pub(crate) async fn left_in_place(run: &Run<'_, '_>) -> Result<RollbackReport, StoreError> {
    Ok(RollbackReport {
        disabled: true,
        left: touched(run)
            .await?
            .iter()
            .map(|r| Left {
                resource: ResourceRef::new(
                    &r.kind,
                    &r.name,
                    Some(r.external_id.as_deref().unwrap_or_default()),
                ),
                because: LeftBecause::RollbackDisabled,
            })
            .collect(),
        ..RollbackReport::default()
    })
}

/// Undoes, newest first, what this run created or changed, as the spec's policy says.
pub(crate) async fn roll_back(
    run: &Run<'_, '_>,
    spec: &crate::spec::Spec,
    values: &BTreeMap<String, SecretString>,
    instances: &mut Instances,
) -> Result<RollbackReport, StoreError> {
    let mut report = RollbackReport::default();
    // The app's resource put back to its previous settings: its deployment is followed
    // and the version verified once every undo is done (the DNS record too).
    let mut restored_app: Option<(usize, String, String)> = None;
    for row in touched(run).await? {
        // The restored app is followed and verified before its monitor is restored.
        if row.provider == Role::Monitor
            && let Some((index, kind, id)) = restored_app.take()
        {
            let health = follow_restored(run, spec, instances, &kind, &id).await?;
            let undone = &mut report.undone[index];
            undone.verified = Some(health.is_ok());
            undone.unhealthy = health.err().map(|why| run.hidden.redact(&why));
        }
        let Some(id) = row.external_id.clone() else {
            continue;
        };
        let resource = ResourceRef::new(&row.kind, &row.name, Some(&id));
        let mode = spec.rollback.for_role(row.provider);
        let created = row.created_by_run.as_deref() == Some(run.run_id.as_str());
        let because = match mode {
            RollbackMode::Never => Some(LeftBecause::PolicyNever),
            // The previous version names what it needs: deploying it again restores
            // what this run updated and removes what it created.
            RollbackMode::Manual => Some(LeftBecause::PolicyManual {
                app: spec.key(),
                restorable: run.restorable,
            }),
            RollbackMode::Auto if !created && row.previous_desired.is_none() => {
                Some(LeftBecause::ExistedBefore)
            }
            RollbackMode::Auto => None,
        };
        if let Some(because) = because {
            report.left.push(Left { resource, because });
            continue;
        }
        let instance = match instances.for_role(row.provider) {
            Ok(instance) => instance,
            Err(error) => {
                report.problems.push(RollbackProblem {
                    resource,
                    error: run.hidden.redact(&error.to_string()),
                });
                continue;
            }
        };
        let result = match (&row.previous_desired, created) {
            (Some(previous), false) => {
                let previous = with_secrets(previous, values);
                run.retried("rollback", async || {
                    instance.update(&row.kind, &id, &previous).await
                })
                .await
                .map(|_| UndoAction::Restored)
            }
            _ => match run
                .retried("rollback", async || {
                    delete_and_confirm(
                        instance,
                        &row.kind,
                        &id,
                        &row.owner,
                        created,
                        DELETION_TIMEOUT,
                    )
                    .await
                })
                .await
            {
                Ok(()) | Err(ProviderError::NotFound(_)) => Ok(UndoAction::Deleted),
                Err(e) => Err(e),
            },
        };
        match result {
            Ok(action) => {
                if action == UndoAction::Deleted {
                    run.write()
                        .await?
                        .record(
                            row.id,
                            Some(&run.run_id),
                            ResourceStatus::Deleted,
                            None,
                            None,
                        )
                        .await?;
                }
                run.event(RunEvent::Undone {
                    action,
                    resource: resource.clone(),
                });
                report.undone.push(Undone {
                    action,
                    resource,
                    verified: None,
                    unhealthy: None,
                });
                if action == UndoAction::Restored && row.provider == Role::Coolify {
                    restored_app = Some((report.undone.len() - 1, row.kind.clone(), id));
                }
            }
            Err(e) => report.problems.push(RollbackProblem {
                resource,
                error: run.hidden.redact(&e.to_string()),
            }),
        }
    }
    if let Some((index, kind, id)) = restored_app {
        let health = follow_restored(run, spec, instances, &kind, &id).await?;
        let undone = &mut report.undone[index];
        undone.verified = Some(health.is_ok());
        undone.unhealthy = health.err().map(|why| run.hidden.redact(&why));
    }
    Ok(report)
}

/// A restore is a deploy like any other (invariant 8): its deployment is followed to its
/// end and the restored version probed over HTTPS, with the forward path's timeouts and
/// rules, against the health check of the version restored (the last completed run's
/// spec; the failing spec's if none is readable). `Err` says why it is not healthy.
async fn follow_restored(
    run: &Run<'_, '_>,
    spec: &crate::spec::Spec,
    instances: &mut Instances,
    kind: &str,
    id: &str,
) -> Result<Result<(), String>, StoreError> {
    let restored = run
        .store()
        .runs(run.deployment)
        .await?
        .into_iter()
        .filter(|r| r.id != run.run_id && r.state == State::Complete)
        .find_map(|r| Snapshot::from_json(&r.snapshot?).ok())
        .map_or_else(|| spec.clone(), |snapshot| snapshot.spec);
    let instance = &mut instances.coolify;
    if let Err(failure) = run.wait(instance, kind, id).await {
        return Ok(Err(failure.to_string()));
    }
    Ok(run
        .probe(&restored)
        .await
        .map_err(|error| error.to_string()))
}

/// Why `fabrik rollback` has nothing to deploy.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("run {run} of `{app}` ended {state}; only a completed run can be deployed again")]
    NotCompleted {
        app: String,
        run: String,
        state: State,
    },
    #[error("run {run} of `{app}` was recorded by an older fabrik, without what it deployed")]
    NoSnapshot { app: String, run: String },
    #[error("`{app}` has no run `{prefix}`")]
    NoSuchRun { app: String, prefix: String },
    #[error("`{prefix}` names {count} runs of `{app}`; give more of the id")]
    Ambiguous {
        app: String,
        prefix: String,
        count: usize,
    },
    #[error("`{app}` has no earlier completed version to go back to")]
    NothingEarlier { app: String },
    #[error("the snapshot of run {run} cannot be read: {error}")]
    Unreadable {
        run: String,
        error: serde_json::Error,
    },
}

/// What `fabrik rollback` deploys: the run it restores and that run's spec.
pub struct RollbackTarget {
    pub run: RunRow,
    pub spec: LoadedSpec,
}

/// The run `fabrik rollback` deploys again: the one `prefix` names, or else the previous
/// completed version. `runs` are the deployment's, newest first.
pub fn rollback_target(
    deployment: &Deployment,
    runs: Vec<RunRow>,
    prefix: Option<&str>,
) -> Result<RollbackTarget, TargetError> {
    let app = deployment.key();
    let target = match prefix {
        Some(prefix) => {
            let mut matching: Vec<RunRow> = runs
                .into_iter()
                .filter(|r| r.id.starts_with(prefix))
                .collect();
            match matching.len() {
                0 => {
                    return Err(TargetError::NoSuchRun {
                        app,
                        prefix: prefix.to_owned(),
                    });
                }
                1 => {}
                count => {
                    return Err(TargetError::Ambiguous {
                        app,
                        prefix: prefix.to_owned(),
                        count,
                    });
                }
            }
            let run = matching.remove(0);
            if run.state != State::Complete {
                return Err(TargetError::NotCompleted {
                    app,
                    run: run.id,
                    state: run.state,
                });
            }
            run
        }
        None => {
            // After a run that did not complete (a failed update left by a `manual` or
            // `never` policy, or `--no-rollback`), what is live is not the recorded
            // version: that version is the one to restore. Otherwise the one before it.
            let last_completed =
                deployment.is_complete() || deployment.state == DeploymentState::Destroyed;
            runs.into_iter()
                .find(|r| {
                    r.state == State::Complete
                        && r.snapshot.is_some()
                        && (!last_completed
                            || deployment.spec_hash.as_deref() != Some(r.spec_hash.as_str()))
                })
                .ok_or(TargetError::NothingEarlier { app: app.clone() })?
        }
    };
    let Some(snapshot) = &target.snapshot else {
        return Err(TargetError::NoSnapshot {
            app,
            run: target.id,
        });
    };
    let snapshot = Snapshot::from_json(snapshot).map_err(|error| TargetError::Unreadable {
        run: target.id.clone(),
        error,
    })?;
    let spec = snapshot.into_loaded(std::path::PathBuf::from(&deployment.spec_path));
    Ok(RollbackTarget { run: target, spec })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::RunOrigin;

    fn snapshot(image: &str) -> serde_json::Value {
        let templates = crate::spec::TemplateRegistry::load(std::path::Path::new("/nonexistent"))
            .expect("templates");
        let loaded = crate::spec::parse(
            std::path::Path::new("api.yaml"),
            &format!(
                "name: api\ntemplate: python-api\ndomain: api.example.com\nserver: vps1\n\
                 source: {{ image: '{image}' }}\n"
            ),
            &templates,
        )
        .expect("valid");
        Snapshot::of(&loaded, &BTreeMap::new()).to_json()
    }

    fn run(id: &str, state: State, hash: &str, image: Option<&str>) -> RunRow {
        RunRow {
            id: id.to_owned(),
            state,
            spec_hash: hash.to_owned(),
            started_at: "1".to_owned(),
            finished_at: None,
            reason: None,
            origin: RunOrigin::Apply,
            snapshot: image.map(snapshot),
        }
    }

    fn deployment(state: DeploymentState, hash: Option<&str>) -> Deployment {
        Deployment {
            id: 1,
            project: "p".to_owned(),
            app: "api".to_owned(),
            environment: None,
            spec_path: "api.yaml".to_owned(),
            spec_hash: hash.map(str::to_owned),
            state,
            created_at: "1".to_owned(),
        }
    }

    fn image(target: &RollbackTarget) -> String {
        match &target.spec.spec.source {
            Some(crate::spec::model::Source::Image { image, .. }) => image.clone(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_previous_completed_version_is_chosen_and_a_prefix_names_one_run() {
        // Newest first: the current version h2, a failed h3 before it was undone, h1.
        let runs = || {
            vec![
                run("c3", State::RolledBack, "h3", Some("api:3")),
                run("b2", State::Complete, "h2", Some("api:2")),
                run("a1", State::Complete, "h1", Some("api:1")),
            ]
        };
        let complete = deployment(DeploymentState::Run(State::Complete), Some("h2"));
        let target = rollback_target(&complete, runs(), None).expect("a target");
        assert_eq!(
            (target.run.id.as_str(), image(&target).as_str()),
            ("a1", "api:1")
        );

        // After a failed run left in place, the recorded version is the one to restore.
        let failed = deployment(DeploymentState::Run(State::Failed), Some("h2"));
        let target = rollback_target(&failed, runs(), None).expect("a target");
        assert_eq!(target.run.id, "b2");

        let target = rollback_target(&complete, runs(), Some("a")).expect("by prefix");
        assert_eq!(target.run.id, "a1");
        assert!(matches!(
            rollback_target(&complete, runs(), Some("c")),
            Err(TargetError::NotCompleted {
                state: State::RolledBack,
                ..
            })
        ));
        assert!(matches!(
            rollback_target(&complete, runs(), Some("z")),
            Err(TargetError::NoSuchRun { .. })
        ));
        assert!(matches!(
            rollback_target(&complete, runs(), Some("")),
            Err(TargetError::Ambiguous { count: 3, .. })
        ));
    }

    #[test]
    fn nothing_earlier_or_no_snapshot_is_refused() {
        let only = vec![run("a1", State::Complete, "h1", Some("api:1"))];
        let complete = deployment(DeploymentState::Run(State::Complete), Some("h1"));
        assert!(matches!(
            rollback_target(&complete, only, None),
            Err(TargetError::NothingEarlier { .. })
        ));
        let old = vec![
            run("b2", State::Complete, "h2", Some("api:2")),
            run("a1", State::Complete, "h1", None),
        ];
        let at_b2 = deployment(DeploymentState::Run(State::Complete), Some("h2"));
        assert!(matches!(
            rollback_target(&at_b2, old.clone(), Some("a1")),
            Err(TargetError::NoSnapshot { .. })
        ));
        // Without `--to`, a run without a snapshot is never chosen.
        assert!(matches!(
            rollback_target(&at_b2, old, None),
            Err(TargetError::NothingEarlier { .. })
        ));
    }
}

//! What the store's operations mean, written once for both backends over the
//! [`Session`] seam. Every write of more than one statement is one transaction, on both.

use serde_json::Value;

use super::journal::{DestroyEntry, DestroyRecord, Journal};
use super::seam::{Cell, Row, Session, transaction};
use super::{
    Deployment, Holder, ResourceKey, ResourceRow, RunRow, RunStart, StoreError, now, parse_json,
};
use crate::domain::{DeploymentState, ResourceStatus, RunOrigin, State};

const DEPLOYMENT_COLUMNS: &str =
    "id, project, app, environment, spec_path, spec_hash, state, created_at";

fn deployment_of(row: &Row) -> Result<Deployment, StoreError> {
    let environment = row.text(3)?;
    Ok(Deployment {
        id: row.int(0)?,
        project: row.text(1)?,
        app: row.text(2)?,
        environment: (!environment.is_empty()).then_some(environment),
        spec_path: row.text(4)?,
        spec_hash: row.opt_text(5)?,
        state: row.parsed(6)?,
        created_at: row.text(7)?,
    })
}

/// The app and the stored environment (`''` for none) of a deployment key.
fn key_columns(key: &str) -> (&str, &str) {
    let (app, environment) = crate::domain::split_key(key);
    (app, environment.unwrap_or(""))
}

const RUN_COLUMNS: &str =
    "id, state, spec_hash, started_at, finished_at, reason, origin, restores_run, snapshot";

fn run_of(row: &Row) -> Result<RunRow, StoreError> {
    Ok(RunRow {
        id: row.text(0)?,
        state: row.parsed(1)?,
        spec_hash: row.text(2)?,
        started_at: row.text(3)?,
        finished_at: row.opt_text(4)?,
        reason: row.opt_text(5)?,
        origin: RunOrigin::from_stored(&row.text(6)?, row.opt_text(7)?)?,
        snapshot: parse_json(row.opt_text(8)?),
    })
}

const RESOURCE_COLUMNS: &str = "id, provider, kind, name, external_id, owner, status, desired, previous_desired, outputs, created_by_run, changed_by_run";

fn resource_of(row: &Row) -> Result<ResourceRow, StoreError> {
    Ok(ResourceRow {
        id: row.int(0)?,
        provider: row.parsed(1)?,
        kind: row.text(2)?,
        name: row.text(3)?,
        external_id: row.opt_text(4)?,
        owner: row.text(5)?,
        status: row.parsed(6)?,
        desired: parse_json(row.opt_text(7)?),
        previous_desired: parse_json(row.opt_text(8)?),
        outputs: parse_json(row.opt_text(9)?),
        created_by_run: row.opt_text(10)?,
        changed_by_run: row.opt_text(11)?,
    })
}

pub async fn deployment<S: Session>(
    s: &mut S,
    project: &str,
    app: &str,
) -> Result<Option<Deployment>, StoreError> {
    let (app, environment) = key_columns(app);
    s.query_opt(
        &format!(
            "SELECT {DEPLOYMENT_COLUMNS} FROM deployments WHERE project = $1 AND app = $2 AND environment = $3"
        ),
        &[project.into(), app.into(), environment.into()],
    )
    .await?
    .as_ref()
    .map(deployment_of)
    .transpose()
}

pub async fn deployments<S: Session>(s: &mut S) -> Result<Vec<Deployment>, StoreError> {
    s.query(
        &format!("SELECT {DEPLOYMENT_COLUMNS} FROM deployments ORDER BY project, app, environment"),
        &[],
    )
    .await?
    .iter()
    .map(deployment_of)
    .collect()
}

pub async fn ensure_deployment<S: Session>(
    s: &mut S,
    project: &str,
    app: &str,
    spec_path: &str,
) -> Result<Deployment, StoreError> {
    let (app, environment) = key_columns(app);
    let row = s
        .query_opt(
            &format!(
                "INSERT INTO deployments (project, app, environment, spec_path, state, created_at, updated_at)
                 VALUES ($1, $2, $6, $3, $4, $5, $5)
                 ON CONFLICT (project, app, environment) DO UPDATE SET spec_path = excluded.spec_path,
                     created_at = CASE WHEN deployments.state = $7 THEN excluded.created_at ELSE deployments.created_at END
                 RETURNING {DEPLOYMENT_COLUMNS}"
            ),
            &[
                project.into(),
                app.into(),
                spec_path.into(),
                DeploymentState::Run(State::Pending).as_str().into(),
                now().into(),
                environment.into(),
                // A deployment made again after a destroy is a new one (a preview's age).
                DeploymentState::Destroyed.as_str().into(),
            ],
        )
        .await?
        .ok_or(StoreError::NotWritten("the deployment"))?;
    deployment_of(&row)
}

pub async fn start_run<S: Session>(
    s: &mut S,
    run: &RunStart<'_>,
) -> Result<Deployment, StoreError> {
    transaction(s, async |s: &mut S| {
        let deployment = ensure_deployment(s, run.project, run.app, run.spec_path).await?;
        s.execute(
            "INSERT INTO runs (id, deployment_id, state, spec_hash, started_at, origin, restores_run, snapshot)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[
                run.run_id.into(),
                deployment.id.into(),
                State::Pending.as_str().into(),
                run.spec_hash.into(),
                now().into(),
                run.origin.as_str().into(),
                run.origin.restores().into(),
                run.snapshot.to_string().into(),
            ],
        )
        .await?;
        append_event(
            s,
            Some(deployment.id),
            Some(run.run_id),
            &Journal::RunStarted {
                spec_hash: run.spec_hash,
                origin: run.origin,
            },
        )
        .await?;
        Ok(deployment)
    })
    .await
}

/// One transition in one transaction: the run, the deployment, the restore points and
/// the journal agree even if the process dies here.
pub async fn transition<S: Session>(
    s: &mut S,
    deployment: i64,
    run_id: &str,
    (from, to): (State, State),
    reason: Option<&str>,
    keep: Option<DeploymentState>,
) -> Result<State, StoreError> {
    let next = from.transition(to)?;
    let at = now();
    let finished = next.is_terminal().then_some(at.clone());
    transaction(s, async |s: &mut S| {
        s.execute(
            "UPDATE runs SET state = $1, finished_at = COALESCE($2, finished_at), reason = COALESCE($3, reason) WHERE id = $4",
            &[next.as_str().into(), finished.into(), reason.into(), run_id.into()],
        )
        .await?;
        s.execute(
            "UPDATE deployments SET state = $1, updated_at = $2 WHERE id = $3",
            &[
                keep.unwrap_or(DeploymentState::Run(next)).as_str().into(),
                at.into(),
                deployment.into(),
            ],
        )
        .await?;
        if next == State::Complete {
            // What a completed run deployed is what a later failed run restores.
            s.execute(
                "UPDATE resources SET previous_desired = desired
                 WHERE deployment_id = $1 AND status IN ($2, $3, $4)",
                &[
                    deployment.into(),
                    ResourceStatus::Created.as_str().into(),
                    ResourceStatus::Updated.as_str().into(),
                    ResourceStatus::Adopted.as_str().into(),
                ],
            )
            .await?;
        }
        append_event(
            s,
            Some(deployment),
            Some(run_id),
            &Journal::Transition {
                from,
                to: next,
                reason,
            },
        )
        .await?;
        Ok(next)
    })
    .await
}

/// Ends every run of `deployment` that is not in a terminal state as `FAILED` with
/// `reason`, through the state machine (a `PENDING` run goes by `VALIDATING`). Only for
/// the holder of the app's lock, for whom such a run belongs to a process that died.
/// Returns each closed run's id and the state it was left in.
pub async fn close_unfinished_runs<S: Session>(
    s: &mut S,
    deployment: i64,
    reason: &str,
) -> Result<Vec<(String, State)>, StoreError> {
    let mut closed = Vec::new();
    for run in runs(s, deployment).await? {
        let left_in = run.state;
        if left_in.is_terminal() {
            continue;
        }
        let mut state = left_in;
        if state == State::Pending {
            state = transition(
                s,
                deployment,
                &run.id,
                (state, State::Validating),
                None,
                None,
            )
            .await?;
        }
        transition(
            s,
            deployment,
            &run.id,
            (state, State::Failed),
            Some(reason),
            None,
        )
        .await?;
        closed.push((run.id, left_in));
    }
    Ok(closed)
}

/// Records that `fabrik destroy` deleted every resource of the app: the deployment is
/// `DESTROYED` and has no deployed spec, so the next apply creates it again.
pub async fn mark_destroyed<S: Session>(
    s: &mut S,
    deployment: i64,
    record: &DestroyRecord,
) -> Result<(), StoreError> {
    transaction(s, async |s: &mut S| {
        s.execute(
            "UPDATE deployments SET spec_hash = NULL, state = $1, updated_at = $2 WHERE id = $3",
            &[
                DeploymentState::Destroyed.as_str().into(),
                now().into(),
                deployment.into(),
            ],
        )
        .await?;
        append_event(s, Some(deployment), None, &Journal::Destroyed { record }).await
    })
    .await
}

pub async fn destroys<S: Session>(
    s: &mut S,
    deployment: i64,
) -> Result<Vec<DestroyEntry>, StoreError> {
    let rows = s
        .query(
            "SELECT at, data FROM events WHERE deployment_id = $1 AND kind = 'destroyed'
             ORDER BY seq DESC",
            &[deployment.into()],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(DestroyEntry::from_journal(
                r.text(0)?,
                r.opt_text(1)?.as_deref(),
            ))
        })
        .collect()
}

pub async fn set_spec_hash<S: Session>(
    s: &mut S,
    deployment: i64,
    hash: &str,
) -> Result<(), StoreError> {
    s.execute(
        "UPDATE deployments SET spec_hash = $1 WHERE id = $2",
        &[hash.into(), deployment.into()],
    )
    .await?;
    Ok(())
}

pub async fn append_event<S: Session>(
    s: &mut S,
    deployment: Option<i64>,
    run_id: Option<&str>,
    event: &Journal<'_>,
) -> Result<(), StoreError> {
    s.execute(
        "INSERT INTO events (deployment_id, run_id, at, kind, data) VALUES ($1, $2, $3, $4, $5)",
        &[
            deployment.into(),
            run_id.into(),
            now().into(),
            event.kind().into(),
            event.data().to_string().into(),
        ],
    )
    .await?;
    Ok(())
}

/// Writes the intent to create or change a resource before the provider is called: a
/// new row is `pending` until [`record`] writes the outcome. An existing row keeps its
/// `previous_desired`, the desired state of the last completed run (set by
/// [`transition`] to `COMPLETE`), which rollback restores.
pub async fn intend<S: Session>(
    s: &mut S,
    deployment: i64,
    run_id: &str,
    key: ResourceKey<'_>,
    owner: &str,
    desired: &Value,
) -> Result<i64, StoreError> {
    let ResourceKey {
        provider,
        kind,
        name,
    } = key;
    transaction(s, async |s: &mut S| {
        let row = s
            .query_opt(
                "INSERT INTO resources (deployment_id, provider, kind, name, owner, status, desired, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $8, $6, $7)
                 ON CONFLICT (deployment_id, provider, kind, name) DO UPDATE SET
                     status = CASE WHEN resources.status = $9 THEN $8 ELSE resources.status END,
                     previous_desired = CASE WHEN resources.status = $9 THEN NULL ELSE resources.previous_desired END,
                     desired = excluded.desired,
                     updated_at = excluded.updated_at
                 RETURNING id",
                &[
                    deployment.into(),
                    provider.as_str().into(),
                    kind.into(),
                    name.into(),
                    owner.into(),
                    desired.to_string().into(),
                    now().into(),
                    ResourceStatus::Pending.as_str().into(),
                    ResourceStatus::Deleted.as_str().into(),
                ],
            )
            .await?
            .ok_or(StoreError::NotWritten("the resource intent"))?;
        let id = row.int(0)?;
        append_event(
            s,
            Some(deployment),
            Some(run_id),
            &Journal::Intent {
                provider,
                kind,
                name,
            },
        )
        .await?;
        Ok(id)
    })
    .await
}

/// Records what a provider call did to a resource. `run` is `None` for changes outside
/// a run (`fabrik destroy`).
pub async fn record<S: Session>(
    s: &mut S,
    resource: i64,
    run: Option<&str>,
    status: ResourceStatus,
    external_id: Option<&str>,
    outputs: Option<&Value>,
) -> Result<(), StoreError> {
    let created = if status.is_new_to_run() { run } else { None };
    transaction(s, async |s: &mut S| {
        let row = s
            .query_opt(
                "UPDATE resources SET status = $1, external_id = COALESCE($2, external_id), outputs = COALESCE($3, outputs),
                     created_by_run = COALESCE($4, created_by_run), changed_by_run = $5, updated_at = $6
                 WHERE id = $7
                 RETURNING deployment_id",
                &[
                    status.as_str().into(),
                    external_id.into(),
                    outputs.map(Value::to_string).into(),
                    created.into(),
                    run.into(),
                    now().into(),
                    resource.into(),
                ],
            )
            .await?
            .ok_or(StoreError::NotWritten("the resource"))?;
        append_event(
            s,
            Some(row.int(0)?),
            run,
            &Journal::Resource {
                resource,
                status,
                external_id,
            },
        )
        .await
    })
    .await
}

pub async fn resources<S: Session>(
    s: &mut S,
    deployment: i64,
) -> Result<Vec<ResourceRow>, StoreError> {
    s.query(
        &format!("SELECT {RESOURCE_COLUMNS} FROM resources WHERE deployment_id = $1 ORDER BY id"),
        &[deployment.into()],
    )
    .await?
    .iter()
    .map(resource_of)
    .collect()
}

/// See [`super::Store::holder`].
pub async fn holder<S: Session>(
    s: &mut S,
    project: &str,
    key: ResourceKey<'_>,
    external_id: &str,
    except: i64,
) -> Result<Option<Holder>, StoreError> {
    let row = s
        .query_opt(
            "SELECT d.project, d.app, d.environment, r.name FROM resources r JOIN deployments d ON d.id = r.deployment_id
             WHERE r.provider = $1 AND r.kind = $2 AND r.external_id = $3 AND r.status IN ('created', 'updated', 'adopted') AND r.id <> $4
               AND d.project = $5
             ORDER BY r.id LIMIT 1",
            &[
                key.provider.as_str().into(),
                key.kind.into(),
                external_id.into(),
                except.into(),
                project.into(),
            ],
        )
        .await?;
    row.map(|row| {
        let environment = row.text(2)?;
        Ok(Holder {
            project: row.text(0)?,
            app: crate::domain::deployment_key(
                &row.text(1)?,
                Some(environment.as_str()).filter(|e| !e.is_empty()),
            ),
            name: row.text(3)?,
        })
    })
    .transpose()
}

/// The runs of a deployment, newest first.
pub async fn runs<S: Session>(s: &mut S, deployment: i64) -> Result<Vec<RunRow>, StoreError> {
    s.query(
        &format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE deployment_id = $1 ORDER BY started_at DESC, {} DESC",
            S::RUN_SEQUENCE
        ),
        &[deployment.into()],
    )
    .await?
    .iter()
    .map(run_of)
    .collect()
}

/// Writes `dump` (the shape of [`super::Store::export`]) into an empty store, in one
/// transaction: rows keep their ids; a run's `restores_run` is set once every run is
/// there.
pub async fn import<S: Session>(s: &mut S, dump: &Value) -> Result<(), StoreError> {
    transaction(s, async |s: &mut S| {
        for (table, rows) in super::migrate::tables(dump) {
            for row in rows {
                let columns: Vec<&String> = row.keys().collect();
                let params: Vec<Cell> = columns
                    .iter()
                    .map(|c| match (table, c.as_str()) {
                        ("runs", "restores_run") => Cell::Null,
                        _ => cell_of_json(&row[c.as_str()]),
                    })
                    .collect();
                s.execute(&super::migrate::insert_sql(table, &columns), &params)
                    .await?;
            }
        }
        for (id, restores) in super::migrate::restores(dump) {
            s.execute(
                "UPDATE runs SET restores_run = $1 WHERE id = $2",
                &[restores.into(), id.into()],
            )
            .await?;
        }
        s.after_import().await
    })
    .await
}

/// Cells for a statement from a dump's JSON row (`fabrik state migrate`): numbers as
/// integers, strings as text, anything else as its JSON text.
fn cell_of_json(value: &Value) -> Cell {
    match value {
        Value::Null => Cell::Null,
        Value::Number(n) => n
            .as_i64()
            .map_or_else(|| Cell::Text(n.to_string()), Cell::Int),
        Value::String(s) => Cell::Text(s.clone()),
        other => Cell::Text(other.to_string()),
    }
}

//! The store's meaning, through [`Store`] on a SQLite file (the conformance suite in
//! `engine/tests/store_conformance.rs` runs the same operations on both backends).

use futures::executor::block_on as wait;
use rusqlite::Connection;
use serde_json::json;

use super::*;
use crate::domain::{Role, RunOrigin};

fn open_temp() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&default_path(dir.path())).expect("opens");
    (dir, store)
}

fn start(store: &Store, deployment: i64, run_id: &str, spec_hash: &str) {
    let of = wait(store.deployments())
        .expect("deployments")
        .into_iter()
        .find(|d| d.id == deployment)
        .expect("the deployment exists");
    wait(store.start_run(&RunStart {
        project: &of.project,
        app: &of.app,
        spec_path: &of.spec_path,
        run_id,
        spec_hash,
        origin: &RunOrigin::Apply,
        snapshot: &json!({ "spec": { "name": "api" } }),
    }))
    .expect("run starts");
}

/// Walks run `run_id` from `PENDING` to `COMPLETE`.
fn complete(store: &Store, deployment: i64, run_id: &str) -> State {
    let mut state = State::Pending;
    for next in [
        State::Validating,
        State::Provisioning,
        State::Deploying,
        State::Verifying,
        State::Complete,
    ] {
        state =
            wait(store.transition(deployment, run_id, (state, next), None, None)).expect("allowed");
    }
    state
}

fn count(path: &Path, sql: &str) -> i64 {
    Connection::open(path)
        .expect("open")
        .query_row(sql, [], |r| r.get(0))
        .expect("count")
}

fn dns_record(name: &str) -> ResourceKey<'_> {
    ResourceKey {
        provider: Role::Dns,
        kind: "dns-record",
        name,
    }
}

#[test]
fn runs_follow_the_state_machine_and_journal_each_transition() {
    let (dir, store) = open_temp();
    let deployment = wait(store.ensure_deployment("p", "api", "api.yaml")).expect("deployment");
    start(&store, deployment.id, "run-1", "sha256:x");
    let state = complete(&store, deployment.id, "run-1");
    let refused = wait(store.transition(
        deployment.id,
        "run-1",
        (state, State::Deploying),
        None,
        None,
    ));
    assert!(matches!(refused, Err(StoreError::Transition(_))));
    assert_eq!(
        wait(store.deployment("p", "api"))
            .expect("read")
            .expect("exists")
            .state,
        DeploymentState::Run(State::Complete)
    );
    let transitions = count(
        &default_path(dir.path()),
        "SELECT COUNT(*) FROM events WHERE kind = 'transition'",
    );
    assert_eq!(transitions, 5);
}

#[test]
fn intents_precede_outcomes_and_keep_the_previous_desired_state() {
    let (_dir, store) = open_temp();
    let d = wait(store.ensure_deployment("p", "api", "api.yaml"))
        .expect("deployment")
        .id;
    start(&store, d, "r1", "h1");
    let key = dns_record("api.example.com");
    let id = wait(store.intend(
        d,
        "r1",
        key,
        "fabrik:p/api",
        &json!({ "content": "1.2.3.4" }),
    ))
    .expect("intent");
    assert_eq!(
        wait(store.resources(d)).expect("rows")[0].status,
        ResourceStatus::Pending
    );
    wait(store.record(
        id,
        Some("r1"),
        ResourceStatus::Created,
        Some("zone/rec"),
        Some(&json!({ "zone_id": "zone" })),
    ))
    .expect("record");
    complete(&store, d, "r1");
    start(&store, d, "r2", "h2");
    let again = wait(store.intend(
        d,
        "r2",
        key,
        "fabrik:p/api",
        &json!({ "content": "5.6.7.8" }),
    ))
    .expect("intent");
    assert_eq!(again, id, "the same resource row, never a duplicate");
    let row = &wait(store.resources(d)).expect("rows")[0];
    assert_eq!(row.status, ResourceStatus::Created);
    assert_eq!(row.previous_desired, Some(json!({ "content": "1.2.3.4" })));
    // A run killed after its intent does not move the restore point: a third intent
    // still restores what the completed run deployed.
    start(&store, d, "r3", "h3");
    wait(store.intend(
        d,
        "r3",
        key,
        "fabrik:p/api",
        &json!({ "content": "9.9.9.9" }),
    ))
    .expect("intent");
    let row = &wait(store.resources(d)).expect("rows")[0];
    assert_eq!(row.previous_desired, Some(json!({ "content": "1.2.3.4" })));
    assert_eq!(row.desired, Some(json!({ "content": "9.9.9.9" })));
    assert_eq!(row.created_by_run.as_deref(), Some("r1"));
    let export = wait(store.export()).expect("export");
    assert_eq!(export["resources"][0]["external_id"], "zone/rec");
    assert!(export["events"].as_array().is_some_and(|e| e.len() >= 4));
}

#[test]
fn a_version_1_database_is_migrated_on_open_and_keeps_its_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = default_path(dir.path());
    std::fs::create_dir_all(path.parent().expect("parent")).expect("dir");
    {
        // A database exactly as the first release of the schema wrote it.
        let conn = Connection::open(&path).expect("open");
        conn.execute_batch(migrations::MIGRATIONS[0]).expect("v1");
        conn.pragma_update(None, "user_version", 1)
            .expect("version");
        conn.execute_batch(
            "INSERT INTO deployments (id, project, app, spec_path, spec_hash, state, created_at, updated_at)
                 VALUES (1, 'p', 'api', 'api.yaml', 'sha256:old', 'COMPLETE', '1', '1');
             INSERT INTO runs (id, deployment_id, state, spec_hash, started_at, finished_at)
                 VALUES ('old-run', 1, 'COMPLETE', 'sha256:old', '1', '2');
             INSERT INTO events (deployment_id, run_id, at, kind, data)
                 VALUES (1, 'old-run', '1', 'transition', '{}');",
        )
        .expect("v1 rows");
    }
    let store = Store::open(&path).expect("migrates");
    assert_eq!(count(&path, "PRAGMA user_version"), migrations::latest());
    let runs = wait(store.runs(1)).expect("runs");
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].id, "old-run");
    assert_eq!(runs[0].origin, RunOrigin::Apply, "old runs were applies");
    assert_eq!(runs[0].snapshot, None, "v1 kept no snapshot");
    assert_eq!(
        wait(store.deployment("p", "api"))
            .expect("read")
            .expect("kept")
            .spec_hash
            .as_deref(),
        Some("sha256:old")
    );
    // The migrated schema takes new runs with their snapshots.
    start(&store, 1, "new-run", "sha256:new");
    assert_eq!(
        wait(store.runs(1)).expect("runs")[0].snapshot,
        Some(json!({ "spec": { "name": "api" } }))
    );
    // And the journal is still append-only.
    assert!(
        Connection::open(&path)
            .expect("open")
            .execute("DELETE FROM events", [])
            .is_err()
    );
}

/// The seam reads `$N` as SQLite's `?N`, the same parameter however often it appears,
/// and a failed body rolls its transaction back.
#[test]
fn a_failed_transaction_leaves_nothing_behind() {
    let (dir, store) = open_temp();
    let d = wait(store.ensure_deployment("p", "api", "api.yaml"))
        .expect("deployment")
        .id;
    // No run `r1`: the intent's journal entry breaks its foreign key, after the row.
    let failed = wait(store.intend(d, "r1", dns_record("a.example.com"), "o", &json!({})));
    assert!(failed.is_err());
    let path = default_path(dir.path());
    assert_eq!(count(&path, "SELECT COUNT(*) FROM resources"), 0);
    // The store goes on working after the rollback.
    start(&store, d, "r1", "h1");
    wait(store.intend(d, "r1", dns_record("a.example.com"), "o", &json!({}))).expect("intent");
    assert_eq!(count(&path, "SELECT COUNT(*) FROM resources"), 1);
}

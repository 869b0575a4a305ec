//! One conformance suite for every state backend: each scenario runs against a SQLite
//! file and against a real PostgreSQL server (a fresh schema per test), and must behave
//! the same. PostgreSQL comes from `FABRIK_TEST_POSTGRES_URL` (`.ci/run` starts a
//! throwaway cluster): in CI a missing server fails the tests; elsewhere they say so and
//! run on SQLite only.

use fabrik_engine::domain::{DeploymentState, ResourceStatus, Role, RunOrigin, State};
use fabrik_engine::store::postgres::{self, PgSettings};
use fabrik_engine::store::{Journal, ResourceKey, RunStart, Store, StoreError};
use secrecy::SecretString;
use serde_json::json;

/// The PostgreSQL connection string: `FABRIK_TEST_POSTGRES_URL`, else a throwaway
/// cluster the tests start (`fabrik_sim::postgres`); without either the test fails,
/// naming what to install: it never passes on SQLite alone.
fn postgres_url() -> String {
    fabrik_sim::postgres::server().url.clone()
}

/// A schema no other test uses.
fn fresh_schema() -> String {
    let mut bytes = [0u8; 6];
    getrandom::fill(&mut bytes).expect("random");
    format!("t_{}", hex::encode(bytes))
}

fn settings(url: &str, schema: &str) -> PgSettings {
    PgSettings {
        url: SecretString::from(url.to_owned()),
        schema: schema.to_owned(),
        ca_file: None,
    }
}

/// Every backend this machine has, each empty.
async fn backends() -> Vec<(&'static str, Store, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().expect("tempdir");
    let sqlite = Store::open(&dir.path().join("state.db")).expect("sqlite");
    let store = Store::connect(&settings(&postgres_url(), &fresh_schema()))
        .await
        .expect("postgres");
    vec![("sqlite", sqlite, Some(dir)), ("postgres", store, None)]
}

async fn start(store: &Store, deployment: i64, run_id: &str, hash: &str, origin: &RunOrigin) {
    let of = store
        .deployments()
        .await
        .expect("deployments")
        .into_iter()
        .find(|d| d.id == deployment)
        .expect("the deployment exists");
    store
        .start_run(&RunStart {
            project: &of.project,
            app: &of.key(),
            spec_path: &of.spec_path,
            run_id,
            spec_hash: hash,
            origin,
            snapshot: &json!({ "spec": { "name": "api" } }),
        })
        .await
        .expect("run starts");
}

async fn walk(store: &Store, deployment: i64, run_id: &str, to: &[State]) -> State {
    let mut state = State::Pending;
    for next in to {
        state = store
            .transition(deployment, run_id, (state, *next), None, None)
            .await
            .expect("allowed");
    }
    state
}

const TO_COMPLETE: [State; 5] = [
    State::Validating,
    State::Provisioning,
    State::Deploying,
    State::Verifying,
    State::Complete,
];

fn dns(name: &str) -> ResourceKey<'_> {
    ResourceKey {
        provider: Role::Dns,
        kind: "dns-record",
        name,
    }
}

fn journal_kinds(export: &serde_json::Value) -> Vec<String> {
    export["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["kind"].as_str().expect("kind").to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployments_move_only_as_the_state_machine_allows() {
    for (backend, store, _dir) in backends().await {
        let first = store
            .ensure_deployment("p", "api", "api.yaml")
            .await
            .expect("created");
        let again = store
            .ensure_deployment("p", "api", "moved/api.yaml")
            .await
            .expect("found");
        assert_eq!(first.id, again.id, "{backend}: one row per app");
        assert_eq!(again.spec_path, "moved/api.yaml", "{backend}");
        assert_eq!(
            again.state,
            DeploymentState::Run(State::Pending),
            "{backend}"
        );

        start(&store, first.id, "run-1", "h1", &RunOrigin::Apply).await;
        let state = walk(&store, first.id, "run-1", &TO_COMPLETE).await;
        store.set_spec_hash(first.id, "h1").await.expect("hash");
        let refused = store
            .transition(first.id, "run-1", (state, State::Deploying), None, None)
            .await;
        assert!(
            matches!(refused, Err(StoreError::Transition(_))),
            "{backend}: {refused:?}"
        );
        let deployment = store
            .deployment("p", "api")
            .await
            .expect("read")
            .expect("there");
        assert!(deployment.is_complete(), "{backend}");
        assert_eq!(deployment.spec_hash.as_deref(), Some("h1"), "{backend}");
        assert_eq!(
            store.deployment("p", "other").await.expect("read"),
            None,
            "{backend}"
        );
        let runs = store.runs(first.id).await.expect("runs");
        assert_eq!(runs.len(), 1, "{backend}");
        assert_eq!(runs[0].state, State::Complete, "{backend}");
        assert!(runs[0].finished_at.is_some(), "{backend}");
        assert_eq!(runs[0].snapshot, Some(json!({ "spec": { "name": "api" } })));

        let export = store.export().await.expect("export");
        let kinds = journal_kinds(&export);
        assert_eq!(
            kinds.iter().filter(|k| *k == "transition").count(),
            5,
            "{backend}: {kinds:?}"
        );
        assert_eq!(kinds[0], "run_started", "{backend}");
        assert!(export["schema_version"].is_number(), "{backend}");

        // An incomplete destroy is journalled; a complete one marks the deployment too.
        let incomplete = fabrik_engine::store::DestroyRecord {
            complete: false,
            deleted: 1,
            already_gone: 0,
            failed: 1,
        };
        store
            .append_event(
                Some(first.id),
                None,
                &Journal::Destroyed {
                    record: &incomplete,
                },
            )
            .await
            .expect("journalled");
        let complete = fabrik_engine::store::DestroyRecord {
            complete: true,
            deleted: 1,
            already_gone: 1,
            failed: 0,
        };
        store
            .mark_destroyed(first.id, &complete)
            .await
            .expect("destroyed");
        let destroyed = store.deployments().await.expect("all");
        assert_eq!(destroyed.len(), 1, "{backend}");
        assert_eq!(destroyed[0].state, DeploymentState::Destroyed, "{backend}");
        assert_eq!(destroyed[0].spec_hash, None, "{backend}");
        let destroys: Vec<_> = store
            .destroys(first.id)
            .await
            .expect("destroys")
            .into_iter()
            .map(|d| d.record)
            .collect();
        assert_eq!(destroys, [complete, incomplete], "{backend}: newest first");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn intents_come_first_and_keep_the_restore_point() {
    for (backend, store, _dir) in backends().await {
        let d = store
            .ensure_deployment("p", "api", "api.yaml")
            .await
            .expect("deployment")
            .id;
        start(&store, d, "r1", "h1", &RunOrigin::Apply).await;
        let id = store
            .intend(
                d,
                "r1",
                dns("api.example.com"),
                "fabrik:p/api",
                &json!({ "content": "1.2.3.4" }),
            )
            .await
            .expect("intent");
        let rows = store.resources(d).await.expect("rows");
        assert_eq!(rows[0].status, ResourceStatus::Pending, "{backend}");
        assert!(!rows[0].is_live(), "{backend}: an intent is not live");
        store
            .record(
                id,
                Some("r1"),
                ResourceStatus::Created,
                Some("zone/rec"),
                Some(&json!({ "zone_id": "zone" })),
            )
            .await
            .expect("record");
        walk(&store, d, "r1", &TO_COMPLETE).await;

        start(&store, d, "r2", "h2", &RunOrigin::Apply).await;
        let again = store
            .intend(
                d,
                "r2",
                dns("api.example.com"),
                "fabrik:p/api",
                &json!({ "content": "5.6.7.8" }),
            )
            .await
            .expect("intent");
        assert_eq!(again, id, "{backend}: the same row, never a duplicate");
        let row = &store.resources(d).await.expect("rows")[0];
        assert_eq!(row.status, ResourceStatus::Created, "{backend}");
        assert!(row.is(Role::Dns, "dns-record", "api.example.com"));
        assert_eq!(row.external_id.as_deref(), Some("zone/rec"), "{backend}");
        assert_eq!(row.outputs, Some(json!({ "zone_id": "zone" })), "{backend}");
        assert_eq!(row.created_by_run.as_deref(), Some("r1"), "{backend}");
        assert_eq!(
            row.previous_desired,
            Some(json!({ "content": "1.2.3.4" })),
            "{backend}: what the completed run deployed"
        );
        assert_eq!(row.desired, Some(json!({ "content": "5.6.7.8" })));

        // Deleted, then wanted again: a fresh intent with no restore point.
        store
            .record(id, Some("r2"), ResourceStatus::Deleted, None, None)
            .await
            .expect("deleted");
        store
            .intend(
                d,
                "r2",
                dns("api.example.com"),
                "fabrik:p/api",
                &json!({ "content": "9.9.9.9" }),
            )
            .await
            .expect("intent");
        let row = &store.resources(d).await.expect("rows")[0];
        assert_eq!(row.status, ResourceStatus::Pending, "{backend}");
        assert_eq!(row.previous_desired, None, "{backend}");
        assert_eq!(row.changed_by_run.as_deref(), Some("r2"), "{backend}");

        // Outside a run (`fabrik destroy`): no run is named.
        store
            .record(id, None, ResourceStatus::Deleted, None, None)
            .await
            .expect("deleted outside a run");
        let row = &store.resources(d).await.expect("rows")[0];
        assert_eq!(row.changed_by_run, None, "{backend}");
        let kinds = journal_kinds(&store.export().await.expect("export"));
        assert_eq!(
            kinds.iter().filter(|k| *k == "intent").count(),
            3,
            "{backend}"
        );
    }
}

/// A new app's deployment is created by its first run, in the same transaction: there
/// is never a deployment with no run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_run_creates_its_deployment() {
    for (backend, store, _dir) in backends().await {
        assert!(store.deployments().await.expect("none").is_empty());
        let deployment = store
            .start_run(&RunStart {
                project: "p",
                app: "api",
                spec_path: "api.yaml",
                run_id: "r1",
                spec_hash: "h1",
                origin: &RunOrigin::Apply,
                snapshot: &json!({ "spec": { "name": "api" } }),
            })
            .await
            .expect("run starts");
        assert_eq!(deployment.app, "api", "{backend}");
        assert_eq!(deployment.spec_path, "api.yaml", "{backend}");
        let runs = store.runs(deployment.id).await.expect("runs");
        assert_eq!(runs.len(), 1, "{backend}");
        assert_eq!(runs[0].id, "r1", "{backend}");
        let again = store
            .start_run(&RunStart {
                project: "p",
                app: "api",
                spec_path: "moved/api.yaml",
                run_id: "r2",
                spec_hash: "h2",
                origin: &RunOrigin::Apply,
                snapshot: &json!({ "spec": { "name": "api" } }),
            })
            .await
            .expect("second run starts");
        assert_eq!(again.id, deployment.id, "{backend}: one deployment per app");
        assert_eq!(again.spec_path, "moved/api.yaml", "{backend}");
        // A run that cannot be written (its id is taken) takes its new deployment with it.
        let refused = store
            .start_run(&RunStart {
                project: "p",
                app: "web",
                spec_path: "web.yaml",
                run_id: "r1",
                spec_hash: "h1",
                origin: &RunOrigin::Apply,
                snapshot: &json!({ "spec": { "name": "web" } }),
            })
            .await;
        assert!(refused.is_err(), "{backend}: a run id is unique");
        let apps: Vec<String> = store
            .deployments()
            .await
            .expect("deployments")
            .into_iter()
            .map(|d| d.app)
            .collect();
        assert_eq!(apps, ["api"], "{backend}: one transaction");
    }
}

/// Which app of a project already tracks a resource id: another app's live row does,
/// a deleted one or the asking row itself does not, nor does another project's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_holder_of_an_id_is_found_within_the_project() {
    for (backend, store, _dir) in backends().await {
        let mut rows = Vec::new();
        for (project, app) in [("p", "api"), ("p", "web"), ("q", "api")] {
            let d = store
                .ensure_deployment(project, app, "app.yaml")
                .await
                .expect("deployment")
                .id;
            let run = format!("{project}-{app}");
            start(&store, d, &run, "h", &RunOrigin::Apply).await;
            let owner = format!("fabrik:{project}/{app}");
            let row = store
                .intend(d, &run, dns("x.example.com"), &owner, &json!({}))
                .await
                .expect("intent");
            rows.push((d, row, run));
        }
        let (_, api, api_run) = &rows[0];
        let (_, web, _) = &rows[1];
        let (_, other, _) = &rows[2];
        store
            .record(
                *api,
                Some(api_run),
                ResourceStatus::Created,
                Some("rec-1"),
                None,
            )
            .await
            .expect("recorded");
        let key = dns("x.example.com");
        let holder = store.holder("p", key, "rec-1", *web).await.expect("query");
        assert_eq!(
            holder.map(|h| (h.project, h.app)),
            Some(("p".to_owned(), "api".to_owned())),
            "{backend}"
        );
        assert_eq!(
            store.holder("p", key, "rec-1", *api).await.expect("query"),
            None,
            "{backend}: not its own row"
        );
        assert_eq!(
            store
                .holder("q", key, "rec-1", *other)
                .await
                .expect("query"),
            None,
            "{backend}: another project"
        );
        assert_eq!(
            store.holder("p", key, "rec-2", *web).await.expect("query"),
            None,
            "{backend}"
        );
        store
            .record(*api, Some(api_run), ResourceStatus::Deleted, None, None)
            .await
            .expect("deleted");
        assert_eq!(
            store.holder("p", key, "rec-1", *web).await.expect("query"),
            None,
            "{backend}: deleted"
        );
        // Wanted again: pending, with its old id kept until it is created again.
        store
            .intend(rows[0].0, api_run, key, "fabrik:p/api", &json!({}))
            .await
            .expect("intent");
        assert_eq!(
            store.holder("p", key, "rec-1", *web).await.expect("query"),
            None,
            "{backend}: pending"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unfinished_runs_are_closed_and_runs_come_newest_first() {
    for (backend, store, _dir) in backends().await {
        let d = store
            .ensure_deployment("p", "api", "api.yaml")
            .await
            .expect("deployment")
            .id;
        start(&store, d, "done", "h1", &RunOrigin::Apply).await;
        walk(&store, d, "done", &TO_COMPLETE).await;
        start(&store, d, "killed-early", "h2", &RunOrigin::Apply).await;
        start(
            &store,
            d,
            "killed-deploying",
            "h1",
            &RunOrigin::Rollback {
                restores: "done".to_owned(),
            },
        )
        .await;
        walk(
            &store,
            d,
            "killed-deploying",
            &[State::Validating, State::Provisioning, State::Deploying],
        )
        .await;
        let mut closed = store
            .close_unfinished_runs(d, "interrupted")
            .await
            .expect("closed");
        closed.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            closed,
            [
                ("killed-deploying".to_owned(), State::Deploying),
                ("killed-early".to_owned(), State::Pending),
            ],
            "{backend}"
        );
        let runs = store.runs(d).await.expect("runs");
        let ids: Vec<&str> = runs.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(
            ids,
            ["killed-deploying", "killed-early", "done"],
            "{backend}"
        );
        assert!(runs[..2].iter().all(|r| r.state == State::Failed));
        assert_eq!(runs[0].reason.as_deref(), Some("interrupted"), "{backend}");
        assert_eq!(
            runs[0].origin,
            RunOrigin::Rollback {
                restores: "done".to_owned()
            },
            "{backend}"
        );
        assert_eq!(runs[2].origin, RunOrigin::Apply, "{backend}");
        assert!(
            store
                .close_unfinished_runs(d, "again")
                .await
                .expect("none")
                .is_empty(),
            "{backend}"
        );
        store
            .append_event(Some(d), None, &Journal::NoChanges { spec_hash: "h1" })
            .await
            .expect("journal");
        let kinds = journal_kinds(&store.export().await.expect("export"));
        assert_eq!(kinds.last().map(String::as_str), Some("no_changes"));
    }
}

/// How a test makes the database refuse the journal entries of one kind: every
/// multi-statement write ends with one, so a refusal there is a failure between its
/// statements (a crash leaves the same: nothing of an uncommitted transaction).
enum Failpoint {
    Sqlite(std::path::PathBuf),
    Postgres { url: String, schema: String },
}

impl Failpoint {
    async fn refuse(&self, kind: &str) {
        match self {
            Self::Sqlite(path) => {
                let conn = rusqlite::Connection::open(path).expect("opens");
                conn.execute_batch(&format!(
                    "CREATE TRIGGER fail_{kind} BEFORE INSERT ON events WHEN NEW.kind = '{kind}'
                     BEGIN SELECT RAISE(ABORT, 'injected failure'); END;"
                ))
                .expect("trigger");
            }
            Self::Postgres { url, schema } => {
                let client = postgres::connect_client(&settings(url, schema))
                    .await
                    .expect("connects");
                client
                    .batch_execute(&format!(
                        "SET search_path TO \"{schema}\";
                         CREATE FUNCTION fail_{kind}() RETURNS trigger LANGUAGE plpgsql AS
                           $$ BEGIN RAISE EXCEPTION 'injected failure'; END $$;
                         CREATE TRIGGER fail_{kind} BEFORE INSERT ON events FOR EACH ROW
                           WHEN (NEW.kind = '{kind}') EXECUTE FUNCTION fail_{kind}();"
                    ))
                    .await
                    .expect("trigger");
            }
        }
    }
}

/// Every multi-statement write is one transaction on both backends: when it fails
/// between its statements, nothing of it is left, and both backends read the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_that_fails_between_its_statements_leaves_nothing_of_itself() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state.db");
    let mut cases = vec![(
        "sqlite",
        Store::open(&path).expect("sqlite"),
        Failpoint::Sqlite(path.clone()),
    )];
    let (url, schema) = (postgres_url(), fresh_schema());
    let store = Store::connect(&settings(&url, &schema))
        .await
        .expect("postgres");
    cases.push(("postgres", store, Failpoint::Postgres { url, schema }));
    for (backend, store, failpoint) in cases {
        let d = store
            .ensure_deployment("p", "api", "api.yaml")
            .await
            .expect("deployment")
            .id;
        start(&store, d, "r1", "h1", &RunOrigin::Apply).await;
        let id = store
            .intend(
                d,
                "r1",
                dns("a.example.com"),
                "fabrik:p/api",
                &json!({ "content": "1.2.3.4" }),
            )
            .await
            .expect("intent");

        // record: the row's update, then its journal entry.
        failpoint.refuse("resource").await;
        store
            .record(
                id,
                Some("r1"),
                ResourceStatus::Created,
                Some("zone/rec"),
                None,
            )
            .await
            .expect_err("refused");
        let rows = store.resources(d).await.expect("rows");
        assert_eq!(rows.len(), 1, "{backend}");
        assert_eq!(
            rows[0].status,
            ResourceStatus::Pending,
            "{backend}: the outcome was not kept"
        );
        assert_eq!(rows[0].external_id, None, "{backend}");

        // intend: the row, then its journal entry.
        failpoint.refuse("intent").await;
        store
            .intend(
                d,
                "r1",
                dns("b.example.com"),
                "fabrik:p/api",
                &json!({ "content": "1.2.3.4" }),
            )
            .await
            .expect_err("refused");
        assert_eq!(
            store.resources(d).await.expect("rows").len(),
            1,
            "{backend}: no half intent"
        );

        // transition: the run, the deployment, the restore points, the journal.
        failpoint.refuse("transition").await;
        store
            .transition(d, "r1", (State::Pending, State::Validating), None, None)
            .await
            .expect_err("refused");
        let runs = store.runs(d).await.expect("runs");
        assert_eq!(runs[0].state, State::Pending, "{backend}");
        let deployment = store
            .deployment("p", "api")
            .await
            .expect("reads")
            .expect("exists");
        assert_eq!(
            deployment.state,
            DeploymentState::Run(State::Pending),
            "{backend}"
        );

        // start_run: a new app's deployment, its run, the journal.
        failpoint.refuse("run_started").await;
        store
            .start_run(&RunStart {
                project: "p",
                app: "web",
                spec_path: "web.yaml",
                run_id: "r2",
                spec_hash: "h2",
                origin: &RunOrigin::Apply,
                snapshot: &json!({}),
            })
            .await
            .expect_err("refused");
        assert!(
            store.deployment("p", "web").await.expect("reads").is_none(),
            "{backend}"
        );

        // mark_destroyed: the deployment, then the journal.
        store.set_spec_hash(d, "h1").await.expect("hash");
        failpoint.refuse("destroyed").await;
        store
            .mark_destroyed(d, &fabrik_engine::store::DestroyRecord::default())
            .await
            .expect_err("refused");
        let deployment = store
            .deployment("p", "api")
            .await
            .expect("reads")
            .expect("exists");
        assert_eq!(
            deployment.state,
            DeploymentState::Run(State::Pending),
            "{backend}"
        );
        assert_eq!(deployment.spec_hash.as_deref(), Some("h1"), "{backend}");
    }
}

/// A URI whose query names a Unix socket (`?host=/path`) reaches the server over that
/// socket alone, as with libpq; before, the authority's `localhost` was tried too, with
/// TLS, over the socket, and the connection failed with a TLS handshake error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_uri_whose_query_names_a_socket_connects_over_it() {
    let url = postgres_url();
    let field = |name: &str| {
        url.split_whitespace()
            .find_map(|pair| pair.strip_prefix(&format!("{name}=")))
            .map(str::to_owned)
    };
    let (Some(dir), Some(port)) = (field("host").filter(|h| h.starts_with('/')), field("port"))
    else {
        panic!("NOT RUN: this test needs a server on a Unix socket given as `host=/dir port=N`")
    };
    let uri = format!("postgresql://postgres@localhost/postgres?host={dir}&port={port}");
    let store = Store::connect(&settings(&uri, &fresh_schema()))
        .await
        .expect("connects over the socket");
    assert!(store.deployments().await.expect("usable").is_empty());
}

/// Over the network the connection is TLS and the server is verified: trusted through
/// the CA file, refused without it. The throwaway cluster serves TLS on loopback with a
/// throwaway CA; a server of your own needs `FABRIK_TEST_POSTGRES_TLS_URL` and
/// `FABRIK_TEST_POSTGRES_CA` for this test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_network_the_server_is_verified() {
    let Some((url, ca)) = fabrik_sim::postgres::server().tls.clone() else {
        panic!(
            "NOT RUN: FABRIK_TEST_POSTGRES_URL is set without FABRIK_TEST_POSTGRES_TLS_URL and FABRIK_TEST_POSTGRES_CA"
        )
    };
    let mut trusted = settings(&url, &fresh_schema());
    trusted.ca_file = Some(ca);
    let store = Store::connect(&trusted)
        .await
        .expect("verified with the CA");
    assert!(store.deployments().await.expect("usable").is_empty());
    let Err(refused) = Store::connect(&settings(&url, &fresh_schema())).await else {
        panic!("a server whose certificate no trusted CA signed must be refused")
    };
    let message = refused.to_string();
    assert!(
        message.contains("cannot open the state database"),
        "{message}"
    );
}

/// PostgreSQL only: what SQLite's own tests check of the file.
#[path = "store_conformance/postgres_only.rs"]
mod postgres_only;

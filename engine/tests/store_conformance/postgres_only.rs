//! PostgreSQL only: what SQLite's own tests check of the file.

use super::*;

async fn raw(url: &str, schema: &str) -> tokio_postgres::Client {
    let client = postgres::connect_client(&settings(url, schema))
        .await
        .expect("connects");
    client
        .batch_execute(&format!("SET search_path TO \"{schema}\""))
        .await
        .expect("schema");
    client
}

/// A server that ends idle sessions does not end Fabrik's: the store and the lock
/// set `idle_session_timeout` and `idle_in_transaction_session_timeout` to 0 for
/// their own sessions (issue 28, point 2).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_ends_idle_sessions_does_not_end_fabrik_s() {
    let url = postgres_url();
    assert!(
        !url.contains("://"),
        "NOT RUN: this test adds `user=` to a key=value connection string"
    );
    let admin = raw(&url, &fresh_schema()).await;
    let role = format!("fabrik_idle_{}", &fresh_schema()[2..]);
    admin
        .batch_execute(&format!(
            "CREATE ROLE {role} LOGIN; GRANT CREATE ON DATABASE postgres TO {role};
             ALTER ROLE {role} SET idle_session_timeout = '1s'"
        ))
        .await
        .expect("role");
    let as_role = format!("{url} user={role}");
    let store = Store::connect(&settings(&as_role, &fresh_schema()))
        .await
        .expect("connects");
    // Idle for longer than the server allows, then used again.
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    assert!(
        store
            .deployments()
            .await
            .expect("the session is still there")
            .is_empty()
    );
}

/// A refusal by the server says what the server said ("permission denied ..."), not
/// tokio-postgres's bare "db error" (issue 28, point 7).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_refusal_is_shown_with_the_server_s_words() {
    let url = postgres_url();
    assert!(
        !url.contains("://"),
        "NOT RUN: this test adds `user=` to a key=value connection string"
    );
    let admin = raw(&url, &fresh_schema()).await;
    let role = format!("fabrik_nobody_{}", &fresh_schema()[2..]);
    admin
        .batch_execute(&format!("CREATE ROLE {role} LOGIN"))
        .await
        .expect("role");
    // The same server as this role, which may not create a schema in the database.
    let as_role = format!("{url} user={role}");
    let Err(refused) = Store::connect(&settings(&as_role, &fresh_schema())).await else {
        panic!("a role without CREATE on the database must be refused")
    };
    let message = refused.to_string();
    assert!(message.contains("permission denied"), "{message}");
    assert!(!message.contains("db error"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_journal_is_append_only_in_the_database_itself() {
    let url = postgres_url();
    let schema = fresh_schema();
    let store = Store::connect(&settings(&url, &schema))
        .await
        .expect("store");
    store
        .append_event(
            None,
            None,
            &Journal::Destroyed {
                record: &fabrik_engine::store::DestroyRecord::default(),
            },
        )
        .await
        .expect("append");
    let client = raw(&url, &schema).await;
    for statement in [
        "UPDATE events SET kind = 'changed'",
        "DELETE FROM events",
        "TRUNCATE events",
    ] {
        let refused = client.batch_execute(statement).await.expect_err("refused");
        let message = refused
            .as_db_error()
            .map(|e| e.message().to_owned())
            .unwrap_or_default();
        assert_eq!(message, "events are append-only", "{statement}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_schema_is_refused_and_left_unchanged() {
    let url = postgres_url();
    let schema = fresh_schema();
    drop(
        Store::connect(&settings(&url, &schema))
            .await
            .expect("store"),
    );
    let client = raw(&url, &schema).await;
    let newer = postgres::latest() + 1;
    client
        .execute("UPDATE schema_version SET version = $1", &[&newer])
        .await
        .expect("bump");
    let refused = Store::connect(&settings(&url, &schema)).await;
    let Err(error) = refused else {
        panic!("a newer schema must be refused")
    };
    assert!(matches!(error, StoreError::Newer { .. }), "{error}");
    let message = error.to_string();
    assert!(message.contains(&format!("schema `{schema}`")), "{message}");
    assert!(!message.contains(&url), "never the connection string");
    let row = client
        .query_one("SELECT version FROM schema_version", &[])
        .await
        .expect("version");
    assert_eq!(row.get::<_, i64>(0), newer, "left unchanged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_runners_migrating_one_new_schema_at_once_do_not_race() {
    let url = postgres_url();
    let schema = fresh_schema();
    let connects = (0..10).map(|_| {
        let settings = settings(&url, &schema);
        tokio::spawn(async move { Store::connect(&settings).await.map(drop) })
    });
    for result in futures::future::join_all(connects).await {
        result
            .expect("joined")
            .expect("every runner migrates or finds it done");
    }
    let client = raw(&url, &schema).await;
    let rows = client
        .query("SELECT version FROM schema_version", &[])
        .await
        .expect("version");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].get::<_, i64>(0), postgres::latest());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projects_in_two_schemas_of_one_database_never_meet() {
    let url = postgres_url();
    let a = Store::connect(&settings(&url, &fresh_schema()))
        .await
        .expect("a");
    let b = Store::connect(&settings(&url, &fresh_schema()))
        .await
        .expect("b");
    a.ensure_deployment("p", "api", "api.yaml")
        .await
        .expect("a's app");
    assert!(b.deployments().await.expect("b's").is_empty());
    assert!(a.location().contains("PostgreSQL schema"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_schema_name_or_server_is_a_clear_error_without_the_url() {
    let url = postgres_url();
    let Err(bad) = Store::connect(&settings(&url, "Robert'); DROP")).await else {
        panic!("refused")
    };
    assert!(
        bad.to_string().contains("not a usable schema name"),
        "{bad}"
    );
    let secret_url = "host=/nonexistent-fabrik-socket user=u password=pw-5ecret-9 dbname=x";
    let Err(down) = Store::connect(&settings(secret_url, "fabrik")).await else {
        panic!("no server there")
    };
    let message = down.to_string();
    assert!(
        message.contains("cannot open the state database"),
        "{message}"
    );
    assert!(!message.contains("pw-5ecret-9"), "{message}");
}

/// A schema the previous release made (its migrations, frozen in `MIGRATIONS[..4]`), with
/// the rows that release wrote (`fixtures/state/v2/state.db`, copied as they are): the
/// current release migrates it (issue 24: environments) and keeps working with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_of_the_previous_release_is_migrated_and_keeps_working() {
    let (url, schema) = (postgres_url(), fresh_schema());
    let client = raw(&url, &schema).await;
    client
        .batch_execute(&format!(
            "CREATE SCHEMA \"{schema}\"; SET search_path TO \"{schema}\";
             CREATE TABLE schema_version (version BIGINT NOT NULL);
             INSERT INTO schema_version (version) VALUES (4);"
        ))
        .await
        .expect("schema");
    for sql in &postgres::MIGRATIONS[..4] {
        client.batch_execute(sql).await.expect("the old migrations");
    }
    let fixture =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/state/v2/state.db");
    let old =
        rusqlite::Connection::open_with_flags(&fixture, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("the fixture opens");
    let version: i64 = old
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .expect("version");
    assert_eq!(version, 2, "the fixture is the previous release's schema");
    for table in ["deployments", "runs", "resources", "events"] {
        let mut statement = old
            .prepare(&format!("SELECT * FROM {table} ORDER BY rowid"))
            .expect("select");
        let columns: Vec<String> = statement
            .column_names()
            .iter()
            .map(|c| (*c).to_owned())
            .collect();
        let rows: Vec<Vec<Option<String>>> = statement
            .query_map([], |row| {
                (0..columns.len())
                    .map(|i| {
                        let value: rusqlite::types::Value = row.get(i)?;
                        Ok(match value {
                            rusqlite::types::Value::Null => None,
                            rusqlite::types::Value::Integer(n) => Some(n.to_string()),
                            rusqlite::types::Value::Text(t) => Some(t),
                            other => Some(format!("{other:?}")),
                        })
                    })
                    .collect()
            })
            .expect("rows")
            .collect::<Result<_, _>>()
            .expect("rows");
        assert!(!rows.is_empty(), "the fixture has {table}");
        // Every value as text, cast by the server to its column's type.
        let placeholders: Vec<String> = (1..=columns.len()).map(|i| format!("${i}")).collect();
        let insert = format!(
            "INSERT INTO {table} ({}) SELECT {} FROM (SELECT {}) AS v",
            columns.join(", "),
            columns
                .iter()
                .map(|c| format!("CAST(v.{c} AS {})", pg_type(table, c)))
                .collect::<Vec<_>>()
                .join(", "),
            columns
                .iter()
                .zip(&placeholders)
                .map(|(c, p)| format!("{p}::text AS {c}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        for row in rows {
            let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = row
                .iter()
                .map(|v| v as &(dyn tokio_postgres::types::ToSql + Sync))
                .collect();
            client.execute(&insert, &params).await.expect("row");
        }
    }
    client
        .batch_execute("SELECT setval(pg_get_serial_sequence('deployments', 'id'), (SELECT MAX(id) FROM deployments));
                        SELECT setval(pg_get_serial_sequence('resources', 'id'), (SELECT MAX(id) FROM resources));
                        SELECT setval(pg_get_serial_sequence('events', 'seq'), (SELECT MAX(seq) FROM events));")
        .await
        .expect("sequences");

    // Opened by this release as `plan` opens it (creating nothing): migrated, and what
    // the old release wrote reads the same.
    let store = Store::connect_existing(&settings(&url, &schema))
        .await
        .expect("migrates")
        .expect("the state is there");
    let version: i64 = client
        .query_one("SELECT version FROM schema_version", &[])
        .await
        .expect("version")
        .get(0);
    assert_eq!(version, postgres::latest());
    let deployment = store
        .deployment("acme", "test-api")
        .await
        .expect("reads")
        .expect("the old app is the deployment without an environment");
    assert_eq!(deployment.environment, None);
    assert!(deployment.is_complete());
    let runs = store.runs(deployment.id).await.expect("runs");
    assert_eq!(runs.len(), 3);
    assert!(
        matches!(runs[0].origin, RunOrigin::Rollback { .. }),
        "{runs:?}"
    );
    assert_eq!(
        store
            .resources(deployment.id)
            .await
            .expect("resources")
            .iter()
            .filter(|r| r.is_live())
            .count(),
        2
    );
    // An environment of the same app is a deployment of its own; a promotion is a run
    // the migrated schema accepts.
    let staging = store
        .ensure_deployment("acme", "test-api@staging", "app.yaml")
        .await
        .expect("a second deployment of the app");
    assert_ne!(staging.id, deployment.id);
    assert_eq!(staging.environment.as_deref(), Some("staging"));
    start(
        &store,
        staging.id,
        "0123456789abcdef",
        "sha256:new",
        &RunOrigin::Promotion {
            from: runs[0].id.clone(),
        },
    )
    .await;
    let promoted = store.runs(staging.id).await.expect("runs");
    assert_eq!(
        promoted[0].origin,
        RunOrigin::Promotion {
            from: runs[0].id.clone()
        }
    );
    assert_eq!(
        store
            .deployment("acme", "test-api")
            .await
            .expect("reads")
            .map(|d| d.id),
        Some(deployment.id),
        "the app without an environment is still itself"
    );
}

/// The PostgreSQL type of a column of the previous release's schema.
fn pg_type(table: &str, column: &str) -> &'static str {
    match (table, column) {
        (_, "id") if table != "runs" => "BIGINT",
        (_, "deployment_id" | "seq") => "BIGINT",
        _ => "TEXT",
    }
}

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

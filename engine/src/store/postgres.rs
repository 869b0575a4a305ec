//! The PostgreSQL backend, for teams: the same tables and meaning as SQLite in a schema of
//! its own (default `fabrik`, so that several projects or teams can share a database),
//! numbered migrations applied in one transaction under a transaction-level advisory
//! lock (two runners migrating at once cannot race), a newer schema refused, and an event
//! journal kept append-only by triggers that refuse UPDATE, DELETE and TRUNCATE.
//!
//! The connection string is a secret: it never appears in an error or message, which
//! name the schema instead. TLS (rustls, the server verified against the web's roots or
//! a CA file) is used whenever the server is reached over the network.

use std::path::PathBuf;

use secrecy::SecretString;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Row};

use super::StoreError;

mod connect;
mod session;

pub use connect::{connect_client, describe};
pub use session::PgSession;

/// Numbered migrations of the PostgreSQL schema; never edited once released, only added.
/// Version 1 is the SQLite schema at its version 2, in PostgreSQL's types.
pub const MIGRATIONS: &[&str] = &[
    r"
CREATE TABLE deployments (
    id          BIGSERIAL PRIMARY KEY,
    project     TEXT NOT NULL,
    app         TEXT NOT NULL,
    spec_path   TEXT NOT NULL,
    spec_hash   TEXT,
    state       TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    UNIQUE (project, app)
);

CREATE TABLE runs (
    id             TEXT PRIMARY KEY,
    deployment_id  BIGINT NOT NULL REFERENCES deployments (id),
    state          TEXT NOT NULL,
    spec_hash      TEXT NOT NULL,
    started_at     TEXT NOT NULL,
    finished_at    TEXT,
    reason         TEXT,
    origin         TEXT NOT NULL DEFAULT 'apply' CHECK (origin IN ('apply', 'rollback')),
    restores_run   TEXT REFERENCES runs (id),
    snapshot       TEXT,
    -- Insertion order, for runs started within the same millisecond.
    seq            BIGSERIAL NOT NULL
);

CREATE TABLE resources (
    id                BIGSERIAL PRIMARY KEY,
    deployment_id     BIGINT NOT NULL REFERENCES deployments (id),
    provider          TEXT NOT NULL,
    kind              TEXT NOT NULL,
    name              TEXT NOT NULL,
    external_id       TEXT,
    owner             TEXT NOT NULL,
    status            TEXT NOT NULL CHECK (status IN ('pending', 'created', 'updated', 'adopted', 'deleted')),
    desired           TEXT,
    previous_desired  TEXT,
    outputs           TEXT,
    created_by_run    TEXT REFERENCES runs (id),
    changed_by_run    TEXT REFERENCES runs (id),
    updated_at        TEXT NOT NULL,
    UNIQUE (deployment_id, provider, kind, name)
);

CREATE TABLE events (
    seq            BIGSERIAL PRIMARY KEY,
    deployment_id  BIGINT REFERENCES deployments (id),
    run_id         TEXT REFERENCES runs (id),
    at             TEXT NOT NULL,
    kind           TEXT NOT NULL,
    data           TEXT NOT NULL
);

-- The journal is append-only, enforced by the database and not only by the code.
CREATE FUNCTION events_are_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'events are append-only';
END
$$;
CREATE TRIGGER events_no_update_or_delete BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_are_append_only();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_are_append_only();
",
    r"
-- Who holds each app's lock (the lock itself is a session-level advisory lock): named
-- when another apply is refused or waits. A row whose session ended is stale and is
-- taken over by the next holder.
CREATE TABLE lock_holders (
    project      TEXT NOT NULL,
    app          TEXT NOT NULL,
    host         TEXT NOT NULL,
    pid          BIGINT NOT NULL,
    os_user      TEXT,
    run_id       TEXT NOT NULL,
    since        BIGINT NOT NULL,
    backend_pid  INTEGER NOT NULL,
    PRIMARY KEY (project, app)
);
",
    r"
-- Settings every machine shares: the key of secret fingerprints, so that every machine
-- computes the same spec hash for the same inputs.
CREATE TABLE settings (
    name   TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);
-- Which secrets were generated, and where: another machine must not silently generate a
-- different value for them.
CREATE TABLE generated_secrets (
    project       TEXT NOT NULL,
    app           TEXT NOT NULL,
    name          TEXT NOT NULL,
    host          TEXT NOT NULL,
    generated_at  BIGINT NOT NULL,
    PRIMARY KEY (project, app, name)
);
",
    r"
-- The key of secret fingerprints leaves the database: each machine has it in its
-- `.env` (FABRIK_FINGERPRINT_KEY) and `settings` keeps its id per project. The version
-- moves so that a release that would put a key back here refuses this schema.
COMMENT ON TABLE settings IS 'Shared settings: never the key of secret fingerprints, only its id per project';
",
    r"
-- Environments: an app in an environment of its spec is a deployment of its own, keyed
-- by project, app and environment ('' for an app without environments: every deployment
-- before this version). A run may be a promotion, deploying what a run of another
-- environment verified (`restores_run` names that run).
ALTER TABLE deployments ADD COLUMN environment TEXT NOT NULL DEFAULT '';
ALTER TABLE deployments DROP CONSTRAINT deployments_project_app_key;
ALTER TABLE deployments ADD CONSTRAINT deployments_project_app_environment_key UNIQUE (project, app, environment);
ALTER TABLE runs DROP CONSTRAINT runs_origin_check;
ALTER TABLE runs ADD CONSTRAINT runs_origin_check CHECK (origin IN ('apply', 'rollback', 'promotion'));
",
];

/// The schema version this build writes.
pub fn latest() -> i64 {
    i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX)
}

/// How to reach the team's database.
#[derive(Clone)]
pub struct PgSettings {
    /// A libpq-style connection string (`host=… user=… dbname=…` or
    /// `postgresql://…`); it may hold a password.
    pub url: SecretString,
    /// The schema holding Fabrik's tables.
    pub schema: String,
    /// A PEM file of CAs to trust besides the web's roots (a private CA).
    pub ca_file: Option<PathBuf>,
}

impl std::fmt::Debug for PgSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgSettings")
            .field("url", &"[redacted]")
            .field("schema", &self.schema)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

/// The default schema.
pub const DEFAULT_SCHEMA: &str = "fabrik";

/// Whether `schema` is a plain lower-case SQL identifier (it is interpolated, quoted, into
/// statements, so nothing else is accepted).
pub fn valid_schema(schema: &str) -> bool {
    let mut chars = schema.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && schema.len() <= 63
}

/// An open PostgreSQL store: one connection, one statement or transaction at a time.
pub struct PgStore {
    client: Mutex<Client>,
    schema: String,
    /// Whether an operation left a transaction open on the connection (see
    /// [`PgSession::new`]).
    transaction_open: std::sync::atomic::AtomicBool,
}

/// A 64-bit advisory-lock key for `purpose` and `name`, the same on every machine.
pub fn lock_key(purpose: &str, name: &str) -> i64 {
    let digest = Sha256::digest(format!("fabrik:{purpose}:{name}").as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(bytes)
}

impl PgStore {
    /// Connects, creates the schema if needed and migrates it.
    pub async fn connect(settings: &PgSettings) -> Result<Self, StoreError> {
        if !valid_schema(&settings.schema) {
            return Err(StoreError::Open {
                location: "PostgreSQL".to_owned(),
                message: format!(
                    "`{}` is not a usable schema name (lower-case letters, digits and `_`, at most 63)",
                    settings.schema
                ),
            });
        }
        let mut client = connect_client(settings).await?;
        // Most opens find the schema current: one read instead of the locked migration.
        if current_version(&client, &settings.schema).await? != Some(latest()) {
            migrate(&mut client, &settings.schema).await?;
        }
        Ok(Self {
            client: Mutex::new(client),
            schema: settings.schema.clone(),
            transaction_open: Default::default(),
        })
    }

    /// Connects without creating anything: `None` when the schema holds no state yet; a
    /// newer schema is refused, an older one migrated (this release's queries need its
    /// columns; a SQLite state is migrated by its readers too, where it can be written).
    pub async fn connect_existing(settings: &PgSettings) -> Result<Option<Self>, StoreError> {
        let schema = &settings.schema;
        if !valid_schema(schema) {
            return Ok(None);
        }
        let mut client = connect_client(settings).await?;
        let table = format!("\"{schema}\".schema_version");
        let exists: Option<String> = client
            .query_one("SELECT to_regclass($1)::text", &[&table])
            .await?
            .try_get(0)?;
        if exists.is_none() {
            return Ok(None);
        }
        let found: i64 = client
            .query_opt(&format!("SELECT version FROM {table}"), &[])
            .await?
            .map(|row| row.try_get(0))
            .transpose()?
            .unwrap_or(0);
        if found > latest() {
            return Err(StoreError::Newer {
                location: format!("PostgreSQL schema `{schema}`"),
                found,
                known: latest(),
            });
        }
        if found < latest() {
            migrate(&mut client, schema).await?;
        }
        Ok(Some(Self {
            client: Mutex::new(client),
            schema: schema.clone(),
            transaction_open: Default::default(),
        }))
    }

    pub fn location(&self) -> String {
        format!("PostgreSQL schema `{}`", self.schema)
    }

    /// The connection, locked for one operation of the store.
    pub(super) async fn client(&self) -> tokio::sync::MutexGuard<'_, Client> {
        self.client.lock().await
    }

    /// The flag a [`PgSession`] on this store's connection keeps.
    pub(super) fn transaction_open(&self) -> &std::sync::atomic::AtomicBool {
        &self.transaction_open
    }

    async fn query(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        Ok(self.client.lock().await.query(sql, params).await?)
    }

    /// The fingerprint key an earlier Fabrik kept in the database (`settings`), where a
    /// dump of the state was enough to test guesses of a secret offline. Read only to
    /// move it out ([`PostgresStore::forget_legacy_fingerprint_key`]).
    pub async fn legacy_fingerprint_key(&self) -> Result<Option<Vec<u8>>, StoreError> {
        let rows = self
            .query(
                "SELECT value FROM settings WHERE name = 'fingerprint_key'",
                &[],
            )
            .await?;
        Ok(rows
            .first()
            .map(|row| row.try_get::<_, String>(0))
            .transpose()?
            .and_then(|text| hex::decode(text).ok()))
    }

    /// Removes the key an earlier Fabrik kept in the database, once every project with
    /// deployments in the schema has moved it out (recorded its key's id): one schema
    /// may hold several projects, which all used that one key.
    pub async fn forget_legacy_fingerprint_key(&self) -> Result<(), StoreError> {
        self.query(
            "DELETE FROM settings WHERE name = 'fingerprint_key' AND NOT EXISTS (
                 SELECT 1 FROM deployments d WHERE NOT EXISTS (
                     SELECT 1 FROM settings s WHERE s.name = 'fingerprint_key_id/' || d.project))",
            &[],
        )
        .await?;
        Ok(())
    }

    /// Gives back `project`'s claim of key `id` (a key that could not be kept).
    pub async fn release_fingerprint_key_id(
        &self,
        project: &str,
        id: &str,
    ) -> Result<(), StoreError> {
        self.query(
            "DELETE FROM settings WHERE name = 'fingerprint_key_id/' || $1 AND value = $2",
            &[&project, &id],
        )
        .await?;
        Ok(())
    }

    /// The id of the key `project`'s fingerprints are made with (never the key).
    pub async fn fingerprint_key_id(&self, project: &str) -> Result<Option<String>, StoreError> {
        let rows = self
            .query(
                "SELECT value FROM settings WHERE name = 'fingerprint_key_id/' || $1",
                &[&project],
            )
            .await?;
        Ok(rows
            .first()
            .map(|row| row.try_get::<_, String>(0))
            .transpose()?)
    }

    /// Records `id` as `project`'s key id unless one is recorded; returns the one
    /// recorded (another machine's, if it was first).
    pub async fn claim_fingerprint_key_id(
        &self,
        project: &str,
        id: &str,
    ) -> Result<String, StoreError> {
        self.query(
            "INSERT INTO settings (name, value) VALUES ('fingerprint_key_id/' || $1, $2) ON CONFLICT (name) DO NOTHING",
            &[&project, &id],
        )
        .await?;
        Ok(self
            .fingerprint_key_id(project)
            .await?
            .unwrap_or_else(|| id.to_owned()))
    }

    /// The secrets of `app` some machine generated, with the host that did.
    pub async fn generated_secrets(
        &self,
        project: &str,
        app: &str,
    ) -> Result<Vec<(String, String)>, StoreError> {
        self.query(
            "SELECT name, host FROM generated_secrets WHERE project = $1 AND app = $2 ORDER BY name",
            &[&project, &app],
        )
        .await?
        .iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
        .collect()
    }

    /// Records that this machine generated `name` for `app`.
    pub async fn record_generated(
        &self,
        project: &str,
        app: &str,
        name: &str,
    ) -> Result<(), StoreError> {
        let at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_secs()).unwrap_or_default())
            .unwrap_or_default();
        self.query(
            "INSERT INTO generated_secrets (project, app, name, host, generated_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (project, app, name) DO UPDATE SET host = excluded.host, generated_at = excluded.generated_at",
            &[&project, &app, &name, &crate::machine::host_name(), &at],
        )
        .await?;
        Ok(())
    }

    /// The whole state as JSON (for `fabrik state export`), in the shape of SQLite's.
    pub async fn export(&self) -> Result<Value, StoreError> {
        let mut out = serde_json::Map::new();
        out.insert("schema_version".to_owned(), serde_json::json!(latest()));
        for (table, order) in [
            ("deployments", "id"),
            ("runs", "seq"),
            ("resources", "id"),
            ("events", "seq"),
        ] {
            // Every column as text, in table order: the same shape as SQLite's export.
            let rows = self
                .query(
                    &format!("SELECT row_to_json(t)::text FROM {table} t ORDER BY {order}"),
                    &[],
                )
                .await?;
            let mut values = Vec::new();
            for row in rows {
                let text: String = row.try_get(0)?;
                let mut value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                // `runs.seq` only orders runs of the same millisecond.
                if table == "runs"
                    && let Some(object) = value.as_object_mut()
                {
                    object.remove("seq");
                }
                values.push(value);
            }
            out.insert(table.to_owned(), Value::Array(values));
        }
        Ok(Value::Object(out))
    }
}

/// The schema's version, or `None` when it has no Fabrik tables yet.
async fn current_version(client: &Client, schema: &str) -> Result<Option<i64>, StoreError> {
    match client
        .query_opt(
            &format!("SELECT version FROM \"{schema}\".schema_version"),
            &[],
        )
        .await
    {
        Ok(row) => Ok(row.map(|row| row.try_get(0)).transpose()?),
        // No schema or no table yet (SQLSTATE 3F000, 42P01): nothing migrated.
        Err(error)
            if error.code() == Some(&tokio_postgres::error::SqlState::INVALID_SCHEMA_NAME)
                || error.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE) =>
        {
            Ok(None)
        }
        Err(error) => Err(error.into()),
    }
}

/// Creates the schema if needed and applies the migrations it lacks, all in one
/// transaction under an advisory lock on the schema: a second runner waits, then finds
/// nothing left to do. A schema newer than this build is refused, unchanged.
async fn migrate(client: &mut Client, schema: &str) -> Result<(), StoreError> {
    let tx = client.transaction().await?;
    tx.execute(
        "SELECT pg_advisory_xact_lock($1)",
        &[&lock_key("migrate", schema)],
    )
    .await?;
    tx.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS \"{schema}\";
         SET LOCAL search_path TO \"{schema}\";
         CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL);"
    ))
    .await?;
    let found: Option<i64> = tx
        .query_opt("SELECT version FROM schema_version", &[])
        .await?
        .map(|row| row.try_get(0))
        .transpose()?;
    let found = found.unwrap_or(0);
    let known = latest();
    if found > known {
        return Err(StoreError::Newer {
            location: format!("PostgreSQL schema `{schema}`"),
            found,
            known,
        });
    }
    for (index, sql) in MIGRATIONS.iter().enumerate() {
        let version = i64::try_from(index).unwrap_or(i64::MAX) + 1;
        if version > found {
            tx.batch_execute(sql).await?;
        }
    }
    if found < known {
        tx.execute("DELETE FROM schema_version", &[]).await?;
        tx.execute(
            "INSERT INTO schema_version (version) VALUES ($1)",
            &[&known],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_are_plain_identifiers_and_lock_keys_differ_by_name() {
        assert!(valid_schema("fabrik"));
        assert!(valid_schema("team_a2"));
        for bad in [
            "",
            "Fabrik",
            "2fabrik",
            "fab-rik",
            "a\"; DROP",
            &"a".repeat(64),
        ] {
            assert!(!valid_schema(bad), "{bad}");
        }
        assert_eq!(lock_key("app", "p/api"), lock_key("app", "p/api"));
        assert_ne!(lock_key("app", "p/api"), lock_key("app", "q/api"));
        assert_ne!(lock_key("migrate", "fabrik"), lock_key("app", "fabrik"));
    }

    #[test]
    fn settings_never_show_the_connection_string() {
        let settings = PgSettings {
            url: SecretString::from("postgresql://u:hunter2-pw@db/x".to_owned()),
            schema: DEFAULT_SCHEMA.to_owned(),
            ca_file: None,
        };
        assert!(!format!("{settings:?}").contains("hunter2"));
    }
}

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
use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Row};

use super::journal::{DestroyEntry, DestroyRecord, Journal};
use super::{
    Deployment, Holder, ResourceKey, ResourceRow, RunRow, RunStart, StoreError, now, parse_json,
};
use crate::domain::{DeploymentState, ResourceStatus, RunOrigin, State};

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
}

/// A 64-bit advisory-lock key for `purpose` and `name`, the same on every machine.
pub fn lock_key(purpose: &str, name: &str) -> i64 {
    let digest = Sha256::digest(format!("fabrik:{purpose}:{name}").as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(bytes)
}

/// A PostgreSQL error as a person needs it: the server's own message, with its detail
/// and hint (tokio-postgres shows a server error as "db error" alone), or the client's
/// error and its causes.
pub fn describe(error: &tokio_postgres::Error) -> String {
    if let Some(db) = error.as_db_error() {
        let mut text = format!("{} ({})", db.message(), db.code().code());
        if let Some(detail) = db.detail() {
            text.push_str(&format!("; {detail}"));
        }
        if let Some(hint) = db.hint() {
            text.push_str(&format!("\n  hint: {hint}"));
        }
        return text;
    }
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(&format!(": {cause_text}"));
        }
        source = cause.source();
    }
    text
}

/// The TLS mode a connection uses: as the connection string says, but `require` when it
/// says nothing. libpq's default, `prefer`, falls back to plain text when the server (or
/// someone in the middle) declines TLS, and the state's connection carries a password.
fn effective_ssl_mode(
    url: &str,
    parsed: tokio_postgres::config::SslMode,
) -> tokio_postgres::config::SslMode {
    if url.to_ascii_lowercase().contains("sslmode") {
        parsed
    } else {
        tokio_postgres::config::SslMode::Require
    }
}

/// A connection string read as libpq reads it (the reference: PostgreSQL's
/// "Connection Strings"): the `key=value` form, or a URI whose query parameters override
/// what its authority says. tokio-postgres adds a URI's `host` and `port` parameters to
/// the authority's instead, so that `postgresql://u@localhost/db?host=/run/postgresql`
/// would try `localhost` over the network first; here it is the Unix socket alone.
fn parse_connection_string(text: &str) -> Result<tokio_postgres::Config, String> {
    let cannot = || "the connection string cannot be parsed (FABRIK_STATE_URL)".to_owned();
    let Some((scheme, rest)) = text
        .split_once("://")
        .filter(|(scheme, _)| matches!(*scheme, "postgres" | "postgresql"))
    else {
        return text.parse().map_err(|_| cannot());
    };
    let (before_query, query) = rest.split_once('?').unwrap_or((rest, ""));
    let names: Vec<&str> = query
        .split('&')
        .filter_map(|pair| pair.split_once('=').map(|(k, _)| k))
        .collect();
    let overrides_host = names.contains(&"host") || names.contains(&"hostaddr");
    let overrides_port = names.contains(&"port");
    if !overrides_host && !overrides_port {
        return text.parse().map_err(|_| cannot());
    }
    let (authority, path) = match before_query.find('/') {
        Some(at) => before_query.split_at(at),
        None => (before_query, ""),
    };
    let (userinfo, hosts) = match authority.rsplit_once('@') {
        Some((userinfo, hosts)) => (Some(userinfo), hosts),
        None => (None, authority),
    };
    // Each host of the authority, with its port (an IPv6 address is in brackets).
    let split_port = |entry: &str| -> (String, Option<String>) {
        let (host, port) = match entry.rfind(']') {
            Some(end) => {
                let (host, tail) = entry.split_at(end + 1);
                (host, tail.strip_prefix(':'))
            }
            None => match entry.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (entry, None),
            },
        };
        (
            host.to_owned(),
            port.filter(|p| !p.is_empty()).map(str::to_owned),
        )
    };
    let entries: Vec<(String, Option<String>)> = hosts
        .split(',')
        .filter(|e| !e.is_empty())
        .map(split_port)
        .collect();
    // Everything goes in the query, where tokio-postgres takes hosts and ports as given:
    // the query's own, else the authority's.
    let mut extra = Vec::new();
    if !overrides_host {
        let hosts: Vec<&str> = entries
            .iter()
            .map(|(host, _)| host.trim_start_matches('[').trim_end_matches(']'))
            .collect();
        if !hosts.is_empty() {
            extra.push(format!("host={}", hosts.join(",")));
        }
    }
    if !overrides_port {
        let ports: Vec<String> = entries.iter().filter_map(|(_, p)| p.clone()).collect();
        if !ports.is_empty() {
            extra.push(format!("port={}", ports.join(",")));
        }
    }
    let authority = userinfo.map(|u| format!("{u}@")).unwrap_or_default();
    let mut rebuilt = format!("{scheme}://{authority}{path}?{query}");
    for pair in extra {
        rebuilt.push('&');
        rebuilt.push_str(&pair);
    }
    rebuilt.parse().map_err(|_| cannot())
}

/// How a connection reaches the server: a Unix socket never leaves the machine (TLS is
/// not offered there, as libpq's `sslmode` applies only to TCP), the network is TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    Local,
    Network,
}

impl Transport {
    fn is_local(self) -> bool {
        self == Self::Local
    }
}

/// The transport of every host of `config`; a list mixing Unix sockets and network
/// hosts is refused (one client cannot use TLS for some hosts and not for others).
fn transport(config: &tokio_postgres::Config) -> Result<Transport, String> {
    let unix =
        |host: &tokio_postgres::config::Host| matches!(host, tokio_postgres::config::Host::Unix(_));
    let hosts = config.get_hosts();
    if hosts.iter().all(unix) {
        Ok(Transport::Local)
    } else if hosts.iter().any(unix) {
        Err("the connection string names both Unix sockets and network hosts; name one kind (FABRIK_STATE_URL)".to_owned())
    } else {
        Ok(Transport::Network)
    }
}

/// Opens a connection: over TLS (rustls) when the server is reached over the network,
/// plain on a Unix socket. The connection task runs on the current runtime.
pub async fn connect_client(settings: &PgSettings) -> Result<Client, StoreError> {
    let location = format!("PostgreSQL schema `{}`", settings.schema);
    let open_error = |message: String| StoreError::Open {
        location: location.clone(),
        message,
    };
    let mut config = parse_connection_string(settings.url.expose_secret()).map_err(open_error)?;
    // Every statement finds Fabrik's tables in the project's schema, without a round trip
    // to set it (the schema name was checked to be a plain identifier). And the server's
    // idle timeouts do not apply to Fabrik's sessions: a lock is held by its session for
    // as long as a run lasts, idle while a provider works, and a server that ends idle
    // sessions would end the lock in the middle of the run.
    let mut options =
        "-c idle_session_timeout=0 -c idle_in_transaction_session_timeout=0".to_owned();
    if valid_schema(&settings.schema) {
        options.push_str(&format!(" -c search_path={}", settings.schema));
    }
    config.options(options);
    // The error of a failed connection names the server and the cause, never the
    // password: tokio-postgres does not quote the connection string.
    let local = transport(&config).map_err(open_error)?.is_local();
    if local || config.get_ssl_mode() == tokio_postgres::config::SslMode::Disable {
        // A Unix socket never leaves the machine; TLS there has no server name to check.
        let (client, connection) = config
            .connect(tokio_postgres::NoTls)
            .await
            .map_err(|e| open_error(describe(&e)))?;
        tokio::spawn(drive(connection));
        return Ok(client);
    }
    config.ssl_mode(effective_ssl_mode(
        settings.url.expose_secret(),
        config.get_ssl_mode(),
    ));
    let tls = tls_connector(settings.ca_file.as_deref()).map_err(open_error)?;
    let (client, connection) = config
        .connect(tls)
        .await
        .map_err(|e| open_error(describe(&e)))?;
    tokio::spawn(drive(connection));
    Ok(client)
}

/// Runs a connection until it ends; its end is logged (the next statement fails with
/// the cause).
async fn drive<S, T>(connection: tokio_postgres::Connection<S, T>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    if let Err(error) = connection.await {
        tracing::warn!("the state database connection ended: {}", describe(&error));
    }
}

fn tls_connector(
    ca_file: Option<&std::path::Path>,
) -> Result<tokio_postgres_rustls::MakeRustlsConnect, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca_file {
        let pem = std::fs::read(path)
            .map_err(|e| format!("cannot read the CA file `{}`: {e}", path.display()))?;
        for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
            let cert = cert.map_err(|e| format!("the CA file `{}`: {e}", path.display()))?;
            roots
                .add(cert)
                .map_err(|e| format!("the CA file `{}`: {e}", path.display()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

fn deployment_of(row: &Row) -> Result<Deployment, StoreError> {
    Ok(Deployment {
        id: row.try_get("id")?,
        project: row.try_get("project")?,
        app: row.try_get("app")?,
        spec_path: row.try_get("spec_path")?,
        spec_hash: row.try_get("spec_hash")?,
        state: row
            .try_get::<_, String>("state")?
            .parse::<DeploymentState>()?,
    })
}

fn run_of(row: &Row) -> Result<RunRow, StoreError> {
    Ok(RunRow {
        id: row.try_get("id")?,
        state: row.try_get::<_, String>("state")?.parse::<State>()?,
        spec_hash: row.try_get("spec_hash")?,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
        reason: row.try_get("reason")?,
        origin: RunOrigin::from_stored(
            &row.try_get::<_, String>("origin")?,
            row.try_get("restores_run")?,
        )?,
        snapshot: parse_json(row.try_get("snapshot")?),
    })
}

fn resource_of(row: &Row) -> Result<ResourceRow, StoreError> {
    Ok(ResourceRow {
        id: row.try_get("id")?,
        provider: row.try_get::<_, String>("provider")?.parse()?,
        kind: row.try_get("kind")?,
        name: row.try_get("name")?,
        external_id: row.try_get("external_id")?,
        owner: row.try_get("owner")?,
        status: row.try_get::<_, String>("status")?.parse()?,
        desired: parse_json(row.try_get("desired")?),
        previous_desired: parse_json(row.try_get("previous_desired")?),
        outputs: parse_json(row.try_get("outputs")?),
        created_by_run: row.try_get("created_by_run")?,
        changed_by_run: row.try_get("changed_by_run")?,
    })
}

const DEPLOYMENT_COLUMNS: &str = "id, project, app, spec_path, spec_hash, state";

/// Appends `event` to the journal through `client` (a connection or a transaction).
async fn append(
    client: &impl tokio_postgres::GenericClient,
    deployment: Option<i64>,
    run_id: Option<&str>,
    event: &Journal<'_>,
) -> Result<(), StoreError> {
    client
        .execute(
            "INSERT INTO events (deployment_id, run_id, at, kind, data) VALUES ($1, $2, $3, $4, $5)",
            &[&deployment, &run_id, &now(), &event.kind(), &event.data().to_string()],
        )
        .await?;
    Ok(())
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
        })
    }

    /// Connects without creating or migrating anything: `None` when the schema holds no
    /// state yet; a newer schema is refused.
    pub async fn connect_existing(settings: &PgSettings) -> Result<Option<Self>, StoreError> {
        let schema = &settings.schema;
        if !valid_schema(schema) {
            return Ok(None);
        }
        let client = connect_client(settings).await?;
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
        Ok(Some(Self {
            client: Mutex::new(client),
            schema: schema.clone(),
        }))
    }

    pub fn location(&self) -> String {
        format!("PostgreSQL schema `{}`", self.schema)
    }

    async fn query(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        Ok(self.client.lock().await.query(sql, params).await?)
    }

    pub async fn deployment(
        &self,
        project: &str,
        app: &str,
    ) -> Result<Option<Deployment>, StoreError> {
        let rows = self
            .query(
                &format!(
                    "SELECT {DEPLOYMENT_COLUMNS} FROM deployments WHERE project = $1 AND app = $2"
                ),
                &[&project, &app],
            )
            .await?;
        rows.first().map(deployment_of).transpose()
    }

    pub async fn deployments(&self) -> Result<Vec<Deployment>, StoreError> {
        self.query(
            &format!("SELECT {DEPLOYMENT_COLUMNS} FROM deployments ORDER BY project, app"),
            &[],
        )
        .await?
        .iter()
        .map(deployment_of)
        .collect()
    }

    pub async fn ensure_deployment(
        &self,
        project: &str,
        app: &str,
        spec_path: &str,
    ) -> Result<Deployment, StoreError> {
        let client = self.client.lock().await;
        self.upsert_deployment(&*client, project, app, spec_path)
            .await
    }

    async fn upsert_deployment(
        &self,
        client: &impl tokio_postgres::GenericClient,
        project: &str,
        app: &str,
        spec_path: &str,
    ) -> Result<Deployment, StoreError> {
        let rows = client
            .query(
                &format!(
                    "INSERT INTO deployments (project, app, spec_path, state, created_at, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $5)
                     ON CONFLICT (project, app) DO UPDATE SET spec_path = excluded.spec_path
                     RETURNING {DEPLOYMENT_COLUMNS}"
                ),
                &[
                    &project,
                    &app,
                    &spec_path,
                    &DeploymentState::Run(State::Pending).as_str(),
                    &now(),
                ],
            )
            .await?;
        rows.first()
            .map(deployment_of)
            .transpose()?
            .ok_or_else(|| StoreError::Open {
                location: self.location(),
                message: "the deployment row was not written".to_owned(),
            })
    }

    pub async fn start_run(&self, run: &RunStart<'_>) -> Result<Deployment, StoreError> {
        let mut client = self.client.lock().await;
        let tx = client.transaction().await?;
        let deployment = self
            .upsert_deployment(&tx, run.project, run.app, run.spec_path)
            .await?;
        tx.execute(
            "INSERT INTO runs (id, deployment_id, state, spec_hash, started_at, origin, restores_run, snapshot)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[
                &run.run_id,
                &deployment.id,
                &State::Pending.as_str(),
                &run.spec_hash,
                &now(),
                &run.origin.as_str(),
                &run.origin.restores(),
                &run.snapshot.to_string(),
            ],
        )
        .await?;
        append(
            &tx,
            Some(deployment.id),
            Some(run.run_id),
            &Journal::RunStarted {
                spec_hash: run.spec_hash,
                origin: run.origin,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(deployment)
    }

    pub async fn transition(
        &self,
        deployment: i64,
        run_id: &str,
        (from, to): (State, State),
        reason: Option<&str>,
        keep: Option<DeploymentState>,
    ) -> Result<State, StoreError> {
        let next = from.transition(to)?;
        let mut client = self.client.lock().await;
        transition_in(&mut client, deployment, run_id, (from, next), reason, keep).await?;
        Ok(next)
    }

    pub async fn close_unfinished_runs(
        &self,
        deployment: i64,
        reason: &str,
    ) -> Result<Vec<(String, State)>, StoreError> {
        let mut closed = Vec::new();
        for run in self.runs(deployment).await? {
            let left_in = run.state;
            if left_in.is_terminal() {
                continue;
            }
            let mut state = left_in;
            if state == State::Pending {
                state = self
                    .transition(deployment, &run.id, (state, State::Validating), None, None)
                    .await?;
            }
            self.transition(
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

    pub async fn mark_destroyed(
        &self,
        deployment: i64,
        record: &DestroyRecord,
    ) -> Result<(), StoreError> {
        let mut client = self.client.lock().await;
        let tx = client.transaction().await?;
        tx.execute(
            "UPDATE deployments SET spec_hash = NULL, state = $1, updated_at = $2 WHERE id = $3",
            &[&DeploymentState::Destroyed.as_str(), &now(), &deployment],
        )
        .await?;
        append(&tx, Some(deployment), None, &Journal::Destroyed { record }).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn destroys(&self, deployment: i64) -> Result<Vec<DestroyEntry>, StoreError> {
        let rows = self
            .client
            .lock()
            .await
            .query(
                "SELECT at, data FROM events WHERE deployment_id = $1 AND kind = 'destroyed'
                 ORDER BY seq DESC",
                &[&deployment],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| DestroyEntry::from_journal(r.get(0), r.get::<_, Option<String>>(1).as_deref()))
            .collect())
    }

    pub async fn set_spec_hash(&self, deployment: i64, hash: &str) -> Result<(), StoreError> {
        self.query(
            "UPDATE deployments SET spec_hash = $1 WHERE id = $2",
            &[&hash, &deployment],
        )
        .await?;
        Ok(())
    }

    pub async fn append_event(
        &self,
        deployment: Option<i64>,
        run_id: Option<&str>,
        event: &Journal<'_>,
    ) -> Result<(), StoreError> {
        let client = self.client.lock().await;
        append(&*client, deployment, run_id, event).await
    }

    pub async fn intend(
        &self,
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
        let mut client = self.client.lock().await;
        let tx = client.transaction().await?;
        let row = tx
            .query_one(
                "INSERT INTO resources (deployment_id, provider, kind, name, owner, status, desired, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $8, $6, $7)
                 ON CONFLICT (deployment_id, provider, kind, name) DO UPDATE SET
                     status = CASE WHEN resources.status = $9 THEN $8 ELSE resources.status END,
                     previous_desired = CASE WHEN resources.status = $9 THEN NULL ELSE resources.previous_desired END,
                     desired = excluded.desired,
                     updated_at = excluded.updated_at
                 RETURNING id",
                &[
                    &deployment,
                    &provider.as_str(),
                    &kind,
                    &name,
                    &owner,
                    &desired.to_string(),
                    &now(),
                    &ResourceStatus::Pending.as_str(),
                    &ResourceStatus::Deleted.as_str(),
                ],
            )
            .await?;
        let id: i64 = row.try_get(0)?;
        append(
            &tx,
            Some(deployment),
            Some(run_id),
            &Journal::Intent {
                provider,
                kind,
                name,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    pub async fn record(
        &self,
        resource: i64,
        run: Option<&str>,
        status: ResourceStatus,
        external_id: Option<&str>,
        outputs: Option<&Value>,
    ) -> Result<(), StoreError> {
        let created = if status.is_new_to_run() { run } else { None };
        let mut client = self.client.lock().await;
        let tx = client.transaction().await?;
        let row = tx
            .query_one(
                "UPDATE resources SET status = $1, external_id = COALESCE($2, external_id), outputs = COALESCE($3, outputs),
                     created_by_run = COALESCE($4, created_by_run), changed_by_run = $5, updated_at = $6
                 WHERE id = $7
                 RETURNING deployment_id",
                &[
                    &status.as_str(),
                    &external_id,
                    &outputs.map(Value::to_string),
                    &created,
                    &run,
                    &now(),
                    &resource,
                ],
            )
            .await?;
        let deployment: i64 = row.try_get(0)?;
        append(
            &tx,
            Some(deployment),
            run,
            &Journal::Resource {
                resource,
                status,
                external_id,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn resources(&self, deployment: i64) -> Result<Vec<ResourceRow>, StoreError> {
        self.query(
            "SELECT id, provider, kind, name, external_id, owner, status, desired, previous_desired, outputs, created_by_run, changed_by_run
             FROM resources WHERE deployment_id = $1 ORDER BY id",
            &[&deployment],
        )
        .await?
        .iter()
        .map(resource_of)
        .collect()
    }

    /// See [`super::Store::holder`].
    pub async fn holder(
        &self,
        project: &str,
        key: ResourceKey<'_>,
        external_id: &str,
        except: i64,
    ) -> Result<Option<Holder>, StoreError> {
        let ResourceKey {
            provider: role,
            kind,
            ..
        } = key;
        let rows = self
            .query(
                "SELECT d.project, d.app, r.name FROM resources r JOIN deployments d ON d.id = r.deployment_id
                 WHERE r.provider = $1 AND r.kind = $2 AND r.external_id = $3 AND r.status IN ('created', 'updated', 'adopted') AND r.id <> $4
                   AND d.project = $5
                 ORDER BY r.id LIMIT 1",
                &[&role.as_str(), &kind, &external_id, &except, &project],
            )
            .await?;
        rows.first()
            .map(|row| {
                Ok(Holder {
                    project: row.try_get(0)?,
                    app: row.try_get(1)?,
                    name: row.try_get(2)?,
                })
            })
            .transpose()
    }

    pub async fn runs(&self, deployment: i64) -> Result<Vec<RunRow>, StoreError> {
        self.query(
            "SELECT id, state, spec_hash, started_at, finished_at, reason, origin, restores_run, snapshot
             FROM runs WHERE deployment_id = $1 ORDER BY started_at DESC, seq DESC",
            &[&deployment],
        )
        .await?
        .iter()
        .map(run_of)
        .collect()
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

    /// Writes `dump` (the shape of [`PgStore::export`]) into this empty schema, in one
    /// transaction: rows keep their ids (the sequences move past them); a run's
    /// `restores_run` is set once every run is there.
    pub async fn import(&self, dump: &Value) -> Result<(), StoreError> {
        let mut client = self.client.lock().await;
        let tx = client.transaction().await?;
        for (table, rows) in super::migrate::tables(dump) {
            for row in rows {
                let columns: Vec<&String> = row.keys().collect();
                let sql = super::migrate::insert_sql(table, &columns, '$');
                // Ids are BIGINT, everything else TEXT (the same columns as SQLite's).
                let values: Vec<Box<dyn ToSql + Sync + Send>> = columns
                    .iter()
                    .map(|c| -> Box<dyn ToSql + Sync + Send> {
                        let value = &row[c.as_str()];
                        let integer = matches!(c.as_str(), "id" | "deployment_id" | "seq")
                            && !(table == "runs" && c.as_str() == "id");
                        if integer {
                            Box::new(value.as_i64())
                        } else if table == "runs" && c.as_str() == "restores_run" {
                            Box::new(None::<String>)
                        } else {
                            Box::new(match value {
                                Value::Null => None,
                                Value::String(s) => Some(s.clone()),
                                other => Some(other.to_string()),
                            })
                        }
                    })
                    .collect();
                let params: Vec<&(dyn ToSql + Sync)> = values
                    .iter()
                    .map(|v| v.as_ref() as &(dyn ToSql + Sync))
                    .collect();
                tx.execute(&sql, &params).await?;
            }
        }
        for (id, restores) in super::migrate::restores(dump) {
            tx.execute(
                "UPDATE runs SET restores_run = $1 WHERE id = $2",
                &[&restores, &id],
            )
            .await?;
        }
        for (table, column) in [
            ("deployments", "id"),
            ("resources", "id"),
            ("events", "seq"),
        ] {
            tx.execute(
                &format!(
                    "SELECT setval(pg_get_serial_sequence('{table}', '{column}'), GREATEST((SELECT MAX({column}) FROM {table}), 1))"
                ),
                &[],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Sets the shared fingerprint key (when a project's state moves here, its key comes
    /// along, so that its versions keep their hashes).
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

/// One transition in one transaction: the run, the deployment, the restore points and
/// the journal agree even if the process dies here.
async fn transition_in(
    client: &mut Client,
    deployment: i64,
    run_id: &str,
    (from, next): (State, State),
    reason: Option<&str>,
    keep: Option<DeploymentState>,
) -> Result<(), StoreError> {
    let at = now();
    let finished = next.is_terminal().then_some(at.clone());
    let tx = client.transaction().await?;
    tx.execute(
        "UPDATE runs SET state = $1, finished_at = COALESCE($2, finished_at), reason = COALESCE($3, reason) WHERE id = $4",
        &[&next.as_str(), &finished, &reason, &run_id],
    )
    .await?;
    tx.execute(
        "UPDATE deployments SET state = $1, updated_at = $2 WHERE id = $3",
        &[
            &keep.unwrap_or(DeploymentState::Run(next)).as_str(),
            &at,
            &deployment,
        ],
    )
    .await?;
    if next == State::Complete {
        // What a completed run deployed is what a later failed run restores.
        tx.execute(
            "UPDATE resources SET previous_desired = desired
             WHERE deployment_id = $1 AND status IN ($2, $3, $4)",
            &[
                &deployment,
                &ResourceStatus::Created.as_str(),
                &ResourceStatus::Updated.as_str(),
                &ResourceStatus::Adopted.as_str(),
            ],
        )
        .await?;
    }
    append(
        &tx,
        Some(deployment),
        Some(run_id),
        &Journal::Transition {
            from,
            to: next,
            reason,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
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
    fn tls_is_required_unless_the_connection_string_says_otherwise() {
        use tokio_postgres::config::SslMode;
        assert_eq!(
            effective_ssl_mode("postgresql://u:p@db/x", SslMode::Prefer),
            SslMode::Require
        );
        assert_eq!(
            effective_ssl_mode("host=db user=u sslmode=prefer", SslMode::Prefer),
            SslMode::Prefer
        );
        assert_eq!(
            effective_ssl_mode("postgresql://u:p@db/x?sslmode=disable", SslMode::Disable),
            SslMode::Disable
        );
    }

    /// The forms PostgreSQL's documentation gives ("Connection URIs"), read as libpq
    /// reads them: query parameters override the authority's hosts and ports.
    #[test]
    fn connection_strings_are_read_as_libpq_reads_them() {
        use std::path::PathBuf;
        use tokio_postgres::config::Host;
        let tcp = |h: &str| Host::Tcp(h.to_owned());
        let unix = |p: &str| Host::Unix(PathBuf::from(p));
        let cases: [(&str, Vec<Host>, Vec<u16>); 11] = [
            ("postgresql://localhost", vec![tcp("localhost")], vec![]),
            (
                "postgresql://localhost:5433",
                vec![tcp("localhost")],
                vec![5433],
            ),
            (
                "postgresql://localhost/mydb",
                vec![tcp("localhost")],
                vec![],
            ),
            (
                "postgresql://user:secret@localhost",
                vec![tcp("localhost")],
                vec![],
            ),
            (
                "postgresql://other@localhost/otherdb?connect_timeout=10&application_name=myapp",
                vec![tcp("localhost")],
                vec![],
            ),
            (
                "postgresql://host1:123,host2:456/somedb?target_session_attrs=any&application_name=myapp",
                vec![tcp("host1"), tcp("host2")],
                vec![123, 456],
            ),
            (
                "postgresql:///mydb?host=localhost&port=5433",
                vec![tcp("localhost")],
                vec![5433],
            ),
            (
                "postgresql:///dbname?host=/var/lib/postgresql",
                vec![unix("/var/lib/postgresql")],
                vec![],
            ),
            // The query's host replaces the authority's (tokio-postgres alone adds it).
            (
                "postgresql://u@localhost/db?host=/run/postgresql",
                vec![unix("/run/postgresql")],
                vec![],
            ),
            (
                "postgres://u@db:6000/x?host=other",
                vec![tcp("other")],
                vec![6000],
            ),
            (
                "postgres://u@db:6000/x?port=7000",
                vec![tcp("db")],
                vec![7000],
            ),
        ];
        for (text, hosts, ports) in cases {
            let config = parse_connection_string(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(config.get_hosts(), hosts.as_slice(), "{text}");
            if !ports.is_empty() {
                assert_eq!(config.get_ports(), ports.as_slice(), "{text}");
            }
        }
        // The key=value form as it is.
        let config = parse_connection_string("host=/run/postgresql port=5432 user=u dbname=d")
            .expect("parses");
        assert_eq!(config.get_hosts(), [unix("/run/postgresql")]);
        assert_eq!(transport(&config), Ok(Transport::Local));
        // A Unix socket is local: no TLS is attempted over it.
        let config = parse_connection_string("postgresql://u@localhost/db?host=/run/postgresql")
            .expect("parses");
        assert_eq!(transport(&config), Ok(Transport::Local));
        let config = parse_connection_string("host=db,/run/postgresql user=u").expect("parses");
        assert!(transport(&config).is_err(), "a mixed list is refused");
        assert!(parse_connection_string("postgresql://u@[::1/x").is_err());
    }

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

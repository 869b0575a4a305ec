//! The state store: deployments, runs (with the snapshot of what they deployed),
//! resources with their intents, and an append-only event journal. One interface,
//! [`Store`], over two backends with the same tables and meaning: a SQLite file beside
//! the project (the default) and a PostgreSQL schema shared by a team.
//!
//! Secret values are never written here: callers store fingerprints instead.

pub mod journal;
pub mod migrate;
pub mod migrations;
mod operations;
pub mod postgres;
mod seam;
pub mod sqlite;

use std::path::{Path, PathBuf};

use tokio::sync::Mutex;

use serde::Serialize;
use serde_json::Value;

use crate::domain::{
    DeploymentState, InvalidStateTransition, ResourceStatus, Role, RunOrigin, State,
};
pub use journal::{DestroyEntry, DestroyRecord, Journal};

/// Environment variable that overrides the state database's path.
pub const STATE_DB_ENV: &str = "FABRIK_STATE_DB";

/// `<project>/.fabrik/state.db`
pub fn default_path(project_dir: &Path) -> PathBuf {
    project_dir.join(".fabrik").join("state.db")
}

/// When something happened, as both backends store it: Unix seconds with milliseconds.
fn now() -> String {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!("{}.{:03}", since.as_secs(), since.subsec_millis())
}

/// A stored JSON column; unreadable JSON reads as absent.
fn parse_json(text: Option<String>) -> Option<Value> {
    text.and_then(|t| serde_json::from_str(&t).ok())
}

/// Why the store could not be used. None of these leaves the state changed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the state database {location}: {message}")]
    Open { location: String, message: String },
    #[error(
        "the state database {location} has schema version {found}, newer than this fabrik supports ({known}); it was left unchanged\n  hint: upgrade fabrik"
    )]
    Newer {
        location: String,
        found: i64,
        known: i64,
    },
    #[error(
        "the state database `{}` is not a valid SQLite database or is damaged ({message}); it was left unchanged\n  hint: restore it from a backup, or move it away to start with an empty state",
        path.display()
    )]
    Corrupt { path: PathBuf, message: String },
    #[error(
        "the state database `{}` cannot be written ({message}); it was left unchanged\n  hint: the file and its directory must be writable and the disk not full; `status`, `history`, `plan` and `state export` read it without writing",
        path.display()
    )]
    Unwritable { path: PathBuf, message: String },
    #[error(transparent)]
    Transition(#[from] InvalidStateTransition),
    #[error("state database error: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("state database error: {}", postgres::describe(.0))]
    Postgres(#[from] tokio_postgres::Error),
    /// The app's lock was lost while a run held it (its database session ended): another
    /// run may hold it now, so nothing more is written over its records.
    #[error(
        "the lock of `{app}` was lost (its database session ended): nothing more was written, since another run may hold it now\n  hint: `fabrik status` shows what the app's last run recorded; apply again to finish"
    )]
    LockLost { app: String },
    /// A column that does not hold what its table says.
    #[error("the state database holds a value Fabrik cannot read (column {index}: {problem})")]
    Column { index: usize, problem: String },
    /// A write the database answered without the row it wrote.
    #[error("the state database did not write {0}")]
    NotWritten(&'static str),
    /// A stored name that is not one of its type's values.
    #[error("the state database holds {0}; was it written by a newer fabrik?")]
    Unknown(#[from] crate::domain::UnknownName),
}

/// A deployment row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Deployment {
    pub id: i64,
    pub project: String,
    /// The app's name, without its environment (see [`Deployment::key`]).
    pub app: String,
    /// The environment of the app's spec this deployment is, if any.
    pub environment: Option<String>,
    pub spec_path: String,
    pub spec_hash: Option<String>,
    pub state: DeploymentState,
    /// When the deployment was first made (seconds since the epoch, with milliseconds).
    pub created_at: String,
}

impl Deployment {
    /// The key its lock, owner tag and commands go by: `api`, or `api@staging`.
    pub fn key(&self) -> String {
        crate::domain::deployment_key(&self.app, self.environment.as_deref())
    }

    /// Whether the latest run completed (and nothing was destroyed since).
    pub fn is_complete(&self) -> bool {
        self.state == DeploymentState::Run(State::Complete)
    }
}

/// A run row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunRow {
    pub id: String,
    pub state: State,
    pub spec_hash: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub reason: Option<String>,
    /// `apply`, or `rollback` (with the earlier run whose version it deployed again).
    pub origin: RunOrigin,
    /// What the run deployed (see `orchestrator::snapshot`); absent for runs written by
    /// fabrik before schema version 2.
    pub snapshot: Option<Value>,
}

/// How a run came to be, as [`Store::start_run`] records it: the app it deploys (its
/// deployment is created with the run if it has none), and the run.
#[derive(Debug, Clone, Copy)]
pub struct RunStart<'a> {
    pub project: &'a str,
    pub app: &'a str,
    /// The spec the app is applied from now (the deployment keeps the latest).
    pub spec_path: &'a str,
    pub run_id: &'a str,
    pub spec_hash: &'a str,
    pub origin: &'a RunOrigin,
    pub snapshot: &'a Value,
}

/// Which resource: provider role, kind and name.
#[derive(Debug, Clone, Copy)]
pub struct ResourceKey<'a> {
    pub provider: Role,
    pub kind: &'a str,
    pub name: &'a str,
}

/// A resource row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResourceRow {
    pub id: i64,
    pub provider: Role,
    pub kind: String,
    pub name: String,
    pub external_id: Option<String>,
    pub owner: String,
    pub status: ResourceStatus,
    pub desired: Option<Value>,
    pub previous_desired: Option<Value>,
    pub outputs: Option<Value>,
    pub created_by_run: Option<String>,
    pub changed_by_run: Option<String>,
}

impl ResourceRow {
    /// Whether the row stands for something live that Fabrik owns.
    pub fn is_live(&self) -> bool {
        self.status.is_live() && self.external_id.is_some()
    }

    /// Whether the row is the resource `role`/`kind`/`name`.
    pub fn is(&self, role: Role, kind: &str, name: &str) -> bool {
        self.provider == role && self.kind == kind && self.name == name
    }
}

/// Which app's state holds a resource (see [`Store::holder`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub project: String,
    /// The deployment key (`api`, `api@staging`).
    pub app: String,
    /// The resource's name in that app.
    pub name: String,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}` of app `{}/{}`", self.name, self.project, self.app)
    }
}

/// An open state store, on either backend.
pub struct Store {
    backend: Backend,
}

enum Backend {
    /// Calls are quick and local: one connection, one call at a time.
    Sqlite {
        store: Mutex<sqlite::SqliteStore>,
        path: PathBuf,
    },
    Postgres(postgres::PgStore),
}

/// Runs the operation `$op` of [`operations`] on whichever backend the store has,
/// through its [`seam::Session`].
macro_rules! dispatch {
    ($self:ident, $op:ident ( $($arg:expr),* )) => {
        match &$self.backend {
            Backend::Sqlite { store, .. } => {
                let mut store = store.lock().await;
                operations::$op(&mut store.session() $(, $arg)*).await
            }
            Backend::Postgres(store) => {
                let client = store.client().await;
                let mut session =
                    postgres::PgSession::new(&client, store.transaction_open()).await?;
                operations::$op(&mut session $(, $arg)*).await
            }
        }
    };
}

impl Store {
    /// Opens (creating and migrating it if needed) the SQLite file at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Ok(Self::from(sqlite::SqliteStore::open(path)?))
    }

    /// Opens the SQLite database at `path` for reading: as [`Store::open`] when it can be
    /// written, else read-only (no migration), for commands that only read.
    pub fn open_for_reading(path: &Path) -> Result<Self, StoreError> {
        match sqlite::SqliteStore::open(path) {
            Ok(store) => Ok(Self::from(store)),
            Err(StoreError::Unwritable { .. }) if path.is_file() => {
                Ok(Self::from(sqlite::SqliteStore::open_read_only(path)?))
            }
            Err(error) => Err(error),
        }
    }

    /// Connects to PostgreSQL and migrates the schema.
    pub async fn connect(settings: &postgres::PgSettings) -> Result<Self, StoreError> {
        Ok(Self {
            backend: Backend::Postgres(postgres::PgStore::connect(settings).await?),
        })
    }

    /// Connects to PostgreSQL without creating or migrating anything: `None` when the
    /// schema holds no state yet (for `plan`, which writes nothing).
    pub async fn connect_existing(
        settings: &postgres::PgSettings,
    ) -> Result<Option<Self>, StoreError> {
        Ok(postgres::PgStore::connect_existing(settings)
            .await?
            .map(|store| Self {
                backend: Backend::Postgres(store),
            }))
    }

    /// Where the state is, for messages: a file, or a PostgreSQL schema (never its URL).
    pub fn location(&self) -> String {
        match &self.backend {
            Backend::Sqlite { path, .. } => format!("`{}`", path.display()),
            Backend::Postgres(store) => store.location(),
        }
    }

    /// The deployment of `app` in `project`, if any.
    pub async fn deployment(
        &self,
        project: &str,
        app: &str,
    ) -> Result<Option<Deployment>, StoreError> {
        dispatch!(self, deployment(project, app))
    }

    /// Every deployment, by project and app.
    pub async fn deployments(&self) -> Result<Vec<Deployment>, StoreError> {
        dispatch!(self, deployments())
    }

    /// The deployment of `app`, created in `PENDING` if it does not exist.
    pub async fn ensure_deployment(
        &self,
        project: &str,
        app: &str,
        spec_path: &str,
    ) -> Result<Deployment, StoreError> {
        dispatch!(self, ensure_deployment(project, app, spec_path))
    }

    /// Starts a run in `PENDING`, with the snapshot of what it deploys, in one
    /// transaction with the app's deployment (created in `PENDING` if it has none): a
    /// deployment never exists without a run, even if the process dies here.
    pub async fn start_run(&self, run: &RunStart<'_>) -> Result<Deployment, StoreError> {
        dispatch!(self, start_run(run))
    }

    /// Moves a run from `from` to `to`, as the state machine allows, and journals it.
    /// The deployment takes the run's new state, or `keep` when given: a run that ended
    /// having changed nothing leaves the app in the state it was in (invariant 9).
    pub async fn transition(
        &self,
        deployment: i64,
        run_id: &str,
        (from, to): (State, State),
        reason: Option<&str>,
        keep: Option<DeploymentState>,
    ) -> Result<State, StoreError> {
        dispatch!(
            self,
            transition(deployment, run_id, (from, to), reason, keep)
        )
    }

    /// Ends every unfinished run of `deployment` as `FAILED` with `reason` (only for the
    /// holder of the app's lock); returns each closed run and the state it was left in.
    pub async fn close_unfinished_runs(
        &self,
        deployment: i64,
        reason: &str,
    ) -> Result<Vec<(String, State)>, StoreError> {
        dispatch!(self, close_unfinished_runs(deployment, reason))
    }

    /// Records that `fabrik destroy` deleted every resource of the app, with what it did,
    /// in one transaction.
    pub async fn mark_destroyed(
        &self,
        deployment: i64,
        record: &DestroyRecord,
    ) -> Result<(), StoreError> {
        dispatch!(self, mark_destroyed(deployment, record))
    }

    /// The destroys of a deployment, complete or not, newest first.
    pub async fn destroys(&self, deployment: i64) -> Result<Vec<DestroyEntry>, StoreError> {
        dispatch!(self, destroys(deployment))
    }

    /// Records the spec hash a completed run deployed.
    pub async fn set_spec_hash(&self, deployment: i64, hash: &str) -> Result<(), StoreError> {
        dispatch!(self, set_spec_hash(deployment, hash))
    }

    /// Appends to the journal.
    pub async fn append_event(
        &self,
        deployment: Option<i64>,
        run_id: Option<&str>,
        event: &Journal<'_>,
    ) -> Result<(), StoreError> {
        dispatch!(self, append_event(deployment, run_id, event))
    }

    /// Writes the intent to create or change a resource before the provider is called.
    pub async fn intend(
        &self,
        deployment: i64,
        run_id: &str,
        key: ResourceKey<'_>,
        owner: &str,
        desired: &Value,
    ) -> Result<i64, StoreError> {
        dispatch!(self, intend(deployment, run_id, key, owner, desired))
    }

    /// Records what a provider call did to a resource (`run` is `None` outside a run).
    pub async fn record(
        &self,
        resource: i64,
        run: Option<&str>,
        status: ResourceStatus,
        external_id: Option<&str>,
        outputs: Option<&Value>,
    ) -> Result<(), StoreError> {
        dispatch!(self, record(resource, run, status, external_id, outputs))
    }

    /// The resources of a deployment, oldest first.
    pub async fn resources(&self, deployment: i64) -> Result<Vec<ResourceRow>, StoreError> {
        dispatch!(self, resources(deployment))
    }

    /// The row of `project`, other than `except`, that already tracks the `role`/`kind`
    /// resource `external_id` (any of its apps, live: a deleted row brought back to
    /// `pending` keeps its old id, which may be reused), if any: a provider
    /// answering a create with an id the state already holds is confused, and recording
    /// it twice would let one app's rollback delete another's resource. Only within a
    /// project: another project's providers may be other servers, whose ids can repeat.
    pub async fn holder(
        &self,
        project: &str,
        key: ResourceKey<'_>,
        external_id: &str,
        except: i64,
    ) -> Result<Option<Holder>, StoreError> {
        dispatch!(self, holder(project, key, external_id, except))
    }

    /// The runs of a deployment, newest first.
    pub async fn runs(&self, deployment: i64) -> Result<Vec<RunRow>, StoreError> {
        dispatch!(self, runs(deployment))
    }

    /// Whether several machines share this state (PostgreSQL): its fingerprint key is
    /// then the team's `FABRIK_FINGERPRINT_KEY`, never kept in the state.
    pub fn is_shared(&self) -> bool {
        matches!(self.backend, Backend::Postgres(_))
    }

    /// A fingerprint key an earlier Fabrik kept in a shared state (none for SQLite).
    pub async fn legacy_fingerprint_key(&self) -> Result<Option<Vec<u8>>, StoreError> {
        match &self.backend {
            Backend::Sqlite { .. } => Ok(None),
            Backend::Postgres(store) => store.legacy_fingerprint_key().await,
        }
    }

    /// Removes a fingerprint key an earlier Fabrik kept in a shared state.
    pub async fn forget_legacy_fingerprint_key(&self) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sqlite { .. } => Ok(()),
            Backend::Postgres(store) => store.forget_legacy_fingerprint_key().await,
        }
    }

    /// Gives back a claim of key `id` for `project` (a key that could not be kept).
    pub async fn release_fingerprint_key_id(
        &self,
        project: &str,
        id: &str,
    ) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sqlite { .. } => Ok(()),
            Backend::Postgres(store) => store.release_fingerprint_key_id(project, id).await,
        }
    }

    /// The id of the key `project`'s fingerprints are made with in a shared state (none
    /// for SQLite).
    pub async fn fingerprint_key_id(&self, project: &str) -> Result<Option<String>, StoreError> {
        match &self.backend {
            Backend::Sqlite { .. } => Ok(None),
            Backend::Postgres(store) => store.fingerprint_key_id(project).await,
        }
    }

    /// Records `id` as `project`'s key id in a shared state unless one is; returns the
    /// recorded one.
    pub async fn claim_fingerprint_key_id(
        &self,
        project: &str,
        id: &str,
    ) -> Result<String, StoreError> {
        match &self.backend {
            Backend::Sqlite { .. } => Ok(id.to_owned()),
            Backend::Postgres(store) => store.claim_fingerprint_key_id(project, id).await,
        }
    }

    /// The secrets of `app` that a machine sharing this state generated, with the host
    /// that did (empty for SQLite: its state is one machine's).
    pub async fn generated_secrets(
        &self,
        project: &str,
        app: &str,
    ) -> Result<Vec<(String, String)>, StoreError> {
        match &self.backend {
            Backend::Sqlite { .. } => Ok(Vec::new()),
            Backend::Postgres(store) => store.generated_secrets(project, app).await,
        }
    }

    /// Records that this machine generated secret `name` for `app` (shared state only).
    pub async fn record_generated(
        &self,
        project: &str,
        app: &str,
        name: &str,
    ) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sqlite { .. } => Ok(()),
            Backend::Postgres(store) => store.record_generated(project, app, name).await,
        }
    }

    /// Writes a dump (the shape of [`Store::export`]) into this empty store.
    pub async fn import(&self, dump: &Value) -> Result<(), StoreError> {
        dispatch!(self, import(dump))
    }

    /// The whole state as JSON (for `fabrik state export`).
    pub async fn export(&self) -> Result<Value, StoreError> {
        match &self.backend {
            Backend::Sqlite { store, .. } => store.lock().await.export(),
            Backend::Postgres(store) => store.export().await,
        }
    }
}

impl From<sqlite::SqliteStore> for Store {
    fn from(store: sqlite::SqliteStore) -> Self {
        Self {
            backend: Backend::Sqlite {
                path: store.path().to_path_buf(),
                store: Mutex::new(store),
            },
        }
    }
}

#[cfg(test)]
mod tests;

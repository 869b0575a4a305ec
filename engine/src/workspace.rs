//! Where a command works: the project (found from a spec or the current directory), its
//! configuration, and where its state is. One place for what every command resolves.

use std::path::{Path, PathBuf};

use secrecy::SecretString;

use crate::project::{Project, ProjectError, StateBackend, find_root, project_dir};
use crate::secrets::{EnvSource, SecretsError};
use crate::store::postgres::{DEFAULT_SCHEMA, PgSettings};
use crate::store::{Store, StoreError};

/// The variable holding the PostgreSQL connection string (environment, then `.env`).
pub const STATE_URL_ENV: &str = "FABRIK_STATE_URL";

/// Variables that carry the state database's credentials, withheld from hooks: the
/// connection string, libpq's own password variables, which a team member's shell may
/// hold for `psql` against the same database, and the team's fingerprint key.
pub const STATE_CREDENTIAL_ENV: &[&str] = &[
    STATE_URL_ENV,
    "PGPASSWORD",
    "PGPASSFILE",
    crate::secrets::FINGERPRINT_KEY_ENV,
];

/// Why a command's workspace cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    #[error("cannot read the current directory: {0}")]
    CurrentDir(std::io::Error),
    #[error(transparent)]
    Project(#[from] ProjectError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Secrets(#[from] SecretsError),
    #[error(
        "the PostgreSQL state needs {STATE_URL_ENV}, which is not set\n  hint: set it in the environment or the project's .env (never in fabrik.toml): `{STATE_URL_ENV}=postgresql://user:password@host/database`"
    )]
    NoStateUrl,
}

/// A project and where its state lives.
#[derive(Debug, Clone)]
pub struct Workspace {
    pub project: Project,
    /// The state database: `--state`/`FABRIK_STATE_DB`, else `.fabrik/state.db`.
    pub state_path: PathBuf,
}

impl Workspace {
    /// The project rooted at `dir`; `state` overrides where its state is.
    pub fn at(dir: &Path, state: Option<&Path>) -> Result<Self, WorkspaceError> {
        let project = Project::load(dir)?;
        let state_path = state_path(&project.dir, state);
        Ok(Self {
            project,
            state_path,
        })
    }

    /// The project the current directory belongs to.
    pub fn current(state: Option<&Path>) -> Result<Self, WorkspaceError> {
        Self::at(&current_root()?, state)
    }

    /// The project the spec at `spec` belongs to.
    pub fn of_spec(spec: &Path, state: Option<&Path>) -> Result<Self, WorkspaceError> {
        Self::at(&project_dir(spec), state)
    }

    /// The PostgreSQL settings, when the project keeps its state there.
    pub fn postgres(&self) -> Result<Option<PgSettings>, WorkspaceError> {
        if self.project.state.backend != StateBackend::Postgres {
            return Ok(None);
        }
        self.postgres_settings().map(Some)
    }

    /// The PostgreSQL settings of `[state]` and `FABRIK_STATE_URL`, whichever backend the
    /// project uses now (for `fabrik state migrate`).
    pub fn postgres_settings(&self) -> Result<PgSettings, WorkspaceError> {
        let state = &self.project.state;
        let url: SecretString = EnvSource::load(&self.project.dir)?
            .get(STATE_URL_ENV)
            .ok_or(WorkspaceError::NoStateUrl)?;
        Ok(PgSettings {
            url,
            schema: state
                .schema
                .clone()
                .unwrap_or_else(|| DEFAULT_SCHEMA.to_owned()),
            ca_file: state.ca_file.as_ref().map(|f| self.project.dir.join(f)),
        })
    }

    /// Where the project's app locks live: with its state.
    pub fn locks(&self) -> Result<crate::lock::Locks, WorkspaceError> {
        Ok(match self.postgres()? {
            Some(settings) => crate::lock::Locks::Postgres(settings),
            None => crate::lock::Locks::Files(crate::lock::lock_dir(
                &std::path::absolute(&self.state_path).unwrap_or_else(|_| self.state_path.clone()),
            )),
        })
    }

    /// Opens the project's state (creating and migrating it if needed): the SQLite file,
    /// or the team's PostgreSQL schema.
    pub async fn open_store(&self) -> Result<Store, WorkspaceError> {
        Ok(match self.postgres()? {
            Some(settings) => Store::connect(&settings).await?,
            None => Store::open(&self.state_path)?,
        })
    }

    /// The state for a command that only reads (`status`, `history`, `state export`):
    /// opened read-only when it cannot be written.
    pub async fn reading_store(&self) -> Result<Store, WorkspaceError> {
        Ok(match self.postgres()? {
            Some(settings) => Store::connect(&settings).await?,
            None => Store::open_for_reading(&self.state_path)?,
        })
    }

    /// The state if it exists: reading creates nothing (for `plan`).
    pub async fn existing_store(&self) -> Result<Option<Store>, WorkspaceError> {
        Ok(match self.postgres()? {
            Some(settings) => Store::connect_existing(&settings).await?,
            None => self
                .state_path
                .exists()
                .then(|| Store::open_for_reading(&self.state_path))
                .transpose()?,
        })
    }
}

/// Where the state of the project in `dir` is: `state` if given, else
/// `.fabrik/state.db` in it. Needs no valid `fabrik.toml` (to export a broken project's
/// state).
pub fn state_path(dir: &Path, state: Option<&Path>) -> PathBuf {
    state.map_or_else(|| crate::store::default_path(dir), Path::to_path_buf)
}

/// The project directory the current directory belongs to.
pub fn current_root() -> Result<PathBuf, WorkspaceError> {
    Ok(find_root(
        &std::env::current_dir().map_err(WorkspaceError::CurrentDir)?,
    ))
}

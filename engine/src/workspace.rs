//! Where a command works: the project (found from a spec or the current directory), its
//! configuration, and where its state is. One place for what every command resolves.

use std::path::{Path, PathBuf};

use crate::project::{Project, ProjectError, find_root, project_dir};
use crate::store::{Store, StoreError};

/// Why a command's workspace cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    #[error("cannot read the current directory: {0}")]
    CurrentDir(std::io::Error),
    #[error(transparent)]
    Project(#[from] ProjectError),
    #[error(transparent)]
    Store(#[from] StoreError),
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

    /// Opens (creating and migrating it if needed) the state database.
    pub fn open_store(&self) -> Result<Store, StoreError> {
        Store::open(&self.state_path)
    }

    /// The state database if it exists: reading creates nothing.
    pub fn existing_store(&self) -> Result<Option<Store>, StoreError> {
        self.state_path
            .exists()
            .then(|| Store::open(&self.state_path))
            .transpose()
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

//! Why a run was started.

use std::fmt;

/// Why a run is started.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum RunOrigin {
    /// `fabrik apply` of a spec file.
    #[default]
    Apply,
    /// `fabrik rollback`: deploys again what the run `restores` deployed.
    Rollback { restores: String },
    /// `fabrik promote`: deploys, in this environment, the source ids another
    /// environment's run `from` verified.
    Promotion { from: String },
}

impl RunOrigin {
    /// The stored name: `apply`, `rollback` or `promotion`.
    pub fn as_str(&self) -> &'static str {
        match self {
            RunOrigin::Apply => "apply",
            RunOrigin::Rollback { .. } => "rollback",
            RunOrigin::Promotion { .. } => "promotion",
        }
    }

    /// For a rollback: the run whose version it deploys again; for a promotion: the run
    /// of the other environment whose source it deploys (stored as `restores_run`).
    pub fn restores(&self) -> Option<&str> {
        match self {
            RunOrigin::Apply => None,
            RunOrigin::Rollback { restores } => Some(restores),
            RunOrigin::Promotion { from } => Some(from),
        }
    }

    /// From the stored name and the run it restores.
    pub fn from_stored(name: &str, restores: Option<String>) -> Result<Self, super::UnknownName> {
        match (name, restores) {
            ("apply", _) => Ok(RunOrigin::Apply),
            ("rollback", Some(restores)) => Ok(RunOrigin::Rollback { restores }),
            ("promotion", Some(from)) => Ok(RunOrigin::Promotion { from }),
            _ => Err(super::UnknownName {
                what: "run origin",
                value: name.to_owned(),
            }),
        }
    }
}

impl fmt::Display for RunOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl serde::Serialize for RunOrigin {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

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
}

impl RunOrigin {
    /// The stored name: `apply` or `rollback`.
    pub fn as_str(&self) -> &'static str {
        match self {
            RunOrigin::Apply => "apply",
            RunOrigin::Rollback { .. } => "rollback",
        }
    }

    /// For a rollback: the run whose version it deploys again.
    pub fn restores(&self) -> Option<&str> {
        match self {
            RunOrigin::Apply => None,
            RunOrigin::Rollback { restores } => Some(restores),
        }
    }

    /// From the stored name and the run it restores.
    pub fn from_stored(name: &str, restores: Option<String>) -> Result<Self, super::UnknownName> {
        match (name, restores) {
            ("apply", _) => Ok(RunOrigin::Apply),
            ("rollback", Some(restores)) => Ok(RunOrigin::Rollback { restores }),
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

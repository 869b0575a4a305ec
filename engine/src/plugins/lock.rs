//! `fabrik.lock`: the providers a project is pinned to, by version and sha256 of their bytes.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::domain::Role;

pub const LOCK_FILE: &str = "fabrik.lock";
const FORMAT_VERSION: u32 = 1;

/// The whole lock file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockFile {
    pub version: u32,
    #[serde(default, rename = "provider")]
    pub providers: Vec<LockEntry>,
}

/// One pinned provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockEntry {
    pub role: Role,
    pub name: String,
    pub version: String,
    /// `bundled`, `path:<path relative to the project>`, or the `oci://` reference the
    /// component was resolved from (with its tag).
    pub source: String,
    /// For an OCI source: `sha256:<hex>` of the manifest, what `plan` and `apply` fetch
    /// (never the tag).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<String>,
    /// The contract version read from the component.
    pub wit: String,
    pub sha256: String,
}

#[derive(Debug, thiserror::Error)]
pub enum PinError {
    #[error("cannot read `{}`: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("`{}` is invalid: {message}\n  hint: run `fabrik providers lock` to write it again", path.display())]
    Invalid { path: PathBuf, message: String },
    #[error("cannot write `{}`: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "provider `{role}` ({source_label}) does not match `fabrik.lock`:\n  locked:  sha256:{locked}\n  found:   sha256:{actual}\n  hint: if this change is intended, run `fabrik providers lock` to pin the new bytes"
    )]
    Mismatch {
        role: Role,
        source_label: String,
        locked: String,
        actual: String,
    },
    #[error(
        "provider `{role}` ({source_label}) is not in `fabrik.lock`\n  hint: run `fabrik providers lock` to pin it"
    )]
    Unlocked { role: Role, source_label: String },
}

impl LockFile {
    pub fn new(mut providers: Vec<LockEntry>) -> Self {
        providers.sort_by_key(|p| p.role);
        Self {
            version: FORMAT_VERSION,
            providers,
        }
    }

    /// Reads `<dir>/fabrik.lock`; `None` if there is none.
    pub fn read(dir: &Path) -> Result<Option<Self>, PinError> {
        let path = dir.join(LOCK_FILE);
        let text = match crate::bounded::read_text(&path, crate::bounded::MAX_TEXT) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(PinError::Read { path, source }),
        };
        let lock: Self = toml::from_str(&text).map_err(|e| PinError::Invalid {
            path: path.clone(),
            message: e.to_string(),
        })?;
        if lock.version != FORMAT_VERSION {
            return Err(PinError::Invalid {
                path,
                message: format!("format version {} is not {FORMAT_VERSION}", lock.version),
            });
        }
        Ok(Some(lock))
    }

    /// Writes `<dir>/fabrik.lock` atomically.
    pub fn write(&self, dir: &Path) -> Result<PathBuf, PinError> {
        let path = dir.join(LOCK_FILE);
        let body = toml::to_string_pretty(self).map_err(|e| PinError::Invalid {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let text = format!(
            "# Written by `fabrik providers lock`. Commit it: `fabrik apply` refuses providers\n# whose bytes differ from what is pinned here.\n{body}"
        );
        let temp = dir.join(format!(".{LOCK_FILE}.{}.tmp", std::process::id()));
        crate::own_files::open(
            &temp,
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true),
        )
        .and_then(|mut file| std::io::Write::write_all(&mut file, text.as_bytes()))
        .and_then(|()| std::fs::rename(&temp, &path))
        .map_err(|source| PinError::Write {
            path: path.clone(),
            source,
        })?;
        Ok(path)
    }

    /// Checks that `role`, loaded from `source_label` with `sha256`, is what is pinned.
    pub fn check(&self, role: Role, source_label: &str, sha256: &str) -> Result<(), PinError> {
        let Some(entry) = self.providers.iter().find(|e| e.role == role) else {
            return Err(PinError::Unlocked {
                role,
                source_label: source_label.to_owned(),
            });
        };
        if entry.sha256 == sha256 {
            Ok(())
        } else {
            Err(PinError::Mismatch {
                role,
                source_label: source_label.to_owned(),
                locked: entry.sha256.clone(),
                actual: sha256.to_owned(),
            })
        }
    }
}

//! A problem found in a spec, located by file, line, column and field path.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// A 1-based position in a source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Location {
    pub line: usize,
    pub column: usize,
}

/// One validation problem. `field` is a dotted path such as `healthcheck.path` or
/// `secrets[1]`; it is empty when the problem concerns the whole document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub file: PathBuf,
    pub location: Location,
    pub field: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}",
            self.file.display(),
            self.location.line,
            self.location.column
        )?;
        if self.field.is_empty() {
            write!(f, " {}", self.message)?;
        } else {
            write!(f, " {}: {}", self.field, self.message)?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

/// Collects diagnostics for one file, so that validation reports every problem in one pass.
#[derive(Debug)]
pub struct Diagnostics {
    file: PathBuf,
    items: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn new(file: &Path) -> Self {
        Self {
            file: file.to_path_buf(),
            items: Vec::new(),
        }
    }

    pub fn push(&mut self, location: Location, field: &str, message: impl Into<String>) {
        self.push_with_hint(location, field, message, None::<String>);
    }

    pub fn push_with_hint(
        &mut self,
        location: Location,
        field: &str,
        message: impl Into<String>,
        hint: Option<impl Into<String>>,
    ) {
        self.items.push(Diagnostic {
            file: self.file.clone(),
            location,
            field: field.to_owned(),
            message: message.into(),
            hint: hint.map(Into::into),
        });
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The diagnostics in source order.
    pub fn into_sorted(mut self) -> Vec<Diagnostic> {
        self.items
            .sort_by_key(|d| (d.location.line, d.location.column, d.field.clone()));
        self.items
    }
}

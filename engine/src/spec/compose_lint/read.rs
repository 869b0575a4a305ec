//! Values as Compose reads them: interpolated first, then cast (a boolean in any spelling
//! its loader accepts, a number written bare or quoted).

use serde_yaml::Value;

use super::interpolate::{Variables, interpolate};

/// One reading of the document: the variables Compose would interpolate with.
pub(super) struct Reading<'a> {
    pub variables: Variables<'a>,
}

impl Reading<'_> {
    /// A scalar as Compose reads it (a string interpolated, or a number or boolean written
    /// bare); `None` for a sequence, mapping or null.
    pub fn scalar(&self, value: &Value) -> Result<Option<String>, String> {
        match value {
            Value::String(s) => interpolate(s, &self.variables)
                .map(Some)
                .map_err(|problem| problem.describe(s)),
            Value::Bool(b) => Ok(Some(b.to_string())),
            Value::Number(n) => Ok(Some(n.to_string())),
            Value::Tagged(tagged) => self.scalar(&tagged.value),
            _ => Ok(None),
        }
    }

    /// The scalars of a list, or the one scalar where Compose takes a single value.
    pub fn scalars(&self, value: Option<&Value>) -> Result<Vec<String>, String> {
        let mut out = Vec::new();
        match value.map(untagged) {
            Some(Value::Sequence(items)) => {
                for item in items {
                    out.extend(self.scalar(item)?);
                }
            }
            Some(other) => out.extend(self.scalar(other)?),
            None => {}
        }
        Ok(out)
    }

    /// Whether Compose reads `value` as true: YAML's booleans, and the strings and numbers
    /// its loader converts (`"true"`, `"yes"`, `"on"`, `"y"`, `"1"`, any case).
    pub fn is_true(&self, value: &Value) -> Result<bool, String> {
        Ok(match untagged(value) {
            Value::Bool(b) => *b,
            Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
            Value::String(_) => self.scalar(value)?.is_some_and(|s| {
                matches!(
                    s.trim().to_ascii_lowercase().as_str(),
                    "true" | "yes" | "y" | "on" | "1" | "t"
                )
            }),
            _ => false,
        })
    }

    /// Whether a value is absent in effect: null, an empty list or mapping, or a string
    /// that interpolates to nothing.
    pub fn is_empty(&self, value: &Value) -> Result<bool, String> {
        Ok(match untagged(value) {
            Value::Null => true,
            Value::Sequence(s) => s.is_empty(),
            Value::Mapping(m) => m.is_empty(),
            _ => self.scalar(value)?.is_none_or(|s| s.trim().is_empty()),
        })
    }
}

/// The value under a YAML tag (`!tag value`), which Compose ignores.
pub(super) fn untagged(value: &Value) -> &Value {
    match value {
        Value::Tagged(tagged) => untagged(&tagged.value),
        other => other,
    }
}

/// The raw text of a scalar, before interpolation: what Coolify receives and checks.
pub(super) fn raw(value: &Value) -> Option<String> {
    match untagged(value) {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

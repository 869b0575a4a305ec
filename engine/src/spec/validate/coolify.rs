//! `coolify:`: where the app lives in Coolify, with names refused where Coolify would
//! store them otherwise.

use super::*;

pub(super) const COOLIFY_KEYS: &[&str] = &["project", "environment", "destination"];

impl Reader<'_> {
    pub(super) fn coolify(&mut self, top: &Mapping) -> (Option<String>, String, Option<String>) {
        let mut project = None;
        let mut destination = None;
        let mut environment = DEFAULT_ENVIRONMENT.to_owned();
        if let Some(value) = Self::get(top, "coolify")
            && let Some(mapping) = self.mapping(value, "coolify")
        {
            self.known_keys(mapping, "coolify", COOLIFY_KEYS);
            project = self
                .string(mapping, "coolify", "project")
                .and_then(|v| self.coolify_name(v, "coolify.project"))
                .and_then(|v| self.stored_as_written(v, "coolify.project", stored_project_name));
            if let Some(env) = self
                .string(mapping, "coolify", "environment")
                .and_then(|v| self.coolify_name(v, "coolify.environment"))
                .and_then(|v| {
                    self.stored_as_written(v, "coolify.environment", stored_environment_name)
                })
            {
                environment = env;
            }
            destination = self
                .string(mapping, "coolify", "destination")
                .and_then(|v| self.plain_name(v, "coolify.destination"));
        }
        (project, environment, destination)
    }

    /// A Coolify project or environment name: `nameRules()` of the projects API
    /// (coollabsio/coolify app/Support/ValidationPatterns.php, `NAME_PATTERN`, 3 to 255
    /// characters), so a name Coolify would refuse is an error before anything changes.
    pub(super) fn coolify_name(&mut self, value: String, field: &str) -> Option<String> {
        static NAME: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
            regex::Regex::new(r"^[\p{L}\p{M}\p{N}\s\-_.@/&()#,:+]+$").expect("valid pattern")
        });
        let length = value.chars().count();
        if !(3..=255).contains(&length) || !NAME.is_match(&value) {
            self.error_with_hint(
                field,
                format!("{value:?} is not a name Coolify accepts"),
                Some("use 3 to 255 letters, digits, spaces and `-_.@/&()#,:+`".into()),
            );
            return None;
        }
        Some(value)
    }

    /// `value` if Coolify stores it as written; else an error naming the form it would
    /// store, since every later lookup by the written name would miss (and a second
    /// project or environment would be created, or a create refused).
    pub(super) fn stored_as_written(
        &mut self,
        value: String,
        field: &str,
        stored: fn(&str) -> String,
    ) -> Option<String> {
        let kept = stored(&value);
        if kept == value {
            return Some(value);
        }
        self.error_with_hint(
            field,
            format!("{value:?} is stored by Coolify as {kept:?}"),
            Some(format!(
                "write `{kept}`: Fabrik finds it by the name Coolify keeps"
            )),
        );
        None
    }
}

/// Coolify's rule for environment variable keys: `^[A-Za-z_][A-Za-z0-9_.]*$`, ≤ 255.
/// A project name as Coolify stores it: trimmed (the global `TrimStrings` middleware;
/// `HasSafeStringAttribute` strips tags, which `NAME_PATTERN` already refuses).
pub fn stored_project_name(name: &str) -> String {
    name.trim().to_owned()
}

/// An environment name as Coolify stores it (coollabsio/coolify v4.3.10
/// app/Models/Environment.php `customizeName`, after `TrimStrings`): trimmed, lower
/// case, `/` replaced by `-`.
pub fn stored_environment_name(name: &str) -> String {
    name.trim().to_lowercase().replace('/', "-")
}

//! Reads a YAML tree into a [`Draft`] of the spec, checking every rule and recording every
//! problem with its location instead of stopping at the first.

use std::collections::BTreeMap;

use serde_yaml::{Mapping, Value};

use super::diagnostic::Diagnostics;
use super::domain::normalize_public_domain;
use super::locate::{SourceMap, child, item};
use super::model::{
    CoolifyTarget, DEFAULT_BRANCH, DEFAULT_ENVIRONMENT, DEFAULT_HEALTH_INTERVAL,
    DEFAULT_HEALTH_TIMEOUT, DEFAULT_HOOK_TIMEOUT, Healthcheck, Hooks, Notify, NotifyEvent,
    RollbackMode, RollbackPolicy, Source, Webhook, WebhookFormat, WebhookTarget,
};
use crate::domain::Role;

mod coolify;
mod env;
mod health;
mod hooks;
mod monitor;
mod notify;
mod rollback;
mod source;

pub use coolify::{stored_environment_name, stored_project_name};
pub use env::is_env_key;
pub use notify::webhook_url_problem;

const TOP_LEVEL: &[&str] = &[
    "name",
    "template",
    "domain",
    "server",
    "source",
    "port",
    "coolify",
    "env",
    "secrets",
    "healthcheck",
    "rollback",
    "notify",
    "hooks",
    "monitor",
    "environments",
];

/// The spec as read, before the template fills in defaults that depend on it (the port).
/// Fields are `None` only when a diagnostic explains why.
#[derive(Debug)]
pub struct Draft {
    pub name: Option<String>,
    pub template: Option<String>,
    pub domain: Option<String>,
    pub server: Option<String>,
    pub source: Option<Source>,
    /// `None` here can also mean "not written": the template's default applies.
    pub port: Option<u16>,
    /// Whether `source` / `port` were written (valid or not), so that a missing-field
    /// error is not added on top of an invalid-value error.
    pub source_written: bool,
    pub port_written: bool,
    pub coolify_project: Option<String>,
    pub coolify_environment: String,
    pub coolify_destination: Option<String>,
    pub env: BTreeMap<String, String>,
    pub secrets: Vec<String>,
    pub required_secrets: Vec<String>,
    pub healthcheck: Healthcheck,
    pub rollback: RollbackPolicy,
    pub monitor: Option<crate::spec::model::Monitor>,
    pub notify: Notify,
    pub hooks: Hooks,
}

impl Draft {
    fn empty() -> Self {
        Self {
            name: None,
            template: None,
            domain: None,
            server: None,
            source: None,
            port: None,
            source_written: false,
            port_written: false,
            coolify_project: None,
            coolify_environment: DEFAULT_ENVIRONMENT.to_owned(),
            coolify_destination: None,
            env: BTreeMap::new(),
            secrets: Vec::new(),
            required_secrets: Vec::new(),
            healthcheck: Healthcheck {
                path: "/".to_owned(),
                timeout: DEFAULT_HEALTH_TIMEOUT,
                interval: DEFAULT_HEALTH_INTERVAL,
                expect_status: None,
            },
            rollback: RollbackPolicy::default(),
            monitor: None,
            notify: Notify::default(),
            hooks: Hooks::default(),
        }
    }

    pub fn coolify(&self, name: &str) -> CoolifyTarget {
        CoolifyTarget {
            project: self
                .coolify_project
                .clone()
                .unwrap_or_else(|| name.to_owned()),
            environment: self.coolify_environment.clone(),
            destination: self.coolify_destination.clone(),
        }
    }
}

/// Reads and checks the whole document.
pub fn read(root: &Value, map: &SourceMap, diags: &mut Diagnostics) -> Draft {
    let mut r = Reader { map, diags };
    let empty = Mapping::new();
    let top = match root {
        Value::Null => {
            r.error_with_hint(
                "",
                "the spec is empty",
                Some("start from `fabrik new --template python-api NAME`".to_owned()),
            );
            &empty
        }
        Value::Mapping(m) if m.is_empty() => {
            r.error_with_hint(
                "",
                "the spec is empty",
                Some("start from `fabrik new --template python-api NAME`".to_owned()),
            );
            &empty
        }
        Value::Mapping(m) => m,
        other => {
            r.error(
                "",
                format!(
                    "expected the spec to be a mapping of fields, found {}",
                    describe(other)
                ),
            );
            &empty
        }
    };
    if top.is_empty() {
        // Nothing else can be said about a document with no fields.
        return Draft::empty();
    }
    r.known_keys(top, "", TOP_LEVEL);

    let name = r
        .required_string(top, "", "name")
        .and_then(|v| r.slug(v, "name"));
    let template = r.required_string(top, "", "template");
    let domain = r.required_string(top, "", "domain").and_then(|v| {
        normalize_public_domain(&v)
            .map_err(|e| r.error_with_hint("domain", e.message, e.hint))
            .ok()
    });
    let server = r
        .required_string(top, "", "server")
        .and_then(|v| r.plain_name(v, "server"));
    let source = r.source(top);
    let port = r
        .integer(top, "", "port", 1, 65535)
        .and_then(|p| u16::try_from(p).ok());
    let (coolify_project, coolify_environment, coolify_destination) = r.coolify(top);
    if coolify_project.is_none()
        && let Some(name) = &name
        && name.chars().count() < 3
    {
        r.error_with_hint(
            "name",
            format!(
                "{name:?} is too short to be the Coolify project's name, which it is by default"
            ),
            Some("Coolify project names have at least 3 characters: set `coolify.project`".into()),
        );
    }
    let env = r.env(top);
    let (secrets, required_secrets) = r.secrets(top, &env);
    let healthcheck = r.healthcheck(top);
    let monitor = r.monitor(top, &healthcheck);
    let rollback = r.rollback(top);
    let notify = r.notify(top);
    let hooks = r.hooks(top);

    Draft {
        name,
        template,
        domain,
        server,
        source,
        port,
        source_written: Reader::get(top, "source").is_some(),
        port_written: Reader::get(top, "port").is_some(),
        coolify_project,
        coolify_environment,
        coolify_destination,
        env,
        secrets,
        required_secrets,
        healthcheck,
        rollback,
        monitor,
        notify,
        hooks,
    }
}

struct Reader<'a> {
    map: &'a SourceMap,
    diags: &'a mut Diagnostics,
}

fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing (null)",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a decimal number",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

impl Reader<'_> {
    fn error(&mut self, path: &str, message: impl Into<String>) {
        let location = self.map.value(path);
        self.diags.push(location, path, message);
    }

    fn error_with_hint(&mut self, path: &str, message: impl Into<String>, hint: Option<String>) {
        let location = self.map.value(path);
        self.diags.push_with_hint(location, path, message, hint);
    }

    fn mapping<'v>(&mut self, value: &'v Value, path: &str) -> Option<&'v Mapping> {
        match value {
            Value::Mapping(m) => Some(m),
            other => {
                let what = if path.is_empty() {
                    "the spec"
                } else {
                    "this field"
                };
                self.error(
                    path,
                    format!(
                        "expected {what} to be a mapping of fields, found {}",
                        describe(other)
                    ),
                );
                None
            }
        }
    }

    /// Reports every key that is not in `known`, suggesting the closest known one.
    fn known_keys(&mut self, mapping: &Mapping, path: &str, known: &[&str]) {
        for key in mapping.keys() {
            let Some(key) = key.as_str() else {
                let location = self.map.value(path);
                self.diags.push(
                    location,
                    path,
                    format!("field names must be strings, found {}", describe(key)),
                );
                continue;
            };
            if known.contains(&key) {
                continue;
            }
            let hint = did_you_mean(known.iter().copied(), key)
                .or_else(|| Some(format!("known fields here: {}", known.join(", "))));
            let field = child(path, key);
            let location = self.map.key(&field);
            self.diags
                .push_with_hint(location, &field, "unknown field", hint);
        }
    }

    fn get<'v>(mapping: &'v Mapping, key: &str) -> Option<&'v Value> {
        mapping.get(key).filter(|v| !v.is_null())
    }

    fn string(&mut self, mapping: &Mapping, path: &str, key: &str) -> Option<String> {
        let field = child(path, key);
        match Self::get(mapping, key)? {
            Value::String(s) if s.trim().is_empty() => {
                self.error(&field, "must not be empty");
                None
            }
            Value::String(s) => Some(s.trim().to_owned()),
            other => {
                self.error(
                    &field,
                    format!("expected a string, found {}", describe(other)),
                );
                None
            }
        }
    }

    fn required_string(&mut self, mapping: &Mapping, path: &str, key: &str) -> Option<String> {
        if Self::get(mapping, key).is_none() {
            let location = self.map.value(path);
            let field = child(path, key);
            self.diags.push(location, &field, "is required");
            return None;
        }
        self.string(mapping, path, key)
    }

    fn integer(
        &mut self,
        mapping: &Mapping,
        path: &str,
        key: &str,
        min: i64,
        max: i64,
    ) -> Option<i64> {
        let field = child(path, key);
        let value = Self::get(mapping, key)?;
        let number = match value {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.trim().parse::<i64>().ok(),
            _ => None,
        };
        match number {
            Some(n) if (min..=max).contains(&n) => Some(n),
            Some(n) => {
                self.error(
                    &field,
                    format!("{n} is out of range; expected {min} to {max}"),
                );
                None
            }
            None => {
                self.error(
                    &field,
                    format!(
                        "expected a whole number from {min} to {max}, found {}",
                        describe(value)
                    ),
                );
                None
            }
        }
    }

    fn slug(&mut self, value: String, field: &str) -> Option<String> {
        if is_app_name(&value) {
            return Some(value);
        }
        self.error_with_hint(
            field,
            format!("{value:?} is not a valid app name"),
            Some(APP_NAME_HINT.into()),
        );
        None
    }

    /// A name shown in Coolify (server, project, environment): printable, one line.
    fn plain_name(&mut self, value: String, field: &str) -> Option<String> {
        if value.len() > 255 || value.chars().any(char::is_control) {
            self.error(
                field,
                format!("{value:?} must be one line of at most 255 characters"),
            );
            return None;
        }
        Some(value)
    }
}

/// `did you mean `x`?` for the candidate closest to a misspelt `word`, if one is close.
pub fn did_you_mean<'a>(
    candidates: impl IntoIterator<Item = &'a str>,
    word: &str,
) -> Option<String> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(c, word), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| format!("did you mean `{c}`?"))
}

/// What a valid app name looks like, for hints.
pub const APP_NAME_HINT: &str = "use 1 to 63 lowercase letters, digits and hyphens, not starting or ending with a hyphen (a DNS label)";

/// Whether `value` is a valid app name: a DNS label in lowercase (it becomes a
/// subdomain, a Coolify name and part of owner tags).
pub fn is_app_name(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 63
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !value.starts_with('-')
        && !value.ends_with('-')
}

/// A valid app name close to `value` (`My_App` → `my-app`), if there is one.
pub fn suggest_app_name(value: &str) -> Option<String> {
    let mapped: String = value
        .chars()
        .map(|c| match c {
            'A'..='Z' => c.to_ascii_lowercase(),
            'a'..='z' | '0'..='9' | '-' => c,
            _ => '-',
        })
        .collect();
    let mut collapsed = String::with_capacity(mapped.len());
    for c in mapped.chars() {
        if !(c == '-' && collapsed.ends_with('-')) {
            collapsed.push(c);
        }
    }
    let trimmed: String = collapsed.trim_matches('-').chars().take(63).collect();
    let trimmed = trimmed.trim_end_matches('-').to_owned();
    is_app_name(&trimmed).then_some(trimmed)
}

#[cfg(test)]
mod tests {
    use super::health::health_path_problem;
    use super::source::{branch_problem, image_reference_problem};
    use super::*;

    #[test]
    fn env_keys_follow_coolify() {
        for ok in ["A", "_A", "a.b", "LOG_LEVEL", "x1"] {
            assert!(is_env_key(ok), "{ok}");
        }
        for bad in ["", "1A", "A-B", "A B", ".A", "É"] {
            assert!(!is_env_key(bad), "{bad}");
        }
    }

    #[test]
    fn image_references() {
        for ok in [
            "nginx",
            "nginx:1.27",
            "ghcr.io/acme/my-api:1.4",
            "localhost:5000/app",
            "registry.example.com:5000/team/app:v2-rc.1",
            "nginx@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ] {
            assert_eq!(image_reference_problem(ok), None, "{ok}");
        }
        for bad in [
            "",
            "Nginx",
            "nginx:",
            "nginx:-x",
            "a b",
            "ghcr.io/Acme/app",
            "app@md5",
            "a//b",
            // What Coolify's name pattern refuses besides.
            "-app",
            "app-",
            "a___b",
            "nginx@sha256:0123",
            "nginx:1@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            // A digest written as a tag: Coolify's create and update disagree on it.
            "nginx:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ] {
            assert!(image_reference_problem(bad).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn health_paths() {
        assert_eq!(health_path_problem("/health"), None);
        assert_eq!(health_path_problem("/api/v1/health?deep=1"), None);
        assert!(health_path_problem("health").is_some());
        assert!(health_path_problem("/a b").is_some());
        assert!(health_path_problem("/a'b").is_some());
    }

    #[test]
    fn branches() {
        assert_eq!(branch_problem("main"), None);
        assert_eq!(branch_problem("release/1.4"), None);
        for bad in ["-x", "a..b", "a b", "x.lock", "a:b", "/a"] {
            assert!(branch_problem(bad).is_some(), "{bad}");
        }
    }
}

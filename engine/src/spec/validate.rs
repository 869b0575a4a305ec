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
];
const SOURCE_KEYS: &[&str] = &["image", "git", "branch", "commit"];
const SECRET_KEYS: &[&str] = &["name", "generate"];
const COOLIFY_KEYS: &[&str] = &["project", "environment", "destination"];
const HEALTH_KEYS: &[&str] = &["path", "timeout", "interval", "expect_status"];
/// A rollback policy per provider role.
const ROLLBACK_KEYS: &[&str] = &[Role::Coolify.as_str(), Role::Dns.as_str()];
const WEBHOOK_KEYS: &[&str] = &["url", "url_env", "on", "format"];
const HOOK_KEYS: &[&str] = &["pre_deploy", "post_deploy", "timeout"];

/// Coolify generates these per service; a spec that sets them fights Coolify.
/// Every `SERVICE_` variable is Coolify's: its compose parser generates `SERVICE_FQDN_*`,
/// `SERVICE_URL_*`, `SERVICE_PASSWORD_*`, `SERVICE_USER_*`, `SERVICE_BASE64_*` and more
/// (coollabsio/coolify bootstrap/helpers/parsers.php), and a spec value under that prefix
/// would replace a generated password under an existing volume.
const RESERVED_ENV_PREFIXES: &[&str] = &["SERVICE_"];

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

    fn source(&mut self, top: &Mapping) -> Option<Source> {
        let value = Self::get(top, "source")?;
        let mapping = self.mapping(value, "source")?;
        self.known_keys(mapping, "source", SOURCE_KEYS);
        let image = self.string(mapping, "source", "image");
        let git = self.string(mapping, "source", "git");
        let branch = self.string(mapping, "source", "branch");
        let commit = self.string(mapping, "source", "commit");
        match (image, git) {
            (Some(_), Some(_)) => {
                self.error_with_hint(
                    "source",
                    "sets both `image` and `git`",
                    Some("choose one place the code comes from".into()),
                );
                None
            }
            (Some(image), None) => {
                if branch.is_some() || commit.is_some() {
                    let field = if branch.is_some() {
                        "source.branch"
                    } else {
                        "source.commit"
                    };
                    self.error_with_hint(
                        field,
                        "only applies to a `git` source",
                        Some(
                            "remove it, or pin the image by digest (`name@sha256:<digest>`)".into(),
                        ),
                    );
                }
                match image_reference_problem(&image) {
                    Some(problem) => {
                        self.error_with_hint("source.image", format!("{image:?} is not a valid image reference: {problem}"), Some("write a reference such as `ghcr.io/acme/my-api:1.4` or `nginx@sha256:<digest>`".into()));
                        None
                    }
                    None => Some(Source::Image {
                        image,
                        digest: None,
                    }),
                }
            }
            (None, Some(repository)) => {
                let repository = self.git_repository(repository)?;
                let branch = branch.unwrap_or_else(|| DEFAULT_BRANCH.to_owned());
                if let Some(problem) = branch_problem(&branch) {
                    self.error(
                        "source.branch",
                        format!("{branch:?} is not a valid branch name: {problem}"),
                    );
                    return None;
                }
                if let Some(commit) = &commit
                    && !(commit.len() == 40
                        && commit
                            .bytes()
                            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
                {
                    self.error_with_hint(
                        "source.commit",
                        format!("{commit:?} is not a full commit id"),
                        Some("write the 40 lowercase hex digits of the commit (`git rev-parse HEAD`), or remove it to deploy the branch's newest commit".into()),
                    );
                    return None;
                }
                Some(Source::Git {
                    repository,
                    branch,
                    commit,
                })
            }
            (None, None) => {
                self.error_with_hint(
                    "source",
                    "names no source",
                    Some(
                        "set `image: <reference>`, or `git: <https url>` with an optional `branch`"
                            .into(),
                    ),
                );
                None
            }
        }
    }

    fn git_repository(&mut self, url: String) -> Option<String> {
        let field = "source.git";
        let Some(rest) = url.strip_prefix("https://") else {
            self.error_with_hint(field, format!("{url:?} is not an https URL"), Some("Fabrik deploys public repositories over https, such as `https://github.com/acme/my-api`".into()));
            return None;
        };
        let host = rest.split('/').next().unwrap_or_default();
        if host.contains('@') {
            // Credentials in a URL would end up in Coolify, the state and the logs.
            self.error_with_hint(
                field,
                "must not contain credentials",
                Some("use a public repository; private repositories are not supported yet".into()),
            );
            return None;
        }
        let path = rest[host.len()..].trim_matches('/');
        if host.is_empty()
            || path.is_empty()
            || url.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            self.error(
                field,
                format!("{url:?} is not a repository URL (expected https://<host>/<owner>/<repo>)"),
            );
            return None;
        }
        Some(url)
    }

    fn coolify(&mut self, top: &Mapping) -> (Option<String>, String, Option<String>) {
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
    fn coolify_name(&mut self, value: String, field: &str) -> Option<String> {
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
    fn stored_as_written(
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

    fn env_key(&mut self, key: &str, field: &str) -> bool {
        if !is_env_key(key) {
            let location = self.map.key(field);
            self.diags.push_with_hint(location, field, format!("{key:?} is not a valid environment variable name"), Some("start with a letter or `_`, then letters, digits, `_` or `.` (Coolify's rule), at most 255 characters".to_owned()));
            return false;
        }
        if let Some(prefix) = RESERVED_ENV_PREFIXES.iter().find(|p| key.starts_with(*p)) {
            let location = self.map.key(field);
            self.diags.push_with_hint(
                location,
                field,
                format!("{key:?} is reserved"),
                Some(format!(
                    "Coolify generates `{prefix}*` variables itself; choose another name"
                )),
            );
            return false;
        }
        true
    }

    fn env(&mut self, top: &Mapping) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        let Some(value) = Self::get(top, "env") else {
            return env;
        };
        let Some(mapping) = self.mapping(value, "env") else {
            return env;
        };
        for (key, value) in mapping {
            let Some(key) = key.as_str() else {
                self.error(
                    "env",
                    format!("variable names must be strings, found {}", describe(key)),
                );
                continue;
            };
            let field = child("env", key);
            let key_ok = self.env_key(key, &field);
            let text = match value {
                Value::String(s) => Some(s.clone()),
                // Whole numbers convert without loss; decimals and booleans do not (`1.10`
                // would become "1.1", `yes`/`on` differ between YAML versions).
                Value::Number(n) if !n.is_f64() => Some(n.to_string()),
                other => {
                    self.error_with_hint(
                        &field,
                        format!("expected a string, found {}", describe(other)),
                        Some(format!(
                            "quote the value so it is passed exactly: {key}: \"...\""
                        )),
                    );
                    None
                }
            };
            // Coolify trims every request's strings and turns "" into null (the
            // `TrimStrings` and `ConvertEmptyStringsToNull` middleware, global in
            // app/Http/Kernel.php), and trims a variable's value again when it stores and
            // reads it (`EnvironmentVariable::value()`): such a value would read back
            // different, and every apply would send it again.
            let text = text.filter(|text| {
                if text.is_empty() {
                    self.error_with_hint(
                        &field,
                        "is empty; Coolify stores an empty value as no value",
                        Some("give it a value, or leave the variable out".to_owned()),
                    );
                    return false;
                }
                if text.trim() != text {
                    self.error_with_hint(
                        &field,
                        "starts or ends with whitespace, which Coolify removes",
                        Some(
                            "remove it (a YAML `|` block ends with a newline: write `|-`)"
                                .to_owned(),
                        ),
                    );
                    return false;
                }
                true
            });
            if key_ok && let Some(text) = text {
                env.insert(key.to_owned(), text);
            }
        }
        env
    }

    /// `secrets: [API_KEY, {name: DATABASE_URL, generate: false}]`: the names, sorted,
    /// and those that must be provided (never generated).
    fn secrets(
        &mut self,
        top: &Mapping,
        env: &BTreeMap<String, String>,
    ) -> (Vec<String>, Vec<String>) {
        let mut names: Vec<String> = Vec::new();
        let mut required: Vec<String> = Vec::new();
        let Some(value) = Self::get(top, "secrets") else {
            return (names, required);
        };
        let Value::Sequence(items) = value else {
            self.error_with_hint(
                "secrets",
                format!("expected a list of names, found {}", describe(value)),
                Some("write `secrets: [DATABASE_URL, API_KEY]`".into()),
            );
            return (names, required);
        };
        for (index, value) in items.iter().enumerate() {
            let field = item("secrets", index);
            let (name, generate) = match value {
                Value::String(name) => (name.clone(), true),
                Value::Mapping(mapping) => {
                    self.known_keys(mapping, &field, SECRET_KEYS);
                    let Some(name) = self.required_string(mapping, &field, "name") else {
                        continue;
                    };
                    let generate = match Self::get(mapping, "generate") {
                        None => true,
                        Some(Value::Bool(b)) => *b,
                        Some(other) => {
                            self.error(
                                &format!("{field}.generate"),
                                format!("expected true or false, found {}", describe(other)),
                            );
                            continue;
                        }
                    };
                    (name, generate)
                }
                other => {
                    self.error_with_hint(
                        &field,
                        format!("expected a secret name, found {}", describe(other)),
                        Some("write a name, or `{name: DATABASE_URL, generate: false}` for one that must be provided".into()),
                    );
                    continue;
                }
            };
            let name = name.as_str();
            if !self.env_key(name, &field) {
                continue;
            }
            if names.iter().any(|n| n == name) {
                self.error(&field, format!("{name:?} is listed twice"));
                continue;
            }
            if env.contains_key(name) {
                self.error_with_hint(
                    &field,
                    format!("{name:?} is also set in `env`"),
                    Some(
                        "a variable is either plain (`env`) or secret (`secrets`), not both".into(),
                    ),
                );
                continue;
            }
            names.push(name.to_owned());
            if !generate {
                required.push(name.to_owned());
            }
        }
        names.sort();
        required.sort();
        (names, required)
    }

    fn healthcheck(&mut self, top: &Mapping) -> Healthcheck {
        let mut health = Healthcheck {
            path: "/".to_owned(),
            timeout: DEFAULT_HEALTH_TIMEOUT,
            interval: DEFAULT_HEALTH_INTERVAL,
            expect_status: None,
        };
        let Some(value) = Self::get(top, "healthcheck") else {
            return health;
        };
        let Some(mapping) = self.mapping(value, "healthcheck") else {
            return health;
        };
        let p = "healthcheck";
        self.known_keys(mapping, p, HEALTH_KEYS);
        if let Some(path) = self.string(mapping, p, "path") {
            if let Some(problem) = health_path_problem(&path) {
                self.error_with_hint(
                    "healthcheck.path",
                    format!("{path:?} {problem}"),
                    Some("write a path such as `/health`".into()),
                );
            } else {
                health.path = path;
            }
        }
        let mut timeout_ok = true;
        match self.integer(mapping, p, "timeout", 1, 3600) {
            Some(t) => health.timeout = u32::try_from(t).unwrap_or(DEFAULT_HEALTH_TIMEOUT),
            None => timeout_ok = Self::get(mapping, "timeout").is_none(),
        }
        if let Some(i) = self.integer(mapping, p, "interval", 1, 300) {
            let interval = u32::try_from(i).unwrap_or(DEFAULT_HEALTH_INTERVAL);
            if timeout_ok && interval > health.timeout {
                self.error(
                    "healthcheck.interval",
                    format!(
                        "{interval} s is longer than the timeout ({} s)",
                        health.timeout
                    ),
                );
            } else {
                health.interval = interval;
            }
        }
        health.expect_status = self
            .integer(mapping, p, "expect_status", 100, 599)
            .and_then(|s| u16::try_from(s).ok());
        health
    }

    fn rollback(&mut self, top: &Mapping) -> RollbackPolicy {
        let mut policy = RollbackPolicy::default();
        let Some(value) = Self::get(top, "rollback") else {
            return policy;
        };
        let Some(mapping) = self.mapping(value, "rollback") else {
            return policy;
        };
        self.known_keys(mapping, "rollback", ROLLBACK_KEYS);
        for role in Role::ALL {
            let Some(text) = self.string(mapping, "rollback", role.as_str()) else {
                continue;
            };
            let field = child("rollback", role.as_str());
            match RollbackMode::parse(&text) {
                Some(mode) => *policy.for_role_mut(role) = mode,
                None => self.error_with_hint(
                    &field,
                    format!("{text:?} is not a rollback mode"),
                    Some(format!("use one of {}", RollbackMode::NAMES.join(", "))),
                ),
            }
        }
        policy
    }
}

impl Reader<'_> {
    fn notify(&mut self, top: &Mapping) -> Notify {
        let mut notify = Notify::default();
        let Some(value) = Self::get(top, "notify") else {
            return notify;
        };
        let Value::Sequence(items) = value else {
            self.error_with_hint(
                "notify",
                format!("expected a list of webhooks, found {}", describe(value)),
                Some("write `notify: [{ url: https://hooks.example.com/deploys }]`".into()),
            );
            return notify;
        };
        for (index, value) in items.iter().enumerate() {
            let path = item("notify", index);
            if let Some(webhook) = self.webhook(value, &path) {
                notify.webhooks.push(webhook);
            }
        }
        notify
    }

    fn webhook(&mut self, value: &Value, path: &str) -> Option<Webhook> {
        let mapping = self.mapping(value, path)?;
        self.known_keys(mapping, path, WEBHOOK_KEYS);
        let url = self.string(mapping, path, "url");
        let url_env = self.string(mapping, path, "url_env");
        let on = self.events(mapping, path);
        let format = match self.string(mapping, path, "format") {
            None => Some(None),
            Some(name) => match WebhookFormat::parse(&name) {
                Some(format) => Some(Some(format)),
                None => {
                    self.error_with_hint(
                        &child(path, "format"),
                        format!("{name:?} is not a webhook format"),
                        Some(format!(
                            "use one of {}; without `format` it is found from the URL",
                            WebhookFormat::NAMES.join(", ")
                        )),
                    );
                    None
                }
            },
        };
        let target = match (url, url_env) {
            (Some(_), Some(_)) => {
                self.error_with_hint(
                    path,
                    "sets both `url` and `url_env`",
                    Some("write the URL, or name the variable that holds it".into()),
                );
                return None;
            }
            (None, None) => {
                self.error_with_hint(
                    path,
                    "names no URL",
                    Some("set `url: https://...`, or `url_env: VARIABLE` for a URL that is itself a credential".into()),
                );
                return None;
            }
            (Some(url), None) => match webhook_url_problem(&url) {
                Some(problem) => {
                    self.error(&child(path, "url"), format!("{url:?} {problem}"));
                    return None;
                }
                None => WebhookTarget::Url(url),
            },
            (None, Some(name)) => {
                if !is_env_key(&name) {
                    self.error(
                        &child(path, "url_env"),
                        format!("{name:?} is not a variable name"),
                    );
                    return None;
                }
                WebhookTarget::UrlEnv(name)
            }
        };
        Some(Webhook {
            target,
            on: on?,
            format: format?,
        })
    }

    fn events(&mut self, mapping: &Mapping, path: &str) -> Option<Vec<NotifyEvent>> {
        let field = child(path, "on");
        let Some(value) = Self::get(mapping, "on") else {
            return Some(Vec::new());
        };
        let Value::Sequence(items) = value else {
            self.error_with_hint(
                &field,
                format!("expected a list of events, found {}", describe(value)),
                Some(format!("write `on: [{}]`", NotifyEvent::NAMES.join(", "))),
            );
            return None;
        };
        let mut events = Vec::new();
        for (index, value) in items.iter().enumerate() {
            match value.as_str().and_then(NotifyEvent::parse) {
                Some(event) if !events.contains(&event) => events.push(event),
                Some(_) => {}
                None => {
                    let shown = value
                        .as_str()
                        .map_or_else(|| describe(value).to_owned(), |v| format!("{v:?}"));
                    self.error_with_hint(
                        &item(&field, index),
                        format!("{shown} is not an event"),
                        Some(format!("use one of {}", NotifyEvent::NAMES.join(", "))),
                    );
                    return None;
                }
            }
        }
        Some(events)
    }

    fn hooks(&mut self, top: &Mapping) -> Hooks {
        let mut hooks = Hooks::default();
        let Some(value) = Self::get(top, "hooks") else {
            return hooks;
        };
        let Some(mapping) = self.mapping(value, "hooks") else {
            return hooks;
        };
        self.known_keys(mapping, "hooks", HOOK_KEYS);
        hooks.pre_deploy = self.string(mapping, "hooks", "pre_deploy");
        hooks.post_deploy = self.string(mapping, "hooks", "post_deploy");
        if let Some(timeout) = self.integer(mapping, "hooks", "timeout", 1, 3600) {
            hooks.timeout = u32::try_from(timeout).unwrap_or(DEFAULT_HOOK_TIMEOUT);
        }
        hooks
    }
}

/// Why `url` cannot receive webhooks, if it cannot.
pub fn webhook_url_problem(url: &str) -> Option<&'static str> {
    let Ok(parsed) = url::Url::parse(url) else {
        return Some("is not a URL");
    };
    if !matches!(parsed.scheme(), "https" | "http") {
        return Some("must be an `https://` (or `http://`) URL");
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Some("has no host");
    }
    None
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

pub fn is_env_key(key: &str) -> bool {
    let mut bytes = key.bytes();
    key.len() <= 255
        && bytes
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
}

/// Characters allowed in a health path: Coolify's health-path set plus a query string.
/// Quotes, spaces and shell metacharacters are excluded because templates embed the path
/// in container health-check commands.
fn health_path_problem(path: &str) -> Option<&'static str> {
    if !path.starts_with('/') {
        return Some("must start with `/`");
    }
    if path.len() > 1024 {
        return Some("is longer than 1024 characters");
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || "/-_.~%,;?=&+".contains(c);
    if !path.chars().all(allowed) {
        return Some("contains characters other than letters, digits and `/-_.~%,;?=&+`");
    }
    None
}

/// A container image reference Coolify can deploy: `name[:tag]` or `name@sha256:<hex>`.
///
/// The name follows `DOCKER_IMAGE_NAME_PATTERN` (coollabsio/coolify
/// app/Support/ValidationPatterns.php): lowercase, an optional `host[:port]/`, components
/// joined by `.`, `_`, `__` or dashes; the tag `dockerImageTagRules()`; a digest is
/// sha256 with 64 hex digits (`DockerImageParser`). Coolify stores a digest as name
/// `repo@sha256` and tag `<hex>`, so a tag and a digest together cannot be deployed.
fn image_reference_problem(image: &str) -> Option<&'static str> {
    static NAME: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(
            r"\A(?:[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?(?::[0-9]+)?/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*\z",
        )
        .expect("valid pattern")
    });
    static TAG: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"\A[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}\z").expect("valid pattern")
    });
    if image.len() > 255 {
        return Some("longer than 255 characters");
    }
    if image.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Some("contains whitespace");
    }
    let (name_tag, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    if let Some(digest) = digest {
        let hex = digest.strip_prefix("sha256:").unwrap_or_default();
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Some("the digest must be `sha256:` and 64 hex digits");
        }
    }
    // A tag follows the last `:` after the last `/` (a `:` before it is a registry port).
    let last_slash = name_tag.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match name_tag[last_slash..].rfind(':') {
        Some(i) => (
            &name_tag[..last_slash + i],
            Some(&name_tag[last_slash + i + 1..]),
        ),
        None => (name_tag, None),
    };
    if let Some(tag) = tag {
        if digest.is_some() {
            return Some("Coolify deploys a tag or a digest, not both: keep `@sha256:<digest>`");
        }
        if !TAG.is_match(tag) {
            return Some("the tag must be 1 to 128 letters, digits, `_`, `.` or `-`");
        }
        // Coolify reads a 64-hex tag as a digest when it creates the app
        // (`DockerImageParser`) but stores it as a tag when it updates it
        // (`update_by_uuid`): the two would differ at every apply.
        if tag.len() == 64 && tag.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Some(
                "a tag of 64 hex digits is taken for a digest by Coolify on create and for a tag on update: write it `name@sha256:<digest>`",
            );
        }
    }
    if !NAME.is_match(name) {
        return Some(
            "the name must be lowercase letters and digits, joined by `.`, `_` or `-` and separated by `/`, after an optional `registry[:port]/`",
        );
    }
    None
}

/// The subset of git's ref-name rules that catches typos and injection.
fn branch_problem(branch: &str) -> Option<&'static str> {
    if branch.starts_with('-') || branch.starts_with('/') || branch.ends_with('/') {
        return Some("must not start with `-` or start or end with `/`");
    }
    if branch.contains("..") || branch.ends_with(".lock") || branch.contains("@{") {
        return Some("must not contain `..` or `@{` or end with `.lock`");
    }
    if branch
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || "~^:?*[\\".contains(c))
    {
        return Some("must not contain spaces or any of ~^:?*[\\");
    }
    None
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
